"""The wav2vec2-style ECG encoder of spec §1.2, built without the unused pretraining heads.

Conv feature extractor (4 × kernel 2 / stride 2, a 16× downsample; ``conv_kernel`` widens the
kernel) → LayerNorm + projection → convolutional positional encoding → post-LN transformer. No
quantiser, no ``final_proj``, no mask embedding: every parameter is used, so DDP needs no
``find_unused_parameters`` (spec §9 item 23).

Dims: B batch, C leads, T samples, N = T // 16 frames, D width.

Parameter names differ from the reference's (fairseq-signals ``Wav2Vec2CMSCModel``);
:mod:`melp.models.reference` maps one to the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

from melp.models.config import ECGEncoderConfig, ECGShape
from melp.models.layers import attention, grad_multiply, merge_heads, split_heads

#: Samples per output frame of the conv feature extractor (4 stride-2 convolutions).
DOWNSAMPLE = 16


class ConvFeatureExtractor(nn.Module):
    """Four bias-free Conv1d(k, s=2) blocks; GroupNorm (one group per channel, fp32) on the first.

    ``kernel`` 2 is the paper's (no overlap, no padding). A larger even kernel pads ``(kernel - 2) / 2``
    on each side, so every block still halves the length with floor and frame ``j`` stays centred
    on samples ``[16 j, 16 (j + 1))``, while its receptive field grows from 16 samples to
    ``1 + 15 (kernel - 1)`` (46 for kernel 4).
    """

    def __init__(self, *, in_channels: int, channels: int, kernel: int = 2) -> None:
        super().__init__()
        pad = (kernel - 2) // 2
        convs = [
            nn.Conv1d(in_channels if i == 0 else channels, channels, kernel, stride=2, padding=pad, bias=False)
            for i in range(4)
        ]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight)
        self.convs = nn.ModuleList(convs)
        self.norm = nn.GroupNorm(channels, channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, channels, T // 16)."""
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i == 0:
                x = F.group_norm(x.float(), self.norm.num_groups, self.norm.weight, self.norm.bias, self.norm.eps).to(
                    x.dtype
                )
            x = F.gelu(x)
        return x


