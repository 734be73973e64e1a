"""Beat-level grounding: does a finding sentence attend to the beats that carry the finding?

The synthetic corpus (:mod:`melp.data.synthetic.generator`) knows every beat's type and QRS
boundaries, and its reports state one finding per sentence. For each test record whose report has
a PVC or PAC sentence and whose ECG has beats of that type, the sentence's attention over the ECG
frames is the product of its attention over the beat queries and the queries' attention over the
frames (:mod:`melp.report.alignment`), with the sentence → query link taken two ways:

- ``cosine``: softmax over queries of 5 × cosine(sentence, beat embedding) (the report's link,
  :func:`~melp.report.alignment.similarity_attention`);
- ``alpha``: the local loss's own α (:func:`~melp.losses.local_alignment.local_attention_maps`,
  softmaxes of raw dot products, which saturate; docs/losses.md).

An ectopic beat's window is its QRS, onset to offset (the ground truth at the store's rate), or
R ± :data:`FALLBACK_HALF_WIDTH_S` where a boundary is undefined. Frame ``n`` of a model at
``fs`` Hz covers ``[16 n / fs, 16 (n + 1) / fs)`` seconds, its stride window (a conv kernel above 2
also lets it see around that window, centred on it); a frame is *ectopic* when it overlaps
any window (store and model rates may differ: everything is mapped by time). Per sentence:

- ``mass``: attention on the ectopic frames; ``share``: the fraction of frames that are ectopic
  (the mass of uniform attention, and the hit rate of a random pointer);
- ``mass_ratio`` = mass / share (1 = uniform); ``hit``: the arg-max frame is ectopic (pointing game);
- ``beat_share``: the fraction of *beat* frames (frames on any beat's window) that are ectopic, the
  hit rate of a pointer that lands on a random beat's frame, a stricter chance level than ``share``
  (an encoder that merely attends to QRS complexes beats ``share``); ``beat_mass_ratio`` =
  (mass on the ectopic frames / mass on all beat frames) / ``beat_share``, 1 when the attention
  among beats does not prefer the ectopic ones (0 when no attention falls on a beat).

``best_query`` scores, beside the two links, the single beat query whose attention puts the most
mass on the sentence's ectopic frames (chosen with the ground truth): an upper bound for any link
that picks one query, which tells whether the links or the beat queries themselves fall short.

Shapes: S sentences, Q beat queries, N frames, D embedding width, K beats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from melp.data.synthetic.reports import sentence_code, split_sentences
from melp.eval.bootstrap import BootstrapResult, bootstrap_means
from melp.losses.local_alignment import local_attention_maps
from melp.models.ecg_encoder import DOWNSAMPLE
from melp.report.alignment import sentence_time_attention, similarity_attention

GROUNDED_CODES = ("PVC", "PAC")
LINKS = ("cosine", "alpha")
FALLBACK_HALF_WIDTH_S = 0.06
TRUTH_COLUMNS = ("report", "beat_samples", "beat_types", "qrs_onsets", "qrs_offsets")


@dataclass(frozen=True)
class Target:
    """One finding sentence of one record and the time windows of the beats that carry its finding.

    Attributes:
        row: the store row.
        sentence: the sentence's position in the report (0 = first).
        code: ``PVC`` or ``PAC``.
        windows: ``(K, 2)`` ``[start, end)`` in seconds of each beat of type ``code``.
        all_windows: ``(K', 2)`` the same for every beat of the record (normal and ectopic).
    """

    row: int
    sentence: int
    code: str
    windows: np.ndarray
    all_windows: np.ndarray


def has_beat_truth(meta: pd.DataFrame) -> bool:
    """Whether a store's metadata has the beat ground truth grounding needs (a synthetic store)."""
    return all(column in meta.columns for column in TRUTH_COLUMNS)


def beat_windows(
    beats: np.ndarray,
    onsets: np.ndarray,
    offsets: np.ndarray,
    *,
    fs: float,
    half_width_s: float = FALLBACK_HALF_WIDTH_S,
) -> np.ndarray:
    """``(K, 2)`` ``[start, end)`` seconds of each beat: QRS onset .. offset (inclusive samples at ``fs``),
    or R ± ``half_width_s`` where the onset or offset is undefined (-1)."""
    beats, onsets, offsets = (np.asarray(a, dtype=np.float64) for a in (beats, onsets, offsets))
    known = (onsets >= 0) & (offsets >= onsets)
    start = np.where(known, onsets / fs, beats / fs - half_width_s)
    end = np.where(known, (offsets + 1) / fs, beats / fs + half_width_s)
    return np.stack([start, end], axis=1).reshape(-1, 2)


def frames_covered(windows: np.ndarray, *, n_frames: int, fs: float) -> np.ndarray:
    """``(N,)`` bool: frame ``n`` (``[16 n / fs, 16 (n + 1) / fs)`` s at the model's rate) overlaps a window."""
    edges = np.arange(n_frames + 1) * DOWNSAMPLE / fs  # (N + 1,)
    start, end = edges[:-1, None], edges[1:, None]  # (N, 1)
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    return np.asarray(((start < windows[None, :, 1]) & (end > windows[None, :, 0])).any(axis=1))


def grounding_scores(attention: np.ndarray, covered: np.ndarray, on_beats: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sentence scores of attention rows against their ectopic frames.

    Args:
        attention: ``(S, N)`` each sentence's attention over frames (rows sum to 1).
        covered: ``(S, N)`` bool, the frames on that sentence's ectopic beats (at least one per row).
        on_beats: ``(S, N)`` bool, the frames on any beat of the record (a superset of ``covered``).

    Returns:
        ``mass``, ``share``, ``mass_ratio``, ``hit`` (0/1), ``beat_share`` and ``beat_mass_ratio``, each ``(S,)``.
    """
    attention = np.atleast_2d(attention).astype(np.float64)
    covered, on_beats = np.atleast_2d(covered).astype(bool), np.atleast_2d(on_beats).astype(bool)
    if not attention.shape == covered.shape == on_beats.shape:
        raise ValueError(
            f"attention {attention.shape}, ectopic {covered.shape} and beat frames {on_beats.shape} differ"
        )
    if not covered.any(axis=1).all():
        raise ValueError("every sentence needs at least one ectopic frame")
    if (covered & ~on_beats).any():
        raise ValueError("every ectopic frame must be a beat frame")
    mass = (attention * covered).sum(axis=1)
    share = covered.mean(axis=1)
    hit = covered[np.arange(len(covered)), attention.argmax(axis=1)].astype(np.float64)
    beat_mass = (attention * on_beats).sum(axis=1)
    beat_share = covered.sum(axis=1) / on_beats.sum(axis=1)
    beat_ratio = np.divide(mass, beat_mass * beat_share, out=np.zeros_like(mass), where=beat_mass > 0)
    return {"mass": mass, "share": share, "mass_ratio": mass / share, "hit": hit, "beat_share": beat_share,
            "beat_mass_ratio": beat_ratio}  # fmt: skip


def grounding_targets(meta: pd.DataFrame, rows: np.ndarray, *, fs: float) -> list[Target]:
    """The PVC/PAC sentences of the records ``rows`` whose ECG has beats of that type (store at ``fs`` Hz)."""
    if not has_beat_truth(meta):
        return []
    targets = []
    for row in np.asarray(rows, dtype=np.int64):
        record = meta.iloc[int(row)]
        types = np.asarray(record["beat_types"], dtype=str)
        beats = np.asarray(record["beat_samples"], dtype=np.int64)
        onsets = np.asarray(record["qrs_onsets"], dtype=np.int64)
        offsets = np.asarray(record["qrs_offsets"], dtype=np.int64)
        for k, sentence in enumerate(split_sentences(str(record["report"] or ""))):
            code = sentence_code(sentence)
            chosen = (types == code) & (beats >= 0)
            if code not in GROUNDED_CODES or not chosen.any():
                continue
            every = beat_windows(beats[beats >= 0], onsets[beats >= 0], offsets[beats >= 0], fs=fs)
            windows = beat_windows(beats[chosen], onsets[chosen], offsets[chosen], fs=fs)
            targets.append(Target(row=int(row), sentence=k, code=str(code), windows=windows, all_windows=every))
    return targets


def best_query_scores(beat_attn: np.ndarray, covered: np.ndarray, on_beats: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`grounding_scores` of the best beat query for each sentence (the most mass on its ectopic frames).

    Args:
        beat_attn: ``(S, Q, N)`` the queries' attention over frames of each sentence's record.
        covered: ``(S, N)`` bool, each sentence's ectopic frames; ``on_beats``: ``(S, N)`` its record's beat frames.
    """
    s, q, n = beat_attn.shape
    per_query = grounding_scores(
        beat_attn.reshape(s * q, n), np.repeat(covered, q, axis=0), np.repeat(on_beats, q, axis=0)
    )
    best = per_query["mass"].reshape(s, q).argmax(axis=1)  # (S,)
    return {name: v.reshape(s, q)[np.arange(s), best] for name, v in per_query.items()}


@torch.no_grad()
def sentence_frame_attention(
    model: Any, ecg: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> list[dict[str, np.ndarray]]:
    """Each record's sentences' attention over frames by link (``cosine``, ``alpha``: ``(S_b, N)``) and the
    beat queries' attention over frames (``queries``: ``(Q, N)``).

    Args:
        model: a :class:`~melp.models.MELP` in eval mode.
        ecg: ``(B, 12, T)`` transformed ECGs; ``input_ids``, ``attention_mask``: ``(B, L)`` their reports.
    """
    ecg_out = model.encode_ecg(ecg)
    text_out = model.encode_text(input_ids, attention_mask)
    mask = text_out["sentence_mask"].bool()  # (B, S)
    alpha = local_attention_maps(ecg_out["beat_embs"], text_out["sentence_embs"], mask).float().numpy()  # (B, S, Q)
    beat_embs = ecg_out["beat_embs"].float().numpy()  # (B, Q, D)
    beat_attn = ecg_out["beat_attn"].float().numpy()  # (B, Q, N)
    sentence_embs = text_out["sentence_embs"].float().numpy()  # (B, S, D)
    out = []
    for b, valid in enumerate(mask.numpy()):
        cosine = similarity_attention(sentence_embs[b][valid], beat_embs[b])  # (S_b, Q)
        out.append(
            {
                "cosine": sentence_time_attention(cosine, beat_attn[b]),
                "alpha": sentence_time_attention(alpha[b][valid], beat_attn[b]),
                "queries": beat_attn[b],
            }
        )
    return out


def summarise(
    codes: list[str], scores: dict[str, dict[str, np.ndarray]], *, n_resamples: int, seed: int
) -> tuple[dict[str, Any], BootstrapResult]:
    """Means and bootstrap 95 % CIs (over sentences) overall and per code.

    Args:
        codes: ``(M,)`` the code of each sentence.
        scores: per link, :func:`grounding_scores` of the M sentences.

    Returns:
        metrics ``{[CODE/]LINK/mass_ratio|hit_rate|mass|beat_mass_ratio, [CODE/]chance_hit_rate,
        [CODE/]chance_beat_hit_rate, [CODE/]n_sentences}`` and
        a bootstrap result holding every interval (the bookkeeping is the overall scope's).
    """
    if not codes:
        raise ValueError("no sentence to summarise")
    code_array = np.asarray(codes)
    metrics: dict[str, Any] = {}
    ci: dict[str, list[float] | None] = {}
    overall: BootstrapResult | None = None
    for scope in (None, *GROUNDED_CODES):
        keep = np.ones(len(code_array), bool) if scope is None else code_array == scope
        prefix = "" if scope is None else f"{scope}/"
        metrics[f"{prefix}n_sentences"] = int(keep.sum())
        if not keep.any():
            continue
        first = next(iter(scores.values()))
        values = {
            f"{prefix}chance_hit_rate": first["share"][keep],
            f"{prefix}chance_beat_hit_rate": first["beat_share"][keep],
        }
        for link, s in scores.items():
            values |= {f"{prefix}{link}/mass_ratio": s["mass_ratio"][keep], f"{prefix}{link}/hit_rate": s["hit"][keep],
                       f"{prefix}{link}/mass": s["mass"][keep],
                       f"{prefix}{link}/beat_mass_ratio": s["beat_mass_ratio"][keep]}  # fmt: skip
        metrics |= {name: float(v.mean()) for name, v in values.items()}
        boot = bootstrap_means(values, n_resamples=n_resamples, seed=seed)
        ci |= boot.ci95
        overall = boot if scope is None else overall
    assert overall is not None
    return metrics, replace(overall, ci95=ci)
