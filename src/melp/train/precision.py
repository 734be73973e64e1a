"""Where bf16 autocast pays, and the autocast context of a run's ``precision`` (training and evaluation)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def bf16_autocast_available(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: every CUDA device, and CPUs with AMX tiles.

    A CPU without AMX has no bf16 matrix unit, and bf16 autocast makes a step slower there than fp32
    (docs/performance.md, "Speed per step").
    """
    return device.type == "cuda" or (device.type == "cpu" and torch.cpu._is_amx_tile_supported())


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast when ``precision == "bf16"`` and :func:`bf16_autocast_available`; fp32 otherwise."""
    if precision == "bf16" and bf16_autocast_available(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
