"""Torch datasets over a store: MELP's ECG-report pairs and labelled downstream records (melp-spec §4.2-4.3).

An item is a dict::

    {"ecg": FloatTensor (12, T), "report": str, "id": str, "index": int, "labels": FloatTensor (C,)}

``index`` is the record's row in the store (not its position in the dataset), so predictions
gathered from several processes can be matched back to the store's metadata; ``labels`` is there
only when the dataset has a task. Signals stay memory-mapped: each item reads its one record and
converts it to a float32 copy before the transform, so the store is never modified.

Reproducible lead masking with DataLoader workers: pass ``worker_init_fn=seed_worker`` and a seeded
``generator=torch.Generator().manual_seed(s)`` to the DataLoader. Each worker then reseeds the
dataset's transform from its own ``torch.utils.data.get_worker_info().seed``, so workers draw
different masks and a run is repeatable for a given seed and number of workers. For masks that do
not depend on the number of workers either, reseed per item from ``(seed, epoch, position)`` with
:meth:`ECGDataset.reseed` (as :class:`melp.train.sampler.EpochSeededDataset` does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from melp.data.store import Store, open_store
from melp.data.tasks import TaskSpec, get_task, label_matrix
from melp.data.transforms import Transform

logger = logging.getLogger(__name__)


class ECGDataset(Dataset[dict[str, Any]]):
    """Records of a store, optionally a subset, transformed and labelled.

    Args:
        store: an opened store or its path.
        indices: store rows to serve, in this order (default: all).
        transform: a callable on float32 numpy ``(12, T)`` arrays (see :mod:`melp.data.transforms`);
            default: none (the raw float32 signal).
        task: a task name or :class:`TaskSpec`; its label matrix is computed once here.

    Raises:
        IndexError: an index outside the store.
        KeyError: the store lacks the task's label column.
    """

    def __init__(
        self,
        store: Store | str | Path,
        *,
        indices: np.ndarray | list[int] | None = None,
        transform: Transform | None = None,
        task: TaskSpec | str | None = None,
    ) -> None:
        opened = store if isinstance(store, Store) else open_store(store)
        n_records = len(opened)
        idx = np.arange(n_records) if indices is None else np.asarray(indices)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(
                f"indices must be a 1-D array of integer store rows, got dtype {idx.dtype} shape {idx.shape}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= n_records):
            raise IndexError(f"indices must lie in [0, {n_records}) for this store, got [{idx.min()}, {idx.max()}]")
        self.path = opened.path
        self.fs = opened.fs
        self.indices = idx.astype(np.int64)
        self.meta = opened.meta.iloc[self.indices].reset_index(drop=True)
        self.transform = transform
        self.task = get_task(task) if isinstance(task, str) else task
        self.labels = None if self.task is None else label_matrix(self.meta, self.task)  # (n, C)
        self._ids = self.meta["id"].astype(str).to_numpy()
        self._reports = self.meta["report"].fillna("").astype(str).to_numpy()
        self._signals: Any = opened.signals

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        row = int(self.indices[position])
        if self._signals is None:
            self._signals = open_store(self.path).signals
        ecg = _float32_copy(self._signals[row])  # (12, T)
        if self.transform is not None:
            ecg = self.transform(ecg)
        item: dict[str, Any] = {
            "ecg": torch.from_numpy(np.ascontiguousarray(ecg, dtype=np.float32)),
            "report": self._reports[position],
            "id": self._ids[position],
            "index": row,
        }
        if self.labels is not None:
            item["labels"] = torch.from_numpy(self.labels[position].copy())  # (C,)
        return item

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Restart the random streams of the transform (no-op for a deterministic transform)."""
        reseed = getattr(self.transform, "reseed", None)
        if reseed is not None:
            reseed(seed)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the memory map (workers reopen the store) so pickles stay small."""
        state = self.__dict__.copy()
        state["_signals"] = None
        return state


def _float32_copy(signal: np.ndarray) -> np.ndarray:
    """A float32 copy of one stored record (torch casts float16 ~20× faster than numpy here)."""
    if signal.dtype == np.float16:
        return torch.from_numpy(np.array(signal)).to(torch.float32).numpy()
    return np.array(signal, dtype=np.float32)


def _reseed_all(dataset: Any, seed: list[int]) -> None:
    """Reseed every :class:`ECGDataset` inside ``dataset`` (through Subset and ConcatDataset wrappers).

    The k-th member of a ConcatDataset gets ``[*seed, k]``, so members draw independent streams.
    """
    if isinstance(dataset, ECGDataset):
        dataset.reseed(seed)
    for k, inner in enumerate(getattr(dataset, "datasets", ())):
        _reseed_all(inner, [*seed, k])
    if hasattr(dataset, "dataset"):
        _reseed_all(dataset.dataset, seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed the worker's transforms from the worker's torch seed."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    logger.debug("worker %d: reseeding transforms", worker_id)
    _reseed_all(info.dataset, [info.seed])
