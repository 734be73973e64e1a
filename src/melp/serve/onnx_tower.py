"""The ECG tower as ONNX: export (``melp export-onnx``), an ONNX Runtime ``encode_ecg``, and the model that uses it.

The tower is everything :meth:`melp.models.MELP.encode_ecg` computes: the conv + transformer
encoder, the beat pooler with its attention, the caption pooler. The exported graph takes ``ecg``
``(B, 12, T)`` float32 (batch dynamic, ``T`` the model's window, ``fs × seconds``) and returns
:data:`OUTPUTS`. The encoder's finiteness check is data-dependent and cannot be traced; the ONNX
Runtime side runs the same check on the numpy input before each call (:meth:`OnnxTower.encode_ecg`).

The ONNX file records the model's weights digest (``melp_weights_sha256`` in its metadata), so
``melp serve`` refuses a file exported from other weights.

Dims: B batch, T samples, Q beat queries, N frames, E embedding width, M caption queries, W width.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

OUTPUTS = ("ecg_latent", "probe_emb", "beat_embs", "ecg_tokens", "beat_attn")
"""The tower's outputs, in the graph's order: (B, E), (B, E), (B, Q, E), (B, M, W), (B, Q, N)."""
WEIGHTS_KEY = "melp_weights_sha256"
OPSET = 18
Exporter = Literal["torchscript", "dynamo"]


def weights_digest(model_dir: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of ``model_dir/model.safetensors`` (as :func:`melp.inference.model_identity`)."""
    digest = hashlib.sha256()
    with (Path(model_dir) / "model.safetensors").open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class _Tower(nn.Module):
    """``encode_ecg`` as a module returning a tuple (what ``torch.onnx.export`` traces)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, ecg: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.encode_ecg(ecg, with_attention=True)
        return tuple(out[k] for k in OUTPUTS)


@contextlib.contextmanager
def _shape_checks_only(model: Any) -> Iterator[None]:
    """Skip the encoder's data-dependent NaN check while tracing (ONNX Runtime callers check inputs)."""
    encoder = model.ecg_encoder
    full_check = encoder.check_input

    def static_check(ecg: torch.Tensor) -> None:
        if ecg.ndim != 3 or ecg.shape[1] != encoder.in_leads:
            raise ValueError(f"expected an ECG batch of shape (B, {encoder.in_leads}, T), got {tuple(ecg.shape)}")

    encoder.check_input = static_check
    try:
        yield
    finally:
        encoder.check_input = full_check


