"""Beat-level GLoRIA-style local alignment between beat and sentence embeddings (spec §3.2; fixes §9 items 15, 16, 18).

Notation: B batch, Q beat queries, S (padded) sentences, D width; ECG ``b``, text ``i``, beat
``l``, sentence ``k``. For every pair (ECG b, text i), with beats ``E_b`` (Q, D) and the valid
sentences ``S_i`` (s_i, D):

1. scores ``A = E_b S_iᵀ`` (Q, s_i);
2. ``P`` = softmax of ``A`` over the sentences (for each beat);
3. ``α`` = softmax of ``temp1 · Pᵀ`` over the beats (for each sentence), (s_i, Q);
4. contexts ``c_k = Σ_l α_kl E_bl`` (s_i, D);
5. ``r_bi = log Σ_k exp(temp2 · cos(S_ik, c_k))`` (``agg="sum"``; ``"mean"`` uses log-mean-exp).

The loss is ``½[CE(temp3·r, arange) + CE(temp3·rᵀ, arange)]`` (ECG→text and text→ECG).

``alpha_scores="cosine"`` (an option; ``"dot"``, the paper's, is the default) computes the
attention of steps 1–3 from L2-normalised beats and sentences, ``A' = Ê Ŝᵀ``, so that the step-2
softmax sees cosines instead of raw dot products of large norms (which saturate it). Steps 4–5 are
unchanged: the contexts are built from the raw beats with the new ``α`` and compared with the raw
sentences.

The reference loops over texts and materialises contexts of width D for all B² pairs
(``O(B²·S·D)`` memory). Here nothing of width D is formed per pair: the contexts enter the
loss only through ``S_ik·c_k = Σ_l α_kl A_lk`` and ``|c_k|² = α_k G_b α_kᵀ`` with the Gram
matrix ``G_b = E_b E_bᵀ`` (Q, Q). Both are exact identities, so every pairwise tensor is of
size ``B²·Q·S`` (one GEMM gives all scores) and the per-ECG Gram matrices are ``B·Q²``.

Padding and empty texts: padded sentences (``sentence_mask`` False) are excluded from both
softmaxes' sentence sets and from the log-sum-exp, and their embeddings are zeroed before use, so
they contribute nothing, not even NaN. A text with **no** valid sentence has no defined
similarity: it is dropped as a candidate (its column in ECG→text) and its pair contributes no
term in either direction; its ECG still serves as a negative for the other texts. The loss is
the mean over the remaining pairs, and exactly 0 (with a gradient graph) when no text has a
sentence. All computation runs in at least float32, also under bf16 autocast (autocast is switched off
inside, :mod:`melp.losses.precision`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from melp.losses.precision import fp32_region
from melp.train.distributed import all_gather_with_sizes, all_reduce_sum, gather_tensors_for_eval, get_world_size

AGGREGATIONS = ("sum", "mean")
AlphaScores = Literal["dot", "cosine"]
ALPHA_SCORES: tuple[AlphaScores, ...] = ("dot", "cosine")
_COS_EPS = 1e-8


def _validate(beat_embs: torch.Tensor, sentence_embs: torch.Tensor, sentence_mask: torch.Tensor) -> None:
    if beat_embs.dim() != 3:
        raise ValueError(f"beat_embs must be (B, Q, D), got shape {tuple(beat_embs.shape)}")
    if sentence_embs.dim() != 3:
        raise ValueError(f"sentence_embs must be (B, S, D), got shape {tuple(sentence_embs.shape)}")
    b, _, d = beat_embs.shape
    if sentence_embs.shape[0] != b or sentence_embs.shape[2] != d:
        raise ValueError(
            f"sentence_embs {tuple(sentence_embs.shape)} must be (B={b}, S, D={d}) to match beat_embs {tuple(beat_embs.shape)}"
        )
    if sentence_mask.dtype != torch.bool or sentence_mask.shape != sentence_embs.shape[:2]:
        raise ValueError(
            f"sentence_mask must be a bool tensor of shape {tuple(sentence_embs.shape[:2])}, "
            f"got {sentence_mask.dtype} {tuple(sentence_mask.shape)}"
        )
    if b == 0 or beat_embs.shape[1] == 0 or sentence_embs.shape[1] == 0:
        raise ValueError(f"empty input: beat_embs {tuple(beat_embs.shape)}, sentence_embs {tuple(sentence_embs.shape)}")


def _check_options(temp1: float, temp2: float, temp3: float, agg: str, alpha_scores: str) -> None:
    for name, value in (("temp1", temp1), ("temp2", temp2), ("temp3", temp3)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg must be one of {AGGREGATIONS}, got {agg!r}")
    if alpha_scores not in ALPHA_SCORES:
        raise ValueError(f"alpha_scores must be one of {ALPHA_SCORES}, got {alpha_scores!r}")


def _prepare(
    beat_embs: torch.Tensor, sentence_embs: torch.Tensor, sentence_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cast to >= float32 and zero the padded sentences (so NaN in padding cannot leak)."""
    dtype = torch.promote_types(beat_embs.dtype, torch.float32)
    beats = beat_embs.to(dtype)  # (B, Q, D)
    sents = torch.where(sentence_mask[..., None], sentence_embs.to(dtype), 0.0)  # (B, S, D)
    return beats, sents, sentence_mask.to(beats.device)


