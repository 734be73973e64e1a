"""Embedding-extraction throughput (ECGs/s) of :func:`melp.eval.embed.extract_embeddings` on CPU.

What is timed is what ``melp probe`` / ``melp zeroshot`` do once per store: read records from a
store, min-max normalise, run ``encode_ecg`` in eval mode under ``no_grad`` and collect
``probe_emb`` and ``ecg_latent`` (no cache). Random-encoder ``tiny`` and ``small`` (the paper's
encoder), at 100 Hz and 500 Hz × 10 s, batch 32, one warm-up pass then the median of repeats.

Run: ``.venv/bin/python -m benchmarks.bench_embed [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_info, write_result
from melp.data.store import Record, build_store
from melp.eval.embed import extract_embeddings
from melp.eval.random_baseline import random_model


def noise_record(item: tuple[int, int]) -> Record:
    """A record of Gaussian noise (throughput does not depend on the content)."""
    index, n_samples = item
    signal = np.random.default_rng(index).normal(scale=0.5, size=(12, n_samples)).astype(np.float32)
    return Record(id=f"r{index}", signal=signal)


def measure(size: str, fs: int, n: int, batch: int, repeats: int, root: Path) -> dict[str, float]:
    store = build_store(
        root / f"{size}_{fs}",
        [(i, fs * 10) for i in range(n)],
        noise_record,
        fs=fs,
        seconds=10.0,
        source="noise",
        progress=False,
    )
    model = random_model(size, seed=0)  # type: ignore[arg-type]

    def once() -> float:
        start = time.perf_counter()
        out = extract_embeddings(model, store, cache_id="bench", batch_size=batch, cache_dir=None, progress=False)
        assert out["probe_emb"].shape[0] == n
        return time.perf_counter() - start

    once()
    times = [once() for _ in range(repeats)]
    median = statistics.median(times)
    return {
        "records": n,
        "batch": batch,
        "median_s": median,
        "ecgs_per_s": n / median,
        "best_ecgs_per_s": n / min(times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer records and repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    plan = {("tiny", 100): 256, ("tiny", 500): 64, ("small", 100): 64, ("small", 500): 16}
    if args.quick:
        plan = {k: max(8, v // 4) for k, v in plan.items()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for (size, fs), n in plan.items():
            r = measure(size, fs, n, args.batch, repeats, Path(tmp))
            results[f"{size}@{fs}Hz"] = r
            print(
                f"{size:>6} @ {fs:3d} Hz x 10 s: {r['ecgs_per_s']:8.1f} ECGs/s (best {r['best_ecgs_per_s']:.1f}; {n} records, batch {args.batch})"
            )
    write_result(
        "bench_embed",
        {
            "machine": machine_info(
                torch=torch.__version__, threads=args.threads, load_average_1_5_15min=list(os.getloadavg())
            ),
            "repeats": repeats,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
