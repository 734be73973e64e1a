"""melp export-onnx: the ECG tower in ONNX Runtime matches PyTorch within 1e-4, and serve can run on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from melp.cli.main import main
from melp.models import MELP
from melp.serve.config import ONNX_FILE, ServeConfig
from melp.serve.onnx_tower import OUTPUTS, OnnxTower, OnnxTowerModel
from melp.serve.service import PredictionService
from tests.test_serve_api import make_micro_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = make_micro_model(tmp_path_factory.mktemp("onnx"))
    assert main(["export-onnx", "--model", str(model_dir)]) == 0
    return model_dir


def test_tower_parity_with_pytorch(exported: Path) -> None:
    model = MELP.from_pretrained(exported)
    tower = OnnxTower(path=exported / ONNX_FILE)
    x = torch.rand(5, 12, 1000, generator=torch.Generator().manual_seed(1))  # another batch size than the export's
    with torch.no_grad():
        ref = model.encode_ecg(x, with_attention=True)
    got = tower.run(x.numpy())
    for key in OUTPUTS:
        assert got[key].shape == tuple(ref[key].shape), key
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-4, rtol=0)


def test_generation_on_the_onnx_tower_matches(exported: Path) -> None:
    model = MELP.from_pretrained(exported)
    wrapped = OnnxTowerModel(model=model, tower=OnnxTower(path=exported / ONNX_FILE))
    x = torch.rand(1, 12, 1000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(
            model.generate(x, num_beams=2, max_length=16), wrapped.generate(x, num_beams=2, max_length=16)
        )


def test_tower_checks_its_input(exported: Path) -> None:
    tower = OnnxTower(path=exported / ONNX_FILE)
    with pytest.raises(ValueError, match="shape"):
        tower.run(np.zeros((1, 12, 999), dtype=np.float32))
    bad = np.zeros((1, 12, 1000), dtype=np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tower.run(bad)


def test_serve_refuses_a_tower_of_other_weights(exported: Path, tmp_path: Path) -> None:
    model = MELP.from_pretrained(exported)
    with torch.no_grad():
        model.logit_scale.add_(0.1)
    other = model.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="other weights"):
        PredictionService.load(ServeConfig(model_dir=other, backend="onnx", onnx_path=exported / ONNX_FILE))


def test_serve_on_onnx_backend(exported: Path) -> None:
    service = PredictionService.load(ServeConfig(model_dir=exported, backend="onnx"))
    assert service.backend["name"] == "onnx" and set(service.backend["timings_ms"]) == {"torch", "onnx"}
    auto = PredictionService.load(ServeConfig(model_dir=exported, backend="auto"))
    timings = auto.backend["timings_ms"]
    assert auto.backend["name"] == min(timings, key=timings.get)
    card = json.dumps(service.model_card())
    assert '"onnx"' in card


def test_export_cli_errors_are_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["export-onnx", "--model", str(tmp_path)]) == 2
    assert "neither a saved model" in caplog.text


@pytest.mark.slow
def test_dynamo_exporter_parity(exported: Path, tmp_path: Path) -> None:
    """The torch.export-based exporter gives the same tower (about 40 s on 2 cores, hence slow)."""
    out = tmp_path / "dynamo.onnx"
    assert main(["export-onnx", "--model", str(exported), "--out", str(out), "--exporter", "dynamo"]) == 0
    model = MELP.from_pretrained(exported)
    x = torch.rand(3, 12, 1000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model.encode_ecg(x, with_attention=True)
    got = OnnxTower(path=out).run(x.numpy())
    for key in OUTPUTS:
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-4, rtol=0)
