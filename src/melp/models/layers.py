"""Shared building blocks: the attentional pooler of spec §1.3, gradient scaling of §1.2, fp32 norms, attention.

Dims: B batch, Q queries, N context tokens, D width, H heads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input dtype (stable under bf16 autocast)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class _GradMultiplyFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def grad_multiply(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``scale`` (fairseq ``GradMultiply``)."""
    if scale == 1.0:
        return x
    return _GradMultiplyFn.apply(x, scale)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, D) → (B, H, N, D / H)."""
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, D / H) → (B, N, D)."""
    b, h, n, dh = x.shape
    return x.transpose(1, 2).reshape(b, n, h * dh)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` (B, H, L, Dh) → (B, H, L, Dh), computed in float32 on the CPU.

    On the CPU, bf16 autocast would run it in bf16, whose backward pass (torch 2.13's CPU flash
    attention) is ~13× slower than float32's and made a third of a ``tiny`` training step
    (docs/performance.md, "Speed per step"); the result is cast back to the inputs' dtype. On CUDA it
    runs as given. ``kwargs`` are those of ``scaled_dot_product_attention``.
    """
    if q.device.type != "cpu" or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kwargs)
    return out.to(q.dtype)


class AttentionalPooler(nn.Module):
    """Learned queries cross-attending to a context (open_clip's ``AttentionalPooler``, spec §1.3).

    Queries (standard-normal init) and context each go through a LayerNorm; one multi-head
    attention follows, with no residual and no MLP. The output is (B, Q, d_model).
    """

    def __init__(self, *, d_model: int, context_dim: int, n_queries: int, heads: int = 8) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"pooler width {d_model} is not divisible by its {heads} heads")
        self.heads = heads
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.ln_q = LayerNormFp32(d_model)
        self.ln_k = LayerNormFp32(context_dim)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(context_dim, d_model)
        self.v_proj = nn.Linear(context_dim, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(
        self, context: torch.Tensor, *, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pool ``context`` (B, N, context_dim).

        Returns:
            The pooled queries (B, Q, d_model) and, if ``return_weights``, the head-averaged
            attention weights (B, Q, N) (each row sums to 1), else None.
        """
        ctx = self.ln_k(context)  # (B, N, C)
        q = self.ln_q(self.query).unsqueeze(0).expand(ctx.shape[0], -1, -1)  # (B, Q, D)
        q = split_heads(self.q_proj(q), self.heads)  # (B, H, Q, Dh)
        k = split_heads(self.k_proj(ctx), self.heads)  # (B, H, N, Dh)
        v = split_heads(self.v_proj(ctx), self.heads)  # (B, H, N, Dh)
        if not return_weights:
            out = attention(q, k, v)  # (B, H, Q, Dh)
            return self.out_proj(merge_heads(out)), None
        attn = torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5, dim=-1)  # (B, H, Q, N)
        out = attn @ v  # (B, H, Q, Dh)
        return self.out_proj(merge_heads(out)), attn.mean(dim=1)
