"""Linear probe on embedding arrays: separable data reaches AUROC ≈ 1; deterministic; sigmoid scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melp.eval.metrics import classification_metrics
from melp.eval.probe import ProbeConfig, probe_scores, train_linear_probe


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.3).astype(np.float32)
    x = np.concatenate([y * 2 - 1, rng.normal(size=(n, 5))], axis=1) + rng.normal(scale=0.1, size=(n, 8))
    return x.astype(np.float32), y


def test_linearly_separable_embeddings_reach_auroc_one() -> None:
    x_tr, y_tr = _separable(512, 0)
    x_va, y_va = _separable(64, 1)
    x_te, y_te = _separable(128, 2)
    result = train_linear_probe(x_tr, y_tr, x_va, y_va, config=ProbeConfig(lr=1e-2, epochs=40))
    scores = probe_scores(result.head, x_te)
    assert ((scores > 0) & (scores < 1)).all()  # sigmoid, not softmax: rows need not sum to 1
    assert not np.allclose(scores.sum(axis=1), 1.0)
    macro, _ = classification_metrics(y_te, scores, ["A", "B", "C"])
    assert macro["macro_auroc"] > 0.99
    assert result.best_val_auroc > 0.99 and 1 <= result.best_epoch <= result.epochs_run


def test_probe_is_deterministic_for_a_seed() -> None:
    x, y = _separable(100, 3)
    a = train_linear_probe(x, y, x, y, config=ProbeConfig(epochs=3, seed=5))
    b = train_linear_probe(x, y, x, y, config=ProbeConfig(epochs=3, seed=5))
    assert torch.equal(a.head.weight, b.head.weight)


def test_early_stopping_keeps_the_best_epoch() -> None:
    x, y = _separable(64, 4)
    noise = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    result = train_linear_probe(x, y, noise, y, config=ProbeConfig(epochs=100, patience=2))
    assert result.epochs_run < 100
    assert result.best_epoch == max(range(len(result.history)), key=lambda i: result.history[i]["val_macro_auroc"]) + 1


def test_validation_without_positives_is_an_error() -> None:
    x, y = _separable(32, 5)
    with pytest.raises(ValueError, match="validation split"):
        train_linear_probe(x, y, x, np.zeros_like(y))


def test_logistic_probe_equals_sklearn_on_standardised_embeddings_with_the_best_c() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from melp.eval.probe import train_logistic_probe

    x_tr, y_tr = _separable(200, 4)
    x_tr[:, 6] = 3.0  # a constant feature must not divide by zero
    x_va, y_va = _separable(64, 5)
    x_te, _ = _separable(50, 6)
    probe = train_logistic_probe(x_tr, y_tr, x_va, y_va, c_grid=(1e-3, 0.1))
    assert set(probe.val_aurocs) == {1e-3, 0.1} and probe.val_auroc == max(probe.val_aurocs.values())
    scaler = StandardScaler().fit(x_tr)
    for k in range(3):
        # a cold, tightly converged fit: the probe's warm-started path reaches the same unique optimum
        ref = LogisticRegression(C=probe.c, max_iter=20000, tol=1e-10).fit(scaler.transform(x_tr), y_tr[:, k])
        np.testing.assert_allclose(probe.scores(x_te)[:, k], ref.predict_proba(scaler.transform(x_te))[:, 1], atol=1e-4)


def test_logistic_probe_gives_a_class_without_positives_its_training_prior() -> None:
    from melp.eval.probe import train_logistic_probe

    x, y = _separable(40, 7)
    y[:, 1] = 0.0
    probe = train_logistic_probe(x, y, *_separable(40, 8), c_grid=(1.0,))
    assert np.all(probe.coef[1] == 0) and np.allclose(probe.scores(x)[:, 1], 0.5 / 41)