def _usable(mask: torch.Tensor) -> torch.Tensor:
    """The sentence mask with texts that have no valid sentence treated as all-valid (zero rows).

    Their similarities are then finite placeholders (no NaN, not even in the backward pass); the
    callers exclude those texts from the loss.
    """
    return mask | ~mask.any(dim=1, keepdim=True)


def pairwise_log_similarity(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    *,
    temp1: float = 4.0,
    temp2: float = 5.0,
    agg: str = "sum",
    alpha_scores: AlphaScores = "dot",
) -> torch.Tensor:
    """``r[b, i]`` of step 5 for every ECG ``b`` against every text ``i``.

    Texts with no valid sentence get a finite placeholder value that callers must exclude.

    Args:
        beats: ``(Be, Q, D)`` beat embeddings (not normalised).
        sents: ``(Bt, S, D)`` sentence embeddings, padded rows zero.
        mask: ``(Bt, S)`` bool, True for real sentences.
        temp1: sharpness of the beat softmax.
        temp2: scale of the cosine inside the log-sum-exp.
        agg: ``"sum"`` (log-sum-exp over sentences) or ``"mean"`` (log-mean-exp).
        alpha_scores: ``"dot"`` (MELP: steps 1–3 on raw dot products) or ``"cosine"`` (steps 1–3
            on L2-normalised beats and sentences; steps 4–5 unchanged).

    Returns:
        ``(Be, Bt)`` similarities, in the dtype of ``beats``.
    """
    with fp32_region(beats.device):
        return _pairwise_log_similarity(
            beats, sents, mask, temp1=temp1, temp2=temp2, agg=agg, alpha_scores=alpha_scores
        )


def _attention(
    scores: torch.Tensor, usable: torch.Tensor, *, sentence_dim: int, beat_dim: int, temp1: float
) -> torch.Tensor:
    """Steps 2–3: ``α`` = softmax over beats of ``temp1 ·`` (softmax over usable sentences of ``scores``)."""
    p = scores.masked_fill(~usable, float("-inf")).softmax(dim=sentence_dim)
    return (temp1 * p).softmax(dim=beat_dim)


def _pairwise_log_similarity(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    *,
    temp1: float,
    temp2: float,
    agg: str,
    alpha_scores: AlphaScores,
) -> torch.Tensor:
    be, q, d = beats.shape
    bt, s, _ = sents.shape
    # Texts last, so that neither softmax runs over the (short) last dimension: torch's CPU
    # softmax is several times slower over a last dimension of 12 than over a middle one.
    usable = _usable(mask).T  # (S, Bt)
    sents_t = sents.transpose(0, 1).reshape(s * bt, d)  # (S·Bt, D)
    scores = (beats.reshape(be * q, d) @ sents_t.T).view(be, q, s, bt)  # (Be, Q, S, Bt): E_bl · S_ik
    if alpha_scores == "cosine":  # Ê_bl · Ŝ_ik; padded (zero) sentences stay zero and are masked anyway
        att_scores = (F.normalize(beats, dim=-1).reshape(be * q, d) @ F.normalize(sents_t, dim=-1).T).view(be, q, s, bt)
    else:
        att_scores = scores
    alpha = _attention(att_scores, usable, sentence_dim=2, beat_dim=1, temp1=temp1)  # steps 2-3: (Be, Q, S, Bt)
    dot = (alpha * scores).sum(dim=1)  # (Be, S, Bt): S_ik · c_ibk, always from the raw scores
    gram = beats @ beats.transpose(1, 2)  # (Be, Q, Q)
    gram_alpha = torch.bmm(gram, alpha.reshape(be, q, s * bt)).view(be, q, s, bt)  # (Be, Q, S, Bt)
    ctx_sq = (alpha * gram_alpha).sum(dim=1)  # (Be, S, Bt): |c_ibk|²
    ctx_norm = ctx_sq.clamp_min(torch.finfo(ctx_sq.dtype).tiny).sqrt()  # (Be, S, Bt)
    sent_norm = sents.norm(dim=-1).T  # (S, Bt)
    cos = dot / (sent_norm * ctx_norm).clamp_min(_COS_EPS)  # (Be, S, Bt)
    r = torch.logsumexp((temp2 * cos).masked_fill(~usable, float("-inf")), dim=1)  # (Be, Bt)
    if agg == "mean":
        r = r - usable.sum(dim=0).to(r.dtype).log()
    return r


