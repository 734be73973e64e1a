"""Run a trained MELP model on one user's ECG: the core that ``melp predict``, ``melp embed`` and ``melp serve`` share.

Given a loaded model and an :class:`~melp.io.ECGRecord` (from :func:`melp.io.read_ecg`), an
:class:`ECGPredictor` does, in order:

1. **Clean**: short runs of NaN/Inf are interpolated by the store's own policy
   (:func:`melp.data.signal.repair_nonfinite`); longer ones refuse the record.
2. **Rate**: the record is resampled to the model's ``fs`` (:func:`melp.data.signal.resample`,
   polyphase, anti-aliased), whatever its own rate.
3. **Length** (:class:`WindowPolicy`): the model reads windows of ``model.config.seconds``. A
   longer record is cut into windows every ``stride_seconds`` (default: the window length, so
   windows do not overlap) plus one window ending at the record's last sample when the strides
   leave a remainder, so every sample is seen; more than ``max_windows`` windows refuse the record.
   A shorter record is zero-padded at the end by the store's :func:`~melp.data.signal.fit_length`
   when it lacks at most ``max_pad_seconds``, and refused with the reason otherwise.
4. **Leads**: leads the file lacks (``record.leads_present``), and leads left out on purpose
   (``leads=`` — a lead subset such as ``("I",)`` or ``("I", "II", "V1")``), are shown to the
   model the way pretraining's random lead masking shows a dropped lead: the lead-mask step of
   :func:`melp.data.transforms.build_transform`, called as pretraining calls it (the model's
   ``normalization`` and ``mask_value``), with the random draw replaced by the record's absent
   leads; so the value and the step (before or after normalisation) follow the transform code,
   never a copy. A lead the file lacks is 0 mV in the record before that step (it has no values).
5. **Model**: windows are normalised as in training and encoded in batches.

Aggregation over windows (said in every result under ``windows.aggregation``): the record's
``ecg_latent`` is the mean of the windows' L2-normalised latents, re-normalised; ``probe_emb`` is
the mean of the windows' probe embeddings; zero-shot scores are the mean over windows of each
window's cosine scores (per-window scores are kept too). The generated report and the sentence
attention are computed on the **first** window (the start of the record, as MELP crops).

Outputs: zero-shot finding scores (the default label set of ``task`` from the prompt bank
:mod:`melp.eval.prompts`, or free-text ``labels``, each its own prompt), the generated report,
each generated sentence's beat attention over time (:mod:`melp.report.alignment`, the same
computation as the demo report's alignment view), the readings (format, fs, leads
found/missing/masked, duration, problems) and the model's identity; :meth:`Prediction.to_dict` is
JSON-serialisable. A model without a text side (encoder-only; ``model.text is None``, or no
tokenizer) gives embeddings only: zero-shot and the report are marked unavailable with the reason.

Shapes: W windows, C = 12 leads, T window samples, E embedding width, K labels, S sentences,
Q beat queries, N ECG frames.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from melp.data.leads import STANDARD_LEADS, canonical_lead_name
from melp.data.signal import RecordError, SignalPolicy, fit_length, repair_nonfinite, resample
from melp.data.transforms import Compose, RandomLeadMask, build_transform
from melp.io.record import ECGRecord

logger = logging.getLogger(__name__)

DEFAULT_TASK = "cpsc2018"
"""Default zero-shot label set: CPSC 2018's nine clinical classes (NORM, AFIB, 1AVB, CLBBB, CRBBB, PAC, VPC, STD, STE)."""

AGGREGATION = (
    "ecg_latent: mean of the windows' normalised latents, re-normalised; probe_emb: mean over windows; "
    "zero-shot scores: mean over windows of each window's cosine scores; report and attention: first window"
)


class InferenceError(RecordError):
    """A record the model cannot be run on (too short, too many windows, no usable lead); the message says why."""


@dataclass(frozen=True)
class WindowPolicy:
    """How a record of any length becomes model windows (see the module docstring, step 3).

    Attributes:
        stride_seconds: distance between window starts; ``None``: the window length (no overlap).
        max_pad_seconds: the most zero-padding a short record may get (at its end).
        max_windows: records needing more windows are refused (default 360: one hour of 10 s windows).
    """

    stride_seconds: float | None = None
    max_pad_seconds: float = 2.0
    max_windows: int = 360

    def __post_init__(self) -> None:
        if self.stride_seconds is not None and not self.stride_seconds > 0:
            raise ValueError(f"stride_seconds must be positive, got {self.stride_seconds}")
        if self.max_pad_seconds < 0:
            raise ValueError(f"max_pad_seconds must be >= 0, got {self.max_pad_seconds}")
        if self.max_windows < 1:
            raise ValueError(f"max_windows must be >= 1, got {self.max_windows}")


