"""``melp zeroshot``: zero-shot classification of a labelled store with class prompts (melp-spec §6.1).

Example::

    melp zeroshot --model runs/melp/final --test stores/ptbxl:test --task ptbxl_super --out zs.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from melp.eval.options import add_common_args, add_model_args

COMMAND = "zeroshot"
HELP = "Zero-shot classification: prompt-averaged class embeddings, cosine scores, AUROC/max-F1 with bootstrap CIs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument(
        "--test", required=True, metavar="STORE[:SPLIT]", help="labelled store (optionally one split of it)"
    )
    parser.add_argument(
        "--prompts", type=Path, help="prompt JSON (code -> prompt or list of prompts); default: melp's bank"
    )
    parser.add_argument(
        "--save-scores", type=Path, help="CSV of every record's scores (id, labels, one column per class)"
    )
    add_common_args(parser, precision=True)


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import model_from, settings_from, write_outputs
    from melp.eval.runs import run_zeroshot

    result, scores = run_zeroshot(
        model_from(args), args.test, task_name=args.task, prompts=args.prompts, settings=settings_from(args)
    )
    write_outputs(args, [result], [scores])
    return 0
