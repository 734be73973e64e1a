"""Rhythm model of the synthetic corpus: beat times, beat types and PR intervals for every rhythm label.

Sinus rhythms follow a mean rate in the label's band with respiratory and low-frequency heart-rate
variability (sinus arrhythmia: a large respiratory modulation); atrial fibrillation draws
irregularly irregular RR intervals and has no P waves; atrial flutter conducts every 2nd, 3rd or
4th flutter wave; premature ventricular beats come early and are followed by a full
compensatory pause, premature atrial beats come early and reset the sinus node. Times are in
seconds from the first sample; beats are generated from before the window to after it so that the
edges look like a continuous recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Mean heart-rate bands (beats per minute) of each rhythm label.
RATE_BANDS: dict[str, tuple[float, float]] = {
    "SR": (62.0, 96.0),
    "SBRAD": (42.0, 56.0),
    "STACH": (106.0, 145.0),
    "SARRH": (67.0, 88.0),
    "AFIB": (70.0, 140.0),
}
_MARGIN_S = 1.5


@dataclass
class Beats:
    """Ventricular beats of one record (times in seconds).

    Attributes:
        qrs_onset: ``(M,)`` QRS onset times, increasing.
        types: ``(M,)`` beat types, ``N`` (conducted), ``PVC`` or ``PAC``.
        pr: ``(M,)`` PR interval (P onset to QRS onset), NaN where the beat has no P wave.
        rr_prev: ``(M,)`` interval from the previous beat (the mean RR for the first one).
        flutter_period: flutter-wave cycle length in seconds, 0 unless atrial flutter.
        flutter_phase: time of one flutter-wave nadir (seconds), 0 unless atrial flutter.
    """

    qrs_onset: np.ndarray
    types: np.ndarray
    pr: np.ndarray
    rr_prev: np.ndarray
    flutter_period: float = 0.0
    flutter_phase: float = 0.0


def _sinus_times(rng: np.random.Generator, rhythm: str, seconds: float) -> np.ndarray:
    """QRS onset times of a sinus rhythm with heart-rate variability (a loop over ~20 beats)."""
    lo, hi = RATE_BANDS[rhythm]
    rr0 = 60.0 / rng.uniform(lo, hi)
    resp = rng.uniform(0.12, 0.22) if rhythm == "SARRH" else rng.uniform(0.005, 0.025)
    f_resp, phase = rng.uniform(0.18, 0.3), rng.uniform(0, 2 * np.pi)
    times = [-_MARGIN_S - rng.uniform(0, rr0)]
    lf = 0.0
    while times[-1] < seconds + _MARGIN_S + 4 * rr0:
        lf = 0.7 * lf + rng.normal(0, 0.008)
        t = times[-1]
        times.append(t + rr0 * (1 + resp * np.sin(2 * np.pi * f_resp * t + phase) + lf))
    return np.asarray(times)


def _af_times(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Irregularly irregular QRS onset times: independent RR intervals with a large spread."""
    lo, hi = RATE_BANDS["AFIB"]
    rr_mean = 60.0 / rng.uniform(lo, hi)
    cv = rng.uniform(0.18, 0.3)
    n = int((seconds + 2 * _MARGIN_S) / (0.5 * rr_mean)) + 4
    rr = np.maximum(rng.gamma(1 / cv**2, rr_mean * cv**2, size=n), 0.3)
    return -_MARGIN_S - rng.uniform(0, rr_mean) + np.concatenate([[0.0], np.cumsum(rr)])


def _flutter_times(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, float, float]:
    """QRS onsets locked to flutter waves (2:1, 4:1 or variable block), the flutter period and phase."""
    period = 60.0 / rng.uniform(250, 330)
    phase = rng.uniform(0, period)
    scheme = rng.choice(["2:1", "4:1", "variable"], p=[0.45, 0.3, 0.25])
    n = int((seconds + 2 * _MARGIN_S) / period) + 8
    if scheme == "variable":
        steps = rng.choice([2, 3, 4], size=n)
    else:
        steps = np.full(n, int(str(scheme)[0]))
    wave_index = np.cumsum(steps)
    av_delay = rng.uniform(0.16, 0.26)
    times = phase - _MARGIN_S - 4 * period + wave_index * period + av_delay
    return times[times < seconds + _MARGIN_S + 2], period, phase


def _premature_slots(rng: np.random.Generator, times: np.ndarray, seconds: float, taken: set[int]) -> list[int]:
    """Indices of 2-4 beats inside the visible window to make premature, each between two normal beats.

    Premature beats are at least three beats apart (no bigeminy), so a record keeps pairs of
    consecutive normal beats.
    """
    inside = [
        i for i in range(2, len(times) - 2) if 0.4 < times[i] < seconds - 0.8 and all(abs(i - j) > 2 for j in taken)
    ]
    k = int(rng.integers(2, 5))
    chosen: list[int] = []
    for i in rng.permutation(inside):
        if len(chosen) < k and all(abs(int(i) - j) > 2 for j in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def sample_beats(
    rng: np.random.Generator, rhythm: str, *, seconds: float, pvc: bool, pac: bool, av_block: bool
) -> Beats:
    """Beats of one record for a rhythm label (one of RHYTHM_CODES) and its ectopy.

    Args:
        rng: the record's generator.
        rhythm: ``SR``, ``SBRAD``, ``STACH``, ``SARRH``, ``AFIB`` or ``AFLT``.
        seconds: record length.
        pvc, pac: insert premature ventricular / atrial beats (2-4 each where the window has room).
        av_block: first-degree AV block (PR 230-340 ms instead of 120-190 ms).
    """
    flutter_period = flutter_phase = 0.0
    if rhythm == "AFIB":
        times = _af_times(rng, seconds)
    elif rhythm == "AFLT":
        times, flutter_period, flutter_phase = _flutter_times(rng, seconds)
    elif rhythm in RATE_BANDS:
        times = _sinus_times(rng, rhythm, seconds)
    else:
        raise ValueError(f"unknown rhythm {rhythm!r}; expected one of {sorted(RATE_BANDS)} or AFLT")
    types = np.full(len(times), "N", dtype="<U3")
    sinus = rhythm not in ("AFIB", "AFLT")
    pr_lo, pr_hi = (0.23, 0.34) if av_block else (0.12, 0.19 if rhythm != "STACH" else 0.16)
    pr = np.full(len(times), rng.uniform(pr_lo, pr_hi) if sinus else np.nan)
    taken: set[int] = set()
    if pac and sinus:
        for i in _premature_slots(rng, times, seconds, taken):
            rr = times[i] - times[i - 1]
            early = times[i - 1] + rng.uniform(0.6, 0.75) * rr
            times[i + 1 :] += early - times[i] + rng.uniform(0.03, 0.08)
            times[i], types[i] = early, "PAC"
            pr[i] = rng.uniform(0.12, 0.18)
            taken.add(i)
    if pvc:
        for i in _premature_slots(rng, times, seconds, taken):
            times[i] = times[i - 1] + rng.uniform(0.5, 0.68) * (times[i] - times[i - 1])
            types[i], pr[i] = "PVC", np.nan
            taken.add(i)
    keep = times < seconds + _MARGIN_S
    times, types, pr = times[keep], types[keep], pr[keep]
    rr_prev = np.diff(times, prepend=times[0] - np.median(np.diff(times)))
    return Beats(times, types, pr, rr_prev, flutter_period, flutter_phase)
