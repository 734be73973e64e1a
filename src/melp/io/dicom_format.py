"""DICOM waveforms (12-lead, general ECG) with ``pydicom``: the rhythm multiplex group.

The ``WaveformSequence`` group labelled ``RHYTHM`` (else the longest group that is not a
median/representative beat) is the signal: ``Dataset.waveform_array`` applies each channel's
sensitivity, correction factor and baseline, and the unit is the channel's
``ChannelSensitivityUnitsSequence`` code (``uV``). Lead names are the channels'
``ChannelSourceSequence`` code meanings (``"Lead I (Einthoven)"``). A ``MEDIAN BEAT`` group is kept
as ``median_beats``. Metadata: ``Manufacturer``/``ManufacturerModelName`` as ``device``, the
``WaveformAnnotationSequence`` texts as ``statements`` and its coded numeric values as
``measurements``. No patient field is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from melp.data.signal import RecordError, to_millivolts
from melp.io.record import RawECG

_BEAT_LABELS = ("MEDIAN", "REPRESENTATIVE", "BEAT")


def _group_label(group: Any) -> str:
    return str(group.get("MultiplexGroupLabel", "") or "").upper()


def _channels(group: Any) -> tuple[list[str], list[str]]:
    names, units = [], []
    for ch in group.ChannelDefinitionSequence:
        source = ch.ChannelSourceSequence[0] if "ChannelSourceSequence" in ch else None
        names.append(str(source.CodeMeaning if source is not None else ch.get("ChannelLabel", "")))
        unit_seq = ch.get("ChannelSensitivityUnitsSequence")
        units.append(str(unit_seq[0].CodeValue) if unit_seq else "")
    return names, units


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read the rhythm waveform of a DICOM ECG."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:
        raise RecordError(f"unreadable DICOM file ({type(exc).__name__}: {exc})") from exc
    groups = list(ds.get("WaveformSequence", []))
    if not groups:
        raise RecordError(f"no WaveformSequence (modality {ds.get('Modality', '?')}); not a DICOM waveform")
    beats = [i for i, g in enumerate(groups) if any(k in _group_label(g) for k in _BEAT_LABELS)]
    rhythm = [i for i, g in enumerate(groups) if _group_label(g) == "RHYTHM"]
    others = [i for i in range(len(groups)) if i not in beats]
    if not rhythm and not others:
        raise RecordError("the file holds only median-beat waveforms, no rhythm")
    index = rhythm[0] if rhythm else max(others, key=lambda i: int(groups[i].NumberOfWaveformSamples))
    try:
        signal = np.asarray(ds.waveform_array(index), dtype=np.float64).T  # (C, T)
    except Exception as exc:
        raise RecordError(f"unreadable waveform data ({type(exc).__name__}: {exc})") from exc
    names, units = _channels(groups[index])
    metadata: dict[str, Any] = {}
    device = " ".join(str(ds.get(k, "")).strip() for k in ("Manufacturer", "ManufacturerModelName")).strip()
    if device:
        metadata["device"] = device
    statements, measurements = [], {}
    for item in ds.get("WaveformAnnotationSequence", []):
        if item.get("UnformattedTextValue"):
            statements.append(str(item.UnformattedTextValue).strip())
        elif "ConceptNameCodeSequence" in item and item.get("NumericValue") is not None:
            name = str(item.ConceptNameCodeSequence[0].CodeMeaning)
            value = item.NumericValue
            measurements[name] = float(value[0] if isinstance(value, list | tuple) else value)
    if statements:
        metadata["statements"] = statements
    if measurements:
        metadata["measurements"] = measurements
    median = None
    if beats:
        b = beats[0]
        beat_names, beat_units = _channels(groups[b])
        beat, _ = to_millivolts(np.asarray(ds.waveform_array(b), dtype=np.float64).T, beat_units)
        median = {"fs": float(groups[b].SamplingFrequency), "leads": beat_names, "signal": beat.astype(np.float32)}
    return RawECG(
        signal=signal,
        lead_names=names,
        units=units,
        fs=float(groups[index].SamplingFrequency),
        metadata=metadata,
        median_beats=median,
    )
