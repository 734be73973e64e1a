"""``melp generate``: reports for a store's ECGs, scored against the references (BLEU-4, ROUGE-L, clinical F1).

Example::

    melp generate --model runs/melp/final --test stores/synth_test --method beam --out generation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from melp.eval.options import add_common_args, add_model_args

COMMAND = "generate"
HELP = "Generate reports (beam/greedy/top-k/top-p) and score them: BLEU-4, ROUGE-L, labeller precision/recall/F1."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument("--test", required=True, metavar="STORE[:SPLIT]", help="store with reference reports")
    parser.add_argument(
        "--method", choices=("beam", "greedy", "top_k", "top_p"), default="beam", help="decoding (default beam)"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="longest generated report in tokens (default: the model's text.max_length)",
    )
    parser.add_argument("--limit", type=int, help="only the first N records with a report")
    parser.add_argument("--save-reports", type=Path, help="JSON lines of {id, generated, reference}")
    add_common_args(parser, task=False)


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import model_from, settings_from, write_outputs
    from melp.eval.runs import run_generation

    result, pairs = run_generation(
        model_from(args), args.test, method=args.method, max_length=args.max_length, limit=args.limit,
        settings=settings_from(args),
    )  # fmt: skip
    write_outputs(args, [result])
    if args.save_reports is not None:
        args.save_reports.parent.mkdir(parents=True, exist_ok=True)
        args.save_reports.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    return 0
