"""``melp finetune``: fine-tune the whole ECG encoder with a classification head (melp-spec §6.3).

Example::

    melp finetune --model runs/melp/final --train stores/ptbxl:train --val stores/ptbxl:val \\
        --test stores/ptbxl:test --task ptbxl_super --layer-decay 0.75 --out finetune.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from melp.eval.options import add_common_args, add_model_args, add_supervised_args

COMMAND = "finetune"
HELP = (
    "Fine-tune the whole ECG encoder + a linear head (optional layer-wise lr decay); AUROC/max-F1 with bootstrap CIs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    add_supervised_args(parser, fractions=[1.0], fractions_help="fractions of the training records (default 1.0)")
    parser.add_argument(
        "--lr", type=float, default=1e-4, help="AdamW learning rate of the head and top layer (default 1e-4)"
    )
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--layer-decay", type=float, help="layer-wise lr decay factor, e.g. 0.75 (default: none)")
    parser.add_argument("--train-batch-size", type=int, default=32, help="fine-tuning batch size (default 32)")
    parser.add_argument("--epochs", type=int, default=20, help="cosine schedule length and epoch limit (default 20)")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs (default 5)")
    parser.add_argument("--save-scores", type=Path, help="CSV of every test record's scores")
    add_common_args(parser)


def run(args: argparse.Namespace) -> int:
    from melp.eval.finetune import FinetuneConfig, run_finetune
    from melp.eval.options import carve_validation, check_fractions, model_from, settings_from, write_outputs

    check_fractions(args.fractions)
    args.train, args.val = carve_validation(args.train, args.val)
    if args.layer_decay is not None and not 0.0 < args.layer_decay <= 1.0:
        raise SystemExit(f"--layer-decay must lie in (0, 1], got {args.layer_decay}")
    cfg = FinetuneConfig(
        lr=args.lr, weight_decay=args.weight_decay, batch_size=args.train_batch_size, epochs=args.epochs,
        patience=args.patience, layer_decay=args.layer_decay, seed=args.seed,
    )  # fmt: skip
    runs = run_finetune(
        model_from(args), train=args.train, val=args.val, test=args.test, task_name=args.task,
        fractions=list(args.fractions), cfg=cfg, settings=settings_from(args),
    )  # fmt: skip
    write_outputs(args, [r for r, _ in runs], [s for _, s in runs])
    return 0
