"""PhysioNet/CinC Challenge 2020–2021 reader: WFDB ``.hea`` + ``.mat`` folders with SNOMED CT ``# Dx:`` codes.

Covers every source of the challenge (CPSC, CPSC-Extra, St Petersburg INCART, PTB, PTB-XL,
Georgia, Chapman-Shaoxing, Ningbo) and the Chapman-Shaoxing-Ningbo (CSN) release itself, which
uses the same format. All ``*.hea`` files under ``root`` are records (sorted by path); the
record id is the file stem, the ``source`` column names the sub-dataset (from the id's prefix,
:data:`SOURCE_PREFIXES`). Labels are the ``# Dx:`` codes mapped to the challenge's abbreviations
with ``dx_mapping_scored.csv``/``dx_mapping_unscored.csv`` found under ``root`` (or melp's copy of
them, ``resources/snomed_dx.json``); an unmapped code is kept as the code. The codes themselves go
to the ``dx_snomed`` column, the header's age and sex to ``age``/``sex``.

With ``split_csv`` (MELP's ``chapman`` files: ``ecg_path, age, diagnose``, then 38 class columns)
the records are the file's rows, found by the stem of ``ecg_path`` (or ``filename``), and the
labels are the file's positive class columns.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from melp.data.readers.common import make_record, read_wfdb, skip_from
from melp.data.readers.split_csv import read_split_csv
from melp.data.signal import RecordError, SignalPolicy
from melp.data.store import Record, Skip

SOURCE = "cinc2021"
SOURCE_PREFIXES = (
    ("HR", "ptbxl"),
    ("JS", "chapman-shaoxing-ningbo"),
    ("A", "cpsc2018"),
    ("Q", "cpsc2018-extra"),
    ("I", "incart"),
    ("S", "ptb"),
    ("E", "georgia"),
)
"""Record-id prefix → sub-dataset name, in matching order."""


class CincItem(NamedTuple):
    """One record to read: id, WFDB path (no extension; '' if not found), mapping files, split labels."""

    id: str
    path: str
    mapping: tuple[str, ...]
    labels: tuple[str, ...] | None


def source_of(record_id: str) -> str:
    """The sub-dataset of a challenge record id (``E07500`` → ``georgia``), ``cinc`` if unknown."""
    return next((name for prefix, name in SOURCE_PREFIXES if record_id.startswith(prefix)), "cinc")


@lru_cache(maxsize=8)
def dx_mapping(files: tuple[str, ...]) -> dict[str, str]:
    """SNOMED CT code → abbreviation from the challenge's mapping CSVs (melp's packaged copy if none)."""
    if not files:
        text = resources.files("melp").joinpath("resources/snomed_dx.json").read_text(encoding="utf-8")
        return {code: entry["abbreviation"] for code, entry in json.loads(text)["codes"].items()}
    mapping: dict[str, str] = {}
    for file in files:
        table = pd.read_csv(file, dtype={"SNOMEDCTCode": str})
        for code, abbrev in zip(table["SNOMEDCTCode"], table["Abbreviation"]):
            mapping.setdefault(code.strip(), str(abbrev))
    return mapping


def parse_comments(comments: list[str]) -> dict[str, str]:
    """``Key: value`` header comment lines as a dict with lower-case keys."""
    out = {}
    for line in comments:
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value


def list_items(root: Path, split_csv: Path | None = None) -> list[CincItem]:
    """Every ``*.hea`` record under ``root`` (or the rows of ``split_csv``).

    Raises:
        FileNotFoundError: no header files under ``root``.
        ValueError: a split file without ``ecg_path``/``filename``.
    """
    headers = {p.stem: p.with_suffix("") for p in sorted(root.rglob("*.hea"))}
    if not headers:
        raise FileNotFoundError(f"no .hea files under {root}; --root must be a PhysioNet/CinC 2020–2021 folder")
    mapping = tuple(str(p) for name in ("scored", "unscored") for p in sorted(root.rglob(f"dx_mapping_{name}.csv")))
    if split_csv is None:
        return [CincItem(stem, str(path), mapping, None) for stem, path in headers.items()]
    split = read_split_csv(split_csv)
    column = next((c for c in ("ecg_path", "filename") if c in split.frame.columns), None)
    if column is None:
        raise ValueError(f"{split_csv}: a CinC/CSN split file needs an ecg_path or filename column")
    items = []
    for rel, labels in zip(split.frame[column].astype(str), split.labels):
        stem = Path(rel.strip()).stem
        path = headers.get(stem)
        items.append(CincItem(stem, str(path) if path else "", mapping, tuple(labels)))
    return items


def process(item: CincItem, policy: SignalPolicy) -> Record | Skip:
    """Read and standardise one challenge record; labels from ``# Dx:`` unless the split file gave them."""
    try:
        if not item.path:
            raise RecordError(f"missing header {item.id}.hea")
        raw = read_wfdb(item.path)
        fields = parse_comments(raw.comments)
        codes = [c.strip() for c in fields.get("dx", "").split(",") if c.strip()]
        if item.labels is None:
            names = dx_mapping(item.mapping)
            labels = list(dict.fromkeys(names.get(c, c) for c in codes))
        else:
            labels = list(item.labels)
        extra = {"dx_snomed": codes, "age": _number(fields.get("age")), "sex": fields.get("sex")}
        return make_record(raw, id=item.id, policy=policy, source=source_of(item.id), labels=labels, extra=extra)
    except RecordError as exc:
        return skip_from(item.id, exc)
