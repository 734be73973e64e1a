"""Beat-level alignment made visible (melp-spec.md §1.3 beat queries, §3.2 local alignment).

For one ECG and its report, the beat queries' attention over ECG frames (``beat_attn``, (Q, N))
says *where in time* each query looks; the sentence ↔ beat-query similarity says *which queries*
each sentence draws on: the cosine of each sentence embedding with each beat embedding, turned
into attention over the queries by a softmax at the loss's cosine temperature (§3.2 step 5,
temp2 = 5). The loss's own attention α (§3.2 steps 1–3, on raw dot products) is reported beside
it: with unnormalised embeddings its softmax over sentences saturates and α is often uniform. Their product gives each
sentence's attention over time, which the report draws under the ECG, one colour per sentence,
and turns into a list of the beats each sentence attends to.

Shapes: Q beat queries, S sentences, N ECG frames, T samples, D embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy.signal import butter, find_peaks, sosfiltfilt

_LEAD_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_RHYTHM_LEAD = 1  # lead II
SIMILARITY_TEMP = 5.0  # melp-spec.md §3.2 step 5: temp2, the scale of sentence-context cosines
_SHADE_FROM = 1.05  # shade where a sentence attends ≥ 1.05 × uniform
_LINK_FROM = 1.05  # list a beat for a sentence that attends to it ≥ 1.05 × uniform


@dataclass
class AlignmentExample:
    """Everything the alignment figure and sentence list need for one record.

    Attributes:
        record_id: the store id.
        signal: ``(12, T)`` ECG in mV (as stored, before normalisation).
        fs: sampling rate in Hz.
        sentences: the report's sentences, in the order of the model's sentence embeddings.
        sentence_to_query: ``(S, Q)`` attention of each sentence over the beat queries (rows sum to 1).
        beat_attn: ``(Q, N)`` each beat query's attention over ECG frames (rows sum to 1).
        beats: R-peak sample indices of the record's beats.
        beat_types: the type of each beat (``N``, ``PVC``, ``PAC``) where known, else empty.
        loss_alpha_peak: the largest entry of the loss's own attention α relative to uniform (1 = uniform).
    """

    record_id: str
    signal: np.ndarray
    fs: float
    sentences: list[str]
    sentence_to_query: np.ndarray
    beat_attn: np.ndarray
    beats: np.ndarray
    beat_types: list[str] = field(default_factory=list)
    loss_alpha_peak: float | None = None

    @property
    def frame_times(self) -> np.ndarray:
        """``(N,)`` centre time in seconds of each ECG frame."""
        n_frames = self.beat_attn.shape[1]
        duration = self.signal.shape[-1] / self.fs
        return (np.arange(n_frames) + 0.5) * duration / n_frames

    @property
    def sentence_time(self) -> np.ndarray:
        """``(S, N)`` each sentence's attention over time relative to uniform attention (1 = uniform)."""
        return sentence_time_attention(self.sentence_to_query, self.beat_attn) * self.beat_attn.shape[1]


@dataclass(frozen=True)
class SentenceLink:
    """One sentence of the report and the beats it attends to."""

    sentence: str
    colour: str
    beat_numbers: tuple[int, ...]
    beat_times: tuple[float, ...]
    beat_types: tuple[str, ...]
    top_queries: tuple[tuple[int, float], ...]
    peak: float


def similarity_attention(
    sentence_embs: np.ndarray, beat_embs: np.ndarray, *, temperature: float = SIMILARITY_TEMP
) -> np.ndarray:
    """``(S, Q)``: softmax over beat queries of ``temperature`` × cosine(sentence, beat embedding).

    Args:
        sentence_embs: ``(S, D)`` embeddings of the real sentences.
        beat_embs: ``(Q, D)`` beat embeddings.
        temperature: scale of the cosines before the softmax.
    """
    if sentence_embs.ndim != 2 or beat_embs.ndim != 2 or sentence_embs.shape[1] != beat_embs.shape[1]:
        raise ValueError(
            f"expected sentence_embs (S, D) and beat_embs (Q, D), got {sentence_embs.shape} and {beat_embs.shape}"
        )
    s = sentence_embs / np.maximum(np.linalg.norm(sentence_embs, axis=1, keepdims=True), 1e-12)
    b = beat_embs / np.maximum(np.linalg.norm(beat_embs, axis=1, keepdims=True), 1e-12)
    logits = temperature * (s @ b.T)  # (S, Q)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def sentence_time_attention(sentence_to_query: np.ndarray, beat_attn: np.ndarray) -> np.ndarray:
    """``(S, Q) @ (Q, N)``: each sentence's attention over ECG frames (rows sum to 1 when the inputs' rows do)."""
    if sentence_to_query.shape[1] != beat_attn.shape[0]:
        raise ValueError(
            f"sentence attention {sentence_to_query.shape} does not match beat attention {beat_attn.shape}"
        )
    return sentence_to_query @ beat_attn  # (S, N)


