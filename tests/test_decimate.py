"""The cached polyphase decimator against scipy's resample_poly, and the transform that uses it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from melp.data.decimate import PolyphaseDecimator
from melp.data.transforms import Resample


@pytest.mark.parametrize("down", [2, 3, 5, 10])
@pytest.mark.parametrize("shape", [(12, 5000), (12, 4999), (2, 12, 1001), (1, 7)])
def test_decimator_equals_resample_poly(down: int, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(down).normal(size=shape).astype(np.float32) * 3.0
    want = resample_poly(x, 1, down, axis=-1)
    got = PolyphaseDecimator(down=down)(x)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(x).max())


def test_resample_transform_500_to_100_hz_is_unchanged() -> None:
    x = np.random.default_rng(0).normal(size=(12, 5000)).astype(np.float32)
    out = Resample(fs_in=500, fs_out=100)(x)
    np.testing.assert_allclose(out, resample_poly(x, 1, 5, axis=-1), rtol=0, atol=1e-5)
    up = Resample(fs_in=100, fs_out=500)(out)  # other ratios keep resample_poly itself
    np.testing.assert_array_equal(up, resample_poly(out, 5, 1, axis=-1).astype(np.float32))


def test_decimator_rejects_a_bad_factor() -> None:
    with pytest.raises(ValueError, match="integer >= 2"):
        PolyphaseDecimator(down=1)
