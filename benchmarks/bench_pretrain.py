"""Stage-2 pretraining throughput (pairs/s) and peak memory of the micro and tiny presets on CPU (issue 5).

Each case runs in a fresh process: a synthetic 500 Hz × 10 s store (the default corpus), a
randomly initialised BERT of the preset's size with a WordPiece vocabulary trained on the store's
reports, then :class:`melp.train.loop.Pretrainer` steps with the preset's batch (forward, three
losses, backward, AdamW; data loading, lead masking and resampling to the preset's ``model.fs``
included). Throughput is the median over the measured steps after warm-up; peak memory is the
process's maximum resident set size (``ru_maxrss``).

Run: ``.venv/bin/python -m benchmarks.bench_pretrain [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import machine_info, write_result
from melp.configs import preset_path

REPO = Path(__file__).resolve().parents[1]
# case name → (preset, stage-1 BERT size, overrides)
CASES = {
    "micro@100Hz": ("micro", "micro", []),
    "tiny@100Hz": ("tiny", "tiny", []),
    "tiny@500Hz": ("tiny", "tiny", ["model.fs=500"]),
}
N_RECORDS = 64


def child(case: str, *, warmup: int, steps: int, threads: int) -> dict:
    """Run one case in this process and return its numbers."""
    import torch

    torch.set_num_threads(threads)
    from melp.cli.pretrain import build_pretrainer
    from melp.data import build_store, open_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item
    from melp.models.tokenizer import build_text_model_dir, train_wordpiece_tokenizer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed
    from melp.train.text_pretrain import bert_config

    preset, bert_size, overrides = CASES[case]
    root = Path(tempfile.mkdtemp(prefix="bench_pretrain_"))
    items = [SynthItem(seed=0, index=i, fs=500) for i in range(N_RECORDS)]
    build_store(root / "store", items, process_item, fs=500, seconds=10.0, source=SOURCE, progress=False)
    reports = list(open_store(root / "store").meta["report"])
    tokenizer = train_wordpiece_tokenizer(reports, vocab_size=2000)
    text = build_text_model_dir(
        root / "text", tokenizer=tokenizer, config=bert_config(bert_size, vocab_size=len(tokenizer), pad_token_id=0)
    )
    cfg = load_pretrain_config(
        preset_path(preset),
        [*overrides, f"training.max_steps={warmup + steps}", "training.log_every=1", "training.save_every=0",
         "training.epochs=1000", "data.num_workers=0"],
    )  # fmt: skip
    trainer = build_pretrainer(
        cfg,
        train=[str(root / "store")],
        val=[],
        text_model=str(text),
        run_dir=root / "run",
        env=init_distributed(device="cpu"),
    )
    trainer.fit()
    records = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["pairs_per_s"] for r in records if r["split"] == "train" and r["step"] > warmup]
    n_params = sum(p.numel() for p in trainer.model.parameters())
    return {
        "preset": preset,
        "overrides": overrides,
        "batch_size": cfg.data.batch_size,
        "input_samples": int(cfg.model.fs * cfg.model.seconds),
        "vocab": len(tokenizer),
        "params_m": n_params / 1e6,
        "pairs_per_s_median": statistics.median(rates),
        "pairs_per_s_all": rates,
        "s_per_step_median": cfg.data.batch_size / statistics.median(rates),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    warmup, steps = (1, 3) if args.quick else (2, 8)
    if args.child:
        print(json.dumps(child(args.child, warmup=warmup, steps=steps, threads=args.threads)))
        return 0
    results = {}
    for case in CASES:
        cmd = [sys.executable, "-m", "benchmarks.bench_pretrain", "--child", case, "--threads", str(args.threads)]
        cmd += ["--quick"] if args.quick else []
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[case]
        print(
            f"{case:>12}: {r['pairs_per_s_median']:6.1f} pairs/s ({r['s_per_step_median']:.2f} s/step of {r['batch_size']}), "
            f"{r['params_m']:.1f} M params, peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    write_result(
        "bench_pretrain",
        {
            "machine": machine_info(threads=args.threads, load_average_1min=os.getloadavg()[0]),
            "protocol": {
                "warmup_steps": warmup,
                "measured_steps": steps,
                "store": f"synthetic, {N_RECORDS} records, 500 Hz x 10 s",
            },
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
