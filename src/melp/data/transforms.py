"""Per-record ECG transforms of MELP's data pipeline (melp-spec §4.2, §9 items 24 and 46).

MELP scales every record with one min-max over the whole ``(12, T)`` array to [0, 1]
(``(x - min) / (max - min + 1e-8)``) and, during pretraining, keeps each lead independently with
probability 0.5. This module provides those two steps, a per-lead z-score alternative, and
anti-aliased resampling so that a model trained at one rate can read a store written at another.

Conventions:
    * Transforms take and return **numpy** arrays of shape ``(..., C, T)`` (C leads, T samples;
      a single record ``(12, T)`` or a batch ``(B, 12, T)``), and return new float32 arrays; the
      input is never modified. Work is vectorised over all leading dimensions. Torch tensors are
      refused: :class:`melp.data.datasets.ECGDataset` applies the transform before converting.
    * Randomness comes from a ``numpy.random.Generator`` owned by the transform and seeded at
      construction; nothing touches the global RNGs. :meth:`Compose.reseed` gives each DataLoader
      worker its own stream (see :func:`melp.data.datasets.seed_worker`).

Masking value (:func:`build_transform` ``mask_value``; a model's ``MELPConfig.mask_value``):
    * ``"zero"`` (default, the reference's ``datasets/augmentations.py``): leads are set to 0
      *after* scaling, which under min-max is the record's minimum; the kept leads keep exactly
      the amplitudes that evaluation shows the model.
    * ``"baseline"``: leads are zeroed *before* normalisation, i.e. set to 0 mV, so after min-max
      scaling a masked lead sits at the record's 0 mV level and the min and max come from the kept
      leads (and 0 mV): the record looks as if those leads were disconnected, but the kept leads
      are rescaled, so training sees other amplitudes than evaluation.
    With z-score normalisation the two coincide up to the eps term (a zeroed lead z-scores to 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from scipy.signal import resample_poly

from melp.data.decimate import PolyphaseDecimator

logger = logging.getLogger(__name__)

Normalization = Literal["minmax", "zscore", "none"]
MaskValue = Literal["baseline", "zero"]
Transform = Callable[[np.ndarray], np.ndarray]

NORMALIZATIONS: tuple[str, ...] = ("minmax", "zscore", "none")
MASK_VALUES: tuple[str, ...] = ("baseline", "zero")
DEFAULT_EPS = 1e-8


def _as_signal(x: Any, *, name: str) -> np.ndarray:
    """``x`` as a float32 numpy array of shape ``(..., C, T)``, with a clear error otherwise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} expects a numpy array of shape (..., leads, samples), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} expects shape (..., leads, samples), got shape {x.shape}")
    return np.asarray(x, dtype=np.float32)


def _check_finite(stat: np.ndarray, *, name: str) -> None:
    if not np.isfinite(stat).all():
        raise ValueError(f"{name}: the signal contains NaN or Inf samples; clean the record before normalising")


class Normalize:
    """Amplitude normalisation: MELP's whole-record min-max, per-lead z-score, or none.

    * ``"minmax"``: ``(x - min) / (max - min + eps)`` with min and max over each record's whole
      ``(C, T)`` array (all leads together), giving values in [0, 1). A constant record maps to 0.
    * ``"zscore"``: ``(x - mean) / (std + eps)`` per lead over time (statistics in float64); a flat
      lead maps to 0.
    * ``"none"``: float32 copy of the input.

    Raises:
        ValueError: unknown method, or a record with NaN/Inf samples.
    """

    def __init__(self, *, method: Normalization = "minmax", eps: float = DEFAULT_EPS) -> None:
        if method not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {method!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.method = method
        self.eps = eps

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_signal(x, name="Normalize")
        if self.method == "minmax":
            lo = x.min(axis=(-2, -1), keepdims=True)  # (..., 1, 1)
            hi = x.max(axis=(-2, -1), keepdims=True)  # (..., 1, 1)
            _check_finite(hi - lo, name="Normalize(minmax)")
            out = np.subtract(x, lo, dtype=np.float32)
            out /= hi - lo + np.float32(self.eps)
            return out
        if self.method == "zscore":
            mean = x.mean(axis=-1, keepdims=True, dtype=np.float64)  # (..., C, 1)
            std = x.std(axis=-1, keepdims=True, dtype=np.float64)  # (..., C, 1)
            _check_finite(std, name="Normalize(zscore)")
            return ((x - mean) / (std + self.eps)).astype(np.float32)
        return x.copy()

    def __repr__(self) -> str:
        return f"Normalize(method={self.method!r}, eps={self.eps})"


class RandomLeadMask:
    """Keep each lead independently with probability ``keep``; set the dropped leads to ``value``.

    A batch ``(B, C, T)`` draws ``B × C`` independent decisions at once. All leads of a record can
    be dropped (probability ``(1 - keep) ** C``), as in the reference.

    Args:
        keep: probability that a lead is kept, in [0, 1] (MELP: 0.5).
        seed: seed of the transform's own ``numpy.random.Generator``.
        value: value written into dropped leads (0: 0 mV before scaling, or the minimum after
            min-max scaling; see the module docstring).
    """

    def __init__(self, *, keep: float, seed: int = 0, value: float = 0.0) -> None:
        if not 0.0 <= keep <= 1.0:
            raise ValueError(f"lead_mask_keep must be a probability in [0, 1], got {keep}")
        self.keep = float(keep)
        self.value = float(value)
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int | Sequence[int] | np.random.SeedSequence) -> None:
        """Restart the random stream from ``seed`` (an int, a sequence of ints or a SeedSequence)."""
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_signal(x, name="RandomLeadMask")
        dropped = self.rng.random(x.shape[:-1]) >= self.keep  # (..., C)
        out = x.copy()
        out[dropped] = self.value
        return out

    def __repr__(self) -> str:
        return f"RandomLeadMask(keep={self.keep}, value={self.value})"


