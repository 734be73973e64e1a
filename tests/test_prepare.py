"""``melp prepare`` on fixtures written here in each dataset's real layout: every bad-input case of issue 2
is skipped with its reason, values and labels are as written, resume and --workers do not change the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.signal import resample_poly

from melp.cli.main import main
from melp.data import open_store
from melp.data.readers.mimic_iv_ecg import clean_report

MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]  # aVF before aVL
MIMIC_TO_STANDARD = [0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11]
GOOD_REPORT = ["Sinus rhythm", "Normal EKG", "No previous ECGs available"]


def _ecg(n: int, seed: int, leads: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=0.5, size=(n, leads))  # (T, C), as wfdb wants it


def _wrsamp(
    directory: Path, name: str, signal: np.ndarray, *, fs: int = 500, units: str = "mV", names: list[str] | None = None
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    c = signal.shape[1]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=[units] * c,
        sig_name=names or MIMIC_LEADS[:c],
        p_signal=signal,
        fmt=["16"] * c,
        adc_gain=[200.0 if units == "mV" else 0.2] * c,
        baseline=[0] * c,
        write_dir=str(directory),
    )


# case → (expected skip reason fragment or None if kept); the fixture writes one record per case
MIMIC_CASES: dict[str, str | None] = {
    "good": None,
    "microvolts": None,
    "nan_short": None,
    "nan_long": "run of 200 non-finite samples",
    "all_zero": "all-zero record",
    "flat_lead": "flat lead(s) ['V3']",
    "missing_dat": "missing signal file",
    "truncated_dat": "unreadable WFDB record",
    "long_dat": "header/signal length mismatch",
    "bad_header": "unreadable WFDB record (HeaderSyntaxError",
    "unknown_units": "unknown units 'mmHg'",
    "low_fs": "sampling rate 20.0 Hz outside",
    "missing_lead": "missing lead(s) ['V6']",
    "duplicate_lead": "lead V5 appears twice",
    "too_short": "record is 2.00 s, shorter than the 9.00 s minimum",
    "short_report": "report has 2 word(s)",
    "empty_report": "empty report",
    "non_utf8_report": "report is not valid UTF-8",
    "no_measurements": "no report in machine_measurements.csv",
}


def _write_mimic_record(root: Path, case: str, subject: int, study: int) -> str:
    rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}"
    directory, name = root / rel, str(study)
    x = _ecg(5000, study)
    if case == "microvolts":
        _wrsamp(directory, name, x * 1000, units="uV")
    elif case == "nan_short":
        x[1000:1010, 5] = np.nan
    elif case == "nan_long":
        x[1000:1200, 2] = np.nan
    elif case == "all_zero":
        x[:] = 0
    elif case == "flat_lead":
        x[:, 8] = 0
    elif case == "unknown_units":
        _wrsamp(directory, name, x, units="mmHg")
    elif case == "low_fs":
        _wrsamp(directory, name, x[:200], fs=20)
    elif case == "missing_lead":
        _wrsamp(directory, name, x[:, :11])
    elif case == "too_short":
        _wrsamp(directory, name, x[:1000])
    if not (directory / f"{name}.hea").exists():
        _wrsamp(directory, name, x)
    dat = directory / f"{name}.dat"
    if case == "missing_dat":
        dat.unlink()
    elif case == "truncated_dat":
        dat.write_bytes(dat.read_bytes()[:50_000])
    elif case == "long_dat":
        dat.write_bytes(dat.read_bytes() + bytes(240))
    elif case == "bad_header":
        (directory / f"{name}.hea").write_text("this is not a header\n")
    elif case == "duplicate_lead":  # wfdb.wrsamp refuses duplicate names, so edit the header
        header = directory / f"{name}.hea"
        header.write_text(header.read_text().replace(" V6\n", " v5\n"))
    return f"{rel}/{name}"


@pytest.fixture(scope="module")
def mimic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mimic-iv-ecg")
    records, reports = [], []
    for k, case in enumerate(MIMIC_CASES):
        subject, study = 10000000 + k, 40000000 + k
        records.append(
            {
                "subject_id": subject,
                "study_id": study,
                "file_name": study,
                "ecg_time": "",
                "path": _write_mimic_record(root, case, subject, study),
            }
        )
        if case == "no_measurements":
            continue
        parts = {
            "short_report": ["Sinus rhythm"],
            "empty_report": [],
            "non_utf8_report": ["Sinus rhythm BADBYTES here", "ok"],
        }.get(case, GOOD_REPORT)
        reports.append(
            {"subject_id": subject, "study_id": study, "cart_id": 1, **{f"report_{i}": p for i, p in enumerate(parts)}}
        )
    records.append(dict(records[0]))  # the first record listed twice: a duplicate id
    pd.DataFrame(records).to_csv(root / "record_list.csv", index=False)
    table = pd.DataFrame(
        reports, columns=["subject_id", "study_id", "cart_id", *[f"report_{i}" for i in range(18)], "rr_interval"]
    )
    text = table.to_csv(index=False).encode("utf-8").replace(b"BADBYTES", b"\xff\xfe")
    (root / "machine_measurements.csv").write_bytes(text)
    return root


def _case_id(case: str) -> str:
    k = list(MIMIC_CASES).index(case)
    return f"{10000000 + k}_{40000000 + k}"


def _assert_stored(actual: np.ndarray, expected: np.ndarray) -> None:
    """Stored float16 values equal the reference up to float16 rounding (one ulp: float32 → float16 rounds twice)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=1e-3, atol=1e-4)


