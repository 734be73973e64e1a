"""``melp ground``: beat-level grounding of PVC/PAC sentences on their ectopic beats, with 95 % CIs.

Needs a store with beat ground truth (``melp synth``). Example::

    melp ground --model runs/melp/final --test stores/synth-test --out grounding.json
    melp ground --model random --size tiny --text-from runs/melp/final --test stores/synth-test
"""

from __future__ import annotations

import argparse

from melp.eval.options import add_common_args, add_model_args

COMMAND = "ground"
HELP = "Beat-level grounding on a synthetic store: attention mass and pointing-game hits of PVC/PAC sentences on their ectopic beats."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument("--test", required=True, metavar="STORE[:SPLIT]", help="store with beat ground truth")
    add_common_args(parser, task=False)


def run(args: argparse.Namespace) -> int:
    from melp.eval.options import model_from, settings_from, write_outputs
    from melp.eval.runs import run_grounding

    write_outputs(args, [run_grounding(model_from(args), args.test, settings=settings_from(args))])
    return 0
