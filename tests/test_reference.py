"""The authors' released MELP encoder: parity with the reference code's own outputs, key accounting, export back.

The fixture (``$MELP_REFERENCE_FIXTURE``, default ``../shared/fixtures/melp-reference``) was made by
running HKU-MedAI/MELP ``ECGFMModel`` on fuying-wang/fairseq-signals at reduced widths; its README
says how each output was computed. Tests that need it skip cleanly where it is absent.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from melp.cli.main import main
from melp.data.leads import STANDARD_LEADS
from melp.data.transforms import build_transform
from melp.models import MELP, MELPConfig
from melp.models.config import DecoderConfig, ECGEncoderConfig
from melp.models.reference import (
    REFERENCE_LEAD_ORDER,
    ReferenceError,
    _drop_reason,
    config_from_reference,
    convert_state_dict,
    export_reference,
    load_reference,
    reference_shapes,
)

from .conftest import REPO

TOL = {"rtol": 1e-5, "atol": 1e-5}
#: rows of a standard-order array that give the reference's (MIMIC) order, and back
TO_MIMIC = [STANDARD_LEADS.index(lead) for lead in REFERENCE_LEAD_ORDER]
TO_STANDARD = [REFERENCE_LEAD_ORDER.index(lead) for lead in STANDARD_LEADS]


def fixture_dir() -> Path:
    return Path(os.environ.get("MELP_REFERENCE_FIXTURE", REPO.parent / "shared" / "fixtures" / "melp-reference"))


@pytest.fixture(scope="module")
def fixture() -> Path:
    path = fixture_dir()
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"reference fixture not found at {path} (set MELP_REFERENCE_FIXTURE)")
    return path


def _melp_outputs(model: MELP, ecg_standard: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every fixture output, computed by melp (module outputs through forward hooks)."""
    enc = model.ecg_encoder
    modules = {
        "module_out.ecg_encoder.ecg_encoder.feature_extractor": enc.feature_extractor,
        "ecg_out.features": enc.layer_norm,
        "module_out.ecg_encoder.ecg_encoder.post_extract_proj": enc.post_extract_proj,
        "module_out.ecg_encoder.ecg_encoder.conv_pos": enc.pos_conv,
        "module_out.ecg_encoder.ecg_encoder.encoder.layer_norm": enc.encoder_norm,
        "module_out.ecg_encoder.attn_pool_contrast": model.beat_pooler,
        "module_out.ecg_encoder.attn_pool_caption": model.caption_pooler,
    }
    modules.update({f"module_out.ecg_encoder.ecg_encoder.encoder.layers.{i}": m for i, m in enumerate(enc.layers)})
    captured: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, k=k: captured.__setitem__(k, o[0] if isinstance(o, tuple) else o))
        for k, m in modules.items()
    ]
    try:
        with torch.no_grad():
            out = model.encode_ecg(ecg_standard)
    finally:
        for h in handles:
            h.remove()
    for key in list(captured):
        if ".encoder.layers." in key:
            captured[key] = captured[key].transpose(0, 1)  # the reference's layers run time first (N, B, C)
    captured.update({
        "ecg_out.x": out["ecg_frames"], "ecg_beat_emb": out["beat_embs"], "proj_ecg_emb": out["beat_embs"].mean(1),
        "ecg_latent": out["ecg_latent"], "ext_ecg_emb": out["probe_emb"], "ecg_token_emb": out["ecg_tokens"],
    })  # fmt: skip
    return captured


@pytest.fixture(scope="module")
def parity(fixture: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    model = MELP.from_reference(fixture)
    ecg = load_file(str(fixture / "inputs.safetensors"))["ecg"]  # (3, 12, 1000), MIMIC order
    return _melp_outputs(model, ecg[:, TO_STANDARD]), load_file(str(fixture / "outputs.safetensors"))


OUTPUTS = [
    "proj_ecg_emb", "ecg_beat_emb", "ecg_token_emb", "ecg_latent", "ext_ecg_emb", "ecg_out.x", "ecg_out.features",
    "module_out.ecg_encoder.ecg_encoder.feature_extractor", "module_out.ecg_encoder.ecg_encoder.post_extract_proj",
    "module_out.ecg_encoder.ecg_encoder.conv_pos", "module_out.ecg_encoder.ecg_encoder.encoder.layer_norm",
    "module_out.ecg_encoder.ecg_encoder.encoder.layers.0", "module_out.ecg_encoder.ecg_encoder.encoder.layers.1",
    "module_out.ecg_encoder.attn_pool_contrast", "module_out.ecg_encoder.attn_pool_caption",
]  # fmt: skip


@pytest.mark.parametrize("name", OUTPUTS)
def test_parity_with_the_reference(name: str, parity: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]) -> None:
    ours, reference = parity
    assert ours[name].shape == reference[name].shape
    torch.testing.assert_close(ours[name], reference[name], **TOL)


