"""12-lead ECGs drawn on standard ECG paper (25 mm/s, 10 mm/mV), with an optional attention band over time.

Used by ``melp draw`` and by the demo report, which shows the beat queries' attention over the
ECG (MELP's beat-level alignment). Figures are built with ``matplotlib.figure.Figure`` directly
(no pyplot state, no GUI backend needed; ``savefig`` renders with Agg). Everything is drawn in millimetres of paper: x = 25 mm per
second, y = 10 mm per millivolt, so the grid is exactly the paper's 1 mm / 5 mm grid.

Dimensions: T samples, K overlay rows (queries), T' overlay time steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1 import make_axes_locatable

from melp.data.leads import STANDARD_LEADS

MM_PER_S = 25.0
MM_PER_MV = 10.0
LAYOUTS = ("4x3", "12x1")
_GRID_MINOR = "#f6cfca"
_GRID_MAJOR = "#e58f86"
_PAPER = "#fffaf8"
_CAL_MM = 10.0  # left margin holding the 1 mV calibration pulse
_ROW_MM = {"4x3": 30.0, "12x1": 22.0}
_GRID_4X3 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))


def _check_inputs(signal: np.ndarray, fs: float, lead_names: Sequence[str], layout: str) -> np.ndarray:
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[0] != len(lead_names):
        raise ValueError(f"signal must have shape ({len(lead_names)}, T) for leads {list(lead_names)}, got {sig.shape}")
    if sig.shape[1] < 2:
        raise ValueError(f"signal has {sig.shape[1]} samples; need at least 2")
    if not np.isfinite(sig).all():
        raise ValueError("signal contains NaN or Inf; clean it before drawing")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    missing = {name for row in _GRID_4X3 for name in row} - set(lead_names)
    if layout == "4x3" and missing:
        raise ValueError(f"the 4x3 layout needs the 12 standard leads; missing {sorted(missing)}")
    return sig


def _draw_grid(ax: Axes, width: float, height: float) -> None:
    """The paper: 1 mm minor and 5 mm major lines over ``[-_CAL_MM, width] × [0, height]``."""
    ax.set_facecolor(_PAPER)
    for step, color, lw in ((1.0, _GRID_MINOR, 0.25), (5.0, _GRID_MAJOR, 0.6)):
        xs = np.arange(-_CAL_MM, width + 1e-6, step)
        ys = np.arange(0.0, height + 1e-6, step)
        segments = [((x, 0.0), (x, height)) for x in xs] + [((-_CAL_MM, y), (width, y)) for y in ys]
        ax.add_collection(LineCollection(segments, colors=color, linewidths=lw, zorder=0))


def _trace(ax: Axes, x0: float, baseline: float, values: np.ndarray, fs: float, name: str, lw: float) -> None:
    """One lead segment starting at paper position ``x0`` around ``baseline`` (mm)."""
    x = x0 + np.arange(len(values)) / fs * MM_PER_S
    ax.plot(x, baseline + values * MM_PER_MV, color="black", linewidth=lw, zorder=2)
    ax.text(x0 + 1.0, baseline + 7.0, name, fontsize=7, zorder=3)


def _calibration(ax: Axes, baseline: float) -> None:
    """The 1 mV × 0.2 s calibration pulse in the left margin."""
    x = np.array([-9.0, -7.5, -7.5, -2.5, -2.5, -1.0])
    y = baseline + np.array([0.0, 0.0, MM_PER_MV, MM_PER_MV, 0.0, 0.0])
    ax.plot(x, y, color="black", linewidth=0.8, zorder=2)


def _draw_leads(ax: Axes, sig: np.ndarray, fs: float, names: list[str], layout: str, rhythm: str, lw: float) -> float:
    """Draw every lead; returns the paper height (mm)."""
    centred = sig - np.median(sig, axis=1, keepdims=True)  # remove each lead's offset
    n = sig.shape[1]
    pitch = _ROW_MM[layout]
    if layout == "12x1":
        height = pitch * len(names)
        for r, name in enumerate(names):
            base = height - (r + 0.55) * pitch
            _trace(ax, 0.0, base, centred[r], fs, name, lw)
            _calibration(ax, base)
        return height
    height = pitch * 4
    bounds = np.linspace(0, n, 5).astype(int)
    for r, row in enumerate(_GRID_4X3):
        base = height - (r + 0.55) * pitch
        _calibration(ax, base)
        for c, name in enumerate(row):
            lo, hi = bounds[c], bounds[c + 1]
            _trace(ax, lo / fs * MM_PER_S, base, centred[names.index(name), lo:hi], fs, name, lw)
            if c:
                ax.plot([lo / fs * MM_PER_S] * 2, [base - 3, base + 3], color="black", linewidth=0.8, zorder=2)
    base = 0.45 * pitch
    _calibration(ax, base)
    _trace(ax, 0.0, base, centred[names.index(rhythm)], fs, rhythm, lw)
    return height


def _draw_overlay(ax: Axes, overlay: np.ndarray, labels: Sequence[str] | None, width: float) -> Axes:
    """The ``(K, T')`` weights as a heat band under the paper, aligned in time with it."""
    weights = np.asarray(overlay, dtype=np.float64)
    if weights.ndim == 1:
        weights = weights[None]
    if weights.ndim != 2 or weights.shape[1] < 1 or not np.isfinite(weights).all():
        raise ValueError(f"overlay must be a finite (K, T') array of weights, got shape {np.shape(overlay)}")
    if labels is not None and len(labels) != len(weights):
        raise ValueError(f"{len(labels)} overlay labels for {len(weights)} overlay rows")
    band = make_axes_locatable(ax).append_axes("bottom", size=f"{min(60, 6 * len(weights))}%", pad=0.08)
    band.imshow(weights, aspect="auto", cmap="magma", interpolation="nearest", extent=(0.0, width, len(weights), 0.0))
    band.set_xlim(ax.get_xlim())
    ticks = np.arange(0.0, width + 1e-6, MM_PER_S)
    band.set_xticks(ticks, [f"{t / MM_PER_S:g}" for t in ticks], fontsize=6)
    band.set_xlabel("time (s)", fontsize=7)
    band.set_yticks([])
    band.set_ylim(len(weights), 0.0)
    for row, label in enumerate(labels or []):  # in the calibration margin, so no layout can clip them
        band.text(-1.0, row + 0.5, label, ha="right", va="center", fontsize=6)
    band.tick_params(length=2)
    return band


def plot_ecg(
    signal: np.ndarray,
    fs: float,
    *,
    title: str | None = None,
    overlay: np.ndarray | None = None,
    overlay_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    layout: str = "4x3",
    lead_names: Sequence[str] = STANDARD_LEADS,
    rhythm_lead: str = "II",
    linewidth: float = 0.6,
) -> Figure:
    """Draw a 12-lead ECG on ECG paper.

    Args:
        signal: ``(12, T)`` amplitudes in mV, leads in ``lead_names`` order.
        fs: sampling rate (Hz).
        title: figure/axes title.
        overlay: optional ``(K, T')`` non-negative weights over time (e.g. the attention of K beat
            queries over T' ECG frames), drawn as a heat band under the paper spanning the same
            time axis (T' need not equal T).
        overlay_labels: K row names for the band.
        ax: draw into this axes (its figure is returned); a new figure is made when None.
        layout: ``"4x3"`` (four 2.5 s columns of three leads + a rhythm strip) or ``"12x1"``
            (twelve full-length rows).
        lead_names: names of the rows of ``signal``.
        rhythm_lead: lead of the rhythm strip in the 4x3 layout.
        linewidth: trace width (points).

    Returns:
        The figure: one axes for the paper, plus one for the overlay band when given.
    """
    names = list(lead_names)
    sig = _check_inputs(signal, fs, names, layout)
    if rhythm_lead not in names:
        raise ValueError(f"rhythm lead {rhythm_lead!r} is not one of {names}")
    width = sig.shape[1] / fs * MM_PER_S
    n_rows = 4 if layout == "4x3" else len(names)
    if ax is None:
        band_in = 0.6 + 0.2 * len(np.atleast_2d(overlay)) if overlay is not None else 0.0
        height_in = (n_rows * _ROW_MM[layout] + 12) / 25.4 + band_in
        fig = Figure(figsize=((width + _CAL_MM + 8) / 25.4, height_in), dpi=150, layout="constrained")
        ax = fig.add_subplot()
    height = _draw_leads(ax, sig, fs, names, layout, rhythm_lead, linewidth)
    _draw_grid(ax, width, height)
    ax.set_xlim(-_CAL_MM, width)
    ax.set_ylim(0.0, height)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8, loc="left")
    if overlay is not None:
        _draw_overlay(ax, overlay, overlay_labels, width)
    figure = ax.get_figure()
    if not isinstance(figure, Figure):
        raise TypeError("the axes given to plot_ecg must belong to a Figure")
    return figure
