"""Rhythm-level CLIP InfoNCE between ECG and text latents, with a gradient-carrying all-gather (spec §3.3; fixes §9 item 17).

Each rank scores its local ECGs against the texts of every rank and its local texts against the
ECGs of every rank (the "global form" of open_clip's ``local_loss=True``); the positive of local
sample ``j`` is global column ``offset + j``, ``offset`` being the number of samples on lower
ranks. The per-rank loss is

    L_r = W / (2 B_g) · Σ_{j local} [CE_ecg→text(j) + CE_text→ecg(j)],

so that the mean of ``L_r`` over the ``W`` ranks is exactly the single-process loss over the
global batch of ``B_g`` pairs. With equal per-rank batches ``L_r`` is the plain mean over local
rows. Because the gather's backward sums gradients over ranks and DDP averages them, the
parameter gradients equal those of one process with the global batch; the loss must **not** be
multiplied by the world size (environment-notes §5). Computed in at least float32, with autocast
off (:mod:`melp.losses.precision`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from melp.losses.precision import fp32_region
from melp.train.distributed import all_gather_with_sizes, get_world_size


class ClipLoss(nn.Module):
    """Symmetric InfoNCE over (ECG, text) pairs, built once per run.

    Args:
        rank: this process's rank.
        world_size: number of processes; above 1 the latents are all-gathered with gradients.
    """

    def __init__(self, *, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got rank={rank}")
        self.rank = rank
        self.world_size = world_size

    def forward(self, ecg_latent: torch.Tensor, text_latent: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        """The loss of this rank.

        Args:
            ecg_latent: ``(B, D)`` L2-normalised ECG embeddings.
            text_latent: ``(B, D)`` L2-normalised text embeddings of the paired reports.
            logit_scale: scalar multiplicative scale (the exponential of the model's log-scale).

        Returns:
            Scalar loss.
        """
        if ecg_latent.dim() != 2 or ecg_latent.shape != text_latent.shape or ecg_latent.shape[0] == 0:
            raise ValueError(
                f"ecg_latent and text_latent must both be (B, D) with B >= 1, got {tuple(ecg_latent.shape)} "
                f"and {tuple(text_latent.shape)}"
            )
        if logit_scale.numel() != 1:
            raise ValueError(f"logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}")
        with fp32_region(ecg_latent.device):
            logits_e2t, logits_t2e, labels, n_global = self.logits(ecg_latent, text_latent, logit_scale)
            total = F.cross_entropy(logits_e2t, labels, reduction="sum") + F.cross_entropy(
                logits_t2e, labels, reduction="sum"
            )
        return total * self.world_size / (2 * n_global)

    def logits(
        self, ecg_latent: torch.Tensor, text_latent: torch.Tensor, logit_scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Both logit matrices (B, B_g) in at least float32 (autocast off), the local rows' labels (B,) and B_g."""
        with fp32_region(ecg_latent.device):
            dtype = torch.promote_types(ecg_latent.dtype, torch.float32)
            ecg = ecg_latent.to(dtype)  # (B, D)
            text = text_latent.to(dtype)  # (B, D)
            scale = logit_scale.to(dtype).reshape(())
            if self.world_size > 1:
                if get_world_size() != self.world_size:
                    raise RuntimeError(
                        f"ClipLoss was built for world_size={self.world_size} but the process group has "
                        f"{get_world_size()} process(es); call melp.train.distributed.init_distributed() first"
                    )
                all_ecg, sizes = all_gather_with_sizes(ecg)  # (Bg, D)
                all_text, _ = all_gather_with_sizes(text)  # (Bg, D)
            else:
                all_ecg, all_text, sizes = ecg, text, [ecg.shape[0]]
            labels = torch.arange(ecg.shape[0], device=ecg.device) + sum(sizes[: self.rank])  # (B,)
            logits_e2t = scale * ecg @ all_text.T  # (B, Bg)
            logits_t2e = scale * text @ all_ecg.T  # (B, Bg)
        return logits_e2t, logits_t2e, labels, sum(sizes)
