"""Philips PageWriter / IntelliSpace XML (``restingecgdata``, often UTF-16, XLI-compressed) with ``sierraecg``.

``sierraecg.read_file`` decompresses the waveforms (integers, all 12 leads, the rate per lead);
the amplitude scale comes from the file's ``signalcharacteristics/resolution`` (µV per unit; 5 in
PageWriter files). ``repbeats`` are kept as ``median_beats``. Metadata: ``machine`` (and its
``detaildescription``) as ``device``, the interpretation's ``statement`` left/right texts and its
``severity`` as ``statements``, ``globalmeasurements`` as ``measurements``. No patient field is read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from melp.data.signal import RecordError
from melp.io import xml_util as X
from melp.io.record import RawECG


def _metadata(root: ET.Element) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    machine = next(iter(X.descendants(root, "machine")), None)
    if machine is not None:
        label = " ".join(p for p in (X.text(machine), machine.get("detaildescription", "")) if p)
        if label:
            meta["device"] = label
    interpretation = next(iter(X.descendants(root, "interpretation")), None)
    if interpretation is not None:
        statements = []
        for stmt in X.children(interpretation, "statement"):
            left, right = X.text(stmt, "leftstatement"), X.text(stmt, "rightstatement")
            if left:
                statements.append(f"{left} ({right})" if right else left)
        severity = X.text(interpretation, "severity").strip("- ").strip()
        if severity:
            statements.append(severity)
        if statements:
            meta["statements"] = statements
        glob = X.child(interpretation, "globalmeasurements")
        if glob is not None:
            values = {X.local(m.tag): X.number(X.text(m)) for m in glob}
            meta["measurements"] = {k: v for k, v in values.items() if v is not None}
    return meta


def _resolution(root: ET.Element) -> float:
    chars = next(iter(X.descendants(root, "signalcharacteristics")), None)
    value = X.number(X.text(chars, "resolution")) if chars is not None else None
    if not value:
        raise RecordError("no signalcharacteristics/resolution (amplitude scale) in the file")
    return value


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read the 12 leads of a Philips XML file."""
    import sierraecg

    root = X.parse(path)
    scale = _resolution(root)
    try:
        ecg = sierraecg.read_file(str(path))
    except Exception as exc:
        raise RecordError(f"sierraecg cannot decode the waveforms ({type(exc).__name__}: {exc})") from exc
    leads = list(ecg.leads)
    if not leads:
        raise RecordError("the file holds no leads")
    rates = {float(lead.sampling_freq) for lead in leads}
    lengths = {len(lead.samples) for lead in leads}
    if len(rates) > 1 or len(lengths) > 1:
        raise RecordError(f"leads differ in rate {sorted(rates)} or length {sorted(lengths)}")
    signal = np.stack([np.asarray(lead.samples, dtype=np.float64) for lead in leads]) * scale
    median = None
    beats = list(getattr(ecg, "repbeats", []) or [])
    if beats:
        try:
            beat = np.stack([np.asarray(b.samples, dtype=np.float64) for b in beats]) * scale * 1e-3
            median = {
                "fs": float(beats[0].sampling_freq),
                "leads": [b.label for b in beats],
                "signal": beat.astype(np.float32),
            }
        except ValueError:
            median = None  # beats of unequal length: not kept
    return RawECG(
        signal=signal,
        lead_names=[str(lead.label) for lead in leads],
        units=["uV"] * len(leads),
        fs=rates.pop(),
        metadata=_metadata(root),
        median_beats=median,
    )
