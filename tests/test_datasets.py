"""ECGDataset over small stores built in tmp_path: item contract, values, subsets, pickling, worker seeding."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from melp.data import Record, Store, build_store
from melp.data.datasets import ECGDataset, seed_worker
from melp.data.tasks import label_matrix
from melp.data.transforms import Normalize, build_transform

FS, SECONDS, N = 100, 2, 10
CODES = ["NORM", "AFIB", "PAC", "STD"]


def _make_record(i: int) -> Record:
    """A deterministic record ``i`` (top-level so build_store can use it)."""
    rng = np.random.default_rng(i)
    signal = rng.normal(0, 0.3, (12, FS * SECONDS)) + rng.normal(0, 0.2, (12, 1))
    return Record(
        id=f"rec{i:03d}",
        signal=signal,
        patient_id=f"p{i // 2}",
        source="test",
        report=f"report number {i}.",
        labels=[CODES[i % 4]] + (["STD"] if i % 3 == 0 else []),
        extra={"strat_fold": i % 10 + 1},
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    out = tmp_path_factory.mktemp("stores") / "small"
    return build_store(
        out, list(range(N)), _make_record, fs=FS, seconds=SECONDS, source="test", shard_size=4, progress=False
    )


def test_item_contract(store: Store) -> None:
    ds = ECGDataset(store, task="cpsc2018")
    assert len(ds) == N
    item = ds[3]
    assert set(item) == {"ecg", "report", "id", "index", "labels"}
    assert item["ecg"].dtype == torch.float32 and item["ecg"].shape == (12, FS * SECONDS)
    assert item["labels"].dtype == torch.float32 and item["labels"].shape == (9,)
    assert item["id"] == "rec003" and item["report"] == "report number 3." and item["index"] == 3
    assert isinstance(item["id"], str) and isinstance(item["index"], int)
    assert "labels" not in ECGDataset(store)[0]


def test_values_are_the_stored_record_through_the_transform(store: Store) -> None:
    raw = ECGDataset(store)
    normed = ECGDataset(store, transform=build_transform(normalization="minmax"))
    for i in (0, 5, 9):  # records in the first, second and third shards
        stored = np.asarray(store.signals[i], dtype=np.float32)
        np.testing.assert_array_equal(raw[i]["ecg"].numpy(), stored)
        np.testing.assert_allclose(normed[i]["ecg"].numpy(), Normalize(method="minmax")(stored), atol=1e-7)
        np.testing.assert_allclose(stored, _make_record(i).signal, atol=2e-3)  # float16 store


def test_reading_never_writes_the_store(store: Store) -> None:
    before = np.asarray(store.signals[2]).copy()
    ds = ECGDataset(store, transform=lambda x: np.multiply(x, 0, out=x))  # a transform that works in place
    np.testing.assert_array_equal(ds[2]["ecg"].numpy(), 0.0)
    np.testing.assert_array_equal(np.asarray(store.signals[2]), before)


def test_indices_select_store_rows_with_aligned_labels(store: Store) -> None:
    rows = [7, 2, 9]
    ds = ECGDataset(store.path, indices=rows, task="cpsc2018")
    full = label_matrix(store.meta, "cpsc2018")
    for position, row in enumerate(rows):
        item = ds[position]
        assert item["index"] == row and item["id"] == f"rec{row:03d}"
        np.testing.assert_array_equal(item["labels"].numpy(), full[row])
    np.testing.assert_array_equal(ds.labels, full[rows])
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        ECGDataset(store, indices=[0, 10])
    with pytest.raises(TypeError, match="integer"):
        ECGDataset(store, indices=np.array([0.5]))
    with pytest.raises(KeyError, match="labels_rhythm"):
        ECGDataset(store, task="ptbxl_rhythm")


def test_pickles_without_the_signals(store: Store) -> None:
    ds = ECGDataset(store, task="cpsc2018", transform=build_transform())
    blob = pickle.dumps(ds)
    signal_bytes = N * 12 * FS * SECONDS * 2
    assert len(blob) < signal_bytes
    clone = pickle.loads(blob)
    for i in (1, 8):
        a, b = ds[i], clone[i]
        assert torch.equal(a["ecg"], b["ecg"]) and torch.equal(a["labels"], b["labels"]) and a["id"] == b["id"]


def _epoch(ds: ECGDataset, seed: int) -> list[dict[str, Any]]:
    loader = DataLoader(
        ds,
        batch_size=1,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
    return list(loader)


def _kept(batch: dict[str, Any]) -> torch.Tensor:
    return batch["ecg"][0].abs().sum(dim=-1) > 0  # (12,) leads not zeroed


def test_worker_seeding_gives_reproducible_distinct_masks(store: Store) -> None:
    ds = ECGDataset(store, transform=build_transform(normalization="none", lead_mask_keep=0.5, seed=0))
    first, again, other = _epoch(ds, 1), _epoch(ds, 1), _epoch(ds, 2)
    assert all(torch.equal(a["ecg"], b["ecg"]) for a, b in zip(first, again))
    assert not all(torch.equal(a["ecg"], b["ecg"]) for a, b in zip(first, other))
    # items 0 and 1 go to different workers; forked copies of one generator would mask them alike
    masks = torch.stack([_kept(b) for b in first])  # (N, 12)
    assert not torch.equal(masks[0], masks[1])
    assert 0.25 < masks.float().mean().item() < 0.75
