"""A folder of a user's own ECG files, any mix of formats (``melp prepare files``): each file read by :func:`melp.io.read_ecg`.

Every file under ``root`` (recursively, sorted, hidden files skipped) is one record, except the
signal files of a WFDB record (a ``.dat``/``.mat`` beside a ``.hea`` of the same name: the
``.hea`` is the record) and CODE-15 HDF5 files, which give one record per exam (``index``). The
record id is the file's path relative to ``root`` (``site1/ecg_0001.xml``; an HDF5 exam adds
``#<index>``). A file the store cannot take is skipped with one line naming the file, the
format detected and what is wrong: unreadable or truncated files, unknown lead names, and files
with fewer than the 12 leads a store holds (``6 of 12 leads where 12 are needed``; limb leads
derivable from I and II count as present). Kept records go through the same cleaning as the
dataset readers (:func:`melp.data.signal.standardize`: rate, NaN policy, flat leads, crop/pad).

Columns: ``source`` is ``files``, ``format`` the detected format, ``statements`` the cart's interpretation statements, ``device``; with ``report_from="statements"``
the statements joined by ``". "`` are the record's ``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from melp.data.leads import STANDARD_LEADS
from melp.data.readers.common import skip_from
from melp.data.signal import RecordError, SignalPolicy, standardize
from melp.data.store import Record, Skip

SOURCE = "files"
REPORT_FROM = ("none", "statements")
_SIGNAL_SUFFIXES = {".dat", ".mat", ".atr", ".xyz", ".qrs"}
_IGNORED_NAMES = {"readme", "readme.md", "readme.txt", "license", "records", "manifest.json", "build.json"}


class FileItem(NamedTuple):
    """One record to read: id, absolute path, HDF5 exam (-1: none), report source, read_ecg hints."""

    id: str
    path: str
    exam: int
    report_from: str
    hints: tuple[tuple[str, Any], ...]


def record_files(root: Path) -> list[Path]:
    """The files under ``root`` that are records (sorted; hidden files, READMEs and WFDB signal files left out)."""
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.name.lower() in _IGNORED_NAMES:
            continue
        if path.suffix.lower() in _SIGNAL_SUFFIXES and path.with_suffix(".hea").is_file():
            continue  # a WFDB signal file: its .hea is the record
        files.append(path)
    return files


def _hdf5_exams(path: Path) -> int | None:
    """The number of exams of a CODE-15 HDF5 file, None if ``path`` is not HDF5 with ``tracings``."""
    with path.open("rb") as f:
        if f.read(8) != b"\x89HDF\r\n\x1a\n":
            return None
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return len(h5["tracings"]) if "tracings" in h5 else None
    except OSError:
        return None


def list_items(
    root: Path, split_csv: Path | None = None, *, report_from: str = "none", hints: dict[str, Any] | None = None
) -> list[FileItem]:
    """Every ECG file (or HDF5 exam) under ``root``.

    Raises:
        ValueError: ``split_csv`` given, or an unknown ``report_from``.
        FileNotFoundError: no file under ``root``.
    """
    if split_csv is not None:
        raise ValueError("files takes no --split-csv")
    if report_from not in REPORT_FROM:
        raise ValueError(f"--report-from must be one of {', '.join(REPORT_FROM)}, got {report_from!r}")
    frozen = tuple(sorted((k, v) for k, v in (hints or {}).items() if v is not None))
    items = []
    for path in record_files(root):
        stem = str(path.relative_to(root))
        exams = _hdf5_exams(path)
        if exams is None:
            items.append(FileItem(stem, str(path), -1, report_from, frozen))
        else:
            items.extend(FileItem(f"{stem}#{i}", str(path), i, report_from, frozen) for i in range(exams))
    if not items:
        raise FileNotFoundError(f"no files under {root}")
    return items


def process(item: FileItem, policy: SignalPolicy) -> Record | Skip:
    """Read one file with :func:`melp.io.read_ecg` and clean it into a store record (or a skip with the reason)."""
    from melp.io import read_ecg

    try:
        hints = dict(item.hints)
        if item.exam >= 0:
            hints["index"] = item.exam
        rec = read_ecg(item.path, **hints)
        if rec.leads_missing:
            n = len(STANDARD_LEADS) - len(rec.leads_missing)
            raise RecordError(
                f"{item.path}: {rec.format}: {n} of 12 leads where 12 are needed (missing {', '.join(rec.leads_missing)})"
            )
        try:
            signal, meta = standardize(
                rec.signal, lead_names=list(STANDARD_LEADS), units=[rec.units] * 12, fs=rec.fs, policy=policy
            )
        except RecordError as exc:
            raise RecordError(f"{item.path}: {rec.format}: {exc}") from exc
        statements = rec.statements()
        report = ". ".join(s.rstrip(". ") for s in statements) if item.report_from == "statements" else ""
        extra = {
            **meta,
            "format": rec.format,
            "statements": statements,
            "device": str(rec.metadata.get("device", "")),
            "leads_derived": rec.derived_leads,
        }
        return Record(id=item.id, signal=signal, source=SOURCE, report=report, extra=extra)
    except RecordError as exc:
        return skip_from(item.id, exc)