def _ce_sum(
    logits: torch.Tensor, labels: torch.Tensor, row_valid: torch.Tensor, col_valid: torch.Tensor
) -> torch.Tensor:
    """Sum of cross-entropies of the valid rows, invalid columns excluded from the softmax."""
    logits = logits.masked_fill(~col_valid[None], torch.finfo(logits.dtype).min)  # finite: no NaN in empty rows
    labels = torch.where(row_valid, labels, -100)
    return F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")


def local_alignment_loss(
    beat_embs: torch.Tensor,
    sentence_embs: torch.Tensor,
    sentence_mask: torch.Tensor,
    temp1: float = 4.0,
    temp2: float = 5.0,
    temp3: float = 10.0,
    *,
    agg: str = "sum",
    alpha_scores: AlphaScores = "dot",
) -> torch.Tensor:
    """The local (beat↔sentence) loss over one batch, vectorised (see the module docstring).

    Args:
        beat_embs: ``(B, Q, D)`` beat embeddings.
        sentence_embs: ``(B, S, D)`` sentence embeddings, padded to S.
        sentence_mask: ``(B, S)`` bool, True for real sentences.
        temp1: beat-attention sharpness (4 in MELP).
        temp2: cosine scale in the sentence log-sum-exp (5).
        temp3: scale of the pair similarities in the cross-entropies (10).
        agg: ``"sum"`` (MELP) or ``"mean"`` sentence aggregation.
        alpha_scores: ``"dot"`` (MELP) or ``"cosine"``: what the beat attention ``α`` of steps
            1–3 is computed from (raw or L2-normalised embeddings); steps 4–5 are the same.

    Returns:
        Scalar loss (float32 or float64).
    """
    _validate(beat_embs, sentence_embs, sentence_mask)
    _check_options(temp1, temp2, temp3, agg, alpha_scores)
    with fp32_region(beat_embs.device):
        return _local_alignment_loss(
            *_prepare(beat_embs, sentence_embs, sentence_mask),
            temp1=temp1,
            temp2=temp2,
            temp3=temp3,
            agg=agg,
            alpha_scores=alpha_scores,
        )


def _local_alignment_loss(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    *,
    temp1: float,
    temp2: float,
    temp3: float,
    agg: str,
    alpha_scores: AlphaScores,
) -> torch.Tensor:
    text_valid = mask.any(dim=1)  # (B,)
    r = pairwise_log_similarity(
        beats, sents, mask, temp1=temp1, temp2=temp2, agg=agg, alpha_scores=alpha_scores
    )  # (B, B)
    logits = temp3 * r.masked_fill(~text_valid[None], 0.0)  # (B, B)
    labels = torch.arange(r.shape[0], device=r.device)
    everything = torch.ones_like(text_valid)
    total = _ce_sum(logits, labels, text_valid, text_valid) + _ce_sum(logits.T, labels, text_valid, everything)
    return total / (2 * text_valid.sum().clamp_min(1))


def _gathered_local_alignment_loss(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    *,
    temp1: float,
    temp2: float,
    temp3: float,
    agg: str,
    alpha_scores: AlphaScores,
    rank: int,
) -> torch.Tensor:
    """Global form: local ECGs against all texts, local texts against all ECGs (gradients through the gather)."""
    all_beats, sizes = all_gather_with_sizes(beats)  # (Bg, Q, D)
    all_sents, _ = all_gather_with_sizes(sents)  # (Bg, S_max, D)
    padded_mask = torch.zeros(mask.shape[0], all_sents.shape[1], dtype=torch.bool, device=mask.device)
    padded_mask[:, : mask.shape[1]] = mask  # (B, S_max)
    all_mask = gather_tensors_for_eval(padded_mask)  # (Bg, S_max)
    offset = sum(sizes[:rank])
    labels = torch.arange(beats.shape[0], device=beats.device) + offset  # (B,)
    local_valid = mask.any(dim=1)  # (B,)
    all_valid = all_mask.any(dim=1)  # (Bg,)
    r_e2t = pairwise_log_similarity(
        beats, all_sents, all_mask, temp1=temp1, temp2=temp2, agg=agg, alpha_scores=alpha_scores
    )  # (B, Bg)
    r_t2e = pairwise_log_similarity(
        all_beats, sents, mask, temp1=temp1, temp2=temp2, agg=agg, alpha_scores=alpha_scores
    )  # (Bg, B)
    logits_e2t = temp3 * r_e2t.masked_fill(~all_valid[None], 0.0)
    logits_t2e = temp3 * r_t2e.T.masked_fill(~local_valid[:, None], 0.0)
    total = _ce_sum(logits_e2t, labels, local_valid, all_valid) + _ce_sum(
        logits_t2e, labels, local_valid, torch.ones_like(all_valid)
    )
    n_valid = all_reduce_sum(local_valid.sum()).clamp_min(1)
    return total * len(sizes) / (2 * n_valid)


