"""ECG embedding extraction for evaluation (melp-spec §6.1–6.2), batched, no_grad, eval mode, cached on disk.

Extracts ``encode_ecg`` outputs for the records of a store: ``probe_emb`` (B, E) for linear probing
(before the projection, not normalised) and ``ecg_latent`` (B, E) for zero-shot and retrieval. A
linear probe at 1/10/100 %, zero-shot and retrieval reuse one extraction: every output comes from
the same forward pass, so all of them are kept, cached as ``.npz`` under a key of (model weights,
store, its manifest, records, transform); any change to one of them is a new entry and a stale
cache is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from melp.data.datasets import ECGDataset
from melp.data.store import Store

logger = logging.getLogger(__name__)

DEFAULT_KEYS = ("probe_emb", "ecg_latent")
EncodeECG = Callable[..., dict[str, torch.Tensor]]


def default_cache_dir() -> Path:
    """``$MELP_CACHE/embeddings``, default ``~/.cache/melp/embeddings``."""
    return Path(os.environ.get("MELP_CACHE", Path.home() / ".cache" / "melp")) / "embeddings"


def cache_key(*, cache_id: str, store: Store, indices: np.ndarray, transform: object) -> str:
    """A hex digest naming one extraction (of every key: one forward pass gives them all)."""
    manifest = json.dumps(store.manifest, sort_keys=True, default=str)
    parts = {
        "model": cache_id,
        "store": str(Path(store.path).resolve()),
        "manifest": hashlib.sha256(manifest.encode()).hexdigest(),
        "indices": hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest(),
        "transform": repr(transform),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


@torch.no_grad()
def extract_embeddings(
    model: torch.nn.Module,
    store: Store,
    *,
    cache_id: str,
    indices: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    keys: Sequence[str] = DEFAULT_KEYS,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Embeddings ``{key: (N, E) float32}`` of ``store``'s records ``indices`` (default all), in that order.

    Args:
        model: anything with ``encode_ecg(ecg (B, 12, T), with_attention=False) -> dict``; run in eval mode.
        cache_id: identifies the model's weights (see :class:`melp.eval.random_baseline.EvalModel`).
        cache_dir: where to cache; ``None`` disables caching.
    """
    idx = np.arange(len(store)) if indices is None else np.asarray(indices, dtype=np.int64)
    path = None
    if cache_dir is not None:
        key = cache_key(cache_id=cache_id, store=store, indices=idx, transform=transform)
        path = Path(cache_dir) / f"{key}.npz"
        if path.is_file():
            with np.load(path) as cached:
                if set(keys) <= set(cached.files):
                    logger.info("embeddings of %d records from cache %s", len(idx), path)
                    return {k: cached[k] for k in keys}
    outputs = tuple(dict.fromkeys([*keys, *DEFAULT_KEYS]))  # the same forward pass: keep them all for the cache
    was_training = model.training
    model.eval()
    dataset = ECGDataset(store, indices=idx, transform=transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    try:
        for batch in tqdm(loader, desc=f"embed {Path(store.path).name}", unit="batch", disable=not progress):
            out = model.encode_ecg(batch["ecg"].to(device), with_attention=False)  # type: ignore[operator]
            for k in outputs:
                if k not in out:
                    raise KeyError(f"encode_ecg returned no {k!r} (has {sorted(out)})")
                chunks[k].append(out[k].float().cpu().numpy())
    finally:
        model.train(was_training)
    result = {k: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for k, v in chunks.items()}
    for k, v in result.items():
        if not np.isfinite(v).all():
            raise ValueError(f"the model produced non-finite {k} embeddings for {Path(store.path).name}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **result)  # type: ignore[arg-type]
        os.replace(tmp, path)
    return {k: result[k] for k in keys}
