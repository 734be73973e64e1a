"""The evaluation protocols as functions (design.md "Evaluation"): zero-shot, linear probe, retrieval, generation, grounding.

Each takes an :class:`~melp.eval.random_baseline.EvalModel` and store references and returns
results objects (:mod:`melp.eval.results`); the ``melp`` subcommands and ``melp eval-suite`` are thin
wrappers around them. A store reference is ``PATH`` (every record) or ``PATH:SPLIT`` with SPLIT one
of train/val/test, taken by :func:`melp.data.tasks.split_indices` (PTB-XL ``strat_fold`` where the
store has it, else a seeded patient-wise split).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from melp.data.collate import ECGReportCollator
from melp.data.datasets import ECGDataset
from melp.data.store import Store, open_store
from melp.data.tasks import (
    SplitScheme,
    TaskSpec,
    get_task,
    label_matrix,
    split_indices,
    split_store_ref,
    subset_indices,
)
from melp.data.transforms import Compose, build_transform
from melp.eval.bootstrap import bootstrap_means
from melp.eval.embed import extract_embeddings
from melp.eval.grounding import (
    FALLBACK_HALF_WIDTH_S,
    GROUNDED_CODES,
    LINKS,
    best_query_scores,
    frames_covered,
    grounding_scores,
    grounding_targets,
    has_beat_truth,
    sentence_frame_attention,
    summarise,
)
from melp.eval.probe import ProbeConfig, ProbeHead, probe_scores, train_linear_probe, train_logistic_probe
from melp.eval.prompts import class_prompts, load_prompt_bank
from melp.eval.random_baseline import EvalModel
from melp.eval.results import classification_result, result_dict
from melp.eval.retrieval import recall_hits, retrieval_metrics, retrieval_ranks
from melp.eval.textgen import generation_metrics
from melp.eval.zeroshot import build_class_embeddings, zeroshot_scores
from melp.train.precision import autocast, bf16_autocast_available

logger = logging.getLogger(__name__)

_TASK_OF_SOURCE = {"synthetic": "synthetic", "ptbxl": "ptbxl_super", "cpsc2018": "cpsc2018"}


@dataclass(frozen=True)
class Settings:
    """Options shared by every protocol."""

    batch_size: int = 64
    n_bootstrap: int = 1000
    seed: int = 0
    split_scheme: SplitScheme = "auto"
    cache_dir: Path | None = None
    progress: bool = True
    keep_unlabelled: bool = False
    """Keep records that have no label of the task (by default they are left out, as the MELP split
    files define the downstream populations: e.g. most PTB-XL records have no ``form`` statement)."""
    leads: tuple[str, ...] | None = None
    """Evaluate on this lead subset (standard names); the other leads are masked as pretraining masks
    dropped leads (:func:`melp.inference.input_transform`). ``None``: all 12 leads."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Arithmetic of the embedding forward passes (zero-shot, probes, retrieval): ``bf16`` autocasts
    where it pays (:func:`melp.train.precision.bf16_autocast_available`), else fp32. bf16 embeddings
    agree with fp32 ones to ~1e-3 and are cached apart from them."""


@dataclass
class Selection:
    """Records of one store chosen by a store reference (``leads``: the lead subset they are read with)."""

    store: Store
    indices: np.ndarray
    name: str
    leads: tuple[str, ...] | None = None


@dataclass
class Scores:
    """Per-record scores of a classification evaluation (for ``--save-scores``)."""

    ids: list[str]
    labels: list[list[str]]
    classes: tuple[str, ...]
    scores: np.ndarray


@functools.lru_cache(maxsize=8)
def _open(path: str, stamp: int) -> Store:
    """One opened store per path and build (``stamp``: the manifest's mtime), shared by every protocol."""
    return open_store(path)


@functools.lru_cache(maxsize=16)
def _splits(path: str, stamp: int, scheme: SplitScheme, seed: int) -> dict[str, np.ndarray]:
    """The train/val/test indices of a store, computed once per (store, scheme, seed); read-only."""
    splits = split_indices(_open(path, stamp).meta, scheme, seed=seed)
    for indices in splits.values():
        indices.setflags(write=False)
    return splits


def select(ref: str | Path, settings: Settings) -> Selection:
    """Open ``PATH`` or ``PATH:SPLIT``; see the module docstring.

    A probe or an eval-suite refers to one store several times (``S:train``, ``S:val``, ``S:test``,
    then once per protocol and model): the store is opened, and its split computed, once.
    """
    text = str(ref)
    path, split = split_store_ref(text)
    manifest = Path(path) / "manifest.json"
    stamp = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    store = _open(path, stamp)
    suffix = f" [leads {','.join(settings.leads)}]" if settings.leads else ""
    if not split:
        return Selection(store, np.arange(len(store)), Path(path).name + suffix, settings.leads)
    indices = _splits(path, stamp, settings.split_scheme, settings.seed)[split]
    if len(indices) == 0:
        raise SystemExit(f"split {split!r} of {path} is empty (scheme {settings.split_scheme})")
    return Selection(store, indices, f"{Path(path).name}:{split}{suffix}", settings.leads)


def task_records(sel: Selection, task: TaskSpec, settings: Settings) -> Selection:
    """``sel`` without the records that have no label of ``task`` (unless ``settings.keep_unlabelled``)."""
    if settings.keep_unlabelled:
        return sel
    labelled: np.ndarray = np.asarray(label_matrix(sel.store.meta.iloc[sel.indices], task).any(axis=1))  # (N,)
    if labelled.all():
        return sel
    if not labelled.any():
        raise SystemExit(f"{sel.name} has no record with a label of task {task.name}")
    logger.info(
        "%s: %d of %d records have no label of task %s and are left out (--keep-unlabelled keeps them)",
        sel.name, int((~labelled).sum()), len(labelled), task.name,
    )  # fmt: skip
    return replace(sel, indices=sel.indices[labelled])


def resolve_task(name: str | None, store: Store) -> TaskSpec:
    """``--task`` if given, else the task of the store's source (synthetic → synthetic, ptbxl → ptbxl_super, ...)."""
    if name:
        return get_task(name)
    source = str(store.manifest.get("source", ""))
    if source not in _TASK_OF_SOURCE:
        raise SystemExit(f"cannot infer the task of a {source!r} store; pass --task (e.g. ptbxl_super, cpsc2018, csn)")
    logger.info("task inferred from the store's source %r: %s", source, _TASK_OF_SOURCE[source])
    return get_task(_TASK_OF_SOURCE[source])


def eval_transform(em: EvalModel, store: Store, leads: tuple[str, ...] | None = None) -> Compose:
    """The evaluation transform: resample to the model's rate if needed, then its normalisation.

    No random masking; with ``leads`` (a lead subset) the other leads are masked the way
    pretraining masks dropped leads (:func:`melp.inference.input_transform`).
    """
    fs_out = em.fs or store.fs
    if fs_out != store.fs:
        logger.warning("store %s is at %d Hz, the model at %d Hz: resampling", store.path, store.fs, fs_out)
    transform = build_transform(normalization=em.model.config.normalization, fs_in=store.fs, fs_out=fs_out)
    if not leads:
        return transform
    from melp.data.leads import STANDARD_LEADS
    from melp.inference import input_transform

    absent = np.array([lead not in leads for lead in STANDARD_LEADS])
    config = em.model.config
    masked = input_transform(
        normalization=config.normalization, absent=absent, mask_value=getattr(config, "mask_value", None)
    )
    resampling = [t for t in transform.transforms if t.__class__.__name__ == "Resample"]
    return Compose([*resampling, *masked.transforms])


def embed(
    em: EvalModel, sel: Selection, settings: Settings, keys: tuple[str, ...] = ("probe_emb", "ecg_latent")
) -> dict[str, np.ndarray]:
    """Cached ``encode_ecg`` outputs of a selection, in ``settings.precision``."""
    device = next(em.model.parameters()).device
    bf16 = settings.precision == "bf16" and bf16_autocast_available(device)
    with autocast(settings.precision, device):
        return extract_embeddings(
            em.model, sel.store, cache_id=f"{em.cache_id}:bf16" if bf16 else em.cache_id, indices=sel.indices,
            transform=eval_transform(em, sel.store, sel.leads), keys=keys, batch_size=settings.batch_size,
            cache_dir=settings.cache_dir, progress=settings.progress, device=device,
        )  # fmt: skip


def _scores(sel: Selection, task: TaskSpec, labels: np.ndarray, scores: np.ndarray) -> Scores:
    ids = sel.store.meta["id"].astype(str).to_numpy()[sel.indices].tolist()
    codes = [[task.classes[j] for j in np.flatnonzero(row)] for row in labels]
    return Scores(ids, codes, task.classes, scores)


def _collator(em: EvalModel) -> ECGReportCollator:
    assert em.model.tokenizer is not None
    return ECGReportCollator(em.model.tokenizer, max_length=em.model.config.text.max_length)


@torch.no_grad()
def encode_texts(em: EvalModel, texts: list[str], batch_size: int) -> np.ndarray:
    """Normalised ``text_latent`` (N, E) of texts, tokenised as training reports are."""
    collator = _collator(em)
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = collator.tokenize(texts[start : start + batch_size])
        out.append(em.model.encode_text(ids, mask)["text_latent"].float().numpy())
    return np.concatenate(out)


def run_zeroshot(
    em: EvalModel, test: str | Path, *, task_name: str | None, prompts: str | Path | None, settings: Settings
) -> tuple[dict[str, Any], Scores]:
    """Zero-shot classification of a labelled store with prompt-averaged class embeddings."""
    em.require_text("zero-shot classification")
    sel = select(test, settings)
    task = resolve_task(task_name, sel.store)
    sel = task_records(sel, task, settings)
    labels = label_matrix(sel.store.meta.iloc[sel.indices], task)  # (N, C)
    collator = _collator(em)

    def tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
        ids, mask = collator.tokenize(texts)
        return {"input_ids": ids, "attention_mask": mask}

    em.model.eval()
    class_emb = build_class_embeddings(
        class_prompts(task.classes, load_prompt_bank(prompts)), task.classes, tokenize=tokenize,
        encode_text=em.model.encode_text, batch_size=settings.batch_size,
    )  # fmt: skip
    latent = torch.from_numpy(embed(em, sel, settings)["ecg_latent"])
    scores = zeroshot_scores(latent, class_emb).numpy()  # (N, C)
    config = {"protocol": "zeroshot", "test": str(test), "prompts": str(prompts or "melp/resources/prompts.json"),
              "n_bootstrap": settings.n_bootstrap, "seed": settings.seed}  # fmt: skip
    result = classification_result(
        task=task.name, model=em.name, dataset=sel.name, labels=labels, scores=scores, classes=task.classes,
        n_bootstrap=settings.n_bootstrap, seed=settings.seed, config=config,
    )  # fmt: skip
    return result, _scores(sel, task, labels, scores)


def run_probe(
    em: EvalModel,
    *,
    train: str | Path,
    val: str | Path,
    test: str | Path,
    task_name: str | None,
    fractions: list[float],
    probe: ProbeConfig,
    settings: Settings,
    head: ProbeHead = "adamw",
) -> list[tuple[dict[str, Any], Scores]]:
    """Linear probes on frozen ``probe_emb`` at each training fraction; one result per fraction.

    ``head``: ``adamw`` (the paper's protocol, :func:`~melp.eval.probe.train_linear_probe`) or
    ``logreg`` (the converged logistic probe, :func:`~melp.eval.probe.train_logistic_probe`).
    """
    sels = {role: select(ref, settings) for role, ref in (("train", train), ("val", val), ("test", test))}
    task = resolve_task(task_name, sels["train"].store)
    sels = {role: task_records(s, task, settings) for role, s in sels.items()}
    emb = {role: embed(em, s, settings, keys=("probe_emb",))["probe_emb"] for role, s in sels.items()}
    labels = {role: label_matrix(s.store.meta.iloc[s.indices], task) for role, s in sels.items()}
    out = []
    for fraction in fractions:
        subset = subset_indices(labels["train"], fraction, seed=probe.seed)
        logger.info(
            "%s probe on %d of %d training records (%.0f %%)", head, len(subset), len(emb["train"]), 100 * fraction
        )
        xt, yt = emb["train"][subset], labels["train"][subset]
        config: dict[str, Any] = {"fraction": fraction, "n_train": len(subset), "train": str(train), "val": str(val),
                                  "test": str(test), "n_bootstrap": settings.n_bootstrap, "seed": settings.seed}  # fmt: skip
        if head == "logreg":
            logistic = train_logistic_probe(xt, yt, emb["val"], labels["val"])
            scores = logistic.scores(emb["test"])
            config |= {"protocol": "logistic_probe", "c": logistic.c, "best_val_macro_auroc": logistic.val_auroc,
                       "val_macro_auroc_by_c": {f"{c:g}": v for c, v in logistic.val_aurocs.items()}}  # fmt: skip
        else:
            fit = train_linear_probe(xt, yt, emb["val"], labels["val"], config=probe)
            scores = probe_scores(fit.head, emb["test"])
            config |= {"protocol": "linear_probe", "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
                       "best_val_macro_auroc": fit.best_val_auroc, "probe": asdict(probe)}  # fmt: skip
        result = classification_result(
            task=task.name, model=em.name, dataset=sels["test"].name, labels=labels["test"],
            scores=scores, classes=task.classes, n_bootstrap=settings.n_bootstrap, seed=settings.seed, config=config,
        )  # fmt: skip
        out.append((result, _scores(sels["test"], task, labels["test"], scores)))
    return out


def run_retrieval(em: EvalModel, test: str | Path, *, settings: Settings) -> dict[str, Any]:
    """ECG↔report Recall@1/5/10 and median rank; identical report texts count as the same report."""
    em.require_text("retrieval")
    sel = select(test, settings)
    reports = sel.store.meta["report"].fillna("").astype(str).to_numpy()[sel.indices]
    keep = np.flatnonzero([bool(r.strip()) for r in reports])
    if len(keep) < len(reports):
        logger.warning(
            "%d of %d records have no report and are left out of retrieval", len(reports) - len(keep), len(reports)
        )
    if len(keep) < 2:
        raise SystemExit(f"{sel.name} has fewer than 2 records with a report; retrieval needs reports")
    sel = Selection(sel.store, sel.indices[keep], sel.name)
    texts = [str(r) for r in reports[keep]]
    em.model.eval()
    ecg = embed(em, sel, settings, keys=("ecg_latent",))["ecg_latent"]
    text = encode_texts(em, texts, settings.batch_size)
    groups = [" ".join(t.lower().split()) for t in texts]
    ranks = retrieval_ranks(ecg, text, groups=groups)
    metrics: dict[str, Any] = retrieval_metrics(ranks)
    metrics["n_records"] = len(texts)
    metrics["n_distinct_reports"] = len(set(groups))
    boot = bootstrap_means(recall_hits(ranks), n_resamples=settings.n_bootstrap, seed=settings.seed)
    config = {
        "protocol": "retrieval",
        "test": str(test),
        "groups": "identical report text",
        "n_bootstrap": settings.n_bootstrap,
        "seed": settings.seed,
    }
    return result_dict(
        task="retrieval", model=em.name, dataset=sel.name, metrics=metrics, per_class=None, boot=boot, config=config
    )


@torch.no_grad()
def run_generation(
    em: EvalModel,
    test: str | Path,
    *,
    method: str,
    max_length: int | None,
    limit: int | None,
    settings: Settings,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Generate reports for a store's ECGs and score them against the references; also returns the pairs.

    ``max_length`` None means the model's own ``text.max_length``.
    """
    em.require_text("report generation")
    if max_length is None:
        max_length = em.model.config.text.max_length
    tokenizer = em.model.tokenizer
    assert tokenizer is not None
    sel = select(test, settings)
    reports = sel.store.meta["report"].fillna("").astype(str).to_numpy()
    keep = np.asarray([i for i in sel.indices if reports[i].strip()], dtype=np.int64)
    if limit is not None:
        keep = keep[:limit]
    if len(keep) == 0:
        raise SystemExit(f"{sel.name} has no record with a report to compare against")
    dataset = ECGDataset(sel.store, indices=keep, transform=eval_transform(em, sel.store, sel.leads))
    em.model.eval()
    generated: list[str] = []
    generator = torch.Generator().manual_seed(settings.seed)
    for start in tqdm(
        range(0, len(keep), settings.batch_size), desc="generate", unit="batch", disable=not settings.progress
    ):
        ecg = torch.stack([dataset[i]["ecg"] for i in range(start, min(start + settings.batch_size, len(keep)))])
        ids = em.model.generate(ecg, method=method, max_length=max_length, generator=generator)  # type: ignore[arg-type]
        generated += tokenizer.batch_decode(ids, skip_special_tokens=True)
    # the references go through the same tokenizer round trip (case, spacing, truncation) as the generations
    collator = _collator(em)
    references = []
    for start in range(0, len(keep), settings.batch_size):
        ids, _ = collator.tokenize([reports[i] for i in keep[start : start + settings.batch_size]])
        references += tokenizer.batch_decode(ids, skip_special_tokens=True)
    metrics, per_code, boot = generation_metrics(
        generated, references, n_resamples=settings.n_bootstrap, seed=settings.seed
    )
    metrics_out: dict[str, Any] = {**metrics, "n_records": len(keep)}
    per_class = {code: {**v, "auroc": None, "ci95": None, "n_pos": v["n_ref"]} for code, v in per_code.items()}
    config = {"protocol": "generation", "test": str(test), "method": method, "max_length": max_length,
              "labeller": "melp.eval.labeller", "n_bootstrap": settings.n_bootstrap, "seed": settings.seed}  # fmt: skip
    record_ids = sel.store.meta["id"].astype(str).to_numpy()[keep]
    pairs = [{"id": str(i), "generated": g, "reference": r} for i, g, r in zip(record_ids, generated, references)]
    result = result_dict(
        task="generation",
        model=em.name,
        dataset=sel.name,
        metrics=metrics_out,
        per_class=per_class,
        boot=boot,
        config=config,
    )
    return result, pairs


@torch.no_grad()
def run_grounding(em: EvalModel, test: str | Path, *, settings: Settings) -> dict[str, Any]:
    """Beat-level grounding of PVC/PAC sentences on their ectopic beats (:mod:`melp.eval.grounding`).

    Needs a store with beat ground truth (``melp synth``). Each record with a PVC or PAC sentence and
    beats of that type runs once through the model (batched); a sentence cut off by the tokenizer's
    truncation is left out and counted in ``n_truncated``.
    """
    em.require_text("beat-level grounding")
    sel = select(test, settings)
    store = sel.store
    if not has_beat_truth(store.meta):
        raise SystemExit(
            f"{sel.name} has no beat ground truth (beat_samples, beat_types, qrs_*); use a `melp synth` store"
        )
    targets = grounding_targets(store.meta, sel.indices, fs=float(store.fs))
    if not targets:
        raise SystemExit(f"{sel.name} has no record with a PVC or PAC sentence and beats of that type")
    fs_model = float(em.fs or store.fs)
    rows = np.asarray(sorted({t.row for t in targets}), dtype=np.int64)
    dataset = ECGDataset(store, indices=rows, transform=eval_transform(em, store, sel.leads))
    reports = store.meta["report"].fillna("").astype(str).to_numpy()
    collator = _collator(em)
    em.model.eval()
    attention: dict[int, dict[str, np.ndarray]] = {}  # store row -> link -> (S_b, N), "queries" -> (Q, N)
    for start in tqdm(
        range(0, len(rows), settings.batch_size), desc="ground", unit="batch", disable=not settings.progress
    ):
        chunk = range(start, min(start + settings.batch_size, len(rows)))
        ecg = torch.stack([dataset[i]["ecg"] for i in chunk])
        ids, mask = collator.tokenize([reports[rows[i]] for i in chunk])
        for i, maps in zip(chunk, sentence_frame_attention(em.model, ecg, ids, mask)):
            attention[int(rows[i])] = maps
    kept = [t for t in targets if t.sentence < len(attention[t.row]["cosine"])]
    if not kept:
        raise SystemExit(f"every PVC/PAC sentence of {sel.name} was cut off by the tokenizer's max_length")
    n_frames = [attention[t.row]["cosine"].shape[1] for t in kept]
    covered = np.stack([frames_covered(t.windows, n_frames=n, fs=fs_model) for t, n in zip(kept, n_frames)])
    on_beats = np.stack([frames_covered(t.all_windows, n_frames=n, fs=fs_model) for t, n in zip(kept, n_frames)])
    scores = {link: grounding_scores(np.stack([attention[t.row][link][t.sentence] for t in kept]), covered, on_beats)
              for link in LINKS}  # fmt: skip
    scores["best_query"] = best_query_scores(np.stack([attention[t.row]["queries"] for t in kept]), covered, on_beats)
    metrics, boot = summarise([t.code for t in kept], scores, n_resamples=settings.n_bootstrap, seed=settings.seed)
    metrics |= {"n_records": len({t.row for t in kept}), "n_truncated": len(targets) - len(kept)}
    config = {
        "protocol": "grounding",
        "test": str(test),
        "codes": list(GROUNDED_CODES),
        "beat_window": f"QRS onset..offset (R ± {1000 * FALLBACK_HALF_WIDTH_S:g} ms where undefined)",
        "links": {
            "cosine": "softmax(5 x cosine(sentence, beat emb))",
            "alpha": "local loss alpha (raw dot products)",
            "best_query": "the beat query with the most mass on the ectopic frames (ground truth; an upper bound)",
        },
        "model_fs": fs_model,
        "store_fs": float(store.fs),
        "n_bootstrap": settings.n_bootstrap,
        "seed": settings.seed,
    }
    return result_dict(
        task="grounding", model=em.name, dataset=sel.name, metrics=metrics, per_class=None, boot=boot,
        config=config,
    )  # fmt: skip
