"""Cardiac dipole (vectorcardiogram) rendering and its projection onto the 12 standard leads.

The heart is one time-varying 3-D dipole ``d(t)`` in body coordinates x (patient's left),
y (inferior, towards the feet) and z (anterior). Every wave is a Gaussian in time times a 3-D
vector; the lead voltage is the projection of ``d(t)`` on the lead's axis. Leads I and II are
projected (hexaxial angles 0° and 60°), III, aVR, aVL and aVF are derived from them by the
Einthoven/Goldberger identities, so those hold exactly, noise included. The precordial leads
V1→V6 sweep the horizontal plane from anterior-right to left with smoothly varying gain.

Dimensions: K waves, W window samples, T samples.
"""

from __future__ import annotations

import numpy as np

# Horizontal-plane angle (degrees from the patient's left towards anterior) and gain of V1..V6.
_PRECORDIAL_ANGLE = np.array([115.0, 94.0, 76.0, 55.0, 28.0, 2.0])
_PRECORDIAL_GAIN = np.array([1.4, 2.0, 2.1, 2.0, 1.8, 1.5])
_MAX_SIGMA_WINDOW = 4.0


def frontal_axis(angle_deg: float) -> np.ndarray:
    """Unit vector in the frontal plane at a hexaxial angle (0° = lead I, +90° = aVF)."""
    a = np.deg2rad(angle_deg)
    return np.array([np.cos(a), np.sin(a), 0.0])


def lead_matrix(*, precordial_rotation_deg: float = 0.0, precordial_gain: float = 1.0) -> np.ndarray:
    """``(8, 3)`` axes of the independent leads I, II, V1..V6 (rows), in millivolts per dipole unit.

    Args:
        precordial_rotation_deg: rotation of the whole precordial sweep about the vertical axis
            (heart position, electrode placement); keeps V1→V6 smooth.
        precordial_gain: common gain of the chest leads (chest wall thickness).
    """
    rows = [frontal_axis(0.0), frontal_axis(60.0)]
    ang = np.deg2rad(_PRECORDIAL_ANGLE + precordial_rotation_deg)
    chest = np.stack([np.cos(ang), np.zeros_like(ang), np.sin(ang)], axis=1)  # (6, 3)
    chest *= (precordial_gain * _PRECORDIAL_GAIN)[:, None]
    return np.concatenate([np.stack(rows), chest])


def render_waves(
    centers: np.ndarray, sigmas: np.ndarray, vectors: np.ndarray, *, fs: float, n_samples: int
) -> np.ndarray:
    """Sum of Gaussian waves ``vector_k * exp(-(t - c_k)² / 2σ_k²)`` sampled at ``fs``.

    Each wave is evaluated only on a window of ±4σ around its centre, and the windows are
    accumulated with ``np.bincount``, so the cost is O(K × W), not O(K × T).

    Args:
        centers: ``(K,)`` wave centres in seconds.
        sigmas: ``(K,)`` widths in seconds (> 0).
        vectors: ``(K, 3)`` dipole vectors (mV).

    Returns:
        ``(3, T)`` dipole signal.
    """
    out = np.zeros((3, n_samples))
    if len(centers) == 0:
        return out
    if np.any(sigmas <= 0):
        raise ValueError("wave widths must be positive")
    half = int(np.ceil(_MAX_SIGMA_WINDOW * sigmas.max() * fs))
    idx = np.rint(centers * fs).astype(np.int64)[:, None] + np.arange(-half, half + 1)  # (K, W)
    shape = np.exp(-0.5 * ((idx / fs - centers[:, None]) / sigmas[:, None]) ** 2)  # (K, W)
    inside = (idx >= 0) & (idx < n_samples)
    flat_idx, flat_shape = idx[inside], shape[inside]
    rows = np.broadcast_to(np.arange(len(centers))[:, None], idx.shape)[inside]
    for axis in range(3):
        out[axis] = np.bincount(flat_idx, weights=flat_shape * vectors[rows, axis], minlength=n_samples)
    return out


def limb_and_chest(independent: np.ndarray) -> np.ndarray:
    """``(12, T)`` standard leads from the ``(8, T)`` independent leads I, II, V1..V6.

    III = II − I, aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2 (Einthoven and Goldberger).
    """
    lead_i, lead_ii = independent[0], independent[1]
    derived = np.stack([lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2])
    return np.concatenate([independent[:2], derived, independent[2:]])