@dataclass(frozen=True)
class InferenceConfig:
    """What :meth:`ECGPredictor.predict` computes.

    Attributes:
        task: label set of the default zero-shot classes (:func:`melp.data.tasks.get_task`).
        labels: free-text labels instead of ``task``'s classes (each label is its own prompt).
        prompts: a prompt-bank JSON replacing melp's own (``None``: melp's bank).
        windows: the :class:`WindowPolicy`.
        generate: write a report (beam search) on the first window.
        max_report_length: token limit of the generated report.
        num_beams: beams of the report's beam search.
        attention: compute each generated sentence's beat attention over time.
        batch_size: windows per forward pass.
    """

    task: str = DEFAULT_TASK
    labels: tuple[str, ...] | None = None
    prompts: str | None = None
    windows: WindowPolicy = field(default_factory=WindowPolicy)
    generate: bool = True
    max_report_length: int = 64
    num_beams: int = 3
    attention: bool = True
    batch_size: int = 16


@dataclass
class Windows:
    """A record prepared for the model.

    Attributes:
        ecg: ``(W, 12, T)`` float32 model inputs (normalised, missing/masked leads filled).
        signal_mv: ``(12, n)`` the record at the model's rate in mV (padded if it was short), for figures.
        starts_s: ``(W,)`` start time of each window in seconds.
        fs: the model's rate.
        length_policy: ``exact``, ``padded`` or ``windowed``.
        masked_leads: leads shown to the model as absent (missing in the file or left out on purpose).
        problems: notes for the user (padding, interpolation, masking).
    """

    ecg: np.ndarray
    signal_mv: np.ndarray
    starts_s: np.ndarray
    fs: float
    length_policy: str
    masked_leads: list[str]
    problems: list[str]

    def describe(self) -> dict[str, Any]:
        return {
            "n_windows": len(self.starts_s),
            "window_s": self.ecg.shape[-1] / self.fs,
            "starts_s": [round(float(s), 4) for s in self.starts_s],
            "length_policy": self.length_policy,
            "aggregation": AGGREGATION,
        }


@dataclass
class Embedding:
    """Embeddings of one record: aggregated (``(E,)``) and per window (``(W, E)``)."""

    ecg_latent: np.ndarray
    probe_emb: np.ndarray
    window_latents: np.ndarray
    window_probe: np.ndarray
    windows: Windows


@dataclass
class Prediction:
    """Everything :meth:`ECGPredictor.predict` found for one record; :meth:`to_dict` is JSON-serialisable.

    Attributes:
        model: the model's identity (:meth:`ECGPredictor.model_info`).
        readings: what was read (:meth:`melp.io.ECGRecord.readings`) plus the windows and masked leads.
        findings: ``{"available", "reason", "labels", "codes", "scores", "window_scores"}``, labels
            sorted as given (scores are cosines in [-1, 1], one per label, mean over windows).
        report: ``{"available", "reason", "text"}``.
        attention: ``{"available", "reason", "window_start_s", "frame_times_s", "sentences":
            [{"sentence", "attention" (per frame, relative to uniform), "beats_s"}]}``.
        embedding: the record's :class:`Embedding`.
        alignment: the :class:`~melp.report.alignment.AlignmentExample` behind ``attention`` (for figures).
    """

    model: dict[str, Any]
    readings: dict[str, Any]
    findings: dict[str, Any]
    report: dict[str, Any]
    attention: dict[str, Any]
    embedding: Embedding
    alignment: Any = None

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        out = {
            "model": self.model,
            "readings": self.readings,
            "findings": self.findings,
            "report": self.report,
            "attention": self.attention,
        }
        if with_embedding:
            out["embedding"] = {
                "ecg_latent": self.embedding.ecg_latent.tolist(),
                "probe_emb": self.embedding.probe_emb.tolist(),
            }
        return out

    def top_findings(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best-scoring labels, best first (empty when zero-shot is unavailable)."""
        if not self.findings.get("available"):
            return []
        pairs = list(zip(self.findings["labels"], self.findings["scores"]))
        return sorted(pairs, key=lambda p: -p[1])[:k]


def parse_leads(leads: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """A lead subset (``"I,II,V1"`` or names) as standard names in standard order; ``None`` = all leads.

    Raises:
        ValueError: an unknown lead name, or an empty subset.
    """
    if leads is None:
        return None
    names = [n.strip() for n in leads.split(",")] if isinstance(leads, str) else [str(n).strip() for n in leads]
    names = [n for n in names if n]
    canon = [canonical_lead_name(n) for n in names]
    unknown = [n for n, c in zip(names, canon) if c is None]
    if unknown:
        raise ValueError(f"unknown lead name(s) {unknown}; expected some of {', '.join(STANDARD_LEADS)}")
    if not canon:
        raise ValueError("the lead subset is empty")
    return tuple(lead for lead in STANDARD_LEADS if lead in canon)


class _FixedLeadMask:
    """Pretraining's lead-mask step with the random draw replaced by a fixed set of absent leads."""

    def __init__(self, *, absent: np.ndarray, value: float) -> None:
        self.absent = absent.astype(bool)  # (12,)
        self.value = value

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float32, copy=True)
        out[..., self.absent, :] = self.value
        return out

    def __repr__(self) -> str:
        return f"FixedLeadMask(absent={[STANDARD_LEADS[i] for i in np.flatnonzero(self.absent)]}, value={self.value})"


