"""Activation checkpointing of the ECG transformer layers and the text BERT (``training.checkpoint_activations``).

Each checkpointed layer keeps only its input in the forward pass and recomputes its activations in
the backward pass (``torch.utils.checkpoint`` without re-entrancy, RNG state preserved, so dropout
draws the same masks and the gradients equal those of the plain model). It trades about one
extra forward pass of those layers (≈ 25–30 % more FLOPs for the paper preset) for memory that no longer grows with the
layers' activations, which is what lets batch 256 per GPU fit (see docs/training.md).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def enable_activation_checkpointing(model: Any) -> None:
    """Checkpoint every ECG transformer layer and every BERT layer of a :class:`~melp.models.MELP`."""
    model.ecg_encoder.checkpoint_layers = True
    bert, kwargs = model.text.bert, {"use_reentrant": False}
    if hasattr(bert, "activation_checkpointing_enable"):  # transformers >= 5.x renamed it
        bert.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        bert.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    logger.info(
        "activation checkpointing: %d ECG transformer layers, %d text layers",
        len(model.ecg_encoder.layers),
        model.text.bert.config.num_hidden_layers,
    )
