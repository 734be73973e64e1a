"""The training input pipeline alone (issue 12): pairs/s per DataLoader worker at 500 Hz and resampled to 100 Hz.

The path is exactly the one ``melp pretrain`` builds: a memory-mapped synthetic store (500 Hz ×
10 s, float16) → ``ECGDataset`` (store read, float32 copy) → the training transform (resampling
when ``model.fs`` differs, random lead masking, min-max normalisation) reseeded per record by
``EpochSeededDataset`` → ``ECGReportCollator`` (WordPiece tokenisation, padding, stacking) →
``DataLoader`` batches of 64. No model runs.

It reports, per record and in one process, what each stage costs, and the DataLoader's pairs/s
with ``num_workers=0`` (the main process: the per-worker rate) and with ``--workers`` worker
processes; at 100 Hz both with the cached polyphase decimator (the default,
:mod:`melp.data.decimate`) and with ``scipy.signal.resample_poly`` per record (what it replaced).
From the per-worker rate it derives the workers a GPU needs: for the pairs/s measured by
``benchmarks/gpu_check.py`` when ``benchmarks/results/gpu_check.json`` holds a GPU result, and
for the issue's target (≈ 1,700 pairs/s, the paper preset at 40 % MFU on an H100).

Run: ``.venv/bin/python -m benchmarks.bench_input_pipeline [--quick] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS_DIR, machine_info, write_result

BATCH = 64
TARGET_PAIRS_PER_S = 1700.0  # issue 12: the paper preset at 40 % MFU on one H100


def _per_call_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3


def build(store: Path, tokenizer: Any, *, fs_out: int, workers: int, scipy_resample: bool = False) -> Any:
    """The training DataLoader of ``melp pretrain`` over ``store`` at ``fs_out`` Hz."""
    from torch.utils.data import DataLoader

    from melp.data import open_store
    from melp.data.collate import ECGReportCollator
    from melp.data.datasets import ECGDataset
    from melp.data.transforms import build_transform
    from melp.train.sampler import EpochSeededDataset, ResumableDistributedSampler

    opened = open_store(store)
    transform = build_transform(normalization="minmax", lead_mask_keep=0.5, fs_in=opened.fs, fs_out=fs_out, seed=42)
    if scipy_resample:
        for step in transform.transforms:
            if hasattr(step, "decimate"):
                step.decimate = None  # type: ignore[attr-defined]
    data = EpochSeededDataset(datasets=[ECGDataset(opened, transform=transform)], seed=42)
    sampler = ResumableDistributedSampler(num_samples=len(data), rank=0, world_size=1, seed=42)
    return DataLoader(
        data, batch_size=BATCH, sampler=sampler, num_workers=workers, drop_last=True,
        collate_fn=ECGReportCollator(tokenizer, max_length=128), persistent_workers=workers > 0,
    )  # fmt: skip


def loader_rate(loader: Any, *, batches: int) -> float:
    """Pairs/s over ``batches`` batches after one warm-up batch (epochs restart as needed)."""
    seen, began, epoch = -1, 0.0, 0
    while seen < batches:
        loader.sampler.set_position(epoch, 0)
        loader.dataset.epoch = epoch
        for _ in loader:
            seen += 1
            if seen == 0:
                began = time.perf_counter()
            if seen == batches:
                break
        epoch += 1
    return batches * BATCH / (time.perf_counter() - began)


def stage_costs(store: Path, tokenizer: Any, repeats: int) -> dict[str, float]:
    """Median milliseconds per record of each stage, in this process."""
    from scipy.signal import resample_poly

    from melp.data import open_store
    from melp.data.collate import ECGReportCollator
    from melp.data.decimate import PolyphaseDecimator
    from melp.data.transforms import Normalize, RandomLeadMask

    opened = open_store(store)
    rows = iter(range(10**9))
    n = len(opened)
    raw = np.asarray(opened.signals[0], dtype=np.float32)  # (12, 5000)
    low = resample_poly(raw, 1, 5, axis=-1)
    decimate, mask, norm = PolyphaseDecimator(down=5), RandomLeadMask(keep=0.5, seed=0), Normalize(method="minmax")
    collator = ECGReportCollator(tokenizer, max_length=128)
    reports = list(opened.meta["report"][:BATCH])
    items = [{"ecg": torch.from_numpy(raw), "report": r, "index": i} for i, r in enumerate(reports)]
    low_items = [{"ecg": torch.from_numpy(low), "report": r, "index": i} for i, r in enumerate(reports)]
    return {
        "store_read_float32_copy": _per_call_ms(lambda: np.array(opened.signals[next(rows) % n], np.float32), repeats),
        "resample_500_to_100_scipy_resample_poly": _per_call_ms(lambda: resample_poly(raw, 1, 5, axis=-1), repeats),
        "resample_500_to_100_cached_polyphase": _per_call_ms(lambda: decimate(raw), repeats),
        "lead_mask_500hz": _per_call_ms(lambda: mask(raw), repeats),
        "minmax_500hz": _per_call_ms(lambda: norm(raw), repeats),
        "tokenize_per_report": _per_call_ms(lambda: collator.tokenize(reports), max(repeats // 10, 3)) / BATCH,
        "collate_500hz_per_pair": _per_call_ms(lambda: collator(items), max(repeats // 10, 3)) / BATCH,
        "collate_100hz_per_pair": _per_call_ms(lambda: collator(low_items), max(repeats // 10, 3)) / BATCH,
    }


def gpu_pairs_per_s() -> dict[str, float]:
    """Training pairs/s of the GPU cases in benchmarks/results/gpu_check.json, when it holds a GPU run."""
    path = RESULTS_DIR / "gpu_check.json"
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    if record.get("device", {}).get("type") != "cuda":
        return {}
    name = record["device"]["name"]
    return {
        f"{key} on {name}": value["pairs_per_s"]
        for key, value in record["results"].items()
        if "/train_" in key and "pairs_per_s" in value
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller store and fewer batches")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the multi-process runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from melp.data import build_store, open_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item
    from melp.models.tokenizer import train_wordpiece_tokenizer

    n_records, batches, repeats = (128, 4, 30) if args.quick else (512, 16, 200)
    root = Path(tempfile.mkdtemp(prefix="bench_input_"))
    store = root / "store"
    items = [SynthItem(seed=0, index=i, fs=500) for i in range(n_records)]
    build_store(store, items, process_item, fs=500, seconds=10.0, source=SOURCE, progress=False)
    tokenizer = train_wordpiece_tokenizer(list(open_store(store).meta["report"]), vocab_size=2000)

    stages = stage_costs(store, tokenizer, repeats)
    for name, ms in stages.items():
        print(f"{name:>42}: {ms:7.3f} ms")
    cases = {
        "500Hz": {"fs_out": 500},
        "100Hz": {"fs_out": 100},
        "100Hz_scipy_resample_poly": {"fs_out": 100, "scipy_resample": True},
    }
    rates: dict[str, dict[str, float]] = {}
    for case, kwargs in cases.items():
        rates[case] = {}
        for workers in (0, args.workers):
            rate = loader_rate(build(store, tokenizer, workers=workers, **kwargs), batches=batches)  # type: ignore[arg-type]
            rates[case][f"workers_{workers}"] = round(rate, 1)
            print(f"{case:>26}, {workers} worker(s): {rate:8.1f} pairs/s", flush=True)
    demands = {"issue 12 target (paper preset, 40 % MFU, H100)": TARGET_PAIRS_PER_S, **gpu_pairs_per_s()}
    per_worker = {case: r["workers_0"] for case, r in rates.items()}
    workers_needed = {
        demand: {case: math.ceil(pairs / rate) for case, rate in per_worker.items()}
        for demand, pairs in demands.items()
    }
    print("workers needed (one worker = one process at the rate of workers_0):", json.dumps(workers_needed, indent=1))
    write_result(
        "bench_input_pipeline",
        {
            "machine": machine_info(threads=1, load_average_1min=os.getloadavg()[0]),
            "protocol": {
                "store": f"synthetic, {n_records} records, 500 Hz x 10 s, float16, in the page cache",
                "batch_size": BATCH,
                "measured_batches": batches,
                "transform": "melp pretrain's: resample (if 100 Hz), lead mask keep 0.5, min-max; reseeded per record",
                "per_worker_rate": "num_workers=0: the whole pipeline in one process",
            },
            "stage_ms_per_record": {k: round(v, 4) for k, v in stages.items()},
            "pairs_per_s": rates,
            "workers_needed": workers_needed,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
