"""WFDB records (``.hea`` + signal files, single- or multi-segment; PhysioNet/CinC ``.hea`` + ``.mat``) with ``wfdb``.

The dataset readers' :func:`~melp.data.readers.common.read_wfdb` does the reading and its
integrity checks (a signal file shorter or longer than its header says is an error). Multi-segment
records (a master header naming segment headers) are read whole with ``wfdb.rdrecord`` (``m2s``:
segments joined into one signal). Header comment lines are kept in ``metadata["comments"]``;
``# Dx:`` SNOMED codes, where present, in ``metadata["dx_snomed"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wfdb

from melp.data.readers.common import read_wfdb, wfdb_record_line
from melp.data.signal import RecordError
from melp.io.record import RawECG

_PATIENT_WORDS = ("age", "sex", "gender", "name", "dob", "birth", "date", "patient", "id")


def _patient_free(comment: str) -> bool:
    """False for a ``key: value`` comment whose key names a patient field (age, sex, a date, an id...)."""
    key, sep, _ = comment.partition(":")
    words = key.strip().lower().replace("_", " ").split()
    return not (sep and any(word in _PATIENT_WORDS for word in words))


def header_path(path: Path) -> Path:
    """The ``.hea`` of a record given as its header, one of its signal files, or its name."""
    return path if path.suffix == ".hea" else path.with_suffix(".hea")


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read a WFDB record; ``path`` is its ``.hea``, one of its signal files or its name without suffix.

    Raises:
        RecordError: empty or unparsable header, missing or truncated signal file.
    """
    header = header_path(path)
    if not header.is_file():
        raise RecordError(f"missing header {header.name}")
    line = wfdb_record_line(header)
    if not line:
        raise RecordError(f"empty WFDB header {header.name} (no record line)")
    fields = line.split()
    base = header.with_suffix("")
    if len(fields) > 0 and "/" in fields[0]:  # multi-segment: "name/n_segments n_sig fs n_samples"
        try:
            record = wfdb.rdrecord(str(base), m2s=True)
        except Exception as exc:
            raise RecordError(f"unreadable multi-segment WFDB record ({type(exc).__name__}: {exc})") from exc
        if record.p_signal is None or not record.n_sig:
            raise RecordError("multi-segment WFDB record has no signals")
        signal, names, units = record.p_signal.T, list(record.sig_name), list(record.units)
        fs, comments = float(record.fs), list(record.comments or [])
    else:
        raw = read_wfdb(base)
        signal, names, units, fs, comments = raw.signal, raw.lead_names, raw.units, raw.fs, raw.comments
    metadata: dict[str, Any] = {}
    kept = [c for c in comments if _patient_free(c)]
    if kept:
        metadata["comments"] = kept
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep and key.strip().lower() == "dx":
            metadata["dx_snomed"] = [c.strip() for c in value.split(",") if c.strip()]
    return RawECG(signal=signal, lead_names=names, units=[u or "" for u in units], fs=fs, metadata=metadata)
