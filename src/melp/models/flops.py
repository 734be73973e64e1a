"""Matmul FLOPs of a MELP training step, counted analytically from the config (for model FLOPs utilisation).

Every matrix product and convolution of the forward pass is listed with its FLOPs (2 per
multiply-add) and the factor its backward pass costs: 2 when both operands need a gradient (a
trainable layer inside the graph, attention products, loss products), 1 when only one does (the
first convolution, whose input is the ECG; a frozen text layer, whose input still needs its
gradient because the embeddings train), 0 when neither does. Element-wise work (norms, softmax,
GELU, masking, segment means) is not counted; it is a few per cent of the total for the paper
preset, and MFU conventionally counts matmuls only. The count agrees with
``torch.utils.flop_counter.FlopCounterMode`` to 1 % (``tests/test_flops.py``), once the counter's
overcount of a grouped convolution's weight gradient (it multiplies by all input channels, not
those of one group, so the positional convolution's is counted ``groups`` times) is taken out.

The common approximation "training = 3 × forward" is ``FlopCount.forward * 3``; the exact backward
here is a little below it (frozen text layers, the first convolution).

Dims: B batch, N ECG frames (T // 16), D ECG width, L collated text length ([BOS] … [SEP]),
H text width, S sentences, Q beat queries, M caption queries, W decoder width, V vocabulary, E embed_dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from melp.models.config import MELPConfig
from melp.models.ecg_encoder import DOWNSAMPLE


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one training step on a batch.

    Attributes:
        forward: forward-pass matmul FLOPs.
        backward: backward-pass matmul FLOPs.
        by_component: forward FLOPs per component (``ecg``, ``poolers``, ``text``, ``decoder``, ``losses``).
    """

    forward: float
    backward: float
    by_component: dict[str, float] = field(default_factory=dict)

    @property
    def training(self) -> float:
        """Forward + backward."""
        return self.forward + self.backward


class _Counter:
    def __init__(self) -> None:
        self.forward = 0.0
        self.backward = 0.0
        self.by_component: dict[str, float] = {}

    def add(self, component: str, flops: float, grad_factor: float = 2.0) -> None:
        self.forward += flops
        self.backward += grad_factor * flops
        self.by_component[component] = self.by_component.get(component, 0.0) + flops


def _linear(rows: float, d_in: int, d_out: int) -> float:
    return 2.0 * rows * d_in * d_out


def melp_training_flops(
    config: MELPConfig, *, batch_size: int, text_length: int, n_sentences: int, ecg_samples: int | None = None
) -> FlopCount:
    """Matmul FLOPs of forward + backward of ``MELP`` and ``MELPLoss`` on one batch.

    Args:
        config: the model config (``text.bert_config`` must be filled, as in any built model).
        batch_size: pairs in the batch (the losses grow with its square).
        text_length: collated token length L of the batch ([BOS] and [SEP] included).
        n_sentences: padded sentence count S of the batch.
        ecg_samples: samples per lead (default ``fs × seconds``).

    Returns:
        The forward and backward FLOPs and the forward FLOPs per component.
    """
    bert = config.text.bert_config
    if not bert:
        raise ValueError("config.text.bert_config is empty; count the FLOPs of a built model's config")
    if min(batch_size, text_length, n_sentences) < 1:
        raise ValueError(
            f"batch_size, text_length and n_sentences must be >= 1, got {batch_size}, {text_length}, {n_sentences}"
        )
    b = float(batch_size)
    shape = config.ecg.shape()
    samples = round(config.fs * config.seconds) if ecg_samples is None else ecg_samples
    n = samples // DOWNSAMPLE
    d, f, c = shape.width, shape.ffn_dim, shape.conv_channels
    count = _Counter()

    # ECG tower: 4 convolutions of stride 2 (the first one's input needs no gradient), projection, positional conv
    length, c_in = n * DOWNSAMPLE, config.ecg.in_leads
    for i in range(4):
        length //= 2
        count.add("ecg", 2.0 * b * length * c * c_in * shape.conv_kernel, 1.0 if i == 0 else 2.0)
        c_in = c
    count.add("ecg", _linear(b * n, c, d))
    k, groups = shape.conv_pos_kernel, shape.conv_pos_groups
    count.add("ecg", 2.0 * b * (n + 1 - k % 2) * d * (d // groups) * k)
    for _ in range(shape.layers):
        count.add("ecg", _linear(b * n, d, 3 * d) + _linear(b * n, d, d) + 2 * _linear(b * n, d, f))
        count.add("ecg", 2 * 2.0 * b * n * n * d)  # QKᵀ and AV

    # poolers and the beat projection
    e, w, q, m = config.embed_dim, config.decoder.width, config.n_beat_queries, config.n_caption_queries
    for queries, width in ((q, e), (m, w)):
        count.add("poolers", 2 * _linear(b * queries, width, width) + 2 * _linear(b * n, d, width))
        count.add("poolers", 2 * 2.0 * b * queries * n * width)
    count.add("poolers", _linear(b * q, e, e))

    # text: causal BERT over L + 1 tokens (the appended global [CLS]); the first layers frozen
    h, fh, layers = int(bert["hidden_size"]), int(bert["intermediate_size"]), int(bert["num_hidden_layers"])
    t = text_length + 1
    for layer in range(layers):
        frozen = layer < config.text.n_frozen_layers
        count.add("text", 4 * _linear(b * t, h, h) + 2 * _linear(b * t, h, fh), 1.0 if frozen else 2.0)
        count.add("text", 2 * 2.0 * b * t * t * h)
    count.add("text", _linear(b, h, e) + _linear(b, e, e) + _linear(b * n_sentences, h, e))

    # caption decoder over the L - 1 input positions, cross-attending to M ECG tokens
    lt, fd, vocab = text_length - 1, int(w * config.decoder.mlp_ratio), int(bert["vocab_size"])
    if h != w:
        count.add("decoder", _linear(b * lt, h, w))
    for _ in range(config.decoder.layers):
        self_attn = 4 * _linear(b * lt, w, w) + 2 * 2.0 * b * lt * lt * w
        cross = 2 * _linear(b * lt, w, w) + 2 * _linear(b * m, w, w) + 2 * 2.0 * b * lt * m * w
        count.add("decoder", self_attn + cross + 4 * _linear(b * lt, w, fd))
    count.add("decoder", _linear(b * lt, w, vocab))

    # losses: CLIP logits (both directions); local loss scores, Gram matrices, Gram × attention
    s = float(n_sentences)
    count.add("losses", 2 * 2.0 * b * b * e)
    count.add("losses", 2.0 * b * q * s * b * e + 2.0 * b * q * q * e + 2.0 * b * q * q * s * b)
    return FlopCount(forward=count.forward, backward=count.backward, by_component=count.by_component)
