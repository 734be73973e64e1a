"""Every reader on the real records of ``../shared/data``: values equal wfdb/scipy after the documented
reordering and resampling; labels and reports as in the source (issue 2, "Tests that must exist")."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.io import loadmat
from scipy.signal import resample_poly

from melp.cli.main import main
from melp.data import open_store
from melp.data.leads import STANDARD_LEADS
from melp.data.readers import get_reader
from melp.data.readers.cinc import dx_mapping
from melp.data.readers.common import make_record, read_wfdb
from melp.data.signal import SignalPolicy
from melp.data.store import Record

pytestmark = pytest.mark.realdata

CINC_SOURCES = {"Georgia": "georgia", "PTB-XL": "ptbxl", "Chapman": "chapman-shaoxing-ningbo"}


def _records(reader_name: str, root: Path, split: Path | None = None, policy: SignalPolicy | None = None) -> list:
    reader = get_reader(reader_name)
    process = reader.processor(policy or SignalPolicy())
    return [process(item) for item in reader.list_items(root, split)]


def test_cinc2021_values_labels_and_sources(shared_data: Path) -> None:
    root = shared_data / "ecg-records" / "cinc2021"
    truth = pd.read_csv(root / "labels.csv", dtype=str).set_index("record")
    records = _records("cinc2021", root)
    assert sorted(r.id for r in records) == sorted(truth.index)
    for rec in records:
        raw = wfdb.rdrecord(str(root / rec.id))
        flat = [STANDARD_LEADS[i] for i in np.flatnonzero(np.ptp(raw.p_signal, axis=0) == 0)]
        if flat:  # JS20004 and JS20008 really have all-zero leads: skipped, with them named
            assert rec.id in ("JS20004", "JS20008") and rec.reason.startswith(f"flat lead(s) {flat}")
            continue
        assert isinstance(rec, Record), rec
        assert [n.lower() for n in raw.sig_name] == [n.lower() for n in STANDARD_LEADS]
        np.testing.assert_array_equal(rec.signal, raw.p_signal.T.astype(np.float32))
        row = truth.loc[rec.id]
        assert rec.labels == row["dx_abbrev"].split(",")
        assert rec.extra["dx_snomed"] == row["dx_snomed"].split(",")
        assert rec.source == next(v for k, v in CINC_SOURCES.items() if row["source"].startswith(k))
        assert rec.extra["units"] == "mV"


def test_packaged_snomed_mapping_agrees_with_the_challenge_tables(shared_data: Path) -> None:
    root = shared_data / "ecg-records" / "cinc2021"
    from_csv = dx_mapping(tuple(str(root / f"dx_mapping_{k}.csv") for k in ("scored", "unscored")))
    assert dx_mapping(()) == from_csv


def test_cpsc2018_values_crop_and_labels(shared_data: Path) -> None:
    root = shared_data / "ecg-records" / "cpsc2018"
    names = {1: "NORM", 2: "AFIB", 3: "1AVB", 4: "CLBBB", 5: "CRBBB", 6: "PAC", 7: "VPC", 8: "STD", 9: "STE"}
    reference = pd.read_csv(root / "REFERENCE.csv").set_index("Recording")
    records = _records("cpsc2018", root)
    assert [r.id for r in records] == list(reference.index)
    for rec in records:
        data = loadmat(str(root / f"{rec.id}.mat"))["ECG"][0, 0]["data"]
        np.testing.assert_array_equal(rec.signal, data[:, :5000].astype(np.float32))
        assert rec.labels == [names[int(reference.loc[rec.id, "First_label"])]]
        assert rec.extra["orig_seconds"] == data.shape[1] / 500
        assert rec.extra["length_policy"] == ("cropped" if data.shape[1] > 5000 else "exact")


def test_ptbdb_lower_case_leads_extra_leads_and_1000hz(shared_data: Path) -> None:
    path = shared_data / "ecg-records" / "ptbdb" / "s0010_re"
    rec = make_record(read_wfdb(path), id="s0010_re", policy=SignalPolicy(fs=500, seconds=10))
    raw = wfdb.rdrecord(str(path))
    expected = resample_poly(raw.p_signal[:, :12].T, 1, 2, axis=-1)[:, :5000]  # names i..v6 are already standard order
    np.testing.assert_allclose(rec.signal, expected.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert rec.extra["orig_fs"] == 1000.0 and rec.extra["orig_seconds"] == 38.4


def test_ptbxl_split_csv_labels_by_name(shared_data: Path) -> None:
    root = shared_data / "ptbxl-subset"
    split = pd.read_csv(root / "ptbxl_super_class_train.csv")
    items = get_reader("ptbxl").list_items(root, root / "ptbxl_super_class_train.csv")
    assert [it.id for it in items] == [str(i) for i in split["ecg_id"]]
    classes = ["HYP", "NORM", "MI", "CD", "STTC"]
    for it, (_, row) in zip(items, split.iterrows()):
        assert set(it.labels) == {c for c in classes if row[c] == 1} == set(ast.literal_eval(row["super_class"]))
        assert it.extra["labels_super"] == list(it.labels)
        assert it.extra["strat_fold"] == row["strat_fold"]


def test_ptbxl_values_reports_and_scp_labels(shared_data: Path) -> None:
    root = shared_data / "ptbxl-subset"
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    reader = get_reader("ptbxl")
    items = reader.list_items(root, None)[:15]
    at_100 = reader.processor(SignalPolicy(fs=100))
    at_500 = reader.processor(SignalPolicy(fs=500))
    for it in items:
        row = db.loc[int(it.id)]
        raw = wfdb.rdrecord(str(root / row["filename_lr"])).p_signal.T  # (12, 1000), names I..V6 in order
        rec, up = at_100(it), at_500(it)
        assert isinstance(rec, Record) and isinstance(up, Record)
        np.testing.assert_array_equal(rec.signal, raw.astype(np.float32))
        np.testing.assert_allclose(up.signal, resample_poly(raw, 5, 1, axis=-1).astype(np.float32), atol=1e-5)
        assert rec.extra["units"] == "NU"
        assert rec.report == row["report"]
        assert rec.patient_id == str(int(row["patient_id"]))
        assert rec.labels == [c.rstrip("_") for c in ast.literal_eval(row["scp_codes"])]


def test_prepare_ptbxl_subset_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "ptbxl-subset"
    argv = [
        "prepare",
        "ptbxl",
        "--root",
        str(root),
        "--out",
        str(tmp_path / "val"),
        "--fs",
        "100",
        "--split-csv",
        str(root / "ptbxl_super_class_val.csv"),
        "--no-progress",
        "--shard-size",
        "64",
    ]
    assert main(argv) == 0
    store = open_store(tmp_path / "val")
    split = pd.read_csv(root / "ptbxl_super_class_val.csv")
    assert list(store.meta["id"]) == [str(i) for i in split["ecg_id"]]
    assert store.signals.shape == (len(split), 12, 1000) and store.fs == 100
    assert store.manifest["n_skipped"] == 0
    first = wfdb.rdrecord(str(root / split["filename_lr"][0])).p_signal.T
    np.testing.assert_array_equal(store.signals[0], first.astype(np.float16))
