"""`melp prepare files`, `melp predict`, `melp embed` on a folder of mixed-format files, and central user-error handling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from melp.cli.main import main
from melp.data import open_store
from melp.data.leads import STANDARD_LEADS
from tests.test_inference import make_micro_model

rng = np.random.default_rng(1)


def _signal(n: int = 5000, fs: float = 500.0) -> np.ndarray:
    t = np.arange(n) / fs
    base = np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t)
    return np.stack([base * (0.4 + 0.1 * k) + 0.02 * rng.normal(size=n) for k in range(12)])


def _write_csv(path: Path, names: list[str], sig: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerows(sig.T.tolist())


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A folder of good files (WFDB in standard and shuffled lead order, CSV, EDF) and bad ones beside them."""
    import edfio

    root = tmp_path_factory.mktemp("mixed")
    sig = _signal()
    order = rng.permutation(12)
    wfdb.wrsamp("std", fs=500, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=sig.T, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(root))  # fmt: skip
    (root / "site2").mkdir()
    wfdb.wrsamp("shuffled", fs=500, units=["mV"] * 12, sig_name=[STANDARD_LEADS[i].upper() for i in order],
                p_signal=sig[order].T, fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(root / "site2"))  # fmt: skip
    _write_csv(root / "good.csv", list(STANDARD_LEADS), sig)
    edf_signals = [
        edfio.EdfSignal(sig[k] * 1000, sampling_frequency=500, label=f"EKG {STANDARD_LEADS[k]}",
                        physical_dimension="uV", physical_range=(-8000, 8000))
        for k in range(12)
    ]  # fmt: skip
    edfio.Edf(edf_signals).write(root / "good.edf")
    # bad files
    (root / "empty.hea").write_text("")
    _write_csv(root / "six.csv", ["V1", "V2", "V3", "V4", "V5", "V6"], sig[6:])
    _write_csv(root / "unknown.csv", ["Q1", "Q2"], sig[:2])
    text = (root / "good.csv").read_text().splitlines()
    text[40] = text[40].replace(text[40].split(",")[3], "n/a", 1)
    (root / "words.csv").write_text("\n".join(text) + "\n")
    return root, sig


