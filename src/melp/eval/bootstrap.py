"""Seeded percentile-bootstrap 95 % confidence intervals for every headline metric (melp-spec §6.1, §9 item 31).

Records are resampled with replacement (1,000 resamples by default, ``numpy.random.default_rng(seed)``),
the statistic is recomputed on each resample and the interval is the 2.5th-97.5th percentile.

Resamples in which the statistic is undefined are handled explicitly, never silently (the reference
drops the resamples that raise, which biases the interval): for classification, a resample is
*rejected* when a class that is scored on the full data (has a positive and a negative) has no
positive or no negative in it, and another resample is drawn in its place, up to
``max_draw_factor × n_resamples`` draws. The result counts the rejected draws and the valid
resamples kept; a shortfall is logged. The interval is therefore conditional on every scored class
being present, which is the quantity the point estimate measures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from melp.eval.metrics import SortedScores, check_inputs

logger = logging.getLogger(__name__)

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

Statistic = Callable[[np.ndarray], dict[str, float]]
Validity = Callable[[np.ndarray], bool]


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals of each named statistic, with the resampling bookkeeping."""

    ci95: dict[str, list[float] | None]
    n_resamples: int
    n_valid: int
    n_rejected: int
    seed: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """The bookkeeping as a JSON-ready dict (written next to the intervals in the results)."""
        return {
            "method": "percentile",
            "n_resamples": self.n_resamples,
            "n_valid": self.n_valid,
            "n_rejected": self.n_rejected,
            "seed": self.seed,
            "notes": list(self.notes),
        }


def bootstrap(
    n_items: int,
    statistic: Statistic,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    valid: Validity | None = None,
    rejection: str = "a scored class had no positive or no negative",
    max_draw_factor: int = 10,
) -> BootstrapResult:
    """Percentile bootstrap of ``statistic(indices) -> {name: value}`` over ``n_items`` records.

    Args:
        n_items: number of records resampled (with replacement, ``n_items`` per resample).
        statistic: maps an index array (n_items,) to named values; NaN values are not allowed
            in a valid resample (make ``valid`` reject those resamples instead).
        n_resamples: valid resamples wanted.
        seed: seed of the generator; the same seed gives the same intervals.
        valid: optional predicate rejecting a resample (counted in ``n_rejected``).
        rejection: why ``valid`` rejects a resample, for the notes.
        max_draw_factor: at most ``max_draw_factor × n_resamples`` draws in all.
    """
    if n_items <= 0:
        raise ValueError(f"cannot bootstrap over {n_items} records")
    if n_resamples <= 0:
        return BootstrapResult({}, 0, 0, 0, seed, ["bootstrap disabled (0 resamples)"])
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    n_valid = n_rejected = 0
    max_draws = max_draw_factor * n_resamples
    while n_valid < n_resamples and n_valid + n_rejected < max_draws:
        idx = rng.integers(0, n_items, size=n_items)
        if valid is not None and not valid(idx):
            n_rejected += 1
            continue
        for name, value in statistic(idx).items():
            if not np.isfinite(value):
                raise ValueError(f"statistic {name!r} is {value} on a resample the validity check accepted")
            values.setdefault(name, []).append(float(value))
        n_valid += 1
    notes = []
    if n_rejected:
        notes.append(f"{n_rejected} resamples rejected ({rejection}) and redrawn")
    if n_valid < n_resamples:
        msg = f"only {n_valid} of {n_resamples} valid resamples after {max_draws} draws; intervals use {n_valid}"
        logger.warning(msg)
        notes.append(msg)
    ci: dict[str, list[float] | None] = {
        name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for name, v in values.items()
    }
    return BootstrapResult(ci, n_resamples, n_valid, n_rejected, seed, notes)


def bootstrap_classification(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[BootstrapResult, dict[str, list[float] | None]]:
    """Intervals of the macro AUROC/max-F1/accuracy and of every scored class's AUROC.

    Returns:
        The result for the macro metrics (keys ``macro_auroc``, ``macro_max_f1``, ``macro_accuracy``)
        and the per-class AUROC intervals (``None`` for a class that is not scored).
    """
    y, s = check_inputs(labels, scores, classes)
    n_pos = y.sum(axis=0)
    scored = np.flatnonzero((n_pos > 0) & (n_pos < len(y)))
    per_class: dict[str, list[float] | None] = dict.fromkeys(classes)
    if scored.size == 0:
        return BootstrapResult({}, n_resamples, 0, 0, seed, ["no scored class; no interval"]), per_class
    ys = y[:, scored].astype(np.float64)
    sweep = SortedScores(ys, s[:, scored])

    def is_valid(idx: np.ndarray) -> bool:
        pos = np.bincount(idx, minlength=len(ys)) @ ys  # (C,) positives in the resample
        return bool(((pos > 0) & (pos < len(idx))).all())

    def statistic(idx: np.ndarray) -> dict[str, float]:
        auroc, f1, acc = sweep.metrics(np.bincount(idx, minlength=len(ys)))
        out = {
            "macro_auroc": float(auroc.mean()),
            "macro_max_f1": float(f1.mean()),
            "macro_accuracy": float(acc.mean()),
        }
        out.update({f"auroc/{classes[int(c)]}": float(a) for c, a in zip(scored, auroc)})
        return out

    result = bootstrap(len(y), statistic, n_resamples=n_resamples, seed=seed, valid=is_valid)
    macro = {k: v for k, v in result.ci95.items() if not k.startswith("auroc/")}
    for key, value in result.ci95.items():
        if key.startswith("auroc/"):
            per_class[key.removeprefix("auroc/")] = value
    return BootstrapResult(macro, result.n_resamples, result.n_valid, result.n_rejected, seed, result.notes), per_class


def bootstrap_means(
    per_item: dict[str, np.ndarray], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> BootstrapResult:
    """Intervals of the means of per-record values (e.g. Recall@K hits, ROUGE-L per report)."""
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in per_item.items()}
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"per-record arrays must have one common length, got {sorted(lengths)}")
    return bootstrap(
        lengths.pop(),
        lambda idx: {k: float(v[idx].mean()) for k, v in arrays.items()},
        n_resamples=n_resamples,
        seed=seed,
    )
