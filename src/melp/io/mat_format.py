"""MATLAB ``.mat`` ECGs without a WFDB header, with ``scipy.io.loadmat``.

* CPSC 2018 (ICBEB) originals: ``ECG.data`` (12 × N, mV, 500 Hz, standard order), read by the
  dataset reader's :func:`~melp.data.readers.cpsc2018.read_mat` (age and sex are not kept);
* any other MATLAB file with one 2-D numeric matrix (``val``, as PhysioNet writes, or another
  single variable): leads from the ``leads=`` hint (default the standard 12 when there are 12
  rows), ``fs=`` required, ``units=`` (default ``mV``).

A ``.mat`` beside a ``.hea`` of the same name is a WFDB record (:mod:`melp.io.wfdb_format`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import loadmat

from melp.data.readers.cpsc2018 import read_mat
from melp.data.signal import RecordError
from melp.io.array_format import from_matrix
from melp.io.record import RawECG


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read a CPSC 2018 ``.mat`` or a generic matrix ``.mat`` (see the module docstring)."""
    try:
        content = loadmat(str(path))
    except Exception as exc:
        raise RecordError(f"unreadable MATLAB file ({type(exc).__name__}: {exc})") from exc
    if "ECG" in content:
        raw, _ = read_mat(path)
        return RawECG(signal=raw.signal, lead_names=raw.lead_names, units=[u or "" for u in raw.units], fs=raw.fs)
    matrices = {k: v for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    matrices = {k: v for k, v in matrices.items() if v.ndim == 2 and v.dtype.kind in "iuf"}
    key = hints.get("key") or ("val" if "val" in matrices else None)
    if key is None:
        if len(matrices) != 1:
            raise RecordError(f"no ECG matrix found (2-D numeric variables: {sorted(matrices)}); pass key=NAME")
        key = next(iter(matrices))
    if key not in matrices:
        raise RecordError(f"no 2-D numeric variable {key!r} (has {sorted(matrices)})")
    return from_matrix(matrices[key], hints, what=f"variable {key!r}")