def test_every_fixture_output_is_checked(fixture: Path) -> None:
    assert sorted(load_file(str(fixture / "outputs.safetensors"))) == sorted(OUTPUTS)


def test_converted_config_and_input_pipeline(fixture: Path) -> None:
    """Config from the checkpoint (14 beat queries ...); a store-order raw record fed through melp's
    transform gives the reference's scaled input and its outputs."""
    model = MELP.from_reference(fixture)
    c = model.config
    assert (c.n_beat_queries, c.n_caption_queries, c.embed_dim, c.pooler_heads) == (14, 8, 32, 4)
    assert c.lead_order == REFERENCE_LEAD_ORDER and c.normalization == "minmax" and c.ecg_only
    assert not model.has_text and model.text is None and model.decoder is None and model.tokenizer is None
    inputs = load_file(str(fixture / "inputs.safetensors"))
    raw_standard = inputs["ecg_raw"].numpy()[:, TO_STANDARD]  # as a melp store holds it
    scaled = build_transform(normalization=c.normalization)(raw_standard)
    np.testing.assert_allclose(scaled[:, TO_MIMIC], inputs["ecg"].numpy(), rtol=0, atol=1e-6)
    with torch.no_grad():
        latent = model.encode_ecg(torch.from_numpy(scaled))["ecg_latent"]
    torch.testing.assert_close(latent, load_file(str(fixture / "outputs.safetensors"))["ecg_latent"], **TOL)


def test_bf16_kept_on_request(fixture: Path) -> None:
    model = MELP.from_reference(fixture, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_full_size_checkpoint_keys_are_all_accounted_for(fixture: Path) -> None:
    """The released layout (keys-small.json, 180 tensors) on shapes alone (meta tensors, no weights)."""
    spec = json.loads((fixture / "keys-small.json").read_text())
    assert spec["num_tensors"] == len(spec["keys"]) == 180
    config = config_from_reference({**spec["ecgfm_kwargs"], "wav2vec2_config": spec["wav2vec2_config"]})
    assert config.n_beat_queries == 14 and config.ecg.shape().width == 768
    expected = reference_shapes(config)
    for key in spec["keys"]:
        if key["role"] == "pretraining_only":
            assert key["name"] not in expected and _drop_reason(key["name"]), key["name"]
        else:
            assert tuple(expected[key["name"]]) == tuple(key["shape"]), key["name"]
    state = {k["name"]: torch.empty(k["shape"], device="meta") for k in spec["keys"]}
    converted = convert_state_dict(state, config)
    with torch.device("meta"):
        model = MELP(config=config)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }
    n_inference = sum(int(np.prod(k["shape"])) for k in spec["keys"] if k["role"] != "pretraining_only")
    assert sum(p.numel() for p in model.parameters()) == n_inference


def test_unknown_key_and_wrong_shape_are_named(fixture: Path, tmp_path: Path) -> None:
    state = load_file(str(fixture / "model.safetensors"))
    config = config_from_reference(json.loads((fixture / "config.json").read_text()))
    with pytest.raises(ReferenceError, match=r"ecg_encoder\.extra_head\.weight"):
        convert_state_dict({**state, "ecg_encoder.extra_head.weight": torch.zeros(2)}, config)
    bad = "ecg_encoder.ecg_encoder.encoder.layers.1.fc1.weight"
    with pytest.raises(ReferenceError, match=rf"{bad}: shape \(192, 95\)"):
        convert_state_dict({**state, bad: torch.zeros(192, 95)}, config)
    missing = dict(state)
    del missing["ecg_encoder.ln_caption.bias"]
    with pytest.raises(ReferenceError, match=r"lacks 'ecg_encoder\.ln_caption\.bias'"):
        convert_state_dict(missing, config)
    # through the CLI: one line, no traceback
    (tmp_path / "bad").mkdir()
    save_file({**state, "ecg_encoder.extra_head.weight": torch.zeros(2)}, str(tmp_path / "bad" / "model.safetensors"))
    (tmp_path / "bad" / "config.json").write_text((fixture / "config.json").read_text())
    with pytest.raises(SystemExit, match="extra_head"):
        main(["convert-reference", str(tmp_path / "bad"), "--out", str(tmp_path / "out")])


