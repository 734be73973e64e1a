"""Zero-shot classification (melp-spec §6.1): class embeddings from prompts, cosine scores against ECG latents.

Each class's prompts are tokenised exactly as training reports are (the collator's tokenisation:
``[BOS] w1 .. wn [SEP] [PAD]..``) and embedded with ``model.encode_text``; the class embedding is the
mean of the L2-normalised prompt embeddings, re-normalised. The score of an ECG for a class is the
cosine of its normalised ``ecg_latent`` with the class embedding (no softmax, no scaling), so every
class is scored independently, as a multi-label problem needs.

Shapes: B batch, P prompts, C classes, D embedding width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Tokenize = Callable[[list[str]], dict[str, torch.Tensor]]
EncodeText = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


@torch.no_grad()
def build_class_embeddings(
    class_prompts: dict[str, list[str]],
    classes: Sequence[str],
    *,
    tokenize: Tokenize,
    encode_text: EncodeText,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Class embeddings (C, D): per class, the re-normalised mean of its normalised prompt embeddings.

    Args:
        class_prompts: class code → prompts (see :func:`melp.eval.prompts.class_prompts`).
        classes: class order of the output rows.
        tokenize: texts → ``{"input_ids" (P, L), "attention_mask" (P, L)}``.
        encode_text: ``(input_ids, attention_mask) → {"text_latent" (P, D), ...}`` (e.g. ``model.encode_text``).
    """
    missing = [c for c in classes if not class_prompts.get(c)]
    if missing:
        raise KeyError(f"no prompts for classes {missing}")
    texts = [p for c in classes for p in class_prompts[c]]
    owner = torch.tensor([i for i, c in enumerate(classes) for _ in class_prompts[c]])  # (P,)
    chunks = []
    for start in range(0, len(texts), batch_size):
        tok = tokenize(texts[start : start + batch_size])
        out = encode_text(tok["input_ids"].to(device), tok["attention_mask"].to(device))
        chunks.append(F.normalize(out["text_latent"].float(), dim=-1).cpu())  # (b, D)
    prompt_emb = torch.cat(chunks)  # (P, D)
    sums = torch.zeros(len(classes), prompt_emb.shape[1]).index_add_(0, owner, prompt_emb)  # (C, D)
    counts = torch.bincount(owner, minlength=len(classes)).unsqueeze(1)  # (C, 1)
    return F.normalize(sums / counts, dim=-1)


def zeroshot_scores(ecg_latent: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """Cosine scores (B, C) of ECG latents (B, D) against class embeddings (C, D)."""
    if ecg_latent.ndim != 2 or class_emb.ndim != 2 or ecg_latent.shape[1] != class_emb.shape[1]:
        raise ValueError(
            f"expected (B, D) ECG latents and (C, D) class embeddings, got {tuple(ecg_latent.shape)} and {tuple(class_emb.shape)}"
        )
    return F.normalize(ecg_latent.float(), dim=-1) @ F.normalize(class_emb.float(), dim=-1).T
