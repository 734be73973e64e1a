"""Batch collation with tokenisation (spec §2.1 ``_tokenize``; the model itself never tokenises).

Reports become ``[BOS] w1 … wn [SEP] [PAD] …`` padded to the longest report of the batch (at most
``max_length`` tokens). Token ids stay int64 from the tokenizer to the model; they are never cast
through a float tensor (spec §9 item 6).

Dims: B batch, C leads, T samples, L tokens, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase


class ECGReportCollator:
    """Collate ``ECGDataset`` items into model inputs.

    Args:
        tokenizer: a tokenizer with bos ([BOS]), sep ([SEP]) and pad tokens (``load_tokenizer``).
        max_length: longest token sequence, [BOS] and [SEP] included; longer reports are truncated
            (their [SEP] is kept).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, max_length: int = 128) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [BOS] and [SEP], got {max_length}")
        for name in ("bos_token_id", "sep_token_id", "pad_token_id"):
            if getattr(tokenizer, name) is None:
                raise ValueError(f"tokenizer has no {name[:-3]}; load it with melp.models.load_tokenizer")
        if tokenizer.padding_side != "right":
            raise ValueError(f"tokenizer pads on the {tokenizer.padding_side}; the collator expects right padding")
        self.tokenizer = tokenizer
        self.max_length = max_length

    def tokenize(self, reports: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reports → ``input_ids`` (B, L) int64 and ``attention_mask`` (B, L) int64."""
        words = self.tokenizer(
            list(reports), add_special_tokens=False, truncation=True, max_length=self.max_length - 2
        )["input_ids"]
        return self.pack(words)

    def pack(self, words: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word-token id lists (each at most ``max_length - 2``) → ``[BOS] w1 … wn [SEP] [PAD] …``.

        Returns ``input_ids`` (B, L) int64 and ``attention_mask`` (B, L) int64, L = longest + 2.
        """
        tok = self.tokenizer
        lengths = [len(w) for w in words]
        if lengths and max(lengths) > self.max_length - 2:
            raise ValueError(f"a token list of {max(lengths)} exceeds max_length - 2 = {self.max_length - 2}")
        width = max(lengths, default=0) + 2
        ids = torch.full((len(words), width), tok.pad_token_id, dtype=torch.long)  # (B, L)
        mask = torch.zeros((len(words), width), dtype=torch.long)  # (B, L)
        for row, (w, n) in enumerate(zip(words, lengths)):
            ids[row, : n + 2] = torch.tensor([tok.bos_token_id, *w, tok.sep_token_id], dtype=torch.long)
            mask[row, : n + 2] = 1
        return ids, mask

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Dataset items → {"ecg" (B, C, T), "input_ids" (B, L), "attention_mask" (B, L), "index" (B,), "labels" (B, K)}."""
        if not items:
            raise ValueError("cannot collate an empty batch")
        shapes = {tuple(item["ecg"].shape) for item in items}
        if len(shapes) != 1:
            raise ValueError(f"ECGs in a batch must share one shape (C, T); got {sorted(shapes)}")
        input_ids, attention_mask = self.tokenize([str(item["report"]) for item in items])
        batch = {
            "ecg": torch.stack([torch.as_tensor(item["ecg"]) for item in items]),
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "index": torch.tensor([int(item["index"]) for item in items], dtype=torch.long),
        }
        if "labels" in items[0]:
            batch["labels"] = torch.stack([torch.as_tensor(item["labels"], dtype=torch.float32) for item in items])
        return batch
