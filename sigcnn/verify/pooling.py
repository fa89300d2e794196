"""Checks: global average pooling and the bins k N / S (Poisson summation),
BlurPool's binomial response, and Zhang's 1-D max-pool example.

References: see `sigcnn.verify`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn import ops
from sigcnn.data.synthetic import tone_1d
from sigcnn.spectra import aliasing_ratio, nyquist_mask
from sigcnn.verify._common import Check, _dtype, _fmt, _power, _rng, _scale, _tol
from sigcnn.verify.stack import _circular_responses

__all__ = ["binomial_response", "check_blurpool_aliasing",
           "check_blurpool_response", "check_gap_poisson", "check_gap_tones",
           "check_maxpool_zhang"]

# --------------------------------------------------------------------------
# Checks: global average pooling and the bins k N / S
# --------------------------------------------------------------------------


def check_gap_tones(*, dtype=None) -> Check:
    """GAP of r is shift invariant iff the DFT of r2 vanishes at k n / S, k != 0.

    r2 is a tone on n = 32 pixels and r = r2 sampled every S = 4 pixels; GAP(t)
    is the mean of the strided response to roll(x, t), for all 32 shifts t.
    Tones: 3/32, below the Nyquist frequency 1/8 (invariant); 11/32, above
    Nyquist but off the bins k n / S = 8, 16, 24 (aliased, yet invariant); 8/32,
    on the bin n / S (GAP varies with t).

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with, per tone, the spread of GAP over shifts and the
      largest |DFT| / n at the bins k n / S.
    """
    dtype = dtype or _dtype()
    n, stride = 32, 4
    ks = {"below Nyquist": 3, "off-bin above Nyquist": 11, "on-bin": 8}
    v = np.stack([np.asarray(tone_1d(n, k / n, phase=0.3, dtype=dtype),
                             np.float64)[0, 0, :, 0] for k in ks.values()])
    bins = np.arange(1, stride) * (n // stride)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    rows, consistent = {}, True
    for i, (label, k) in enumerate(ks.items()):
        # GAP of the strided response to roll(x, t), r2 being the tone itself.
        gap = np.array([np.roll(v[i], t)[::stride].mean() for t in range(n)])
        spread = float(gap.max() - gap.min())
        on_bins = float(np.abs(np.fft.fft(v[i])[bins]).max()) / n
        invariant, vanishes = spread <= tol, on_bins <= tol
        consistent &= invariant == vanishes
        rows[label] = {"freq": k / n, "gap_spread": spread,
                       "max_dft_at_bins": on_bins, "invariant": invariant,
                       "above_nyquist": 2 * stride * k >= n}
    passed = (consistent and not rows["on-bin"]["invariant"]
              and rows["off-bin above Nyquist"]["invariant"])
    return Check(
        name="gap_invariance_tones",
        predicted="GAP spread 0 <=> DFT(r2)[kN/S]=0: below, off-bin: 0; on-bin: >0",
        measured="; ".join(f"{lab.split()[0]} {_fmt(r['gap_spread'])}"
                           for lab, r in rows.items()),
        passed=passed,
        detail={"n": n, "stride": stride, "tones": rows, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_gap_poisson(*, key, dtype=None) -> Check:
    """GAP of the random stack under every shift, from the DFT of r2.

    Poisson summation: ``GAP(r(roll(x, t))) = (1 / HW) sum_{ky, kx}
    X[ky H/S, kx W/S] exp(-2 pi i (ky ty + kx tx) / S)`` with X = DFT(r2), for
    all t in [0, S)^2; GAP is constant exactly when those bins vanish for
    k != 0.

    Args:
      key: ``jax.random`` key.
      dtype: float dtype.

    Returns:
      :class:`Check` with the max abs difference between measured and predicted
      GAP, and the spread of GAP over shifts.
    """
    dtype = dtype or _dtype()
    s, shifts, r, r2 = _circular_responses(key, dtype)
    gap = r.mean(axis=(1, 2))                                     # [S*S, C]
    h, w = r2.shape[1], r2.shape[2]
    spec = np.fft.fft2(r2[0].astype(np.float64), axes=(0, 1))     # [H, W, C]
    sub = spec[:: h // s, :: w // s]                              # [S, S, C]
    k = np.arange(s)
    t = np.array(shifts)
    phase = np.exp(-2j * np.pi * (t[:, 0, None, None] * k[None, :, None]
                                  + t[:, 1, None, None] * k[None, None, :]) / s)
    pred = np.real(np.einsum("tab,abc->tc", phase, sub)) / (h * w)
    err = float(np.max(np.abs(gap - pred))) / _scale(gap)
    spread = float(np.max(gap.max(0) - gap.min(0)))
    nonzero = np.abs(sub)
    nonzero[0, 0] = 0.0
    at_bins = float(nonzero.max()) / (h * w)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    return Check(
        name="gap_poisson_formula",
        predicted=f"GAP(t) = sum_k X[kN/{s}] e^(-2pi i kt/{s}) / N "
                  f"(rel <= {tol:.0e})",
        measured=f"max rel. diff {_fmt(err)}; GAP spread {_fmt(spread)}",
        passed=err <= tol and (spread > tol) == (at_bins > tol),
        detail={"stride": s, "max_rel_diff": err, "gap_spread": spread,
                "max_dft_at_bins": at_bins, "tol": tol,
                "dtype": np.dtype(dtype).name})


# --------------------------------------------------------------------------
# Checks: BlurPool
# --------------------------------------------------------------------------


def binomial_response(freqs, size: int) -> np.ndarray:
    """Magnitude response ``|cos(pi f)|**(size - 1)`` of the binomial filter.

    Args:
      freqs: frequencies in cycles/pixel, any shape.
      size: filter taps, 1 to 7.

    Returns:
      float64 NumPy array, shape of ``freqs``.

    Raises:
      ValueError: if size is not an int from 1 to 7.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    ops.binomial_filter(size)  # validates size
    return np.abs(np.cos(np.pi * np.asarray(freqs, np.float64))) ** (size - 1)


