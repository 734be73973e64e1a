"""NumPy ``.npy``/``.npz`` ECGs, and the matrix-to-record step shared by the formats without lead names.

A bare matrix carries no names, rate or unit, so they come from hints: ``fs=`` (required),
``leads=`` (names in row order, default the standard 12 when there are 12 rows; a list or a
comma-separated string), ``units=`` (default ``mV``). A matrix is ``(leads, samples)`` or
``(samples, leads)``: the axis whose length equals the number of leads is the lead axis (the
shorter axis when ambiguous). An ``.npz`` may carry its own ``fs`` and ``leads`` arrays beside the
signal (``signal``, ``ecg`` or its only 2-D array); hints win.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melp.data.leads import STANDARD_LEADS
from melp.data.signal import RecordError
from melp.io.record import RawECG


def lead_names_hint(value: Any) -> list[str] | None:
    """``leads=`` as a list of names (``"I,II,V1"`` or a sequence), None if not given."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence | np.ndarray):
        return [str(v).strip() for v in value]
    raise RecordError(f"leads= must be names separated by commas or a list, got {type(value).__name__}")


def require_fs(hints: dict[str, Any], what: str) -> float:
    fs = hints.get("fs")
    if fs is None:
        raise RecordError(f"{what} holds no sampling rate; pass fs= (--fs on the command line)")
    try:
        value = float(fs)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"fs={fs!r} is not a number") from exc
    if not value > 0:
        raise RecordError(f"fs={fs!r} must be positive")
    return value


def from_matrix(matrix: np.ndarray, hints: dict[str, Any], *, what: str) -> RawECG:
    """A :class:`RawECG` from a 2-D matrix and the ``fs``/``leads``/``units`` hints."""
    x = np.asarray(matrix)
    if x.ndim != 2:
        raise RecordError(f"{what} has shape {x.shape}; expected a 2-D (leads, samples) matrix")
    if x.dtype.kind not in "iuf":
        raise RecordError(f"{what} is not numeric (dtype {x.dtype})")
    names = lead_names_hint(hints.get("leads"))
    n = len(names) if names is not None else len(STANDARD_LEADS)
    if x.shape[0] != n and x.shape[1] == n:
        x = x.T
    elif x.shape[0] == n and x.shape[1] == n:
        pass
    elif x.shape[0] != n:
        given = f"{n} lead names given" if names is not None else "12 leads assumed (no lead names; pass leads=)"
        raise RecordError(f"{what} has shape {x.shape}: neither axis matches the {given}")
    fs = require_fs(hints, what)
    unit = str(hints.get("units") or "mV")
    return RawECG(
        signal=x.astype(np.float64),
        lead_names=names if names is not None else list(STANDARD_LEADS),
        units=[unit] * n,
        fs=fs,
        metadata={} if names is not None else {"lead_order": "assumed standard (no lead names in the file)"},
    )


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read an ``.npy`` (one matrix) or ``.npz`` (signal plus optional ``fs``/``leads``) file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RecordError(f"unreadable NumPy file ({type(exc).__name__}: {exc})") from exc
    if isinstance(loaded, np.ndarray):
        return from_matrix(loaded, hints, what="the array")
    with loaded as archive:
        arrays = {k: archive[k] for k in archive.files}
    merged = dict(hints)
    if merged.get("fs") is None and "fs" in arrays:
        merged["fs"] = float(np.asarray(arrays["fs"]).ravel()[0])
    if merged.get("leads") is None and "leads" in arrays:
        merged["leads"] = [str(v) for v in np.asarray(arrays["leads"]).ravel()]
    key = merged.get("key") or next((k for k in ("signal", "ecg", "x") if k in arrays), None)
    if key is None:
        matrices = [k for k, v in arrays.items() if v.ndim == 2]
        if len(matrices) != 1:
            raise RecordError(f"no signal array in the .npz (arrays {sorted(arrays)}); pass key=NAME")
        key = matrices[0]
    if key not in arrays:
        raise RecordError(f"no array {key!r} in the .npz (arrays {sorted(arrays)})")
    return from_matrix(arrays[key], merged, what=f"array {key!r}")