def _prepare(dataset: str, root: Path, out: Path, *extra: str) -> None:
    assert main(["prepare", dataset, "--root", str(root), "--out", str(out), "--no-progress", *extra]) == 0


@pytest.fixture(scope="module")
def mimic_store(mimic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "mimic"
    _prepare("mimic-iv-ecg", mimic_root, out, "--shard-size", "4")
    return out


def test_every_bad_mimic_record_is_skipped_with_its_reason(mimic_store: Path) -> None:
    store = open_store(mimic_store)
    kept = [case for case, reason in MIMIC_CASES.items() if reason is None]
    assert list(store.meta["id"]) == [_case_id(c) for c in kept]
    skipped = store.manifest["skipped"]
    for case, reason in MIMIC_CASES.items():
        if reason is not None:
            assert reason in skipped[_case_id(case)], (case, skipped[_case_id(case)])
    assert skipped[_case_id("good")] == "duplicate id"
    m = store.manifest
    assert (m["n_read"], m["n_kept"], m["n_skipped"]) == (
        len(MIMIC_CASES) + 1,
        len(kept),
        len(MIMIC_CASES) + 1 - len(kept),
    )
    assert np.isfinite(np.asarray(store.signals, dtype=np.float32)).all()


def test_mimic_values_reports_and_interpolation(mimic_root: Path, mimic_store: Path) -> None:
    store = open_store(mimic_store)
    meta = store.meta.set_index("id")
    rows = {case: list(store.meta["id"]).index(_case_id(case)) for case in ("good", "microvolts", "nan_short")}
    for case, scale in (("good", 1.0), ("microvolts", 1e-3)):
        k = list(MIMIC_CASES).index(case)
        raw = wfdb.rdrecord(str(mimic_root / pd.read_csv(mimic_root / "record_list.csv")["path"][k])).p_signal.T
        _assert_stored(store.signals[rows[case]], raw[MIMIC_TO_STANDARD] * scale)
    assert meta.loc[_case_id("good"), "report"] == "sinus rhythm. normal ecg. no previous ecgs available."
    assert meta.loc[_case_id("good"), "patient_id"] == _case_id("good").split("_")[0]
    assert meta.loc[_case_id("nan_short"), "n_interpolated"] == 10
    assert meta.loc[_case_id("good"), "units"] == "mV"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["Sinus rhythm", "Normal EKG", float("nan")], "sinus rhythm. normal ecg."),
        (["*** Sinus tachycardia ***", "Borderline ECG"], "sinus tachycardia ***. borderline ecg."),
        (["--- Pediatric ECG analysis ---"], " pediatric ecg analysis ."),
        (["Sinus\trhythm\nwith PACs"], "sinus rhythm with pacs."),
        ([float("nan"), float("nan")], "empty"),
        (["***"], "empty"),
    ],
)
def test_mimic_report_cleaning_matches_the_reference(parts: list, expected: str) -> None:
    assert clean_report(parts) == expected


def _snapshot(path: Path) -> tuple[bytes, pd.DataFrame, dict]:
    store = open_store(path)
    return np.asarray(store.signals).tobytes(), store.meta, store.manifest


def _assert_same_store(a: Path, b: Path) -> None:
    sig_a, meta_a, man_a = _snapshot(a)
    sig_b, meta_b, man_b = _snapshot(b)
    assert sig_a == sig_b
    pd.testing.assert_frame_equal(meta_a, meta_b)
    assert man_a == man_b


