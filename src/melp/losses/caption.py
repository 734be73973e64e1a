"""Token-level captioning cross-entropy (spec §3.1; fixes §9 item 5: the pad id is the tokenizer's ``pad_token_id``).

The mean is over the non-pad label tokens of the local batch (the final [SEP] included), as in
the reference; under DDP each rank's mean is averaged by DDP's gradient averaging. A batch with
no non-pad label gives 0 rather than NaN. Computed in at least float32 (the logits may be bf16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from melp.losses.precision import fp32_region


class CaptionLoss(nn.Module):
    """Next-token cross-entropy of the caption decoder, ignoring padding.

    Args:
        pad_id: the tokenizer's ``pad_token_id``; label positions equal to it are ignored.
    """

    def __init__(self, *, pad_id: int) -> None:
        super().__init__()
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or pad_id < 0:
            raise ValueError(f"pad_id must be a non-negative int (tokenizer.pad_token_id), got {pad_id!r}")
        self.pad_id = pad_id

    def forward(self, caption_logits: torch.Tensor, caption_labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the non-pad labels.

        Args:
            caption_logits: ``(B, L, V)`` logits; position ``t`` predicts ``caption_labels[:, t]``.
            caption_labels: ``(B, L)`` integer target ids (already shifted by the model).

        Returns:
            Scalar loss.
        """
        total, n_tokens = self.token_sum(caption_logits, caption_labels)
        return total / n_tokens.clamp_min(1)

    def token_sum(
        self, caption_logits: torch.Tensor, caption_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed cross-entropy over the non-pad labels and their count (the loss is their ratio).

        Exact gradient accumulation divides the sums of all micro-batches by the window's token count.
        """
        if caption_logits.dim() != 3 or caption_labels.shape != caption_logits.shape[:2]:
            raise ValueError(
                f"caption_logits must be (B, L, V) and caption_labels (B, L), got {tuple(caption_logits.shape)} "
                f"and {tuple(caption_labels.shape)}"
            )
        if caption_labels.dtype.is_floating_point or caption_labels.dtype == torch.bool:
            raise ValueError(f"caption_labels must be integer token ids, got {caption_labels.dtype}")
        with fp32_region(caption_logits.device):
            logits = caption_logits.to(torch.promote_types(caption_logits.dtype, torch.float32)).flatten(0, 1)
            labels = caption_labels.flatten().long()  # (B·L,)
            total = F.cross_entropy(logits, labels, ignore_index=self.pad_id, reduction="sum")
        return total, (labels != self.pad_id).sum()
