"""Checks: aliasing ratio and shiftability error of band-limited fields and
tones, against the sampling theorem.

References: see `sigcnn.verify`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sigcnn._checks import as_pair, check_positive_int
from sigcnn.data.synthetic import bandlimited_field, tone, tone_1d
from sigcnn.verify._common import (
    Check,
    _dtype,
    _fmt,
    _metrics,
    _metrics_each,
    _power,
    _tol,
)

__all__ = ["alias_weights", "check_field_sweep", "check_shiftable_field",
           "check_tone_above_nyquist", "check_tone_sweep"]

# --------------------------------------------------------------------------
# Checks: aliasing ratio and shiftability error
# --------------------------------------------------------------------------

_FIELD_SHAPE = (32, 32)
_FIELD_BATCH = 8
_STRIDES_2D = ((2, 2), (2, 4))


def _field(key, cutoff, dtype):
    return bandlimited_field(key, _FIELD_SHAPE, cutoff=cutoff,
                             batch=_FIELD_BATCH, dtype=dtype)


def check_shiftable_field(*, key, dtype=None) -> Check:
    """A field band-limited below Nyquist: aliasing ratio 0, shiftability error 0.

    Eight 32 x 32 fields with cutoff ``1/(2s)`` per axis, for strides 2 and
    (2, 4).

    Args:
      key: ``jax.random`` key.
      dtype: float dtype.

    Returns:
      :class:`Check` with the largest ratio and error over the strides.
    """
    dtype = dtype or _dtype()
    ratios, errors = [], []
    for sy, sx in _STRIDES_2D:
        f = _field(key, (1 / (2 * sy), 1 / (2 * sx)), dtype)
        ratio, error = _metrics(f, (sy, sx))
        ratios.append(float(ratio))
        errors.append(float(error))
    tol = 1e-10
    worst = max(max(ratios), max(errors))
    return Check(
        name="bandlimited_field_shiftable",
        predicted=f"ratio 0, error 0 (<= {tol:.0e})",
        measured=f"max ratio {_fmt(max(ratios))}, max error {_fmt(max(errors))}",
        passed=worst <= tol,
        detail={"strides": [list(s) for s in _STRIDES_2D], "ratios": ratios,
                "errors": errors, "tol": tol, "dtype": np.dtype(dtype).name})


def check_tone_above_nyquist(*, dtype=None) -> Check:
    """A tone above Nyquist: aliasing ratio 1 and shiftability error 2.

    The 2-D tone (10/32, 3/32) is above Nyquist along y for strides 2 and
    (2, 4) (and below it along x); its alias lands on a different bin,
    orthogonal to it.

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with the measured ratios and errors.
    """
    dtype = dtype or _dtype()
    x = tone(_FIELD_SHAPE, (10 / 32, 3 / 32), phase=0.4, dtype=dtype)
    # Identical copies leave both metrics unchanged and share the compiled
    # metrics of the field checks.
    x = jnp.asarray(np.tile(np.asarray(x), (_FIELD_BATCH, 1, 1, 1)))
    ratios, errors = [], []
    for s in _STRIDES_2D:
        ratio, error = _metrics(x, s)
        ratios.append(float(ratio))
        errors.append(float(error))
    tol = _tol(dtype, f32=1e-5, f64=1e-10)
    dev = max(max(abs(r - 1) for r in ratios), max(abs(e - 2) for e in errors))
    return Check(
        name="tone_above_nyquist",
        predicted=f"ratio 1, error 2 (+-{tol:.0e})",
        measured=f"ratio {_fmt(min(ratios))}..{_fmt(max(ratios))}, error "
                 f"{_fmt(min(errors))}..{_fmt(max(errors))}",
        passed=dev <= tol,
        detail={"freq": [10 / 32, 3 / 32], "strides":
                [list(s) for s in _STRIDES_2D], "ratios": ratios,
                "errors": errors, "max_deviation": dev, "tol": tol,
                "dtype": np.dtype(dtype).name})


def _tone_error_s2(k: int, n: int, phase: float) -> float:
    """Predicted shiftability error at stride 2 of cos(2 pi k u / n + phase)."""
    k = abs(k)
    if k == 0 or 4 * k < n:
        return 0.0                        # constant, or below Nyquist 1/4
    if 4 * k == n:
        return math.sin(phase) ** 2       # at Nyquist: the sine part is lost
    return 2.0                            # alias orthogonal to the tone


def check_tone_sweep(*, n: int = 64, phase: float = math.pi / 3,
                     dtype=None) -> Check:
    """1-D tone sweep at stride 2: the ratio is a step at 1/4, the error 0 / 2.

    Tones ``cos(2 pi f u + phase)`` at every on-grid f = k/n, k = 0..n/2.
    Predicted: ratio 0 for f < 1/4 and 1 for f >= 1/4 (the Nyquist bin counts as
    outside); error 0 below 1/4, ``sin(phase)**2`` at exactly 1/4 (sampling at
    Nyquist keeps only the cosine part), 2 above (the alias is orthogonal).

    Args:
      n: signal length, a multiple of 4.
      phase: tone phase in radians.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the swept frequencies, predicted and
      measured ratios and errors.

    Raises:
      ValueError: if n is not a positive multiple of 4.
    """
    n = check_positive_int("n", n)
    if n % 4:
        raise ValueError(f"`n` must be a multiple of 4; got {n!r}.")
    dtype = dtype or _dtype()
    ks = np.arange(n // 2 + 1)
    xs = jnp.asarray(np.concatenate([
        np.asarray(tone_1d(n, k / n, phase=phase, dtype=dtype)) for k in ks]))
    ratio, error = (np.asarray(v, np.float64)
                    for v in _metrics_each(xs, (1, 2)))
    pred_ratio = np.where(4 * ks >= n, 1.0, 0.0)
    pred_error = np.array([_tone_error_s2(int(k), n, phase) for k in ks])
    dev = float(max(np.max(np.abs(ratio - pred_ratio)),
                    np.max(np.abs(error - pred_error))))
    tol = _tol(dtype, f32=1e-4, f64=1e-9)
    return Check(
        name="tone_sweep",
        predicted="ratio: step 0->1 at f=1/4; error 0 | sin^2(phase) | 2",
        measured=f"max deviation {_fmt(dev)} over {len(ks)} tones",
        passed=dev <= tol,
        detail={"stride": 2, "n": n, "phase": phase,
                "freqs": (ks / n).tolist(), "ratio": ratio.tolist(),
                "error": error.tolist(), "predicted_ratio": pred_ratio.tolist(),
                "predicted_error": pred_error.tolist(), "max_deviation": dev,
                "tol": tol, "dtype": np.dtype(dtype).name})


def _axis_factors(n: int, s: int):
    """Per DFT bin of an n-axis: <e, P e> and ||P e||^2 for P = B o (::s)."""
    k = np.rint(np.fft.fftfreq(n) * n).astype(np.int64)
    if s == 1:
        return np.ones(n), np.ones(n)
    m = n // s
    alias = k % m
    alias = np.where(alias >= (m + 1) // 2, alias - m, alias)  # in [-m/2, m/2)
    split = (m % 2 == 0) & (np.abs(alias) * 2 == m)  # lands on the Nyquist bin
    inner = np.where(split, np.where(np.abs(k) * 2 == m, 0.5, 0.0),
                     np.where(alias == k, 1.0, 0.0))
    norm2 = np.where(split, 0.5, 1.0)
    return inner, norm2


def alias_weights(shape, stride) -> np.ndarray:
    """Expected shiftability error of a random-phase tone at each DFT bin.

    With ``P = B o subsample`` (B: :func:`sigcnn.spectra.fourier_upsample`), a
    complex exponential e at bin k has ``w(k) = ||e - P e||^2 / ||e||^2 = 1 - 2
    <e, Pe> + ||Pe||^2``, computed per axis (P is separable): a bin strictly
    inside the Nyquist box maps to itself; a bin above Nyquist maps to a
    different, orthogonal bin; a bin exactly at ``±1/(2s)``, or one that aliases
    onto it, is split between ``±1/(2s)`` (half its energy each). So w = 0
    inside the box, 2 above Nyquist, and 1/2, 3/4 or 3/2 on the Nyquist lines.
    For a signal with independent random phases, ``E[error] = sum_k P_k w_k /
    sum_k P_k``; with no energy on the Nyquist lines this is ``2 x aliasing
    ratio``.

    Args:
      shape: (H, W), divisible by the stride.
      stride: s or (sy, sx).

    Returns:
      float64 NumPy array, shape [H, W], in ``np.fft.fftfreq`` order.

    Raises:
      ValueError: if the stride does not divide the shape.
    """
    h, w = (int(v) for v in shape)
    sy, sx = as_pair("stride", stride)
    if h % sy or w % sx:
        raise ValueError(
            f"`stride` {(sy, sx)} must divide `shape` {(h, w)}.")
    iy, ny = _axis_factors(h, sy)
    ix, nx = _axis_factors(w, sx)
    inner = iy[:, None] * ix[None, :]
    norm2 = ny[:, None] * nx[None, :]
    return 1.0 - 2.0 * inner + norm2


def check_field_sweep(*, key, cutoffs=tuple(j / 16 for j in range(1, 9)),
                      stride: int = 2, dtype=None) -> Check:
    """Band-limited fields of growing cutoff: error follows out-of-band energy.

    Eight 32 x 32 fields per cutoff (the same noise low-passed at each cutoff).
    For ``c <= 1/(2s)``: ratio 0 and error 0 (to rounding). Above: the error
    matches ``sum_k P_k w_k / sum_k P_k`` (:func:`alias_weights`, P the
    measured power spectrum of the fields), its expectation over random phases;
    the deviation is the random interference of aliases landing on the same
    bin, tolerance 0.08.

    Args:
      key: ``jax.random`` key.
      cutoffs: field cutoffs in (0, 0.5] cycles/pixel.
      stride: the stride s.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the cutoffs, ratios, errors and predicted
      errors.
    """
    dtype = dtype or _dtype()
    weights = alias_weights(_FIELD_SHAPE, stride)
    ratios, errors, preds = [], [], []
    for c in cutoffs:
        f = _field(key, c, dtype)
        p = np.asarray(_power(f), np.float64)
        ratio, error = _metrics(f, (stride, stride))
        ratios.append(float(ratio))
        errors.append(float(error))
        preds.append(float((p * weights).sum() / p.sum()))
    ratios, errors, preds = map(np.array, (ratios, errors, preds))
    below = np.array(cutoffs) <= 1 / (2 * stride)
    tol0, tol = 1e-10, 0.08
    dev_below = float(np.max(np.abs(np.concatenate(
        [ratios[below], errors[below]])))) if below.any() else 0.0
    dev_above = float(np.max(np.abs(errors - preds)[~below])) \
        if (~below).any() else 0.0
    return Check(
        name="field_sweep",
        predicted=(f"c<=1/{2 * stride}: 0; above: error = E[error | spectrum] "
                   f"+-{tol}"),
        measured=(f"below: max {_fmt(dev_below)}; above: max |diff| "
                  f"{_fmt(dev_above)}"),
        passed=dev_below <= tol0 and dev_above <= tol,
        detail={"stride": stride, "shape": list(_FIELD_SHAPE),
                "batch": _FIELD_BATCH, "cutoffs": list(cutoffs),
                "ratio": ratios.tolist(), "error": errors.tolist(),
                "predicted_error": preds.tolist(), "max_below": dev_below,
                "max_deviation_above": dev_above, "tol_below": tol0,
                "tol_above": tol, "dtype": np.dtype(dtype).name})