def detect_beats(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices on lead II (band-pass 5–30 Hz, peaks of the rectified signal).

    Used only to name beats in the report when the store carries no beat ground truth.
    """
    lead = np.asarray(signal[_RHYTHM_LEAD], dtype=np.float64)
    high = min(30.0, 0.45 * fs)
    sos = butter(2, [5.0, high], btype="bandpass", fs=fs, output="sos")
    energy = np.abs(sosfiltfilt(sos, lead))
    if energy.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = find_peaks(energy, height=0.35 * energy.max(), distance=max(1, int(0.25 * fs)))
    return peaks.astype(np.int64)


def sentence_colours(n: int) -> list[str]:
    """``n`` distinct hex colours, one per sentence."""
    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [to_hex(cmap(i % cmap.N)) for i in range(n)]


def sentence_links(example: AlignmentExample, *, max_beats: int = 3, max_queries: int = 2) -> list[SentenceLink]:
    """For each sentence, the beats under its strongest attention and its strongest beat queries.

    Only beats the sentence attends to at least 1.05 × uniformly are listed. A beat's weight for a sentence is the sentence's attention at the frame holding the beat's R
    peak; beats are listed by number (1 = first beat of the record) in time order.
    """
    colours = sentence_colours(len(example.sentences))
    weights = example.sentence_time  # (S, N)
    n_frames = weights.shape[1]
    frames = np.minimum(example.beats * n_frames // example.signal.shape[-1], n_frames - 1)
    links = []
    for s, sentence in enumerate(example.sentences):
        chosen: tuple[int, ...] = ()
        if len(frames):
            order = np.argsort(-weights[s, frames], kind="stable")[:max_beats]
            chosen = tuple(sorted(int(i) for i in order if weights[s, frames[i]] >= _LINK_FROM))
        queries = np.argsort(-example.sentence_to_query[s], kind="stable")[:max_queries]
        links.append(
            SentenceLink(
                sentence=sentence,
                colour=colours[s],
                beat_numbers=tuple(i + 1 for i in chosen),
                beat_times=tuple(float(example.beats[i] / example.fs) for i in chosen),
                beat_types=tuple(example.beat_types[i] for i in chosen) if example.beat_types else (),
                top_queries=tuple((int(q), float(example.sentence_to_query[s, q])) for q in queries),
                peak=float(weights[s].max()),
            )
        )
    return links


def alignment_figure(example: AlignmentExample) -> Figure:
    """Lead II with each sentence's attention shaded in its colour, the sentences' attention curves
    and the beat queries' attention heat map, all on one time axis."""
    colours = sentence_colours(len(example.sentences))
    times = np.arange(example.signal.shape[-1]) / example.fs
    frame_times = example.frame_times
    weights = example.sentence_time  # (S, N)
    fig = Figure(figsize=(12, 6.2))
    grid = fig.add_gridspec(3, 1, height_ratios=[1.4, 1.2, 1.2], hspace=0.08)
    ax_ecg = fig.add_subplot(grid[0])
    ax_sent = fig.add_subplot(grid[1], sharex=ax_ecg)
    ax_beat = fig.add_subplot(grid[2], sharex=ax_ecg)
    lead = example.signal[_RHYTHM_LEAD]
    ax_ecg.plot(times, lead, color="black", lw=0.8)
    best = weights.argmax(axis=0)  # (N,) the sentence attending most to each frame
    half = 0.5 * (frame_times[1] - frame_times[0]) if len(frame_times) > 1 else 0.5 * times[-1]
    strength = weights.max(axis=0)  # (N,) relative to uniform
    top = max(float(strength.max()), _SHADE_FROM + 1e-9)
    for n, t in enumerate(frame_times):
        if strength[n] > _SHADE_FROM:
            alpha = 0.15 + 0.45 * (float(strength[n]) - _SHADE_FROM) / (top - _SHADE_FROM)
            ax_ecg.axvspan(t - half, t + half, color=colours[best[n]], alpha=alpha, lw=0)
    for k, beat in enumerate(example.beats):
        kind = example.beat_types[k] if example.beat_types and example.beat_types[k] != "N" else ""
        label = f"{k + 1} {kind}".strip()
        ax_ecg.text(beat / example.fs, lead.max(), label, fontsize=7, ha="center", va="bottom", color="0.3")
    ax_ecg.set_ylabel(f"lead {_LEAD_NAMES[_RHYTHM_LEAD]} (mV)")
    ax_ecg.set_title(
        f"{example.record_id}: beat-level alignment (shaded where a sentence attends ≥ {_SHADE_FROM:g}× uniform)",
        fontsize=10,
    )
    for s, sentence in enumerate(example.sentences):
        ax_sent.plot(frame_times, weights[s], color=colours[s], lw=1.5, label=_short(sentence))
    ax_sent.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax_sent.set_ylabel("attention / uniform")
    ax_sent.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    q = example.beat_attn.shape[0]
    ax_beat.imshow(
        example.beat_attn,
        aspect="auto",
        cmap="magma",
        extent=(0.0, float(times[-1]), q - 0.5, -0.5),
        interpolation="nearest",
    )
    ax_beat.set_yticks(range(0, q, max(1, q // 6)))  # whole query indices, not 2.5
    ax_beat.set_ylabel("beat query")
    ax_beat.set_xlabel("time (s)")
    for ax in (ax_ecg, ax_sent):
        ax.tick_params(labelbottom=False)
    return fig


def ecg_paper_figure(example: AlignmentExample) -> Figure:
    """The 12-lead ECG on ECG paper with the beat queries' attention over time as a band beneath it."""
    from melp.viz.ecg_paper import plot_ecg

    attn = example.beat_attn / example.beat_attn.max(axis=1, keepdims=True)  # (Q, N) each query scaled to max 1
    labels = [f"q{q}" for q in range(len(attn))]
    title = f"{example.record_id}: 12-lead ECG with the beat queries' attention over time"
    return plot_ecg(example.signal, example.fs, title=title, overlay=attn, overlay_labels=labels)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
