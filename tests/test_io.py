"""melp.io.read_ecg: every format, leads by name, units, derived leads, and one-line errors for bad files."""

from __future__ import annotations

import base64
import csv
from pathlib import Path

import numpy as np
import pytest
import wfdb

from melp.data.leads import STANDARD_LEADS
from melp.io import ECGReadError, detect_format, read_ecg

FORMATS_DIR = "ecg-formats"
rng = np.random.default_rng(0)


def _signal(n: int = 2000) -> np.ndarray:
    """(12, n) mV: a smooth, distinct signal per lead."""
    t = np.arange(n) / 500.0
    return np.stack([np.sin(2 * np.pi * (1 + k) * t) * (0.5 + 0.1 * k) for k in range(12)]).astype(np.float64)


def _einthoven(sig: np.ndarray, atol: float) -> None:
    i, ii, iii, avr, avl, avf = sig[:6].astype(np.float64)
    np.testing.assert_allclose(iii, ii - i, atol=atol)
    np.testing.assert_allclose(avr, -(i + ii) / 2, atol=atol)
    np.testing.assert_allclose(avl, i - ii / 2, atol=atol)
    np.testing.assert_allclose(avf, ii - i / 2, atol=atol)


# -- the shared samples: ground truth is what ecg-formats/README.md says each file states ------------


def test_muse_xml_units_derived_leads_and_metadata(shared_data: Path) -> None:
    path = shared_data / FORMATS_DIR / "musePHI_muse_ecg2.xml"
    rec = read_ecg(path)
    assert (rec.format, rec.fs, rec.signal.shape, rec.signal.dtype) == ("muse", 500.0, (12, 5000), np.float32)
    assert rec.derived_leads == ["III", "aVR", "aVL", "aVF"] and rec.leads_missing == []
    _einthoven(rec.signal, atol=1e-5)
    # 4.88 µV/bit: lead I's stored int16 × 4.88 µV = the mV we read
    text = path.read_text(encoding="latin-1")
    rhythm = text[text.index("<WaveformType>Rhythm") :]
    first = rhythm[rhythm.index("<WaveFormData>") + 14 : rhythm.index("</WaveFormData>")]
    ints = np.frombuffer(base64.b64decode("".join(first.split())), dtype="<i2")
    np.testing.assert_allclose(rec.signal[0], ints * 4.88e-3, rtol=1e-6)
    m = rec.metadata["measurements"]
    assert (m["VentricularRate"], m["PRInterval"], m["QRSDuration"], m["QTInterval"]) == (60, 158, 80, 366)
    assert (m["PAxis"], m["RAxis"], m["TAxis"]) == (49, 55, 48)
    assert rec.statements() == ["Statement Text(22)", "Statement Text(1684)", "Statement Text(1300)"]
    assert rec.median_beats is not None and rec.median_beats["signal"].shape == (8, 600)
    assert "JAX12345" not in str(rec.readings())  # no patient field


def test_hl7_aecg_scale_and_representative_beat(shared_data: Path) -> None:
    path = shared_data / FORMATS_DIR / "CVRG_hl7aecg-Example2.xml"
    rec = read_ecg(path)
    assert (rec.format, rec.fs, rec.signal.shape, rec.leads_missing) == ("aecg", 1000.0, (12, 10000), [])
    text = path.read_text(encoding="utf-8")
    digits = text[text.index("<digits>") + 8 : text.index("</digits>")].split()  # lead I of the rhythm
    np.testing.assert_allclose(rec.signal[0], np.array(digits, dtype=float) * 2.5e-3, rtol=1e-6)
    assert rec.metadata["measurements"]["MDC_ECG_HEART_RATE"] == {"value": 52.0, "unit": "bmp"}
    assert rec.median_beats is not None and rec.median_beats["signal"].shape == (12, 1200)


def test_philips_xml_with_sierraecg(shared_data: Path) -> None:
    rec = read_ecg(shared_data / FORMATS_DIR / "2020-5-18_15-48-11.xml")
    assert (rec.format, rec.fs, rec.signal.shape, rec.leads_missing) == ("philips", 500.0, (12, 5500), [])
    assert rec.duration == pytest.approx(11.0)
    statements = " | ".join(rec.statements())
    for expected in ("Sinus rhythm", "Abnormal R-wave progression, early transition", "OTHERWISE NORMAL ECG"):
        assert expected in statements
    assert 0.2 < np.abs(rec.signal).max() < 10  # millivolts, not 5 µV units
    _einthoven(
        rec.signal[:, :5000], atol=0.02
    )  # the cart's limb leads obey Einthoven (before its 1 mV calibration pulses)


