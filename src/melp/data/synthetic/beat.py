"""Beat model of the synthetic corpus: P-QRS-T wave templates per finding and their placement per beat.

A record's morphology (:class:`Morphology`) is drawn once from its findings: QRS axis and voltage
(axis deviation rotates the frontal R vector; LVH enlarges and low voltage shrinks the QRS),
conduction (bundle-branch blocks widen the QRS to ≥ 120 ms with their typical vectors and a
secondary, discordant ST-T), repolarisation (ST vector for elevation/depression, T vector for
inversion, QTc for long QT), and the ectopic templates (one PVC focus, one PAC focus). The
placement functions turn the beats of :mod:`melp.data.synthetic.rhythm` into Gaussian waves
(see :func:`melp.data.synthetic.dipole.render_waves`) plus the ground-truth wave boundaries.

Dimensions: M beats, J waves per template, K waves in all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melp.data.synthetic.dipole import frontal_axis
from melp.data.synthetic.findings import Findings
from melp.data.synthetic.rhythm import Beats

# Half-width of the T wave in units of its sigma: T onset/offset ground truth = centre ± this.
_T_HALF = 2.2


@dataclass
class WaveTemplate:
    """A complex (P, QRS) as Gaussian waves placed relative to its onset.

    Attributes:
        centers: ``(J,)`` wave centres as fractions of ``duration``.
        sigmas: ``(J,)`` wave widths as fractions of ``duration``.
        vectors: ``(J, 3)`` dipole vectors (mV).
        duration: complex duration in seconds (onset to offset).
        peak: fraction of ``duration`` at which the beat is marked (the main R wave).
    """

    centers: np.ndarray
    sigmas: np.ndarray
    vectors: np.ndarray
    duration: float
    peak: float = 0.45

    def place(self, onsets: np.ndarray, amp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Waves of the complexes starting at ``onsets`` ``(M,)``, scaled per beat by ``amp`` ``(M,)``."""
        centers = onsets[:, None] + self.centers[None] * self.duration  # (M, J)
        sigmas = np.broadcast_to(self.sigmas * self.duration, centers.shape)  # (M, J)
        vectors = amp[:, None, None] * self.vectors[None]  # (M, J, 3)
        return centers.ravel(), sigmas.ravel(), vectors.reshape(-1, 3)

    def frontal_axis_deg(self) -> float:
        """Mean frontal-plane axis of the complex (angle of its net area vector)."""
        area = (self.sigmas[:, None] * self.vectors).sum(axis=0)
        return float(np.rad2deg(np.arctan2(area[1], area[0])))


@dataclass
class Morphology:
    """Per-record wave templates and repolarisation parameters."""

    qrs: WaveTemplate
    p: WaveTemplate
    pac_p: WaveTemplate
    pvc: WaveTemplate
    t_vector: np.ndarray
    pvc_t_vector: np.ndarray
    st_vector: np.ndarray
    t_sigma: float
    qtc: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _net_qrs(qrs: WaveTemplate) -> np.ndarray:
    """Net (area) vector of a QRS template."""
    return (qrs.sigmas[:, None] * qrs.vectors).sum(axis=0)


def _secondary_scale(qrs: WaveTemplate) -> float:
    """Secondary ST-T changes scale with the QRS: 1 for a normal-sized QRS, less for low voltage."""
    return float(min(1.0, np.linalg.norm(qrs.vectors, axis=1).max() / 1.1))


def _qrs_axis(rng: np.random.Generator, f: Findings) -> float:
    if "LAD" in f:
        return rng.uniform(-60, -42) if "LVH" in f else rng.uniform(-78, -42)
    if "RAD" in f:
        return rng.uniform(105, 155)
    if "LVH" in f:
        return rng.uniform(-10, 50)
    if {"CLBBB", "CRBBB"} & set(f.codes):
        return rng.uniform(-5, 55)
    return rng.uniform(10, 70)


def _qrs_magnitude(rng: np.random.Generator, f: Findings) -> float:
    if "LVH" in f:
        return rng.uniform(2.2, 2.8)
    if "LVOLT" in f:
        return rng.uniform(0.2, 0.29)
    return rng.uniform(0.8, 1.15)


