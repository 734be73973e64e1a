"""The record a user's file becomes (:class:`ECGRecord`), and the one step every format reader shares.

A format reader returns a :class:`RawECG`: the rhythm signal as the file stores it (any lead
order, names as the file spells them, one unit per lead, physical values) plus the file's own
patient-free metadata. :func:`assemble` turns it into an :class:`ECGRecord` by the policies of
:mod:`melp.data.leads` and :mod:`melp.data.signal` (the dataset readers' own code, not a copy):

1. leads are mapped **by name** to :data:`~melp.data.leads.STANDARD_LEADS` with
   :func:`~melp.data.leads.canonical_lead_name` (``"Lead I (Einthoven)"``, ``"MDC_ECG_LEAD_AVR"``,
   ``"AVR"``...); non-standard leads (Frank ``vx``, ``V7``...) are listed in ``extra_leads`` and
   dropped; a lead named twice is an error;
2. units are converted to millivolts with :func:`~melp.data.signal.to_millivolts`;
3. limb leads the file lacks but that follow from I and II are derived (Einthoven's law and
   Goldberger's augmented leads: III = II − I, aVR = −(I + II)/2, aVL = I − II/2,
   aVF = II − I/2) and listed in ``derived_leads``; GE MUSE, for one, stores only I, II, V1–V6;
4. leads still missing are **zeros** in ``signal`` and ``False`` in ``leads_present``: the
   signal is always ``(12, T)`` and finite, and whoever uses it decides what a missing lead means
   (``melp prepare files`` refuses such a file; :mod:`melp.inference` fills the lead the way
   pretraining's lead masking shows an absent lead).

Non-finite samples are left as they are: the store's cleaning (:func:`melp.data.signal.standardize`)
and inference (:func:`melp.data.signal.repair_nonfinite`) apply their NaN policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from melp.data.leads import N_LEADS, STANDARD_LEADS, canonical_lead_name
from melp.data.signal import RecordError, to_millivolts

_DERIVED: dict[str, tuple[float, float]] = {
    "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5),
    "aVF": (-0.5, 1.0),
}
"""Limb lead → (weight of I, weight of II)."""


class ECGReadError(RecordError):
    """A file that cannot be read as an ECG. ``str()`` is one line: ``FILE: FORMAT: what is wrong``."""

    def __init__(self, path: str, format: str, reason: str) -> None:
        self.path = path
        self.format = format
        self.reason = reason
        super().__init__(f"{path}: {format}: {reason}")


@dataclass
class RawECG:
    """A reader's output: ``signal`` ``(C, T)`` physical values, one row per entry of ``lead_names``.

    Attributes:
        signal: ``(C, T)`` samples in the units of ``units``.
        lead_names: the file's own lead names.
        units: one unit per lead (``mV``, ``uV``, ``V``, ``NU``...).
        fs: sampling rate in Hz.
        metadata: patient-free, JSON-serialisable metadata (``device``, ``statements``,
            ``measurements``...).
        median_beats: a representative/median beat ``{"fs": Hz, "leads": [...], "signal": (C, M)
            in mV}`` where the file has one; kept beside the rhythm, never used as the signal.
    """

    signal: np.ndarray
    lead_names: list[str]
    units: list[str]
    fs: float
    metadata: dict[str, Any] = field(default_factory=dict)
    median_beats: dict[str, Any] | None = None


@dataclass
class ECGRecord:
    """One ECG read from a user's file (see the module docstring for how it is built).

    Attributes:
        path: the file read.
        format: the detected format (a key of :data:`melp.io.FORMATS`).
        signal: ``(12, T)`` float32 millivolts (``units="NU"``: the file's unitless values) in
            :data:`~melp.data.leads.STANDARD_LEADS` order; missing leads are zeros.
        fs: sampling rate in Hz.
        leads_present: ``(12,)`` bool, the leads the file holds or that were derived from them.
        units: ``mV``, or ``NU`` where the file gives no voltage unit.
        source_leads: the file's lead names, in its order.
        derived_leads: limb leads computed from I and II.
        extra_leads: the file's leads that are not one of the 12 standard leads (dropped).
        metadata: patient-free metadata (``device``, ``statements``, ``measurements``...).
        median_beats: the file's representative beat, if any (see :class:`RawECG`).
        problems: human-readable notes on anything unusual (derived or missing leads, assumed order).
    """

    path: str
    format: str
    signal: np.ndarray
    fs: float
    leads_present: np.ndarray
    units: str = "mV"
    source_leads: list[str] = field(default_factory=list)
    derived_leads: list[str] = field(default_factory=list)
    extra_leads: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    median_beats: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.signal.shape[1] / self.fs

    @property
    def leads_found(self) -> list[str]:
        return [lead for lead, ok in zip(STANDARD_LEADS, self.leads_present) if ok]

    @property
    def leads_missing(self) -> list[str]:
        return [lead for lead, ok in zip(STANDARD_LEADS, self.leads_present) if not ok]

    def statements(self) -> list[str]:
        """The cart's interpretation statements (``[]`` when the file has none)."""
        return [str(s) for s in self.metadata.get("statements", [])]

    def readings(self) -> dict[str, Any]:
        """What was read, JSON-serialisable: format, fs, duration, leads found/missing/derived, problems, metadata."""
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "fs": self.fs,
            "n_samples": int(self.signal.shape[1]),
            "duration_s": round(self.duration, 4),
            "units": self.units,
            "leads_found": self.leads_found,
            "leads_missing": self.leads_missing,
            "leads_derived": list(self.derived_leads),
            "leads_ignored": list(self.extra_leads),
            "problems": list(self.problems),
            "metadata": self.metadata,
        }
        if self.median_beats is not None:
            beat = self.median_beats
            out["median_beats"] = {"fs": beat["fs"], "leads": beat["leads"], "n_samples": int(beat["signal"].shape[1])}
        return out


