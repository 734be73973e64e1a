"""The MELP training objective: 1·CLIP + 2·caption + 0.2·local (spec §3.4; weights of the paper's README command).

Decision on spec §9 item 16 (should the local loss be gathered across GPUs?): **no, by default.**
MELP computes it per GPU over the local batch, and its cost grows with the square of the batch it
sees (``B²·Q·S`` pair scores plus the ``B²·Q·S·D`` score GEMM), so gathering to 4 × 64 would make
it 16 times dearer per rank for an auxiliary term weighted 0.2; the rhythm-level CLIP loss
already supplies global negatives. ``local_loss_gather=True`` gives the global form (exact
single-process equivalence, see :class:`~melp.losses.local_alignment.LocalAlignmentLoss`) for
those who want it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from melp.losses.caption import CaptionLoss
from melp.losses.clip import ClipLoss
from melp.losses.local_alignment import AlphaScores, LocalAlignmentLoss

REQUIRED_KEYS = (
    "ecg_latent",
    "text_latent",
    "logit_scale",
    "beat_embs",
    "sentence_embs",
    "sentence_mask",
    "caption_logits",
    "caption_labels",
)


class MELPLoss(nn.Module):
    """Weighted sum of the three MELP losses, built once per run.

    Args:
        clip_weight: weight of the rhythm-level CLIP loss.
        caption_weight: weight of the token-level captioning loss.
        local_weight: weight of the beat-level local alignment loss.
        pad_id: the tokenizer's ``pad_token_id``.
        rank: this process's rank.
        world_size: number of processes.
        local_loss_gather: gather beats and sentences across ranks for the local loss (see the
            module docstring for why the default is off).
        local_alpha: what the local loss's beat attention ``α`` is computed from: ``"dot"``
            (the paper's raw dot products, the default) or ``"cosine"`` (L2-normalised beats and
            sentences; see :mod:`melp.losses.local_alignment`).
    """

    def __init__(
        self,
        *,
        clip_weight: float = 1.0,
        caption_weight: float = 2.0,
        local_weight: float = 0.2,
        pad_id: int,
        rank: int = 0,
        world_size: int = 1,
        local_loss_gather: bool = False,
        local_alpha: AlphaScores = "dot",
    ) -> None:
        super().__init__()
        for name, value in (
            ("clip_weight", clip_weight),
            ("caption_weight", caption_weight),
            ("local_weight", local_weight),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.clip_weight = clip_weight
        self.caption_weight = caption_weight
        self.local_weight = local_weight
        self.clip = ClipLoss(rank=rank, world_size=world_size)
        self.caption = CaptionLoss(pad_id=pad_id)
        self.local = LocalAlignmentLoss(
            alpha_scores=local_alpha, rank=rank, world_size=world_size, gather=local_loss_gather
        )

    def forward(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The three unweighted terms and their weighted total.

        Args:
            outputs: the model's forward dict (``ecg_latent``, ``text_latent``, ``logit_scale`` in
                log space, ``beat_embs``, ``sentence_embs``, ``sentence_mask``, ``caption_logits``,
                ``caption_labels``).

        Returns:
            ``{"clip_loss", "caption_loss", "local_loss", "loss"}`` scalar tensors.
        """
        missing = [key for key in REQUIRED_KEYS if key not in outputs]
        if missing:
            raise KeyError(f"model outputs lack {missing}; MELPLoss needs {list(REQUIRED_KEYS)}")
        clip_loss = self.clip(outputs["ecg_latent"], outputs["text_latent"], outputs["logit_scale"].exp())
        caption_loss = self.caption(outputs["caption_logits"], outputs["caption_labels"])
        local_loss = self.local(outputs["beat_embs"], outputs["sentence_embs"], outputs["sentence_mask"])
        loss = self.clip_weight * clip_loss + self.caption_weight * caption_loss + self.local_weight * local_loss
        return {"clip_loss": clip_loss, "caption_loss": caption_loss, "local_loss": local_loss, "loss": loss}
