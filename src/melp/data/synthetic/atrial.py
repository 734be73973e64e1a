"""Atrial activity without P waves: fibrillatory baseline (atrial fibrillation) and flutter waves.

Both are 3-D dipole signals added to the beat dipole before lead projection, so they appear with
a physiological lead distribution (f waves largest in V1 and the inferior leads, the flutter
sawtooth negative in II, III and aVF).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import sawtooth

from melp.data.synthetic.rhythm import Beats


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def fibrillatory_waves(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """``(3, T)`` irregular 4-9 Hz f waves of 30-80 µV (dipole units) at times ``t`` (seconds)."""
    direction = _unit(np.array([-0.3, 0.5, 0.8]) + rng.normal(0, 0.15, size=3))
    f0 = rng.uniform(5.0, 8.0)
    freqs = f0 + rng.uniform(-0.8, 0.8, size=3)  # (3,)
    weights = rng.dirichlet(np.ones(3))
    drift = rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
    phases = 2 * np.pi * freqs[:, None] * t[None] + rng.uniform(0, 2 * np.pi, size=(3, 1)) + drift  # (3, T)
    wave = weights @ np.sin(phases)  # (T,)
    return rng.uniform(0.03, 0.08) * direction[:, None] * wave[None]


def flutter_waves(rng: np.random.Generator, beats: Beats, t: np.ndarray) -> np.ndarray:
    """``(3, T)`` sawtooth flutter waves (slow descent, fast upstroke, nadir at the beats' flutter phase)."""
    if beats.flutter_period <= 0:
        raise ValueError("flutter waves need beats drawn for atrial flutter (flutter_period > 0)")
    direction = _unit(np.array([0.2, 1.0, 0.3]) + rng.normal(0, 0.1, size=3))
    wave = sawtooth(2 * np.pi * (t - beats.flutter_phase) / beats.flutter_period, width=0.2)  # (T,)
    return rng.uniform(0.1, 0.2) * direction[:, None] * wave[None]
