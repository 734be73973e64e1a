"""``melp pretrain-text``: stage 1, the cardiology text encoder (spec §5; issue 5, item 1).

Examples::

    melp pretrain-text --train stores/synth --out runs/text size=micro training.max_steps=200
    melp pretrain-text --train stores/mimic --extra-text cardio_wiki.txt --out runs/heart-bert size=base
    melp pretrain-text --train stores/mimic --out runs/heart-bert init_from=ncbi/MedCPT-Query-Encoder

Trains a WordPiece tokenizer on the stores' reports (plus ``--extra-text`` files, one passage per
line), then a BERT masked-LM, and writes a Hugging Face directory that ``melp pretrain
--text-model`` reads. ``key=value`` arguments override fields of the stage-1 config
(:class:`melp.train.config.TextPretrainConfig`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

COMMAND = "pretrain-text"
HELP = "Stage 1: train a WordPiece tokenizer and a BERT masked-LM on report text."

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train", nargs="+", required=True, metavar="STORE", help="stores whose reports form the corpus"
    )
    parser.add_argument("--out", type=Path, required=True, help="Hugging Face directory to write")
    parser.add_argument("--config", type=Path, help="YAML/TOML/JSON file of stage-1 settings")
    parser.add_argument(
        "--extra-text", nargs="+", default=[], metavar="FILE", help="further text files, one passage per line"
    )
    parser.add_argument("--max-steps", type=int, help="stop after N steps (overrides max_steps)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. size=tiny lr=3e-4")


def split_overrides(paths: list[str], overrides: list[str]) -> tuple[list[str], list[str]]:
    """Move ``key=value`` items that a greedy ``nargs="+"`` option swallowed back to the overrides."""
    stray = [p for p in paths if "=" in p and not Path(p).exists()]
    return [p for p in paths if p not in stray], [*stray, *overrides]


def run(args: argparse.Namespace) -> int:
    from melp.config import load_config
    from melp.train.config import TextPretrainConfig
    from melp.train.text_pretrain import train_text_encoder

    stores, overrides = split_overrides(args.train, args.overrides)
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    if args.extra_text:
        overrides.append(f"extra_text={[str(p) for p in args.extra_text]}")
    cfg = load_config(TextPretrainConfig, args.config, overrides)
    for store in stores:
        if not Path(store).is_dir():
            raise SystemExit(f"--train {store} is not a store directory")
    out = train_text_encoder(cfg, stores=stores, out=args.out, device=args.device)
    logger.info("stage 1 done: pass --text-model %s to melp pretrain", out)
    return 0
