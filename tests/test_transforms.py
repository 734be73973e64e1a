"""Transforms: MELP min-max and z-score against naive formulas, seeded lead masking, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly

from melp.data.transforms import Compose, Normalize, RandomLeadMask, Resample, build_transform


def _record(seed: int = 0, shape: tuple[int, ...] = (12, 500)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 0.5, (*shape[:-1], 1))
    return (rng.normal(0, 1, shape) + offsets).astype(np.float32)


def test_minmax_matches_reference_formula_and_range() -> None:
    x = _record()
    out = Normalize(method="minmax")(x)
    x64 = x.astype(np.float64)
    expected = (x64 - x64.min()) / (x64.max() - x64.min() + 1e-8)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    assert out.min() == 0.0 and 0.999 < out.max() <= 1.0


def test_minmax_is_per_record_on_batches() -> None:
    batch = np.stack([_record(0), 3 * _record(1) + 7])  # (2, 12, T)
    out = Normalize(method="minmax")(batch)
    for b in range(2):
        np.testing.assert_allclose(out[b], Normalize(method="minmax")(batch[b]), atol=1e-7)
        assert out[b].min() == 0.0


def test_zscore_per_lead_matches_naive() -> None:
    x = _record(2)
    x[3] = 0.25  # a flat lead
    out = Normalize(method="zscore")(x)
    for lead in range(12):
        if lead == 3:
            np.testing.assert_array_equal(out[lead], 0.0)
            continue
        ref = (x[lead] - x[lead].mean()) / x[lead].std()
        np.testing.assert_allclose(out[lead], ref, atol=1e-5)
        assert abs(out[lead].mean()) < 1e-5 and abs(out[lead].std() - 1) < 1e-5


def test_normalize_never_mutates_and_none_copies() -> None:
    x = _record(3)
    before = x.copy()
    for method in ("minmax", "zscore", "none"):
        out = Normalize(method=method)(x)
        assert out is not x
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(Normalize(method="none")(x), x)


def test_constant_record_gives_zeros_not_nan() -> None:
    out = Normalize(method="minmax")(np.full((12, 50), 2.0, np.float32))
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("method", ["minmax", "zscore"])
def test_nan_input_is_an_error(method: str) -> None:
    x = _record()
    x[5, 10] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        Normalize(method=method)(x)  # type: ignore[arg-type]


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="normalization must be one of"):
        Normalize(method="robust")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy array"):
        Normalize()(torch.zeros(12, 10))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability"):
        RandomLeadMask(keep=1.5)
    with pytest.raises(ValueError, match="both fs_in and fs_out"):
        build_transform(fs_in=500)
    with pytest.raises(ValueError, match="mask_value"):
        build_transform(lead_mask_keep=0.5, mask_value="mean")  # type: ignore[arg-type]


def test_lead_mask_keep_fraction_and_whole_leads() -> None:
    mask = RandomLeadMask(keep=0.3, seed=11)
    x = np.ones((4000, 12, 8), np.float32)  # a batch draws every decision at once
    out = mask(x)
    kept = out[..., 0] == 1.0  # (B, C)
    assert np.array_equal(out, np.broadcast_to(out[..., :1], out.shape))  # whole leads only
    n = kept.size
    assert abs(kept.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    per_lead = kept.mean(axis=0)
    assert np.all(np.abs(per_lead - 0.3) < 0.05)


def test_lead_mask_deterministic_for_a_seed() -> None:
    x = _record(4)
    np.testing.assert_array_equal(RandomLeadMask(keep=0.5, seed=7)(x), RandomLeadMask(keep=0.5, seed=7)(x))
    m = RandomLeadMask(keep=0.5, seed=7)
    first, second = m(x), m(x)
    assert not np.array_equal(first, second)  # the stream advances
    m.reseed(7)
    np.testing.assert_array_equal(m(x), first)
    assert not np.array_equal(RandomLeadMask(keep=0.5, seed=8)(x), first)


def _masked_leads(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isclose(out, reference, atol=1e-6).all(axis=-1))


def test_baseline_mask_sits_at_zero_millivolts_after_minmax() -> None:
    x = _record(5) + 0.3
    out = build_transform(normalization="minmax", lead_mask_keep=0.5, mask_value="baseline", seed=3)(x)
    kept_mask = RandomLeadMask(keep=0.5, seed=3)(np.ones((12, 1), np.float32))[:, 0] == 1.0
    masked = np.flatnonzero(~kept_mask)
    assert 0 < len(masked) < 12
    masked_mv = x.copy()
    masked_mv[masked] = 0.0
    lo, hi = masked_mv.min(), masked_mv.max()
    zero_level = (0.0 - lo) / (hi - lo + 1e-8)
    np.testing.assert_allclose(out[masked], zero_level, atol=1e-6)
    np.testing.assert_allclose(out[kept_mask], ((masked_mv - lo) / (hi - lo + 1e-8))[kept_mask], atol=1e-6)
    assert 0.0 < zero_level < 1.0  # the baseline, not the minimum


def test_default_zero_mask_is_the_reference_minimum_after_scaling() -> None:
    x = _record(5) + 0.3
    out = build_transform(normalization="minmax", lead_mask_keep=0.5, seed=3)(x)  # the default is the reference's
    kept_mask = RandomLeadMask(keep=0.5, seed=3)(np.ones((12, 1), np.float32))[:, 0] == 1.0
    scaled = Normalize(method="minmax")(x)
    np.testing.assert_array_equal(out[~kept_mask], 0.0)
    np.testing.assert_allclose(out[kept_mask], scaled[kept_mask], atol=1e-7)


def test_all_leads_masked_is_finite() -> None:
    out = build_transform(lead_mask_keep=0.0)(_record())
    np.testing.assert_array_equal(out, 0.0)


def test_compose_copies_caller_list_and_reseed_is_deterministic() -> None:
    steps = [Normalize(method="minmax"), RandomLeadMask(keep=0.5)]
    composed = Compose(steps)
    steps.append(Normalize(method="zscore"))
    assert len(composed.transforms) == 2
    x = _record(6)
    composed.reseed([1, 2])
    first = composed(x)
    composed.reseed([1, 2])
    np.testing.assert_array_equal(composed(x), first)


def test_build_transform_orders_steps() -> None:
    t = build_transform(normalization="zscore", lead_mask_keep=0.5, mask_value="baseline", fs_in=500, fs_out=100)
    assert [type(s).__name__ for s in t.transforms] == ["Resample", "RandomLeadMask", "Normalize"]
    t = build_transform(lead_mask_keep=0.5, mask_value="zero", fs_in=500, fs_out=500)
    assert [type(s).__name__ for s in t.transforms] == ["Normalize", "RandomLeadMask"]
    assert [type(s).__name__ for s in build_transform().transforms] == ["Normalize"]


def test_resample_500_to_100_matches_scipy_and_keeps_a_sine() -> None:
    t = np.arange(5000) / 500.0
    x = np.tile(np.sin(2 * np.pi * 5 * t), (12, 1)).astype(np.float32)  # 5 Hz, well under 50 Hz Nyquist
    out = Resample(fs_in=500, fs_out=100)(x)
    assert out.shape == (12, 1000) and out.dtype == np.float32
    np.testing.assert_allclose(out, resample_poly(x, 1, 5, axis=-1), atol=1e-6)
    expected = np.sin(2 * np.pi * 5 * np.arange(1000) / 100.0)
    np.testing.assert_allclose(out[:, 50:-50], np.broadcast_to(expected, (12, 1000))[:, 50:-50], atol=1e-2)


def test_resample_rejects_aliasing_tone() -> None:
    t = np.arange(5000) / 500.0
    x = np.sin(2 * np.pi * 120 * t)[None, :].astype(np.float32)  # above the 50 Hz output Nyquist
    out = Resample(fs_in=500, fs_out=100)(x)
    assert np.abs(out[:, 50:-50]).max() < 0.05


def test_resample_then_normalise_equals_native_rate_pipeline() -> None:
    x = _record(7, (12, 5000))
    via_store = build_transform(fs_in=500, fs_out=100)(x)
    native = Normalize(method="minmax")(Resample(fs_in=500, fs_out=100)(x))
    np.testing.assert_array_equal(via_store, native)
    assert via_store.shape == (12, 1000)
