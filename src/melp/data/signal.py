"""Signal clean-up shared by every reader (issue 2, "Readers" and "Bad input"; melp-spec §4.1, §9 items 39–40).

A raw record (any lead order, unit, rate and length) becomes a ``(12, T)`` float32 array in
millivolts, leads in :data:`~melp.data.leads.STANDARD_LEADS` order, at the store's rate and length.
The steps, in order, and their policies (all fields of :class:`SignalPolicy`):

1. **Sampling rate** must lie in ``[min_fs, max_fs]``; otherwise the record is rejected.
2. **Leads** are picked and reordered by name (:func:`~melp.data.leads.lead_permutation`);
   missing or duplicated standard leads reject the record.
3. **Units** are converted to mV (``mV``/``mv``/``millivolt`` ×1, ``uV``/``µV``/``μV`` ×1e-3,
   ``V`` ×1e3, ``nV`` ×1e-6). Unitless records (``NU``, ``adu``, empty) are kept as they are when
   ``unitless="keep"`` (the default; the store's ``units`` column then says ``NU``) or rejected
   with ``unitless="skip"``. Any other unit (``mmHg``…) rejects the record.
4. **Non-finite samples** (NaN/±Inf; MIMIC-IV-ECG has them) are linearly interpolated when every
   gap is at most ``max_gap_seconds`` long and they make up at most ``max_nan_fraction`` of the
   record; otherwise the record is rejected. The count is recorded (``n_interpolated``).
5. **Quality**: an all-zero record, or a lead whose peak-to-peak range is at most
   ``flat_threshold``, rejects the record.
6. **Resampling** to ``fs`` with :func:`scipy.signal.resample_poly` (polyphase FIR with a Kaiser
   anti-aliasing window), for any rational ratio.
7. **Length**: a record longer than ``seconds`` is cropped (``crop="start"``: the first ``seconds``,
   as MELP does; ``crop="centre"``: the middle). A shorter record is zero-padded at the end only if
   it lacks at most ``max_pad_seconds``; shorter still, it is rejected. The store records
   ``orig_seconds`` and ``length_policy`` (``exact``, ``cropped`` or ``padded``) for every record,
   so no 5-second record passes for a 10-second one unnoticed.

A rejection raises :class:`RecordError` whose message is the skip reason written to the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from scipy.signal import resample_poly

from melp.data.leads import STANDARD_LEADS, lead_permutation

_UNIT_SCALE: dict[str, float] = {
    "mv": 1.0,
    "millivolt": 1.0,
    "millivolts": 1.0,
    "uv": 1e-3,
    "µv": 1e-3,
    "μv": 1e-3,
    "microvolt": 1e-3,
    "microvolts": 1e-3,
    "v": 1e3,
    "volt": 1e3,
    "volts": 1e3,
    "nv": 1e-6,
}
_UNITLESS = frozenset({"", "nu", "adu", "none", "unitless", "au", "a.u."})


class RecordError(ValueError):
    """A record that cannot be stored; the message is the skip reason."""


@dataclass(frozen=True)
class SignalPolicy:
    """How raw signals are turned into store rows (see the module docstring for each step).

    Attributes:
        fs: target sampling rate (Hz).
        seconds: target length (s).
        crop: which part of a longer record to keep: ``start`` or ``centre``.
        max_pad_seconds: longest zero-padding allowed at the end of a shorter record.
        unitless: ``keep`` (store the values as they are, ``units`` = ``NU``) or ``skip``.
        max_gap_seconds: longest run of non-finite samples that is interpolated.
        max_nan_fraction: largest fraction of non-finite samples that is interpolated.
        flat_threshold: a lead whose peak-to-peak range (in the record's unit after conversion)
            is at most this is flat.
        min_fs, max_fs: accepted range of source sampling rates.
    """

    fs: int = 500
    seconds: float = 10.0
    crop: Literal["start", "centre"] = "start"
    max_pad_seconds: float = 1.0
    unitless: Literal["keep", "skip"] = "keep"
    max_gap_seconds: float = 0.1
    max_nan_fraction: float = 0.01
    flat_threshold: float = 1e-4
    min_fs: float = 50.0
    max_fs: float = 10_000.0

    def __post_init__(self) -> None:
        if self.crop not in ("start", "centre"):
            raise ValueError(f"crop must be 'start' or 'centre', got {self.crop!r}")
        if self.unitless not in ("keep", "skip"):
            raise ValueError(f"unitless must be 'keep' or 'skip', got {self.unitless!r}")
        if self.fs <= 0 or self.seconds <= 0:
            raise ValueError(f"fs and seconds must be positive, got fs={self.fs}, seconds={self.seconds}")
        if not 0 <= self.max_pad_seconds < self.seconds:
            raise ValueError(f"max_pad_seconds must be in [0, seconds), got {self.max_pad_seconds}")

    @property
    def n_samples(self) -> int:
        return round(self.fs * self.seconds)


def unit_scale(unit: str | None, *, unitless: str = "keep") -> tuple[float, str]:
    """Factor that converts ``unit`` to mV, and the unit recorded in the store (``mV`` or ``NU``).

    Raises:
        RecordError: the unit is not a voltage, or is unitless and ``unitless="skip"``.
    """
    key = (unit or "").strip().lower()
    if key in _UNIT_SCALE:
        return _UNIT_SCALE[key], "mV"
    if key in _UNITLESS:
        if unitless == "keep":
            return 1.0, "NU"
        raise RecordError(f"unitless signal (units {unit!r}); expected mV, uV or V")
    raise RecordError(f"unknown units {unit!r}; expected a voltage (mV, uV, µV or V) or NU")


def to_millivolts(signal: np.ndarray, units: Sequence[str | None], *, unitless: str = "keep") -> tuple[np.ndarray, str]:
    """Scale each lead of ``signal`` ``(C, T)`` to mV; returns the scaled array and the stored unit.

    Raises:
        RecordError: a unit is unknown, or leads mix voltage and unitless units.
    """
    if len(units) != signal.shape[0]:
        raise RecordError(f"{len(units)} units for {signal.shape[0]} leads")
    scales, kinds = zip(*(unit_scale(u, unitless=unitless) for u in units))
    if len(set(kinds)) > 1:
        raise RecordError(f"leads mix voltage and unitless units: {sorted(set(map(str, units)))}")
    scale = np.asarray(scales, dtype=np.float64)[:, None]
    out = signal if np.all(scale == 1.0) else signal * scale
    return out, kinds[0]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in a 1-D boolean mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def repair_nonfinite(signal: np.ndarray, fs: float, policy: SignalPolicy) -> tuple[np.ndarray, int]:
    """Interpolate short runs of NaN/±Inf in ``signal`` ``(C, T)``; returns the array and the count fixed.

    Raises:
        RecordError: a lead is entirely non-finite, a gap is longer than ``max_gap_seconds``, or
            the non-finite samples exceed ``max_nan_fraction`` of the record.
    """
    bad = ~np.isfinite(signal)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return signal, 0
    fraction = n_bad / signal.size
    if fraction > policy.max_nan_fraction:
        raise RecordError(
            f"{n_bad} non-finite samples ({fraction:.1%} of the record), more than the "
            f"{policy.max_nan_fraction:.1%} that are interpolated"
        )
    out = signal.copy()
    max_gap = max(1, int(policy.max_gap_seconds * fs))
    t = np.arange(signal.shape[1])
    for lead in np.flatnonzero(bad.any(axis=1)):
        starts, ends = _runs(bad[lead])
        longest = int((ends - starts).max())
        if longest > max_gap:
            name = STANDARD_LEADS[lead] if signal.shape[0] == len(STANDARD_LEADS) else str(lead)
            raise RecordError(
                f"lead {name} has a run of {longest} non-finite samples ({longest / fs:.3f} s), "
                f"longer than the {policy.max_gap_seconds} s that are interpolated"
            )
        good = ~bad[lead]
        out[lead, bad[lead]] = np.interp(t[bad[lead]], t[good], signal[lead, good])
    return out, n_bad


def check_quality(signal: np.ndarray, policy: SignalPolicy) -> None:
    """Reject an all-zero record or one with a flat lead (``signal`` ``(12, T)``, leads in standard order).

    Raises:
        RecordError: with the names of the flat leads.
    """
    if not np.any(signal):
        raise RecordError("all-zero record")
    ptp = np.ptp(signal, axis=1)
    flat = [STANDARD_LEADS[i] for i in np.flatnonzero(ptp <= policy.flat_threshold)]
    if flat:
        raise RecordError(f"flat lead(s) {flat} (peak-to-peak ≤ {policy.flat_threshold})")


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``signal`` ``(C, T)`` from ``fs_in`` to ``fs_out`` Hz with an anti-aliased polyphase filter.

    The output has ``ceil(T * fs_out / fs_in)`` samples; equal rates return the input unchanged.
    """
    ratio = Fraction(fs_out) / Fraction(fs_in).limit_denominator(1000)
    if ratio == 1:
        return signal
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)


