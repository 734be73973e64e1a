"""Small helpers shared by the XML formats (HL7 aECG, GE MUSE, Philips): parsing and namespace-free lookups."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from melp.data.signal import RecordError


def parse(path: Path) -> ET.Element:
    """The root element of an XML file (its own encoding declaration is honoured: UTF-8, UTF-16, Latin-1).

    Raises:
        RecordError: not well-formed XML (the parser's message names the line).
    """
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RecordError(f"malformed XML ({exc})") from exc


def local(tag: str) -> str:
    """A tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first direct child named ``name`` (any namespace)."""
    return next((c for c in element if local(c.tag) == name), None)


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local(c.tag) == name]


def descendants(element: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in element.iter() if local(e.tag) == name]


def text(element: ET.Element | None, name: str | None = None) -> str:
    """The stripped text of ``element`` (or of its first child ``name``), '' if absent."""
    if element is not None and name is not None:
        element = child(element, name)
    return (element.text or "").strip() if element is not None else ""


def number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
