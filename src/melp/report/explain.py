"""Run a trained MELP model on one test record for the report's alignment view (melp-spec.md §1.3, §2.1).

The beat-level alignment of one record (the beat queries' attention over time and the sentence ↔
beat-query attention, see :mod:`melp.report.alignment`) comes from the model's public API
(``encode_ecg``, ``encode_text``) on an item built by the project's dataset, transform and
collator, exactly as evaluation builds it. Generated reports come from ``melp generate
--save-reports`` and are read by :func:`read_generated`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melp.losses.local_alignment import local_attention_maps
from melp.models.tokenizer import split_sentences
from melp.report.alignment import AlignmentExample, detect_beats, similarity_attention

SENTENCE_DELIMITER = "."


@dataclass(frozen=True)
class GeneratedReport:
    """A test record's reference report beside the one the model wrote."""

    record_id: str
    reference: str
    generated: str


def read_generated(path: str | Path, *, limit: int) -> list[GeneratedReport]:
    """The first ``limit`` pairs of a ``melp generate --save-reports`` JSON-lines file."""
    pairs: list[GeneratedReport] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if len(pairs) == limit:
            break
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"id", "generated", "reference"} - set(row)
        if missing:
            raise ValueError(
                f"{path}:{number}: a generated-report line needs id, generated, reference; missing {sorted(missing)}"
            )
        pairs.append(
            GeneratedReport(record_id=str(row["id"]), reference=str(row["reference"]), generated=str(row["generated"]))
        )
    return pairs


class ModelRunner:
    """A trained model with the transform and collator evaluation uses.

    Args:
        model_dir: a ``from_pretrained`` directory (``RUN_DIR/final``) with its tokenizer.
        store: the opened store to read records from.
    """

    def __init__(self, *, model_dir: str | Path, store: Any) -> None:
        from melp.data.collate import ECGReportCollator
        from melp.data.datasets import ECGDataset
        from melp.data.transforms import build_transform
        from melp.models import MELP

        self.model = MELP.from_pretrained(model_dir).eval()
        if self.model.tokenizer is None:
            raise ValueError(f"{model_dir} has no tokenizer; the alignment view needs the model's text side")
        self.tokenizer = self.model.tokenizer
        config = self.model.config
        self.store = store
        transform = build_transform(normalization=config.normalization, fs_in=store.fs, fs_out=config.fs)
        self.dataset = ECGDataset(store, transform=transform)
        self.collator = ECGReportCollator(self.tokenizer, max_length=config.text.max_length)

    def sentence_texts(self, input_ids: torch.Tensor, n_sentences: int) -> list[str]:
        """Decode the sentences of one tokenised report; there must be ``n_sentences`` of them."""
        text = self.model.config.text
        pieces = split_sentences(
            input_ids.tolist(), delimiter_id=text.sentence_delimiter_id, special_ids=set(text.special_token_ids)
        )
        if len(pieces) != n_sentences:
            raise RuntimeError(f"decoded {len(pieces)} sentences but the model embeds {n_sentences}")
        return [str(self.tokenizer.decode(piece)).strip() for piece in pieces]

    @torch.no_grad()
    def alignment(self, index: int) -> AlignmentExample:
        """The beat-level alignment of record ``index`` (its ECG against its own report)."""
        batch = self.collator([self.dataset[index]])
        ecg_out = self.model.encode_ecg(batch["ecg"])
        text_out = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        mask = text_out["sentence_mask"].bool()  # (1, S)
        alpha = local_attention_maps(ecg_out["beat_embs"], text_out["sentence_embs"], mask)[0][mask[0]]  # (S', Q)
        sentence_embs = text_out["sentence_embs"][0][mask[0]].float().numpy()  # (S', D)
        beat_embs = ecg_out["beat_embs"][0].float().numpy()  # (Q, D)
        beat_attn = ecg_out["beat_attn"][0].float().numpy()  # (Q, N)
        signal = np.asarray(self.store.signals[index], dtype=np.float32)  # (12, T)
        fs = float(self.store.fs)
        beats, beat_types = self._beats(index, signal, fs)
        return AlignmentExample(
            record_id=str(self.store.meta["id"].iloc[index]),
            signal=signal,
            fs=fs,
            sentences=self.sentence_texts(batch["input_ids"][0], int(mask.sum())),
            sentence_to_query=similarity_attention(sentence_embs, beat_embs),
            loss_alpha_peak=float(alpha.max()) * alpha.shape[1],
            beat_attn=beat_attn,
            beats=beats,
            beat_types=beat_types,
        )

    def _beats(self, index: int, signal: np.ndarray, fs: float) -> tuple[np.ndarray, list[str]]:
        """The record's beats: the synthetic ground truth where the store has it, else detected R peaks."""
        meta = self.store.meta
        if "beat_samples" in meta.columns:
            samples = np.asarray(meta["beat_samples"].iloc[index], dtype=np.int64)
            types = [str(t) for t in meta["beat_types"].iloc[index]] if "beat_types" in meta.columns else []
            keep = samples >= 0
            return samples[keep], [t for t, k in zip(types, keep) if k] if len(types) == len(samples) else []
        return detect_beats(signal, fs), []


def pick_alignment_record(store: Any, *, candidates: int = 64) -> int:
    """The record among the first ``candidates`` whose report has the most sentences (first on ties)."""
    reports = store.meta["report"].iloc[:candidates].astype(str)
    counts = [sum(1 for part in text.split(SENTENCE_DELIMITER) if part.strip()) for text in reports]
    if not counts:
        raise ValueError("the store has no records to explain")
    return int(np.argmax(counts))
