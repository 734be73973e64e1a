"""CODE-15% reader (melp-spec §4.3, §9 item 39): ``exams.csv`` plus ``exams_part*.hdf5`` tracings.

Layout under ``root``: ``exams.csv`` (``exam_id, age, is_male, 1dAVb, RBBB, LBBB, SB, AF, ST,
patient_id, normal_ecg, trace_file``…) and ``exams_part{i}.hdf5`` files, each with datasets
``exam_id`` ``(N,)`` and ``tracings`` ``(N, 4096, 12)`` in mV at 400 Hz, leads I, II, III, aVR,
aVL, aVF, V1–V6. The 7 s and 10 s exams are zero-padded (centred) to 4096 samples; that padding
is removed before resampling, so ``orig_seconds`` is the real length and the store's own
crop/pad policy decides what is kept (the reference instead stretched 4096 samples to 5000).
Labels use MELP's names (:data:`LABEL_NAMES`). Rows of the HDF5 files that ``exams.csv`` does not
list (the files' zero filler rows) are ignored; exams without a tracing are skipped.

The CODE **test** set (827 exams, the one MELP evaluates on) is read from the same ``--root``
when it holds ``ecg_tracings.hdf5`` (``tracings`` only, same format) and
``annotations/gold_standard.csv`` (the six label columns, one row per tracing) instead of
``exams.csv``; ids are ``code-test-<row>``, and ``attributes.csv`` (age, sex) is used when present.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import pandas as pd

from melp.data.leads import STANDARD_LEADS
from melp.data.readers.common import RawRecord, make_record, skip_from
from melp.data.signal import RecordError, SignalPolicy
from melp.data.store import Record, Skip

SOURCE = "code15"
FS = 400.0
LABEL_NAMES = {"1dAVb": "1AVB", "RBBB": "RBBB", "LBBB": "LBBB", "SB": "SB", "AF": "AFIB", "ST": "ST"}
"""exams.csv column → MELP's class name."""


class Code15Item(NamedTuple):
    """One exam to read: id, HDF5 file ('' if none holds it) and row, patient, labels, extra meta."""

    id: str
    file: str
    row: int
    patient_id: str
    labels: tuple[str, ...]
    extra: dict[str, Any]


@lru_cache(maxsize=32)
def _open(file: str) -> h5py.File:
    return h5py.File(file, "r")


def _part_number(path: Path) -> tuple[int, str]:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return (int(digits) if digits else -1, path.name)


def list_items(root: Path, split_csv: Path | None = None) -> list[Code15Item]:
    """Every exam of ``exams.csv`` that has a tracing, in HDF5 file/row order, then those without.

    Raises:
        FileNotFoundError: ``exams.csv`` or every ``exams_part*.hdf5`` is missing.
        ValueError: ``split_csv`` was given.
    """
    if split_csv is not None:
        raise ValueError("code15 takes no --split-csv")
    if not (root / "exams.csv").is_file() and (root / "ecg_tracings.hdf5").is_file():
        return _test_items(root)
    if not (root / "exams.csv").is_file():
        raise FileNotFoundError(f"{root / 'exams.csv'} not found; --root must be the CODE-15% folder")
    parts = sorted(root.glob("exams_part*.hdf5"), key=_part_number)
    if not parts:
        raise FileNotFoundError(f"no exams_part*.hdf5 under {root}")
    exams = pd.read_csv(root / "exams.csv")
    exams["exam_id"] = exams["exam_id"].astype(np.int64)
    location: dict[int, tuple[str, int]] = {}
    for part in parts:
        with h5py.File(part, "r") as f:
            for index, exam_id in enumerate(np.asarray(f["exam_id"], dtype=np.int64)):
                location.setdefault(int(exam_id), (str(part), index))
    exams["_file"] = [location.get(int(e), ("", -1))[0] for e in exams["exam_id"]]
    exams["_row"] = [location.get(int(e), ("", -1))[1] for e in exams["exam_id"]]
    part_order = {str(p): i for i, p in enumerate(parts)}
    exams["_part"] = [part_order.get(f, len(parts)) for f in exams["_file"]]
    exams = exams.sort_values(["_part", "_row"], kind="stable")
    items = []
    for row in exams.to_dict("records"):
        labels = tuple(name for col, name in LABEL_NAMES.items() if col in row and bool(row[col]))
        extra = {
            "age": None if pd.isna(row.get("age")) else float(row["age"]),
            "is_male": None if pd.isna(row.get("is_male")) else bool(row["is_male"]),
            "normal_ecg": None if pd.isna(row.get("normal_ecg")) else bool(row["normal_ecg"]),
        }
        patient = "" if pd.isna(row.get("patient_id")) else str(int(row["patient_id"]))
        items.append(Code15Item(str(row["exam_id"]), row["_file"], int(row["_row"]), patient, labels, extra))
    return items


