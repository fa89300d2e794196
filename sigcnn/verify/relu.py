"""Checks: a ReLU creates harmonics of a tone, and they alias.

References: see `sigcnn.verify`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import check_positive_int
from sigcnn.data.synthetic import rectified_cosine, tone, tone_1d
from sigcnn.spectra import aliasing_ratio, fourier_upsample
from sigcnn.verify._common import Check, _cos_amplitudes, _dtype, _fmt, _power, _tol

__all__ = ["check_relu_aliasing", "check_relu_harmonic",
           "rectified_cosine_harmonic", "relu_tone_spectra_2d"]

# --------------------------------------------------------------------------
# Checks: ReLU creates harmonics that alias
# --------------------------------------------------------------------------


def rectified_cosine_harmonic(harmonic: int, period: int, *,
                              terms: int = 200_000) -> float:
    """Cosine amplitude at bin ``harmonic`` of ``max(0, cos(2 pi u / period))``.

    From the Fourier series ``max(0, cos t) = 1/pi + cos(t)/2 + (2/pi) sum_k
    (-1)^(k+1) cos(2kt) / (4k^2 - 1)``: sampling with ``period`` samples per
    cycle folds harmonic j onto ``j mod period``, so the amplitude at bin h is
    the sum of the series coefficients of all j = ±h (mod period).

    Args:
      harmonic: bin h >= 1 with 2h != period (not DC, not Nyquist).
      period: samples per cycle (``1 / f``), an int > 2.
      terms: folded terms summed per class (truncation error about
        ``1 / (pi period terms)``).

    Returns:
      float: the amplitude of ``cos(2 pi h u / period)`` in the sampled signal.

    Raises:
      ValueError: for a DC or Nyquist bin, or a bad period.
    """
    harmonic = check_positive_int("harmonic", harmonic)
    period = check_positive_int("period", period)
    if period < 3 or 2 * (harmonic % period) in (0, period):
        raise ValueError(
            f"`harmonic` {harmonic} must not fall on the DC or Nyquist bin of a "
            f"period of {period} samples (period >= 3).")
    m = np.arange(terms, dtype=np.float64)
    h = harmonic % period
    j = np.concatenate([h + m * period, (period - h) + m * period])
    coef = np.zeros_like(j)
    coef[j == 1] = 0.5
    even = (j % 2 == 0) & (j > 0)
    kk = j[even] / 2
    coef[even] = (2 / np.pi) * np.where(kk % 2 == 1, 1.0, -1.0) / (4 * kk ** 2 - 1)
    return float(coef.sum())


def check_relu_harmonic(*, freq: float = 0.2, n: int = 40, oversample: int = 64,
                        dtype=None) -> Check:
    """ReLU of a unit cosine at f has a component at 2f of amplitude 2/(3 pi).

    Measured from the DFT on a grid fine enough (``oversample`` samples per
    pixel) that the higher harmonics barely fold back; and on the n-pixel grid
    itself, where f = 0.2 gives a 5-sample period and harmonics 8f, 12f, ...
    fold onto 2f: there the folded Fourier series
    (:func:`rectified_cosine_harmonic`) predicts the sampled value exactly.

    Args:
      freq: tone frequency f in cycles/pixel, with ``1/f`` an integer dividing
        n.
      n: pixels.
      oversample: samples per pixel of the fine grid.
      dtype: float dtype.

    Returns:
      :class:`Check` with both amplitudes.
    """
    dtype = dtype or _dtype()
    continuous = 2 / (3 * math.pi)
    out = {}
    for label, m in (("fine", n * oversample), ("pixel", n)):
        f = freq * n / m
        period = round(1 / f)
        _, amps = _cos_amplitudes(rectified_cosine(m, f, dtype=dtype))
        out[label] = {"samples": m, "period": period,
                      "measured": float(amps[round(2 * f * m)]),
                      "folded_series": rectified_cosine_harmonic(2, period)}
    tol = _tol(dtype, f32=1e-5, f64=1e-9)
    tol_cont = 1e-4
    dev_fold = max(abs(v["measured"] - v["folded_series"]) for v in out.values())
    dev_cont = abs(out["fine"]["measured"] - continuous)
    return Check(
        name="relu_harmonic_2f",
        predicted=(f"amp at 2f: 2/(3pi)={continuous:.4f}; folded on "
                   f"{n} px: {out['pixel']['folded_series']:.4f}"),
        measured=(f"{out['fine']['measured']:.4f} ({oversample}x grid), "
                  f"{out['pixel']['measured']:.4f} ({n} px)"),
        passed=dev_cont <= tol_cont and dev_fold <= tol,
        detail={"freq": freq, "continuous_amplitude": continuous,
                "grids": out, "max_deviation_folded": dev_fold,
                "deviation_continuous": dev_cont, "tol_folded": tol,
                "tol_continuous": tol_cont, "dtype": np.dtype(dtype).name})


@functools.partial(jax.jit, static_argnums=1)
def _relu_resampled(x, stride):
    """ReLU(x), its band-limited reconstruction from stride samples, ratios."""
    s = (1, stride)
    r2 = jax.nn.relu(x)
    rec = fourier_upsample(r2[:, :, ::stride], s)
    return r2, rec, aliasing_ratio(x, s), aliasing_ratio(r2, s)


def check_relu_aliasing(*, freq: float = 0.2, n: int = 40, stride: int = 2,
                        dtype=None) -> Check:
    """A cosine below Nyquist is aliased after ReLU: 2f lands at |2f - 1/s|.

    f = 0.2 is below the Nyquist frequency 1/4 of stride 2 (aliasing ratio 0);
    ReLU adds a harmonic at 0.4 (ratio ``A2^2 / (A1^2 + A2^2)`` from the folded
    Fourier series); subsampling by 2 and interpolating back puts that
    harmonic at ``|0.4 - 1/2| = 0.1``, a bin where r2 itself has no energy.

    Args:
      freq: tone frequency in cycles/pixel, with ``1/f`` an integer dividing n.
      n: pixels, a multiple of the stride.
      stride: subsampling factor s.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the amplitude spectra of the tone, of
      ReLU(tone) and of its band-limited reconstruction from stride-s samples.
    """
    dtype = dtype or _dtype()
    x = tone_1d(n, freq, dtype=dtype)
    r2, rec, ratio_before, ratio_after = _relu_resampled(x, stride)
    ratio_before, ratio_after = float(ratio_before), float(ratio_after)
    period = round(1 / freq)
    a1 = rectified_cosine_harmonic(1, period)
    a2 = rectified_cosine_harmonic(2, period)
    pred_ratio = a2 ** 2 / (a1 ** 2 + a2 ** 2)
    alias_f = abs(2 * freq - round(2 * freq * stride) / stride)
    freqs, amp_x = _cos_amplitudes(x)
    _, amp_r2 = _cos_amplitudes(r2)
    _, amp_rec = _cos_amplitudes(rec)
    ka = int(round(alias_f * n))
    tol = _tol(dtype, f32=1e-5, f64=1e-9)
    devs = [ratio_before, abs(ratio_after - pred_ratio), amp_r2[ka],
            abs(amp_rec[ka] - a2)]
    return Check(
        name="relu_aliasing",
        predicted=(f"ratio 0 -> {pred_ratio:.4f}; {2 * freq:g} aliases to "
                   f"{alias_f:g} (amp {a2:.4f})"),
        measured=(f"ratio {_fmt(ratio_before)} -> {ratio_after:.4f}; amp at "
                  f"{alias_f:g}: {_fmt(amp_r2[ka])} -> {amp_rec[ka]:.4f}"),
        passed=max(devs) <= tol,
        detail={"freq": freq, "n": n, "stride": stride,
                "ratio_before": ratio_before, "ratio_after": ratio_after,
                "predicted_ratio_after": pred_ratio, "alias_freq": alias_f,
                "alias_amp_before_sampling": float(amp_r2[ka]),
                "alias_amp_after_sampling": float(amp_rec[ka]),
                "predicted_alias_amp": a2, "freqs": freqs.tolist(),
                "amp_tone": amp_x.tolist(), "amp_relu": amp_r2.tolist(),
                "amp_relu_resampled": amp_rec.tolist(),
                "max_deviation": float(max(devs)), "tol": tol,
                "dtype": np.dtype(dtype).name})


def relu_tone_spectra_2d(*, shape=(40, 40), freq=(0.2, 0.1), dtype=None):
    """Power spectra of a 2-D tone and of its ReLU, for plotting.

    Args:
      shape: (H, W).
      freq: on-grid (fy, fx) in cycles/pixel.
      dtype: float dtype.

    Returns:
      dict of NumPy arrays: ``fy`` [H] and ``fx`` [W] (fftshifted frequencies),
      ``before`` and ``after`` [H, W] (fftshifted power spectra, mean removed).
    """
    dtype = dtype or _dtype()
    x = tone(shape, freq, dtype=dtype)
    x = np.asarray(x)
    both = jnp.asarray(np.concatenate([x, np.maximum(x, 0.0)]))
    spectra = _power(both, reduce=False)
    p = np.fft.fftshift(np.asarray(spectra)[..., 0], axes=(1, 2))
    return {"fy": np.fft.fftshift(np.fft.fftfreq(shape[0])),
            "fx": np.fft.fftshift(np.fft.fftfreq(shape[1])),
            "before": p[0], "after": p[1]}
