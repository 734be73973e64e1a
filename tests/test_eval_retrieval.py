"""Retrieval ranks and Recall@K against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from melp.eval.retrieval import recall_hits, retrieval_metrics, retrieval_ranks, true_partner_ranks


def test_identical_embeddings_give_recall_one() -> None:
    emb = np.random.default_rng(0).normal(size=(30, 16))
    metrics = retrieval_metrics(retrieval_ranks(emb, emb.copy()))
    for direction in ("ecg2text", "text2ecg"):
        assert metrics[f"{direction}_R@1"] == 1.0
        assert metrics[f"{direction}_median_rank"] == 1.0


def test_known_ranks() -> None:
    sim = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, 0.95], [0.2, 0.3, 0.1]])
    assert true_partner_ranks(sim).tolist() == [1, 3, 3]
    metrics = retrieval_metrics({"q": true_partner_ranks(sim)}, ks=(1, 2, 3))
    assert metrics == pytest.approx({"q_R@1": 1 / 3, "q_R@2": 1 / 3, "q_R@3": 1.0, "q_median_rank": 3.0})
    assert recall_hits({"q": true_partner_ranks(sim)}, ks=(1,))["q_R@1"].tolist() == [1.0, 0.0, 0.0]


def test_same_group_candidates_do_not_count_against_the_true_partner() -> None:
    sim = np.array([[0.5, 0.9], [0.9, 0.5]])
    assert true_partner_ranks(sim).tolist() == [2, 2]
    assert true_partner_ranks(sim, groups=np.array([0, 0])).tolist() == [1, 1]


def test_ranks_from_embeddings_known_answer() -> None:
    e = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])  # norms differ: cosine, not dot product
    t = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    ranks = retrieval_ranks(e, t)
    assert ranks["ecg2text"].tolist() == [1, 1, 2]  # ECG 2 is closer to report 0 (1.0) than to its own (0.6)
    assert ranks["text2ecg"].tolist() == [1, 1, 2]  # report 2 is closer to ECG 1 (0.8); ties with ECG 0 do not count


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="all-zero"):
        retrieval_ranks(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        retrieval_ranks(np.ones((2, 3)), np.ones((3, 3)))
