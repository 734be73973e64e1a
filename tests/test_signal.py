"""Signal standardisation: units, lead order, NaN repair, quality checks, resampling, crop/pad (issue 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from melp.data.leads import STANDARD_LEADS, canonical_lead_name
from melp.data.signal import (
    RecordError,
    SignalPolicy,
    check_quality,
    fit_length,
    repair_nonfinite,
    resample,
    standardize,
    to_millivolts,
    unit_scale,
)


def _ecg(n: int = 5000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(12, n))


@pytest.mark.parametrize(
    ("unit", "scale"),
    [("mV", 1.0), ("mv", 1.0), ("MV", 1.0), ("uV", 1e-3), ("µV", 1e-3), ("μV", 1e-3), ("V", 1e3), ("nV", 1e-6)],
)
def test_voltage_units_convert_to_millivolts(unit: str, scale: float) -> None:
    x = _ecg(10)
    out, stored = to_millivolts(x, [unit] * 12)
    np.testing.assert_allclose(out, x * scale)
    assert stored == "mV"


def test_unitless_kept_or_skipped_by_policy() -> None:
    x = _ecg(10)
    out, stored = to_millivolts(x, ["NU"] * 12, unitless="keep")
    np.testing.assert_array_equal(out, x)
    assert stored == "NU"
    with pytest.raises(RecordError, match="unitless"):
        to_millivolts(x, ["NU"] * 12, unitless="skip")


def test_unknown_and_mixed_units_are_rejected() -> None:
    with pytest.raises(RecordError, match="unknown units 'mmHg'"):
        unit_scale("mmHg")
    with pytest.raises(RecordError, match="mix"):
        to_millivolts(_ecg(10), ["mV"] * 11 + ["NU"])


def test_short_nan_gap_is_linearly_interpolated() -> None:
    policy = SignalPolicy()
    x = _ecg()
    x[3, 100:110] = np.nan
    x[7, 2000] = np.inf
    out, n = repair_nonfinite(x, 500, policy)
    assert n == 11 and np.isfinite(out).all()
    expected = np.linspace(x[3, 99], x[3, 110], 12)[1:-1]
    np.testing.assert_allclose(out[3, 100:110], expected)
    assert out[7, 2000] == pytest.approx((x[7, 1999] + x[7, 2001]) / 2)
    np.testing.assert_array_equal(out[:, :100], x[:, :100])


def test_long_nan_gap_or_too_many_nans_are_rejected() -> None:
    policy = SignalPolicy(max_gap_seconds=0.1, max_nan_fraction=0.01)
    x = _ecg()
    x[0, :60] = np.nan
    with pytest.raises(RecordError, match="run of 60 non-finite"):
        repair_nonfinite(x, 500, policy)
    y = _ecg()
    y[:, ::40] = np.nan
    with pytest.raises(RecordError, match="non-finite samples"):
        repair_nonfinite(y, 500, policy)


def test_quality_checks_name_the_fault() -> None:
    policy = SignalPolicy()
    with pytest.raises(RecordError, match="all-zero"):
        check_quality(np.zeros((12, 100)), policy)
    x = _ecg(100)
    x[4] = 0.3
    with pytest.raises(RecordError, match=r"flat lead\(s\) \['aVL'\]"):
        check_quality(x, policy)
    check_quality(_ecg(100), policy)


def test_resample_recovers_a_band_limited_signal() -> None:
    t_in = np.arange(4000) / 400
    x = np.sin(2 * np.pi * 7 * t_in)[None].repeat(12, 0)
    y = resample(x, 400, 500)
    assert y.shape == (12, 5000)
    t_out = np.arange(5000) / 500
    interior = slice(200, 4800)
    np.testing.assert_allclose(y[:, interior], np.sin(2 * np.pi * 7 * t_out)[None, interior].repeat(12, 0), atol=1e-3)


def test_resample_is_anti_aliased() -> None:
    t = np.arange(5000) / 500
    x = np.sin(2 * np.pi * 190 * t)[None]  # above the 50 Hz Nyquist frequency of 100 Hz
    naive = x[:, ::5]  # aliases to a 10 Hz wave of the full amplitude
    ours = resample(x, 500, 100)
    assert np.abs(naive).max() > 0.5
    assert np.abs(ours[:, 50:-50]).max() < 0.01


def test_crop_and_pad_follow_the_policy() -> None:
    policy = SignalPolicy(fs=100, seconds=10, max_pad_seconds=1.0)
    long = _ecg(1500)
    out, meta = fit_length(long, policy)
    np.testing.assert_array_equal(out, long[:, :1000])
    assert meta == {"orig_seconds": 15.0, "length_policy": "cropped", "pad_seconds": 0.0}
    centre, _ = fit_length(long, SignalPolicy(fs=100, seconds=10, crop="centre"))
    np.testing.assert_array_equal(centre, long[:, 250:1250])
    short = _ecg(950)
    out, meta = fit_length(short, policy)
    np.testing.assert_array_equal(out[:, :950], short)
    assert not out[:, 950:].any()
    assert meta["length_policy"] == "padded" and meta["pad_seconds"] == 0.5
    with pytest.raises(RecordError, match=r"record is 5.00 s, shorter than the 9.00 s minimum"):
        fit_length(_ecg(500), policy)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=50, max_value=3000),
    fs_in=st.sampled_from([100, 257, 360, 400, 500, 1000]),
    fs_out=st.sampled_from([100, 250, 500]),
    seconds=st.sampled_from([2.0, 5.0]),
    max_pad=st.sampled_from([0.0, 0.5, 1.5]),
    crop=st.sampled_from(["start", "centre"]),
)
def test_resample_then_fit_keep_their_promises(
    n: int, fs_in: int, fs_out: int, seconds: float, max_pad: float, crop: str
) -> None:
    x = np.random.default_rng(n).normal(size=(12, n))
    y = resample(x, fs_in, fs_out)
    assert y.shape == (12, math.ceil(n * fs_out / fs_in))
    np.testing.assert_allclose(y, resample_poly(x, fs_out, fs_in, axis=-1) if fs_in != fs_out else x)
    policy = SignalPolicy(fs=fs_out, seconds=seconds, max_pad_seconds=max_pad, crop=crop)  # type: ignore[arg-type]
    target = policy.n_samples
    if y.shape[1] + round(max_pad * fs_out) < target:
        with pytest.raises(RecordError):
            fit_length(y, policy)
        return
    out, meta = fit_length(y, policy)
    assert out.shape == (12, target)
    if y.shape[1] >= target:
        start = (y.shape[1] - target) // 2 if crop == "centre" else 0
        np.testing.assert_array_equal(out, y[:, start : start + target])
        assert meta["length_policy"] == ("cropped" if y.shape[1] > target else "exact")
    else:
        np.testing.assert_array_equal(out[:, : y.shape[1]], y)
        assert not out[:, y.shape[1] :].any()
        assert meta["pad_seconds"] == pytest.approx((target - y.shape[1]) / fs_out, abs=1e-4)


def test_standardize_reorders_leads_by_name_and_ignores_extra_leads() -> None:
    names = ["v6", "AVL", "I", "II", "III", "AVR", "avf", "V1", "V2", "V3", "V4", "V5", "vx"]
    x = np.arange(13, dtype=float)[:, None] + np.random.default_rng(1).normal(size=(13, 1000))
    out, meta = standardize(x, lead_names=names, units=["uV"] * 13, fs=100, policy=SignalPolicy(fs=100, seconds=10))
    lower = [n.lower() for n in names]
    for i, lead in enumerate(STANDARD_LEADS):
        np.testing.assert_allclose(out[i], x[lower.index(lead.lower())] * 1e-3, rtol=1e-6)
    assert out.dtype == np.float32
    assert meta["units"] == "mV" and meta["orig_fs"] == 100.0 and meta["length_policy"] == "exact"


@pytest.mark.parametrize(
    ("names", "fs", "reason"),
    [
        (["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5"], 500, r"missing lead\(s\) \['V6'\]"),
        (["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "avl"], 500, "appears twice"),
        (list(STANDARD_LEADS), 20, "sampling rate 20"),
        (list(STANDARD_LEADS), 50_000, "sampling rate 50000"),
    ],
)
def test_standardize_rejects_bad_leads_and_rates(names: list[str], fs: int, reason: str) -> None:
    x = np.random.default_rng(0).normal(size=(len(names), 1000))
    with pytest.raises(RecordError, match=reason):
        standardize(x, lead_names=names, units=["mV"] * len(names), fs=fs, policy=SignalPolicy())


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("AVL", "aVL"), ("avl", "aVL"), ("aVL", "aVL"), ("v1", "V1"), ("DII", "II"), ("Lead III", "III"), ("vx", None)],
)
def test_lead_aliases(name: str, canonical: str | None) -> None:
    assert canonical_lead_name(name) == canonical
