"""CODE-15% HDF5 files (``tracings`` ``(N, 4096, 12)``, mV, 400 Hz, standard order), one exam by index.

The dataset reader's :func:`~melp.data.readers.code15.read_tracing` reads the row and removes
CODE's zero padding. ``index=`` picks the row (required when the file holds more than one exam);
the file's ``exam_id`` of that row goes to ``metadata["exam_id"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from melp.data.readers.code15 import read_tracing
from melp.data.signal import RecordError
from melp.io.record import RawECG


def read(path: Path, hints: dict[str, Any]) -> RawECG:
    """Read row ``index`` of a CODE-15% HDF5 file."""
    try:
        with h5py.File(path, "r") as f:
            if "tracings" not in f:
                raise RecordError(f"no 'tracings' dataset (has {sorted(f.keys())}); expected a CODE-15% HDF5 file")
            n = len(f["tracings"])
            exam_ids = np.asarray(f["exam_id"]) if "exam_id" in f else None
    except OSError as exc:
        raise RecordError(f"unreadable HDF5 file ({exc})") from exc
    index = hints.get("index")
    if index is None:
        if n != 1:
            raise RecordError(f"the file holds {n} exams; pass index= (0–{n - 1})")
        index = 0
    index = int(index)
    if not 0 <= index < n:
        raise RecordError(f"index {index} out of range for {n} exams")
    raw = read_tracing(str(path), index)
    metadata: dict[str, Any] = {"index": index}
    if exam_ids is not None:
        metadata["exam_id"] = int(exam_ids[index])
    return RawECG(
        signal=raw.signal, lead_names=raw.lead_names, units=[u or "" for u in raw.units], fs=raw.fs, metadata=metadata
    )