class LocalAlignmentLoss(nn.Module):
    """The local alignment loss as a module built once (spec §3.2).

    With ``gather=False`` (MELP's choice, the default) each rank computes the loss over its own
    batch. With ``gather=True`` beats and sentences are all-gathered with gradients and each rank
    scores its local ECGs against all texts and its local texts against all ECGs; the per-rank
    losses are scaled so that their mean over ranks (what DDP's gradient averaging optimises)
    equals the single-process loss over the global batch.

    Args:
        temp1: beat-attention sharpness.
        temp2: cosine scale in the sentence log-sum-exp.
        temp3: scale of the pair similarities.
        agg: ``"sum"`` or ``"mean"``.
        alpha_scores: ``"dot"`` (MELP) or ``"cosine"`` scores for the beat attention ``α``.
        rank: this process's rank.
        world_size: number of processes.
        gather: compute the global form across ranks.
    """

    def __init__(
        self,
        *,
        temp1: float = 4.0,
        temp2: float = 5.0,
        temp3: float = 10.0,
        agg: str = "sum",
        alpha_scores: AlphaScores = "dot",
        rank: int = 0,
        world_size: int = 1,
        gather: bool = False,
    ) -> None:
        super().__init__()
        _check_options(temp1, temp2, temp3, agg, alpha_scores)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got rank={rank}")
        self.temp1, self.temp2, self.temp3, self.agg = temp1, temp2, temp3, agg
        self.alpha_scores: AlphaScores = alpha_scores
        self.rank, self.world_size, self.gather = rank, world_size, gather

    def forward(
        self, beat_embs: torch.Tensor, sentence_embs: torch.Tensor, sentence_mask: torch.Tensor
    ) -> torch.Tensor:
        """Scalar loss from ``beat_embs`` (B, Q, D), ``sentence_embs`` (B, S, D) and ``sentence_mask`` (B, S)."""
        if not (self.gather and self.world_size > 1):
            return local_alignment_loss(
                beat_embs,
                sentence_embs,
                sentence_mask,
                self.temp1,
                self.temp2,
                self.temp3,
                agg=self.agg,
                alpha_scores=self.alpha_scores,
            )
        if get_world_size() != self.world_size:
            raise RuntimeError(
                f"LocalAlignmentLoss was built for world_size={self.world_size} but the process group has "
                f"{get_world_size()} process(es); call melp.train.distributed.init_distributed() first"
            )
        _validate(beat_embs, sentence_embs, sentence_mask)
        beats, sents, mask = _prepare(beat_embs, sentence_embs, sentence_mask)
        with fp32_region(beats.device):
            return _gathered_local_alignment_loss(
                beats,
                sents,
                mask,
                temp1=self.temp1,
                temp2=self.temp2,
                temp3=self.temp3,
                agg=self.agg,
                alpha_scores=self.alpha_scores,
                rank=self.rank,
            )


@torch.no_grad()
def local_attention_maps(
    beat_embs: torch.Tensor,
    sentence_embs: torch.Tensor,
    sentence_mask: torch.Tensor,
    temp1: float = 4.0,
    *,
    alpha_scores: AlphaScores = "dot",
) -> torch.Tensor:
    """The beat attention ``α`` of each sentence over its own ECG's beats, for visualisation.

    Args:
        beat_embs: ``(B, Q, D)`` beat embeddings.
        sentence_embs: ``(B, S, D)`` sentence embeddings.
        sentence_mask: ``(B, S)`` bool, True for real sentences.
        temp1: beat-attention sharpness.
        alpha_scores: ``"dot"`` (MELP) or ``"cosine"``, as in the loss the model was trained with.

    Returns:
        ``(B, S, Q)`` attention maps; each real sentence's row sums to 1, padded rows are 0.
    """
    _validate(beat_embs, sentence_embs, sentence_mask)
    _check_options(temp1, 1.0, 1.0, "sum", alpha_scores)
    beats, sents, mask = _prepare(beat_embs, sentence_embs, sentence_mask)
    if alpha_scores == "cosine":
        beats, sents = F.normalize(beats, dim=-1), F.normalize(sents, dim=-1)
    scores = torch.einsum("bld,bkd->blk", beats, sents)  # (B, Q, S): matched pairs only
    alpha = _attention(scores, _usable(mask)[:, None], sentence_dim=-1, beat_dim=1, temp1=temp1)  # (B, Q, S)
    return alpha.transpose(1, 2).masked_fill(~mask[..., None], 0.0)  # (B, S, Q)
