"""What ``melp serve`` runs with: one dataclass, checked once at start-up."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["auto", "torch", "onnx"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
ONNX_FILE = "ecg_tower.onnx"
"""Default name of the exported tower inside the model directory (``melp export-onnx`` writes it there)."""


@dataclass(frozen=True)
class ServeConfig:
    """Settings of the server.

    Attributes:
        model_dir: a saved MELP model (``RUN/final``, ``RUN/checkpoints/best``) or a run directory.
        host: interface to bind; loopback unless the user asks for another.
        port: TCP port.
        max_upload_mb: largest request body (all uploaded files together) in MiB.
        backend: ``torch``; ``onnx`` (ONNX Runtime for the ECG tower, needs the exported file);
            ``auto``: ONNX Runtime when the exported file exists and a start-up timing finds it faster.
        onnx_path: the exported tower (default ``model_dir/ecg_tower.onnx``).
        task: the default zero-shot label set (:func:`melp.data.tasks.get_task`).
        threads: torch / ONNX Runtime intra-op threads of the model calls (``None``: the libraries'
            defaults, one per core). Default 1: a prediction is many small operations (a beam search
            over a small decoder), which more threads slow down, badly so on a loaded machine
            (docs/performance.md, "Serve").
        max_report_tokens: longest generated report in tokens (``None``: the model's ``text.max_length``,
            at most 64); generation is most of a prediction's time, about linear in this length.
        num_beams: beams of the report's beam search.
        min_leads: refuse files with fewer standard leads, derived limb leads included (8: what a
            12-lead cart stores, I, II, V1–V6; the model reads 12-lead ECGs and masks the rest).
    """

    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 20.0
    backend: Backend = "auto"
    onnx_path: Path | None = None
    task: str = "cpsc2018"
    threads: int | None = 1
    min_leads: int = 8
    max_report_tokens: int | None = None
    num_beams: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if not self.max_upload_mb > 0:
            raise ValueError(f"max_upload_mb must be positive, got {self.max_upload_mb}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if not 1 <= self.min_leads <= 12:
            raise ValueError(f"min_leads must be in 1..12, got {self.min_leads}")
        if self.max_report_tokens is not None and self.max_report_tokens < 2:
            raise ValueError(f"max_report_tokens must be >= 2, got {self.max_report_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def onnx_file(self) -> Path:
        return self.onnx_path if self.onnx_path is not None else Path(self.model_dir) / ONNX_FILE

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
