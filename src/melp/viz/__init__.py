"""Figures: ECGs on ECG paper (with attention overlays) for ``melp draw`` and the demo report."""

from melp.viz.ecg_paper import LAYOUTS, MM_PER_MV, MM_PER_S, plot_ecg

__all__ = ["LAYOUTS", "MM_PER_MV", "MM_PER_S", "plot_ecg"]
