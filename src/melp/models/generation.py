"""Report generation (spec §2.3, fixes of spec §9 items 11, 12, 14): greedy, beam, top-k, top-p.

Beam search ranks hypotheses by summed log-probabilities (not raw logits), the model runs in eval
mode under ``no_grad``, and both halves of the captioner are cached: the causal text encoder's
per-layer keys/values (Hugging Face cache) and the decoder's self-attention keys/values, with the
ECG cross-attention keys/values computed once. Every step then costs one token, not the prefix.
Bookkeeping is batched: no Python loop over samples or beams.

Special tokens other than [SEP] are never generated. Sequences follow the collator's layout: ``[BOS] w1 … [SEP] [PAD] …``; lengths count [BOS].
Dims: B batch, K beams, V vocabulary, t current length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F

from melp.models.decoder import DecoderCache

if TYPE_CHECKING:
    from melp.models.melp import MELP


@dataclass
class GenerationConfig:
    """Decoding settings.

    Attributes:
        method: beam, greedy, top_k or top_p.
        max_length: longest output, [BOS] and [SEP] included.
        min_length: [SEP] cannot be chosen while the sequence ([BOS] included) is shorter than this.
        num_beams: beams per ECG (beam search).
        top_k, top_p: sampling filters; ``temperature`` divides the logits before sampling.
        length_penalty: beam scores are sum log p / (generated tokens) ** length_penalty.
        use_cache: reuse keys/values (False recomputes the whole prefix every step).
    """

    method: Literal["beam", "greedy", "top_k", "top_p"] = "beam"
    max_length: int = 64
    min_length: int = 5
    num_beams: int = 6
    top_k: int = 10
    top_p: float = 0.9
    temperature: float = 1.0
    length_penalty: float = 1.0
    use_cache: bool = True

    def validate(self, vocab_size: int) -> None:
        """Raise ValueError on settings that cannot work."""
        if self.method not in ("beam", "greedy", "top_k", "top_p"):
            raise ValueError(f"unknown generation method {self.method!r}; expected beam, greedy, top_k or top_p")
        if not self.max_length >= 2:
            raise ValueError(f"max_length must be at least 2 ([BOS] and one token), got {self.max_length}")
        if self.num_beams < 1 or 2 * self.num_beams > vocab_size:
            raise ValueError(f"num_beams must be in [1, vocab_size / 2 = {vocab_size // 2}], got {self.num_beams}")
        if self.top_k < 1 or not 0.0 < self.top_p <= 1.0 or self.temperature <= 0.0:
            raise ValueError(
                f"need top_k ≥ 1, 0 < top_p ≤ 1, temperature > 0; got {self.top_k}, {self.top_p}, {self.temperature}"
            )


class _Stepper:
    """Next-token log-probabilities for growing sequences, with or without key/value caches."""

    def __init__(self, model: MELP, memory: torch.Tensor, *, use_cache: bool) -> None:
        self.text, self.decoder = model.text_tower("generation")
        self.memory = memory  # (B', M, W)
        self.use_cache = use_cache
        self.text_cache: Any = None
        self.decoder_cache = DecoderCache()

    def log_probs(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B', t) sequences → (B', V) fp32 log-probabilities of the next token."""
        if not self.use_cache:
            states, _ = self.text.step(seqs)  # (B', t, H)
            logits = self.decoder(states, self.memory)
        else:
            new = seqs if self.text_cache is None else seqs[:, -1:]
            states, self.text_cache = self.text.step(new, self.text_cache)  # (B', l, H)
            logits = self.decoder(states, self.memory, cache=self.decoder_cache)
        return F.log_softmax(logits[:, -1].float(), dim=-1)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` of the caches (beam search)."""
        if self.use_cache:
            self.text_cache.reorder_cache(index)
            self.decoder_cache.reorder(index)


@torch.no_grad()
def generate(
    model: MELP, ecg: torch.Tensor, *, config: GenerationConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Token ids (B, ≤ max_length) for ECGs (B, 12, T); the model is in eval mode meanwhile."""
    text, _ = model.text_tower("generation")
    config.validate(text.bert.config.vocab_size)
    if config.max_length > model.config.text.max_length:
        raise ValueError(
            f"max_length={config.max_length} exceeds the model's text.max_length={model.config.text.max_length}"
        )
    was_training = model.training
    model.eval()
    try:
        memory = model.encode_ecg(ecg, with_attention=False)["ecg_tokens"]  # (B, M, W)
        if config.method == "beam":
            return _beam_search(model, memory, config)
        return _sample(model, memory, config, generator)
    finally:
        model.train(was_training)


def _constrain(log_probs: torch.Tensor, length: int, config: GenerationConfig, model: MELP) -> torch.Tensor:
    """Forbid special tokens other than [SEP], and [SEP] itself while ``length < min_length``."""
    text_cfg = model.config.text
    banned = [i for i in text_cfg.special_token_ids if i != text_cfg.eos_token_id or length < config.min_length]
    log_probs[:, banned] = float("-inf")
    return log_probs


def _pick(log_probs: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None) -> torch.Tensor:
    """(B, V) → (B,) next tokens by argmax, or by sampling after the top-k / top-p filter."""
    if config.method == "greedy":
        return log_probs.argmax(dim=-1)
    logits = log_probs / config.temperature
    if config.method == "top_k":
        kth = logits.topk(min(config.top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    else:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cum - sorted_logits.softmax(dim=-1) >= config.top_p  # keep the smallest set reaching top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


def _sample(
    model: MELP, memory: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Greedy / top-k / top-p decoding; finished rows are padded."""
    text_cfg = model.config.text
    b = memory.shape[0]
    seqs = torch.full((b, 1), text_cfg.bos_token_id, dtype=torch.long, device=memory.device)
    finished = torch.zeros(b, dtype=torch.bool, device=memory.device)
    stepper = _Stepper(model, memory, use_cache=config.use_cache)
    while seqs.shape[1] < config.max_length and not bool(finished.all()):
        log_probs = _constrain(stepper.log_probs(seqs), seqs.shape[1], config, model)
        token = _pick(log_probs, config, generator).masked_fill(finished, text_cfg.pad_token_id)  # (B,)
        seqs = torch.cat([seqs, token.unsqueeze(1)], dim=1)
        finished |= token == text_cfg.eos_token_id
    return seqs


def _beam_search(model: MELP, memory: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Batched beam search on summed log-probabilities; stops once every ECG has K finished beams."""
    text_cfg = model.config.text
    eos, pad = text_cfg.eos_token_id, text_cfg.pad_token_id
    b, k, device = memory.shape[0], config.num_beams, memory.device
    stepper = _Stepper(model, memory.repeat_interleave(k, dim=0), use_cache=config.use_cache)
    seqs = torch.full((b * k, 1), text_cfg.bos_token_id, dtype=torch.long, device=device)  # (B K, t)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand from the first only
    done_scores = torch.full((b, k), float("-inf"), device=device)  # normalised scores of finished beams
    done_seqs = torch.full((b, k, config.max_length), pad, dtype=torch.long, device=device)
    rank = torch.arange(2 * k, device=device)
    base = torch.arange(b, device=device).unsqueeze(1) * k  # (B, 1)
    while seqs.shape[1] < config.max_length:
        t = seqs.shape[1]
        log_probs = _constrain(stepper.log_probs(seqs), t, config, model)  # (B K, V)
        vocab = log_probs.shape[-1]
        cand = (scores.view(-1, 1) + log_probs).view(b, k * vocab)
        top, idx = cand.topk(2 * k, dim=1)  # (B, 2K)
        src, token = idx // vocab + base, idx % vocab  # (B, 2K) flat source beam, next token
        cand_seqs = torch.cat([seqs[src], token.unsqueeze(-1)], dim=-1)  # (B, 2K, t + 1)
        is_eos = token == eos
        full = done_scores.isfinite().all(dim=1, keepdim=True)  # (B, 1) ECGs already decided
        new_done = torch.where(is_eos & (rank < k) & ~full, top / t**config.length_penalty, float("-inf"))
        done_scores, done_seqs = _merge(done_scores, done_seqs, new_done, cand_seqs, k, pad)
        scores, keep = top.masked_fill(is_eos, float("-inf")).topk(k, dim=1)  # (B, K) best non-EOS
        seqs = cand_seqs.gather(1, keep.unsqueeze(-1).expand(-1, -1, t + 1)).view(b * k, t + 1)
        stepper.reorder(src.gather(1, keep).view(-1))
        if bool(done_scores.isfinite().all()):
            break
    else:  # max_length reached: undecided ECGs keep their running beams too
        undecided = ~done_scores.isfinite().all(dim=1, keepdim=True)  # (B, 1)
        final = torch.where(undecided, scores / (seqs.shape[1] - 1) ** config.length_penalty, float("-inf"))
        done_scores, done_seqs = _merge(done_scores, done_seqs, final, seqs.view(b, k, -1), k, pad)
    best = done_scores.argmax(dim=1)  # (B,)
    out = done_seqs[torch.arange(b, device=device), best]  # (B, max_length)
    length = int((out != pad).sum(dim=1).max().item())
    return out[:, :length]


def _merge(
    scores: torch.Tensor, seqs: torch.Tensor, new_scores: torch.Tensor, new_seqs: torch.Tensor, k: int, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the K best of finished beams (B, K) and candidates (B, C) (``-inf`` = not a candidate)."""
    padded = F.pad(new_seqs, (0, seqs.shape[-1] - new_seqs.shape[-1]), value=pad)  # (B, C, max_length)
    all_scores = torch.cat([scores, new_scores], dim=1)  # (B, K + C)
    all_seqs = torch.cat([seqs, padded], dim=1)
    best, order = all_scores.topk(k, dim=1)
    return best, all_seqs.gather(1, order.unsqueeze(-1).expand(-1, -1, seqs.shape[-1]))
