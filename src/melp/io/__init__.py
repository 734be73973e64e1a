"""Read a user's own ECG file, whatever the cart or archive wrote: :func:`read_ecg` → :class:`ECGRecord`.

One reader module per format (``<name>_format.py``), one detection layer (:mod:`melp.io.detect`,
by content) and one assembly step shared by all (:func:`melp.io.record.assemble`: leads by name,
millivolts, derived limb leads, missing leads marked). The dataset readers' own policies are
reused, not copied: WFDB, CPSC ``.mat`` and CODE-15 HDF5 reading come from
:mod:`melp.data.readers`, units from :mod:`melp.data.signal`, lead names from :mod:`melp.data.leads`.

Example::

    from melp.io import read_ecg
    rec = read_ecg("exports/muse_0001.xml")
    rec.signal.shape, rec.fs, rec.leads_missing, rec.statements()   # (12, 5000), 500.0, [], [...]
    read_ecg("strip.csv", fs=250, leads="I,II,V1")                   # text files need fs (and names)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from melp.data.signal import RecordError
from melp.io.detect import detect_format
from melp.io.record import ECGReadError, ECGRecord, RawECG, assemble

FORMATS: dict[str, str] = {
    "wfdb": "WFDB record (.hea + .dat/.mat; multi-segment included)",
    "mat": "MATLAB .mat (CPSC 2018 ECG struct, or a matrix with fs=/leads= hints)",
    "hdf5": "CODE-15% HDF5 (tracings; index= picks the exam)",
    "npy": "NumPy .npy matrix (fs= required; leads= or the standard 12)",
    "npz": "NumPy .npz (signal plus optional fs/leads arrays)",
    "csv": "delimited text, one column per lead (header row or leads=; fs= required)",
    "edf": "EDF / EDF+ / BDF (edfio)",
    "dicom": "DICOM 12-lead / general ECG waveform (pydicom)",
    "aecg": "HL7 aECG XML (AnnotatedECG)",
    "muse": "GE MUSE XML (RestingECG)",
    "philips": "Philips PageWriter XML (restingecgdata; sierraecg)",
}
"""Format name → what it is; its reader is the ``read(path, hints)`` of ``melp.io.<module>`` (:data:`READER_MODULES`)."""

READER_MODULES: dict[str, str] = {name: f"{name}_format" for name in FORMATS} | {
    "npy": "array_format",
    "npz": "array_format",
}
"""Format name → reader module in this package."""

HINTS = ("fs", "leads", "units", "index", "key", "format")
"""Keyword hints :func:`read_ecg` accepts."""


def read_ecg(path: str | Path, **hints: Any) -> ECGRecord:
    """Read one ECG file into an :class:`ECGRecord` (12 standard leads in mV, missing leads marked).

    Args:
        path: the file (for WFDB, the ``.hea``, a signal file or the record name).
        **hints: ``fs`` (Hz; required for CSV/NumPy/bare matrices), ``leads`` (names in the
            file's row/column order, a list or ``"I,II,V1"``), ``units`` (default ``mV`` where the
            file has none), ``index`` (the exam of a CODE-15 HDF5 file), ``key`` (the array of a
            ``.npz``/``.mat``), ``format`` (skip detection). ``None`` values are ignored.

    Raises:
        ECGReadError: the file cannot be used; ``str(exc)`` is ``FILE: FORMAT: what is wrong``.
        TypeError: an unknown hint.
    """
    unknown = sorted(set(hints) - set(HINTS))
    if unknown:
        raise TypeError(f"unknown read_ecg hint(s) {unknown}; accepted: {', '.join(HINTS)}")
    given = {k: v for k, v in hints.items() if v is not None}
    p = Path(path)
    fmt = str(given.pop("format", "") or "")
    try:
        if not fmt:
            fmt = detect_format(p)
        elif fmt not in FORMATS:
            raise RecordError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        module = importlib.import_module(f"melp.io.{READER_MODULES[fmt]}")
        raw: RawECG = module.read(p, given)
        return assemble(raw, path=str(p), format=fmt)
    except ECGReadError:
        raise
    except RecordError as exc:
        raise ECGReadError(str(p), fmt or "unknown format", str(exc)) from exc
    except (OSError, ValueError, KeyError, IndexError, EOFError) as exc:
        raise ECGReadError(str(p), fmt or "unknown format", f"{type(exc).__name__}: {exc}") from exc


__all__ = ["FORMATS", "HINTS", "READER_MODULES", "ECGReadError", "ECGRecord", "RawECG", "detect_format", "read_ecg"]
