"""The run presets shipped inside the package: ``micro`` (CI), ``tiny`` (CPU demo), ``melp_paper`` (the paper).

Every command that takes a config (``melp pretrain --config``, ``melp demo --preset``) accepts a
preset NAME (``tiny``) or a path to a YAML/TOML/JSON file; :func:`resolve_config` does the lookup.
"""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent


def preset_names() -> list[str]:
    """The names of the shipped presets, sorted (``["melp_paper", "micro", "tiny"]``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of the shipped preset ``name``; ``FileNotFoundError`` naming the known presets."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no preset named {name!r}; shipped presets: {', '.join(preset_names())}")
    return path


def resolve_config(name_or_path: str | Path) -> Path:
    """A config file from a preset name (``tiny``) or a path (``runs/my.yaml``); a path wins when both exist."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    if "/" in text or "\\" in text or path.suffix in {".yaml", ".yml", ".toml", ".json"}:
        raise FileNotFoundError(f"config file {text} not found (or give a preset name: {', '.join(preset_names())})")
    return preset_path(text)
