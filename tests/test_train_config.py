"""The pretraining run config: strict keys and types, range checks, presets that load and round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from melp.config import ConfigError, config_to_dict, load_config, save_config
from melp.configs import preset_path
from melp.train.config import PretrainConfig, TextPretrainConfig, load_pretrain_config

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("micro", "tiny", "melp_paper")


def test_defaults_are_the_papers_hyperparameters() -> None:
    cfg = PretrainConfig()
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas, cfg.optim.eps) == (2e-4, 0.2, (0.9, 0.95), 1e-8)
    assert (cfg.loss.clip_weight, cfg.loss.caption_weight, cfg.loss.local_weight) == (1.0, 2.0, 0.2)
    assert cfg.data.lead_mask_keep == 0.5 and cfg.training.seed == 42
    assert cfg.optim.decay_norms_and_biases is False


def test_unknown_key_in_file_fails_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) in 'training': \['epoch'\]"):
        load_pretrain_config(path)


def test_unknown_nested_model_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  ecg:\n    sise: tiny\n")
    with pytest.raises(ConfigError, match=r"model\.ecg"):
        load_pretrain_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs=abc", "training.epochs: expected an integer"),
        ("training.epochs=2.5", "training.epochs: expected an integer"),
        ("optim.lr=fast", "optim.lr: expected a number"),
        ("training.precision=fp16", r"training.precision: 'fp16' is not one of \['fp32', 'bf16'\]"),
        ("optim.betas=[0.9]", "optim.betas: expected 2 items"),
        ("training.compile=1", "training.compile: expected true/false"),
        ("training.nope=1", "unknown key 'nope' in training"),
        ("model.ecg.size=huge", r"model.ecg.size: 'huge' is not one of"),
    ],
)
def test_override_types_are_checked(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pretrain_config(None, [override])


def test_overrides_convert_losslessly() -> None:
    cfg = load_pretrain_config(None, ["optim.lr=1", "optim.betas=[0.8, 0.9]", "data.lead_mask_keep=null"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == (0.8, 0.9)
    assert cfg.data.lead_mask_keep is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size must be >= 1"),
        ("schedule.min_lr=1.0", r"schedule.min_lr must lie in \[0, optim.lr\]"),
        ("data.lead_mask_keep=0", r"data.lead_mask_keep must lie in \(0, 1\]"),
        ("training.grad_accum=0", "training.grad_accum must be >= 1"),
    ],
)
def test_out_of_range_values_fail(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_pretrain_config(None, [override])


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_and_round_trip(preset: str, tmp_path: Path) -> None:
    cfg = load_pretrain_config(preset_path(preset), ["training.max_steps=7"])
    assert cfg.training.max_steps == 7
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_pretrain_config(tmp_path / "resolved.yaml")
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)


def test_paper_preset_matches_the_paper() -> None:
    cfg = load_pretrain_config(preset_path("melp_paper"))
    assert cfg.model.ecg.size == "small" and cfg.model.text.n_frozen_layers == 6
    assert cfg.data.batch_size == 64 and cfg.training.precision == "bf16" and cfg.training.epochs == 100
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas) == (2e-4, 0.2, (0.9, 0.95))
    assert cfg.training.early_stopping_patience == 5 and (cfg.model.fs, cfg.model.seconds) == (500, 10.0)


def test_text_config_is_strict_and_round_trips(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'layers'"):
        load_config(TextPretrainConfig, None, ["layers=3"])
    cfg = load_config(TextPretrainConfig, None, ["size=micro", "extra_text=[a.txt]"])
    save_config(cfg, tmp_path / "text.yaml")
    assert load_config(TextPretrainConfig, tmp_path / "text.yaml") == cfg


def test_presets_ship_in_the_package_and_resolve_by_name_or_path(tmp_path: Path) -> None:
    from melp.configs import preset_names, resolve_config

    assert {"micro", "tiny", "melp_paper"} <= set(preset_names())
    assert resolve_config("tiny") == preset_path("tiny")
    own = tmp_path / "mine.yaml"
    own.write_text("training:\n  max_steps: 3\n", encoding="utf-8")
    assert resolve_config(str(own)) == own
    with pytest.raises(FileNotFoundError, match="no preset named 'tinyy'; shipped presets: melp_paper, micro, tiny"):
        resolve_config("tinyy")
    with pytest.raises(FileNotFoundError, match=r"config file .*absent\.yaml not found"):
        resolve_config(tmp_path / "absent.yaml")
