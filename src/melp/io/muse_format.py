"""GE MUSE XML (``RestingECG``) with the standard library's XML parser.

The ``Waveform`` whose ``WaveformType`` is ``Rhythm`` is the signal; ``SampleBase`` ×
10^``SampleExponent`` is its rate. Each ``LeadData`` holds ``LeadID``, ``WaveFormData`` (base64
of little-endian int16), ``LeadAmplitudeUnitsPerBit`` (4.88) and ``LeadAmplitudeUnits``
(``MICROVOLTS``): samples are ``int16 × units-per-bit`` in that unit. The byte count must match
``LeadSampleCountTotal`` and, where present, ``LeadDataCRC32`` must match (a truncated or damaged
lead is an error, not a shorter lead). MUSE stores 8 leads (I, II, V1–V6); III, aVR, aVL and aVF
are derived by :func:`melp.io.record.assemble`. The ``Median`` waveform is kept as
``median_beats``. Metadata: ``AcquisitionDevice`` and ``MuseVersion`` as ``device``,
``Diagnosis/DiagnosisStatement/StmtText`` as ``statements`` (one per ``ENDSLINE``),
``RestingECGMeasurements`` as ``measurements``. No ``PatientDemographics`` field is read.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from melp.data.signal import RecordError, to_millivolts
from melp.io import xml_util as X
from melp.io.record import RawECG


def _decode_lead(lead: ET.Element) -> tuple[str, np.ndarray, str]:
    name = X.text(lead, "LeadID")
    data = "".join(X.text(lead, "WaveFormData").split())
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"lead {name}: WaveFormData is not valid base64, truncated or damaged ({exc})") from exc
    expected = X.number(X.text(lead, "LeadSampleCountTotal"))
    if expected is not None and len(raw) != 2 * int(expected):
        raise RecordError(
            f"lead {name}: WaveFormData holds {len(raw)} bytes but LeadSampleCountTotal says {int(expected)} "
            f"samples ({2 * int(expected)} bytes); truncated file?"
        )
    crc = X.number(X.text(lead, "LeadDataCRC32"))
    if crc is not None and zlib.crc32(raw) != int(crc):
        raise RecordError(f"lead {name}: WaveFormData fails its CRC32 check (damaged data)")
    per_bit = X.number(X.text(lead, "LeadAmplitudeUnitsPerBit"))
    if per_bit is None:
        raise RecordError(f"lead {name}: no LeadAmplitudeUnitsPerBit")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) * per_bit
    return name, samples, X.text(lead, "LeadAmplitudeUnits") or "MICROVOLTS"


def _waveform(wave: ET.Element) -> tuple[np.ndarray, list[str], list[str], float]:
    base = X.number(X.text(wave, "SampleBase"))
    exponent = X.number(X.text(wave, "SampleExponent") or "0") or 0.0
    if not base:
        raise RecordError("the waveform has no SampleBase (no sampling rate)")
    leads = [_decode_lead(lead) for lead in X.children(wave, "LeadData")]
    if not leads:
        raise RecordError("the waveform holds no LeadData")
    lengths = {len(s) for _, s, _ in leads}
    if len(lengths) > 1:
        raise RecordError(f"leads have different lengths {sorted(lengths)}")
    return np.stack([s for _, s, _ in leads]), [n for n, _, _ in leads], [u for _, _, u in leads], base * 10**exponent


def _metadata(root: ET.Element) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    device = [X.text(X.child(root, "TestDemographics"), "AcquisitionDevice")]
    version = X.text(X.child(root, "MuseInfo"), "MuseVersion")
    device.append(f"MUSE {version}" if version else "")
    if any(device):
        meta["device"] = ", ".join(d for d in device if d)
    diagnosis = X.child(root, "Diagnosis")
    if diagnosis is not None:
        statements, current = [], []
        for stmt in X.children(diagnosis, "DiagnosisStatement"):
            current.append(X.text(stmt, "StmtText"))
            flags = [X.text(f) for f in X.children(stmt, "StmtFlag")]
            if "ENDSLINE" in flags:
                statements.append(" ".join(p for p in current if p))
                current = []
        if any(current):
            statements.append(" ".join(p for p in current if p))
        if statements:
            meta["statements"] = statements
    measurements = X.child(root, "RestingECGMeasurements")
    if measurements is not None:
        values = {local: X.number(X.text(m)) for m in measurements if (local := X.local(m.tag))}
        meta["measurements"] = {k: v for k, v in values.items() if v is not None}
    return meta


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read the rhythm waveform of a GE MUSE XML export."""
    root = X.parse(path)
    waves = {X.text(w, "WaveformType").lower(): w for w in X.children(root, "Waveform")}
    if "rhythm" not in waves:
        raise RecordError(f"no Rhythm waveform (waveforms: {sorted(waves) or 'none'})")
    signal, names, units, fs = _waveform(waves["rhythm"])
    median = None
    if "median" in waves:
        beat, beat_names, beat_units, beat_fs = _waveform(waves["median"])
        beat_mv, _ = to_millivolts(beat, beat_units)
        median = {"fs": beat_fs, "leads": beat_names, "signal": beat_mv.astype(np.float32)}
    return RawECG(signal=signal, lead_names=names, units=units, fs=fs, metadata=_metadata(root), median_beats=median)
