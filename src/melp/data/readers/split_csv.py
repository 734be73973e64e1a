"""MELP-style split files (melp-spec §4.3): metadata columns, then one 0/1 column per class.

Labels are taken **by column name**, never by position (the reference's PTB-XL sub-class files
order three classes differently between splits, melp-spec §9 item 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KNOWN_META_COLUMNS = frozenset(
    {
        "ecg_id",
        "patient_id",
        "strat_fold",
        "filename_lr",
        "filename_hr",
        "filename",
        "validation",
        "age",
        "sex",
        "scp_codes",
        "ecg_path",
        "diagnose",
        "report",
        "super_class",
        "sub_class",
        "superdiagnostic",
        "subdiagnostic",
        "form",
        "rhythm",
        "all",
        "index",
    }
)
"""Columns of MELP's split files that are not classes; every other column is a class."""

TASK_COLUMNS = {
    "super_class": "labels_super",
    "sub_class": "labels_sub",
    "form": "labels_form",
    "rhythm": "labels_rhythm",
}
"""A split file's task column (a list-string) → the store's meta column its labels also go to."""


@dataclass
class SplitTable:
    """A parsed split file: its rows, the class columns, each row's positive classes, and the task column."""

    frame: pd.DataFrame
    classes: list[str]
    labels: list[list[str]]
    task_column: str | None


def read_split_csv(path: str | Path) -> SplitTable:
    """Read a MELP-style split CSV.

    Raises:
        ValueError: no class columns, or a class column that is not 0/1 (what was found is named).
    """
    path = Path(path)
    frame = pd.read_csv(path, skip_blank_lines=True)
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed:")]]
    classes = [str(c) for c in frame.columns if str(c) not in KNOWN_META_COLUMNS]
    if not classes:
        raise ValueError(
            f"{path}: no class columns after the metadata columns {sorted(KNOWN_META_COLUMNS & set(frame.columns))}"
        )
    values = frame[classes].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in classes if not values[c].isin([0, 1]).all()]
    if bad:
        raise ValueError(f"{path}: class column(s) {bad} hold values other than 0/1; expected one 0/1 column per class")
    matrix = values.to_numpy(dtype=np.int8)
    labels = [[classes[j] for j in np.flatnonzero(row)] for row in matrix]
    task_column = next((TASK_COLUMNS[c] for c in frame.columns if c in TASK_COLUMNS), None)
    return SplitTable(frame=frame, classes=classes, labels=labels, task_column=task_column)
