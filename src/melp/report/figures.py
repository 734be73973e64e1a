"""Figures of the demo report: the three loss terms of melp-spec.md §3 over training, and ROC curves (§6.1).

Every figure is drawn with matplotlib's non-interactive Agg canvas and returned as PNG bytes, so
the report can embed it (HTML) or write it beside the markdown.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

LOSS_TERMS = ("clip_loss", "caption_loss", "local_loss")
VAL_AUROC = "val_macro_auroc"
_LOSS_TITLES = {
    "clip_loss": "rhythm level: CLIP loss",
    "caption_loss": "token level: caption loss",
    "local_loss": "beat level: local alignment loss",
}
_DPI = 110


def figure_png(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read a training ``metrics.jsonl`` (one JSON object per line) into a DataFrame.

    Raises:
        ValueError: when the file has no ``step`` column or a line is not a JSON object.
    """
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object per line, got {line[:80]!r}")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "step" not in frame.columns:
        raise ValueError(f"{path}: training metrics need a 'step' field; found {sorted(frame.columns)}")
    return frame


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def loss_curves_figure(metrics: pd.DataFrame) -> Figure:
    """One panel per loss term (training loss, raw and smoothed; validation loss where logged), and a
    last panel with the validation zero-shot macro AUROC when the run logged it."""
    split = metrics["split"] if "split" in metrics.columns else pd.Series("train", index=metrics.index)
    train = metrics[split == "train"].sort_values("step")
    val = metrics[split == "val"].sort_values("step")
    has_auroc = VAL_AUROC in val.columns and val[VAL_AUROC].notna().any()
    n_panels = len(LOSS_TERMS) + int(has_auroc)
    fig = Figure(figsize=(4 * n_panels, 3.2))
    axes = fig.subplots(1, n_panels)
    for ax, term in zip(axes, LOSS_TERMS):
        ax.set_title(_LOSS_TITLES[term], fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if term in train.columns and train[term].notna().any():
            rows = train[train[term].notna()]
            values = rows[term].to_numpy(dtype=float)
            ax.plot(rows["step"], values, color="tab:blue", alpha=0.25, lw=0.8)
            ax.plot(rows["step"], _smooth(values, max(1, len(values) // 20)), color="tab:blue", lw=1.6, label="train")
        if term in val.columns and val[term].notna().any():
            rows = val[val[term].notna()]
            ax.plot(rows["step"], rows[term], "o-", color="tab:orange", lw=1.4, ms=3, label="val")
        if ax.has_data():
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no '{term}' in metrics", ha="center", va="center", transform=ax.transAxes)
    if has_auroc:
        ax = axes[-1]
        rows = val[val[VAL_AUROC].notna()]
        ax.plot(rows["step"], rows[VAL_AUROC], "o-", color="tab:green", lw=1.6, ms=4)
        ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
        ax.set_title("validation: zero-shot macro AUROC", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def read_scores(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a ``--save-scores`` CSV: columns ``id``, ``labels`` (codes joined by ';'), one score per class.

    Returns:
        The table and its class codes (the score columns, in file order).
    """
    frame = pd.read_csv(path, dtype={"id": str, "labels": str}, keep_default_na=False)
    missing = {"id", "labels"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: a scores CSV needs columns id, labels and one per class; missing {sorted(missing)}")
    classes = [c for c in frame.columns if c not in ("id", "labels")]
    if not classes:
        raise ValueError(f"{path}: no score columns (one per class code expected after id, labels)")
    return frame, classes


def label_indicator(frame: pd.DataFrame, code: str) -> np.ndarray:
    """1 where ``code`` is among a row's ';'-joined labels, else 0."""
    return np.array([code in str(text).split(";") for text in frame["labels"]], dtype=np.int64)


def pick_roc_classes(frame: pd.DataFrame, classes: list[str], *, k: int = 4) -> list[str]:
    """The ``k`` classes with the most positives that also have negatives (ties keep file order)."""
    counts = {c: int(label_indicator(frame, c).sum()) for c in classes}
    usable = [c for c in classes if 0 < counts[c] < len(frame)]
    return sorted(usable, key=lambda c: -counts[c])[:k]


def roc_figure(scores: dict[str, tuple[pd.DataFrame, list[str]]], codes: list[str]) -> Figure:
    """ROC curves of ``codes``, one panel per class, one line per model (model label → scores table)."""
    fig = Figure(figsize=(3.2 * max(1, len(codes)), 3.2))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(codes))))
    styles: list[dict[str, Any]] = [
        {"color": "tab:red", "lw": 1.8},
        {"color": "tab:gray", "lw": 1.2, "ls": "--"},
        {"color": "tab:green", "lw": 1.2, "ls": ":"},
    ]
    for ax, code in zip(axes, codes):
        for (model, (frame, classes)), style in zip(scores.items(), styles * len(scores)):
            if code not in classes:
                continue
            truth = label_indicator(frame, code)
            values = frame[code].to_numpy(dtype=float)
            fpr, tpr, _ = roc_curve(truth, values)
            ax.plot(fpr, tpr, label=f"{model} ({roc_auc_score(truth, values):.3f})", **style)
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, alpha=0.4)
        ax.set_title(f"{code} (n+ = {int(label_indicator(next(iter(scores.values()))[0], code).sum())})", fontsize=10)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
