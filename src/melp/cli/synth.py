"""``melp synth``: write the built-in synthetic ECG-report corpus as a store (the embedded default)."""

from __future__ import annotations

import argparse
import logging

COMMAND = "synth"
HELP = "Generate the synthetic 12-lead ECG-report corpus (exact beat-level ground truth) into a store."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, required=True, help="number of records")
    parser.add_argument("--out", required=True, help="output store directory")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (record i depends only on seed and i)")
    parser.add_argument("--start", type=int, default=0, help="index of the first record (disjoint splits share a seed)")
    parser.add_argument("--fs", type=int, default=500, help="sampling rate in Hz")
    parser.add_argument("--seconds", type=float, default=10.0, help="record length in seconds")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (the store does not depend on it)")
    parser.add_argument("--shard-size", type=int, default=4096, help="records per shard")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="stored sample type")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from melp.data import build_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item

    for name in ("n", "seed", "start", "workers", "shard_size"):
        if getattr(args, name) < (1 if name in ("n", "workers", "shard_size") else 0):
            raise SystemExit(f"melp synth: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    items = [
        SynthItem(seed=args.seed, index=i, fs=args.fs, seconds=args.seconds)
        for i in range(args.start, args.start + args.n)
    ]
    options = {"n": args.n, "seed": args.seed, "start": args.start, "generator": "melp.data.synthetic"}
    store = build_store(
        args.out, items, process_item, fs=args.fs, seconds=args.seconds, source=SOURCE, options=options,
        workers=args.workers, shard_size=args.shard_size, dtype=args.dtype, progress=not args.no_progress,
    )  # fmt: skip
    logger.info("wrote %d synthetic records to %s", len(store), store.path)
    return 0
