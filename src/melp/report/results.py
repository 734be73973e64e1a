"""Results tables of the demo report (melp-spec.md §6): every number is read from a results JSON.

A results JSON follows design.md: ``{"task", "model", "dataset", "metrics": {name: x},
"per_class": {CODE: {"auroc", "ci95", "n_pos"}}, "ci95": {name: [lo, hi]}, "config"}``. The report
never retypes a number: tables are built here from the files, and :func:`format_value` is the one
place where a number becomes text, so tests can check the report against the JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DIGITS = 3


@dataclass(frozen=True)
class ResultEntry:
    """One results JSON and where it goes in the report.

    Attributes:
        evaluation: the table it belongs to (``"zero-shot"``, ``"linear probe 10 %"``...).
        model: the row label (``"MELP"``, ``"random encoder"``).
        path: the results JSON file.
    """

    evaluation: str
    model: str
    path: Path


@dataclass
class Table:
    """A rendered table: a title, column headers and rows of cell text."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results JSON and check it has the ``metrics`` mapping of design.md."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results JSON {path} does not exist")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ValueError(f"{path}: expected a results JSON with a 'metrics' mapping (design.md), got keys {list(data)}")
    return data


def format_value(value: Any) -> str:
    """The text of one number in the report (3 decimals; integers as they are; missing as '–')."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{_DIGITS}f}"
    return str(value)


def format_ci(ci: Any) -> str:
    """``[lo, hi]`` as text, or '' where no interval was given."""
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return f"[{format_value(ci[0])}, {format_value(ci[1])}]"
    return ""


def format_cell(value: Any, ci: Any) -> str:
    """A table cell: the value followed by its 95 % interval when there is one."""
    text = format_value(value)
    interval = format_ci(ci)
    return f"{text} {interval}" if interval else text


def scalar_metrics(result: dict[str, Any]) -> dict[str, float | int]:
    """The numeric headline metrics of a results JSON, in file order."""
    return {k: v for k, v in result["metrics"].items() if isinstance(v, int | float) and not isinstance(v, bool)}


def headline_tables(entries: list[ResultEntry]) -> list[Table]:
    """One table per evaluation: a row per model, a column per metric (value and 95 % CI)."""
    tables: dict[str, Table] = {}
    loaded = [(entry, load_results(entry.path)) for entry in entries]
    columns: dict[str, list[str]] = {}
    for entry, result in loaded:
        names = columns.setdefault(entry.evaluation, [])
        names.extend(name for name in scalar_metrics(result) if name not in names)
    for entry, result in loaded:
        names = columns[entry.evaluation]
        table = tables.setdefault(entry.evaluation, Table(title=entry.evaluation, header=["model", *names]))
        metrics = result["metrics"]
        cis = result.get("ci95") or {}
        table.rows.append([entry.model, *(format_cell(metrics.get(name), cis.get(name)) for name in names)])
    for table in tables.values():
        table.note = "value [95 % bootstrap CI]"
    return list(tables.values())


def per_class_table(*, title: str, results: dict[str, dict[str, Any]], metric: str = "auroc") -> Table:
    """Per-class ``metric`` side by side for several models (columns), one row per class code.

    Args:
        title: the table title.
        results: model label → results JSON (its ``per_class`` mapping is used).
        metric: the per-class metric to show.
    """
    models = list(results)
    codes: list[str] = []
    for result in results.values():
        codes.extend(code for code in (result.get("per_class") or {}) if code not in codes)
    table = Table(title=title, header=["class", "positives", *models], note=f"per-class {metric} [95 % bootstrap CI]")
    for code in codes:
        first = next(r["per_class"][code] for r in results.values() if code in (r.get("per_class") or {}))
        cells = []
        for model in models:
            item = (results[model].get("per_class") or {}).get(code, {})
            cells.append(format_cell(item.get(metric), item.get("ci95")))
        table.rows.append([code, format_value(first.get("n_pos")), *cells])
    return table