def test_dicom_waveform_from_pydicom() -> None:
    pydicom_data = pytest.importorskip("pydicom.data")
    path = pydicom_data.get_testdata_file("waveform_ecg.dcm")
    rec = read_ecg(path)
    assert (rec.format, rec.fs, rec.signal.shape, rec.leads_missing) == ("dicom", 1000.0, (12, 10000), [])
    assert rec.source_leads[0] == "Lead I (Einthoven)"
    assert rec.statements() == ["RITMO SINUSALE", "ECG NORMALE"]
    assert "Mortara" in rec.metadata["device"]
    import pydicom

    ds = pydicom.dcmread(path)
    raw = np.frombuffer(ds.WaveformSequence[0].WaveformData, dtype="<i2").reshape(-1, 12)
    np.testing.assert_allclose(rec.signal[0], raw[:, 0] * 1.25e-3, rtol=1e-6)  # sensitivity 1.25 µV


def test_cinc_cpsc_ptbdb_records(shared_data: Path) -> None:
    rec = read_ecg(shared_data / "ecg-records" / "cinc2021" / "E07500.hea")
    assert (rec.format, rec.fs, rec.signal.shape) == ("wfdb", 500.0, (12, 5000))
    assert read_ecg(shared_data / "ecg-records" / "cinc2021" / "E07500.mat").format == "wfdb"  # .mat beside a .hea
    cpsc = read_ecg(shared_data / "ecg-records" / "cpsc2018" / "A1980.mat")
    assert (cpsc.format, cpsc.fs, cpsc.leads_missing) == ("mat", 500.0, [])
    ptb = read_ecg(shared_data / "ecg-records" / "ptbdb" / "s0010_re.hea")
    assert ptb.fs == 1000.0 and ptb.extra_leads == ["vx", "vy", "vz"] and ptb.leads_missing == []
    ref = wfdb.rdrecord(str(shared_data / "ecg-records" / "ptbdb" / "s0010_re"))
    np.testing.assert_allclose(ptb.signal[3], ref.p_signal[:, list(ref.sig_name).index("avr")], rtol=1e-5)


# -- files written with each format's own library --------------------------------------------------


def test_wfdb_shuffled_lead_order_reads_the_same(tmp_path: Path) -> None:
    sig = _signal()
    order = rng.permutation(12)
    names = [STANDARD_LEADS[i].upper() for i in order]  # AVR spelling
    for name, idx, leads in (("std", np.arange(12), list(STANDARD_LEADS)), ("shuf", order, names)):
        wfdb.wrsamp(
            name,
            fs=500,
            units=["mV"] * 12,
            sig_name=leads,
            p_signal=sig[idx].T,
            fmt=["16"] * 12,
            write_dir=str(tmp_path),
        )
    a, b = read_ecg(tmp_path / "std.hea"), read_ecg(tmp_path / "shuf.hea")
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_allclose(a.signal, sig, atol=1e-3)


def test_wfdb_multi_segment(tmp_path: Path) -> None:
    sig = _signal(2000)
    for k, part in enumerate((sig[:, :1200], sig[:, 1200:])):
        wfdb.wrsamp(
            f"seg_{k}", fs=500, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=part.T,
            fmt=["16"] * 12, write_dir=str(tmp_path),
        )  # fmt: skip
    (tmp_path / "multi.hea").write_text("multi/2 12 500 2000\nseg_0 1200\nseg_1 800\n", encoding="utf-8")
    rec = read_ecg(tmp_path / "multi.hea")
    assert rec.signal.shape == (12, 2000)
    np.testing.assert_allclose(rec.signal, sig, atol=1e-3)


def test_edf_and_bdf_written_with_edfio(tmp_path: Path) -> None:
    edfio = pytest.importorskip("edfio")
    sig = _signal() * 1000  # µV
    for suffix, cls in ((".edf", edfio.Edf), (".bdf", edfio.Bdf)):
        signals = [
            (edfio.EdfSignal if suffix == ".edf" else edfio.BdfSignal)(
                sig[k], sampling_frequency=500, label=f"ECG {STANDARD_LEADS[k]}", physical_dimension="uV",
                physical_range=(-5000, 5000),
            )
            for k in range(12)
        ]  # fmt: skip
        path = tmp_path / f"rec{suffix}"
        cls(signals).write(path)
        rec = read_ecg(path)
        assert (rec.format, rec.fs, rec.leads_missing) == ("edf", 500.0, [])
        np.testing.assert_allclose(rec.signal, sig / 1000, atol=2e-3)