def map_leads(names: list[str]) -> tuple[dict[str, int], list[str]]:
    """Standard lead → row index in ``names``, and the names that are not standard leads.

    Raises:
        RecordError: a standard lead appears twice.
    """
    index: dict[str, int] = {}
    extra: list[str] = []
    for i, name in enumerate(names):
        canon = canonical_lead_name(str(name))
        if canon is None:
            extra.append(str(name))
        elif canon in index:
            raise RecordError(f"lead {canon} appears twice ({names[index[canon]]!r} and {name!r})")
        else:
            index[canon] = i
    return index, extra


def assemble(raw: RawECG, *, path: str, format: str) -> ECGRecord:
    """Build the :class:`ECGRecord` of ``raw`` (leads by name, mV, derived limb leads, zeros where missing).

    Raises:
        RecordError: no standard lead at all, a lead named twice, an unknown unit, no samples, a
            non-positive rate.
    """
    sig = np.asarray(raw.signal)
    if sig.ndim != 2 or sig.shape[0] != len(raw.lead_names):
        raise RecordError(f"signal of shape {sig.shape} does not match its {len(raw.lead_names)} lead names")
    if sig.shape[1] == 0:
        raise RecordError("the file holds no samples")
    if not raw.fs > 0:
        raise RecordError(f"sampling rate {raw.fs} Hz is not positive")
    index, extra = map_leads(raw.lead_names)
    if not index:
        raise RecordError(
            f"no standard lead among {list(raw.lead_names)} (expected names such as I, II, aVR, V1; pass leads=...)"
        )
    rows = [index[lead] for lead in STANDARD_LEADS if lead in index]
    values, unit = to_millivolts(sig[rows].astype(np.float64), [raw.units[i] for i in rows])
    out = np.zeros((N_LEADS, sig.shape[1]), dtype=np.float64)
    present = np.zeros(N_LEADS, dtype=bool)
    for row, lead in zip(values, [lead for lead in STANDARD_LEADS if lead in index]):
        k = STANDARD_LEADS.index(lead)
        out[k], present[k] = row, True
    derived: list[str] = []
    if present[0] and present[1]:
        for lead, (w1, w2) in _DERIVED.items():
            k = STANDARD_LEADS.index(lead)
            if not present[k]:
                out[k] = w1 * out[0] + w2 * out[1]
                present[k] = True
                derived.append(lead)
    problems = []
    if derived:
        problems.append(f"lead(s) {', '.join(derived)} derived from I and II")
    missing = [lead for lead, ok in zip(STANDARD_LEADS, present) if not ok]
    if missing:
        problems.append(f"{N_LEADS - len(missing)} of 12 leads; missing {', '.join(missing)}")
    if extra:
        problems.append(f"non-standard lead(s) ignored: {', '.join(extra)}")
    if unit == "NU":
        problems.append("no voltage unit in the file; values kept as they are (NU)")
    return ECGRecord(
        path=path,
        format=format,
        signal=out.astype(np.float32),
        fs=float(raw.fs),
        leads_present=present,
        units=unit,
        source_leads=[str(n) for n in raw.lead_names],
        derived_leads=derived,
        extra_leads=extra,
        metadata=raw.metadata,
        median_beats=raw.median_beats,
        problems=problems,
    )
