"""Uploaded files → one temporary folder that is deleted when the request ends.

An ECG arrives as one file (XML, DICOM, EDF, CSV, .npy, .mat…) or as a WFDB record's header with
its signal file(s). The files are streamed into a fresh private temporary folder under their own
base names (other characters replaced), counting bytes against the upload limit; the folder and
everything in it is removed by :meth:`UploadFolder.close` (the server calls it in a ``finally``).
Nothing else is written anywhere.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

MAX_FILES = 4
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class UploadError(ValueError):
    """An upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str | None, index: int) -> str:
    """The base name of an uploaded file with path parts and unusual characters removed."""
    base = Path((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base or f"upload{index}"


class UploadFolder:
    """A private temporary folder holding one request's files.

    Args:
        max_bytes: the most bytes all files together may have.
    """

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.path = Path(tempfile.mkdtemp(prefix="melp-serve-"))
        self.names: list[str] = []
        self._total = 0

    def add(self, name: str | None, stream: BinaryIO) -> Path:
        """Copy ``stream`` into the folder as ``safe_name(name)``.

        Raises:
            UploadError: too many files, a name given twice, or the size limit passed (413).
        """
        if len(self.names) >= MAX_FILES:
            raise UploadError(
                f"at most {MAX_FILES} files per request (one ECG, or a WFDB header with its signal files)"
            )
        target = safe_name(name, len(self.names))
        if target in self.names:
            raise UploadError(f"two uploaded files are both named {target!r}")
        path = self.path / target
        with path.open("wb") as out:
            while chunk := stream.read(_CHUNK):
                self._total += len(chunk)
                if self._total > self.max_bytes:
                    raise UploadError(
                        f"upload larger than the server's limit of {self.max_bytes / 2**20:g} MiB (--max-upload-mb)",
                        status=413,
                    )
                out.write(chunk)
        self.names.append(target)
        return path

    def primary(self) -> Path:
        """The file to read: the only one, or the WFDB header among several.

        Raises:
            UploadError: no file, or several files none of which is a ``.hea`` header.
        """
        if not self.names:
            raise UploadError("no file uploaded (send the ECG as the multipart field 'files')")
        if len(self.names) == 1:
            return self.path / self.names[0]
        headers = [n for n in self.names if n.lower().endswith(".hea")]
        if len(headers) != 1:
            raise UploadError(
                "several files need exactly one WFDB header (.hea) among them; otherwise upload one ECG file"
            )
        return self.path / headers[0]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> UploadFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_labels(text: str | Iterable[str] | None) -> list[str]:
    """Free-text labels from a form field (comma, semicolon or newline separated), stripped, duplicates dropped."""
    if text is None:
        return []
    parts = re.split(r"[,;\n]", text) if isinstance(text, str) else [str(t) for t in text]
    seen: dict[str, None] = {}
    for part in parts:
        label = " ".join(part.split())
        if label and label.lower() not in {s.lower() for s in seen}:
            seen[label] = None
    return list(seen)