def _qrs_template(rng: np.random.Generator, f: Findings) -> WaveTemplate:
    """QRS of conducted beats: normal (septal q, R, S), LBBB (notched broad R) or RBBB (terminal R')."""
    axis, mag = _qrs_axis(rng, f), _qrs_magnitude(rng, f)
    scale = mag / 1.1
    posterior = rng.uniform(-0.8, -0.5) if "LVH" in f else rng.uniform(-0.45, -0.15)
    r_vec = mag * (frontal_axis(axis) + np.array([0.0, 0.0, posterior]))
    septal = np.array([-0.12, 0.05, 0.22]) * rng.uniform(0.8, 1.2) * min(scale, 1.0)
    s_vec = mag * rng.uniform(0.5, 0.9) * np.array([-0.2, -0.15, -0.6])
    if "CLBBB" in f:
        r1 = 0.85 * mag * (frontal_axis(axis - 5) + np.array([0.0, 0.0, -0.9]))
        r2 = mag * (frontal_axis(axis + 10) + np.array([0.0, 0.0, -0.7]))
        init = np.array([0.15, 0.05, -0.05]) * min(scale, 1.0)
        return WaveTemplate(
            np.array([0.1, 0.35, 0.68]), np.array([0.07, 0.12, 0.12]), np.stack([init, r1, r2]),
            rng.uniform(0.13, 0.17), peak=0.35,
        )  # fmt: skip
    if "CRBBB" in f:
        r_prime = rng.uniform(0.5, 0.9) * min(scale, 1.3) * np.array([-0.3, 0.0, 0.95])
        return WaveTemplate(
            np.array([0.1, 0.3, 0.5, 0.78]), np.array([0.05, 0.08, 0.07, 0.1]),
            np.stack([septal, r_vec, 0.5 * s_vec, r_prime]), rng.uniform(0.125, 0.16), peak=0.3,
        )  # fmt: skip
    duration = rng.uniform(0.082, 0.104) + (0.01 if "LVH" in f else 0.0)
    return WaveTemplate(
        np.array([0.15, 0.45, 0.75]), np.array([0.07, 0.11, 0.09]), np.stack([septal, r_vec, s_vec]), duration
    )


def _t_vector(rng: np.random.Generator, f: Findings, qrs: WaveTemplate) -> np.ndarray:
    """T vector: concordant with a normal QRS, discordant after LBBB, inverted with INVT."""
    amp = rng.uniform(0.22, 0.4) * (0.7 if "LVOLT" in f else 1.0)
    if "CLBBB" in f:
        return -rng.uniform(0.3, 0.55) * _secondary_scale(qrs) * _unit(_net_qrs(qrs))
    t = amp * (frontal_axis(rng.uniform(15, 65)) + np.array([0.0, 0.0, rng.uniform(0.15, 0.45)]))
    if "CRBBB" in f:
        t -= 0.3 * amp * _unit(qrs.vectors[-1])
    if f.invt_territory == "lateral":
        t = -rng.uniform(0.25, 0.45) * _unit(t)
    elif f.invt_territory == "anterior":
        t = rng.uniform(0.25, 0.45) * _unit(np.array([0.3, 0.25, -1.0]))
    return t


def _st_vector(rng: np.random.Generator, f: Findings, qrs: WaveTemplate) -> np.ndarray:
    """ST-segment shift vector (zero when the ST segment is isoelectric)."""
    if "CLBBB" in f:
        return -rng.uniform(0.1, 0.2) * _secondary_scale(qrs) * _unit(_net_qrs(qrs))
    if "STE" in f:
        direction = {"anterior": [0.15, 0.0, 1.0], "inferior": [-0.2, 1.0, 0.0], "lateral": [1.0, -0.5, 0.2]}
        return rng.uniform(0.18, 0.32) * _unit(np.array(direction[f.ste_territory]))
    if "STD" in f:
        return rng.uniform(0.12, 0.22) * _unit(np.array([-0.7, -0.5, -0.5]))
    return np.zeros(3)


def sample_morphology(rng: np.random.Generator, f: Findings) -> Morphology:
    """Draw the wave templates of one record from its findings."""
    qrs = _qrs_template(rng, f)
    pa = rng.uniform(1.0, 1.6)
    p = WaveTemplate(
        np.array([0.35, 0.63]), np.array([0.16, 0.16]),
        pa * np.array([[0.02, 0.08, 0.06], [0.09, 0.06, -0.05]]), rng.uniform(0.08, 0.11), peak=0.5,
    )  # fmt: skip
    pac_p = WaveTemplate(
        np.array([0.5]), np.array([0.2]), pa * np.array([[0.08, -0.09, 0.03]]), rng.uniform(0.07, 0.1), peak=0.5
    )
    low = 0.4 if "LVOLT" in f else 1.0
    focus = _unit(rng.normal(size=3) + np.array([0.0, 0.0, 0.5 * rng.choice([-1.0, 1.0])]))
    second = _unit(focus + 0.4 * _unit(rng.normal(size=3)))
    mag = low * rng.uniform(1.3, 2.0)
    pvc = WaveTemplate(
        np.array([0.35, 0.7]), np.array([0.15, 0.15]), mag * np.stack([focus, 0.6 * second]),
        rng.uniform(0.14, 0.18), peak=0.35,
    )  # fmt: skip
    st_vector = _st_vector(rng, f, qrs)
    hyperacute = "STE" in f and "INVT" not in f
    t_vector = _t_vector(rng, f, qrs) + (0.6 * st_vector if hyperacute else 0.0)
    return Morphology(
        qrs=qrs, p=p, pac_p=pac_p, pvc=pvc, t_vector=t_vector,
        pvc_t_vector=-low * rng.uniform(0.3, 0.55) * focus, st_vector=st_vector,
        t_sigma=rng.uniform(0.055, 0.07) if "LNGQT" in f else rng.uniform(0.04, 0.055),
        qtc=rng.uniform(0.49, 0.56) if "LNGQT" in f else rng.uniform(0.37, 0.43),
    )  # fmt: skip


