"""Multi-label classification metrics of MELP's evaluation (melp-spec §6.1–6.2): AUROC, max-F1, accuracy.

Per class: AUROC (``sklearn.metrics.roc_auc_score``), the maximum F1 over the thresholds of the
precision-recall curve, and the accuracy of ``score >= threshold`` at that max-F1 threshold (the
reference's ``test_zeroshot.py`` protocol). A class with no positive or no negative in the
evaluated records has no AUROC: it is reported with its ``n_pos`` and ``None`` metrics, never
dropped, and left out of the macro means with a logged reason.

The vectorised functions :func:`auroc_columns` and :func:`max_f1_columns` compute the same numbers
for every column at once (rank statistic and a sorted sweep), and :class:`SortedScores` does so for
bootstrap resamples without re-sorting. Tests check all of them against scikit-learn.

Shapes: N records, C classes; ``labels`` (N, C) in {0, 1}, ``scores`` (N, C) real.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve, roc_auc_score

logger = logging.getLogger(__name__)

HEADLINE_METRICS = ("macro_auroc", "macro_max_f1", "macro_accuracy")


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class; ``None`` where undefined (no positive or no negative)."""

    code: str
    n_pos: int
    n_neg: int
    auroc: float | None
    max_f1: float | None
    accuracy: float | None
    threshold: float | None
    reason: str | None = None


def check_inputs(
    labels: np.ndarray, scores: np.ndarray, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``labels`` (N, C) in {0,1} and finite ``scores`` (N, C); raise ValueError otherwise."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 2 or s.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"labels and scores must both be (N, C) with the same shape, got {y.shape} and {s.shape}")
    if classes is not None and len(classes) != y.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y.shape[1]} label columns")
    if y.shape[0] == 0:
        raise ValueError("no records to evaluate (N = 0)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 (multi-hot); found other values")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"scores contain {bad} non-finite values (NaN/Inf); the model output is broken")
    return y.astype(np.int8), s


def _max_f1_sklearn(y: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    precision, recall, thresholds = precision_recall_curve(y, s)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)[:-1]
    best = int(np.argmax(f1))
    threshold = float(thresholds[best])
    accuracy = float(np.mean((s >= threshold) == (y == 1)))
    return float(f1[best]), accuracy, threshold