def test_prepare_files_keeps_good_files_and_gives_each_bad_one_its_reason(
    mixed: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    root, sig = mixed
    assert main(["prepare", "files", "--root", str(root), "--out", str(tmp_path / "s"), "--dtype", "float32",
                 "--no-progress", "--workers", "2", "--input-fs", "500"]) == 0  # fmt: skip
    store = open_store(tmp_path / "s")
    ids = store.meta["id"].tolist()
    assert ids == ["good.csv", "good.edf", "site2/shuffled.hea", "std.hea"]
    by_id = {record_id: i for i, record_id in enumerate(ids)}
    np.testing.assert_array_equal(store.signals[by_id["site2/shuffled.hea"]], store.signals[by_id["std.hea"]])
    np.testing.assert_allclose(store.signals[by_id["std.hea"]], sig, atol=1e-3)
    np.testing.assert_allclose(store.signals[by_id["good.csv"]], sig, atol=1e-5)
    np.testing.assert_allclose(store.signals[by_id["good.edf"]], sig, atol=5e-3)
    skipped = store.manifest["skipped"]
    assert set(skipped) == {"empty.hea", "six.csv", "unknown.csv", "words.csv"}
    assert "empty.hea: wfdb: empty WFDB header" in skipped["empty.hea"]
    assert "six.csv: csv: 6 of 12 leads where 12 are needed (missing I, II, III, aVR, aVL, aVF)" in skipped["six.csv"]
    assert "unknown.csv: csv: no standard lead among the columns ['Q1', 'Q2']" in skipped["unknown.csv"]
    assert "words.csv: csv: non-numeric value 'n/a' in column" in skipped["words.csv"]


def test_prepare_files_fails_when_nothing_is_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.hea").write_text("")
    with pytest.raises(SystemExit) as info:
        main(["prepare", "files", "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "s"), "--no-progress"])
    assert info.value.code == 2
    assert "melp prepare: error: no record of" in capsys.readouterr().err


def test_prepare_files_report_from_statements(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    (root / "philips.xml").write_bytes((shared_data / "ecg-formats" / "2020-5-18_15-48-11.xml").read_bytes())
    args = ["prepare", "files", "--root", str(root), "--out", str(tmp_path / "s"), "--no-progress"]
    assert main([*args, "--report-from", "statements"]) == 0
    report = open_store(tmp_path / "s").meta["report"][0]
    assert report.startswith("Sinus rhythm") and "OTHERWISE NORMAL ECG" in report


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_model(tmp_path_factory.mktemp("cli-model"))


def test_predict_and_embed_end_to_end(
    mixed: tuple[Path, np.ndarray], model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = mixed
    files = [str(root / "std.hea"), str(root / "good.edf"), str(root / "six.csv"), str(root / "empty.hea")]
    out = tmp_path / "p.json"
    args = ["predict", *files, "--model", str(model_dir), "--out", str(out), "--figure", "--fs", "500"]
    assert main([*args, "--labels", "atrial fibrillation, normal ecg"]) == 0
    table = capsys.readouterr().out
    assert "std.hea" in table and "good.edf" in table and "six.csv" in table  # six leads: still predicted
    results = json.loads(out.read_text())["results"]
    assert [Path(r["readings"]["path"]).name for r in results] == ["std.hea", "good.edf", "six.csv"]
    six = results[2]
    assert six["readings"]["leads_missing"] == ["I", "II", "III", "aVR", "aVL", "aVF"]
    assert six["findings"]["labels"] == ["atrial fibrillation", "normal ecg"]
    assert all(Path(r["figure"]).is_file() for r in results)
    csv_out = tmp_path / "p.csv"
    assert main(["predict", files[0], "--model", str(model_dir), "--out", str(csv_out), "--leads", "I,II,V1",
                 "--no-report"]) == 0  # fmt: skip
    rows = list(csv.DictReader(csv_out.open()))
    assert len(rows) == 1 and rows[0]["leads_masked"] == "III,aVR,aVL,aVF,V2,V3,V4,V5,V6"
    emb = tmp_path / "e.npy"
    assert main(["embed", str(root), "--model", str(model_dir), "--out", str(emb), "--fs", "500"]) == 0
    ids = (tmp_path / "e.ids.txt").read_text().split()
    assert len(ids) == np.load(emb).shape[0] and any(i.endswith("std.hea") for i in ids)
    assert np.allclose(np.linalg.norm(np.load(emb), axis=1), 1.0, atol=1e-5)


def test_user_errors_are_one_line_and_exit_2(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ecg = tmp_path / "x.npy"
    np.save(ecg, _signal(1000))
    not_store = tmp_path / "folder"
    not_store.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "manifest.json").write_text("{not json")
    cases = [
        (["predict", str(ecg), "--fs", "500", "--model", str(tmp_path / "nope")], "melp predict: error: --model"),
        (["predict", str(ecg), "--fs", "500", "--model", str(model_dir), "--leads", "I,X9"],
         "melp predict: error: unknown lead name(s) ['X9']"),
        (["embed", str(corrupt), "--model", str(model_dir), "--out", str(tmp_path / "e.npy")],
         "melp embed: error:"),
        (["zeroshot", "--model", str(model_dir), "--test", str(not_store), "--out", str(tmp_path / "z.json")],
         "melp zeroshot: error:"),
        (["zeroshot", "--model", str(model_dir), "--test", str(corrupt), "--out", str(tmp_path / "z.json")],
         "manifest.json is corrupt"),
        (["predict", str(ecg), "--fs", "500", "--model", str(model_dir), "--out", str(tmp_path / "x.txt")],
         "melp predict: error: --out must end in .json or .csv"),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
