"""Linear probing on frozen embeddings (melp-spec §6.2), with the reference's multi-label defect fixed.

Protocol (the paper's, and melp's defaults): a linear head (no hidden layer, dropout 0) on the
frozen probe embeddings, binary cross-entropy on the multi-hot labels, AdamW (lr 1e-3, weight decay
1e-4), batch 128, cosine annealing over 100 epochs to 1e-5 stepped per epoch, early stopping on the
validation macro AUROC (patience 5) keeping the best epoch's head. Test scores are **sigmoid**
probabilities per class, not a softmax across classes (§9 item 30).

The head starts at zero (the reference uses ``nn.Linear``'s random init, which the protocol does
not fix). With lr 1e-3 and few steps per epoch (a 1 % subset is one batch), a randomly initialised
head hardly moves before early stopping, so its test scores would mostly rank records by the random
initial weights; from zero, the first step already follows the class-mean differences, and the
result depends only on the data and the shuffling seed.

A second, *converged* probe sits beside the paper's (:func:`train_logistic_probe`): per-class
L2-regularised logistic regression (scikit-learn, L-BFGS run to convergence) on embeddings
standardised with the training subset's statistics, the regularisation strength chosen from a fixed
grid by validation macro AUROC. The paper's head stops after a few epochs on small subsets and can
rank below its own 1 % result at 10 %; the logistic probe answers what the embeddings linearly
contain, independent of an optimiser's schedule.

Shapes: N records, E embedding width, C classes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from melp.eval.metrics import auroc_columns

logger = logging.getLogger(__name__)

#: ``adamw``: the paper's linear head (:func:`train_linear_probe`); ``logreg``: the converged one.
ProbeHead = Literal["adamw", "logreg"]
PROBE_HEADS: tuple[ProbeHead, ...] = ("adamw", "logreg")
#: Inverse regularisation strengths tried by :func:`train_logistic_probe` (scikit-learn's ``C``).
LOGREG_C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ProbeConfig:
    """Linear-probe optimisation; the defaults are the paper's protocol."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int = 100
    eta_min: float = 1e-5
    patience: int = 5
    seed: int = 42


@dataclass
class ProbeResult:
    """The trained head (best validation epoch) and its training history."""

    head: nn.Linear
    best_epoch: int
    best_val_auroc: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)


