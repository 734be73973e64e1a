"""A deterministic, resumable distributed sampler (fixes spec §9 item 38: seeded data order).

Each epoch draws one permutation of the whole dataset from ``seed + epoch``, trims it to a multiple
of ``world_size`` (no duplicated records, unlike padding; every rank gets the same number of
samples, so no rank waits for another at the end of an epoch), and gives rank ``r`` the elements
``r, r + world_size, ...``. ``set_position(epoch, start)`` skips the first ``start`` samples of the
rank's shard, so a run resumed mid-epoch sees exactly the samples an uninterrupted run would.

:class:`EpochSeededDataset` makes the random transforms (lead masking) a function of
``(seed, epoch, record)`` alone, so the masks do not depend on the number of DataLoader workers,
the rank that reads a record, or where a run was interrupted.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler


class ResumableDistributedSampler(Sampler[int]):
    """Epoch-seeded permutation, sharded by rank, with a start offset for mid-epoch resume.

    Args:
        num_samples: length of the dataset.
        rank: this process's rank.
        world_size: number of processes.
        seed: base seed of the permutations.
        shuffle: permute (training) or keep the dataset order.
    """

    def __init__(
        self, *, num_samples: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got rank={rank}")
        if num_samples < world_size:
            raise ValueError(f"{num_samples} samples cannot be shared among {world_size} processes")
        self.num_samples = num_samples
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    @property
    def per_rank(self) -> int:
        """Samples each rank sees in one full epoch."""
        return self.num_samples // self.world_size

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from the ``start``-th sample of this rank's shard."""
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start must lie in [0, {self.per_rank}], got {start}")
        self.epoch = epoch
        self.start = start

    def set_epoch(self, epoch: int) -> None:
        """Iterate epoch ``epoch`` from its beginning (the ``DistributedSampler`` interface)."""
        self.set_position(epoch, 0)

    def shard(self) -> list[int]:
        """This rank's full index list for the current epoch (before the start offset)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        order = order[: self.per_rank * self.world_size]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


class EpochSeededDataset(Dataset[dict[str, Any]]):
    """The concatenation of datasets whose transforms are reseeded from ``(seed, epoch, position)`` per item.

    Args:
        datasets: datasets with ``reseed(seed)`` (e.g. :class:`melp.data.datasets.ECGDataset`),
            served one after the other.
        seed: base seed.
    """

    def __init__(self, *, datasets: Sequence[Any], seed: int) -> None:
        if not datasets:
            raise ValueError("EpochSeededDataset needs at least one dataset")
        for dataset in datasets:
            if not hasattr(dataset, "reseed"):
                raise TypeError(f"{type(dataset).__name__} has no reseed(seed) method")
        self.datasets = list(datasets)
        self.offsets = list(itertools.accumulate(len(d) for d in self.datasets))
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, position: int) -> dict[str, Any]:
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} outside [0, {len(self)})")
        k = bisect.bisect_right(self.offsets, position)
        dataset = self.datasets[k]
        dataset.reseed([self.seed, self.epoch, position])
        return dataset[position - (self.offsets[k - 1] if k else 0)]