class _NotATensor:
    """A custom class: unpickling it would run arbitrary code, so weights_only refuses."""


def test_pickled_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": _NotATensor()}, path)
    with pytest.raises(ReferenceError, match=r"weights_only=True"):
        load_reference(path)


def test_ckpt_and_bare_safetensors_load(fixture: Path, tmp_path: Path) -> None:
    """A Lightning-style .ckpt of tensors (with the reference's text tower, dropped) loads like the HF dir."""
    state = load_file(str(fixture / "model.safetensors"))
    ckpt = {"state_dict": {**state, "lm_model.bert.embeddings.word_embeddings.weight": torch.zeros(4, 2)}, "epoch": 3}
    torch.save(ckpt, tmp_path / "last.ckpt")
    (tmp_path / "config.json").write_text((fixture / "config.json").read_text())
    reference = MELP.from_reference(fixture).state_dict()
    for source in (tmp_path / "last.ckpt", fixture / "model.safetensors"):
        loaded = load_reference(source).state_dict()
        assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def _ecg_only_config(**kw: object) -> MELPConfig:
    ecg = ECGEncoderConfig(size="micro", width=64, conv_channels=32, heads=4, layers=2, ffn_dim=128)
    base = MELPConfig(
        ecg=ecg, decoder=DecoderConfig(width=64), n_beat_queries=5, n_caption_queries=4, embed_dim=32,
        pooler_heads=4, lead_order=list(REFERENCE_LEAD_ORDER), ecg_only=True,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_round_trip_melp_reference_melp(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MELP(config=_ecg_only_config()).eval()
    model.save_pretrained(tmp_path / "melp")
    assert main(["export-reference", str(tmp_path / "melp"), "--out", str(tmp_path / "ref")]) == 0
    exported = load_file(str(tmp_path / "ref" / "model.safetensors"))
    assert all(k.startswith("ecg_encoder.") for k in exported)
    assert all(_drop_reason(k) for k in exported if k not in reference_shapes(model.config))
    assert main(["convert-reference", str(tmp_path / "ref"), "--out", str(tmp_path / "back")]) == 0
    back = MELP.from_pretrained(tmp_path / "back")
    assert back.config.ecg.shape() == model.config.ecg.shape()  # the preset name is not part of the reference's
    assert replace(back.config, ecg=model.config.ecg) == model.config
    ours, theirs = model.state_dict(), back.state_dict()
    assert sorted(ours) == sorted(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.rand(2, 12, 320)
    with torch.no_grad():
        torch.testing.assert_close(back.encode_ecg(x)["ecg_latent"], model.encode_ecg(x)["ecg_latent"], rtol=0, atol=0)


def test_a_wider_conv_kernel_is_not_exported(tmp_path: Path) -> None:
    config = _ecg_only_config()
    config.ecg.conv_kernel = 4
    with pytest.raises(ReferenceError, match="conv_kernel=4"):
        export_reference(MELP(config=config), tmp_path)


def test_export_of_the_fixture_reproduces_its_keys(fixture: Path, tmp_path: Path) -> None:
    """Converted then exported: every inference tensor equals the authors' file, every key is present."""
    export_reference(MELP.from_reference(fixture), tmp_path)
    original, exported = load_file(str(fixture / "model.safetensors")), load_file(str(tmp_path / "model.safetensors"))
    shapes = reference_shapes(config_from_reference(json.loads((fixture / "config.json").read_text())))
    assert set(shapes) <= set(exported)
    assert all(torch.equal(original[k], exported[k]) for k in shapes)


def test_encoder_only_model_contract(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MELP(config=_ecg_only_config()).eval()
    assert not model.has_text and model.text is None and model.decoder is None and model.tokenizer is None
    x = torch.rand(2, 12, 320)
    out = model.encode_ecg(x)
    assert out["ecg_latent"].shape == (2, 32) and out["beat_embs"].shape == (2, 5, 32)
    ids = torch.ones(2, 4, dtype=torch.long)
    for call in (lambda: model.encode_text(ids, ids), lambda: model.generate(x), lambda: model(ecg=x, input_ids=ids, attention_mask=ids)):  # fmt: skip
        with pytest.raises(ValueError, match=r"needs a text tower"):
            call()
    model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "tokenizer_config.json").exists()
    loaded = MELP.from_pretrained(tmp_path / "m")
    assert not loaded.has_text and loaded.config == model.config
    torch.testing.assert_close(loaded.encode_ecg(x)["ecg_latent"], out["ecg_latent"])


def test_lead_order_is_applied_inside_the_model() -> None:
    """A model whose weights read MIMIC order, fed a standard-order batch, equals the same weights in a
    standard-order model fed the rows permuted by hand."""
    torch.manual_seed(0)
    mimic = MELP(config=_ecg_only_config()).eval()
    standard = MELP(config=_ecg_only_config(lead_order=list(STANDARD_LEADS))).eval()
    standard.load_state_dict(mimic.state_dict())
    x = torch.rand(2, 12, 320)
    with torch.no_grad():
        torch.testing.assert_close(mimic.encode_ecg(x)["probe_emb"], standard.encode_ecg(x[:, TO_MIMIC])["probe_emb"])
    with pytest.raises(ValueError, match="lead_order"):
        MELP(config=_ecg_only_config(lead_order=["I"] * 12))


@pytest.mark.slow
def test_probe_and_eval_suite_with_an_encoder_only_model(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    store, _ = micro_model
    torch.manual_seed(0)
    MELP(config=_ecg_only_config(fs=100)).save_pretrained(tmp_path / "enc")
    common = ["--train", f"{store}:train", "--val", f"{store}:val", "--test", f"{store}:test", "--split-scheme",
              "patient", "--fractions", "1.0", "--bootstrap", "20", "--no-progress"]  # fmt: skip
    assert main(["probe", "--model", str(tmp_path / "enc"), *common, "--out", str(tmp_path / "probe.json")]) == 0
    result = json.loads((tmp_path / "probe.json").read_text())
    assert result["config"]["protocol"] == "linear_probe" and 0.0 <= result["metrics"]["macro_auroc"] <= 1.0
    assert main(["eval-suite", "--model", str(tmp_path / "enc"), *common, "--out-dir", str(tmp_path / "suite")]) == 0
    suite = json.loads((tmp_path / "suite" / "results.json").read_text())
    protocols = {r["config"]["protocol"] for r in suite["results"]}
    assert "linear_probe" in protocols and not protocols & {"zeroshot", "retrieval", "generation"}
    assert {s["protocol"] for s in suite["config"]["skipped"]} == {"zeroshot", "retrieval", "generation"}
    assert "no text tower" in (tmp_path / "suite" / "results.md").read_text()
    with pytest.raises(SystemExit, match="ECG-only"):
        main(["zeroshot", "--model", str(tmp_path / "enc"), "--test", f"{store}:test", "--no-progress",
              "--out", str(tmp_path / "zs.json")])  # fmt: skip


def test_pretrain_attaches_a_text_tower_to_a_converted_ecg_tower(
    micro_model: tuple[Path, Path], tmp_path: Path
) -> None:
    """``melp pretrain --init-ecg``: the ECG side starts as the ECG-only model's, the text side is new."""
    from melp.cli.pretrain import build_pretrainer
    from melp.configs import resolve_config
    from melp.models.melp import TEXT_TOWER_PREFIXES, ecg_side_config
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    store, _ = micro_model
    text = store.parent / "text"
    torch.manual_seed(0)
    encoder = MELP(config=_ecg_only_config(fs=100)).eval()
    encoder.save_pretrained(tmp_path / "enc")
    cfg = load_pretrain_config(resolve_config("micro"), ["training.max_steps=1"])
    cfg = replace(cfg, model=ecg_side_config(cfg.model, encoder.config))
    trainer = build_pretrainer(
        cfg, train=[str(store)], val=[], text_model=str(text), run_dir=tmp_path / "run",
        env=init_distributed(device="cpu"), init_ecg=encoder,
    )  # fmt: skip
    model = trainer.model
    assert model.has_text and model.config.lead_order == REFERENCE_LEAD_ORDER
    ours, init = model.state_dict(), encoder.state_dict()
    assert all(torch.equal(ours[k], init[k]) for k in init)
    assert any(k.startswith(TEXT_TOWER_PREFIXES) for k in ours)
    args = ["pretrain", "--config", "micro", "--train", str(store), "--text-model", str(text), "--init-ecg",
            str(tmp_path / "enc"), "--out", str(tmp_path / "cli"), "--device", "cpu", "training.max_steps=1"]  # fmt: skip
    assert main(args) == 0
    final = MELP.from_pretrained(tmp_path / "cli" / "final")
    assert final.has_text and final.config.n_beat_queries == 5 and final.config.lead_order == REFERENCE_LEAD_ORDER
