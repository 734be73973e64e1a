"""End-to-end evaluation commands: `melp probe` on real PTB-XL records, and CLI smoke tests on a synthetic store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from melp.cli.main import main
from melp.data import open_store


def _run(argv: list[str]) -> None:
    assert main([*argv, "--no-progress"]) == 0


@pytest.fixture(scope="module")
def ptbxl_stores(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Stores from the PTB-XL subset's MELP split files at 100 Hz (train limited to 200 records for speed)."""
    root = shared_data / "ptbxl-subset"
    out = tmp_path_factory.mktemp("ptbxl")
    stores = []
    for name, limit in (("train", ["--limit", "200"]), ("val", [])):
        store = out / name
        argv = ["prepare", "ptbxl", "--root", str(root), "--split-csv", str(root / f"ptbxl_super_class_{name}.csv")]
        assert main([*argv, "--fs", "100", "--out", str(store), "--no-progress", *limit]) == 0
        stores.append(store)
    return stores[0], stores[1]


@pytest.mark.realdata
@pytest.mark.slow
def test_probe_on_real_ptbxl_with_random_tiny_encoder(ptbxl_stores: tuple[Path, Path], tmp_path: Path) -> None:
    train, val = ptbxl_stores
    out, scores = tmp_path / "probe.json", tmp_path / "scores.csv"
    _run([
        "probe", "--model", "random", "--size", "tiny", "--task", "ptbxl_super",
        "--train", f"{train}:train", "--val", f"{train}:val", "--split-scheme", "patient", "--test", str(val),
        "--fractions", "1.0", "--bootstrap", "200", "--out", str(out), "--save-scores", str(scores), "--no-cache",
    ])  # fmt: skip
    result = json.loads(out.read_text())
    assert result["task"] == "ptbxl_super" and result["model"] == "random-tiny"
    assert set(result["per_class"]) == {"HYP", "NORM", "MI", "CD", "STTC"}
    auroc = result["metrics"]["macro_auroc"]
    lo, hi = result["ci95"]["macro_auroc"]
    assert 0.0 <= lo <= auroc <= hi <= 1.0
    for code, entry in result["per_class"].items():
        assert entry["n_pos"] > 0, code
        assert 0.0 <= entry["ci95"][0] <= entry["auroc"] <= entry["ci95"][1] <= 1.0, code
    assert result["bootstrap"]["n_valid"] == 200
    assert (tmp_path / "probe.md").read_text().count("macro_auroc") == 1
    table = pd.read_csv(scores)
    store = open_store(val)
    assert list(table.columns) == ["id", "labels", "HYP", "NORM", "MI", "CD", "STTC"]
    assert table["id"].astype(str).tolist() == store.meta["id"].astype(str).tolist()
    first = sorted(str(table["labels"][0]).split(";"))
    assert first == sorted(c for c in store.meta["labels_super"][0] if c in {"HYP", "NORM", "MI", "CD", "STTC"})