@dataclass
class BeatWaves:
    """Every wave of a record plus the per-beat ground truth (seconds; NaN where undefined).

    Attributes:
        centers, sigmas: ``(K,)``; vectors: ``(K, 3)``; inputs of ``render_waves``.
        peak, p_on, p_off, qrs_on, qrs_off, t_on, t_off: ``(M,)`` per-beat times.
    """

    centers: np.ndarray
    sigmas: np.ndarray
    vectors: np.ndarray
    peak: np.ndarray
    p_on: np.ndarray
    p_off: np.ndarray
    qrs_on: np.ndarray
    qrs_off: np.ndarray
    t_on: np.ndarray
    t_off: np.ndarray


def _t_waves(
    q: np.ndarray, qrs_dur: float, rr: np.ndarray, m: Morphology, vector: np.ndarray, amp: np.ndarray, extra_qt: float
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """T waves (QT from QTc by Bazett) and ST-segment waves after QRS complexes at onsets ``q``."""
    qt = m.qtc * np.sqrt(np.clip(rr, 0.3, 2.0)) + extra_qt  # (M,)
    sigma = np.minimum(m.t_sigma, (qt - qrs_dur - 0.02) / (2 * _T_HALF))
    center = q + qt - _T_HALF * sigma
    waves = [(center, sigma, amp[:, None] * vector[None])]
    if np.any(m.st_vector) and extra_qt == 0.0:
        j_point = q + qrs_dur
        span = center - j_point
        for frac in (0.15, 0.45, 0.75):
            waves.append((j_point + frac * span, 0.2 * span, amp[:, None] * m.st_vector[None] / 1.65))
    c, s, v = (np.concatenate(parts) for parts in zip(*waves, strict=True))
    return (c, s, v.reshape(-1, 3)), center, center - _T_HALF * sigma, q + qt


def place_beats(beats: Beats, m: Morphology, amp: np.ndarray) -> BeatWaves:
    """All waves of a record's beats, vectorised per beat type, with the ground-truth boundaries.

    Args:
        beats: the record's beats.
        m: its morphology.
        amp: ``(M,)`` per-beat amplitude factors (respiration, jitter).
    """
    n = len(beats.qrs_onset)
    nan = np.full(n, np.nan)
    gt = {k: nan.copy() for k in ("peak", "p_on", "p_off", "qrs_on", "qrs_off", "t_on", "t_off")}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for kind, template in (("N", m.qrs), ("PAC", m.qrs), ("PVC", m.pvc)):
        sel = beats.types == kind
        if not sel.any():
            continue
        q, a = beats.qrs_onset[sel], amp[sel]
        parts.append(template.place(q, a))
        gt["peak"][sel] = q + template.peak * template.duration
        gt["qrs_on"][sel], gt["qrs_off"][sel] = q, q + template.duration
        t_vec = m.pvc_t_vector if kind == "PVC" else m.t_vector
        waves, _, gt["t_on"][sel], gt["t_off"][sel] = _t_waves(
            q, template.duration, beats.rr_prev[sel], m, t_vec, a, 0.04 if kind == "PVC" else 0.0
        )
        parts.append(waves)
        has_p = sel & np.isfinite(beats.pr)
        if has_p.any():
            p_template = m.pac_p if kind == "PAC" else m.p
            p_on = beats.qrs_onset[has_p] - beats.pr[has_p]
            parts.append(p_template.place(p_on, amp[has_p]))
            gt["p_on"][has_p], gt["p_off"][has_p] = p_on, p_on + p_template.duration
    centers, sigmas, vectors = (np.concatenate(x) for x in zip(*parts, strict=True))
    return BeatWaves(centers, sigmas, vectors.reshape(-1, 3), **gt)
