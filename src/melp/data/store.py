"""The memory-mapped ECG store: one directory, shards of ``(n, 12, T)`` signals plus a metadata table.

Layout of a store directory::

    manifest.json            # written last, atomically: its presence marks the store complete
    shards/00000.npy         # (n_k, 12, T) float16/float32 signals of shard k, leads in STANDARD_LEADS order
    shards/00000.jsonl       # one JSON object per kept record of shard k (id, patient_id, source, report, labels, ...)
    shards/00000.skip.json   # {record_id: reason} for the records of shard k that were skipped
    build.json               # the build's settings; a resumed build must use the same ones

Items (the lightweight descriptions of records a reader lists up front) are cut into fixed-size
shards in their listed order. A shard is written to temporary names and renamed into place, so
an interrupted build resumes at the first missing shard and gives the same store as an
uninterrupted one; memory is bounded by one shard. The final store is the concatenation of the
shards; nothing is copied when it is finalised.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from melp.data.leads import N_LEADS, STANDARD_LEADS

logger = logging.getLogger(__name__)

STORE_FORMAT_VERSION = 1
_META_COLUMNS = ("id", "patient_id", "source", "report", "labels")
_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass
class Record:
    """One clean record, ready to be stored.

    Attributes:
        id: unique record id within the store.
        signal: ``(12, T)`` float array in millivolts, leads in :data:`STANDARD_LEADS` order.
        patient_id: '' if unknown.
        source: dataset name (``ptbxl``, ``mimic-iv-ecg``, ``synthetic``...).
        report: free-text report, '' if none.
        labels: label codes.
        extra: further JSON-serialisable per-record metadata (stored as extra meta columns).
    """

    id: str
    signal: np.ndarray
    patient_id: str = ""
    source: str = ""
    report: str = ""
    labels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skip:
    """A record that was read and rejected, with the reason."""

    id: str
    reason: str


ProcessFn = Callable[[Any], "Record | Skip"]


class ShardedSignals:
    """Read-only ``(N, 12, T)`` view over the memory-mapped shards of a store.

    Supports ``len``, integer indexing, slices and integer arrays (fancy indexing returns a new
    array in the order asked for).
    """

    def __init__(self, shards: Sequence[np.ndarray]) -> None:
        self._shards = [s for s in shards if len(s)]
        sizes = np.array([len(s) for s in self._shards], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        first = shards[0] if shards else np.zeros((0, N_LEADS, 0), np.float16)
        self.shape: tuple[int, int, int] = (int(self._offsets[-1]), first.shape[1], first.shape[2])
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 3

    def _locate(self, index: int) -> tuple[int, int]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"record index {index} out of range for {len(self)} records")
        shard = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return shard, index - int(self._offsets[shard])

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            shard, local = self._locate(int(key))
            return self._shards[shard][local]
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.where(idx < 0, idx + len(self), idx).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"record index out of range for {len(self)} records")
        if idx.size == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        # One copy per record straight from its shard: about twice as fast as a per-shard gather
        # followed by a reordering gather (benchmarks/bench_store_read.py).
        shard_of = np.searchsorted(self._offsets, idx, side="right") - 1
        local = idx - self._offsets[shard_of]
        return np.stack([self._shards[s][i] for s, i in zip(shard_of.tolist(), local.tolist())])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[np.arange(len(self))]
        return arr.astype(dtype) if dtype is not None else arr


@dataclass
class Store:
    """An opened store (see :func:`open_store`)."""

    path: Path
    signals: ShardedSignals | np.ndarray
    meta: pd.DataFrame
    manifest: dict[str, Any]

    @property
    def fs(self) -> int:
        return int(self.manifest["fs"])

    @property
    def seconds(self) -> float:
        return float(self.manifest["seconds"])

    @property
    def leads(self) -> tuple[str, ...]:
        return tuple(self.manifest.get("leads", STANDARD_LEADS))

    def __len__(self) -> int:
        return len(self.meta)


def _shard_paths(root: Path, k: int) -> tuple[Path, Path, Path]:
    base = root / "shards" / f"{k:05d}"
    return base.with_suffix(".npy"), base.with_suffix(".jsonl"), base.with_suffix(".skip.json")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def open_store(path: str | Path) -> Store:
    """Open a complete store read-only; signals stay on disk (memory-mapped).

    Raises:
        FileNotFoundError: ``path`` is not a store, or its build never finished (no manifest).
    """
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{root} is not a complete melp store (no manifest.json); build it with `melp prepare` or `melp synth`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        n_shards = int(manifest["n_shards"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{manifest_path} is corrupt ({type(exc).__name__}: {exc}); rebuild the store with `melp prepare`"
        ) from exc
    shards, rows = [], []
    for k in range(n_shards):
        npy, jsonl, _ = _shard_paths(root, k)
        shards.append(np.load(npy, mmap_mode="r"))
        rows.extend(_read_jsonl(jsonl))
    signals: ShardedSignals | np.ndarray = shards[0] if len(shards) == 1 else ShardedSignals(shards)
    meta = pd.DataFrame(rows, columns=None if rows else list(_META_COLUMNS))
    if len(meta) != len(signals):
        raise ValueError(f"{root}: {len(meta)} metadata rows but {len(signals)} signals; the store is corrupt")
    return Store(path=root, signals=signals, meta=meta, manifest=manifest)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def validate_record(record: Record, *, n_samples: int, dtype: np.dtype) -> str | None:
    """Why ``record`` cannot be stored, or None if it can."""
    sig = record.signal
    if sig.shape != (N_LEADS, n_samples):
        return f"signal shape {sig.shape}, expected {(N_LEADS, n_samples)}"
    if not np.isfinite(sig).all():
        return "non-finite samples after cleaning"
    if dtype == np.float16 and np.abs(sig).max(initial=0.0) > _FLOAT16_MAX:
        return "amplitude exceeds the float16 range"
    return None


def _meta_row(record: Record) -> dict[str, Any]:
    row = {
        "id": record.id,
        "patient_id": record.patient_id,
        "source": record.source,
        "report": record.report,
        "labels": list(record.labels),
    }
    clash = set(record.extra) & set(row)
    if clash:
        raise ValueError(f"record {record.id}: extra metadata may not redefine {sorted(clash)}")
    row.update(record.extra)
    return row


def _write_shard(root: Path, k: int, signals: np.ndarray, rows: list[str], skipped: dict[str, str]) -> None:
    """Write shard ``k``: ``signals`` ``(n, 12, T)``, its JSON metadata lines, then its skips (the completion mark)."""
    npy, jsonl, skip = _shard_paths(root, k)
    tmp = npy.with_name(npy.name + ".tmp")
    with tmp.open("wb") as f:
        np.save(f, signals)
    os.replace(tmp, npy)
    _atomic_write_text(jsonl, "".join(rows))
    _atomic_write_text(skip, json.dumps(skipped, ensure_ascii=False, indent=0))  # written last: marks the shard done


def _check_build(root: Path, settings: dict[str, Any]) -> None:
    """Record the build's settings, or refuse to resume a build that used different ones."""
    path = root / "build.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
        if changed:
            raise ValueError(
                f"{root} holds an unfinished build with different settings ({', '.join(changed)}); "
                "re-run with the same settings to resume, or remove the folder to start again"
            )
    else:
        _atomic_write_text(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")


def _shard_done(root: Path, k: int) -> bool:
    return all(p.is_file() for p in _shard_paths(root, k))


def _imap(process: ProcessFn, items: Sequence[Any], workers: int, pool: Any) -> Iterator[Record | Skip]:
    if pool is None:
        return (process(item) for item in items)
    return pool.imap(process, items, chunksize=max(1, len(items) // (4 * workers)))


def build_store(
    out: str | Path,
    items: Sequence[Any],
    process: ProcessFn,
    *,
    fs: int,
    seconds: float,
    source: str,
    options: dict[str, Any] | None = None,
    workers: int = 1,
    shard_size: int = 4096,
    dtype: str = "float16",
    progress: bool = True,
) -> Store:
    """Run ``process`` over ``items`` (in parallel) and write the results as a store at ``out``.

    Args:
        out: store directory; an unfinished build there is resumed, a finished one is refused.
        items: picklable record descriptions, in store order. ``process(item)`` (a picklable
            top-level function) returns a :class:`Record` or a :class:`Skip`; an exception it
            raises skips the item with the exception as the reason.
        fs, seconds: target rate and length; every stored signal is ``(12, fs * seconds)``.
        source: dataset name written to the manifest.
        options: the options used (written to the manifest for provenance).
        workers: processes; the store does not depend on this number.
        shard_size: items per shard (memory and resume granularity: one shard of stored samples,
            ``shard_size × 12 × T`` values, is held in memory).
        dtype: ``float16`` (default, half the disk) or ``float32``.
    """
    root = Path(out)
    if (root / "manifest.json").exists():
        raise FileExistsError(f"{root} already holds a complete store; remove it or choose another --out")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    n_samples = round(fs * seconds)
    if abs(n_samples - fs * seconds) > 1e-6:
        raise ValueError(f"fs × seconds = {fs * seconds} is not a whole number of samples")
    np_dtype = np.dtype(dtype)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    settings = {"source": source, "fs": fs, "seconds": seconds, "dtype": dtype, "shard_size": shard_size}
    _check_build(root, {**settings, "n_items": len(items), "options": json.loads(json.dumps(options or {}))})
    n_shards = max(1, -(-len(items) // shard_size))
    seen: set[str] = set()
    n_kept = n_skipped = 0
    skipped_all: dict[str, str] = {}
    resumed = [k for k in range(n_shards) if _shard_done(root, k)]
    if resumed:
        logger.info("resuming %s: %d of %d shards already written", root, len(resumed), n_shards)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    bar = tqdm(total=len(items), desc=f"{source} → {root.name}", unit="rec", disable=not progress)
    try:
        for k in range(n_shards):
            chunk = items[k * shard_size : (k + 1) * shard_size]
            _, jsonl, skip = _shard_paths(root, k)
            if _shard_done(root, k):
                ids = [row["id"] for row in _read_jsonl(jsonl)]
                skipped = json.loads(skip.read_text(encoding="utf-8"))
                seen.update(ids)
                n_kept += len(ids)
                bar.update(len(chunk))
            else:
                # Kept signals go straight into the shard's array (stored dtype), so memory is one
                # shard of stored samples, whatever the records' own dtype.
                signals = np.empty((len(chunk), N_LEADS, n_samples), dtype=np_dtype)
                rows: list[str] = []
                skipped = {}
                for result in _imap(_Guarded(process), chunk, workers, pool):
                    bar.update(1)
                    if isinstance(result, Skip):
                        reason: str | None = result.reason
                    elif result.id in seen:
                        reason = "duplicate id"
                    else:
                        reason = validate_record(result, n_samples=n_samples, dtype=np_dtype)
                    if reason is None and isinstance(result, Record):
                        seen.add(result.id)
                        signals[len(rows)] = result.signal
                        rows.append(json.dumps(_meta_row(result), ensure_ascii=False) + "\n")
                    else:
                        key, n = result.id, 1
                        while key in skipped or key in skipped_all:
                            key, n = f"{result.id}#{n}", n + 1
                        skipped[key] = reason
                        logger.debug("skipped %s: %s", result.id, reason)
                _write_shard(root, k, signals[: len(rows)], rows, skipped)
                n_kept += len(rows)
            n_skipped += len(skipped)
            skipped_all.update(skipped)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    manifest = {
        "format_version": STORE_FORMAT_VERSION,
        "source": source,
        "fs": fs,
        "seconds": seconds,
        "n_samples": n_samples,
        "leads": list(STANDARD_LEADS),
        "dtype": dtype,
        "n_shards": n_shards,
        "shard_size": shard_size,
        "n_read": len(items),
        "n_kept": n_kept,
        "n_skipped": n_skipped,
        "options": options or {},
        "skipped": skipped_all,
    }
    _atomic_write_text(root / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if n_skipped:
        logger.info(
            "%s: kept %d of %d records, skipped %d (reasons in manifest.json)", root, n_kept, len(items), n_skipped
        )
    return open_store(root)


class _Guarded:
    """Picklable wrapper that turns an exception in ``process`` into a :class:`Skip` with its message."""

    def __init__(self, process: ProcessFn) -> None:
        self.process = process

    def __call__(self, item: Any) -> Record | Skip:
        try:
            return self.process(item)
        except Exception as exc:
            return Skip(id=_item_id(item), reason=f"{type(exc).__name__}: {exc}")


def _item_id(item: Any) -> str:
    if isinstance(item, dict) and "id" in item:
        return str(item["id"])
    return str(getattr(item, "id", item))
