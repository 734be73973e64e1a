"""Synthetic-corpus generation speed: records/s on one core at 500 Hz × 10 s (issue target ≥ 200).

Measures :func:`melp.data.synthetic.generate_record` in a single process (one core), median of
several repeats, per CPU-second of the process (robust to other jobs on a shared machine) and per
wall-second, at 500 Hz (the store default) and 100 Hz (the demo's rate), and the end-to-end
``melp synth`` store build (generation + float16 shards) with one worker.

With ``--learnability`` it also trains a small supervised CNN + attention classifier (single
thread, 3,000 records at 100 Hz, MELP's whole-record min-max normalisation, 12 epochs) and reports
its test AUROC per label on 600 held-out records: a check that every finding leaves a learnable
signature, not a MELP result.

Run: ``.venv/bin/python -m benchmarks.bench_synth [--quick] [--learnability]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_info, write_result
from melp.data import build_store
from melp.data.synthetic import SynthItem, generate_record, process_item


def records_per_s(n: int, *, fs: int, repeats: int) -> dict[str, float | list[float]]:
    """Median records/s over ``repeats`` runs of ``n`` records (after one warm-up record).

    ``per_cpu_s`` divides by the process's CPU time (one core's work, insensitive to other jobs
    on a shared machine); ``per_wall_s`` by the wall-clock time.
    """
    generate_record(seed=0, index=0, fs=fs)
    cpu_rates, wall_rates = [], []
    for r in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            generate_record(seed=r + 1, index=i, fs=fs)
        cpu_rates.append(n / (time.process_time() - cpu))
        wall_rates.append(n / (time.perf_counter() - wall))
    return {
        "per_cpu_s": round(statistics.median(cpu_rates), 1),
        "per_wall_s": round(statistics.median(wall_rates), 1),
        "runs_per_cpu_s": [round(x, 1) for x in cpu_rates],
    }


def store_records_per_s(n: int) -> float:
    items = [SynthItem(seed=0, index=i) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_store(Path(tmp) / "s", items, process_item, fs=500, seconds=10.0, source="synthetic", progress=False)
        return n / (time.perf_counter() - start)


def learnability(*, n_train: int = 3000, n_test: int = 600, epochs: int = 12) -> dict[str, object]:
    """Test AUROC per label of a small supervised classifier (see the module docstring)."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from melp.data.synthetic import LABEL_CODES, generate

    torch.set_num_threads(1)
    torch.manual_seed(0)
    records = generate(n_train + n_test, seed=21, fs=100)
    x = np.stack([r.signal for r in records])  # (N, 12, 1000)
    lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    x = torch.from_numpy((x - lo) / (hi - lo + 1e-6))
    y = torch.tensor([[code in r.labels for code in LABEL_CODES] for r in records], dtype=torch.float32)

    def block(c_in: int, c_out: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv1d(c_in, c_out, 7, padding=3), torch.nn.BatchNorm1d(c_out), torch.nn.ReLU()]

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            pool = torch.nn.MaxPool1d(2)
            self.conv = torch.nn.Sequential(
                *block(12, 48), pool, *block(48, 64), pool, *block(64, 96), pool, *block(96, 96)
            )
            self.attn = torch.nn.TransformerEncoderLayer(96, 4, 192, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(192, len(LABEL_CODES))

        def forward(self, ecg: torch.Tensor) -> torch.Tensor:
            z = self.attn(self.conv(ecg).transpose(1, 2))  # (B, N, 96)
            return self.head(torch.cat([z.mean(1), z.amax(1)], dim=1))

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), 2e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(n_train).split(64):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        scores = net(x[n_train:]).numpy()
    truth = y[n_train:].numpy()
    per_label = {c: round(float(roc_auc_score(truth[:, k], scores[:, k])), 4) for k, c in enumerate(LABEL_CODES)}
    return {
        "setup": f"{n_train} train / {n_test} test records (seed 21, 100 Hz), CNN + 1 attention layer, {epochs} epochs",
        "macro_auroc": round(float(np.mean(list(per_label.values()))), 4),
        "auroc": per_label,
        "train_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer records and repeats")
    parser.add_argument("--learnability", action="store_true", help="also train a small supervised classifier (~5 min)")
    args = parser.parse_args()
    n, repeats = (200, 3) if args.quick else (1000, 5)
    results = {}
    for fs in (500, 100):
        rates = records_per_s(n, fs=fs, repeats=repeats)
        results[f"generate_{fs}hz_10s"] = rates
        print(
            f"generate_record at {fs} Hz × 10 s: {rates['per_cpu_s']:.0f} records per CPU-second "
            f"({rates['per_wall_s']:.0f} per wall-second)"
        )
    store_rate = store_records_per_s(n)
    results["melp_synth_store_500hz_1_worker"] = {"records_per_s": round(store_rate, 1)}
    print(f"melp synth store build (500 Hz, 1 worker, float16): {store_rate:.0f} records/s")
    if args.learnability:
        results["learnability"] = learnability()
        print(f"supervised learnability check: macro AUROC {results['learnability']['macro_auroc']}")
    write_result(
        "bench_synth",
        {
            "machine": machine_info(load_avg_1min=round(os.getloadavg()[0], 2)),
            "records_per_run": n,
            "repeats": repeats,
            "target_records_per_s": 200,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
