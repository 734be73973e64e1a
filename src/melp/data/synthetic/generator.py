"""Synthetic 12-lead ECG-report records with exact ground truth: the embedded default corpus of melp.

One record = findings (:mod:`~melp.data.synthetic.findings`) → beats (:mod:`~.rhythm`) →
waves of a cardiac dipole (:mod:`~.beat`, :mod:`~.atrial`) → 12 leads (:mod:`~.dipole`) + noise
(:mod:`~.noise`), and a machine-style report (:mod:`~.reports`). Each record's random stream is
derived from ``(seed, index)`` alone, so a corpus does not depend on how it is split over workers.

Ground truth in ``Record.extra`` (sample indices, ``-1`` where a boundary is undefined or outside
the window): ``beat_samples`` and ``beat_types`` (``N``, ``PVC``, ``PAC``) of every beat whose R
wave lies in the window, ``p_onsets``/``p_offsets``, ``qrs_onsets``/``qrs_offsets``,
``t_onsets``/``t_offsets``; record-level ``heart_rate`` (bpm), ``qrs_axis`` (degrees),
``qrs_ms``, ``qtc_ms``, ``pr_ms`` (-1 without P waves), ``noise_mv`` (muscle-noise level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from melp.data.store import Record
from melp.data.synthetic.atrial import fibrillatory_waves, flutter_waves
from melp.data.synthetic.beat import BeatWaves, Morphology, place_beats, sample_morphology
from melp.data.synthetic.dipole import lead_matrix, limb_and_chest, render_waves
from melp.data.synthetic.findings import Findings, sample_findings
from melp.data.synthetic.noise import sample_noise, sample_noise_levels
from melp.data.synthetic.reports import write_report
from melp.data.synthetic.rhythm import Beats, sample_beats

SOURCE = "synthetic"


def record_id(seed: int, index: int) -> str:
    """The id of record ``index`` of the corpus drawn with ``seed``."""
    return f"syn{seed}-{index:07d}"


def _check_args(seed: int, index: int, fs: float, seconds: float) -> None:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative integers, got seed={seed}, index={index}")
    if not 50 <= fs <= 5000:
        raise ValueError(f"fs must be between 50 and 5000 Hz, got {fs}")
    if not 2.0 <= seconds <= 120.0:
        raise ValueError(f"seconds must be between 2 and 120, got {seconds}")


def _to_samples(times: np.ndarray, fs: float, n: int) -> list[int]:
    """Sample indices of ``times`` (seconds), -1 where NaN or outside ``[0, n)``."""
    finite = np.isfinite(times)
    idx = np.rint(np.where(finite, times, -1.0) * fs).astype(np.int64)
    idx[~finite | (idx < 0) | (idx >= n)] = -1
    return idx.tolist()


def _ground_truth(beats: Beats, waves: BeatWaves, m: Morphology, fs: float, n: int) -> dict[str, Any]:
    visible = (waves.peak >= 0) & (np.rint(waves.peak * fs) < n)
    rr = np.diff(waves.peak[visible])
    pr = beats.pr[np.isfinite(beats.pr) & (beats.types == "N")]
    return {
        "beat_samples": _to_samples(waves.peak[visible], fs, n),
        "beat_types": beats.types[visible].tolist(),
        **{
            f"{wave}_{edge}sets": _to_samples(getattr(waves, f"{wave}_{edge}")[visible], fs, n)
            for wave in ("p", "qrs", "t")
            for edge in ("on", "off")
        },
        "heart_rate": round(60.0 / float(rr.mean()), 2) if len(rr) else -1.0,
        "qrs_axis": round(m.qrs.frontal_axis_deg(), 1),
        "qrs_ms": round(1000 * m.qrs.duration, 1),
        "qtc_ms": round(1000 * m.qtc, 1),
        "pr_ms": round(1000 * float(pr.mean()), 1) if len(pr) else -1.0,
    }


@dataclass(frozen=True)
class SynthItem:
    """A picklable description of one record to generate (an item for :func:`melp.data.build_store`)."""

    seed: int
    index: int
    fs: int = 500
    seconds: float = 10.0

    @property
    def id(self) -> str:
        return record_id(self.seed, self.index)


def generate_record(*, seed: int, index: int, fs: float = 500, seconds: float = 10.0, noise: bool = True) -> Record:
    """Generate record ``index`` of the synthetic corpus drawn with ``seed``.

    Args:
        seed, index: non-negative integers; the record depends on nothing else.
        fs: sampling rate in Hz.
        seconds: record length.
        noise: add recording noise (the waveform, findings and report are the same either way).

    Returns:
        A :class:`~melp.data.store.Record` with a ``(12, fs × seconds)`` float32 signal in mV
        (standard lead order), ``labels`` = the finding codes, the report, and the ground truth
        described in the module docstring in ``extra``.
    """
    _check_args(seed, index, fs, seconds)
    rng_signal, rng_noise, rng_report = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(3)
    )
    n = round(fs * seconds)
    t = np.arange(n) / fs
    findings: Findings = sample_findings(rng_signal)
    beats = sample_beats(
        rng_signal, findings.rhythm, seconds=seconds,
        pvc="PVC" in findings, pac="PAC" in findings, av_block="1AVB" in findings,
    )  # fmt: skip
    morph = sample_morphology(rng_signal, findings)
    resp = rng_signal.uniform(0.03, 0.08) * np.sin(2 * np.pi * rng_signal.uniform(0.15, 0.3) * beats.qrs_onset)
    amp = 1.0 + resp + rng_signal.normal(0, 0.015, size=len(beats.qrs_onset))  # (M,)
    waves = place_beats(beats, morph, amp)
    dipole = render_waves(waves.centers, waves.sigmas, waves.vectors, fs=fs, n_samples=n)  # (3, T)
    if findings.rhythm == "AFIB":
        dipole += fibrillatory_waves(rng_signal, t)
    elif findings.rhythm == "AFLT":
        dipole += flutter_waves(rng_signal, beats, t)
    leads = (
        lead_matrix(precordial_rotation_deg=rng_signal.uniform(-10, 10), precordial_gain=rng_signal.uniform(0.9, 1.1))
        @ dipole
    )  # (8, T)
    levels = sample_noise_levels(rng_noise, fs=fs)
    if noise:
        leads += sample_noise(rng_noise, levels, fs=fs, n_leads=len(leads), n_samples=n)
    signal = limb_and_chest(leads.astype(np.float32))  # (12, T)
    extra = _ground_truth(beats, waves, morph, fs, n)
    extra["noise_mv"] = round(levels.muscle_mv if noise else 0.0, 4)
    return Record(
        id=record_id(seed, index), signal=signal, patient_id=f"synp{seed}-{index:07d}", source=SOURCE,
        report=write_report(findings, rng_report), labels=list(findings.codes), extra=extra,
    )  # fmt: skip


def process_item(item: SynthItem) -> Record:
    """``process`` function for :func:`melp.data.build_store` (picklable, top level)."""
    return generate_record(seed=item.seed, index=item.index, fs=item.fs, seconds=item.seconds)


def generate(
    n: int, *, seed: int, fs: float = 500, seconds: float = 10.0, start: int = 0, noise: bool = True
) -> list[Record]:
    """Records ``start .. start + n - 1`` of the corpus drawn with ``seed``, in memory.

    ``np.stack([r.signal for r in records])`` gives the ``(n, 12, T)`` array.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return [generate_record(seed=seed, index=i, fs=fs, seconds=seconds, noise=noise) for i in range(start, start + n)]