def validation_macro_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Macro AUROC over the classes with both a positive and a negative; NaN if there is none."""
    auroc = auroc_columns(labels, scores)
    return float(np.nanmean(auroc)) if np.isfinite(auroc).any() else float("nan")


def _as_tensors(x: np.ndarray, y: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    if xt.ndim != 2 or yt.ndim != 2 or len(xt) != len(yt):
        raise ValueError(
            f"{name}: expected embeddings (N, E) and labels (N, C) with the same N, got {tuple(xt.shape)} and {tuple(yt.shape)}"
        )
    if len(xt) == 0:
        raise ValueError(f"{name}: no records")
    if not torch.isfinite(xt).all():
        raise ValueError(f"{name}: embeddings contain non-finite values")
    return xt, yt


@torch.no_grad()
def probe_scores(head: nn.Linear, x: np.ndarray) -> np.ndarray:
    """Sigmoid scores (N, C) of the head on embeddings (N, E)."""
    return torch.sigmoid(head(torch.as_tensor(np.asarray(x), dtype=torch.float32))).numpy()


def train_linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    config: ProbeConfig | None = None,
) -> ProbeResult:
    """Train a linear head on embeddings; early stopping and model selection on validation macro AUROC."""
    cfg = config or ProbeConfig()
    xt, yt = _as_tensors(x_train, y_train, "training split")
    xv, yv = _as_tensors(x_val, y_val, "validation split")
    if xt.shape[1] != xv.shape[1] or yt.shape[1] != yv.shape[1]:
        raise ValueError(
            f"training and validation widths differ: {tuple(xt.shape)}/{tuple(yt.shape)} vs {tuple(xv.shape)}/{tuple(yv.shape)}"
        )
    if not np.isfinite(auroc_columns(yv.numpy(), np.zeros(tuple(yv.shape)))).any():
        raise ValueError(
            "the validation split has no class with both a positive and a negative; early stopping needs one"
        )
    head = nn.Linear(xt.shape[1], yt.shape[1])
    nn.init.zeros_(head.weight)  # (C, E); see the module docstring
    nn.init.zeros_(head.bias)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.eta_min)
    best_auroc, best_epoch, best_state, stale = -1.0, -1, None, 0
    history: list[dict[str, float]] = []
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        head.train()
        order = torch.randperm(len(xt), generator=generator)
        total = 0.0
        for start in range(0, len(xt), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(head(xt[batch]), yt[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        scheduler.step()
        head.eval()
        val_auroc = validation_macro_auroc(yv.numpy(), probe_scores(head, xv.numpy()))
        history.append({"epoch": epoch, "train_loss": total / len(xt), "val_macro_auroc": val_auroc})
        if val_auroc > best_auroc:
            best_auroc, best_epoch, stale = val_auroc, epoch, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                logger.info("early stopping at epoch %d (best %d, val macro AUROC %.4f)", epoch, best_epoch, best_auroc)
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return ProbeResult(head=head, best_epoch=best_epoch, best_val_auroc=best_auroc, epochs_run=epoch, history=history)


@dataclass
class LogisticProbe:
    """Per-class logistic regressions on standardised embeddings (see the module docstring).

    Attributes:
        mean, scale: ``(E,)`` standardisation of the training subset.
        coef: ``(C, E)`` weights; ``intercept``: ``(C,)``. A class without both labels in the
            training subset gets zero weights and the log-odds of its training frequency.
        c: the chosen inverse regularisation strength; ``val_auroc``: its validation macro AUROC.
        val_aurocs: validation macro AUROC of every ``C`` tried.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    c: float
    val_auroc: float
    val_aurocs: dict[float, float] = field(default_factory=dict)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, C)`` for embeddings ``(N, E)``."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def _fit_logistic_path(
    x: np.ndarray, y: np.ndarray, c_grid: tuple[float, ...], max_iter: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(C, E)`` weights and ``(C,)`` intercepts of one L2 logistic regression per class, for every ``c``.

    Each class's fits go up ``c_grid`` in ascending order, each starting from the previous solution
    (the optimum is unique, so only the iterations change). BLAS runs single-threaded: beside
    torch's OpenMP pool in the same process, two OpenBLAS threads made these fits about 8× slower
    on 2 cores (docs/performance.md, "The demo").
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    n_classes, width = y.shape[1], x.shape[1]
    order = sorted(range(len(c_grid)), key=lambda i: c_grid[i])
    path = [(np.zeros((n_classes, width)), np.zeros(n_classes)) for _ in c_grid]
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for k in range(n_classes):
            positives = int(y[:, k].sum())
            if positives in (0, len(y)):  # one label only: its training frequency, clipped away from 0 and 1
                p = (positives + 0.5) / (len(y) + 1.0)
                for _, intercept in path:
                    intercept[k] = np.log(p / (1 - p))
                continue
            fit = LogisticRegression(max_iter=max_iter, warm_start=True)
            for i in order:
                fit.set_params(C=c_grid[i]).fit(x, y[:, k])
                path[i][0][k], path[i][1][k] = fit.coef_[0], fit.intercept_[0]
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if unconverged:
        logger.info(
            "logistic probe: %d of %d fits stopped at max_iter=%d", unconverged, n_classes * len(c_grid), max_iter
        )
    return path


def train_logistic_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    c_grid: tuple[float, ...] = LOGREG_C_GRID,
    max_iter: int = 1000,
) -> LogisticProbe:
    """The converged linear probe: standardise, fit every ``C`` of ``c_grid``, keep the best on validation."""
    xt, yt = (t.numpy().astype(np.float64) for t in _as_tensors(x_train, y_train, "training split"))
    xv, yv = (t.numpy().astype(np.float64) for t in _as_tensors(x_val, y_val, "validation split"))
    if xt.shape[1] != xv.shape[1] or yt.shape[1] != yv.shape[1]:
        raise ValueError(f"training and validation widths differ: {xt.shape}/{yt.shape} vs {xv.shape}/{yv.shape}")
    if not c_grid:
        raise ValueError("c_grid must name at least one regularisation strength")
    mean = xt.mean(axis=0)
    scale = xt.std(axis=0)
    scale[scale < 1e-12] = 1.0  # a constant feature stays 0 after centring
    xs = (xt - mean) / scale
    best: LogisticProbe | None = None
    tried: dict[float, float] = {}
    for c, (coef, intercept) in zip(c_grid, _fit_logistic_path(xs, yt, c_grid, max_iter)):
        probe = LogisticProbe(mean=mean, scale=scale, coef=coef, intercept=intercept, c=c, val_auroc=float("nan"))
        probe.val_auroc = validation_macro_auroc(yv, probe.scores(xv))
        tried[c] = probe.val_auroc
        if best is None or probe.val_auroc > best.val_auroc:
            best = probe
    assert best is not None
    best.val_aurocs = tried
    logger.info("logistic probe: C = %g (validation macro AUROC %.4f)", best.c, best.val_auroc)
    return best
