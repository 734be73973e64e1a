"""Atomic, resumable checkpoints of a pretraining run (design.md "Quality bars"; spec §7).

Layout under ``RUN_DIR/checkpoints/``::

    step_00001000/            # one directory per saved step; the newest ``keep_last`` are kept
        config.json, model.safetensors, tokenizer files   # MELP.save_pretrained: loads with from_pretrained
        run_config.yaml       # the resolved PretrainConfig of the run
        training_state.pt     # optimizer, scheduler, step, epoch, data position, best metric, counters
        rng_rank0.pt ...      # python/numpy/torch(/cuda) RNG states of every rank
    best/                     # the weights with the best validation metric (+ run_config.yaml, best.json)

A checkpoint is written into a hidden temporary directory and renamed into place, and each file
inside it is written to a temporary name and renamed, so a killed job never leaves a directory that
looks complete. Training state is read back with ``torch.load(weights_only=True)``: nothing is
unpickled beyond tensors and plain containers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melp.config import save_config

logger = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
RUN_CONFIG_FILE = "run_config.yaml"
_STEP_DIR = re.compile(r"^step_(\d{8})$")


@dataclass
class TrainState:
    """Counters of a run that a resume restores.

    Attributes:
        step: optimizer steps completed (skipped non-finite steps included).
        epoch: current epoch.
        position: samples of the current epoch already consumed by each rank.
        best_metric: best validation metric so far (``None`` before the first validation).
        bad_validations: validations since the best one (early stopping).
        nonfinite_total: steps skipped for a non-finite loss or gradient.
        nonfinite_consecutive: such steps in a row, up to the last step.
        world_size: processes of the run that wrote the state.
        batch_size: per-process micro-batch of the run that wrote the state.
        grad_accum: micro-batches per step of the run that wrote the state.
    """

    step: int = 0
    epoch: int = 0
    position: int = 0
    best_metric: float | None = None
    bad_validations: int = 0
    nonfinite_total: int = 0
    nonfinite_consecutive: int = 0
    world_size: int = 1
    batch_size: int = 1
    grad_accum: int = 1

    @property
    def global_batch(self) -> int:
        """Pairs per optimizer step over all processes."""
        return self.world_size * self.batch_size * self.grad_accum


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (and CUDA where present) as tensors and plain containers."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, removing an older ``final`` only once the new one is complete."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, final)


def step_dir_name(step: int) -> str:
    """Directory name of the checkpoint of ``step``."""
    return f"step_{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete step checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete step checkpoint under ``root``, or ``None``."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def save_checkpoint(
    root: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    run_config: Any,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rank: int = 0,
    keep_last: int = 3,
    barrier: Callable[[], None] | None = None,
) -> Path:
    """Write the checkpoint of ``state.step``; every rank calls this (each saves its own RNG state).

    Args:
        root: the run's ``checkpoints`` directory.
        model: the unwrapped MELP model (``save_pretrained(dir, tokenizer=...)``).
        tokenizer: saved beside the weights.
        run_config: the resolved run config dataclass.
        state: counters to restore.
        optimizer: its state is saved.
        scheduler: its state is saved.
        rank: this process's rank; rank 0 writes everything but the other ranks' RNG states.
        keep_last: step checkpoints kept after this one is written.
        barrier: synchronises the ranks (``None`` for a single process).

    Returns:
        The checkpoint directory.
    """
    sync = barrier or (lambda: None)
    root = Path(root)
    final = root / step_dir_name(state.step)
    tmp = root / f".{final.name}.tmp"
    if rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    sync()
    _atomic_torch_save(capture_rng_state(), tmp / f"rng_rank{rank}.pt")
    sync()
    if rank == 0:
        model.save_pretrained(tmp, tokenizer=tokenizer)
        save_config(run_config, tmp / RUN_CONFIG_FILE)
        training = {"state": asdict(state), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        _atomic_torch_save(training, tmp / STATE_FILE)
        _replace_dir(tmp, final)
        for old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old)
        logger.info("saved checkpoint %s", final)
    sync()
    return final


def save_best(root: str | Path, *, model: Any, tokenizer: Any, run_config: Any, metrics: dict[str, Any]) -> Path:
    """Write ``root/best`` (weights, run config and ``best.json`` with the metrics); rank 0 only."""
    root = Path(root)
    final = root / "best"
    tmp = root / ".best.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, tokenizer=tokenizer)
    save_config(run_config, tmp / RUN_CONFIG_FILE)
    (tmp / "best.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _replace_dir(tmp, final)
    logger.info("new best checkpoint %s: %s", final, metrics)
    return final


def load_training_state(path: str | Path, *, rank: int = 0) -> tuple[TrainState, dict[str, Any], dict[str, Any] | None]:
    """Read a step checkpoint's training state.

    Returns:
        The counters, the dict with ``optimizer`` and ``scheduler`` state dicts, and this rank's RNG
        state (``None`` when the checkpoint was written by fewer ranks).
    """
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint: {STATE_FILE} is missing")
    training = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    state = TrainState(**training.pop("state"))
    rng_file = path / f"rng_rank{rank}.pt"
    rng = torch.load(rng_file, map_location="cpu", weights_only=True) if rng_file.is_file() else None
    return state, training, rng


def resolve_model_dir(path: str | Path) -> Path:
    """The model directory that ``path`` names: a model directory itself, or a run directory.

    For a run directory (``RUN/final`` or ``RUN/checkpoints/best`` inside) the best validation
    checkpoint is preferred, the one early stopping selected; ``final`` (the weights after the
    last step) is used where no validation ran. The choice is logged, since the two differ.

    Raises:
        FileNotFoundError: ``path`` is neither a saved model nor a run directory holding one.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    for candidate, why in ((path / "checkpoints" / "best", "the best validation checkpoint"),
                           (path / "final", "the weights after the last step; this run saved no best checkpoint")):  # fmt: skip
        if (candidate / "config.json").is_file():
            logger.info("model of run %s: %s (%s)", path, candidate, why)
            return candidate
    raise FileNotFoundError(
        f"{path} is neither a saved model (config.json + model.safetensors) nor a run directory with "
        "checkpoints/best or final"
    )
