"""The project's exception for mistakes in what a user asked for (a missing file, a bad option value).

``melp`` commands (:mod:`melp.cli.main`) print a :class:`UserError` — and the ``FileNotFoundError``,
``ValueError`` and kin that library functions raise for bad input — as one line,
``melp <command>: error: <message>``, and exit with status 2; ``-v`` adds the traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user; the message says what was wrong and what was expected."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    KeyError,
)
"""Exceptions a command's user caused (bad paths, corrupt inputs, bad values), printed without a traceback."""
