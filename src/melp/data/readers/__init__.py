"""Dataset readers (issue 2, "Readers"): one module per public dataset, each turning its raw layout into store records.

Every reader module defines ``SOURCE``, ``list_items(root, split_csv=None) -> list`` (picklable
record descriptions, in store order) and ``process(item, policy) -> Record | Skip`` (a top-level
function, so that worker processes can run it). :func:`get_reader` looks a reader up by the
``DATASET`` name of ``melp prepare``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from melp.data.signal import SignalPolicy
from melp.data.store import Record, Skip

READERS: dict[str, str] = {
    "mimic-iv-ecg": "mimic_iv_ecg",
    "ptbxl": "ptbxl",
    "cpsc2018": "cpsc2018",
    "cinc2021": "cinc",
    "code15": "code15",
    "files": "files",
}
"""``melp prepare`` dataset name → reader module in this package."""


@dataclass(frozen=True)
class Reader:
    """A dataset reader: how to list a raw dataset's records and how to turn one into a store record."""

    name: str
    source: str
    list_items: Callable[[Path, Path | None], list[Any]]
    process: Callable[..., Record | Skip]

    def processor(self, policy: SignalPolicy) -> Callable[[Any], Record | Skip]:
        """``process`` bound to ``policy``: the picklable ``process(item)`` that :func:`melp.data.build_store` takes."""
        return partial(self.process, policy=policy)


def get_reader(name: str) -> Reader:
    """The reader for a ``melp prepare`` dataset name.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    if name not in READERS:
        raise KeyError(f"unknown dataset {name!r}; expected one of {sorted(READERS)}")
    module = importlib.import_module(f"melp.data.readers.{READERS[name]}")
    return Reader(name=name, source=module.SOURCE, list_items=module.list_items, process=module.process)


__all__ = ["READERS", "Reader", "get_reader"]
