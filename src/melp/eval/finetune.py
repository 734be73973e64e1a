"""Full fine-tuning (melp-spec §6.3: "transfer learning", for which the reference has no code).

The whole ECG side that produces the probe embedding (encoder, beat pooler, its norm) is trained
together with a linear classification head on the mean beat query: binary cross-entropy, AdamW,
cosine schedule per epoch, optional layer-wise learning-rate decay (the head and pooler get ``lr``,
transformer layer ``i`` of ``L`` gets ``lr × decay^(L + 1 - i)``, the convolutional stem
``lr × decay^(L + 1)``), early stopping on validation macro AUROC, sigmoid test scores, and the
same metrics and intervals as the linear probe.

Shapes: B batch, E embedding width, C classes.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from melp.data.datasets import ECGDataset
from melp.data.tasks import label_matrix, subset_indices
from melp.eval.probe import validation_macro_auroc
from melp.eval.random_baseline import EvalModel
from melp.eval.results import classification_result
from melp.eval.runs import Scores, Selection, Settings, eval_transform, resolve_task, select, task_records

logger = logging.getLogger(__name__)

_TRAINED_PREFIXES = ("ecg_encoder.", "beat_pooler.", "beat_norm.")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning optimisation (melp's defaults; the paper gives none)."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 32
    epochs: int = 20
    patience: int = 5
    layer_decay: float | None = None
    seed: int = 42


class ECGClassifier(nn.Module):
    """MELP's ECG side plus a linear head on the probe embedding: (B, 12, T) → logits (B, C)."""

    def __init__(self, *, model: nn.Module, n_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(embed_dim, n_classes)

    def forward(self, ecg: torch.Tensor) -> torch.Tensor:
        emb = self.model.encode_ecg(ecg, with_attention=False)["probe_emb"]  # type: ignore[operator]
        return self.head(emb)  # (B, C)


def _layer_id(name: str, n_layers: int) -> int:
    if name.startswith("head.") or not name.startswith("model.ecg_encoder."):
        return n_layers + 1
    parts = name.split(".")
    return int(parts[3]) + 1 if parts[2] == "layers" else 0


def param_groups(clf: ECGClassifier, cfg: FinetuneConfig) -> list[dict[str, Any]]:
    """AdamW groups of the trained parameters, with layer-wise decayed learning rates if configured."""
    n_layers = len(clf.model.ecg_encoder.layers)  # type: ignore[union-attr, arg-type]
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in clf.named_parameters():
        trained = name.startswith("head.") or name.removeprefix("model.").startswith(_TRAINED_PREFIXES)
        param.requires_grad_(trained)
        if not trained:
            continue
        layer = _layer_id(name, n_layers)
        scale = 1.0 if cfg.layer_decay is None else cfg.layer_decay ** (n_layers + 1 - layer)
        no_decay = param.ndim < 2 or "norm" in name or "quer" in name
        group = groups.setdefault(
            (layer, no_decay),
            {"params": [], "lr": cfg.lr * scale, "weight_decay": 0.0 if no_decay else cfg.weight_decay},
        )
        group["params"].append(param)
    return list(groups.values())


@torch.no_grad()
def predict(clf: ECGClassifier, dataset: ECGDataset, batch_size: int) -> np.ndarray:
    """Sigmoid scores (N, C) of a dataset, in its order."""
    clf.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return np.concatenate([torch.sigmoid(clf(b["ecg"])).numpy() for b in loader])


def _dataset(em: EvalModel, sel: Selection, task: Any, indices: np.ndarray | None = None) -> ECGDataset:
    rows = sel.indices if indices is None else sel.indices[indices]
    return ECGDataset(sel.store, indices=rows, transform=eval_transform(em, sel.store, sel.leads), task=task)


def finetune(
    em: EvalModel, train: ECGDataset, val: ECGDataset, *, cfg: FinetuneConfig, progress: bool = True
) -> tuple[ECGClassifier, dict[str, Any]]:
    """Fine-tune a copy of ``em``'s ECG side; returns the best-validation classifier and a summary.

    Deterministic on CPU for a seed: head initialisation, shuffling and dropout draw from streams
    seeded by ``cfg.seed`` (the global torch RNG is restored afterwards).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _finetune(em, train, val, cfg=cfg, progress=progress)


def _finetune(
    em: EvalModel, train: ECGDataset, val: ECGDataset, *, cfg: FinetuneConfig, progress: bool
) -> tuple[ECGClassifier, dict[str, Any]]:
    assert train.labels is not None and val.labels is not None
    clf = ECGClassifier(
        model=copy.deepcopy(em.model), n_classes=train.labels.shape[1], embed_dim=em.model.config.embed_dim
    )
    optimizer = torch.optim.AdamW(param_groups(clf, cfg))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    loader = DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    best, best_epoch, best_state, stale, epoch = -1.0, 0, None, 0, 0
    for epoch in range(1, cfg.epochs + 1):
        clf.train()
        for batch in tqdm(loader, desc=f"fine-tune epoch {epoch}", unit="batch", disable=not progress, leave=False):
            loss = F.binary_cross_entropy_with_logits(clf(batch["ecg"]), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        auroc = validation_macro_auroc(val.labels, predict(clf, val, cfg.batch_size))
        logger.info("fine-tune epoch %d: val macro AUROC %.4f", epoch, auroc)
        if auroc > best:
            best, best_epoch, stale = auroc, epoch, 0
            best_state = {k: v.detach().clone() for k, v in clf.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        clf.load_state_dict(best_state)
    return clf.eval(), {"best_epoch": best_epoch, "epochs_run": epoch, "best_val_macro_auroc": best}


def run_finetune(
    em: EvalModel,
    *,
    train: str | Path,
    val: str | Path,
    test: str | Path,
    task_name: str | None,
    fractions: list[float],
    cfg: FinetuneConfig,
    settings: Settings,
) -> list[tuple[dict[str, Any], Scores]]:
    """Fine-tune at each training fraction; one result per fraction."""
    sels = {role: select(ref, settings) for role, ref in (("train", train), ("val", val), ("test", test))}
    task = resolve_task(task_name, sels["train"].store)
    sels = {role: task_records(s, task, settings) for role, s in sels.items()}
    train_labels = label_matrix(sels["train"].store.meta.iloc[sels["train"].indices], task)
    val_set, test_set = _dataset(em, sels["val"], task), _dataset(em, sels["test"], task)
    assert test_set.labels is not None
    out = []
    for fraction in fractions:
        subset = subset_indices(train_labels, fraction, seed=cfg.seed)
        clf, summary = finetune(
            em, _dataset(em, sels["train"], task, subset), val_set, cfg=cfg, progress=settings.progress
        )
        scores = predict(clf, test_set, cfg.batch_size)
        config = {"protocol": "finetune", "fraction": fraction, "n_train": len(subset), "train": str(train),
                  "val": str(val), "test": str(test), **summary, "finetune": asdict(cfg),
                  "n_bootstrap": settings.n_bootstrap, "seed": settings.seed}  # fmt: skip
        result = classification_result(
            task=task.name, model=em.name, dataset=sels["test"].name, labels=test_set.labels, scores=scores,
            classes=task.classes, n_bootstrap=settings.n_bootstrap, seed=settings.seed, config=config,
        )  # fmt: skip
        ids = sels["test"].store.meta["id"].astype(str).to_numpy()[sels["test"].indices].tolist()
        codes = [[task.classes[j] for j in np.flatnonzero(row)] for row in test_set.labels]
        out.append((result, Scores(ids, codes, task.classes, scores)))
    return out
