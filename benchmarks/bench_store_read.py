"""Store read throughput for random-access batches on one core (issue 2, "Benchmark": target ≥ 20,000 records/s).

A store of random float16 records is written with :func:`melp.data.build_store` in two shards (so
reads go through the sharded view), read once to warm the page cache, then timed:

* ``batch``: ``store.signals[idx]`` for batches of 64 random indices (what a sampler-driven
  loader asks for);
* ``single``: ``np.array(store.signals[i])`` one record at a time (what a map-style dataset does).

Run: ``.venv/bin/python -m benchmarks.bench_store_read [--quick]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_info, write_result
from melp.data import Record, build_store, open_store

BATCH = 64


class _RandomRecords:
    """Picklable ``process``: item i → a random record of ``n_samples`` samples."""

    def __init__(self, *, n_samples: int) -> None:
        self.n_samples = n_samples

    def __call__(self, item: int) -> Record:
        signal = np.random.default_rng(item).normal(size=(12, self.n_samples)).astype(np.float32)
        return Record(id=str(item), signal=signal, report="sinus rhythm.", labels=["SR"])


def bench(n: int, fs: int, work: Path, seconds_budget: float) -> dict:
    out = work / f"store-{fs}"
    build_store(
        out,
        list(range(n)),
        _RandomRecords(n_samples=fs * 10),
        fs=fs,
        seconds=10,
        source="bench",
        shard_size=-(-n // 2),
        progress=False,
    )
    store = open_store(out)
    signals = store.signals
    np.asarray(signals)  # warm the page cache
    rng = np.random.default_rng(0)
    reads, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds_budget:
        batch = signals[rng.integers(0, n, BATCH)]
        reads += len(batch)
    batch_rate = reads / (time.perf_counter() - start)
    reads, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds_budget:
        for i in rng.integers(0, n, BATCH):
            np.array(signals[int(i)])
        reads += BATCH
    single_rate = reads / (time.perf_counter() - start)
    mb = n * 12 * fs * 10 * 2 / 1e6
    print(
        f"fs {fs:>3} Hz, {n} records ({mb:.0f} MB): batch of {BATCH}: {batch_rate:,.0f} records/s | "
        f"single: {single_rate:,.0f} records/s",
        flush=True,
    )
    return {
        "records": n,
        "fs": fs,
        "store_mb": round(mb, 1),
        "batch_size": BATCH,
        "batch_records_per_s": round(batch_rate),
        "single_records_per_s": round(single_rate),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller store, shorter timing")
    args = parser.parse_args()
    n, budget = (512, 1.0) if args.quick else (2048, 3.0)
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(n, fs, Path(tmp), budget) for fs in (500, 100)]
    write_result(
        "bench_store_read",
        {
            "machine": machine_info(python=platform.python_version(), numpy=np.__version__, cores_used=1),
            "target": ">= 20,000 records/s on one core (random-access batches, 500 Hz x 10 s float16)",
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
