"""``melp`` entry point: discovers one subcommand per module of :mod:`melp.cli`.

A subcommand module defines ``COMMAND`` (its name on the command line, e.g. ``"pretrain-text"``),
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules import heavy
dependencies (torch, transformers) inside ``run`` so that ``melp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import melp
import melp.cli


def _subcommand_modules() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(melp.cli.__path__), key=lambda m: m.name):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"melp.cli.{info.name}")
        if hasattr(module, "COMMAND") and hasattr(module, "run"):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="melp", description="Multi-scale ECG-language pretraining (MELP).")
    parser.add_argument("--version", action="version", version=f"melp {melp.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _subcommand_modules():
        p = sub.add_parser(module.COMMAND, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        logging.getLogger("melp").warning("interrupted; re-run the same command to resume where supported")
        return 130


if __name__ == "__main__":
    sys.exit(main())