class Resample:
    """Anti-aliased polyphase resampling along time (``scipy.signal.resample_poly``).

    ``T`` samples at ``fs_in`` become ``ceil(T × fs_out / fs_in)`` samples at ``fs_out``
    (5000 at 500 Hz → 1000 at 100 Hz). Identity when the rates are equal.
    """

    def __init__(self, *, fs_in: float, fs_out: float) -> None:
        if not (fs_in > 0 and fs_out > 0):
            raise ValueError(f"sampling rates must be positive, got fs_in={fs_in}, fs_out={fs_out}")
        ratio = Fraction(fs_out).limit_denominator(10_000) / Fraction(fs_in).limit_denominator(10_000)
        self.fs_in = fs_in
        self.fs_out = fs_out
        self.up = ratio.numerator
        self.down = ratio.denominator
        # integer decimation (500 → 100 Hz): the same filter as resample_poly, designed once, ≈ 6× faster
        self.decimate = PolyphaseDecimator(down=self.down) if self.up == 1 and self.down > 1 else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _as_signal(x, name="Resample")
        if self.up == self.down:
            return x.copy()
        if self.decimate is not None:
            return self.decimate(x)
        return resample_poly(x, self.up, self.down, axis=-1).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Resample(fs_in={self.fs_in}, fs_out={self.fs_out})"


class Compose:
    """Apply transforms in order. The sequence given is copied, never modified (melp-spec §9 item 46)."""

    def __init__(self, transforms: Iterable[Transform]) -> None:
        self.transforms: tuple[Transform, ...] = tuple(transforms)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            x = transform(x)
        return x

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Give every random member an independent stream derived from ``seed``."""
        random_members = [t for t in self.transforms if hasattr(t, "reseed")]
        children = np.random.SeedSequence(seed).spawn(len(random_members))
        for transform, child in zip(random_members, children):
            transform.reseed(child)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def build_transform(
    *,
    normalization: Normalization = "minmax",
    lead_mask_keep: float | None = None,
    mask_value: MaskValue = "zero",
    fs_in: float | None = None,
    fs_out: float | None = None,
    seed: int = 0,
    eps: float = DEFAULT_EPS,
) -> Compose:
    """The record transform of a training or evaluation pipeline.

    Order: resample (if ``fs_in != fs_out``) → lead mask (``"baseline"``) → normalise → lead mask
    (``"zero"``). Resampling first makes a 500 Hz store read at 100 Hz look like a 100 Hz store.

    Args:
        normalization: ``"minmax"`` (MELP), ``"zscore"`` (per lead) or ``"none"``.
        lead_mask_keep: probability of keeping each lead (MELP pretraining: 0.5); None: no masking
            (evaluation).
        mask_value: ``"zero"`` (the reference: 0 after scaling) or ``"baseline"`` (mask at 0 mV
            before scaling); see the module docstring.
        fs_in: rate of the stored signals; with ``fs_out``, the rate the model expects.
        seed: seed of the lead mask's random stream.
        eps: denominator guard of the normalisation.

    Raises:
        ValueError: unknown option, or only one of ``fs_in`` / ``fs_out`` given.
    """
    if mask_value not in MASK_VALUES:
        raise ValueError(f"mask_value must be one of {list(MASK_VALUES)}, got {mask_value!r}")
    if (fs_in is None) != (fs_out is None):
        raise ValueError(f"give both fs_in and fs_out to resample, or neither (got fs_in={fs_in}, fs_out={fs_out})")
    steps: list[Transform] = []
    if fs_in is not None and fs_out is not None and fs_in != fs_out:
        steps.append(Resample(fs_in=fs_in, fs_out=fs_out))
    mask = None if lead_mask_keep is None else RandomLeadMask(keep=lead_mask_keep, seed=seed)
    if mask is not None and mask_value == "baseline":
        steps.append(mask)
    steps.append(Normalize(method=normalization, eps=eps))
    if mask is not None and mask_value == "zero":
        steps.append(mask)
    transform = Compose(steps)
    logger.debug("built transform %r", transform)
    return transform