def test_resumed_prepare_equals_an_uninterrupted_one(mimic_root: Path, mimic_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(mimic_store, out)
    (out / "manifest.json").unlink()
    last = max(int(p.name[:5]) for p in (out / "shards").glob("*.npy"))
    for p in (out / "shards").glob(f"{last:05d}.*"):
        p.unlink()
    (out / "shards" / f"{last - 1:05d}.skip.json").unlink()  # interrupted while writing the shard before
    _prepare("mimic-iv-ecg", mimic_root, out, "--shard-size", "4")
    _assert_same_store(mimic_store, out)


def test_two_workers_give_the_same_store(mimic_root: Path, mimic_store: Path, tmp_path: Path) -> None:
    _prepare("mimic-iv-ecg", mimic_root, tmp_path / "w2", "--shard-size", "4", "--workers", "2")
    _assert_same_store(mimic_store, tmp_path / "w2")


def _write_ptbxl(root: Path) -> dict[int, np.ndarray]:
    statements = pd.DataFrame(
        {
            "description": [
                "normal ECG",
                "inferior MI",
                "non-specific ST",
                "sinus rhythm",
                "atrial fibrillation",
                "PVC",
            ],
            "diagnostic": [1.0, 1.0, 1.0, None, None, None],
            "form": [None, None, 1.0, None, None, 1.0],
            "rhythm": [None, None, None, 1.0, 1.0, None],
            "diagnostic_class": ["NORM", "MI", "STTC", None, None, None],
            "diagnostic_subclass": ["NORM", "IMI", "NST_", None, None, None],
        },
        index=["NORM", "IMI", "NST_", "SR", "AFIB", "PVC"],
    )
    statements.to_csv(root / "scp_statements.csv")
    scp = {1: "{'NORM': 100.0, 'SR': 0.0}", 2: "{'IMI': 100.0, 'NST_': 50.0, 'AFIB': 0.0}", 3: "{'PVC': 100.0}"}
    rows, signals = [], {}
    for ecg_id, codes in scp.items():
        rel_hr = f"records500/00000/{ecg_id:05d}_hr"
        signals[ecg_id] = _ecg(5000, ecg_id)
        _wrsamp(
            root / "records500" / "00000",
            f"{ecg_id:05d}_hr",
            signals[ecg_id],
            names=["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"],
        )
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": 100.0 + ecg_id,
                "age": 50,
                "sex": 1,
                "report": f"bericht {ecg_id}",
                "scp_codes": codes,
                "strat_fold": ecg_id,
                "filename_lr": rel_hr.replace("500", "100"),
                "filename_hr": rel_hr,
            }
        )
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    return signals


def test_ptbxl_tree_labels_and_resampling(tmp_path: Path) -> None:
    root = tmp_path / "ptbxl"
    root.mkdir()
    _write_ptbxl(root)
    _prepare("ptbxl", root, tmp_path / "store", "--fs", "100")
    store = open_store(tmp_path / "store")
    meta = store.meta.set_index("id")
    assert meta.loc["2", "labels"] == ["IMI", "NST", "AFIB"]
    assert meta.loc["2", "labels_super"] == ["MI", "STTC"]
    assert meta.loc["2", "labels_sub"] == ["IMI", "NST"]
    assert meta.loc["2", "labels_form"] == ["NST"] and meta.loc["2", "labels_rhythm"] == ["AFIB"]
    assert meta.loc["3", "labels_super"] == [] and meta.loc["3", "labels_form"] == ["PVC"]
    assert meta.loc["1", "patient_id"] == "101" and meta.loc["1", "report"] == "bericht 1"
    assert list(meta["strat_fold"]) == [1, 2, 3]
    for row, ecg_id in enumerate((1, 2, 3)):
        raw = wfdb.rdrecord(str(root / f"records500/00000/{ecg_id:05d}_hr")).p_signal.T
        _assert_stored(store.signals[row], resample_poly(raw, 1, 5, axis=-1))


