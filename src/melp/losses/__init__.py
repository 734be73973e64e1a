"""The three MELP losses (spec §3): token-level captioning, beat-level local alignment, rhythm-level CLIP."""

from melp.losses.caption import CaptionLoss
from melp.losses.clip import ClipLoss
from melp.losses.local_alignment import LocalAlignmentLoss, local_alignment_loss, local_attention_maps
from melp.losses.melp_loss import MELPLoss

__all__ = [
    "CaptionLoss",
    "ClipLoss",
    "LocalAlignmentLoss",
    "MELPLoss",
    "local_alignment_loss",
    "local_attention_maps",
]
