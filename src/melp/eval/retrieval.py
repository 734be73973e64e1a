"""ECG↔report retrieval (design.md "Evaluation"): Recall@K and median rank in both directions.

Record i's ECG and report form the true pair. For each query, the rank of its true partner is 1 +
the number of candidates scoring strictly higher; candidates in the same ``group`` as the true
partner (e.g. an identical report text, common in machine reports) are not counted against it, so a
duplicate report is not a miss. Scores are cosine similarities of the L2-normalised embeddings.

Shapes: N records, D embedding width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)


def _normalise(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if (norm == 0).any():
        raise ValueError(f"{name} has {int((norm == 0).sum())} all-zero rows; cosine similarity is undefined")
    return x / norm


def true_partner_ranks(similarity: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Rank (1 = best) of the diagonal entry in each row of ``similarity`` (N, N), ignoring same-group candidates."""
    sim = np.asarray(similarity, dtype=np.float64)
    n = sim.shape[0]
    if sim.shape != (n, n):
        raise ValueError(f"similarity must be square (N, N), got {sim.shape}")
    true = np.diag(sim)[:, None]  # (N, 1)
    better = sim > true  # (N, N)
    if groups is not None:
        g = np.asarray(groups)
        better &= g[None, :] != g[:, None]
    return 1 + better.sum(axis=1)


def retrieval_ranks(
    ecg_emb: np.ndarray, text_emb: np.ndarray, *, groups: Sequence[object] | None = None
) -> dict[str, np.ndarray]:
    """Per-query ranks of the true partner: ``ecg2text`` (N,) and ``text2ecg`` (N,)."""
    e = _normalise(ecg_emb, "ECG embeddings")
    t = _normalise(text_emb, "text embeddings")
    if e.shape != t.shape:
        raise ValueError(f"ECG and text embeddings must have the same shape, got {e.shape} and {t.shape}")
    g = None if groups is None else np.asarray(groups, dtype=object)
    if g is not None and len(g) != len(e):
        raise ValueError(f"{len(g)} groups for {len(e)} records")
    if g is not None:
        g = np.unique(g.astype(str), return_inverse=True)[1]
    sim = e @ t.T  # (N, N): row = ECG query, column = report
    return {"ecg2text": true_partner_ranks(sim, g), "text2ecg": true_partner_ranks(sim.T, g)}


def retrieval_metrics(ranks: dict[str, np.ndarray], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``{direction}_R@K`` (fraction of queries with rank ≤ K) and ``{direction}_median_rank``."""
    out: dict[str, float] = {}
    for direction, r in ranks.items():
        for k in ks:
            out[f"{direction}_R@{k}"] = float(np.mean(r <= k))
        out[f"{direction}_median_rank"] = float(np.median(r))
    return out


def recall_hits(ranks: dict[str, np.ndarray], ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-query hit indicators ``{direction}_R@K`` (N,), for bootstrapping the recalls."""
    return {f"{d}_R@{k}": (r <= k).astype(np.float64) for d, r in ranks.items() for k in ks}
