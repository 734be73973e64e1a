"""Which format a file is, from its content (magic bytes, XML root element), the suffix only as a tie-breaker.

=============  ===================================================================
format         recognised by
=============  ===================================================================
``wfdb``       a ``.hea`` header (text whose first record line is ``name n_sig ...``), or a
               signal file (``.dat``, ``.mat``…) with a ``.hea`` of the same name beside it
``dicom``      ``DICM`` at byte 128
``hdf5``       the HDF5 signature ``\\x89HDF\\r\\n\\x1a\\n``
``npy``        ``\\x93NUMPY``; ``npz``: a zip archive of ``.npy`` members
``mat``        ``MATLAB 5.0 MAT-file`` (or a v4/v7.3 ``.mat`` by suffix)
``edf``        an EDF/EDF+ header (``0`` + 7 spaces) or a BDF one (``\\xffBIOSEMI``)
``muse``       XML whose root is ``RestingECG``
``aecg``       XML whose root is ``AnnotatedECG``
``philips``    XML whose root is ``restingecgdata``
``csv``        other text (``.csv``, ``.tsv``, ``.txt``, or text that looks delimited)
=============  ===================================================================
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from melp.data.signal import RecordError

_XML_ROOTS = {"restingecg": "muse", "annotatedecg": "aecg", "restingecgdata": "philips"}
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_WFDB_RECORD_LINE = re.compile(r"^\S+(/\d+)?\s+\d+(\s|$)")


def _decode_head(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if len(head) > 1 and head[1:2] == b"\x00":
        return head.decode("utf-16-le", errors="replace")
    return head.decode("utf-8", errors="replace")


def _xml_root(text: str) -> str | None:
    """The local name of the first element of an XML text, skipping the prolog, comments and DOCTYPE."""
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S)
    match = re.search(r"<([A-Za-z_][\w.:-]*)", body)
    return match.group(1).split(":")[-1] if match else None


def detect_format(path: str | Path) -> str:
    """The format name of ``path`` (see the module docstring).

    Raises:
        RecordError: missing, empty or unrecognised file; the message says what was seen.
    """
    p = Path(path)
    if p.is_dir():
        raise RecordError("is a folder, not a file")
    if not p.exists():
        if p.with_suffix(".hea").is_file():
            return "wfdb"
        raise RecordError("no such file")
    with p.open("rb") as f:
        head = f.read(4096)
    if p.suffix.lower() == ".hea":
        return "wfdb"
    if not head:
        raise RecordError("the file is empty")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as z:
                if any(name.endswith(".npy") for name in z.namelist()):
                    return "npz"
        except zipfile.BadZipFile as exc:
            raise RecordError(f"damaged zip/npz archive ({exc})") from exc
        raise RecordError("a zip archive without .npy members (unzip it first)")
    if head.startswith(b"MATLAB 5.0 MAT-file") or p.suffix.lower() == ".mat":
        return "wfdb" if p.with_suffix(".hea").is_file() else "mat"
    if p.with_suffix(".hea").is_file() and p.suffix.lower() in {".dat", ".mat", ".edf", ""}:
        return "wfdb"
    if head.startswith(b"\xffBIOSEMI") or (head[:8] == b"0       " and head[184:192].strip().isdigit()):
        return "edf"
    text = _decode_head(head).lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        root = _xml_root(text)
        if root is not None and root.lower() in _XML_ROOTS:
            return _XML_ROOTS[root.lower()]
        raise RecordError(f"XML with root element <{root}>; not an ECG format melp reads (GE MUSE, HL7 aECG, Philips)")
    if p.suffix.lower() in _TEXT_SUFFIXES or _looks_delimited(text):
        return "csv"
    if head.startswith(b"SCPECG") or p.suffix.lower() == ".scp":
        raise RecordError("SCP-ECG is not supported; export the ECG as XML, DICOM, EDF or CSV")
    raise RecordError(f"unrecognised format (first bytes {head[:16]!r})")


def _looks_delimited(text: str) -> bool:
    lines = [line for line in text.splitlines()[:5] if line.strip()]
    return bool(lines) and all(line.count(",") >= 1 or line.count("\t") >= 1 for line in lines)
