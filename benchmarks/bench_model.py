"""MELP training-step throughput and peak memory on CPU (issue 4 benchmark; environment notes §4).

One step = forward of the whole model (ECG tower + heads, causal text BERT, caption decoder), the
three losses (:class:`melp.losses.MELPLoss`, weights 1 / 2 / 0.2), backward, AdamW step and the
logit-scale clamp, batch 8, fp32. Configurations:

* ``micro``: ECG micro (64 wide, 2 layers) + text BERT 64 × 2 + decoder 1 × 64;
* ``tiny``: ECG tiny (256 × 4) + text BERT 256 × 4 (FFN 1024) + decoder 2 × 256;
* ``small``: ECG small (the paper's 8 × 768, 62 M) + BERT-base-sized text (768 × 12) + decoder 6 × 768.

The vocabulary is a WordPiece built on synthetic report sentences (a few hundred pieces), reports
are 20–60 tokens. Each configuration runs in its own process, so its peak resident memory
(``ru_maxrss``) is its own. Reported times are the median step after one warm-up step: wall
time and process CPU time (the latter is steadier on a shared, loaded machine; with one thread
it is the wall time the step would take on an idle core).

Run: ``.venv/bin/python -m benchmarks.bench_model [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_info, write_result

TEXT_SHAPES = {"micro": (64, 2, 2, 128), "tiny": (256, 4, 4, 1024), "small": (768, 12, 12, 3072)}
PHRASES = [
    "sinus rhythm", "sinus bradycardia", "sinus tachycardia", "atrial fibrillation", "atrial flutter",
    "left axis deviation", "right bundle branch block", "left bundle branch block", "first degree av block",
    "premature ventricular contractions", "st depression", "st elevation", "t wave inversion",
    "left ventricular hypertrophy", "low qrs voltages", "prolonged qt interval", "normal ecg", "abnormal ecg",
]  # fmt: skip


def synthetic_reports(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [". ".join(rng.sample(PHRASES, rng.randint(2, 7))) + "." for _ in range(n)]


def run_one(size: str, fs: int, steps: int, threads: int) -> dict[str, float | int | str]:
    """Build the ``size`` model, time ``steps`` training steps on 10 s inputs at ``fs`` Hz."""
    import torch

    from melp.data.collate import ECGReportCollator
    from melp.losses import MELPLoss
    from melp.models import MELP, MELPConfig, train_wordpiece_tokenizer
    from melp.models.tokenizer import build_bert_config, build_text_model_dir

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    reports = synthetic_reports(256)
    tok = train_wordpiece_tokenizer(reports, vocab_size=2000)
    hidden, layers, heads, ffn = TEXT_SHAPES[size]
    config = MELPConfig.preset(size)  # type: ignore[arg-type]
    config.text.n_frozen_layers = layers // 2
    with tempfile.TemporaryDirectory() as tmp:
        bert = build_bert_config(
            vocab_size=len(tok), hidden_size=hidden, num_layers=layers, num_heads=heads, intermediate_size=ffn
        )
        build_text_model_dir(tmp, tokenizer=tok, config=bert)
        model = MELP.from_text_model(config=config, text_model_dir=tmp, tokenizer=tok)
    model.train()
    loss_fn = MELPLoss(pad_id=config.text.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    collate = ECGReportCollator(tok, max_length=config.text.max_length)
    items = [{"ecg": torch.rand(12, fs * 10), "report": r, "index": i} for i, r in enumerate(reports[:8])]
    batch = collate(items)
    times, cpu_times = [], []
    for _ in range(steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = model(ecg=batch["ecg"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = loss_fn(out)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.clamp_logit_scale_()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    step, cpu_step = statistics.median(times[1:]), statistics.median(cpu_times[1:])
    return {
        "size": size,
        "fs": fs,
        "batch": 8,
        "tokens": int(batch["input_ids"].shape[1]),
        "vocab": len(tok),
        "params_total_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "params_ecg_tower_m": round(sum(p.numel() for p in model.ecg_encoder.parameters()) / 1e6, 2),
        "steps_timed": steps,
        "s_per_step": round(step, 3),
        "pairs_per_s": round(8 / step, 2),
        "cpu_s_per_step": round(cpu_step, 3),
        "pairs_per_cpu_s": round(8 / cpu_step, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "loss": round(loss.item(), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="micro and tiny only, 2 timed steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "FS"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.steps, args.threads)))
        return 0
    sizes = ["micro", "tiny"] if args.quick else ["micro", "tiny", "small"]
    load_before = round(os.getloadavg()[0], 2)  # the machine may be shared: timings scale with its load
    rows = []
    for size in sizes:
        for fs in (100, 500):
            steps = 2 if (args.quick or size == "small") else 3
            cmd = [sys.executable, "-m", "benchmarks.bench_model", "--one", size, str(fs)]
            cmd += ["--steps", str(steps), "--threads", str(args.threads)]
            done = subprocess.run(
                cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{size:>5} {fs:>3} Hz: {row['s_per_step']:.3f} s/step ({row['cpu_s_per_step']:.3f} CPU s), "
                f"{row['pairs_per_s']:.2f} pairs/s, "
                f"peak RSS {row['peak_rss_gb']:.2f} GB ({row['params_total_m']} M params)",
                flush=True,
            )
    write_result(
        "bench_model",
        {
            "machine": machine_info(
                threads=args.threads,
                torch=__import__("torch").__version__,
                load_average_1min_before_after=[load_before, round(os.getloadavg()[0], 2)],
            ),
            "protocol": "batch 8, fp32, forward + MELPLoss + backward + AdamW; median step after 1 warm-up",
            "results": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
