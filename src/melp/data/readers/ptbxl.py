"""PTB-XL reader (melp-spec §4.3): WFDB records, SCP-code labels aggregated through ``scp_statements.csv``.

Layout under ``root``: ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records500/`` and/or
``records100/`` (``records500`` is read when present, else ``records100``; the signal is then
resampled to the store's rate). Record id = ``ecg_id``. Meta columns:

- ``labels``: every SCP code of ``scp_codes`` (any likelihood), trailing ``_`` removed (``NST_`` →
  ``NST``, the spelling of MELP's class names);
- ``labels_super`` / ``labels_sub``: the diagnostic class / subclass of its diagnostic codes;
- ``labels_form`` / ``labels_rhythm``: its form / rhythm codes;
- ``strat_fold`` (PTB-XL's 1–10), ``report`` (the free text, mostly German), ``age``, ``sex``,
  ``has_scp_codes`` (False where the record has no database row, so its ``labels_*`` are unknown).

With ``split_csv`` (a MELP split file, :mod:`melp.data.readers.split_csv`) the records are the
file's rows, ``labels`` are its positive class columns, and its task column (e.g.
``super_class``) also fills the matching ``labels_*`` column.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import pandas as pd

from melp.data.readers.common import check_report, make_record, read_wfdb, skip_from
from melp.data.readers.split_csv import read_split_csv
from melp.data.signal import RecordError, SignalPolicy
from melp.data.store import Record, Skip

SOURCE = "ptbxl"
LABEL_COLUMNS = ("labels_super", "labels_sub", "labels_form", "labels_rhythm")


class PtbxlItem(NamedTuple):
    """One record to read: id, WFDB path (no extension), patient, report, labels, extra meta columns."""

    id: str
    path: str
    patient_id: str
    report: str
    labels: tuple[str, ...]
    extra: dict[str, Any]


def _code(code: str) -> str:
    return code.rstrip("_")


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def aggregate_codes(scp_codes: str, statements: pd.DataFrame) -> dict[str, Any]:
    """``labels`` and the four ``labels_*`` lists of one ``scp_codes`` string (a Python dict literal)."""
    codes = list(ast.literal_eval(scp_codes)) if isinstance(scp_codes, str) and scp_codes.strip() else []
    known = [c for c in codes if c in statements.index]
    rows = statements.loc[known]
    diag = rows[rows["diagnostic"] == 1]
    return {
        "labels": _unique([_code(c) for c in codes]),
        "labels_super": _unique([_code(c) for c in diag["diagnostic_class"].dropna()]),
        "labels_sub": _unique([_code(c) for c in diag["diagnostic_subclass"].dropna()]),
        "labels_form": _unique([_code(c) for c in rows.index[rows["form"] == 1]]),
        "labels_rhythm": _unique([_code(c) for c in rows.index[rows["rhythm"] == 1]]),
    }


def _id_str(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(int(value)) if isinstance(value, float | np.floating) and float(value).is_integer() else str(value)


def _records_dir(root: Path) -> str:
    return "filename_hr" if (root / "records500").is_dir() else "filename_lr"


def _database(root: Path) -> pd.DataFrame | None:
    path = root / "ptbxl_database.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, index_col="ecg_id", encoding_errors="surrogateescape")


def _statements(root: Path) -> pd.DataFrame:
    path = root / "scp_statements.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; --root must be the PTB-XL folder holding scp_statements.csv")
    return pd.read_csv(path, index_col=0)


def _row_meta(row: pd.Series | None, statements: pd.DataFrame) -> tuple[str, str, dict[str, Any]]:
    """(patient_id, report, extra) of a database row; empty labels where there is no row."""
    if row is None:
        extra: dict[str, Any] = {"labels": [], **{c: [] for c in LABEL_COLUMNS}}
        extra.update(strat_fold=None, age=None, sex=None, has_scp_codes=False)
        return "", "", extra
    extra = aggregate_codes(row["scp_codes"], statements)
    extra.update(
        strat_fold=int(row["strat_fold"]),
        age=None if pd.isna(row.get("age")) else float(row["age"]),
        sex=None if pd.isna(row.get("sex")) else int(row["sex"]),
        has_scp_codes=True,
    )
    report = row.get("report")
    return _id_str(row.get("patient_id")), report if isinstance(report, str) else "", extra


def list_items(root: Path, split_csv: Path | None = None) -> list[PtbxlItem]:
    """Every record of ``ptbxl_database.csv`` (or of ``split_csv``), in file order.

    Raises:
        FileNotFoundError: the database (without a split file) or the statements table is missing.
        ValueError: a split file without ``ecg_id`` or without a filename column.
    """
    statements = _statements(root)
    database = _database(root)
    column = _records_dir(root)
    items: list[PtbxlItem] = []
    if split_csv is None:
        if database is None:
            raise FileNotFoundError(f"{root / 'ptbxl_database.csv'} not found; --root must be the PTB-XL folder")
        for ecg_id, row in database.iterrows():
            patient, report, extra = _row_meta(row, statements)
            codes = tuple(extra.pop("labels"))
            items.append(PtbxlItem(str(ecg_id), str(root / row[column]), patient, report, codes, extra))
        return items
    split = read_split_csv(split_csv)
    frame = split.frame
    if "ecg_id" not in frame.columns:
        raise ValueError(f"{split_csv}: a PTB-XL split file needs an ecg_id column")
    if column not in frame.columns:
        column = "filename_lr" if "filename_lr" in frame.columns else "filename_hr"
    if column not in frame.columns:
        raise ValueError(f"{split_csv}: a PTB-XL split file needs filename_lr or filename_hr")
    for (_, row), labels in zip(frame.iterrows(), split.labels):
        ecg_id = int(row["ecg_id"])
        db_row = cast(pd.Series, database.loc[ecg_id]) if database is not None and ecg_id in database.index else None
        patient, report, extra = _row_meta(db_row, statements)
        extra.pop("labels")
        if split.task_column is not None:
            extra[split.task_column] = list(labels)
        if "strat_fold" in frame.columns:
            extra["strat_fold"] = int(row["strat_fold"])
        if not patient and "patient_id" in frame.columns:
            patient = _id_str(row["patient_id"])
        items.append(PtbxlItem(str(ecg_id), str(root / row[column]), patient, report, tuple(labels), extra))
    return items


def process(item: PtbxlItem, policy: SignalPolicy) -> Record | Skip:
    """Read and standardise one PTB-XL record."""
    try:
        raw = read_wfdb(item.path)
        return make_record(
            raw,
            id=item.id,
            policy=policy,
            patient_id=item.patient_id,
            source=SOURCE,
            report=check_report(item.report),
            labels=item.labels,
            extra=item.extra,
        )
    except RecordError as exc:
        return skip_from(item.id, exc)
