"""Zero-shot class prompts (melp-spec §6.1): melp's own prompt bank, or an external JSON such as MERL's CKEPE file.

A prompt bank maps a label code to one description or a list of descriptions. melp ships
``melp/resources/prompts.json`` (several MIMIC-IV-ECG-style statements for every class of the six
MELP label sets and of the synthetic findings). An external JSON (``--prompts FILE``) in the same
shape, code → string or list of strings, replaces it; MERL's CKEPE file (one comma-separated string
per code) loads as one prompt per code, as the reference uses it.

Codes are matched by name: exactly, then case-insensitively, then ignoring PTB-XL's leading/trailing
underscores (``STD_`` ↔ ``STD``, ``_AVB`` ↔ ``AVB``). A class with no prompt is an error that names
every missing code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

PromptBank = dict[str, list[str]]


def _normalise_key(code: str) -> str:
    return code.strip().strip("_").upper()


def _clean(code: str, value: object, source: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p.strip() for p in items):
        raise ValueError(f"{source}: prompts of {code!r} must be a non-empty string or list of strings, got {value!r}")
    return [" ".join(p.lower().split()) for p in items]


def load_prompt_bank(path: str | Path | None = None) -> PromptBank:
    """Load a prompt bank (code → list of lowercased prompts); ``None`` loads melp's own bank.

    Keys starting with ``_`` (comments such as ``_about``) are ignored.
    """
    if path is None:
        text = resources.files("melp").joinpath("resources", "prompts.json").read_text(encoding="utf-8")
        source = "melp/resources/prompts.json"
    else:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"prompt file {file} not found (expected a JSON mapping code -> prompt or prompts)")
        text, source = file.read_text(encoding="utf-8"), str(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source}: the top level must be a mapping code -> prompt(s), got {type(data).__name__}")
    return {code: _clean(code, value, source) for code, value in data.items() if not code.startswith("_")}


def class_prompts(classes: Sequence[str], bank: PromptBank) -> dict[str, list[str]]:
    """The prompts of each class, matched by name (see the module docstring); raises if any class has none."""
    by_norm: dict[str, str] = {}
    for name in bank:
        by_norm.setdefault(_normalise_key(name), name)
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    for code in classes:
        key = code if code in bank else by_norm.get(_normalise_key(code))
        if key is None:
            missing.append(code)
        else:
            out[code] = bank[key]
    if missing:
        raise KeyError(
            f"no zero-shot prompt for class(es) {missing}; add them to a prompt JSON and pass it with --prompts"
        )
    return out
