"""Sentence↔report InfoNCE for the text encoder's contrastive phase of stage 1 (melp's addition).

A batch holds ``B`` reports and one sentence drawn from each. Sentence ``i`` and report ``j`` form
a positive pair when report ``j`` contains sentence ``i`` word for word, so a sentence that many
reports share ("Normal sinus rhythm.") has all of them as positives instead of false negatives.
The loss is the mean of both directions of the multi-positive InfoNCE (Khosla et al., 2020, the
"outside" form): for a row with logits ``l`` and positive set ``P``,

    -log( Σ_{p ∈ P} exp(l_p) / Σ_k exp(l_k) ).

It is the inverse cloze task of Lee et al. (2019) with the sentence kept in its report: a
finding's sentence is pulled towards every report that states it, which is what zero-shot
prompts need of the text space.
"""

from __future__ import annotations

import torch

from melp.losses.precision import fp32_region


def _multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-log Σ_P softmax(logits)``; (R, K) logits, (R, K) bool positives."""
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(logits.masked_fill(~positives, -torch.inf), dim=1)).mean()


def sentence_report_loss(
    sentence_emb: torch.Tensor, report_emb: torch.Tensor, positives: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE between sentences and reports.

    Args:
        sentence_emb: (B, E) L2-normalised sentence embeddings.
        report_emb: (B, E) L2-normalised report embeddings.
        positives: (B, B) bool, ``positives[i, j]``: report ``j`` contains sentence ``i``. Every row
            and every column needs at least one positive (sentence ``i`` comes from report ``i``).
        temperature: the logits are cosine similarities divided by it.

    Returns:
        The scalar loss, float32.
    """
    if positives.shape != (sentence_emb.shape[0], report_emb.shape[0]):
        raise ValueError(
            f"positives {tuple(positives.shape)} do not match {sentence_emb.shape[0]} × {report_emb.shape[0]}"
        )
    if not (positives.any(dim=1).all() and positives.any(dim=0).all()):
        raise ValueError("every sentence and every report needs a positive")
    with fp32_region(sentence_emb.device):
        logits = sentence_emb.float() @ report_emb.float().T / temperature  # (B, B)
        return 0.5 * (_multi_positive_nce(logits, positives) + _multi_positive_nce(logits.T, positives.T))
