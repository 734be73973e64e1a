"""``melp`` entry point: discovers one subcommand per module of :mod:`melp.cli`.

A subcommand module defines ``COMMAND`` (its name on the command line, e.g. ``"pretrain-text"``),
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules import heavy
dependencies (torch, transformers) inside ``run`` so that ``melp --help`` stays fast.

User errors are handled here, once for every command: a :class:`melp.errors.UserError`, the
``FileNotFoundError``/``ValueError``/``KeyError``... of :data:`melp.errors.USER_ERRORS` raised by
the library for bad input, and ``SystemExit("message")`` print ``melp <command>: error: message``
on stderr and exit 2, without a traceback (``-v`` logs it). In-process callers of :func:`main` get
a :class:`UserExit` (a ``SystemExit`` with status 2 whose ``str()`` is the message).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

import melp
import melp.cli
from melp.errors import USER_ERRORS

USER_ERROR_STATUS = 2


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
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise  # argparse's own exits, --help, UserExit
        return _user_error(args, str(exc.code), exc)
    except USER_ERRORS as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return _user_error(args, message or type(exc).__name__, exc)


class UserExit(SystemExit):
    """The exit of a command stopped by a user error: status 2, ``str()`` is the message (already printed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = USER_ERROR_STATUS


def _user_error(args: argparse.Namespace, message: str, exc: BaseException) -> NoReturn:
    """Print ``melp <command>: error: <message>`` (the traceback only with ``-v``), then raise :class:`UserExit`."""
    if args.verbose:
        logging.getLogger("melp").error("traceback of the error below", exc_info=exc)
    # messages that already name the command ("melp prepare ptbxl: ...") are not prefixed twice
    message = re.sub(rf"^melp {re.escape(args.command)}( [\w.-]+)?: (error: )?", "", message.strip())
    sys.stderr.write(f"melp {args.command}: error: {message}\n")
    raise UserExit(message) from None


if __name__ == "__main__":
    sys.exit(main())