def fit_length(signal: np.ndarray, policy: SignalPolicy) -> tuple[np.ndarray, dict[str, Any]]:
    """Crop or zero-pad ``signal`` ``(C, T)`` (already at ``policy.fs``) to ``policy.n_samples``.

    Returns:
        The fitted array and metadata: ``orig_seconds``, ``length_policy`` (``exact``,
        ``cropped`` or ``padded``) and ``pad_seconds``.

    Raises:
        RecordError: the record is shorter than ``seconds - max_pad_seconds``.
    """
    n, target = signal.shape[1], policy.n_samples
    meta: dict[str, Any] = {"orig_seconds": round(n / policy.fs, 4), "length_policy": "exact", "pad_seconds": 0.0}
    if n > target:
        start = (n - target) // 2 if policy.crop == "centre" else 0
        meta["length_policy"] = "cropped"
        return signal[:, start : start + target], meta
    if n < target:
        missing = target - n
        if missing > round(policy.max_pad_seconds * policy.fs):
            raise RecordError(
                f"record is {n / policy.fs:.2f} s, shorter than the {policy.seconds - policy.max_pad_seconds:.2f} s "
                f"minimum (--seconds {policy.seconds:g} minus --max-pad-seconds {policy.max_pad_seconds:g})"
            )
        meta["length_policy"] = "padded"
        meta["pad_seconds"] = round(missing / policy.fs, 4)
        return np.pad(signal, ((0, 0), (0, missing))), meta
    return signal, meta


