"""HL7 aECG (FDA annotated ECG, ``AnnotatedECG``) with the standard library's XML parser.

The ``series`` coded ``RHYTHM`` is the signal: its ``sequenceSet`` holds a ``TIME_RELATIVE`` (or
``TIME_ABSOLUTE``) sequence whose ``increment`` gives the sampling interval, and one ``SLIST_PQ``
sequence per lead, coded ``MDC_ECG_LEAD_*``, whose samples are ``origin + scale × digits`` in the
scale's unit (``uV``). The ``derivedSeries`` coded ``REPRESENTATIVE_BEAT`` is kept as
``median_beats``. Metadata: the series author's device (model name, manufacturer) as ``device``;
the annotations' coded values as ``measurements`` (``MDC_ECG_HEART_RATE`` → ``{"value": 52,
"unit": "bmp"}``) and their text values as ``statements``. No subject field is read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from melp.data.signal import RecordError, to_millivolts, unit_scale
from melp.io import xml_util as X
from melp.io.record import RawECG

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def _code(element: ET.Element) -> str:
    code = X.child(element, "code")
    return code.get("code", "") if code is not None else ""


def _series(root: ET.Element, kind: str) -> list[ET.Element]:
    tag = "derivedSeries" if kind == "REPRESENTATIVE_BEAT" else "series"
    return [s for s in X.descendants(root, tag) if _code(s) == kind]


def _read_series(series: ET.Element) -> tuple[np.ndarray, list[str], list[str], float]:
    """``(C, T)`` samples, lead names, units and rate of one aECG series."""
    fs: float | None = None
    rows, names, units = [], [], []
    sequences = [
        seq
        for component in X.children(series, "component")
        for sequence_set in X.children(component, "sequenceSet")
        for member in X.children(sequence_set, "component")
        for seq in X.children(member, "sequence")
    ]
    for sequence in sequences:
        code = _code(sequence)
        value = X.child(sequence, "value")
        if value is None:
            continue
        if code.startswith("TIME_"):
            inc = X.child(value, "increment")
            if inc is not None:
                step = X.number(inc.get("value", ""))
                seconds = _TIME_UNITS.get(inc.get("unit", "s"))
                if not step or seconds is None:
                    raise RecordError(f"unreadable time increment {inc.attrib}")
                fs = 1.0 / (step * seconds)
            continue
        digits = X.child(value, "digits")
        if digits is None:
            continue
        origin, scale = X.child(value, "origin"), X.child(value, "scale")
        try:
            samples = np.array((digits.text or "").split(), dtype=np.float64)
        except ValueError as exc:
            raise RecordError(f"lead {code}: non-numeric digits ({exc})") from exc
        s = X.number(scale.get("value", "1")) if scale is not None else 1.0
        o = X.number(origin.get("value", "0")) if origin is not None else 0.0
        unit = (scale.get("unit") if scale is not None else None) or (origin.get("unit") if origin is not None else "")
        if s is None or o is None:
            raise RecordError(f"lead {code}: unreadable origin/scale")
        if origin is not None and scale is not None and origin.get("unit") and origin.get("unit") != scale.get("unit"):
            o = o * unit_scale(origin.get("unit"))[0] / unit_scale(scale.get("unit"))[0]
        rows.append(o + s * samples)
        names.append(code)
        units.append(unit or "")
    if fs is None:
        raise RecordError("the series has no TIME sequence with an increment (no sampling rate)")
    if not rows:
        raise RecordError("the series holds no lead sequences")
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        short = [n for n, r in zip(names, rows) if len(r) < max(lengths)]
        raise RecordError(
            f"leads have different lengths {sorted(lengths)} (short: {', '.join(short)}); truncated file?"
        )
    return np.stack(rows), names, units, fs


def _metadata(root: ET.Element, rhythm: ET.Element) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    device = next(iter(X.descendants(rhythm, "manufacturedSeriesDevice")), None)
    if device is not None:
        parts = [X.text(device, "manufacturerModelName")]
        org = next(iter(X.descendants(rhythm, "manufacturerOrganization")), None)
        parts.append(X.text(org, "name") if org is not None else "")
        label = " ".join(p for p in parts if p)
        if label:
            meta["device"] = label
    measurements: dict[str, Any] = {}
    statements: list[str] = []
    for annotation in X.descendants(root, "annotation"):
        code, value = _code(annotation), X.child(annotation, "value")
        if value is None or not code:
            continue
        number = X.number(value.get("value", ""))
        if number is not None:
            measurements[code] = {"value": number, "unit": value.get("unit", "")}
        elif (value.text or "").strip():
            statements.append((value.text or "").strip())
        elif value.get("displayName"):
            statements.append(value.get("displayName", ""))
    if measurements:
        meta["measurements"] = measurements
    if statements:
        meta["statements"] = statements
    return meta


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read the rhythm series of an HL7 aECG file."""
    root = X.parse(path)
    rhythm = _series(root, "RHYTHM") or X.descendants(root, "series")[:1]
    if not rhythm:
        raise RecordError("no RHYTHM series in the AnnotatedECG")
    signal, names, units, fs = _read_series(rhythm[0])
    median = None
    beats = _series(root, "REPRESENTATIVE_BEAT")
    if beats:
        beat, beat_names, beat_units, beat_fs = _read_series(beats[0])
        beat_mv, _ = to_millivolts(beat, beat_units)
        median = {"fs": beat_fs, "leads": beat_names, "signal": beat_mv.astype(np.float32)}
    return RawECG(
        signal=signal, lead_names=names, units=units, fs=fs, metadata=_metadata(root, rhythm[0]), median_beats=median
    )