def test_npy_npz_and_csv_with_hints(tmp_path: Path) -> None:
    sig = _signal(1000)
    np.save(tmp_path / "a.npy", sig.T)  # (T, 12): the lead axis is found
    rec = read_ecg(tmp_path / "a.npy", fs=500)
    np.testing.assert_allclose(rec.signal, sig, rtol=1e-6)
    np.savez(tmp_path / "b.npz", signal=sig[[1, 0]], fs=np.array(250.0), leads=np.array(["II", "I"]))
    rec = read_ecg(tmp_path / "b.npz")
    assert rec.fs == 250.0 and rec.leads_found == ["I", "II", "III", "aVR", "aVL", "aVF"]
    np.testing.assert_allclose(rec.signal[0], sig[0], rtol=1e-6)
    with (tmp_path / "c.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "V1", "II", "I"])
        for t in range(sig.shape[1]):
            w.writerow([t / 500, sig[6, t], sig[1, t], sig[0, t]])
    rec = read_ecg(tmp_path / "c.csv", fs=500)
    assert rec.format == "csv" and rec.leads_found == ["I", "II", "III", "aVR", "aVL", "aVF", "V1"]
    assert rec.leads_missing == ["V2", "V3", "V4", "V5", "V6"] and not rec.leads_present[7:].any()
    np.testing.assert_allclose(rec.signal[6], sig[6], rtol=1e-6)
    assert np.all(rec.signal[7:] == 0)
    _einthoven(rec.signal, atol=1e-6)
    np.savetxt(tmp_path / "d.txt", sig[:3].T, delimiter=",")
    rec = read_ecg(tmp_path / "d.txt", fs=500, leads="I,II,V1")
    np.testing.assert_allclose(rec.signal[6], sig[2], rtol=1e-6)


def test_code15_hdf5_by_index(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    tr = np.zeros((3, 4096, 12), np.float32)
    tr[1, 48:4048] = _signal(4000).T + 0.1  # no all-zero sample inside the tracing
    with h5py.File(tmp_path / "exams_part0.hdf5", "w") as f:
        f["tracings"] = tr
        f["exam_id"] = np.array([10, 11, 12])
    rec = read_ecg(tmp_path / "exams_part0.hdf5", index=1)
    assert (rec.format, rec.fs, rec.signal.shape, rec.metadata["exam_id"]) == ("hdf5", 400.0, (12, 4000), 11)
    with pytest.raises(ECGReadError, match="holds 3 exams; pass index="):
        read_ecg(tmp_path / "exams_part0.hdf5")


# -- bad input: one line naming the file, the format and what is wrong ----------------------------------


def _muse_with(tmp_path: Path, shared_data: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    text = (shared_data / FORMATS_DIR / "musePHI_muse_ecg2.xml").read_text(encoding="latin-1")
    out = tmp_path / "bad_muse.xml"
    out.write_text(edit(text), encoding="latin-1")
    return out


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.hea", lambda p: p.write_text(""), r"empty\.hea: wfdb: empty WFDB header"),
        (
            "words.csv",
            lambda p: p.write_text("I,II\n0.1,0.2\n0.3,abc\n"),
            r"csv: non-numeric value 'abc' in column 'II'",
        ),
        (
            "unknown.csv",
            lambda p: p.write_text("X1,X2\n0.1,0.2\n"),
            r"csv: no standard lead among the columns \['X1', 'X2'\]",
        ),
        ("noname.csv", lambda p: p.write_text("0.1,0.2\n0.3,0.4\n"), r"csv: no header row with lead names"),
        ("empty.bin", lambda p: p.write_bytes(b""), r"empty\.bin: unknown format: the file is empty"),
        ("other.xml", lambda p: p.write_text("<?xml version='1.0'?><svg/>"), r"root element <svg>"),
    ],
)
def test_bad_files_fail_in_one_line(tmp_path: Path, name: str, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    make(path)
    with pytest.raises(ECGReadError, match=message) as info:
        read_ecg(path, fs=500)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_base64_in_muse(tmp_path: Path, shared_data: Path) -> None:
    def cut(text: str) -> str:
        i = text.index("<WaveformType>Rhythm")
        j = text.index("</WaveFormData>", i)
        return text[:j].rstrip()[:-6] + text[j:]

    with pytest.raises(ECGReadError, match=r"bad_muse\.xml: muse: lead I: WaveFormData .*(base64|bytes)"):
        read_ecg(_muse_with(tmp_path, shared_data, cut))


def test_detection_is_by_content_not_suffix(tmp_path: Path, shared_data: Path) -> None:
    renamed = tmp_path / "export.dat"
    renamed.write_bytes((shared_data / FORMATS_DIR / "2020-5-18_15-48-11.xml").read_bytes())
    assert detect_format(renamed) == "philips"
    np.save(tmp_path / "x.npy", np.zeros((12, 10)))
    (tmp_path / "x.npy").rename(tmp_path / "x.bin")
    assert detect_format(tmp_path / "x.bin") == "npy"


def test_unknown_hint_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown read_ecg hint"):
        read_ecg(tmp_path / "x.csv", rate=500)
