"""Delimited text ECGs (``.csv``, ``.tsv``, ``.txt``) with ``pandas``: one column per lead, one row per sample.

Lead names come from a header row (detected: a first row that is not all numbers) or the
``leads=`` hint (which also overrides a header); a ``time``/``t``/``sample`` column is ignored.
``fs=`` is required (a text file states no rate), ``units=`` defaults to ``mV``. The delimiter is
sniffed (comma, semicolon, tab, spaces). An empty cell or ``NaN`` is a missing sample (left to the
NaN policy of whoever uses the record); any other non-numeric cell is an error naming its line and column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from melp.data.leads import canonical_lead_name
from melp.data.signal import RecordError
from melp.io.array_format import lead_names_hint, require_fs
from melp.io.record import RawECG

_INDEX_COLUMNS = {"time", "t", "sample", "samples", "index", "time_s", "time (s)", "ms", "time_ms"}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read a CSV/TSV of leads in columns (see the module docstring)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RecordError("the file is empty")
    try:
        dialect = csv.Sniffer().sniff(lines[0] + "\n" + (lines[1] if len(lines) > 1 else ""), delimiters=",;\t ")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    first = [cell.strip().strip('"') for cell in lines[0].split(sep) if cell.strip()]
    has_header = not all(_is_number(cell) for cell in first)
    sep_arg = r"\s+" if sep == " " else sep
    frame = pd.read_csv(
        io.StringIO(text),
        sep=sep_arg,
        header=0 if has_header else None,
        dtype=str,
        engine="python" if sep == " " else "c",
        skipinitialspace=True,
        keep_default_na=False,
    )
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() in _INDEX_COLUMNS or c.startswith("Unnamed")])
    names = lead_names_hint(hints.get("leads"))
    if names is None:
        if not has_header:
            raise RecordError("no header row with lead names; pass leads= (--leads I,II,...)")
        names = list(frame.columns)
    elif len(names) != frame.shape[1]:
        raise RecordError(f"{len(names)} lead names given for {frame.shape[1]} columns")
    if not any(canonical_lead_name(str(n)) for n in names):
        raise RecordError(f"no standard lead among the columns {names[:12]} (not an ECG table? pass leads=...)")
    values = frame.apply(pd.to_numeric, errors="coerce")
    nan = values.isna().to_numpy()
    if nan.any():
        # an empty cell or a literal NaN is a missing sample (the NaN policy applies later); other text is an error
        missing = frame.apply(lambda column: column.str.strip().str.lower().isin(["", "nan"])).to_numpy()
        bad = nan & ~missing
    else:
        bad = nan
    if bad.any():
        row, col = np.argwhere(bad)[0]
        line = row + (2 if has_header else 1)
        raise RecordError(f"non-numeric value {frame.iat[row, col]!r} in column {names[col]!r} at line {line}")
    fs = require_fs(hints, "a CSV file")
    unit = str(hints.get("units") or "mV")
    return RawECG(
        signal=values.to_numpy(dtype=np.float64).T, lead_names=names, units=[unit] * len(names), fs=fs, metadata={}
    )
