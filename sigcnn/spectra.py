"""Power spectra, Nyquist boxes, aliasing ratio, shiftability error, Fourier shift.

All functions take NHWC arrays ``[N, H, W, C]``; spectra are over the spatial axes
H and W on the periodic grid (DFT), with frequencies in cycles/pixel in
``np.fft.fftfreq`` order (``[0, 1/H, ..., -1/H]``). A 1-D signal of length W is an
image with H = 1: pass ``x[None, None, :, None]`` and ``stride=(1, s)``.

Dtypes: FFTs need float32 or float64, so float16 and bfloat16 inputs are
computed in float32. The measures (:func:`power_spectrum`,
:func:`aliasing_ratio`, :func:`shiftability_error`) then return float32; the
transforms (:func:`fourier_shift`, :func:`fourier_upsample`) return the input
dtype, cast back from the float32 result.

Empty inputs: H = 0 or W = 0 raises ``ValueError`` everywhere (there is no
spectrum). The transforms return empty arrays of the right shape for N = 0 or
C = 0; the measures that reduce over N and C (the two ratios and the reduced
power spectrum) raise ``ValueError`` then, rather than returning a NaN mean
over nothing or a meaningless 0.

The two energy ratios are scale-invariant: the mean-removed signal is divided
by its largest magnitude before squaring, so ``r2 * 1e30`` and ``r2 * 1e-30``
in float32 give the ratio of ``r2`` (no overflow to inf or underflow to 0).
Subnormal inputs (below about 1e-38 in float32) may be flushed to zero by XLA
and then read as an all-zero map, whose ratios are 0.

The two measures at the heart of sigcnn, for an undecimated response r2 whose
strided version is ``r = r2[:, ::sy, ::sx]``:

* ``aliasing_ratio(r2, stride)``: the fraction of r2's (mean-removed) energy at
  frequencies outside the open Nyquist box ``|fy| < 1/(2 sy), |fx| < 1/(2 sx)``;
  bins exactly at ``±1/(2 s)`` count as outside. 0 for a band-limited r2, 1 for a
  tone above Nyquist.
* ``shiftability_error(r2, stride)``: ``||r2 - B(r)||² / ||r2 - mean||²`` with B the
  ideal periodic band-limited interpolation back to the full grid. 0 when r2 is
  band-limited (r is shiftable: its response to any shift is an interpolation of
  its samples), 2 for an on-grid tone above Nyquist (the alias is orthogonal to the
  original).

References:
  Simoncelli, Freeman, Adelson & Heeger, "Shiftable multiscale transforms", IEEE
  Trans. Inf. Theory 38(2), 1992.
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
  Vaidyanathan, "Multirate Systems and Filter Banks", Prentice Hall, 1993.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import (
    as_pair,
    check_bool,
    check_finite,
    check_float_array,
    check_nhwc,
    check_nonempty,
    check_positive_int,
    is_traced,
)

__all__ = [
    "aliasing_ratio",
    "axis_profile",
    "fourier_shift",
    "fourier_upsample",
    "frequencies",
    "nyquist_mask",
    "power_spectrum",
    "radial_profile",
    "shiftability_error",
]


def _check_signal(name, x, *, reduces: bool = False):
    """Validated x, in at least float32 (FFTs do not take half precision)."""
    x = check_float_array(name, x)
    x = check_nhwc(name, x)
    check_nonempty(name, x, (1, 2))
    if reduces:
        check_nonempty(name, x, (0, 3),
                       what=" (the measure sums over samples and channels)")
    check_finite(name, x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _normalized(x):
    """x / max|x| (x unchanged where it is all zero): squares stay in range."""
    scale = jnp.max(jnp.abs(x))
    return x / jnp.where(scale > 0, scale, jnp.ones_like(scale))


def _check_stride(stride, shape, *, divides):
    sy, sx = as_pair("stride", stride)
    h, w = shape[1], shape[2]
    if divides and (h % sy or w % sx):
        hint = (" For a 1-D signal of shape [N, 1, W, C] use stride=(1, s)."
                if h == 1 else "")
        raise ValueError(
            f"`stride` {(sy, sx)} must divide the spatial size (H, W) = {(h, w)} "
            f"for a periodic band-limited interpolation.{hint}")
    return sy, sx


def _center(x):
    return x - jnp.mean(x, axis=(1, 2), keepdims=True)


def frequencies(n: int) -> np.ndarray:
    """DFT bin frequencies in cycles/pixel, ``np.fft.fftfreq(n)`` order.

    Args:
      n: number of samples.

    Returns:
      float64 NumPy array, shape [n], in [-0.5, 0.5).
    """
    return np.fft.fftfreq(n)


def nyquist_mask(shape, stride) -> np.ndarray:
    """Open Nyquist box of the ``(sy, sx)``-grid on the ``H x W`` DFT grid.

    Args:
      shape: (H, W), or any shape whose last three axes... (an NHWC shape is
        accepted too: its axes 1 and 2 are used).
      stride: s or (sy, sx).

    Returns:
      bool NumPy array, shape [H, W], True where ``|fy| < 1/(2 sy)`` and
      ``|fx| < 1/(2 sx)`` (computed in exact integer arithmetic: bin k of an
      N-point DFT is inside iff ``2 s |k| < N``). Bins at exactly ``±1/(2s)`` are
      outside.
    """
    shape = tuple(shape)
    if len(shape) == 4:
        shape = shape[1:3]
    if len(shape) != 2:
        raise ValueError(
            f"`shape` must be (H, W) or an NHWC shape; got {shape!r}.")
    shape = as_pair("shape", shape)
    sy, sx = as_pair("stride", stride)
    ky = np.abs(np.fft.fftfreq(shape[0]) * shape[0]).round().astype(np.int64)
    kx = np.abs(np.fft.fftfreq(shape[1]) * shape[1]).round().astype(np.int64)
    return (2 * sy * ky[:, None] < shape[0]) & (2 * sx * kx[None, :] < shape[1])


def power_spectrum(x, *, remove_mean: bool = True, reduce: bool = True):
    """Power spectrum over the spatial axes, normalised so that Parseval holds.

    ``P[k] = |DFT(x)[k]|² / (H W)``, so ``P.sum(axes (H, W)) == (x**2).sum(axes (H,
    W))`` per image and channel.

    Args:
      x: float array, shape [N, H, W, C].
      remove_mean: bool; subtract each image-channel's spatial mean first
        (drops DC).
      reduce: bool; if True, average over N and C.

    Returns:
      float array, shape [H, W] if ``reduce`` else [N, H, W, C], in
      ``np.fft.fftfreq`` order (use ``np.fft.fftshift`` to centre it for plots).
      Its dtype is that of x, or float32 for float16 / bfloat16 x (computed in
      float32). Powers beyond the dtype's range (float32 amplitudes above about
      1e18) overflow to inf.

    Raises:
      ValueError: if x is not rank 4, has H = 0 or W = 0 (or N = 0 or C = 0
        with ``reduce=True``), or holds NaN/Inf.
      TypeError: non-float x, or `remove_mean` / `reduce` not a bool.
    """
    remove_mean = check_bool("remove_mean", remove_mean)
    reduce = check_bool("reduce", reduce)
    x = _check_signal("x", x, reduces=reduce)
    if remove_mean:
        x = _center(x)
    h, w = x.shape[1], x.shape[2]
    p = jnp.abs(jnp.fft.fft2(x, axes=(1, 2))) ** 2 / (h * w)
    p = p.astype(x.dtype)
    return jnp.mean(p, axis=(0, 3)) if reduce else p


def _outside_fraction(x, stride):
    """Energy fraction of x outside the open Nyquist box (rfft with weights)."""
    h, w = x.shape[1], x.shape[2]
    x = _normalized(x)
    p = jnp.abs(jnp.fft.rfft2(x, axes=(1, 2))) ** 2
    e = jnp.sum(p, axis=(0, 3))                       # [H, W//2 + 1]
    wt = np.full(w // 2 + 1, 2.0)
    wt[0] = 1.0
    if w % 2 == 0:
        wt[-1] = 1.0
    inside = nyquist_mask((h, w), stride)[:, : w // 2 + 1]
    e = e * jnp.asarray(wt, e.dtype)[None, :]
    total = jnp.sum(e)
    outside = jnp.sum(jnp.where(jnp.asarray(inside), 0.0, e))
    ratio = outside / jnp.where(total > 0, total, 1.0)
    # the two sums round differently: keep the fraction in [0, 1]
    return jnp.where(total > 0, jnp.clip(ratio, 0.0, 1.0), 0.0)


def aliasing_ratio(r2, stride):
    """Fraction of the energy of ``r2`` at or above the Nyquist rate of its stride.

    Each image-channel of r2 has its spatial mean removed; then |DFT|² over H and
    W is summed over N and C, and the fraction outside the open box ``|fy| <
    1/(2 sy), |fx| < 1/(2 sx)`` is returned. Bins exactly at ``±1/(2 s)`` count as
    outside.

    Args:
      r2: float array, shape [N, H, W, C]: an undecimated (full-resolution)
        response.
      stride: s or (sy, sx): the stride at which r2 is sampled.

    Returns:
      float scalar in [0, 1] (float32 for float16 / bfloat16 r2, which is
      computed in float32): 0 for a band-limited r2, 1 for a tone above
      Nyquist, 0 for a constant (or all-zero) r2, which has no energy to alias.
      Scale-invariant: r2 is divided by its largest magnitude first.

    Raises:
      ValueError: if r2 is not rank 4, has an empty axis, or holds NaN/Inf.
      TypeError: if r2 is not a real float array.

    Examples:
      >>> import jax.numpy as jnp, sigcnn as sc
      >>> u = jnp.arange(16.0)
      >>> tone = lambda f: jnp.cos(2 * jnp.pi * f * u).reshape(1, 1, 16, 1)
      >>> round(float(sc.aliasing_ratio(tone(2 / 16), (1, 2))), 6)
      0.0
      >>> round(float(sc.aliasing_ratio(tone(5 / 16), (1, 2))), 6)
      1.0

    References:
      Azulay & Weiss, JMLR 2019, §3 (energy above the Nyquist rate of r2).
    """
    r2 = _check_signal("r2", r2, reduces=True)
    stride = _check_stride(stride, r2.shape, divides=False)
    return _aliasing_kernel(r2, stride)


@functools.partial(jax.jit, static_argnames=("stride",))
def _aliasing_kernel(r2, stride):
    """One compiled program per shape and stride (eager op-by-op dispatch of
    the steps compiles each of them separately: seconds on a new shape)."""
    return _outside_fraction(_center(r2), stride)


def _upsample_axis(y, factor, axis, n_out):
    """Periodic band-limited interpolation of y along `axis` to length n_out."""
    if factor == 1:
        return y
    m = y.shape[axis]
    spec = jnp.fft.fft(y, axis=axis)
    spec = jnp.moveaxis(spec, axis, -1)
    shape = spec.shape[:-1] + (n_out,)
    pos = (m + 1) // 2                     # bins 0 .. pos-1 are non-negative
    neg = m // 2 - (1 if m % 2 == 0 else 0)  # bins -neg .. -1 strictly negative
    out = jnp.zeros(shape, spec.dtype)
    out = out.at[..., :pos].set(spec[..., :pos])
    if neg:
        out = out.at[..., n_out - neg:].set(spec[..., m - neg:])
    if m % 2 == 0:                         # split the Nyquist bin symmetrically
        nyq = spec[..., m // 2] / 2
        out = out.at[..., m // 2].add(nyq)
        out = out.at[..., n_out - m // 2].add(nyq)
    out = jnp.moveaxis(out, -1, axis)
    return jnp.fft.ifft(out, axis=axis) * factor


def fourier_upsample(r, stride):
    """Ideal periodic band-limited interpolation B of samples back to the full grid.

    Fourier zero-padding: the DFT of the ``H' x W'`` samples is placed at the same
    frequencies of an ``sy H' x sx W'`` grid, the Nyquist bin of an even-length
    axis split equally between ``+1/2`` and ``-1/2`` of the sample rate. Then
    ``fourier_upsample(r2[:, ::s, ::s], s) == r2`` exactly when r2 has no energy
    at or above ``1/(2s)``.

    Args:
      r: float array, shape [N, H', W', C]: samples on the s-grid.
      stride: s or (sy, sx).

    Returns:
      float array, shape [N, sy H', sx W', C], with ``out[:, ::sy, ::sx] == r``,
      dtype of r (float16 / bfloat16 r is computed in float32). Empty for
      N = 0 or C = 0.

    Raises:
      ValueError: if r is not rank 4, has H' = 0 or W' = 0, or holds NaN/Inf.
    """
    dtype = check_float_array("r", r).dtype
    r = _check_signal("r", r)
    sy, sx = as_pair("stride", stride)
    return _upsample(r, sy, sx).astype(dtype)


def _upsample(r, sy, sx):
    y = _upsample_axis(r.astype(jnp.result_type(r.dtype, jnp.complex64)), sy, 1,
                       sy * r.shape[1])
    y = _upsample_axis(y, sx, 2, sx * r.shape[2])
    return jnp.real(y).astype(r.dtype)


def shiftability_error(r2, stride):
    """How far the strided response ``r2[::s]`` is from being shiftable.

    ``||c - B(c[:, ::sy, ::sx])||² / ||c||²`` with ``c`` = r2 minus each
    image-channel's spatial mean, B = :func:`fourier_upsample` (ideal periodic
    band-limited interpolation), and sums over N, H, W and C.

    Args:
      r2: float array, shape [N, H, W, C], H divisible by sy and W by sx.
      stride: s or (sy, sx).

    Returns:
      float scalar >= 0 (float32 for float16 / bfloat16 r2, which is computed
      in float32): 0 when r2 is band-limited below ``1/(2s)`` (the samples
      determine every shift), 2 for a single on-grid tone above Nyquist, 0 for
      a constant (or all-zero) r2. Scale-invariant: the mean-removed r2 is
      divided by its largest magnitude first.

    Raises:
      ValueError: if the stride does not divide (H, W), r2 has an empty axis,
        or r2 holds NaN/Inf.

    References:
      Simoncelli et al., "Shiftable multiscale transforms", 1992.
      Azulay & Weiss, JMLR 2019, §3.
    """
    r2 = _check_signal("r2", r2, reduces=True)
    sy, sx = _check_stride(stride, r2.shape, divides=True)
    return _shiftability_kernel(r2, sy, sx)


@functools.partial(jax.jit, static_argnames=("sy", "sx"))
def _shiftability_kernel(r2, sy, sx):
    """One compiled program per shape and stride (see `_aliasing_kernel`)."""
    c = _normalized(_center(r2))
    rec = _upsample(c[:, ::sy, ::sx], sy, sx)
    num = jnp.sum((c - rec) ** 2)
    den = jnp.sum(c ** 2)
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def _axis_phase(n, d, rdt):
    """DFT multiplier of a band-limited shift by d along an n-point axis."""
    f = jnp.asarray(np.fft.fftfreq(n), rdt)
    phase = jnp.exp(-2j * jnp.pi * f * d)
    if n % 2 == 0:
        phase = phase.at[n // 2].set(jnp.cos(jnp.pi * d).astype(phase.dtype))
    return phase


def _check_shift(shift, size, rdt):
    """`shift` as a [2] array of dtype rdt, reduced modulo the period `size`."""
    msg = "`shift` must be a pair (dy, dx) of real numbers; got "
    if isinstance(shift, (tuple, list)):
        if len(shift) != 2:
            raise ValueError(msg + f"{shift!r}.")
        for s in shift:
            if isinstance(s, (bool, np.bool_)) or not (
                    isinstance(s, numbers.Real) or hasattr(s, "dtype")):
                raise TypeError(msg + f"{shift!r}.")
            if hasattr(s, "dtype") and (jnp.ndim(s) != 0 or not (
                    jnp.issubdtype(s.dtype, jnp.integer)
                    or jnp.issubdtype(s.dtype, jnp.floating))):
                raise TypeError(msg + f"{shift!r}.")
        if any(is_traced(s) for s in shift):
            shift = jnp.stack([jnp.asarray(s, rdt) for s in shift])
        else:
            shift = np.array([np.float64(np.asarray(s)) for s in shift])
    if not hasattr(shift, "dtype"):
        shift = np.asarray(shift)
    if tuple(shift.shape) != (2,) or not (
            jnp.issubdtype(shift.dtype, jnp.integer)
            or jnp.issubdtype(shift.dtype, jnp.floating)):
        raise ValueError(
            f"{msg}an array of shape {tuple(shift.shape)} and dtype "
            f"{np.dtype(shift.dtype).name}.")
    period = np.array(size, np.float64)
    if is_traced(shift):
        return jnp.mod(shift.astype(rdt), jnp.asarray(period, rdt))
    host = np.asarray(shift, np.float64)
    if not np.all(np.isfinite(host)):
        raise ValueError(
            f"`shift` must be a pair (dy, dx) of finite real numbers; got "
            f"{tuple(float(v) for v in host)}.")
    return jnp.asarray(np.mod(host, period), rdt)


def fourier_shift(x, shift):
    """Band-limited circular shift by a real-valued (dy, dx) number of pixels.

    Multiplies the DFT by ``exp(-2 pi i fy dy) exp(-2 pi i fx dx)``, with the
    Nyquist bin of an even-length axis split symmetrically (its factor is
    ``cos(pi d)``), so the shift is separable: shifting by (dy, dx) equals
    shifting by (dy, 0), then by (0, dx). For integer shifts it equals
    ``jnp.roll(x, (dy, dx), axis=(1, 2))`` to rounding; for fractional shifts it is
    the shift of the periodic band-limited interpolant of x.

    The shift is periodic in (H, W), so it is first reduced modulo (H, W): in
    float64 on the host when it is concrete (then ``fourier_shift(x, (1e7 +
    0.5, 0))`` equals ``fourier_shift(x, (0.5 + 1e7 % H, 0))``), in the
    computation dtype when it is traced.

    Args:
      x: float array, shape [N, H, W, C] with H, W >= 1 (N = 0 or C = 0 give an
        empty result).
      shift: (dy, dx) pair of finite real numbers, or an array of shape [2]
        (may be traced, e.g. under ``jax.vmap`` over shifts; a traced shift
        cannot be checked for NaN/Inf).

    Returns:
      array, shape [N, H, W, C], dtype of x (float16 / bfloat16 x is computed
      in float32 and cast back).

    Raises:
      ValueError: if x is not rank 4, has H = 0 or W = 0 or holds NaN/Inf, or
        `shift` is not a pair of finite real numbers.
      TypeError: if x is not a real float array or `shift` holds a non-number.

    Examples:
      >>> import jax.numpy as jnp, sigcnn as sc
      >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
      >>> sc.fourier_shift(x, (0, 1))[0, 0, :, 0].round(4)
      Array([3., 0., 1., 2.], dtype=float32)
    """
    dtype = check_float_array("x", x).dtype
    x = _check_signal("x", x)
    h, w = x.shape[1], x.shape[2]
    rdt = x.dtype
    shift = _check_shift(shift, (h, w), rdt)
    dy, dx = (jnp.asarray(d, rdt) for d in shift)
    return _fourier_shift_kernel(x, dy, dx).astype(dtype)


@jax.jit
def _fourier_shift_kernel(x, dy, dx):
    # Separable phase ramps; the Nyquist bin of an even axis gets cos(pi d), the
    # symmetric split of e^{+i pi d} and e^{-i pi d}, so a 2-D shift equals a
    # vertical shift followed by a horizontal one.
    h, w, rdt = x.shape[1], x.shape[2], x.dtype
    phase = (_axis_phase(h, dy, rdt)[:, None] * _axis_phase(w, dx, rdt)[None, :])
    spec = jnp.fft.fft2(x, axes=(1, 2)) * phase[None, :, :, None]
    return jnp.real(jnp.fft.ifft2(spec, axes=(1, 2)))


def radial_profile(spectrum, *, bins: int | None = None):
    """Mean power in rings of radial frequency ``sqrt(fy² + fx²)``.

    Args:
      spectrum: array, shape [H, W], in ``np.fft.fftfreq`` order (as returned by
        :func:`power_spectrum` with ``reduce=True``).
      bins: positive int, number of rings over [0, 0.5·sqrt(2)]; default
        ``max(2, max(H, W) // 2)``.

    Returns:
      (radii, profile): NumPy arrays of shape [bins]: ring centres in
      cycles/pixel and mean power per ring (NaN for empty rings).
    """
    s = np.asarray(spectrum)
    if s.ndim != 2:
        raise ValueError(
            f"`spectrum` must be a 2-D [H, W] power spectrum; got shape {s.shape}.")
    h, w = s.shape
    if bins is None:
        bins = max(2, max(h, w) // 2)
    bins = check_positive_int("bins", bins)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    edges = np.linspace(0.0, 0.5 * np.sqrt(2.0) + 1e-12, bins + 1)
    idx = np.clip(np.digitize(r, edges) - 1, 0, bins - 1)
    total = np.bincount(idx.ravel(), weights=s.ravel(), minlength=bins)
    count = np.bincount(idx.ravel(), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = total / count
    return 0.5 * (edges[1:] + edges[:-1]), prof


def axis_profile(spectrum, axis: int):
    """Energy per frequency along one axis (the other axis summed).

    Args:
      spectrum: array, shape [H, W], in ``np.fft.fftfreq`` order.
      axis: 0 for fy (rows), 1 for fx (columns).

    Returns:
      (freqs, energy): NumPy arrays sorted by frequency in [-0.5, 0.5).
    """
    s = np.asarray(spectrum)
    if s.ndim != 2:
        raise ValueError(
            f"`spectrum` must be a 2-D [H, W] power spectrum; got shape {s.shape}.")
    if axis not in (0, 1):
        raise ValueError(f"`axis` must be 0 (fy) or 1 (fx); got {axis!r}.")
    e = s.sum(axis=1 - axis)
    f = np.fft.fftfreq(s.shape[axis])
    order = np.argsort(f)
    return f[order], e[order]