def _write_code15(root: Path) -> np.ndarray:
    active = _ecg(4000, 11)  # a 10 s exam, zero-padded (centred) to 4096
    tracings = np.zeros((4, 4096, 12), np.float32)
    tracings[0, 48:4048] = active
    tracings[1, 648:3448] = _ecg(2800, 12)  # a 7 s exam
    # row 2: exam 13, all zeros; row 3: the files' zero filler, exam_id 0, not in exams.csv
    with h5py.File(root / "exams_part0.hdf5", "w") as f:
        f["exam_id"] = np.array([11, 12, 13, 0])
        f["tracings"] = tracings
    exams = pd.DataFrame(
        {
            "exam_id": [14, 11, 12, 13],
            "age": [60, 61, 62, 63],
            "is_male": [True, False, True, False],
            "1dAVb": [False, True, False, False],
            "RBBB": False,
            "LBBB": False,
            "SB": False,
            "AF": [False, True, False, False],
            "ST": [False, False, True, False],
            "patient_id": [1, 2, 3, 4],
            "normal_ecg": False,
            "trace_file": "exams_part0.hdf5",
        }
    )
    exams.to_csv(root / "exams.csv", index=False)
    return tracings[0, 48:4048].astype(np.float64)


def test_code15_hdf5_unpadding_resampling_and_skips(tmp_path: Path) -> None:
    root = tmp_path / "code15"
    root.mkdir()
    active = _write_code15(root)
    _prepare("code15", root, tmp_path / "store")
    store = open_store(tmp_path / "store")
    assert list(store.meta["id"]) == ["11"]
    _assert_stored(store.signals[0], resample_poly(active.T, 5, 4, axis=-1))
    assert store.meta.loc[0, "labels"] == ["1AVB", "AFIB"] and store.meta.loc[0, "orig_seconds"] == 10.0
    skipped = store.manifest["skipped"]
    assert skipped["12"].startswith("record is 7.00 s, shorter than the 9.00 s minimum")
    assert skipped["13"] == "all-zero record"
    assert skipped["14"] == "no tracing in any exams_part*.hdf5"
    _prepare("code15", root, tmp_path / "padded", "--max-pad-seconds", "3.5")
    padded = open_store(tmp_path / "padded").meta.set_index("id")
    assert padded.loc["12", "length_policy"] == "padded" and padded.loc["12", "pad_seconds"] == 3.0
    assert padded.loc["12", "labels"] == ["ST"]


def test_unusable_inputs_fail_with_a_clear_message(tmp_path: Path, mimic_root: Path, mimic_store: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"scp_statements\.csv not found"):
        _prepare("ptbxl", empty, tmp_path / "a")
    with pytest.raises(SystemExit, match=r"exams\.csv not found"):
        _prepare("code15", empty, tmp_path / "b")
    with pytest.raises(SystemExit, match="already holds a complete store"):
        _prepare("mimic-iv-ecg", mimic_root, mimic_store, "--shard-size", "4")
    with pytest.raises(SystemExit, match="max_pad_seconds must be in"):
        _prepare("mimic-iv-ecg", mimic_root, tmp_path / "c", "--max-pad-seconds", "10")
    split = tmp_path / "split.csv"
    split.write_text("ecg_id,strat_fold,filename_lr,NORM,MI\n1,1,records100/00000/00001_lr,1,maybe\n")
    (empty / "scp_statements.csv").write_text("code,diagnostic\n")
    with pytest.raises(SystemExit, match=r"class column\(s\) \['MI'\] hold values other than 0/1"):
        _prepare("ptbxl", empty, tmp_path / "d", "--split-csv", str(split))


def test_code_test_set_layout(tmp_path: Path) -> None:
    root = tmp_path / "code-test"
    (root / "annotations").mkdir(parents=True)
    tracings = np.zeros((2, 4096, 12), np.float32)
    tracings[0, 48:4048] = _ecg(4000, 21)
    tracings[1, 48:4048] = _ecg(4000, 22)
    with h5py.File(root / "ecg_tracings.hdf5", "w") as f:
        f["tracings"] = tracings
    gold = pd.DataFrame({"1dAVb": [0, 1], "RBBB": [0, 0], "LBBB": [1, 0], "SB": [0, 0], "AF": [0, 1], "ST": [0, 0]})
    gold.to_csv(root / "annotations" / "gold_standard.csv", index=False)
    pd.DataFrame({"age": [40, 70], "sex": ["M", "F"]}).to_csv(root / "attributes.csv", index=False)
    _prepare("code15", root, tmp_path / "store")
    store = open_store(tmp_path / "store")
    assert list(store.meta["id"]) == ["code-test-0000", "code-test-0001"]
    assert list(store.meta["labels"]) == [["LBBB"], ["1AVB", "AFIB"]]
    assert list(store.meta["is_male"]) == [True, False]
    _assert_stored(store.signals[1], resample_poly(tracings[1, 48:4048].astype(np.float64).T, 5, 4, axis=-1))
