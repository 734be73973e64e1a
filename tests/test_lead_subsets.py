"""Lead-subset evaluation (`--leads`): the eval protocols mask the other leads exactly as `melp predict` does,
which masks them as pretraining masks dropped leads (tests/test_inference.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melp.cli.main import main
from melp.data import open_store
from melp.inference import ECGPredictor
from melp.io import ECGRecord
from tests.test_inference import make_micro_model


@pytest.fixture(scope="module")
def store_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("leads")
    assert main(["synth", "--n", "24", "--out", str(out / "store"), "--seed", "5", "--fs", "100"]) == 0
    return out / "store", make_micro_model(out)


def test_eval_embeddings_on_a_lead_subset_match_predict(store_and_model: tuple[Path, Path]) -> None:
    from melp.eval.random_baseline import load_eval_model
    from melp.eval.runs import Settings, embed, select

    store_path, model_dir = store_and_model
    em = load_eval_model(str(model_dir))
    predictor = ECGPredictor(model=em.model)
    store = open_store(store_path)
    for leads in (("I",), ("I", "II", "V1"), ("I", "II", "III", "aVR", "aVL", "aVF")):
        settings = Settings(cache_dir=None, progress=False, leads=leads, batch_size=8)
        sel = select(str(store_path), settings)
        assert sel.name.endswith(f"[leads {','.join(leads)}]")
        latents = embed(em, sel, settings, keys=("ecg_latent",))["ecg_latent"]
        for i in (0, 7):
            rec = ECGRecord(path="x", format="store", signal=np.asarray(store.signals[i], np.float32),
                            fs=float(store.fs), leads_present=np.ones(12, bool))  # fmt: skip
            expected = predictor.embed(rec, leads=leads).window_latents[0]
            np.testing.assert_allclose(latents[i], expected, atol=1e-5)
    full = embed(
        em, select(str(store_path), Settings(cache_dir=None, progress=False)), Settings(), keys=("ecg_latent",)
    )
    assert not np.allclose(full["ecg_latent"], latents)


def test_zeroshot_cli_on_a_lead_subset(store_and_model: tuple[Path, Path], tmp_path: Path) -> None:
    store, model = store_and_model
    out = tmp_path / "z.json"
    assert main(["zeroshot", "--model", str(model), "--test", str(store), "--out", str(out), "--leads", "II",
                 "--bootstrap", "0", "--no-cache", "--no-progress"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["dataset"].endswith("[leads II]") and "macro_auroc" in result["metrics"]
    with pytest.raises(SystemExit, match=r"unknown lead name\(s\) \['V9'\]"):
        main(["zeroshot", "--model", str(model), "--test", str(store), "--leads", "V9", "--no-cache"])
