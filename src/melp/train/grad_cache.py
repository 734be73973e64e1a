"""Exact gradient accumulation (``training.grad_accum_mode=exact``): the losses see the whole window.

With plain accumulation each micro-batch's CLIP and local losses contrast it with itself only, so
``grad_accum`` micro-batches of 64 give the gradients of 64-pair contrastive losses, not of one
batch of 64 × ``grad_accum``. This is GradCache (Gao et al., 2021) applied to MELP:

1. every micro-batch is embedded **without** gradients; its representations (ECG and text
   latents (b, E), beat embeddings (b, Q, E), sentence embeddings (b, S, E) and their mask) are
   kept, with the RNG state it started from, and the caption cross-entropy summed over its tokens;
2. the CLIP and local losses are computed on the concatenated representations (leaves with
   gradients, sentences padded to the window's largest S, which is what one big batch does) and
   back-propagated to them and to the logit scale;
3. each micro-batch is run again **with** gradients, from its saved RNG state (the same dropout
   masks), and back-propagates ``Σ ⟨∂L/∂r, r⟩`` over its representations plus its caption tokens'
   share of the window's mean caption loss.

The parameter gradients then equal those of one batch of the whole window (up to float rounding;
``tests/test_train_levers.py``), for the cost of one extra forward pass without gradients. Memory
is that of one micro-batch plus the representations of the window. Under DDP the CLIP loss gathers
the windows of all ranks, so the negatives are ``batch_size × grad_accum × world_size``.

Dims: B window pairs, b micro-batch pairs, Q beat queries, S sentences, E embed_dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F

from melp.losses import MELPLoss

#: outputs of the model whose gradients the window's CLIP and local losses supply
REPRESENTATIONS = ("ecg_latent", "text_latent", "beat_embs", "sentence_embs")


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device: torch.device, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _pad_sentences(x: torch.Tensor, s_max: int) -> torch.Tensor:
    """(b, S, ...) → (b, s_max, ...) zero-padded (False for a bool mask) along the sentence axis."""
    pad = [0, 0] * (x.dim() - 2) + [0, s_max - x.shape[1]]
    return F.pad(x, pad)


def exact_accumulation_step(
    *,
    forward: Callable[..., dict[str, torch.Tensor]],
    loss_fn: MELPLoss,
    inputs: Sequence[dict[str, torch.Tensor]],
    sync: Callable[[bool], AbstractContextManager[Any]],
    autocast: Callable[[], AbstractContextManager[Any]],
    any_nonfinite: Callable[[bool], bool],
) -> dict[str, torch.Tensor] | None:
    """Accumulate into ``.grad`` the gradients of the MELP loss over the whole window of ``inputs``.

    Args:
        forward: the (possibly DDP-wrapped or compiled) model's forward.
        loss_fn: the run's :class:`~melp.losses.MELPLoss` (its weights and distributed settings).
        inputs: the micro-batches on the device (``ecg``, ``input_ids``, ``attention_mask``).
        sync: ``sync(last)`` is the context of a backward pass (DDP's ``no_sync`` unless ``last``).
        autocast: the run's precision context.
        any_nonfinite: whether a local flag is true on any rank (all ranks skip together).

    Returns:
        The window's ``loss``, ``clip_loss``, ``caption_loss`` and ``local_loss`` (detached), or
        ``None`` when the loss is not finite on some rank (then no gradient was accumulated).
    """
    device = inputs[0]["ecg"].device
    states, cached = [], []
    caption_sum = torch.zeros((), device=device)
    caption_count = torch.zeros((), dtype=torch.long, device=device)
    log_scale_value = torch.zeros((), device=device)
    with torch.no_grad():
        for batch in inputs:
            states.append(_rng_state(device))
            with autocast():
                out = forward(**batch)
            total, count = loss_fn.caption.token_sum(out["caption_logits"], out["caption_labels"])
            caption_sum, caption_count = caption_sum + total, caption_count + count
            cached.append({k: out[k].detach() for k in (*REPRESENTATIONS, "sentence_mask")})
            log_scale_value = out["logit_scale"].detach()
    s_max = max(c["sentence_embs"].shape[1] for c in cached)
    leaves = {
        k: torch.cat([_pad_sentences(c[k], s_max) if k == "sentence_embs" else c[k] for c in cached])
        .float()
        .requires_grad_()
        for k in REPRESENTATIONS
    }  # (B, E), (B, E), (B, Q, E), (B, S, E)
    mask = torch.cat([_pad_sentences(c["sentence_mask"], s_max) for c in cached])  # (B, S)
    log_scale = log_scale_value.clone().requires_grad_()
    n_tokens = caption_count.clamp_min(1)
    clip = loss_fn.clip(leaves["ecg_latent"], leaves["text_latent"], log_scale.exp())
    local = loss_fn.local(leaves["beat_embs"], leaves["sentence_embs"], mask)
    caption = caption_sum / n_tokens
    contrastive = loss_fn.clip_weight * clip + loss_fn.local_weight * local
    loss = contrastive + loss_fn.caption_weight * caption
    if any_nonfinite(not bool(torch.isfinite(loss.detach()))):
        return None
    contrastive.backward()
    sizes = [c["ecg_latent"].shape[0] for c in cached]
    grads = {k: leaf.grad.split(sizes) if leaf.grad is not None else None for k, leaf in leaves.items()}
    scale_grad = log_scale.grad if log_scale.grad is not None else torch.zeros_like(log_scale)
    for i, batch in enumerate(inputs):
        last = i == len(inputs) - 1
        _set_rng_state(device, states[i])
        with sync(last):
            with autocast():
                out = forward(**batch)
            total, _ = loss_fn.caption.token_sum(out["caption_logits"], out["caption_labels"])
            surrogate = loss_fn.caption_weight * total / n_tokens
            for key, grad in grads.items():
                if grad is not None:
                    rep = out[key].float()
                    surrogate = surrogate + (rep * grad[i][:, : rep.shape[1]]).sum()
            if last:  # the logit scale's gradient, once per window
                surrogate = surrogate + (out["logit_scale"] * scale_grad).sum()
            surrogate.backward()
    return {
        "loss": loss.detach(),
        "clip_loss": clip.detach(),
        "caption_loss": caption.detach(),
        "local_loss": local.detach(),
    }
