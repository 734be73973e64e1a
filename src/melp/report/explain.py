"""Run a trained MELP model on a few test records for the report (melp-spec.md §1.3, §2.1, §2.3).

Two things the tables cannot show: the beat-level alignment of one record (beat queries'
attention over time and the sentence ↔ beat-query attention, see :mod:`melp.report.alignment`) and
generated versus reference reports. Both go through the model's public API (``encode_ecg``,
``encode_text``, ``generate``) on items built by the project's dataset, transform and collator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melp.report.alignment import AlignmentExample, detect_beats, sentence_query_attention

logger = logging.getLogger(__name__)

SENTENCE_DELIMITER = "."


@dataclass(frozen=True)
class GeneratedReport:
    """A test record's reference report beside the one the model wrote."""

    record_id: str
    reference: str
    generated: str


def split_sentences(token_ids: list[int], *, delimiter_id: int, special_ids: set[int]) -> list[list[int]]:
    """Cut a tokenised report into sentences the way the text encoder does (§2.1, fixed in melp).

    Special tokens are dropped, each sentence keeps its closing delimiter, text after the last
    delimiter is a sentence of its own, and a report with no delimiter is one sentence.
    """
    sentences: list[list[int]] = []
    current: list[int] = []
    for token in token_ids:
        if token in special_ids:
            continue
        current.append(token)
        if token == delimiter_id:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return [s for s in sentences if any(t != delimiter_id for t in s)]


class ModelRunner:
    """A trained model, its tokenizer, and the transform and collator it was trained with.

    Args:
        model_dir: a ``from_pretrained`` directory (``RUN_DIR/final``).
        store: the store to read records from.
    """

    def __init__(self, *, model_dir: str | Path, store: Any) -> None:
        from melp.data.collate import ECGReportCollator
        from melp.data.datasets import ECGDataset
        from melp.data.transforms import build_transform
        from melp.models import MELP, load_tokenizer

        self.model = MELP.from_pretrained(str(model_dir)).eval()
        self.tokenizer = load_tokenizer(str(model_dir))
        self.store = store
        normalization: Any = getattr(self.model.config, "normalization", "minmax")
        self.dataset = ECGDataset(store, transform=build_transform(normalization=normalization))
        self.collator = ECGReportCollator(self.tokenizer)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Collate the records at ``indices`` exactly as training does."""
        return self.collator([self.dataset[i] for i in indices])

    def sentence_texts(self, input_ids: torch.Tensor, n_sentences: int) -> list[str]:
        """Decode the sentences of one tokenised report, matched to ``n_sentences`` embeddings."""
        delimiter_id = self.tokenizer.convert_tokens_to_ids(SENTENCE_DELIMITER)
        pieces = split_sentences(
            input_ids.tolist(), delimiter_id=int(delimiter_id), special_ids=set(self.tokenizer.all_special_ids)
        )
        texts = [self.tokenizer.decode(piece).strip() for piece in pieces]
        if len(texts) != n_sentences:
            logger.warning("decoded %d sentences but the model embeds %d; labelling by position", len(texts), n_sentences)
            texts = [texts[i] if i < len(texts) else f"sentence {i + 1}" for i in range(n_sentences)]
        return texts

    @torch.no_grad()
    def alignment(self, index: int) -> AlignmentExample:
        """The beat-level alignment of record ``index`` (its ECG against its own report)."""
        batch = self.batch([index])
        ecg_out = self.model.encode_ecg(batch["ecg"])
        text_out = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        mask = text_out["sentence_mask"][0].bool()  # (S,)
        sentence_embs = text_out["sentence_embs"][0][mask].float().numpy()  # (S', D)
        beat_embs = ecg_out["beat_embs"][0].float().numpy()  # (Q, D)
        beat_attn = ecg_out["beat_attn"][0].float().numpy()  # (Q, N)
        signal = np.asarray(self.store.signals[index], dtype=np.float32)  # (12, T)
        fs = float(self.store.fs)
        return AlignmentExample(
            record_id=str(self.store.meta["id"].iloc[index]),
            signal=signal,
            fs=fs,
            sentences=self.sentence_texts(batch["input_ids"][0], int(mask.sum())),
            sentence_to_query=sentence_query_attention(beat_embs, sentence_embs),
            beat_attn=beat_attn,
            beats=detect_beats(signal, fs),
        )

    @torch.no_grad()
    def generate(self, indices: list[int], *, max_length: int = 64) -> list[GeneratedReport]:
        """Beam-search reports for the records at ``indices`` beside their references."""
        batch = self.batch(indices)
        tokens = self.model.generate(batch["ecg"], method="beam", max_length=max_length)
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        meta = self.store.meta
        return [
            GeneratedReport(record_id=str(meta["id"].iloc[i]), reference=str(meta["report"].iloc[i]), generated=t.strip())
            for i, t in zip(indices, texts)
        ]


def pick_alignment_record(store: Any, *, candidates: int = 64) -> int:
    """The record among the first ``candidates`` whose report has the most sentences (first on ties)."""
    reports = store.meta["report"].iloc[:candidates].astype(str)
    counts = [sum(1 for part in text.split(SENTENCE_DELIMITER) if part.strip()) for text in reports]
    if not counts:
        raise ValueError("the store has no records to explain")
    return int(np.argmax(counts))