def _test_items(root: Path) -> list[Code15Item]:
    """The CODE test set: ``ecg_tracings.hdf5`` rows with the labels of ``gold_standard.csv``."""
    gold_path = next(
        (p for p in (root / "annotations" / "gold_standard.csv", root / "gold_standard.csv") if p.is_file()), None
    )
    if gold_path is None:
        raise FileNotFoundError(f"no annotations/gold_standard.csv under {root} for ecg_tracings.hdf5")
    gold = pd.read_csv(gold_path)
    with h5py.File(root / "ecg_tracings.hdf5", "r") as f:
        n = len(f["tracings"])
    if len(gold) != n:
        raise ValueError(f"{gold_path} has {len(gold)} rows but ecg_tracings.hdf5 holds {n} tracings")
    attributes = pd.read_csv(root / "attributes.csv") if (root / "attributes.csv").is_file() else None
    items = []
    for row, labels_row in enumerate(gold.to_dict("records")):
        labels = tuple(name for col, name in LABEL_NAMES.items() if bool(labels_row.get(col, 0)))
        extra: dict[str, Any] = {"age": None, "is_male": None, "normal_ecg": None}
        if attributes is not None:
            extra["age"] = float(attributes["age"].iloc[row])
            extra["is_male"] = attributes["sex"].iloc[row] == "M"
        items.append(Code15Item(f"code-test-{row:04d}", str(root / "ecg_tracings.hdf5"), row, "", labels, extra))
    return items


def read_tracing(file: str, row: int) -> RawRecord:
    """One exam's tracing, ``(12, n)`` mV with the zero padding removed.

    Raises:
        RecordError: the tracing is all zeros or not ``(samples, 12)``.
    """
    tracing = np.asarray(_open(file)["tracings"][row], dtype=np.float64)  # (4096, 12)
    if tracing.ndim != 2 or tracing.shape[1] != len(STANDARD_LEADS):
        raise RecordError(f"tracing has shape {tracing.shape}, expected (samples, 12)")
    active = np.flatnonzero(np.any(tracing != 0, axis=1))
    if active.size == 0:
        raise RecordError("all-zero record")
    signal = tracing[active[0] : active[-1] + 1].T  # (12, n)
    return RawRecord(signal=signal, lead_names=list(STANDARD_LEADS), units=["mV"] * 12, fs=FS, comments=[])


def process(item: Code15Item, policy: SignalPolicy) -> Record | Skip:
    """Read, un-pad and standardise one CODE-15% exam."""
    try:
        if not item.file:
            raise RecordError("no tracing in any exams_part*.hdf5")
        raw = read_tracing(item.file, item.row)
        return make_record(
            raw,
            id=item.id,
            policy=policy,
            patient_id=item.patient_id,
            source=SOURCE,
            labels=item.labels,
            extra=item.extra,
        )
    except RecordError as exc:
        return skip_from(item.id, exc)
