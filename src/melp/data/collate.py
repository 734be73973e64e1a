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
        tok = self.tokenizer
        enc = tok(
            list(reports),
            add_special_tokens=False,
            truncation=True,
            max_length=self.max_length - 2,
            padding="longest",
            return_tensors="pt",
        )
        words = enc["input_ids"].long().reshape(len(reports), -1)  # (B, n)
        mask = enc["attention_mask"].long().reshape(len(reports), -1)  # (B, n)
        b = words.shape[0]
        ids = torch.full((b, words.shape[1] + 2), tok.pad_token_id, dtype=torch.long)  # (B, n + 2)
        ids[:, 0] = tok.bos_token_id
        ids[:, 1:-1] = words.masked_fill(mask == 0, tok.pad_token_id)
        lengths = mask.sum(dim=1)  # (B,) word tokens per report
        ids.scatter_(1, (lengths + 1).unsqueeze(1), tok.sep_token_id)
        attention = (torch.arange(ids.shape[1]).unsqueeze(0) < (lengths + 2).unsqueeze(1)).long()  # (B, n + 2)
        width = int(lengths.max().item()) + 2 if b else 2
        return ids[:, :width], attention[:, :width]

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
