"""Learning-rate schedule: linear warm-up, then one cosine to a floor (fixes spec §9 item 27).

The reference code used ``CosineAnnealingWarmRestarts`` with ``T_0`` = 50 epochs and no warm-up,
despite naming the period ``warmup_steps``. Here the LR rises linearly from ``lr / warmup_steps``
to ``lr`` over ``warmup_steps`` optimizer steps, then follows half a cosine down to ``min_lr`` at
``total_steps`` and stays there.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the base LR after ``step`` completed optimizer steps.

    Args:
        step: optimizer steps taken so far (0 for the first step).
        warmup_steps: length of the linear warm-up (0: none).
        total_steps: step at which the cosine reaches its floor.
        min_ratio: ``min_lr / lr``, the floor of the multiplier.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int
) -> LambdaLR:
    """A :class:`LambdaLR` stepping :func:`warmup_cosine_factor` once per optimizer step.

    Raises:
        ValueError: if the schedule is empty or ``min_lr`` exceeds ``lr``.
    """
    if total_steps < 1:
        raise ValueError(f"the schedule needs total_steps >= 1, got {total_steps}")
    if not 0 <= min_lr <= lr:
        raise ValueError(f"min_lr must lie in [0, lr={lr}], got {min_lr}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    factor = functools.partial(
        warmup_cosine_factor, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_lr / lr
    )
    return LambdaLR(optimizer, lr_lambda=factor)