def input_transform(*, normalization: Any, absent: np.ndarray, mask_value: Any = None) -> Compose:
    """The model-input transform with ``absent`` ``(12,)`` leads masked as pretraining masks dropped leads.

    Built by :func:`melp.data.transforms.build_transform` exactly as pretraining builds it (the
    model's ``normalization`` and ``mask_value``; ``None``: build_transform's default); the random
    lead mask it contains is swapped for a fixed one.
    """
    if not absent.any():
        return build_transform(normalization=normalization)
    options = {} if mask_value is None else {"mask_value": mask_value}
    built = build_transform(normalization=normalization, lead_mask_keep=1.0, **options)
    steps = [
        _FixedLeadMask(absent=absent, value=t.value) if isinstance(t, RandomLeadMask) else t for t in built.transforms
    ]
    return Compose(steps)


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Start samples of the windows covering ``n`` samples (module docstring, step 3); ``n >= window``."""
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def model_identity(model: Any, model_dir: str | Path | None) -> dict[str, Any]:
    """Who made a prediction: directory, weights digest, size and input of the model."""
    cfg = model.config
    info: dict[str, Any] = {
        "model_dir": str(model_dir) if model_dir is not None else None,
        "fs": cfg.fs,
        "seconds": cfg.seconds,
        "normalization": cfg.normalization,
        "embed_dim": cfg.embed_dim,
        "ecg_size": cfg.ecg.size,
        "ecg_width": int(model.ecg_encoder.width),
        "has_text": _has_text(model),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    weights = Path(model_dir) / "model.safetensors" if model_dir is not None else None
    if weights is not None and weights.is_file():
        digest = hashlib.sha256()
        with weights.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        info["weights_sha256"] = digest.hexdigest()[:16]
    return info


def _has_text(model: Any) -> bool:
    has = getattr(model, "has_text", None)
    if has is None:
        has = getattr(model, "text", None) is not None
    return bool(has) and getattr(model, "tokenizer", None) is not None


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


class ECGPredictor:
    """A loaded MELP model that turns :class:`~melp.io.ECGRecord` s into predictions (module docstring).

    Args:
        model: a :class:`~melp.models.MELP` (put in eval mode here).
        config: what to compute.
        model_dir: where the model was loaded from (for its identity).
        device: where the model runs.

    Thread-safety: one predictor serves one request at a time (the web server serialises calls).
    """

    def __init__(
        self,
        *,
        model: Any,
        config: InferenceConfig | None = None,
        model_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.config = config or InferenceConfig()
        self.device = torch.device(device)
        self.model_dir = model_dir
        self.has_text = _has_text(model)
        self._identity: dict[str, Any] | None = None
        self._class_cache: dict[tuple[Any, ...], tuple[list[str], list[str], torch.Tensor]] = {}

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, *, config: InferenceConfig | None = None, device: str = "cpu"
    ) -> ECGPredictor:
        """Load ``model_dir`` (a ``save_pretrained`` directory).

        Raises:
            FileNotFoundError: not a saved MELP model.
        """
        from melp.models import MELP

        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} not found")
        return cls(model=MELP.from_pretrained(path), config=config, model_dir=path, device=device)

    # -- inputs -----------------------------------------------------------------------------------

    @property
    def fs(self) -> int:
        return int(self.model.config.fs)

    @property
    def window_samples(self) -> int:
        return round(self.model.config.fs * self.model.config.seconds)

    def model_info(self) -> dict[str, Any]:
        """The model's identity (computed once)."""
        if self._identity is None:
            self._identity = model_identity(self.model, self.model_dir)
        return self._identity

    def prepare(self, record: ECGRecord, *, leads: Sequence[str] | None = None) -> Windows:
        """The model's windows of ``record`` (module docstring, steps 1–4); ``leads``: a lead subset to keep.

        Raises:
            InferenceError: the record is too short, needs too many windows, or keeps no lead.
        """
        policy = self.config.windows
        subset = parse_leads(leads)
        keep = record.leads_present.copy()
        problems: list[str] = []
        if subset is not None:
            wanted = np.array([lead in subset for lead in STANDARD_LEADS])
            unavailable = [lead for lead in subset if not record.leads_present[STANDARD_LEADS.index(lead)]]
            if unavailable:
                problems.append(f"requested lead(s) {', '.join(unavailable)} are not in the file")
            keep &= wanted
        if not keep.any():
            raise InferenceError("no usable lead: every lead is missing or left out")
        masked = [lead for lead, k in zip(STANDARD_LEADS, keep) if not k]
        if masked:
            problems.append(f"lead(s) {', '.join(masked)} shown to the model as absent (pretraining's lead masking)")
        fs_model = self.fs
        clean_policy = SignalPolicy(fs=fs_model, seconds=self.model.config.seconds)
        signal = record.signal.astype(np.float64)  # absent leads: 0 mV; masked by the transform below
        try:
            signal, n_fixed = repair_nonfinite(signal, record.fs, clean_policy)
        except RecordError as exc:
            raise InferenceError(str(exc)) from exc
        if n_fixed:
            problems.append(f"{n_fixed} non-finite samples interpolated")
        signal = resample(signal, record.fs, fs_model)  # (12, n) at the model's rate
        window = self.window_samples
        n = signal.shape[1]
        if n < window:
            pad_policy = SignalPolicy(
                fs=fs_model,
                seconds=self.model.config.seconds,
                max_pad_seconds=min(policy.max_pad_seconds, self.model.config.seconds * 0.999),
            )
            try:
                signal, meta = fit_length(signal, pad_policy)
            except RecordError as exc:
                raise InferenceError(
                    f"record is {n / fs_model:.2f} s; the model reads {self.model.config.seconds:g} s windows "
                    f"and pads at most {policy.max_pad_seconds:g} s (max_pad_seconds)"
                ) from exc
            problems.append(f"zero-padded by {meta['pad_seconds']:g} s to the model's {self.model.config.seconds:g} s")
            starts, length_policy = [0], "padded"
        else:
            stride = window if policy.stride_seconds is None else max(1, round(policy.stride_seconds * fs_model))
            starts = window_starts(n, window, stride)
            length_policy = "exact" if n == window else "windowed"
            if len(starts) > policy.max_windows:
                raise InferenceError(
                    f"record is {n / fs_model:.1f} s: {len(starts)} windows, more than max_windows={policy.max_windows}"
                )
        stack = np.stack([signal[:, s : s + window] for s in starts]).astype(np.float32)  # (W, 12, T)
        config = self.model.config
        transform = input_transform(
            normalization=config.normalization, absent=~keep, mask_value=getattr(config, "mask_value", None)
        )
        return Windows(
            ecg=transform(stack),
            signal_mv=signal.astype(np.float32),
            starts_s=np.asarray(starts, dtype=np.float64) / fs_model,
            fs=float(fs_model),
            length_policy=length_policy,
            masked_leads=masked,
            problems=problems,
        )

    # -- embeddings -----------------------------------------------------------------------------

    @torch.no_grad()
    def _encode(self, ecg: np.ndarray) -> dict[str, torch.Tensor]:
        """``encode_ecg`` over ``(W, 12, T)`` windows in batches; ``ecg_latent`` and ``probe_emb`` (W, E)."""
        outs: dict[str, list[torch.Tensor]] = {"ecg_latent": [], "probe_emb": []}
        for start in range(0, len(ecg), self.config.batch_size):
            batch = torch.from_numpy(ecg[start : start + self.config.batch_size]).to(self.device)
            out = self.model.encode_ecg(batch, with_attention=False)
            for key in outs:
                outs[key].append(out[key].float().cpu())
        return {k: torch.cat(v) for k, v in outs.items()}

    def embed(self, record: ECGRecord, *, leads: Sequence[str] | None = None) -> Embedding:
        """The record's embeddings (aggregated over windows as the module docstring says)."""
        windows = self.prepare(record, leads=leads)
        return self._embed_windows(windows)

    def _embed_windows(self, windows: Windows) -> Embedding:
        out = self._encode(windows.ecg)
        latents = F.normalize(out["ecg_latent"], dim=-1)  # (W, E)
        for key, value in out.items():
            if not torch.isfinite(value).all():
                raise InferenceError(f"the model produced non-finite {key} embeddings")
        return Embedding(
            ecg_latent=F.normalize(latents.mean(dim=0), dim=-1).numpy(),
            probe_emb=out["probe_emb"].mean(dim=0).numpy(),
            window_latents=latents.numpy(),
            window_probe=out["probe_emb"].numpy(),
            windows=windows,
        )

    # -- zero-shot, report, attention --------------------------------------------------------

    def _collator(self) -> Any:
        from melp.data.collate import ECGReportCollator

        return ECGReportCollator(self.model.tokenizer, max_length=self.model.config.text.max_length)

    def class_embeddings(self, labels: Sequence[str] | None = None) -> tuple[list[str], list[str], torch.Tensor]:
        """Label names, their codes and class embeddings ``(K, E)``: free-text ``labels`` or the task's classes."""
        from melp.eval.prompts import class_prompts, load_prompt_bank
        from melp.eval.zeroshot import build_class_embeddings

        free = tuple(labels) if labels is not None else self.config.labels
        key = ("labels", free) if free is not None else ("task", self.config.task, self.config.prompts)
        if key not in self._class_cache:
            if free is not None:
                names = [str(label).strip() for label in free if str(label).strip()]
                if not names:
                    raise ValueError("no labels given (expected text such as 'atrial fibrillation, normal ecg')")
                codes, prompts = names, {name: [" ".join(name.lower().split())] for name in names}
            else:
                from melp.data.tasks import get_task

                codes = list(get_task(self.config.task).classes)
                prompts = class_prompts(codes, load_prompt_bank(self.config.prompts))
                names = [prompts[c][0] for c in codes]
            collator = self._collator()

            def tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
                ids, mask = collator.tokenize(texts)
                return {"input_ids": ids, "attention_mask": mask}

            emb = build_class_embeddings(
                prompts, codes, tokenize=tokenize, encode_text=self.model.encode_text, device=self.device
            )
            self._class_cache[key] = (names, codes, emb)
        return self._class_cache[key]

    def _findings(self, embedding: Embedding, labels: Sequence[str] | None) -> dict[str, Any]:
        from melp.eval.zeroshot import zeroshot_scores

        if not self.has_text:
            return _unavailable("the model has no text side (encoder-only): zero-shot needs a text encoder")
        names, codes, class_emb = self.class_embeddings(labels)
        per_window = zeroshot_scores(torch.from_numpy(embedding.window_latents), class_emb)  # (W, K)
        return {
            "available": True,
            "reason": "",
            "source": "labels"
            if (labels is not None or self.config.labels is not None)
            else f"task {self.config.task}",
            "labels": names,
            "codes": codes,
            "scores": [round(float(v), 6) for v in per_window.mean(dim=0)],
            "window_scores": [[round(float(v), 6) for v in row] for row in per_window],
            "score": "cosine of the ECG latent with the label's prompt embedding, in [-1, 1]; mean over windows",
        }

    @torch.no_grad()
    def _report_and_attention(self, windows: Windows, record_id: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
        from melp.models.tokenizer import split_sentences
        from melp.report.alignment import AlignmentExample, detect_beats, sentence_links, similarity_attention

        if not self.has_text:
            reason = "the model has no text side (encoder-only): no caption decoder"
            return _unavailable(reason), _unavailable(reason), None
        if not self.config.generate:
            return _unavailable("report generation switched off"), _unavailable("needs the generated report"), None
        first = torch.from_numpy(windows.ecg[:1]).to(self.device)  # (1, 12, T)
        ids = self.model.generate(
            first, method="beam", max_length=self.config.max_report_length, num_beams=self.config.num_beams
        )
        tokenizer = self.model.tokenizer
        text = str(tokenizer.batch_decode(ids, skip_special_tokens=True)[0]).strip()
        report = {"available": True, "reason": "", "text": text, "window_start_s": float(windows.starts_s[0])}
        if not self.config.attention:
            return report, _unavailable("attention switched off"), None
        if not text:
            return report, _unavailable("the generated report is empty"), None
        ecg_out = self.model.encode_ecg(first)
        input_ids, mask = self._collator().tokenize([text])
        text_out = self.model.encode_text(input_ids.to(self.device), mask.to(self.device))
        valid = text_out["sentence_mask"][0].bool()
        cfg = self.model.config.text
        pieces = split_sentences(
            input_ids[0].tolist(), delimiter_id=cfg.sentence_delimiter_id, special_ids=set(cfg.special_token_ids)
        )
        sentence_embs = text_out["sentence_embs"][0][valid].float().cpu().numpy()  # (S, D)
        if len(pieces) != len(sentence_embs) or not len(pieces):
            return report, _unavailable("the report's sentences could not be matched to its embeddings"), None
        window = windows.signal_mv[:, : self.window_samples]
        beat_embs = ecg_out["beat_embs"][0].float().cpu().numpy()  # (Q, D)
        example = AlignmentExample(
            record_id=record_id,
            signal=window,
            fs=windows.fs,
            sentences=[str(tokenizer.decode(p)).strip() for p in pieces],
            sentence_to_query=similarity_attention(sentence_embs, beat_embs),
            beat_attn=ecg_out["beat_attn"][0].float().cpu().numpy(),
            beats=detect_beats(window, windows.fs),
        )
        links = sentence_links(example)
        curves = example.sentence_time  # (S, N) relative to uniform
        attention = {
            "available": True,
            "reason": "",
            "window_start_s": float(windows.starts_s[0]),
            "frame_times_s": [round(float(t), 4) for t in example.frame_times],
            "beats_s": [round(float(b) / windows.fs, 4) for b in example.beats],
            "sentences": [
                {
                    "sentence": link.sentence,
                    "attention": [round(float(v), 4) for v in curve],
                    "beats_s": [round(t, 4) for t in link.beat_times],
                    "peak": round(link.peak, 4),
                }
                for link, curve in zip(links, curves)
            ],
            "attention_unit": "sentence attention over ECG frames relative to uniform (1 = uniform)",
        }
        return report, attention, example

    def predict(
        self, record: ECGRecord, *, labels: Sequence[str] | None = None, leads: Sequence[str] | None = None
    ) -> Prediction:
        """Zero-shot findings, report, sentence attention, readings and embeddings of one record.

        Args:
            record: from :func:`melp.io.read_ecg`.
            labels: free-text labels for this call (default: the config's labels or task).
            leads: a lead subset to keep (the others are masked); default all leads of the file.

        Raises:
            InferenceError: the record cannot be run (see :meth:`prepare`).
        """
        windows = self.prepare(record, leads=leads)
        embedding = self._embed_windows(windows)
        findings = self._findings(embedding, labels)
        report, attention, example = self._report_and_attention(windows, Path(record.path).name)
        readings = record.readings()
        readings["leads_masked"] = windows.masked_leads
        readings["lead_subset"] = list(parse_leads(leads) or []) or None
        readings["windows"] = windows.describe()
        readings["problems"] = [*readings["problems"], *windows.problems]
        return Prediction(
            model=self.model_info(),
            readings=readings,
            findings=findings,
            report=report,
            attention=attention,
            embedding=embedding,
            alignment=example,
        )


__all__ = [
    "AGGREGATION",
    "DEFAULT_TASK",
    "ECGPredictor",
    "Embedding",
    "InferenceConfig",
    "InferenceError",
    "Prediction",
    "WindowPolicy",
    "Windows",
    "input_transform",
    "model_identity",
    "parse_leads",
    "window_starts",
]
