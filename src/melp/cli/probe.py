"""``melp probe``: linear probing on frozen embeddings at 1/10/100 % of the training split (melp-spec §6.2).

Example::

    melp probe --model runs/melp/final --train stores/ptbxl:train --val stores/ptbxl:val \\
        --test stores/ptbxl:test --task ptbxl_super --fractions 0.01 0.1 1.0 --out probe.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from melp.eval.options import add_common_args, add_model_args, add_supervised_args

COMMAND = "probe"
HELP = "Linear probe on frozen ECG embeddings (AdamW 1e-3, wd 1e-4, batch 128, cosine 100 epochs, early stopping)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    add_supervised_args(
        parser,
        fractions=[0.01, 0.1, 1.0],
        fractions_help="fractions of the training records (default: the protocol, 0.01 0.1 1.0)",
    )
    parser.add_argument(
        "--head",
        choices=("adamw", "logreg"),
        default="adamw",
        help="adamw: the paper's linear head (default); logreg: converged logistic regression on standardised "
        "embeddings, regularisation chosen on --val",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default 1e-4)")
    parser.add_argument("--probe-batch-size", type=int, default=128, help="probe batch size (default 128)")
    parser.add_argument("--epochs", type=int, default=100, help="cosine schedule length and epoch limit (default 100)")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs (default 5)")
    parser.add_argument(
        "--save-scores", type=Path, help="CSV of every test record's scores (one file per fraction: _0, _1, ...)"
    )
    add_common_args(parser, precision=True)


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import carve_validation, check_fractions, model_from, settings_from, write_outputs
    from melp.eval.probe import ProbeConfig
    from melp.eval.runs import run_probe

    check_fractions(args.fractions)
    args.train, args.val = carve_validation(args.train, args.val)
    probe = ProbeConfig(
        lr=args.lr, weight_decay=args.weight_decay, batch_size=args.probe_batch_size, epochs=args.epochs,
        patience=args.patience, seed=args.seed,
    )  # fmt: skip
    runs = run_probe(
        model_from(args), train=args.train, val=args.val, test=args.test, task_name=args.task,
        fractions=list(args.fractions), probe=probe, settings=settings_from(args), head=args.head,
    )  # fmt: skip
    write_outputs(args, [r for r, _ in runs], [s for _, s in runs])
    return 0
