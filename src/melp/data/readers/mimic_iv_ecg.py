"""MIMIC-IV-ECG v1.0 reader (melp-spec §4.1): WFDB records with machine reports cleaned as the reference does.

Layout under ``root``: ``record_list.csv`` (``subject_id, study_id, path``…),
``machine_measurements.csv`` (``subject_id, study_id, report_0 … report_17``…) and the records at
``root/<path>`` (``files/pNNNN/p<subject>/s<study>/<study>.{hea,dat}``, 500 Hz, 10 s, leads
I, II, III, aVR, aVF, aVL, V1–V6: aVF before aVL, so leads are reordered by name). A record's id is
``<subject_id>_<study_id>``, its patient id the subject id. Signals may hold NaN (repaired or
rejected by :class:`~melp.data.signal.SignalPolicy`); records whose cleaned report has fewer than
:data:`MIN_REPORT_WORDS` words are skipped, as in the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from melp.data.readers.common import check_report, make_record, read_wfdb, skip_from
from melp.data.signal import RecordError, SignalPolicy
from melp.data.store import Record, Skip

SOURCE = "mimic-iv-ecg"
MIN_REPORT_WORDS = 4
N_REPORT_COLUMNS = 18
_CHUNK_ROWS = 100_000


class MimicItem(NamedTuple):
    """One record to read: its id, WFDB path (no extension), subject, cleaned report or why it has none."""

    id: str
    path: str
    patient_id: str
    report: str
    problem: str


def clean_report(parts: Sequence[object]) -> str:
    """The reference's report cleaning (melp-spec §4.1 step 1), exactly.

    Non-missing parts are joined with ". "; "EKG"/"ekg" become "ECG"/"ecg"; spaces and ``*`` are
    stripped from the ends, then ``=``/``-``, then ``=``; the text is lower-cased; if any word is
    left, tabs and line breaks become spaces and a final "." is added, otherwise it is "empty".
    """
    text = ". ".join(p for p in parts if isinstance(p, str))
    text = text.replace("EKG", "ECG").replace("ekg", "ecg")
    for _ in range(3):
        text = text.strip(" *")
    text = text.strip("=-").strip("=").lower()
    if not text.split():
        return "empty"
    return text.replace("\n", " ").replace("\r", " ").replace("\t", " ") + "."


def _report_problem(report: str) -> str:
    if report == "empty":
        return "empty report"
    try:
        check_report(report)
    except RecordError as exc:
        return str(exc)
    n_words = len(report.split())
    if n_words < MIN_REPORT_WORDS:
        return (
            f"report has {n_words} word(s); MIMIC-IV-ECG keeps reports of ≥ {MIN_REPORT_WORDS} words (melp-spec §4.1)"
        )
    return ""


def load_reports(path: Path) -> dict[str, str]:
    """Cleaned report of every ``<subject_id>_<study_id>`` in ``machine_measurements.csv``, read in chunks."""
    header = pd.read_csv(path, nrows=0).columns
    report_cols = [f"report_{i}" for i in range(N_REPORT_COLUMNS) if f"report_{i}" in header]
    if not report_cols or not {"subject_id", "study_id"} <= set(header):
        raise ValueError(f"{path}: expected columns subject_id, study_id, report_0…report_17; found {list(header)}")
    reports: dict[str, str] = {}
    chunks = pd.read_csv(
        path,
        usecols=["subject_id", "study_id", *report_cols],
        dtype={c: "object" for c in report_cols},
        chunksize=_CHUNK_ROWS,
        encoding_errors="surrogateescape",
    )
    for chunk in chunks:
        ids = chunk["subject_id"].astype(str) + "_" + chunk["study_id"].astype(str)
        parts = chunk[report_cols].to_numpy()
        for rid, row in zip(ids, parts):
            reports[rid] = clean_report(list(row))
    return reports


def list_items(root: Path, split_csv: Path | None = None) -> list[MimicItem]:
    """Every record of ``record_list.csv``, in its order, with its cleaned report.

    Raises:
        FileNotFoundError: ``record_list.csv`` or ``machine_measurements.csv`` is missing.
        ValueError: ``split_csv`` was given (MIMIC-IV-ECG has no MELP split file).
    """
    if split_csv is not None:
        raise ValueError("mimic-iv-ecg takes no --split-csv; MELP splits it by subject after preparation")
    for name in ("record_list.csv", "machine_measurements.csv"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name} not found; --root must be the MIMIC-IV-ECG folder holding {name}")
    reports = load_reports(root / "machine_measurements.csv")
    records = pd.read_csv(root / "record_list.csv", usecols=["subject_id", "study_id", "path"], dtype=str)
    items = []
    for subject, study, rel in records.itertuples(index=False):
        rid = f"{subject}_{study}"
        report = reports.get(rid)
        problem = "no report in machine_measurements.csv" if report is None else _report_problem(report)
        items.append(
            MimicItem(id=rid, path=str(root / rel), patient_id=str(subject), report=report or "", problem=problem)
        )
    return items


def process(item: MimicItem, policy: SignalPolicy) -> Record | Skip:
    """Read, clean and standardise one record."""
    try:
        if item.problem:
            raise RecordError(item.problem)
        raw = read_wfdb(item.path)
        return make_record(
            raw, id=item.id, policy=policy, patient_id=item.patient_id, source=SOURCE, report=item.report
        )
    except RecordError as exc:
        return skip_from(item.id, exc)
