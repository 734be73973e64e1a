"""``melp retrieve``: ECG→report and report→ECG retrieval, Recall@1/5/10 and median rank, with 95 % CIs.

Example::

    melp retrieve --model runs/melp/final --test stores/synth_test --out retrieval.json
"""

from __future__ import annotations

import argparse

from melp.eval.options import add_common_args, add_model_args

COMMAND = "retrieve"
HELP = "ECG↔report retrieval on a store with reports: Recall@1/5/10 and median rank in both directions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument("--test", required=True, metavar="STORE[:SPLIT]", help="store with reports")
    add_common_args(parser, task=False, precision=True)


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import model_from, settings_from, write_outputs
    from melp.eval.runs import run_retrieval

    write_outputs(args, [run_retrieval(model_from(args), args.test, settings=settings_from(args))])
    return 0
