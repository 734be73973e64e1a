"""The causal BERT text encoder of spec §2.1: global [CLS] token, token states, sentence embeddings.

Any Hugging Face BERT runs as a causal encoder (``is_decoder=True``) through ``BertModel`` only, so
no unused MLM head is computed (spec §9 item 7). The global [CLS] token is appended after the
padding and always takes position id ``max_length``, so a report's embedding does not depend on
how far its batch was padded. Sentence embeddings are vectorised segment means (spec §9 item 4).

Dims: B batch, L tokens, H BERT width, S sentences, E embed_dim.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from melp.models.config import TextEncoderConfig

#: transformers renamed ``past_key_values`` to ``cache`` (5.x); use whichever this version has.
_CACHE_KW = "cache" if "cache" in inspect.signature(BertModel.forward).parameters else "past_key_values"


def check_token_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
    """Raise ValueError unless ids and mask are integer/bool tensors of the same (B, L) shape."""
    if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, L); got {tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    if input_ids.is_floating_point() or attention_mask.is_floating_point():
        raise ValueError("token ids and attention masks must be integer tensors (never cast ids through float)")


def word_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the report's word tokens, i.e. attended and not one of ``special_ids``."""
    return attention_mask.bool() & ~torch.isin(input_ids, special_ids)


def mean_pool(states: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """(B, H) mean of ``states`` (B, L, H) over the positions where ``words`` (B, L) is true (``pooling: mean``)."""
    return (states * words.unsqueeze(-1)).sum(1) / words.sum(1, keepdim=True).clamp_min(1)


class TextEncoder(nn.Module):
    """Causal BERT + global projection (H → E → E) + sentence projection (H → E)."""

    special_ids: torch.Tensor

    def __init__(self, *, config: TextEncoderConfig, embed_dim: int, bert: BertModel | None = None) -> None:
        super().__init__()
        if bert is None:
            if not config.bert_config:
                raise ValueError("TextEncoderConfig.bert_config is empty; build the model with MELP.from_text_model")
            bert = BertModel(BertConfig.from_dict({**config.bert_config, "is_decoder": True}), add_pooling_layer=False)
        _check_config(config, bert.config)
        self.bert = bert
        self.max_length = config.max_length
        self.cls_token_id = config.cls_token_id
        self.pooling = config.pooling
        self.delimiter_id = config.sentence_delimiter_id
        self.register_buffer(
            "special_ids", torch.tensor(sorted(set(config.special_token_ids)), dtype=torch.long), persistent=False
        )
        hidden = bert.config.hidden_size
        self.hidden_size = hidden
        self.proj = nn.Sequential(nn.Linear(hidden, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
        self.sent_proj = nn.Linear(hidden, embed_dim)
        for layer in self.bert.encoder.layer[: config.n_frozen_layers]:
            layer.requires_grad_(False)
        self.locked = config.locked
        if config.locked:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> TextEncoder:
        """Set the training mode; a locked encoder stays in eval mode (no dropout), as LiT's frozen tower."""
        return super().train(mode and not self.locked)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode a padded batch ``[BOS] w1 … wn [SEP] [PAD] …`` (B, L).

        Returns:
            ``text_latent`` (B, E) L2-normalised global embedding, ``token_embs`` (B, L, H) causal
            token states, ``sentence_embs`` (B, S, E) and ``sentence_mask`` (B, S) bool.
        """
        check_token_ids(input_ids, attention_mask)
        b, n = input_ids.shape
        if n > self.max_length:
            raise ValueError(f"token sequence of length {n} exceeds text.max_length={self.max_length}")
        ids = F.pad(input_ids.long(), (0, 1), value=self.cls_token_id)  # (B, L + 1)
        mask = F.pad(attention_mask.long(), (0, 1), value=1)  # (B, L + 1)
        positions = torch.arange(n + 1, device=ids.device)
        positions[-1] = self.max_length
        out = self.bert(input_ids=ids, attention_mask=mask, position_ids=positions.expand(b, -1))
        hidden = out.last_hidden_state  # (B, L + 1, H)
        token_embs = hidden[:, :-1]  # (B, L, H)
        words = self.word_mask(input_ids, attention_mask)  # (B, L)
        if self.pooling == "mean":
            pooled = mean_pool(token_embs, words)  # (B, H)
        else:
            pooled = hidden[:, -1]  # (B, H) the appended [CLS]
        text_latent = F.normalize(self.proj(pooled).float(), dim=-1)  # (B, E)
        sentence_embs, sentence_mask = self.sentence_embeddings(input_ids, words, token_embs)
        return {
            "text_latent": text_latent,
            "token_embs": token_embs,
            "sentence_embs": sentence_embs,
            "sentence_mask": sentence_mask,
        }

    def word_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: the report's word tokens, i.e. attended and not a special token."""
        return word_mask(input_ids, attention_mask, self.special_ids)

    def sentence_embeddings(
        self, input_ids: torch.Tensor, words: torch.Tensor, token_embs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean token state per sentence, projected: (B, S, E) and a (B, S) bool mask of non-empty sentences.

        A sentence ends with (and includes) the delimiter "."; text after the last "." forms one more
        sentence; a report without "." is one sentence. Special tokens are left out of the means.
        Sentences with no tokens are zero and masked, never dropped, so row b stays report b.
        ``words`` is :meth:`word_mask` of the batch.
        """
        b, n, h = token_embs.shape
        is_delim = (input_ids == self.delimiter_id).long()  # (B, L)
        segment = torch.cumsum(is_delim, dim=1) - is_delim  # (B, L) sentence index of each token
        n_sent = max(int(segment.masked_fill(~words, -1).max().item()) + 1, 1)
        rows = torch.arange(b, device=input_ids.device).unsqueeze(1) * n_sent
        index = (rows + segment).masked_fill(~words, b * n_sent).flatten()  # (B * L,), invalid → spare bucket
        sums = token_embs.new_zeros(b * n_sent + 1, h, dtype=torch.float32)
        sums.index_add_(0, index, token_embs.reshape(b * n, h).float())
        counts = torch.zeros(b * n_sent + 1, device=index.device).index_add_(0, index, words.flatten().float())
        means = (sums[:-1] / counts[:-1].clamp_min(1.0).unsqueeze(1)).view(b, n_sent, h)  # (B, S, H)
        mask = (counts[:-1] > 0).view(b, n_sent)  # (B, S)
        embs = self.sent_proj(means.to(token_embs.dtype)) * mask.unsqueeze(-1)  # (B, S, E)
        return embs, mask

    def step(self, input_ids: torch.Tensor, cache: Any | None = None) -> tuple[torch.Tensor, Any]:
        """Causal token states for generation, reusing BERT's key/value cache.

        Args:
            input_ids: (B, l) the new tokens (all tokens when ``cache`` is None). No padding.
            cache: the cache returned by the previous call, or None to start.

        Returns:
            The states of the new tokens (B, l, H) and the updated cache.
        """
        past = 0 if cache is None else cache.get_seq_length()
        positions = torch.arange(past, past + input_ids.shape[1], device=input_ids.device).expand(
            input_ids.shape[0], -1
        )
        out = self.bert(input_ids=input_ids, position_ids=positions, use_cache=True, **{_CACHE_KW: cache})
        return out.last_hidden_state, getattr(out, _CACHE_KW)


def _check_config(config: TextEncoderConfig, bert_config: Any) -> None:
    """Fail early on token ids or sizes that would silently corrupt training."""
    names = ("bos_token_id", "eos_token_id", "cls_token_id", "sentence_delimiter_id")
    missing = [k for k in names if getattr(config, k) < 0]
    if missing:
        raise ValueError(f"text config lacks token ids {missing}; build the model with MELP.from_text_model(tokenizer)")
    if not bert_config.is_decoder:
        raise ValueError("the BERT must be configured with is_decoder=True (causal attention)")
    layers = bert_config.num_hidden_layers
    if not 0 <= config.n_frozen_layers <= layers:
        raise ValueError(f"text.n_frozen_layers={config.n_frozen_layers} but the BERT has {layers} layers")
    if config.max_length + 1 > bert_config.max_position_embeddings:
        raise ValueError(
            f"text.max_length={config.max_length} needs {config.max_length + 1} positions (global token included); "
            f"the BERT has {bert_config.max_position_embeddings}"
        )
