"""The model behind ``melp serve``: loaded once, one prediction at a time, JSON out.

:class:`PredictionService` wraps :class:`melp.inference.ECGPredictor` (the same core as
``melp predict``) and adds what a web page needs: the uploaded file's own name in every message,
the tracing to draw (the first model window of the record, at most :data:`DISPLAY_FS` Hz), the
findings ranked with the user's own labels among them, and the time each step took. Model calls
are serialised by a lock (the predictor keeps caches and the CPU has few cores); reading files
happens outside it, so concurrent requests overlap where they can and never share results.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melp.data.leads import STANDARD_LEADS
from melp.data.signal import resample
from melp.inference import ECGPredictor, InferenceConfig, InferenceError
from melp.io import ECGReadError, ECGRecord, read_ecg
from melp.serve.card import model_card
from melp.serve.config import ServeConfig
from melp.serve.onnx_tower import OnnxTower, OnnxTowerModel, compare_backends, weights_digest

logger = logging.getLogger(__name__)

DISPLAY_FS = 250.0
"""Highest sampling rate of the tracing sent to the page (25 mm/s paper: 10 samples per mm)."""


class PredictError(ValueError):
    """A request the model cannot answer; ``status`` is the HTTP status (4xx) and ``str()`` the one-line reason."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def display_signal(record: ECGRecord, *, seconds: float, max_fs: float = DISPLAY_FS) -> dict[str, Any]:
    """The first ``seconds`` of ``record`` for drawing: mV per lead (``None`` for a missing lead) at ≤ ``max_fs`` Hz."""
    n = min(record.signal.shape[1], max(1, round(seconds * record.fs)))
    sig = np.nan_to_num(record.signal[:, :n].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    fs = float(record.fs)
    if fs > max_fs:
        sig, fs = resample(sig, fs, max_fs), float(max_fs)
    leads = [np.round(row, 4).tolist() if ok else None for row, ok in zip(sig, record.leads_present)]
    return {
        "fs": fs,
        "units": record.units,
        "lead_names": list(STANDARD_LEADS),
        "leads": leads,
        "start_s": 0.0,
        "duration_s": round(sig.shape[1] / fs, 4),
        "record_duration_s": round(record.duration, 4),
    }


def _rank(findings: dict[str, Any], custom: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Every label with its score, best first; the user's own labels marked ``custom``."""
    rows = [
        {"label": label, "code": code, "score": score, "custom": False}
        for label, code, score in zip(findings["labels"], findings["codes"], findings["scores"])
    ]
    rows += [{"label": label, "code": label, "score": score, "custom": True} for label, score in custom]
    return sorted(rows, key=lambda r: -r["score"])


class PredictionService:
    """One loaded model answering prediction requests.

    Args:
        predictor: the inference core, model loaded.
        config: the server settings.
        backend: how the ECG tower runs (``{"name": "torch"|"onnx", "reason": ..., "timings_ms": ...}``).
    """

    def __init__(self, *, predictor: ECGPredictor, config: ServeConfig, backend: dict[str, Any]) -> None:
        self.predictor = predictor
        self.config = config
        self.backend = backend
        self._scores_only = ECGPredictor(
            model=predictor.model,
            config=replace(predictor.config, generate=False),
            model_dir=predictor.model_dir,
            device=predictor.device,
        )
        self._lock = threading.Lock()
        self._card: dict[str, Any] | None = None
        self.started = time.time()
        self.n_requests = 0

    @classmethod
    def load(cls, config: ServeConfig) -> PredictionService:
        """Load the model of ``config.model_dir`` once and choose the backend (see :class:`ServeConfig`).

        Raises:
            FileNotFoundError: neither a saved model nor a run directory holding one, or ``backend="onnx"`` without the exported file.
            ValueError: the exported file belongs to other weights.
        """
        from melp.models import MELP

        if config.threads is not None:
            torch.set_num_threads(config.threads)
        from melp.train.checkpoint import resolve_model_dir

        path = resolve_model_dir(config.model_dir)  # a model directory, or a run (its best checkpoint, else final)
        model = MELP.from_pretrained(path).eval()
        config = replace(config, model_dir=path)
        backend, runner = _choose_backend(model, config)
        longest = min(config.max_report_tokens or InferenceConfig.max_report_length, model.config.text.max_length)
        inference = InferenceConfig(task=config.task, max_report_length=longest, num_beams=config.num_beams)
        predictor = ECGPredictor(model=runner, config=inference, model_dir=path)
        logger.info("model %s loaded; ECG tower on %s (%s)", path, backend["name"], backend["reason"])
        return cls(predictor=predictor, config=config, backend=backend)

    @property
    def has_text(self) -> bool:
        return self.predictor.has_text

    def warm_up(self) -> None:
        """One prediction on a flat record, so the first user does not pay for lazy initialisation."""
        window = self.predictor.window_samples
        record = ECGRecord(
            path="warm-up",
            format="npy",
            signal=np.zeros((12, window), dtype=np.float32),
            fs=float(self.predictor.fs),
            leads_present=np.ones(12, dtype=bool),
        )
        with self._lock:
            self.predictor.predict(record)

    def read(self, path: Path, *, name: str, hints: dict[str, Any]) -> ECGRecord:
        """Read an uploaded file; errors name the file as the user called it, never the temporary path.

        Raises:
            PredictError: the reader's message (422), or a bad hint (400).
        """
        try:
            return read_ecg(path, **hints)
        except ECGReadError as exc:
            raise PredictError(f"{name}: {exc.format}: {exc.reason}") from exc
        except TypeError as exc:
            raise PredictError(str(exc), status=400) from exc

    def check_leads(self, record: ECGRecord, *, name: str) -> None:
        """Refuse a record with fewer than ``config.min_leads`` standard leads (derived ones counted).

        Raises:
            PredictError: 422 naming the leads the file holds.
        """
        found = record.leads_found
        if len(found) >= self.config.min_leads:
            return
        held = [lead for lead in found if lead not in record.derived_leads]
        derived = f" (+ {', '.join(record.derived_leads)} derived)" if record.derived_leads else ""
        raise PredictError(
            f"{name}: {record.format}: {len(held)} lead(s) {', '.join(held)}{derived}; the model reads 12-lead ECGs "
            f"and this server needs at least {self.config.min_leads} leads (melp serve --min-leads)"
        )

    def predict(
        self, path: Path, *, name: str, labels: list[str], report: bool = True, hints: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Read ``path`` and run the model: the JSON of ``POST /api/predict``.

        Raises:
            PredictError: unreadable file, a record the model cannot use, or labels on an encoder-only model.
        """
        t0 = time.perf_counter()
        record = self.read(path, name=name, hints=hints or {})
        self.check_leads(record, name=name)
        t_read = time.perf_counter()
        predictor = self.predictor if report else self._scores_only
        with self._lock:
            t_start = time.perf_counter()
            try:
                prediction = predictor.predict(record)
                custom = self._custom_scores(prediction, labels)
            except InferenceError as exc:
                raise PredictError(f"{name}: {exc}") from exc
            t_model = time.perf_counter()
            self.n_requests += 1
        out = prediction.to_dict()
        out["readings"]["path"] = name
        out["findings"]["custom_labels"] = [label for label, _ in custom]
        if out["findings"].get("available"):
            out["findings"]["ranked"] = _rank(out["findings"], custom)
        out["embedding"] = {
            "dim": int(prediction.embedding.ecg_latent.shape[0]),
            "n_windows": int(prediction.embedding.window_latents.shape[0]),
            "ecg_latent": [round(float(v), 6) for v in prediction.embedding.ecg_latent],
        }
        out["signal"] = display_signal(record, seconds=float(self.predictor.model.config.seconds))
        out["model"] = {
            **out["model"],
            "model_dir": Path(str(out["model"]["model_dir"])).name,
            "backend": self.backend["name"],
        }
        out["timing_ms"] = {
            "read": round((t_read - t0) * 1e3, 1),
            "queue": round((t_start - t_read) * 1e3, 1),
            "model": round((t_model - t_start) * 1e3, 1),
            "total": round((time.perf_counter() - t0) * 1e3, 1),
        }
        return out

    def _custom_scores(self, prediction: Any, labels: list[str]) -> list[tuple[str, float]]:
        """Zero-shot scores of the user's own labels, each label its own prompt (mean over windows)."""
        from melp.eval.zeroshot import zeroshot_scores

        if not labels:
            return []
        if not self.has_text:
            raise PredictError("this model has no text side (encoder-only): it cannot score labels", status=400)
        names, _, class_emb = self.predictor.class_embeddings(labels)
        window_latents = torch.from_numpy(prediction.embedding.window_latents)
        scores = zeroshot_scores(window_latents, class_emb).mean(dim=0)  # (K,)
        return [(n, round(float(s), 6)) for n, s in zip(names, scores)]

    def model_card(self) -> dict[str, Any]:
        """``GET /api/model``: identity, config, training data, presets, backend (computed once)."""
        if self._card is None:
            self._card = model_card(self.predictor, backend=self.backend, task=self.config.task)
        return self._card

    def health(self) -> dict[str, Any]:
        """``GET /api/health``."""
        return {
            "status": "ok",
            "model_loaded": True,
            "has_text": self.has_text,
            "backend": self.backend["name"],
            "uptime_s": round(time.time() - self.started, 1),
            "requests": self.n_requests,
        }


def _choose_backend(model: Any, config: ServeConfig) -> tuple[dict[str, Any], Any]:
    """The ECG tower's runner (the model, or the model with an ONNX Runtime tower) and why it was chosen."""
    onnx_file = config.onnx_file
    if config.backend == "torch":
        return {"name": "torch", "reason": "--backend torch", "timings_ms": None}, model
    if not onnx_file.is_file():
        if config.backend == "onnx":
            raise FileNotFoundError(f"no exported ECG tower at {onnx_file}; run melp export-onnx --model DIR first")
        reason = f"no exported tower at {onnx_file.name} (melp export-onnx writes one)"
        return {"name": "torch", "reason": reason, "timings_ms": None}, model
    tower = OnnxTower(path=onnx_file, threads=config.threads, expect_sha256=weights_digest(config.model_dir))
    timings = compare_backends(model, tower)
    if config.backend == "onnx":
        return {"name": "onnx", "reason": "--backend onnx", "timings_ms": timings}, OnnxTowerModel(
            model=model, tower=tower
        )
    if timings["onnx"] < timings["torch"]:
        reason = f"ONNX Runtime faster at start-up ({timings['onnx']:g} vs {timings['torch']:g} ms per window)"
        return {"name": "onnx", "reason": reason, "timings_ms": timings}, OnnxTowerModel(model=model, tower=tower)
    reason = f"PyTorch faster at start-up ({timings['torch']:g} vs {timings['onnx']:g} ms per window)"
    return {"name": "torch", "reason": reason, "timings_ms": timings}, model
