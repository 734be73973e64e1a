"""Helpers shared by the dataset readers (issue 2, "Readers" and "Bad input"): WFDB reading with
integrity checks, and turning a raw signal into a :class:`~melp.data.store.Record` or a
:class:`~melp.data.store.Skip`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from melp.data.signal import RecordError, SignalPolicy, standardize
from melp.data.store import Record, Skip

_BYTES_PER_SAMPLE = {
    "8": 1,
    "16": 2,
    "24": 3,
    "32": 4,
    "61": 2,
    "80": 1,
    "160": 2,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}


@dataclass
class RawRecord:
    """A record as its source stores it: ``signal`` ``(C, T)`` physical values, one row per lead name."""

    signal: np.ndarray
    lead_names: list[str]
    units: list[str | None]
    fs: float
    comments: list[str]


def _check_signal_files(record: wfdb.Record, directory: Path) -> None:
    """Raise RecordError where a signal file's size disagrees with the header's length."""
    files: dict[str, list[int]] = {}
    for i, name in enumerate(record.file_name):
        files.setdefault(name, []).append(i)
    for name, channels in files.items():
        fmt = record.fmt[channels[0]]
        if fmt not in _BYTES_PER_SAMPLE:
            continue
        per_frame = sum(record.samps_per_frame[i] for i in channels) * _BYTES_PER_SAMPLE[fmt]
        offset = record.byte_offset[channels[0]] or 0
        expected = offset + math.ceil(record.sig_len * per_frame)
        size = os.path.getsize(directory / name)
        if size != expected:
            raise RecordError(
                f"signal file {name} has {size} bytes but the header's {record.sig_len} samples "
                f"need {expected} (header/signal length mismatch)"
            )


def wfdb_record_line(header: Path) -> str:
    """The record line of a WFDB header (its first line that is neither blank nor a comment), '' if none."""
    for line in header.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def read_wfdb(path: str | Path) -> RawRecord:
    """Read a WFDB record (``path`` without extension) in physical units, checking its files.

    Raises:
        RecordError: missing or empty header, missing signal file, unparsable header, truncated or
            over-long signal file.
    """
    path = Path(path)
    header = path.with_suffix(".hea")
    if not header.is_file():
        raise RecordError(f"missing header {path.name}.hea")
    if not wfdb_record_line(header):
        raise RecordError(f"empty WFDB header {header.name} (no record line)")
    try:
        record = wfdb.rdrecord(str(path))
    except FileNotFoundError as exc:
        raise RecordError(f"missing signal file {Path(exc.filename or '').name or exc}") from exc
    except Exception as exc:
        raise RecordError(f"unreadable WFDB record ({type(exc).__name__}: {exc})") from exc
    if record.p_signal is None or record.n_sig == 0:
        raise RecordError("WFDB record has no signals")
    _check_signal_files(record, path.parent)
    return RawRecord(
        signal=record.p_signal.T,  # (C, T)
        lead_names=list(record.sig_name),
        units=list(record.units or [None] * record.n_sig),
        fs=float(record.fs),
        comments=list(record.comments or []),
    )


def make_record(
    raw: RawRecord | None,
    *,
    id: str,
    policy: SignalPolicy,
    patient_id: str = "",
    source: str = "",
    report: str = "",
    labels: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> Record:
    """Standardise ``raw`` (see :func:`melp.data.signal.standardize`) into a store :class:`Record`.

    Raises:
        RecordError: the record is unusable.
    """
    if raw is None:
        raise RecordError("no signal")
    signal, meta = standardize(raw.signal, lead_names=raw.lead_names, units=raw.units, fs=raw.fs, policy=policy)
    return Record(
        id=id,
        signal=signal,
        patient_id=patient_id,
        source=source,
        report=report,
        labels=list(labels),
        extra={**meta, **(extra or {})},
    )


def skip_from(id: str, exc: RecordError) -> Skip:
    """The :class:`Skip` for a rejected record."""
    return Skip(id=id, reason=str(exc))


def check_report(text: str) -> str:
    """Validate a free-text report: it must be valid UTF-8 text.

    Raises:
        RecordError: the text holds undecodable bytes (read with ``errors="surrogateescape"``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError("report is not valid UTF-8") from exc
    return text
