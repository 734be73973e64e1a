"""melp.inference: windows of long records, padding or refusal of short ones, lead masking as in pretraining,
zero-shot/report/attention on a micro model, and the encoder-only case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from melp.data.leads import STANDARD_LEADS
from melp.data.transforms import build_transform
from melp.inference import ECGPredictor, InferenceConfig, InferenceError, WindowPolicy, parse_leads, window_starts
from melp.io import ECGRecord
from tests.micro import make_micro_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_model(tmp_path_factory.mktemp("infer"))


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> ECGPredictor:
    return ECGPredictor.from_pretrained(model_dir, config=InferenceConfig(num_beams=2, max_report_length=24))


def record(seconds: float, fs: float = 250.0, *, present: list[str] | None = None, seed: int = 0) -> ECGRecord:
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    t = np.arange(n) / fs
    sig = (np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.5, 1.5, (12, 1)) + 0.05 * rng.normal(size=(12, n))).astype(
        np.float32
    )
    mask = np.array([present is None or lead in present for lead in STANDARD_LEADS])
    sig[~mask] = 0
    return ECGRecord(path=f"rec{seed}.npy", format="npy", signal=sig, fs=fs, leads_present=mask)


def test_window_starts_cover_every_sample() -> None:
    assert window_starts(6000, 1000, 1000) == [0, 1000, 2000, 3000, 4000, 5000]
    assert window_starts(2500, 1000, 1000) == [0, 1000, 1500]
    assert window_starts(1000, 1000, 500) == [0]


def test_sliding_windows_on_a_60_s_record_average_the_window_embeddings(predictor: ECGPredictor) -> None:
    rec = record(60.0)
    emb = predictor.embed(rec)
    assert emb.windows.starts_s.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert emb.windows.length_policy == "windowed"
    # reference: resample the whole record, cut 10 s crops, normalise each, encode one by one
    from melp.data.signal import resample

    at_model = resample(rec.signal.astype(np.float64), rec.fs, 100).astype(np.float32)
    transform = build_transform(normalization=predictor.model.config.normalization)
    latents = []
    with torch.no_grad():
        for k in range(6):
            crop = transform(at_model[:, k * 1000 : (k + 1) * 1000])
            latents.append(predictor.model.encode_ecg(torch.from_numpy(crop)[None])["ecg_latent"][0])
    mean = torch.nn.functional.normalize(torch.stack(latents).mean(0), dim=-1).numpy()
    np.testing.assert_allclose(emb.ecg_latent, mean, atol=1e-5)
    np.testing.assert_allclose(emb.window_latents, torch.stack(latents).numpy(), atol=1e-5)


def test_short_records_are_padded_up_to_the_limit_or_refused(predictor: ECGPredictor) -> None:
    w = predictor.prepare(record(8.5))
    assert w.length_policy == "padded" and w.ecg.shape == (1, 12, 1000)
    assert any("zero-padded by 1.5 s" in p for p in w.problems)
    with pytest.raises(InferenceError, match=r"record is 5\.00 s; the model reads 10 s windows and pads at most 2 s"):
        predictor.prepare(record(5.0))
    strict = ECGPredictor(model=predictor.model, config=InferenceConfig(windows=WindowPolicy(max_windows=3)))
    with pytest.raises(InferenceError, match="more than max_windows=3"):
        strict.prepare(record(60.0))


def test_missing_leads_are_masked_exactly_as_pretraining_masks_them(predictor: ECGPredictor) -> None:
    rec = record(10.0, fs=100.0)
    config = predictor.model.config
    pretrain = build_transform(  # the call pretraining makes (cli/pretrain.py)
        normalization=config.normalization, lead_mask_keep=0.5, mask_value=config.mask_value, seed=3
    )
    reference = pretrain(rec.signal)
    kept = [lead for lead, row in zip(STANDARD_LEADS, reference) if np.ptp(row) > 0]  # masked leads are constant
    assert 0 < len(kept) < 12
    ours = predictor.prepare(rec, leads=kept)
    np.testing.assert_allclose(ours.ecg[0], reference, atol=1e-6)
    assert ours.masked_leads == [lead for lead in STANDARD_LEADS if lead not in kept]
    # leads absent from the file (0 mV, no values) are masked at the same step with the same value
    absent_in_file = predictor.prepare(record(10.0, fs=100.0, present=kept)).ecg[0]
    dropped = [i for i, lead in enumerate(STANDARD_LEADS) if lead not in kept]
    np.testing.assert_array_equal(absent_in_file[dropped], ours.ecg[0][dropped])


def test_parse_leads() -> None:
    assert parse_leads("V1, ii ,I") == ("I", "II", "V1")
    assert parse_leads(None) is None
    with pytest.raises(ValueError, match=r"unknown lead name\(s\) \['X9'\]"):
        parse_leads("I,X9")


def test_predict_end_to_end_is_json_serialisable(predictor: ECGPredictor) -> None:
    pred = predictor.predict(record(12.0, present=["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]))
    out = json.loads(json.dumps(pred.to_dict(with_embedding=True)))
    assert out["model"]["has_text"] is True and len(out["model"]["weights_sha256"]) == 16
    f = out["findings"]
    from melp.data.tasks import get_task

    assert f["available"] and f["codes"] == list(get_task("cpsc2018").classes) and len(f["codes"]) == 9
    assert len(f["scores"]) == 9 and len(f["window_scores"]) == 2
    np.testing.assert_allclose(np.mean(f["window_scores"], axis=0), f["scores"], atol=1e-5)
    assert all(-1 <= s <= 1 for s in f["scores"])
    assert out["report"]["available"] and isinstance(out["report"]["text"], str)
    assert out["readings"]["leads_missing"] == out["readings"]["leads_masked"] == ["III", "aVR", "aVL", "aVF"]
    assert out["readings"]["windows"]["starts_s"] == [0.0, 2.0]
    att = out["attention"]
    if att["available"]:
        n = len(att["frame_times_s"])
        assert all(len(s["attention"]) == n for s in att["sentences"])
        np.testing.assert_allclose([np.mean(s["attention"]) for s in att["sentences"]], 1.0, atol=1e-3)
    free = predictor.predict(record(10.0), labels=["atrial fibrillation", "normal ecg"])
    assert free.findings["labels"] == ["atrial fibrillation", "normal ecg"] and len(free.findings["scores"]) == 2


def test_encoder_only_models_give_embeddings_and_say_why_not_more(predictor: ECGPredictor) -> None:
    model = predictor.model
    tokenizer, model.tokenizer = model.tokenizer, None
    try:
        pred = ECGPredictor(model=model).predict(record(10.0))
    finally:
        model.tokenizer = tokenizer
    assert pred.embedding.ecg_latent.shape == (model.config.embed_dim,)
    assert pred.findings == {"available": False, "reason": pred.findings["reason"]}
    assert "no text side" in pred.findings["reason"] and "no text side" in pred.report["reason"]
