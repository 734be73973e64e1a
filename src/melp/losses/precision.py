"""The losses' fp32 region: autocast switched off, so logits and similarities stay float32 under bf16 autocast.

``torch.autocast`` casts the inputs of every matmul to bf16, even inputs already cast to float32;
the CLIP logits (B × B_g dot products scaled by up to 100) and the local loss's softmaxes would then
be computed with 8 mantissa bits. Every loss therefore computes inside :func:`fp32_region` on its
inputs' device, after casting them to at least float32.
"""

from __future__ import annotations

import torch


def fp32_region(device: torch.device) -> torch.autocast:
    """A context that disables autocast on ``device``'s type (CUDA, CPU, ...)."""
    return torch.autocast(device_type=device.type, enabled=False)