def per_class_metrics(labels: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> list[ClassMetrics]:
    """Per-class AUROC, max-F1 and accuracy at the max-F1 threshold (scikit-learn)."""
    y, s = check_inputs(labels, scores, classes)
    out = []
    for c, code in enumerate(classes):
        n_pos = int(y[:, c].sum())
        n_neg = int(len(y) - n_pos)
        if n_pos == 0 or n_neg == 0:
            reason = "no positive records" if n_pos == 0 else "no negative records"
            out.append(ClassMetrics(code, n_pos, n_neg, None, None, None, None, reason))
            continue
        f1, acc, thr = _max_f1_sklearn(y[:, c], s[:, c])
        auroc = float(roc_auc_score(y[:, c], s[:, c]))
        out.append(ClassMetrics(code, n_pos, n_neg, auroc, f1, acc, thr))
    return out


def macro_metrics(per_class: Sequence[ClassMetrics]) -> dict[str, float | None]:
    """Macro means over the classes whose metrics are defined; excluded classes are logged with their reason."""
    defined = [m for m in per_class if m.auroc is not None]
    for m in per_class:
        if m.auroc is None:
            logger.warning("class %s excluded from the macro means: %s (n_pos=%d)", m.code, m.reason, m.n_pos)
    if not defined:
        logger.warning("no class has both positive and negative records; macro metrics are undefined")
        return dict.fromkeys(HEADLINE_METRICS)
    return {
        "macro_auroc": float(np.mean([m.auroc for m in defined])),
        "macro_max_f1": float(np.mean([m.max_f1 for m in defined])),
        "macro_accuracy": float(np.mean([m.accuracy for m in defined])),
    }


def classification_metrics(
    labels: np.ndarray, scores: np.ndarray, classes: Sequence[str]
) -> tuple[dict[str, float | None], list[ClassMetrics]]:
    """Macro metrics (plus ``n_classes_scored``/``n_classes_excluded``) and per-class metrics."""
    per_class = per_class_metrics(labels, scores, classes)
    macro: dict[str, float | None] = dict(macro_metrics(per_class))
    n_scored = sum(m.auroc is not None for m in per_class)
    macro["n_classes_scored"] = n_scored
    macro["n_classes_excluded"] = len(per_class) - n_scored
    return macro, per_class


def auroc_columns(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of every column (C,) by the Mann-Whitney rank statistic (ties get average ranks); NaN where undefined."""
    y = np.asarray(labels, dtype=np.float64)  # (N, C)
    ranks = rankdata(np.asarray(scores, dtype=np.float64), axis=0)  # (N, C)
    n_pos = y.sum(axis=0)
    n_neg = len(y) - n_pos
    u = (ranks * y).sum(axis=0) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def max_f1_columns(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max-F1 over PR thresholds and accuracy at that threshold for every column, each (C,); NaN where undefined.

    Equal to :func:`per_class_metrics` (ties between thresholds resolved the same way: the lowest
    threshold reaching the maximum F1, as ``np.argmax`` over scikit-learn's increasing thresholds).
    """
    y = np.asarray(labels, dtype=np.float64)  # (N, C)
    s = np.asarray(scores, dtype=np.float64)
    n = len(y)
    order = np.argsort(-s, axis=0, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=0)  # (N, C) descending
    y_sorted = np.take_along_axis(y, order, axis=0)
    tp = np.cumsum(y_sorted, axis=0)  # predicted positive: score >= s_sorted[k]
    fp = np.cumsum(1 - y_sorted, axis=0)
    n_pos = tp[-1]
    # a threshold is the last position of each run of equal scores
    boundary = np.ones_like(s_sorted, dtype=bool)
    boundary[:-1] = s_sorted[:-1] != s_sorted[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / n_pos
        f1 = 2 * precision * recall / (precision + recall)  # same operations as scikit-learn, same rounding
    f1 = np.where(boundary, np.nan_to_num(f1, nan=0.0), -1.0)  # (N, C)
    rev = f1[::-1]
    best = n - 1 - np.argmax(rev, axis=0)  # last maximum in descending order = lowest threshold
    cols = np.arange(y.shape[1])
    best_f1 = f1[best, cols]
    tn = (n - n_pos) - fp[best, cols]
    accuracy = (tp[best, cols] + tn) / n
    defined = (n_pos > 0) & (n_pos < n)
    return np.where(defined, best_f1, np.nan), np.where(defined, accuracy, np.nan)


class SortedScores:
    """Scores sorted once per class, so the metrics of any bootstrap resample cost no sort.

    A resample is given by the multiplicity of each record (``np.bincount(idx, minlength=N)``);
    duplicated records share their score, so they fall in the same run of equal scores and the
    cumulative counts at every threshold equal those of the duplicated data. :meth:`metrics`
    therefore equals :func:`auroc_columns` and :func:`max_f1_columns` on ``labels[idx], scores[idx]``.
    """

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        y = np.asarray(labels, dtype=np.float64)  # (N, C)
        s = np.asarray(scores, dtype=np.float64)
        n = len(y)
        self.order = np.argsort(-s, axis=0, kind="stable")  # (N, C) descending
        self.y = np.take_along_axis(y, self.order, axis=0)
        s_sorted = np.take_along_axis(s, self.order, axis=0)
        self.boundary = np.ones_like(s_sorted, dtype=bool)  # last position of each run of equal scores
        self.boundary[:-1] = s_sorted[:-1] != s_sorted[1:]
        positions = np.arange(n)[:, None]
        # first and last position of the run each position belongs to
        start = np.where(np.vstack([np.ones((1, y.shape[1]), bool), self.boundary[:-1]]), positions, 0)
        self.run_start = np.maximum.accumulate(start, axis=0)  # (N, C)
        end = np.where(self.boundary, positions, n - 1)
        self.run_end = np.minimum.accumulate(end[::-1], axis=0)[::-1]  # (N, C)

    def metrics(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """AUROC, max-F1 and accuracy at the max-F1 threshold (each (C,)) for record multiplicities (N,)."""
        w = np.asarray(weights, dtype=np.float64)[self.order]  # (N, C)
        pos = w * self.y
        neg = w - pos
        tp = np.cumsum(pos, axis=0)  # predicted positive: score >= this position's score
        fp = np.cumsum(neg, axis=0)
        n_pos, n_neg = tp[-1], fp[-1]
        fp_end = np.take_along_axis(fp, self.run_end, axis=0)
        fp_before = np.take_along_axis(fp, self.run_start, axis=0) - np.take_along_axis(neg, self.run_start, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            auroc = (pos * (n_neg - fp_end + 0.5 * (fp_end - fp_before))).sum(axis=0) / (n_pos * n_neg)
            precision = tp / (tp + fp)
            recall = tp / n_pos
            f1 = 2 * precision * recall / (precision + recall)
        f1 = np.where(
            self.boundary, np.nan_to_num(f1, nan=0.0), -1.0
        )  # runs absent from a resample repeat the previous run
        best = len(w) - 1 - np.argmax(f1[::-1], axis=0)  # lowest threshold reaching the maximum
        cols = np.arange(w.shape[1])
        accuracy = (tp[best, cols] + n_neg - fp[best, cols]) / (n_pos + n_neg)
        defined = (n_pos > 0) & (n_neg > 0)
        return (
            np.where(defined, auroc, np.nan),
            np.where(defined, f1[best, cols], np.nan),
            np.where(defined, accuracy, np.nan),
        )
