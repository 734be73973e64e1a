"""Typed dataclass configs: strict loading from YAML/TOML/JSON, dotted CLI overrides, round-trips.

Every run saves its resolved config. Unknown keys and values of the wrong type fail loudly with
the dotted path of the offending key (the discipline of nanoGPT's configurator and dinov2's
``utils/config.py``, without ``exec``).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override does not match the config's schema."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int → float, list → tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if _is_dataclass_type(tp):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = config_to_dict(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return config_from_dict(tp, value, prefix=where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):
            value = _parse_float(value, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _parse_float(text: str, where: str) -> float:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; accept such numbers for float fields."""
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {text!r}") from None


def config_from_dict(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in '{prefix}'" if prefix else ""
        raise ConfigError(f"unknown config key(s){where}: {unknown}; valid keys: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, JSON/YAML-serialisable dict of a (nested) dataclass config; tuples become lists."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into its key path and a YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied and type-checked."""
    data = config_to_dict(cfg)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {text!r}: '{'.'.join(path[: i + 1])}' is not a config section")
            node = node[part]
        if path[-1] not in node:
            section = ".".join(path[:-1]) or "<root>"
            raise ConfigError(f"override {text!r}: unknown key '{path[-1]}' in {section}; valid keys: {sorted(node)}")
        node[path[-1]] = value
    return config_from_dict(type(cfg), data)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON mapping."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        data = tomllib.loads(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls`` ← file at ``path`` ← dotted ``overrides``."""
    cfg = config_from_dict(cls, read_config_file(path)) if path is not None else cls()
    return apply_overrides(cfg, overrides or [])


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
    path = Path(path)
    data = config_to_dict(cfg)
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