def export_ecg_tower(
    model: Any, out: str | Path, *, weights_sha256: str = "", exporter: Exporter = "torchscript"
) -> Path:
    """Write the ECG tower of ``model`` (a MELP in eval mode) to the ONNX file ``out``, batch axis dynamic.

    Args:
        exporter: ``torchscript`` (``torch.onnx.export(dynamo=False)``: about 4 s for the micro
            model here) or ``dynamo`` (the ``torch.export``-based exporter: same graph to 1e-6,
            about 40 s). Both give parity within 1e-4 (tests/test_serve_onnx.py).

    Raises:
        RuntimeError: the export failed (the message says where).
    """
    import onnx

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    window = round(model.config.fs * model.config.seconds)
    example = torch.zeros(2, model.config.ecg.in_leads, window)  # batch 2: torch.export specialises size-1 dims
    tower = _Tower(model).eval()
    options: dict[str, Any] = (
        {"dynamo": False, "dynamic_axes": {"ecg": {0: "batch"}}}
        if exporter == "torchscript"
        else {"dynamo": True, "dynamic_shapes": ({0: torch.export.Dim("batch", min=1, max=1024)},)}
    )
    with torch.no_grad(), _shape_checks_only(model), _quiet_exporter():
        torch.onnx.export(
            tower,
            (example,),
            str(path),
            input_names=["ecg"],
            output_names=list(OUTPUTS),
            opset_version=OPSET,
            **options,
        )
    graph = onnx.load(str(path))
    for key, value in ((WEIGHTS_KEY, weights_sha256), ("melp_window_samples", str(window))):
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))
    logger.info("ECG tower exported to %s (%s exporter, window %d samples, opset %d)", path, exporter, window, OPSET)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters log every step and warn about themselves and skipped torchvision ops; keep errors only."""
    names = ("torch.onnx", "torch.onnx._internal.exporter._registration", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class OnnxTower:
    """``encode_ecg`` run by ONNX Runtime on an exported tower.

    Args:
        path: the ONNX file of :func:`export_ecg_tower`.
        threads: intra-op threads (``None``: ONNX Runtime's default, one per core).
        expect_sha256: refuse a file whose recorded weights digest differs (``""``: no check).

    Raises:
        ValueError: the file was exported from other weights, or lacks the tower's outputs.
    """

    def __init__(self, *, path: str | Path, threads: int | None = None, expect_sha256: str = "") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        recorded = meta.get(WEIGHTS_KEY, "")
        if expect_sha256 and recorded != expect_sha256:
            raise ValueError(
                f"{self.path} was exported from other weights (digest {recorded or 'none'}, model {expect_sha256}); "
                "re-run melp export-onnx"
            )
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUTS):
            raise ValueError(f"{self.path} is not a melp ECG tower (outputs {names}, expected {list(OUTPUTS)})")
        self.window = int(meta.get("melp_window_samples", "0")) or None

    def run(self, ecg: np.ndarray) -> dict[str, np.ndarray]:
        """The tower's outputs for ``ecg`` (B, 12, T) float32.

        Raises:
            ValueError: wrong shape or non-finite values (the checks the encoder makes in PyTorch).
        """
        x = np.ascontiguousarray(ecg, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != 12 or (self.window is not None and x.shape[2] != self.window):
            raise ValueError(f"expected an ECG batch of shape (B, 12, {self.window}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("ECG batch contains NaN or infinite values")
        return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), {"ecg": x})))

    def encode_ecg(self, ecg: torch.Tensor, *, with_attention: bool = True) -> dict[str, torch.Tensor]:
        """:meth:`melp.models.MELP.encode_ecg` without ``ecg_frames`` (nothing in inference reads them)."""
        out = {k: torch.from_numpy(v) for k, v in self.run(ecg.detach().cpu().numpy()).items()}
        if not with_attention:
            out.pop("beat_attn")
        return out


class OnnxTowerModel:
    """A MELP whose ``encode_ecg`` runs in ONNX Runtime; everything else (text side, decoder) is the model's.

    Report generation reads the ECG tokens through ``encode_ecg`` too, so the whole ECG side of a
    prediction runs in ONNX Runtime.
    """

    def __init__(self, *, model: Any, tower: OnnxTower) -> None:
        self._model = model
        self._tower = tower

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode_ecg(self, ecg: torch.Tensor, *, with_attention: bool = True) -> dict[str, torch.Tensor]:
        return self._tower.encode_ecg(ecg, with_attention=with_attention)

    def generate(self, ecg: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return type(self._model).generate(self, ecg, **kwargs)  # the model's generate, reading our encode_ecg

    def to(self, device: Any) -> OnnxTowerModel:
        if torch.device(device).type != "cpu":
            raise ValueError("the ONNX Runtime backend runs on the CPU; use --backend torch for another device")
        return self

    def eval(self) -> OnnxTowerModel:
        self._model.eval()
        return self


def median_ms(fn: Any, *, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def compare_backends(model: Any, tower: OnnxTower, *, repeats: int = 5) -> dict[str, float]:
    """Median ms of one window through the tower in PyTorch and in ONNX Runtime (``{"torch": ms, "onnx": ms}``)."""
    window = round(model.config.fs * model.config.seconds)
    x = torch.rand(1, 12, window, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch_ms = median_ms(lambda: model.encode_ecg(x, with_attention=True), repeats=repeats)
    onnx_ms = median_ms(lambda: tower.encode_ecg(x, with_attention=True), repeats=repeats)
    return {"torch": round(torch_ms, 3), "onnx": round(onnx_ms, 3)}


def parity(model: Any, path: str | Path, *, batch: int = 3, seed: int = 0) -> float:
    """The largest |ONNX Runtime - PyTorch| over every tower output on a random batch of windows in [0, 1]."""
    window = round(model.config.fs * model.config.seconds)
    x = torch.rand(batch, model.config.ecg.in_leads, window, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model.encode_ecg(x, with_attention=True)
    got = OnnxTower(path=path).run(x.numpy())
    return max(float(np.abs(ref[k].float().numpy() - got[k]).max()) for k in OUTPUTS)
