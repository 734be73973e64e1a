"""The CoCa multimodal caption decoder of spec §2.2, with a key/value cache for generation.

Each layer is a pre-LN causal self-attention block then a pre-LN cross-attention block over the
ECG tokens, each followed by an MLP. A final LayerNorm and a vocabulary projection initialised
N(0, width^-0.5) close it (the reference left that projection uninitialised, spec §9 item 10).
There is no positional embedding: order comes from the causal text states fed in.

Dims: B batch, L tokens, M ECG tokens, W width, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from melp.models.config import DecoderConfig
from melp.models.layers import LayerNormFp32, attention, merge_heads, split_heads


@dataclass
class DecoderCache:
    """Per-layer self-attention keys/values (grow by one step each call) and cross-attention ones (fixed)."""

    self_kv: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` of the growing self-attention cache (beam search)."""
        self.self_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.self_kv]


class Attention(nn.Module):
    """Multi-head attention through ``scaled_dot_product_attention`` (:func:`~melp.models.layers.attention`)."""

    def __init__(self, *, width: int, heads: int, out_std: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"decoder width {width} is not divisible by its {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.kv_proj = nn.Linear(width, 2 * width)
        self.out_proj = nn.Linear(width, width)
        nn.init.normal_(self.q_proj.weight, std=width**-0.5)
        nn.init.normal_(self.kv_proj.weight, std=width**-0.5)
        nn.init.normal_(self.out_proj.weight, std=out_std)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, W) → keys and values (B, heads, N, W / heads)."""
        k, v = self.kv_proj(x).chunk(2, dim=-1)
        return split_heads(k, self.heads), split_heads(v, self.heads)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool) -> torch.Tensor:
        """Queries from ``x`` (B, L, W) attend to ``k``/``v`` (B, h, N, W / h); causal aligns the last L keys."""
        q = split_heads(self.q_proj(x), self.heads)  # (B, h, L, Dh)
        n_q, n_k = q.shape[2], k.shape[2]
        mask, is_causal = None, causal and n_q > 1 and n_q == n_k
        if causal and 1 < n_q < n_k:
            mask = torch.ones(n_q, n_k, dtype=torch.bool, device=x.device).tril(n_k - n_q)  # (L, N)
        out = attention(q, k, v, attn_mask=mask, is_causal=is_causal)  # (B, h, L, Dh)
        return self.out_proj(merge_heads(out))


def _mlp(width: int, ratio: float, out_std: float) -> nn.Sequential:
    """Linear → GELU → Linear, initialised as open_clip's transformer MLP."""
    fc, proj = nn.Linear(width, int(width * ratio)), nn.Linear(int(width * ratio), width)
    nn.init.normal_(fc.weight, std=(2 * width) ** -0.5)
    nn.init.normal_(proj.weight, std=out_std)
    return nn.Sequential(fc, nn.GELU(), proj)


class DecoderLayer(nn.Module):
    """Causal self-attention block then cross-attention block, each ``x + f(LN(x))`` with an MLP."""

    def __init__(self, *, width: int, heads: int, mlp_ratio: float, out_std: float) -> None:
        super().__init__()
        self.ln_self = LayerNormFp32(width)
        self.self_attn = Attention(width=width, heads=heads, out_std=out_std)
        self.ln_self_mlp = LayerNormFp32(width)
        self.self_mlp = _mlp(width, mlp_ratio, out_std)
        self.ln_cross = LayerNormFp32(width)
        self.ln_cross_kv = LayerNormFp32(width)
        self.cross_attn = Attention(width=width, heads=heads, out_std=out_std)
        self.ln_cross_mlp = LayerNormFp32(width)
        self.cross_mlp = _mlp(width, mlp_ratio, out_std)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        past_kv: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(B, L, W) → (B, L, W) and this layer's self-attention keys/values including ``past_kv``."""
        h = self.ln_self(x)
        k, v = self.self_attn.keys_values(h)  # (B, h, L, Dh)
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        x = x + self.self_attn(h, k, v, causal=True)
        x = x + self.self_mlp(self.ln_self_mlp(x))
        x = x + self.cross_attn(self.ln_cross(x), *memory_kv, causal=False)
        x = x + self.cross_mlp(self.ln_cross_mlp(x))
        return x, (k, v)


class CaptionDecoder(nn.Module):
    """Text states (B, L, H) + ECG tokens (B, M, W) → next-token logits (B, L, V)."""

    def __init__(self, *, config: DecoderConfig, input_dim: int, vocab_size: int) -> None:
        super().__init__()
        width = config.width
        # open_clip's init: residual-branch outputs N(0, W^-0.5 (2 n_layers)^-0.5), attention N(0, W^-0.5)
        out_std = width**-0.5 * (2 * max(config.layers, 1)) ** -0.5
        self.in_proj: nn.Module = nn.Identity() if input_dim == width else nn.Linear(input_dim, width)
        self.blocks = [
            DecoderLayer(width=width, heads=config.heads, mlp_ratio=config.mlp_ratio, out_std=out_std)
            for _ in range(config.layers)
        ]
        self.layers = nn.ModuleList(self.blocks)
        self.ln_final = LayerNormFp32(width)
        self.text_projection = nn.Linear(width, vocab_size, bias=False)
        nn.init.normal_(self.text_projection.weight, std=width**-0.5)

    def memory_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer cross-attention keys/values of the ECG tokens (B, M, W), computed once per ECG."""
        return [layer.cross_attn.keys_values(layer.ln_cross_kv(memory)) for layer in self.blocks]

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor, *, cache: DecoderCache | None = None) -> torch.Tensor:
        """Logits (B, L, V) for text states ``tokens`` (B, L, H) given ECG tokens ``memory`` (B, M, W).

        With ``cache``, ``tokens`` are the new positions only; the cache is filled on the first call
        and extended in place on every call.
        """
        x = self.in_proj(tokens)  # (B, L, W)
        if cache is not None and not cache.cross_kv:
            cache.cross_kv = self.memory_kv(memory)
        memory_kv = cache.cross_kv if cache is not None else self.memory_kv(memory)
        new_self_kv = []
        for i, layer in enumerate(self.blocks):
            past = cache.self_kv[i] if cache is not None and cache.self_kv else None
            x, kv = layer(x, memory_kv[i], past)
            new_self_kv.append(kv)
        if cache is not None:
            cache.self_kv = new_self_kv
        return self.text_projection(self.ln_final(x))
