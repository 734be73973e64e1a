"""The model card of ``GET /api/model``: who the model is, how it was built and trained, which preset it matches.

Training data come from the run's resolved config (``run_config.yaml``) where the model
directory or its run keeps one (``RUN/checkpoints/*/run_config.yaml``); otherwise the card says
that the directory does not record them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from melp.config import config_to_dict

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.yaml"


def find_run_config(model_dir: Path) -> Path | None:
    """``run_config.yaml`` beside the weights, else in the newest checkpoint of the run that holds them."""
    here = model_dir / RUN_CONFIG_FILE
    if here.is_file():
        return here
    checkpoints = sorted((model_dir.parent / "checkpoints").glob(f"*/{RUN_CONFIG_FILE}"))
    return checkpoints[-1] if checkpoints else None


def _training(model_dir: Path | None) -> dict[str, Any]:
    if model_dir is None:
        return {"recorded": False, "reason": "the model was not loaded from a directory"}
    path = find_run_config(model_dir)
    if path is None:
        return {"recorded": False, "reason": f"no {RUN_CONFIG_FILE} beside the model or in its run's checkpoints"}
    try:
        run = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return {"recorded": False, "reason": f"{path.name} unreadable: {exc}"}
    keep = {k: run[k] for k in ("data", "training", "optim", "schedule") if k in run}
    return {"recorded": True, "source": f"{path.parent.name}/{path.name}", **keep}


def matching_preset(config: Any) -> str | None:
    """The shipped preset whose model section has this model's ECG size, widths, rate and decoder, if any."""
    from melp.configs import preset_names, preset_path
    from melp.train.config import load_pretrain_config

    def key(c: Any) -> tuple[Any, ...]:
        return (c.ecg.size, c.embed_dim, c.fs, c.decoder.layers, c.decoder.width, c.n_beat_queries)

    for name in preset_names():
        try:
            if key(load_pretrain_config(preset_path(name)).model) == key(config):
                return name
        except (OSError, ValueError, TypeError) as exc:
            logger.debug("preset %s not comparable: %s", name, exc)
    return None


def model_card(predictor: Any, *, backend: dict[str, Any], task: str) -> dict[str, Any]:
    """Identity, full config, training data, presets, zero-shot defaults and the backend of ``predictor``'s model."""
    from melp.configs import preset_names

    model = predictor.model
    config = config_to_dict(model.config)
    identity = dict(predictor.model_info())
    model_dir = Path(identity["model_dir"]) if identity.get("model_dir") else None
    identity["model_dir"] = model_dir.name if model_dir is not None else None
    return {
        "identity": identity,
        "config": config,
        "training": _training(model_dir),
        "presets": {"shipped": preset_names(), "matches": matching_preset(model.config)},
        "zero_shot": {"default_task": task, "available": predictor.has_text},
        "report_generation": {
            "available": predictor.has_text,
            "method": "beam",
            "num_beams": predictor.config.num_beams,
            "max_length": predictor.config.max_report_length,
        },
        "backend": backend,
    }