def test_zeroshot_retrieve_generate_smoke(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    store, model = micro_model
    common = ["--bootstrap", "50", "--cache-dir", str(tmp_path / "cache")]
    _run(["zeroshot", "--model", str(model), "--test", str(store), "--out", str(tmp_path / "zs.json"),
          "--save-scores", str(tmp_path / "zs.csv"), *common])  # fmt: skip
    zs = json.loads((tmp_path / "zs.json").read_text())
    assert zs["task"] == "synthetic" and len(zs["per_class"]) == 20
    assert all(e["auroc"] is None or 0.0 <= e["auroc"] <= 1.0 for e in zs["per_class"].values())
    scores = pd.read_csv(tmp_path / "zs.csv")
    assert scores.shape == (40, 22) and np.isfinite(scores.iloc[:, 2:].to_numpy()).all()
    assert (scores.iloc[:, 2:].abs() <= 1.0 + 1e-6).all().all()  # cosine scores

    _run(["retrieve", "--model", str(model), "--test", str(store), "--out", str(tmp_path / "ret.json"), *common])
    ret = json.loads((tmp_path / "ret.json").read_text())["metrics"]
    assert 0.0 <= ret["ecg2text_R@1"] <= ret["ecg2text_R@5"] <= ret["ecg2text_R@10"] <= 1.0
    assert ret["n_records"] == 40 and 1 <= ret["ecg2text_median_rank"] <= 40

    _run(["generate", "--model", str(model), "--test", str(store), "--limit", "3", "--method", "greedy", "--max-length", "12",
          "--out", str(tmp_path / "gen.json"), "--save-reports", str(tmp_path / "gen.jsonl"), *common])  # fmt: skip
    gen = json.loads((tmp_path / "gen.json").read_text())["metrics"]
    assert gen["n_records"] == 3 and 0.0 <= gen["bleu4"] <= 1.0 and 0.0 <= gen["clinical_micro_f1"] <= 1.0
    assert len((tmp_path / "gen.jsonl").read_text().splitlines()) == 3


def test_random_baseline_without_text_side_refuses_zero_shot(micro_model: tuple[Path, Path]) -> None:
    store, _ = micro_model
    with pytest.raises(SystemExit, match="--text-from"):
        main(["zeroshot", "--model", "random", "--size", "micro", "--test", str(store), "--no-cache", "--no-progress"])


def test_random_baseline_shares_the_text_side_only(micro_model: tuple[Path, Path]) -> None:
    from melp.eval.random_baseline import load_eval_model

    _, model_dir = micro_model
    trained = load_eval_model(str(model_dir)).model.state_dict()
    baseline = load_eval_model("random", size="micro", seed=0, text_from=model_dir).model.state_dict()
    again = load_eval_model("random", size="micro", seed=0, text_from=model_dir).model.state_dict()
    assert all(torch.equal(baseline[k], trained[k]) for k in trained if k.startswith(("text.", "decoder.")))
    assert not torch.equal(baseline["beat_proj"], trained["beat_proj"])
    assert all(torch.equal(baseline[k], again[k]) for k in baseline)  # seeded


def test_eval_suite_writes_one_combined_table(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    store, model = micro_model
    _run(["eval-suite", "--model", str(model), "--train", f"{store}:train", "--val", f"{store}:val", "--test", f"{store}:test",
          "--split-scheme", "patient", "--fractions", "1.0", "--generate-limit", "2", "--method", "greedy",
          "--bootstrap", "20", "--out-dir", str(tmp_path / "suite")])  # fmt: skip
    results = json.loads((tmp_path / "suite" / "results.json").read_text())["results"]
    protocols = [(r["config"]["protocol"], r["model"]) for r in results]
    for model_name in ("model", "random-micro"):
        for protocol in ("zeroshot", "linear_probe", "logistic_probe", "retrieval", "generation"):
            assert (protocol, model_name) in protocols
    table = (tmp_path / "suite" / "results.md").read_text()
    assert "| model | random-micro |" in table


def test_finetune_layer_decay_and_smoke(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    from melp.eval.finetune import ECGClassifier, FinetuneConfig, param_groups
    from melp.eval.random_baseline import load_eval_model

    em = load_eval_model("random", size="micro", seed=0)
    clf = ECGClassifier(model=em.model, n_classes=3, embed_dim=em.model.config.embed_dim)
    groups = param_groups(clf, FinetuneConfig(lr=1.0, layer_decay=0.5))
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    n_layers = len(em.model.ecg_encoder.layers)  # micro: 2 → stem 0.125, layer 0 0.25, layer 1 0.5, head 1
    assert lr_of[id(clf.head.weight)] == 1.0
    assert lr_of[id(next(em.model.ecg_encoder.layers[n_layers - 1].parameters()))] == 0.5
    assert lr_of[id(next(em.model.ecg_encoder.layers[0].parameters()))] == 0.25
    assert lr_of[id(next(em.model.ecg_encoder.feature_extractor.parameters()))] == 0.125
    assert not em.model.text.bert.embeddings.word_embeddings.weight.requires_grad  # text side untouched

    store, model = micro_model
    _run(["finetune", "--model", str(model), "--train", f"{store}:train", "--val", f"{store}:val", "--test", f"{store}:test",
          "--split-scheme", "patient", "--epochs", "1", "--train-batch-size", "8", "--bootstrap", "20",
          "--out", str(tmp_path / "ft.json")])  # fmt: skip
    result = json.loads((tmp_path / "ft.json").read_text())
    assert result["config"]["protocol"] == "finetune" and result["config"]["epochs_run"] == 1


@pytest.mark.parametrize("command", ["zeroshot", "probe", "finetune", "retrieve", "generate", "eval-suite"])
def test_help_renders(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out


def test_probe_without_val_carves_a_patient_wise_validation_split(
    micro_model: tuple[Path, Path], tmp_path: Path
) -> None:
    store, model = micro_model
    out = tmp_path / "probe.json"
    _run(["probe", "--model", str(model), "--train", str(store), "--test", f"{store}:test", "--head", "logreg",
          "--split-scheme", "patient", "--fractions", "1.0", "--bootstrap", "20", "--out", str(out)])  # fmt: skip
    config = json.loads(out.read_text())["config"]
    assert config["train"].endswith(":train") and config["val"].endswith(":val")
    assert config["protocol"] == "logistic_probe" and config["c"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    with pytest.raises(SystemExit, match="names a split already"):
        _run(
            ["probe", "--model", str(model), "--train", f"{store}:train", "--test", f"{store}:test", "--out", str(out)]
        )


def test_a_store_named_like_a_split_is_a_path(
    micro_model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from melp.eval.runs import Settings, select

    store, _ = micro_model
    monkeypatch.chdir(tmp_path)
    Path("val").symlink_to(store)
    settings = Settings(cache_dir=None, progress=False)
    assert len(select("val", settings).indices) == len(open_store(store))  # the store ./val, not a split of "."
    assert 0 < len(select("val:test", settings).indices) < len(open_store(store))
