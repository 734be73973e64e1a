"""ECGReportCollator: [BOS] w… [SEP] [PAD] layout, dynamic padding, truncation, int64 ids (spec §2.1, §9 item 6)."""

from __future__ import annotations

import pytest
import torch

from melp.data.collate import ECGReportCollator
from melp.models import train_wordpiece_tokenizer
from tests.test_models import REPORTS


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return train_wordpiece_tokenizer(REPORTS + [f"rate {i} bpm" for i in range(400)], vocab_size=1000)


def _items(reports: list[str], *, labels: bool = False) -> list[dict]:
    items = []
    for i, report in enumerate(reports):
        item = {"ecg": torch.full((12, 40), float(i)), "report": report, "id": f"r{i}", "index": 10 + i}
        if labels:
            item["labels"] = torch.tensor([i % 2, 1 - i % 2], dtype=torch.float32)
        items.append(item)
    return items


def test_layout_matches_per_report_reference(tokenizer) -> None:  # type: ignore[no-untyped-def]
    reports = [REPORTS[1], "", REPORTS[0], "rate 321 bpm. sinus rhythm"]
    batch = ECGReportCollator(tokenizer, max_length=64)(_items(reports))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    expected = [
        [tokenizer.bos_token_id, *tokenizer.encode(r, add_special_tokens=False), tokenizer.sep_token_id]
        for r in reports
    ]
    width = max(len(e) for e in expected)
    assert ids.shape == mask.shape == (4, width)  # padded to the longest report, not to max_length
    for row, exp in enumerate(expected):
        assert ids[row, : len(exp)].tolist() == exp
        assert ids[row, len(exp) :].eq(tokenizer.pad_token_id).all()
        assert mask[row].tolist() == [1] * len(exp) + [0] * (width - len(exp))
    assert ids.dtype == mask.dtype == torch.long
    assert int(ids.max()) > 256  # large ids survive exactly (never cast through bf16/float)


def test_truncation_keeps_sep_and_max_length(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long_report = " ".join(REPORTS)
    batch = ECGReportCollator(tokenizer, max_length=12)(_items([long_report, "sinus rhythm"]))
    ids = batch["input_ids"]
    assert ids.shape == (2, 12)
    words = tokenizer.encode(long_report, add_special_tokens=False)[:10]
    assert ids[0].tolist() == [tokenizer.bos_token_id, *words, tokenizer.sep_token_id]
    assert batch["attention_mask"][0].all()


def test_ecg_labels_and_index(tokenizer) -> None:  # type: ignore[no-untyped-def]
    batch = ECGReportCollator(tokenizer)(_items(REPORTS[:3], labels=True))
    assert batch["ecg"].shape == (3, 12, 40) and batch["ecg"][2].eq(2.0).all()
    assert batch["labels"].tolist() == [[0, 1], [1, 0], [0, 1]]
    assert batch["index"].tolist() == [10, 11, 12] and batch["index"].dtype == torch.long
    assert "labels" not in ECGReportCollator(tokenizer)(_items(REPORTS[:2]))


def test_bad_batches_raise(tokenizer) -> None:  # type: ignore[no-untyped-def]
    collate = ECGReportCollator(tokenizer)
    items = _items(REPORTS[:2])
    items[1]["ecg"] = torch.zeros(12, 41)
    with pytest.raises(ValueError, match="share one shape"):
        collate(items)
    with pytest.raises(ValueError, match="empty batch"):
        collate([])
    with pytest.raises(ValueError, match="max_length"):
        ECGReportCollator(tokenizer, max_length=1)