@functools.partial(jax.jit, static_argnames=("sizes", "stride"))
def _blurred(x, sizes, stride):
    """Undecimated circular blurs of x per size [K, N, H, W, C], aliasing ratios."""
    outs = jnp.stack([ops.blur_pool(x, size=k, stride=1, padding="circular")
                      for k in sizes])
    return outs, jax.vmap(lambda o: aliasing_ratio(o, stride))(outs)


_SIZES = tuple(range(1, 8))
_BLUR_SIZE, _BLUR_BATCH = 64, 8


def check_blurpool_response(*, n: int = 64, dtype=None) -> Check:
    """BlurPool's measured 2-D frequency response equals the binomial prediction.

    The response of ``blur_pool(stride=1, padding="circular")`` to an impulse is
    the filter; the magnitude of its DFT is compared with
    ``|cos(pi fy)|^(k-1) |cos(pi fx)|^(k-1)`` at every bin, for k = 1..7.

    Args:
      n: grid size.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the measured response along fx.
    """
    dtype = dtype or _dtype()
    impulse = np.zeros((_BLUR_BATCH, n, n, 1))
    impulse[:, 0, 0, 0] = 1.0   # the batch shape of the white-noise check

    filt, _ = _blurred(jnp.asarray(impulse, dtype), _SIZES, 2)
    mag = np.abs(np.fft.fft2(np.asarray(filt, np.float64)[:, 0, :, :, 0]))
    f = np.fft.fftfreq(n)
    devs, along_fx = [], {}
    for i, k in enumerate(_SIZES):
        pred = binomial_response(f, k)[:, None] * binomial_response(f, k)[None]
        devs.append(float(np.max(np.abs(mag[i] - pred))))
        along_fx[str(k)] = mag[i, 0, : n // 2 + 1].tolist()
    tol = _tol(dtype, f32=1e-6, f64=1e-13)
    return Check(
        name="blurpool_response",
        predicted=f"|H| = |cos(pi f)|^(k-1), k=1..7 (+-{tol:.0e})",
        measured=f"max |diff| {_fmt(max(devs))}",
        passed=max(devs) <= tol,
        detail={"n": n, "sizes": list(_SIZES), "max_abs_diff": devs,
                "freqs": np.abs(f[: n // 2 + 1]).tolist(),
                "measured_along_fx": along_fx, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_blurpool_aliasing(*, key, stride: int = 2, dtype=None) -> Check:
    """BlurPool lowers the aliasing ratio of white noise as its response predicts.

    Eight 64 x 64 white-noise images, blurred by the binomial filter of size k
    = 1..7. Predicted ratio: ``sum_out |H(f)|^2 / sum |H(f)|^2`` over the non-DC
    bins (a flat white spectrum), tolerance 0.02 for the sampling noise of the
    input. Also compared with ``sum_out P(f) |H(f)|^2 / sum P(f) |H(f)|^2``,
    P the input's measured spectrum, which is exact.

    Args:
      key: ``jax.random`` key.
      stride: the subsampling s.
      dtype: float dtype.

    Returns:
      :class:`Check` with, per size, measured and predicted ratios.
    """
    dtype = dtype or _dtype()
    shape = (_BLUR_SIZE, _BLUR_SIZE)
    x = jnp.asarray(_rng(key, 2).standard_normal((_BLUR_BATCH, *shape, 1)),
                    dtype)
    _, measured = _blurred(x, _SIZES, stride)
    measured = np.asarray(measured, np.float64)
    fy, fx = np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1])
    outside = ~nyquist_mask(shape, stride)
    p_in = np.asarray(_power(x), np.float64)
    nondc = np.ones(shape, bool)
    nondc[0, 0] = False
    flat, exact = [], []
    for k in _SIZES:
        h2 = (binomial_response(fy, k)[:, None]
              * binomial_response(fx, k)[None]) ** 2
        flat.append(float(h2[outside & nondc].sum() / h2[nondc].sum()))
        exact.append(float((p_in * h2)[outside].sum() / (p_in * h2).sum()))
    flat, exact = np.array(flat), np.array(exact)
    tol_flat = 0.02
    tol = _tol(dtype, f32=1e-5, f64=1e-10)
    dev_flat = float(np.max(np.abs(measured - flat)))
    dev_exact = float(np.max(np.abs(measured - exact)))
    decreasing = bool(np.all(np.diff(measured) < 0))
    return Check(
        name="blurpool_aliasing",
        predicted=(f"white: ratio {flat[0]:.3f} -> {flat[-1]:.4f} for k=1..7 "
                   f"(+-{tol_flat})"),
        measured=(f"{measured[0]:.3f} -> {measured[-1]:.4f}; max |diff| "
                  f"{_fmt(dev_flat)}"),
        passed=dev_flat <= tol_flat and dev_exact <= tol and decreasing,
        detail={"stride": stride, "shape": list(shape), "batch": _BLUR_BATCH,
                "sizes": list(_SIZES), "measured": measured.tolist(),
                "predicted_flat": flat.tolist(),
                "predicted_from_input_spectrum": exact.tolist(),
                "max_diff_flat": dev_flat, "max_diff_exact": dev_exact,
                "tol_flat": tol_flat, "tol_exact": tol,
                "dtype": np.dtype(dtype).name})


# --------------------------------------------------------------------------
# Check: Zhang's 1-D max-pool example
# --------------------------------------------------------------------------

_pool_1x2 = jax.jit(functools.partial(ops.max_pool, window=(1, 2),
                                      stride=(1, 2)))


def check_maxpool_zhang(*, dtype=None) -> Check:
    """Max pooling [0,0,1,1,0,0,1,1] (window 2, stride 2) and its 1-pixel shift.

    Zhang (2019): the output changes from [0, 1, 0, 1] to [1, 1, 1, 1] for a
    one-pixel shift (both are polyphase components of the undecimated max pool).

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with both pooled outputs.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019,
      Fig. 2.
    """
    dtype = dtype or _dtype()
    x = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.float64).reshape(1, 1, 8, 1)
    xs = jnp.asarray(np.concatenate([x, np.roll(x, 1, axis=2)]), dtype)
    out = np.asarray(_pool_1x2(xs))[:, 0, :, 0]
    want = np.array([[0, 1, 0, 1], [1, 1, 1, 1]], np.float64)

    def fmt(a):
        return "[" + ",".join(f"{v:g}" for v in a) + "]"

    return Check(
        name="maxpool_zhang_example",
        predicted=f"{fmt(want[0])} -> {fmt(want[1])} after a 1-px shift",
        measured=f"{fmt(out[0])} -> {fmt(out[1])}",
        passed=bool(np.array_equal(out, want)),
        detail={"input": x.ravel().tolist(), "pooled": out[0].tolist(),
                "pooled_shifted": out[1].tolist(),
                "expected": want[0].tolist(),
                "expected_shifted": want[1].tolist()})
