"""``melp prepare`` throughput on WFDB sources vs bare ``wfdb.rdrecord`` (issue 2, "Benchmark": target ≤ 2× per record).

Sources:

* ``mimic-like``: a MIMIC-IV-ECG tree written here with ``wfdb.wrsamp`` (500 Hz, 10 s, format 16,
  aVF before aVL, machine reports), prepared at 500 Hz: reading, reordering, checks, store writing;
* ``ptbxl-subset``: the real PTB-XL records of ``../shared/data`` (100 Hz, split file of 1,442
  records), prepared at 100 Hz; skipped where the folder is absent.

For each: the time of bare ``wfdb.rdrecord`` per record, of ``process(item)`` per record, and of
the whole ``build_store`` (1 worker, then 2), after one warm-up pass so that files are in the
page cache for every variant; each is the best of a few rounds. Worker start-up (spawned
processes importing numpy/scipy/wfdb, about a second each) is included in the 2-worker time, and
on a shared 2-core machine the 2-worker figure says little.

Run: ``.venv/bin/python -m benchmarks.bench_prepare [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import wfdb

from benchmarks.common import machine_info, write_result
from melp.data.readers import get_reader
from melp.data.signal import SignalPolicy
from melp.data.store import build_store

MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]


def write_mimic_tree(root: Path, n: int) -> None:
    """A MIMIC-IV-ECG layout with ``n`` random 10 s, 500 Hz records."""
    rng = np.random.default_rng(0)
    records, reports = [], []
    for k in range(n):
        subject, study = 10_000_000 + k, 40_000_000 + k
        rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}"
        (root / rel).mkdir(parents=True, exist_ok=True)
        signal = np.cumsum(rng.normal(scale=0.02, size=(5000, 12)), axis=0)
        wfdb.wrsamp(
            str(study),
            fs=500,
            units=["mV"] * 12,
            sig_name=MIMIC_LEADS,
            p_signal=signal,
            fmt=["16"] * 12,
            adc_gain=[200.0] * 12,
            baseline=[0] * 12,
            write_dir=str(root / rel),
        )
        records.append({"subject_id": subject, "study_id": study, "path": f"{rel}/{study}"})
        reports.append({"subject_id": subject, "study_id": study, "report_0": "Sinus rhythm", "report_1": "Normal ECG"})
    pd.DataFrame(records).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(reports).to_csv(root / "machine_measurements.csv", index=False)


def _per_record(fn: Callable[[Any], Any], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items)


def _prepare_per_record(
    items: list[Any], process: Callable[[Any], Any], out: Path, fs: int, source: str, workers: int
) -> float:
    start = time.perf_counter()
    build_store(out, items, process, fs=fs, seconds=10, source=source, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed / len(items)


def bench_source(
    name: str, dataset: str, root: Path, split: Path | None, fs: int, work: Path, workers: int, rounds: int
) -> dict:
    """Best of ``rounds`` for each variant (the machine is shared, so the minimum is the least disturbed)."""
    reader = get_reader(dataset)
    start = time.perf_counter()
    items = reader.list_items(root, split)
    list_s = time.perf_counter() - start
    paths = [item.path for item in items]
    process = reader.processor(SignalPolicy(fs=fs))
    _per_record(wfdb.rdrecord, paths)  # warm the page cache
    bare, proc, timings = [], [], {1: [], workers: []}
    for _ in range(rounds):
        bare.append(_per_record(wfdb.rdrecord, paths))
        proc.append(_per_record(process, items))
        timings[1].append(_prepare_per_record(items, process, work / "w1", fs, reader.source, 1))
    timings[workers].append(_prepare_per_record(items, process, work / "wn", fs, reader.source, workers))
    bare_s, proc_s = min(bare), min(proc)
    t = {w: min(v) for w, v in timings.items()}
    result = {
        "records": len(items),
        "fs": fs,
        "list_s": round(list_s, 3),
        "rounds": rounds,
        "rdrecord_ms_per_record": round(bare_s * 1e3, 3),
        "process_ms_per_record": round(proc_s * 1e3, 3),
        "prepare_1_worker_ms_per_record": round(t[1] * 1e3, 3),
        "prepare_1_worker_records_per_s": round(1 / t[1], 1),
        "prepare_over_rdrecord": round(t[1] / bare_s, 2),
        f"prepare_{workers}_workers_records_per_s": round(1 / t[workers], 1),
        f"prepare_{workers}_workers_records_per_s_per_worker": round(1 / t[workers] / workers, 1),
    }
    print(
        f"{name:>13}: {len(items)} records | rdrecord {result['rdrecord_ms_per_record']:.2f} ms | "
        f"process {result['process_ms_per_record']:.2f} ms | prepare (1 worker) {result['prepare_1_worker_ms_per_record']:.2f} ms "
        f"= {result['prepare_over_rdrecord']:.2f}× rdrecord | {workers} workers: "
        f"{result[f'prepare_{workers}_workers_records_per_s']:.0f} rec/s",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer records")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n, rounds = (100, 2) if args.quick else (400, 3)
    shared = Path(os.environ.get("MELP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_mimic_tree(work / "mimic", n)
        results["mimic-like"] = bench_source(
            "mimic-like", "mimic-iv-ecg", work / "mimic", None, 500, work, args.workers, rounds
        )
        subset = shared / "ptbxl-subset"
        if (subset / "ptbxl_super_class_train.csv").is_file():
            split = subset / "ptbxl_super_class_train.csv"
            results["ptbxl-subset"] = bench_source(
                "ptbxl-subset", "ptbxl", subset, split, 100, work, args.workers, rounds
            )
        else:
            print(f"ptbxl-subset: skipped ({subset} not found)")
    write_result(
        "bench_prepare",
        {
            "machine": machine_info(python=platform.python_version(), wfdb=wfdb.__version__),
            "target": "prepare (1 worker) within 2x of bare wfdb.rdrecord per record",
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
