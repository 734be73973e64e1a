"""The strict config loader: unknown keys and wrong types fail with the key's path; configs round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from melp.config import ConfigError, apply_overrides, config_from_dict, config_to_dict, load_config, save_config


@dataclass
class Inner:
    width: int = 8
    rate: float = 0.5
    names: tuple[str, ...] = ("a", "b")


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    mode: Literal["fp32", "bf16"] = "fp32"
    path: str | None = None
    flag: bool = False


def test_unknown_key_names_its_path() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) in 'inner': \['widht'\]"):
        config_from_dict(Outer, {"inner": {"widht": 3}})


def test_override_types_are_checked() -> None:
    cfg = apply_overrides(Outer(), ["inner.width=16", "inner.rate=1", "mode=bf16", "path=/tmp/x", "flag=true"])
    assert cfg == Outer(inner=Inner(width=16, rate=1.0), mode="bf16", path="/tmp/x", flag=True)
    assert isinstance(cfg.inner.rate, float)
    assert apply_overrides(Outer(), ["inner.rate=1e-4"]).inner.rate == 1e-4  # YAML 1.1 reads this as a string
    with pytest.raises(ConfigError, match=r"inner\.width: expected an integer"):
        apply_overrides(Outer(), ["inner.width=2.5"])
    with pytest.raises(ConfigError, match="not one of"):
        apply_overrides(Outer(), ["mode=fp16"])
    with pytest.raises(ConfigError, match="unknown key 'depth'"):
        apply_overrides(Outer(), ["inner.depth=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides(Outer(), ["mode"])


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_resolved_config_round_trips(tmp_path, suffix: str) -> None:
    cfg = apply_overrides(Outer(), ["inner.names=[x, y, z]", "flag=true"])
    path = tmp_path / f"cfg{suffix}"
    save_config(cfg, path)
    assert load_config(Outer, path) == cfg
    assert config_to_dict(cfg)["inner"]["names"] == ["x", "y", "z"]


def test_toml_file_and_overrides_compose(tmp_path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text('mode = "bf16"\n[inner]\nwidth = 4\n')
    cfg = load_config(Outer, path, ["inner.width=5"])
    assert cfg.mode == "bf16" and cfg.inner.width == 5
