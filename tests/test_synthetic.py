"""Synthetic corpus: lead physics, rhythm and interval ground truth, report ↔ label agreement, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, filtfilt, find_peaks

from melp.cli.main import main as melp_main
from melp.data import build_store, open_store
from melp.data.synthetic import (
    LABEL_CODES,
    RHYTHM_CODES,
    SynthItem,
    generate,
    generate_record,
    parse_report,
    process_item,
    sample_findings,
)
from melp.data.synthetic.findings import coherence_errors
from melp.data.synthetic.reports import split_sentences

FS = 500
N_RECORDS = 300
LEAD = {name: i for i, name in enumerate(("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"))}
RATE_LIMITS = {"SBRAD": (0, 60), "SR": (60, 100), "SARRH": (60, 100), "STACH": (100, 1000)}


@pytest.fixture(scope="module")
def noisy():
    return generate(N_RECORDS, seed=11)


@pytest.fixture(scope="module")
def clean():
    return generate(N_RECORDS, seed=11, noise=False)


def _with(records, code):
    chosen = [r for r in records if code in r.labels]
    assert chosen, f"no record with {code} among {len(records)}; the test corpus is too small"
    return chosen


def _normal_rr(record) -> np.ndarray:
    """RR intervals (s) between consecutive conducted (N) beats of the ground truth."""
    samples = np.array(record.extra["beat_samples"])
    types = np.array(record.extra["beat_types"])
    both_normal = (types[1:] == "N") & (types[:-1] == "N")
    return np.diff(samples)[both_normal] / FS


def _detect_rate(lead_ii: np.ndarray) -> float:
    """Heart rate from an R-peak detector independent of the generator (band-pass + peak picking)."""
    b, a = butter(3, [10.0, 35.0], btype="bandpass", fs=FS)
    envelope = np.abs(filtfilt(b, a, lead_ii))
    candidates, _ = find_peaks(envelope, distance=int(0.36 * FS))
    threshold = 0.3 * np.sort(envelope[candidates])[-4]  # robust to a few outsized beats
    peaks, _ = find_peaks(envelope, height=threshold, distance=int(0.36 * FS))  # refractory period
    return 60.0 / float(np.median(np.diff(peaks) / FS))


def test_einthoven_goldberger_hold_to_float_precision(noisy):
    for record in noisy[:50]:
        s = record.signal.astype(np.float64)
        lead_i, lead_ii = s[LEAD["I"]], s[LEAD["II"]]
        np.testing.assert_allclose(s[LEAD["III"]], lead_ii - lead_i, atol=1e-6)
        np.testing.assert_allclose(s[LEAD["aVR"]], -(lead_i + lead_ii) / 2, atol=1e-6)
        np.testing.assert_allclose(s[LEAD["aVL"]], lead_i - lead_ii / 2, atol=1e-6)
        np.testing.assert_allclose(s[LEAD["aVF"]], lead_ii - lead_i / 2, atol=1e-6)


def test_precordial_leads_change_smoothly(clean):
    chest = [LEAD[f"V{k}"] for k in range(1, 7)]
    neighbours, ends = [], []
    for record in clean[:100]:
        corr = np.corrcoef(record.signal[chest])
        neighbours.append(np.mean([corr[k, k + 1] for k in range(5)]))
        ends.append(corr[0, 5])
    assert np.mean(neighbours) > 0.8
    assert np.mean(neighbours) > np.mean(ends) + 0.5


def test_amplitudes_and_noise_are_realistic(noisy, clean):
    for rec, ref in zip(noisy, clean, strict=True):
        assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 5000)
        assert np.isfinite(rec.signal).all()
        qrs_p2p = np.ptp(ref.signal, axis=1)
        assert np.abs(ref.signal).max() < 6.0, rec.labels  # severe LVH reaches ~5 mV in V2
        if "LVOLT" not in rec.labels:
            assert qrs_p2p.max() > 0.5, rec.labels
        noise = rec.signal - ref.signal
        hf = noise[:, 1:] - noise[:, :-1]  # wander removed: muscle + mains
        assert hf.std() < 0.1
        assert np.abs(noise).max() < 1.0
    assert 0.003 <= np.median([r.extra["noise_mv"] for r in noisy]) <= 0.03


def test_heart_rate_in_each_rate_labels_band(noisy):
    checked = 0
    for record in noisy:
        rhythm = next(c for c in record.labels if c in RHYTHM_CODES)
        if rhythm not in RATE_LIMITS:
            continue
        lo, hi = RATE_LIMITS[rhythm]
        truth = 60.0 / float(np.mean(_normal_rr(record)))
        assert lo <= truth <= hi, (record.id, rhythm, truth)
        if "PVC" in record.labels:
            continue  # a band-pass detector misses wide PVCs, so its median RR spans the compensatory pause
        lead_ii_qrs = min(np.ptp(record.signal[LEAD["II"], a:b]) for a, b in _qrs_windows(record))
        if lead_ii_qrs < 0.4:
            continue  # QRS axis nearly perpendicular to lead II (or low voltage): no lead-II detector sees it
        detected = _detect_rate(record.signal[LEAD["II"]].astype(np.float64))
        assert lo <= detected <= hi, (record.id, record.labels, detected, truth)
        all_beats = 60.0 / float(np.median(np.diff(record.extra["beat_samples"]) / FS))
        assert abs(detected - all_beats) / all_beats < 0.1, (record.id, record.labels, detected, all_beats)
        checked += 1
    assert checked > 100


def test_rr_irregularity_high_for_af_low_for_sinus(noisy):
    def cv(record):
        rr = np.diff(np.array(record.extra["beat_samples"]) / FS)
        return rr.std() / rr.mean()

    af = [cv(r) for r in _with(noisy, "AFIB")]
    regular = [cv(r) for r in noisy if r.labels[0] == "SR" and not {"PVC", "PAC"} & set(r.labels)]
    assert min(af) > 0.1
    assert max(regular) < 0.06
    assert min(cv(r) for r in _with(noisy, "SARRH") if not {"PVC", "PAC"} & set(r.labels)) > 0.05


def _durations(record, start: str, end: str, kind: str = "N") -> np.ndarray:
    on, off = np.array(record.extra[f"{start}"]), np.array(record.extra[f"{end}"])
    types = np.array(record.extra["beat_types"])
    ok = (on >= 0) & (off >= 0) & (types == kind)
    return (off[ok] - on[ok]) / FS


def test_bundle_branch_blocks_have_wide_qrs(noisy):
    for record in noisy:
        qrs = _durations(record, "qrs_onsets", "qrs_offsets")
        if {"CLBBB", "CRBBB"} & set(record.labels):
            assert qrs.min() >= 0.12, (record.id, qrs.min())
        else:
            assert qrs.max() < 0.12, (record.id, qrs.max())
        pvc = _durations(record, "qrs_onsets", "qrs_offsets", kind="PVC")
        assert (pvc >= 0.12).all()


def test_first_degree_block_prolongs_pr_and_af_has_no_p_waves(noisy):
    for record in noisy:
        pr = _durations(record, "p_onsets", "qrs_onsets")
        if "1AVB" in record.labels:
            assert pr.size and pr.min() >= 0.2, record.id
        elif {"AFIB", "AFLT"} & set(record.labels):
            assert (np.array(record.extra["p_onsets"]) == -1).all(), record.id
        else:
            assert pr.size and pr.max() < 0.2, record.id


def test_long_qt_from_ground_truth(noisy):
    for record in noisy:
        samples = np.array(record.extra["beat_samples"])
        on, t_off = np.array(record.extra["qrs_onsets"]), np.array(record.extra["t_offsets"])
        types = np.array(record.extra["beat_types"])
        ok = (types[1:] == "N") & (types[:-1] == "N") & (on[1:] >= 0) & (t_off[1:] >= 0)
        rr = np.diff(samples)[ok] / FS  # each beat's preceding RR (Bazett's correction uses it)
        qtc = np.median((t_off[1:][ok] - on[1:][ok]) / FS / np.sqrt(np.clip(rr, 0.3, 2.0)))
        if "LNGQT" in record.labels:
            assert qtc > 0.48, (record.id, qtc)
        else:
            assert qtc < 0.44, (record.id, qtc)


def _qrs_windows(record, margin: int = 0) -> list[tuple[int, int]]:
    """(onset, offset) sample pairs of the conducted (N) beats lying wholly inside the record."""
    on, off = np.array(record.extra["qrs_onsets"]), np.array(record.extra["qrs_offsets"])
    types = np.array(record.extra["beat_types"])
    n = record.signal.shape[1]
    keep = (on >= margin) & (off >= 0) & (off + margin < n) & (types == "N")
    return list(zip(on[keep].tolist(), off[keep].tolist(), strict=True))


def test_qrs_axis_measured_from_the_signal_matches_axis_labels(clean):
    for record in clean:
        truth = record.extra["qrs_axis"]
        labels = set(record.labels)
        assert (truth < -30) == ("LAD" in labels) and (truth > 90) == ("RAD" in labels), (record.id, truth)
        if {"AFLT", "LVOLT"} & labels:
            continue  # flutter waves or ST-T overlap bias a small QRS's area; the ground truth is checked above
        area = np.zeros(2)
        for a, b in _qrs_windows(record, margin=5):
            lead_i_avf = record.signal[[LEAD["I"], LEAD["aVF"]]].astype(np.float64)
            area += (lead_i_avf[:, a:b] - lead_i_avf[:, a - 5 : a].mean(axis=1, keepdims=True)).sum(axis=1)
        axis = np.rad2deg(np.arctan2(area[1], area[0]))
        if "LAD" in labels:
            assert axis < -30, (record.id, axis)
        elif "RAD" in labels:
            assert axis > 90, (record.id, axis)
        else:
            assert -30 <= axis <= 90, (record.id, record.labels, axis)


def test_voltage_criteria(clean):
    limb = [LEAD[x] for x in ("I", "II", "III", "aVR", "aVL", "aVF")]
    for record in clean:
        windows = _qrs_windows(record)
        qrs = np.concatenate([record.signal[:, a:b] for a, b in windows], axis=1)  # (12, samples in QRS)
        sokolow = -qrs[LEAD["V1"]].min() + max(qrs[LEAD["V5"]].max(), qrs[LEAD["V6"]].max())
        limb_p2p = min(np.ptp(record.signal[limb, a:b], axis=1).max() for a, b in windows)
        if "LVH" in record.labels:
            assert sokolow >= 3.5, (record.id, record.labels, sokolow)
        elif "LVOLT" in record.labels:
            assert limb_p2p < 0.5 or "AFLT" in record.labels, (record.id, limb_p2p)  # flutter waves add to it
        elif not {"CLBBB", "CRBBB"} & set(record.labels):
            assert sokolow < 3.5 and limb_p2p >= 0.5, (record.id, record.labels, sokolow, limb_p2p)


def _st_level(record) -> np.ndarray:
    """(12,) median ST level at J + 20 ms relative to the PR segment 20 ms before QRS onset (mV)."""
    windows = np.array(_qrs_windows(record, margin=10))
    return np.median(record.signal[:, windows[:, 1] + 10] - record.signal[:, windows[:, 0] - 10], axis=1)


def test_st_deviation(clean):
    for record in clean:
        if "AFLT" in record.labels:
            continue  # flutter waves run through the ST segment
        st = _st_level(record)
        if "STE" in record.labels:
            assert st.max() >= 0.1, (record.id, st.round(2))
        elif "STD" in record.labels:
            assert st.min() <= -0.1, (record.id, st.round(2))
        elif not {"CLBBB", "CRBBB"} & set(record.labels):
            assert np.abs(st).max() < 0.1, (record.id, record.labels, st.round(2))


def _t_peaks(record) -> np.ndarray:
    """(12,) median T-wave value at the middle of the ground-truth T wave."""
    on, off = np.array(record.extra["t_onsets"]), np.array(record.extra["t_offsets"])
    types = np.array(record.extra["beat_types"])
    keep = (on >= 0) & (off >= 0) & (types == "N")
    return np.median(record.signal[:, (on[keep] + off[keep]) // 2], axis=1)


def test_t_wave_inversion(clean):
    leads = [LEAD[x] for x in ("I", "II", "V3", "V4", "V5", "V6")]
    for record in clean:
        inverted = int((_t_peaks(record)[leads] < -0.05).sum())
        if "INVT" in record.labels:
            assert inverted >= 2, (record.id, record.labels)
        elif "NORM" in record.labels:
            assert inverted == 0, record.id


def test_reports_state_exactly_the_labels(noisy):
    for record in noisy:
        assert record.report.endswith(".")
        assert parse_report(record.report) == record.labels
        sentences = split_sentences(record.report)
        summaries = [s for s in sentences if s in ("Borderline ECG", "Abnormal ECG")]
        assert len(sentences) == len(record.labels) + len(summaries)
        assert len(summaries) <= 1


def test_reports_vary():
    reports = {generate_record(seed=3, index=i, noise=False).report for i in range(300)}
    normal = [r for r in reports if "Normal ECG" in r or "Within normal limits" in r or "Normal tracing" in r]
    assert len(set(normal)) >= 5
    with pytest.raises(ValueError, match="unknown sentence"):
        parse_report("Sinus rhythm. Something else entirely.")


def test_findings_are_coherent_and_cover_every_code():
    rng = np.random.default_rng(0)
    seen: dict[str, int] = dict.fromkeys(LABEL_CODES, 0)
    for _ in range(5000):
        f = sample_findings(rng)
        assert coherence_errors(f.codes) == [], f.codes
        for code in f.codes:
            seen[code] += 1
    assert min(seen.values()) >= 50, seen
    assert coherence_errors(("AFIB", "1AVB")) == ["AFIB with 1AVB"]
    assert "NORM" in " ".join(coherence_errors(("SR", "LAD", "NORM")))


def test_deterministic_and_worker_independent(tmp_path):
    a = generate_record(seed=7, index=3)
    b = generate_record(seed=7, index=3)
    np.testing.assert_array_equal(a.signal, b.signal)
    assert (a.report, a.labels, a.extra) == (b.report, b.labels, b.extra)
    batch = generate(3, seed=7, start=2)
    np.testing.assert_array_equal(batch[1].signal, a.signal)
    assert generate_record(seed=8, index=3).report != a.report or not np.array_equal(
        generate_record(seed=8, index=3).signal, a.signal
    )
    serial = build_store(
        tmp_path / "serial", [SynthItem(seed=7, index=i) for i in range(6)], process_item,
        fs=FS, seconds=10.0, source="synthetic", shard_size=4, progress=False,
    )  # fmt: skip
    assert melp_main(["synth", "--n", "6", "--out", str(tmp_path / "par"), "--seed", "7", "--workers", "2",
                      "--shard-size", "3", "--no-progress"]) == 0  # fmt: skip
    parallel = open_store(tmp_path / "par")
    np.testing.assert_array_equal(np.asarray(serial.signals), np.asarray(parallel.signals))
    assert serial.meta.to_dict("records") == parallel.meta.to_dict("records")
    assert parallel.manifest["source"] == "synthetic" and parallel.manifest["n_kept"] == 6
    np.testing.assert_allclose(np.asarray(parallel.signals[3], dtype=np.float32), a.signal, atol=2e-3)
    assert {"beat_samples", "beat_types", "qrs_onsets", "t_offsets"} <= set(parallel.meta.columns)


def test_other_rates_and_lengths_and_bad_input():
    r = generate_record(seed=1, index=0, fs=100, seconds=5.0)
    assert r.signal.shape == (12, 500)
    assert all(0 <= s < 500 for s in r.extra["beat_samples"])
    with pytest.raises(ValueError, match="non-negative"):
        generate_record(seed=-1, index=0)
    with pytest.raises(ValueError, match="fs"):
        generate_record(seed=0, index=0, fs=10)
