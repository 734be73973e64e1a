"""Classification metrics equal scikit-learn; the bootstrap is seeded and handles resamples without positives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score

from melp.eval.bootstrap import bootstrap, bootstrap_classification, bootstrap_means
from melp.eval.metrics import auroc_columns, classification_metrics, max_f1_columns, per_class_metrics


def _random_problem(seed: int, n: int = 60, c: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < rng.uniform(0.1, 0.6, c)).astype(int)
    s = np.round(rng.normal(size=(n, c)) + y * rng.uniform(0, 2, c), 1)  # rounding creates ties
    return y, s


def test_per_class_metrics_equal_sklearn() -> None:
    y, s = _random_problem(0)
    classes = [f"C{i}" for i in range(y.shape[1])]
    for c, m in enumerate(per_class_metrics(y, s, classes)):
        assert m.auroc == pytest.approx(roc_auc_score(y[:, c], s[:, c]), abs=1e-12)
        precision, recall, _ = precision_recall_curve(y[:, c], s[:, c])
        with np.errstate(invalid="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        assert m.max_f1 == pytest.approx(f1.max(), abs=1e-12)
        predicted = (s[:, c] >= m.threshold).astype(int)
        assert f1_score(y[:, c], predicted) == pytest.approx(m.max_f1, abs=1e-12)
        assert m.accuracy == pytest.approx(np.mean(predicted == y[:, c]), abs=1e-12)
        assert m.n_pos == y[:, c].sum()


def test_known_answer() -> None:
    y = np.array([[1], [0], [1], [0]])
    s = np.array([[0.9], [0.8], [0.4], [0.1]])
    (m,) = per_class_metrics(y, s, ["A"])
    assert m.auroc == pytest.approx(0.75)  # pairs (0.9>0.8, 0.9>0.1, 0.4<0.8, 0.4>0.1) → 3/4
    assert m.max_f1 == pytest.approx(0.8)  # threshold 0.4: tp 2, fp 1 → P 2/3, R 1
    assert m.accuracy == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_columns_equal_sklearn_path(seed: int) -> None:
    y, s = _random_problem(seed, n=int(np.random.default_rng(seed).integers(4, 40)))
    ref = per_class_metrics(y, s, [str(i) for i in range(y.shape[1])])
    auroc = auroc_columns(y, s)
    f1, acc = max_f1_columns(y, s)
    for c, m in enumerate(ref):
        if m.auroc is None:
            assert np.isnan(auroc[c]) and np.isnan(f1[c]) and np.isnan(acc[c])
        else:
            assert auroc[c] == pytest.approx(m.auroc, abs=1e-12)
            assert f1[c] == pytest.approx(m.max_f1, abs=1e-12)
            assert acc[c] == pytest.approx(m.accuracy, abs=1e-12)


def test_class_without_positives_is_reported_not_dropped(caplog: pytest.LogCaptureFixture) -> None:
    y, s = _random_problem(1, c=3)
    y[:, 1] = 0
    macro, per_class = classification_metrics(y, s, ["A", "B", "C"])
    assert [m.code for m in per_class] == ["A", "B", "C"]
    assert per_class[1].auroc is None and per_class[1].n_pos == 0 and per_class[1].reason == "no positive records"
    assert macro["macro_auroc"] == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in (0, 2)]))
    assert macro["n_classes_excluded"] == 1
    assert "B excluded" in caplog.text


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        per_class_metrics(np.array([[1], [0]]), np.array([[np.nan], [0.0]]), ["A"])
    with pytest.raises(ValueError, match="0/1"):
        per_class_metrics(np.array([[2], [0]]), np.array([[1.0], [0.0]]), ["A"])
    with pytest.raises(ValueError, match="same shape"):
        per_class_metrics(np.zeros((3, 2)), np.zeros((3, 1)), ["A", "B"])


def test_bootstrap_deterministic_for_a_seed() -> None:
    y, s = _random_problem(2, n=80)
    classes = list("ABCDE")
    a, ca = bootstrap_classification(y, s, classes, n_resamples=200, seed=7)
    b, cb = bootstrap_classification(y, s, classes, n_resamples=200, seed=7)
    c, _ = bootstrap_classification(y, s, classes, n_resamples=200, seed=8)
    assert a.ci95 == b.ci95 and ca == cb
    assert a.ci95 != c.ci95
    lo, hi = a.ci95["macro_auroc"]
    point = classification_metrics(y, s, classes)[0]["macro_auroc"]
    assert lo <= point <= hi


def test_bootstrap_matches_naive_resampling() -> None:
    y, s = _random_problem(3, n=50, c=2)
    result, _ = bootstrap_classification(y, s, ["A", "B"], n_resamples=50, seed=11)
    rng = np.random.default_rng(11)
    values = []
    while len(values) < 50:
        idx = rng.integers(0, len(y), size=len(y))
        if not all(0 < y[idx, c].sum() < len(idx) for c in range(2)):
            continue
        values.append(np.mean([roc_auc_score(y[idx, c], s[idx, c]) for c in range(2)]))
    assert result.ci95["macro_auroc"] == pytest.approx([np.percentile(values, 2.5), np.percentile(values, 97.5)])


def test_resamples_without_a_positive_are_counted_and_redrawn() -> None:
    n = 40
    y = np.zeros((n, 2), dtype=int)
    y[:20, 0] = 1
    y[0, 1] = 1  # one positive: about 37 % of resamples miss it
    s = np.random.default_rng(0).normal(size=(n, 2))
    result, per_class = bootstrap_classification(y, s, ["A", "RARE"], n_resamples=100, seed=0)
    assert result.n_valid == 100
    assert result.n_rejected > 10
    assert per_class["RARE"] is not None
    assert any("rejected" in note for note in result.notes)


def test_bootstrap_reports_a_shortfall() -> None:
    result = bootstrap(10, lambda idx: {"m": float(idx.mean())}, n_resamples=20, seed=0, valid=lambda idx: False)
    assert result.n_valid == 0 and result.n_rejected == 200
    assert "m" not in result.ci95 and result.notes


def test_bootstrap_means_interval_brackets_the_mean() -> None:
    x = np.random.default_rng(0).random(200)
    result = bootstrap_means({"x": x}, n_resamples=300, seed=0)
    lo, hi = result.ci95["x"]
    assert lo < x.mean() < hi and hi - lo < 0.2


@pytest.mark.parametrize("seed", range(10))
def test_sorted_scores_resample_metrics_equal_direct_computation(seed: int) -> None:
    from melp.eval.metrics import SortedScores

    y, s = _random_problem(seed, n=37)
    idx = np.random.default_rng(seed + 100).integers(0, len(y), size=len(y))
    auroc, f1, acc = SortedScores(y, s).metrics(np.bincount(idx, minlength=len(y)))
    ref_f1, ref_acc = max_f1_columns(y[idx], s[idx])
    np.testing.assert_allclose(auroc, auroc_columns(y[idx], s[idx]), atol=1e-12)
    np.testing.assert_allclose(f1, ref_f1, atol=1e-12)
    np.testing.assert_allclose(acc, ref_acc, atol=1e-12)