def standardize(
    signal: np.ndarray,
    *,
    lead_names: Sequence[str],
    units: Sequence[str | None],
    fs: float,
    policy: SignalPolicy,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run every step of the module docstring on one raw record.

    Args:
        signal: ``(C, T)`` raw physical values, one row per entry of ``lead_names``.
        lead_names: the source's lead names (any case, any order, extra leads allowed).
        units: one unit string per lead.
        fs: the source sampling rate.
        policy: the target and the policies.

    Returns:
        ``(12, policy.n_samples)`` float32 array and the per-record metadata (``orig_fs``,
        ``units``, ``n_interpolated``, ``orig_seconds``, ``length_policy``, ``pad_seconds``).

    Raises:
        RecordError: the reason the record cannot be stored.
    """
    if signal.ndim != 2 or signal.shape[0] != len(lead_names):
        raise RecordError(f"signal of shape {signal.shape} does not match {len(lead_names)} lead names")
    if signal.shape[1] == 0:
        raise RecordError("record has no samples")
    if not policy.min_fs <= fs <= policy.max_fs:
        raise RecordError(f"sampling rate {fs} Hz outside the accepted {policy.min_fs:g}–{policy.max_fs:g} Hz")
    try:
        perm = lead_permutation(lead_names)
    except ValueError as exc:
        raise RecordError(str(exc)) from exc
    x = np.asarray(signal, dtype=np.float64)[perm]  # (12, T)
    x, unit = to_millivolts(x, [units[i] for i in perm], unitless=policy.unitless)
    x, n_fixed = repair_nonfinite(x, fs, policy)
    check_quality(x, policy)
    x = resample(x, fs, policy.fs)
    x, length_meta = fit_length(x, policy)
    meta = {"orig_fs": float(fs), "units": unit, "n_interpolated": n_fixed, **length_meta}
    meta["orig_seconds"] = round(signal.shape[1] / fs, 4)
    return np.ascontiguousarray(x, dtype=np.float32), meta
