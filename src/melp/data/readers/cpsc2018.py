"""CPSC 2018 (ICBEB) reader (melp-spec §4.3): the original MATLAB files and ``REFERENCE.csv``.

Layout under ``root`` (searched recursively): ``A*.mat`` files, each with
``loadmat(f)['ECG'][0, 0]`` holding ``sex``, ``age`` and ``data`` (12 × N, mV, 500 Hz, leads I, II,
III, aVR, aVL, aVF, V1–V6, 6–60 s), and ``REFERENCE.csv`` (``Recording, First_label,
Second_label, Third_label``, codes 1–9). Codes map to MELP's class names
(:data:`CODE_NAMES`). Records longer than the store's length are cropped by the policy (MELP
itself keeps 5 s and zero-pads to 10 s, melp-spec §9 item 40; melp keeps up to 10 s of real signal).

With ``split_csv`` (MELP's ``icbeb`` files, or the WFDB release's) the records are the file's rows:
``root/<filename>.hea`` is read as WFDB when present, otherwise ``<stem>.mat`` is found by the
stem of ``filename`` (or ``A%04d`` of ``ecg_id``); labels are the file's positive class columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.io import loadmat

from melp.data.leads import STANDARD_LEADS
from melp.data.readers.common import RawRecord, make_record, read_wfdb, skip_from
from melp.data.readers.split_csv import read_split_csv
from melp.data.signal import RecordError, SignalPolicy
from melp.data.store import Record, Skip

SOURCE = "cpsc2018"
FS = 500.0
CODE_NAMES = {1: "NORM", 2: "AFIB", 3: "1AVB", 4: "CLBBB", 5: "CRBBB", 6: "PAC", 7: "VPC", 8: "STD", 9: "STE"}
"""REFERENCE.csv code → MELP class name (1 Normal, 2 AF, 3 I-AVB, 4 LBBB, 5 RBBB, 6 PAC, 7 PVC, 8 STD, 9 STE)."""


class CpscItem(NamedTuple):
    """One record to read: id, file path ('' if not found), ``mat`` or ``wfdb``, labels."""

    id: str
    path: str
    kind: str
    labels: tuple[str, ...]


def read_mat(path: str | Path) -> tuple[RawRecord, dict[str, Any]]:
    """Read one CPSC 2018 ``.mat`` file: the raw record (mV, 500 Hz) and its ``age``/``sex``.

    Raises:
        RecordError: the file is missing or does not hold ``ECG.data`` of shape (12, N).
    """
    try:
        ecg = loadmat(str(path))["ECG"][0, 0]
        data = np.asarray(ecg["data"], dtype=np.float64)
    except FileNotFoundError as exc:
        raise RecordError(f"missing signal file {Path(path).name}") from exc
    except Exception as exc:
        raise RecordError(f"unreadable CPSC 2018 .mat file ({type(exc).__name__}: {exc})") from exc
    if data.ndim != 2 or data.shape[0] != len(STANDARD_LEADS):
        raise RecordError(f"ECG.data has shape {data.shape}, expected (12, N)")
    age = np.asarray(ecg["age"]).ravel()
    sex = np.asarray(ecg["sex"]).ravel()
    extra = {
        "age": float(age[0]) if age.size and np.isfinite(age[0]) else None,
        "sex": str(sex[0]) if sex.size else None,
    }
    raw = RawRecord(signal=data, lead_names=list(STANDARD_LEADS), units=["mV"] * data.shape[0], fs=FS, comments=[])
    return raw, extra


def _mat_index(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(root.rglob("*.mat"))}


def _reference_items(root: Path) -> list[CpscItem]:
    refs = sorted(root.rglob("REFERENCE.csv"))
    if not refs:
        raise FileNotFoundError(f"no REFERENCE.csv under {root}; --root must be the CPSC 2018 folder")
    mats = _mat_index(root)
    items = []
    for ref in refs:
        table = pd.read_csv(ref)
        for row in table.itertuples(index=False):
            codes = [int(c) for c in row[1:] if pd.notna(c)]
            unknown = [c for c in codes if c not in CODE_NAMES]
            if unknown:
                raise ValueError(f"{ref}: record {row[0]} has label code(s) {unknown}; expected 1–9")
            path = mats.get(str(row[0]))
            labels = tuple(dict.fromkeys(CODE_NAMES[c] for c in codes))
            items.append(CpscItem(str(row[0]), str(path) if path else "", "mat", labels))
    return items


def list_items(root: Path, split_csv: Path | None = None) -> list[CpscItem]:
    """Every record of ``REFERENCE.csv`` (or of ``split_csv``).

    Raises:
        FileNotFoundError: no ``REFERENCE.csv`` (without a split file).
        ValueError: a label code outside 1–9, or a split file without ``filename``/``ecg_id``.
    """
    if split_csv is None:
        return _reference_items(root)
    split = read_split_csv(split_csv)
    frame = split.frame
    if "filename" not in frame.columns and "ecg_id" not in frame.columns:
        raise ValueError(f"{split_csv}: a CPSC 2018 split file needs a filename or an ecg_id column")
    mats = _mat_index(root)
    items = []
    for (_, row), labels in zip(frame.iterrows(), split.labels):
        rel = str(row["filename"]) if "filename" in frame.columns else f"A{int(row['ecg_id']):04d}"
        stem = Path(rel).name
        if (root / rel).with_suffix(".hea").is_file():
            items.append(CpscItem(stem, str(root / rel), "wfdb", tuple(labels)))
        else:
            path = mats.get(stem)
            items.append(CpscItem(stem, str(path) if path else "", "mat", tuple(labels)))
    return items


def process(item: CpscItem, policy: SignalPolicy) -> Record | Skip:
    """Read and standardise one CPSC 2018 record."""
    try:
        if not item.path:
            raise RecordError(f"missing signal file {item.id}.mat")
        if item.kind == "wfdb":
            raw, extra = read_wfdb(item.path), {"age": None, "sex": None}
        else:
            raw, extra = read_mat(item.path)
        return make_record(raw, id=item.id, policy=policy, source=SOURCE, labels=item.labels, extra=extra)
    except RecordError as exc:
        return skip_from(item.id, exc)