class ConvPositionalEncoding(nn.Module):
    """Grouped Conv1d with weight norm over the kernel axis, SamePad, GELU (fairseq ``pos_conv``)."""

    def __init__(self, *, width: int, kernel: int, groups: int) -> None:
        super().__init__()
        conv = nn.Conv1d(width, width, kernel_size=kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel * width)))
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D) positional signal (to be added to the input)."""
        y = self.conv(x.transpose(1, 2))  # (B, D, N + trim)
        if self.trim:
            y = y[..., : -self.trim]
        return F.gelu(y).transpose(1, 2)


class EncoderLayer(nn.Module):
    """One post-LN transformer layer (fairseq ``TransformerSentenceEncoderLayer``, ``layer_norm_first=False``)."""

    def __init__(self, *, width: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)
        self.attn_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, width)
        self.ffn_norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.reset_attention_parameters()

    @torch.no_grad()
    def reset_attention_parameters(self) -> None:
        """The reference's ``MultiHeadAttention.reset_parameters``: each of the q/k/v blocks of the fused
        weight Xavier-uniform with gain 1/sqrt(2) (as three separate D × D matrices), ``out_proj``
        Xavier-uniform with a zero bias; the q/k/v biases keep PyTorch's default (uniform ±D^-0.5)."""
        for block in self.qkv.weight.chunk(3, dim=0):
            nn.init.xavier_uniform_(block, gain=2**-0.5)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D)."""
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))  # (B, H, N, Dh) each
        p = self.attention_dropout if self.training else 0.0
        attn = merge_heads(attention(q, k, v, dropout_p=p))  # (B, N, D)
        x = self.attn_norm(x + self.dropout(self.out_proj(attn)))
        h = F.gelu(self.fc1(x).float()).to(x.dtype)  # GELU in fp32, as the reference
        return self.ffn_norm(x + self.dropout(self.fc2(h)))


class ECGEncoder(nn.Module):
    """ECG (B, C, T) → frame tokens (B, T // 16, D), spec §1.2 (``mask=False, features_only=True``)."""

    def __init__(self, *, config: ECGEncoderConfig) -> None:
        super().__init__()
        shape: ECGShape = config.shape()
        self.in_leads = config.in_leads
        self.width = shape.width
        self.feature_grad_mult = config.feature_grad_mult
        self.feature_extractor = ConvFeatureExtractor(
            in_channels=config.in_leads, channels=shape.conv_channels, kernel=shape.conv_kernel
        )
        self.layer_norm = nn.LayerNorm(shape.conv_channels)
        self.post_extract_proj = nn.Linear(shape.conv_channels, shape.width)
        self.dropout_input = nn.Dropout(config.dropout)
        self.pos_conv = ConvPositionalEncoding(
            width=shape.width, kernel=shape.conv_pos_kernel, groups=shape.conv_pos_groups
        )
        self.encoder_norm = nn.LayerNorm(shape.width)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(
                width=shape.width,
                heads=shape.heads,
                ffn_dim=shape.ffn_dim,
                dropout=config.dropout,
                attention_dropout=config.attention_dropout,
            )
            for _ in range(shape.layers)
        )
        if config.init == "bert":
            self.layers.apply(_init_bert_params)
        elif config.init != "default":
            raise ValueError(f"unknown ECG encoder init {config.init!r}; expected 'default' or 'bert'")
        #: recompute each transformer layer in the backward pass instead of storing its activations
        #: (``melp.train.activation_checkpointing``); training with gradients only
        self.checkpoint_layers = False

    def check_input(self, ecg: torch.Tensor) -> None:
        """Raise ValueError unless ``ecg`` is a finite float tensor (B, in_leads, T) with T ≥ 16."""
        if ecg.ndim != 3 or ecg.shape[1] != self.in_leads:
            raise ValueError(f"expected an ECG batch of shape (B, {self.in_leads}, T), got {tuple(ecg.shape)}")
        if ecg.shape[2] < DOWNSAMPLE:
            raise ValueError(f"ECG has {ecg.shape[2]} samples; at least {DOWNSAMPLE} are needed (one frame)")
        if not ecg.is_floating_point():
            raise ValueError(f"expected a floating-point ECG tensor, got {ecg.dtype}")
        if ecg.device.type != "meta" and not bool(torch.isfinite(ecg).all()):
            raise ValueError("ECG batch contains NaN or infinite values")

    def forward(self, ecg: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, N, D) with N = T // 16 (5000 samples → 312 frames, 1000 → 62).

        As in the reference, the whole input enters the conv stack: each stride-2 block halves the
        length with floor (1000 → 500 → 250 → 125 → 62), so the first block's GroupNorm statistics
        cover all of its T // 2 output steps, including those no final frame covers.
        """
        self.check_input(ecg)
        x = grad_multiply(self.feature_extractor(ecg), self.feature_grad_mult)  # (B, C', N)
        x = self.layer_norm(x.transpose(1, 2))  # (B, N, C')
        x = self.dropout_input(self.post_extract_proj(x))  # (B, N, D)
        x = x + self.pos_conv(x)
        x = self.dropout(self.encoder_norm(x))
        recompute = self.checkpoint_layers and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            x = checkpoint(layer, x, use_reentrant=False) if recompute else layer(x)  # type: ignore[assignment]
        return x


def _init_bert_params(module: nn.Module) -> None:
    """fairseq ``init_bert_params``: Linear weights N(0, 0.02), biases 0 (transformer layers only)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_ecg_encoder(size: str | ECGEncoderConfig = "small") -> ECGEncoder:
    """The ECG tower alone, for parameter counts and embedding (``build_ecg_encoder("small")``).

    Args:
        size: a preset name (micro, tiny, small, base, large) or a full :class:`ECGEncoderConfig`.
    """
    config = size if isinstance(size, ECGEncoderConfig) else ECGEncoderConfig(size=size)  # type: ignore[arg-type]
    config.shape()
    return ECGEncoder(config=config)
