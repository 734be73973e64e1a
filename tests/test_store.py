"""The memory-mapped store: round trip, sharding, skips, duplicate ids, resume (design.md "The store")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from melp.data import Record, Skip, build_store, open_store

N_SAMPLES = 50


def _signal(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=(12, N_SAMPLES)).astype(np.float32)


def _process(item: int) -> Record | Skip:
    """Item i: a record with id r<i>, except for a few faulty ones."""
    if item == 3:
        return Skip(id="r3", reason="bad header")
    if item == 5:
        raise OSError("disk on fire")
    if item == 7:
        return Record(id="r7", signal=np.full((12, N_SAMPLES), np.nan, np.float32))
    if item == 8:
        return Record(id="r1", signal=_signal(8))  # duplicate of item 1's id
    return Record(
        id=f"r{item}",
        signal=_signal(item),
        patient_id=f"p{item // 2}",
        report=f"report {item}",
        labels=[f"L{item % 3}"],
        extra={"orig_seconds": 10.0 + item},
    )


def _build(out: Path, n: int = 12, **kwargs: object) -> object:
    return build_store(
        out, list(range(n)), _process, fs=5, seconds=10, source="toy", shard_size=4, progress=False, **kwargs
    )  # type: ignore[arg-type]


def test_round_trip_skips_and_manifest(tmp_path: Path) -> None:
    _build(tmp_path / "s")
    store = open_store(tmp_path / "s")
    kept = [i for i in range(12) if i not in (3, 5, 7, 8)]
    assert list(store.meta["id"]) == [f"r{i}" for i in kept]
    assert store.signals.shape == (len(kept), 12, N_SAMPLES)
    for row, i in enumerate(kept):
        np.testing.assert_array_equal(store.signals[row], _signal(i).astype(np.float16))
        assert store.meta.loc[row, "labels"] == [f"L{i % 3}"]
        assert store.meta.loc[row, "orig_seconds"] == 10.0 + i
    m = store.manifest
    assert (m["n_read"], m["n_kept"], m["n_skipped"], m["fs"], m["n_shards"]) == (12, 8, 4, 5, 3)
    assert m["skipped"]["r3"] == "bad header"
    assert m["skipped"]["5"] == "OSError: disk on fire"
    assert m["skipped"]["r7"] == "non-finite samples after cleaning"
    assert m["skipped"]["r1"] == "duplicate id"
    assert store.fs == 5 and store.seconds == 10.0


def test_fancy_indexing_matches_the_concatenated_array(tmp_path: Path) -> None:
    store = _build(tmp_path / "s")
    full = np.concatenate([np.load(p) for p in sorted((tmp_path / "s" / "shards").glob("*.npy"))])
    idx = np.array([7, 0, 3, 3, 5, 1, -1])
    np.testing.assert_array_equal(store.signals[idx], full[idx])
    np.testing.assert_array_equal(store.signals[2:6], full[2:6])
    np.testing.assert_array_equal(store.signals[-2], full[-2])
    with pytest.raises(IndexError):
        store.signals[len(full)]


def test_complete_store_is_not_overwritten_and_unfinished_one_is_not_opened(tmp_path: Path) -> None:
    _build(tmp_path / "s")
    with pytest.raises(FileExistsError, match="already holds a complete store"):
        _build(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json"):
        open_store(tmp_path / "s")


def _snapshot(path: Path) -> tuple[bytes, list, dict]:
    store = open_store(path)
    return np.asarray(store.signals).tobytes(), store.meta.to_dict("records"), store.manifest


def test_resume_after_losing_the_last_shard_gives_the_same_store(tmp_path: Path) -> None:
    _build(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "manifest.json").unlink()
    for p in (tmp_path / "b" / "shards").glob("00002.*"):
        p.unlink()
    (tmp_path / "b" / "shards" / "00001.skip.json").unlink()  # shard 1 half written: no completion marker
    _build(tmp_path / "b")
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


def test_resume_with_different_settings_is_refused(tmp_path: Path) -> None:
    _build(tmp_path / "s", options={"crop": "start"})
    (tmp_path / "s" / "manifest.json").unlink()
    with pytest.raises(ValueError, match="different settings \\(options\\)"):
        _build(tmp_path / "s", options={"crop": "centre"})
    assert json.loads((tmp_path / "s" / "build.json").read_text())["options"] == {"crop": "start"}


def test_float16_overflow_is_skipped(tmp_path: Path) -> None:
    store = build_store(tmp_path / "s", [0], _huge, fs=5, seconds=10, source="toy", progress=False)
    assert store.manifest["skipped"] == {"big": "amplitude exceeds the float16 range"}
    assert len(store) == 0


def _huge(item: int) -> Record:
    return Record(id="big", signal=np.full((12, N_SAMPLES), 1e6, np.float32))
