"""melp serve's HTTP API on a micro model: every shared sample format uploads and returns a well-formed result,
every bad upload gets its 4xx and one-line message, concurrent requests keep their own results, nothing stays on disk."""

from __future__ import annotations

import io
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from melp.data.leads import STANDARD_LEADS
from melp.serve import PredictionService, ServeConfig, create_app
from tests import micro

FORMAT_SAMPLES = {
    "muse": "musePHI_muse_ecg2.xml",
    "aecg": "CVRG_hl7aecg-Example2.xml",
    "philips": "2020-5-18_15-48-11.xml",
}


def make_micro_model(out: Path) -> Path:
    """The shared micro model with reports of at most 32 tokens (short beam searches keep the API tests fast)."""
    return micro.make_micro_model(out, text_max_length=32)


def make_client(model_dir: Path, **overrides: Any) -> TestClient:
    config = ServeConfig(model_dir=model_dir, backend="torch", max_upload_mb=2.0, **overrides)
    service = PredictionService.load(config)
    service.predictor.config = replace(service.predictor.config, max_report_length=24, num_beams=2)
    return TestClient(create_app(service))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_model(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def client(model_dir: Path) -> TestClient:
    return make_client(model_dir)


def upload(client: TestClient, *paths: Path, **form: Any) -> Any:
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    return client.post("/api/predict", files=files, data={k: str(v) for k, v in form.items()})


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def check_result(body: dict[str, Any], *, fmt: str, name: str) -> None:
    reading = body["readings"]
    assert reading["format"] == fmt and reading["path"] == name
    assert reading["fs"] > 0 and reading["duration_s"] > 0
    assert sorted(reading["leads_found"] + reading["leads_missing"]) == sorted(STANDARD_LEADS)
    findings = body["findings"]
    assert findings["available"] and len(findings["ranked"]) == len(findings["labels"]) == 9  # CPSC 2018 classes
    scores = [r["score"] for r in findings["ranked"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    assert body["report"]["available"] and isinstance(body["report"]["text"], str)
    attention = body["attention"]
    if attention["available"]:
        n_frames = len(attention["frame_times_s"])
        assert n_frames == 1000 // 16  # 10 s at 100 Hz, 16 samples per frame
        for sentence in attention["sentences"]:
            assert len(sentence["attention"]) == n_frames
            assert abs(np.mean(sentence["attention"]) - 1.0) < 1e-2  # relative to uniform
            assert set(sentence["beats_s"]) <= set(attention["beats_s"])
    signal = body["signal"]
    assert signal["lead_names"] == list(STANDARD_LEADS) and signal["fs"] <= 250
    for lead, values in zip(STANDARD_LEADS, signal["leads"]):
        assert (values is None) == (lead in reading["leads_missing"])
        if values is not None:
            assert len(values) == round(signal["duration_s"] * signal["fs"])
    assert body["model"]["backend"] == "torch" and body["model"]["has_text"]
    assert body["embedding"]["dim"] == len(body["embedding"]["ecg_latent"]) == 64


@pytest.mark.parametrize("fmt", sorted(FORMAT_SAMPLES))
def test_each_xml_format_uploads(client: TestClient, shared_data: Path, fmt: str) -> None:
    path = shared_data / "ecg-formats" / FORMAT_SAMPLES[fmt]
    res = upload(client, path)
    assert res.status_code == 200, res.text
    check_result(res.json(), fmt=fmt, name=path.name)


def test_muse_derives_limb_leads_and_says_so(client: TestClient, shared_data: Path) -> None:
    body = upload(client, shared_data / "ecg-formats" / FORMAT_SAMPLES["muse"]).json()
    assert body["readings"]["leads_derived"] == ["III", "aVR", "aVL", "aVF"]
    assert any("derived" in p for p in body["readings"]["problems"])


def test_wfdb_record_uploads_as_header_and_signal(client: TestClient, shared_data: Path) -> None:
    folder = shared_data / "ecg-records" / "cinc2021"
    res = upload(client, folder / "E07500.hea", folder / "E07500.mat")
    assert res.status_code == 200, res.text
    body = res.json()
    check_result(body, fmt="wfdb", name="E07500.hea")
    assert body["readings"]["fs"] == 500 and body["readings"]["duration_s"] == 10
    assert body["signal"]["fs"] == 250 and len(body["signal"]["leads"][0]) == 2500


def test_own_labels_are_scored_and_ranked(client: TestClient, shared_data: Path) -> None:
    path = shared_data / "ecg-formats" / FORMAT_SAMPLES["aecg"]
    body = upload(client, path, labels="atrial fibrillation, sinus rhythm\nsinus rhythm", report="false").json()
    custom = [r for r in body["findings"]["ranked"] if r["custom"]]
    assert [r["label"] for r in sorted(custom, key=lambda r: r["label"])] == ["atrial fibrillation", "sinus rhythm"]
    assert not body["report"]["available"]  # scores only: no report generated


@pytest.mark.parametrize(
    ("name", "content", "form", "status", "message"),
    [
        ("notes.bin", b"\x00\x01garbage\xff" * 40, {}, 422, "unrecognised format"),
        ("page.xml", b"<?xml version='1.0'?><html><body>hi</body></html>", {}, 422, "root element <html>"),
        ("empty.csv", b"", {}, 422, "empty"),
        ("short.npy", npy_bytes(np.zeros((12, 400), dtype=np.float32)), {"fs": 100}, 422, "record is 4.00 s"),
        (
            "three.npy",
            npy_bytes(np.zeros((3, 1000), dtype=np.float32)),
            {"fs": 100, "leads": "I,II,V1"},
            422,
            "3 lead(s) I, II, V1",
        ),
    ],
)
def test_bad_uploads_get_4xx_and_the_reason(
    client: TestClient, name: str, content: bytes, form: dict[str, Any], status: int, message: str
) -> None:
    res = client.post("/api/predict", files=[("files", (name, content))], data={k: str(v) for k, v in form.items()})
    assert res.status_code == status, res.text
    detail = res.json()["detail"]
    assert message in detail and detail.startswith(name) and "\n" not in detail
    assert tempfile.gettempdir() not in detail  # the user's file name, never the server's temporary path


def test_truncated_xml_is_refused(client: TestClient, shared_data: Path) -> None:
    data = (shared_data / "ecg-formats" / FORMAT_SAMPLES["muse"]).read_bytes()
    res = client.post("/api/predict", files=[("files", ("cut.xml", data[: len(data) // 2]))])
    assert res.status_code == 422 and res.json()["detail"].startswith("cut.xml: muse:")


def test_form_errors(client: TestClient) -> None:
    res = client.post("/api/predict", data={"labels": "x"})
    assert res.status_code == 422 and res.json()["detail"].startswith("files:")
    two = [("files", ("a.xml", b"<a/>")), ("files", ("b.xml", b"<b/>"))]
    res = client.post("/api/predict", files=two)
    assert res.status_code == 400 and "exactly one WFDB header" in res.json()["detail"]


def test_upload_over_the_limit_is_413(client: TestClient) -> None:
    res = client.post("/api/predict", files=[("files", ("big.npy", b"\x00" * (3 * 2**20)))])
    assert res.status_code == 413 and "2 MiB" in res.json()["detail"]


def test_nothing_left_in_the_temporary_folder(client: TestClient, shared_data: Path) -> None:
    def ours() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("melp-serve-*")}

    before = ours()
    upload(client, shared_data / "ecg-formats" / FORMAT_SAMPLES["muse"])
    client.post("/api/predict", files=[("files", ("x.bin", b"junk" * 10))])
    assert ours() == before


def test_concurrent_requests_keep_their_own_results(client: TestClient) -> None:
    """Four different records at once: each answer carries its own file name, signal and scores."""
    rng = np.random.default_rng(0)
    records = {f"r{i}.npy": (rng.normal(size=(12, 1000)) * (i + 1) * 0.2).astype(np.float32) for i in range(4)}

    def post(item: tuple[str, np.ndarray]) -> dict[str, Any]:
        name, sig = item
        res = client.post("/api/predict", files=[("files", (name, npy_bytes(sig)))], data={"fs": "100"})
        assert res.status_code == 200, res.text
        return res.json()

    alone = {name: post((name, sig)) for name, sig in records.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(post, records.items()))
    for body in together:
        name = body["readings"]["path"]
        assert body["signal"]["leads"][0][:50] == alone[name]["signal"]["leads"][0][:50]
        assert body["findings"]["scores"] == alone[name]["findings"]["scores"]
        assert body["report"]["text"] == alone[name]["report"]["text"]


def test_health_model_card_and_offline_docs(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["backend"] == "torch"
    card = client.get("/api/model").json()
    assert card["config"]["fs"] == 100 and card["presets"]["matches"] is None  # fs 100 micro is no shipped preset
    assert "micro" in card["presets"]["shipped"] and card["training"]["recorded"] is False
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_page_and_assets_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        res = client.get(asset)
        assert res.status_code == 200 and "http://" not in res.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in res.text


def test_encoder_only_model_gives_embeddings_only(tmp_path: Path, shared_data: Path) -> None:
    from melp.models import MELP, MELPConfig

    torch.manual_seed(0)
    MELP(config=replace(MELPConfig.preset("micro"), fs=100, ecg_only=True)).save_pretrained(tmp_path / "ecg_only")
    client = make_client(tmp_path / "ecg_only")
    path = shared_data / "ecg-formats" / FORMAT_SAMPLES["aecg"]
    body = upload(client, path).json()
    assert not body["findings"]["available"] and "encoder-only" in body["findings"]["reason"]
    assert not body["report"]["available"] and not body["attention"]["available"]
    assert body["embedding"]["dim"] == 64 and len(body["signal"]["leads"]) == 12
    res = upload(client, path, labels="sinus rhythm")
    assert res.status_code == 400 and "encoder-only" in res.json()["detail"]
    assert client.get("/api/health").json()["has_text"] is False


def test_bad_settings_are_refused(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        ServeConfig(model_dir=model_dir, port=0)
    with pytest.raises(FileNotFoundError, match="neither a saved model"):
        PredictionService.load(ServeConfig(model_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="melp export-onnx"):
        PredictionService.load(ServeConfig(model_dir=model_dir, backend="onnx"))


def test_upload_names_and_labels_are_cleaned() -> None:
    from melp.serve.uploads import parse_labels, safe_name

    assert safe_name("../../etc/passwd", 0) == "passwd"
    assert safe_name("C:\\Users\\x\\E07500.hea", 0) == "E07500.hea"
    assert safe_name("a b;rm -rf.xml", 1) == "a_b_rm_-rf.xml"
    assert safe_name("...", 2) == "upload2" and safe_name(None, 3) == "upload3"
    assert parse_labels(" atrial  fibrillation ,Sinus rhythm;\nsinus RHYTHM,, ") == [
        "atrial fibrillation",
        "Sinus rhythm",
    ]
    assert parse_labels("") == [] and parse_labels(None) == []
