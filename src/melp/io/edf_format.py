"""EDF, EDF+ and BDF with ``edfio`` (``read_edf``/``read_bdf``): the ECG signals of the file.

Each signal's label names its lead (``"ECG I"``, ``"EKG V1"``, ``"aVR"``…, matched by
:func:`~melp.data.leads.canonical_lead_name`); its physical values come in the unit of its
``physical_dimension`` (``uV``, ``mV``). Leads must share one sampling rate; other signals (an
annotation channel, a respiration trace at another rate) are listed as extra leads and dropped.
The recording's ``equipment`` (EDF+) goes to ``metadata["device"]``, EDF+ annotations to
``metadata["annotations"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from melp.data.leads import canonical_lead_name
from melp.data.signal import RecordError
from melp.io.record import RawECG


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read the standard-lead signals of an EDF/EDF+/BDF file."""
    import edfio

    with path.open("rb") as f:
        is_bdf = f.read(1) == b"\xff"
    reader = edfio.read_bdf if is_bdf else edfio.read_edf
    try:
        edf = reader(path)
    except Exception as exc:
        raise RecordError(f"unreadable EDF/BDF file ({type(exc).__name__}: {exc})") from exc
    signals: list[Any] = list(edf.signals)
    leads = [s for s in signals if canonical_lead_name(s.label) is not None]
    if not leads:
        raise RecordError(f"no standard ECG lead among the signals {[s.label for s in signals]}")
    rates = sorted({float(s.sampling_frequency) for s in leads})
    if len(rates) > 1:
        raise RecordError(f"the ECG leads have different sampling rates {rates}")
    lengths = {len(s.data) for s in leads}
    n = min(lengths)
    metadata: dict[str, Any] = {}
    try:
        equipment = edf.recording.equipment_code
        if equipment and equipment != "X":
            metadata["device"] = equipment
    except Exception:  # plain EDF has no EDF+ recording field
        pass
    annotations = [a.text for a in getattr(edf, "annotations", []) if a.text]
    if annotations:
        metadata["annotations"] = annotations
    extra = [s.label for s in signals if s not in leads]
    if extra:
        metadata["other_signals"] = extra
    return RawECG(
        signal=np.stack([np.asarray(s.data[:n], dtype=np.float64) for s in leads]),
        lead_names=[s.label for s in leads],
        units=[s.physical_dimension or "" for s in leads],
        fs=rates[0],
        metadata=metadata,
    )
