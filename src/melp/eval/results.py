"""Results files of every evaluation command (design.md "Command line"): results JSON, markdown table, scores CSV.

The results JSON of one evaluation::

    {"task": ..., "model": ..., "dataset": ..., "metrics": {"macro_auroc": x, ...},
     "per_class": {CODE: {"auroc": x, "ci95": [lo, hi], "n_pos": k, ...}},
     "ci95": {"macro_auroc": [lo, hi], ...}, "bootstrap": {...}, "config": {...}}

A file may hold one such object or, for ``melp eval-suite``, ``{"results": [...], "config": {...}}``.
Beside each JSON a markdown table (same name, ``.md``) lists every headline metric with its interval.
The scores CSV has columns ``id``, ``labels`` (codes joined by ``;``) and one score column per class.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melp.eval.bootstrap import BootstrapResult, bootstrap_classification
from melp.eval.metrics import classification_metrics


def classification_result(
    *,
    task: str,
    model: str,
    dataset: str,
    labels: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    n_bootstrap: int,
    seed: int,
    config: dict[str, Any],
) -> dict[str, Any]:
    """The results JSON object of a classification evaluation (zero-shot, probe, fine-tune)."""
    macro, per_class = classification_metrics(labels, scores, classes)
    boot, class_ci = bootstrap_classification(labels, scores, classes, n_resamples=n_bootstrap, seed=seed)
    per_class_out = {
        m.code: {
            "auroc": m.auroc,
            "ci95": class_ci[m.code],
            "n_pos": m.n_pos,
            "max_f1": m.max_f1,
            "accuracy": m.accuracy,
            "threshold": m.threshold,
            **({"excluded": m.reason} if m.reason else {}),
        }
        for m in per_class
    }
    macro["n_records"] = len(labels)
    return result_dict(
        task=task, model=model, dataset=dataset, metrics=macro, per_class=per_class_out, boot=boot, config=config
    )


def result_dict(
    *,
    task: str,
    model: str,
    dataset: str,
    metrics: dict[str, Any],
    per_class: dict[str, dict[str, Any]] | None,
    boot: BootstrapResult,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Assemble one results object (the shape of the module docstring)."""
    return {
        "task": task,
        "model": model,
        "dataset": dataset,
        "metrics": metrics,
        "per_class": per_class or {},
        "ci95": boot.ci95,
        "bootstrap": boot.summary(),
        "config": config,
    }


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def protocol_label(result: dict[str, Any]) -> str:
    """``zeroshot``, ``linear_probe 10%``, ``retrieval``... from a result's config."""
    config = result.get("config", {})
    label = str(config.get("protocol", result.get("task", "")))
    if "fraction" in config:
        label += f" {100 * float(config['fraction']):g}%"
    return label


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per headline metric (those with an interval) of each result: value and 95 % CI."""
    lines = [
        "| protocol | task | model | dataset | metric | value | 95 % CI |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        for name, ci in res.get("ci95", {}).items():
            value = res["metrics"].get(name)
            ci_text = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "–"
            cells = [protocol_label(res), res["task"], res["model"], res["dataset"], name, _fmt(value), ci_text]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


_HEADLINE = {
    "zeroshot": ("macro_auroc",),
    "linear_probe": ("macro_auroc",),
    "logistic_probe": ("macro_auroc",),
    "finetune": ("macro_auroc",),
    "retrieval": ("ecg2text_R@1", "ecg2text_R@10", "text2ecg_R@1", "text2ecg_R@10"),
    "generation": ("bleu4", "rouge_l", "clinical_micro_f1"),
    "grounding": (
        "cosine/mass_ratio",
        "cosine/hit_rate",
        "alpha/mass_ratio",
        "alpha/hit_rate",
        "chance_hit_rate",
        "chance_beat_hit_rate",
        "cosine/beat_mass_ratio",
        "best_query/mass_ratio",
    ),
}


def comparison_table(results: Sequence[dict[str, Any]]) -> str:
    """Headline metrics side by side per model (e.g. the pretrained model and the random-encoder baseline)."""
    models = list(dict.fromkeys(r["model"] for r in results))
    rows: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for res in results:
        protocol = str(res.get("config", {}).get("protocol", res["task"]))
        for name in _HEADLINE.get(protocol, tuple(res.get("ci95", {}))):
            if name not in res["metrics"]:
                continue
            ci = res.get("ci95", {}).get(name)
            cell = _fmt(res["metrics"][name]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            rows.setdefault((protocol_label(res), res["task"], res["dataset"], name), {})[res["model"]] = cell
    lines = [
        "| protocol | task | dataset | metric | " + " | ".join(models) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in models) + " |",
    ]
    for key, cells in rows.items():
        lines.append("| " + " | ".join(key) + " | " + " | ".join(cells.get(m, "–") for m in models) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    path: str | Path, results: dict[str, Any] | Sequence[dict[str, Any]], *, config: dict[str, Any] | None = None
) -> Path:
    """Write the results JSON at ``path`` and its markdown table beside it (``.md``); returns the table's path."""
    out = Path(path)
    if isinstance(results, dict):
        payload: dict[str, Any] = results
        rows = [results]
    else:
        rows = list(results)
        payload = {"results": rows, "config": config or {}}
    _atomic_write(out, json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    table = out.with_suffix(".md")
    _atomic_write(table, markdown_table(rows))
    return table


def write_scores_csv(
    path: str | Path, *, ids: Sequence[str], labels: Sequence[Sequence[str]], classes: Sequence[str], scores: np.ndarray
) -> None:
    """Every record's scores: ``id``, ``labels`` (codes joined by ``;``), one column per class code."""
    s = np.asarray(scores)
    if s.shape != (len(ids), len(classes)) or len(labels) != len(ids):
        raise ValueError(
            f"scores {s.shape}, {len(ids)} ids, {len(labels)} label lists, {len(classes)} classes do not agree"
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "labels", *classes])
        for rid, codes, row in zip(ids, labels, s):
            writer.writerow([rid, ";".join(codes), *(f"{v:.6g}" for v in row)])
    os.replace(tmp, out)
