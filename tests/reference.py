"""Slow, obviously correct NumPy references for the tests.

Every function here loops over output positions, taps and DFT bins explicitly and
computes in float64, so that it can be read line by line against the definitions
in the docstrings of :mod:`sigcnn.ops` and :mod:`sigcnn.spectra`. Nothing here
uses JAX or an FFT; the DFT is the explicit sum ``X[k] = sum_n x[n] e^{-2 pi i k
n / N}``.

Conventions: NHWC arrays, HWIO kernels, frequencies in cycles/pixel, DFT bin ``k``
of an ``n``-point axis has the signed index of ``np.fft.fftfreq`` (``k`` for
``k <= (n - 1) // 2``, else ``k - n``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = [
    "aliasing_ratio_ref",
    "avg_pool_ref",
    "binomial_ref",
    "blur_pool_ref",
    "conv_ref",
    "dft2_ref",
    "fourier_shift_ref",
    "fourier_upsample_ref",
    "max_pool_ref",
    "nyquist_mask_ref",
    "output_size_ref",
    "pair",
    "polyphase_ref",
    "power_spectrum_ref",
    "shiftability_error_ref",
    "signed_bin",
    "source_index",
    "unpolyphase_ref",
]


def pair(v):
    """(v, v) for an int, the pair itself otherwise."""
    return (v, v) if isinstance(v, int) else tuple(v)


# --------------------------------------------------------------------------- ops


def source_index(pos, n, padding):
    """Index of the input sample read at (possibly out-of-range) position ``pos``.

    Returns None where zero padding supplies a 0.
    """
    if 0 <= pos < n:
        return pos
    if padding == "zero":
        return None
    if padding == "circular":
        return pos % n
    if padding == "reflect":          # mirror without repeating the edge
        if n == 1:
            return 0
        period = 2 * (n - 1)
        p = pos % period
        return p if p < n else period - p
    raise AssertionError(f"position {pos} out of range for padding={padding!r}")


def output_size_ref(n, k, s, d, padding):
    """Number of output positions of a window of k taps, stride s, dilation d."""
    if padding == "valid":
        return (n - d * (k - 1) - 1) // s + 1
    return math.ceil(n / s)


def _first_tap(k, d, padding):
    """Offset of tap 0 from s*i: centred (tap (k-1)//2 at s*i) unless 'valid'."""
    return 0 if padding == "valid" else -d * ((k - 1) // 2)


def _windows(x, window, stride, dilation, padding):
    """Yields (i, j, [(a, b, values [N, C] or None), ...]) for every output."""
    n, h, w, c = x.shape
    kh, kw = window
    sy, sx = stride
    dy, dx = dilation
    ho = output_size_ref(h, kh, sy, dy, padding)
    wo = output_size_ref(w, kw, sx, dx, padding)
    oy = _first_tap(kh, dy, padding)
    ox = _first_tap(kw, dx, padding)
    for i in range(ho):
        for j in range(wo):
            taps = []
            for a in range(kh):
                for b in range(kw):
                    iy = source_index(sy * i + dy * a + oy, h, padding)
                    ix = source_index(sx * j + dx * b + ox, w, padding)
                    vals = None if iy is None or ix is None else x[:, iy, ix, :]
                    taps.append((a, b, vals))
            yield i, j, taps


def conv_ref(x, kernel, *, stride=1, dilation=1, padding="zero"):
    """Grouped 2-D cross-correlation, one output position and tap at a time.

    ``out[:, i, j, o] = sum_{a, b, c in group(o)} kernel[a, b, c', o] * x[:, sy*i +
    dy*(a - (kh-1)//2), sx*j + dx*(b - (kw-1)//2), c]`` (offset 0 for "valid").
    Output channel o belongs to group ``o // (C_out / groups)``, which reads input
    channels ``g*C_in/groups ... (g+1)*C_in/groups - 1``.
    """
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, cin = x.shape
    kh, kw, kin, kout = kernel.shape
    groups = cin // kin
    gout = kout // groups
    sy, sx = pair(stride)
    dy, dx = pair(dilation)
    ho = output_size_ref(h, kh, sy, dy, padding)
    wo = output_size_ref(w, kw, sx, dx, padding)
    out = np.zeros((n, ho, wo, kout))
    for i, j, taps in _windows(x, (kh, kw), (sy, sx), (dy, dx), padding):
        for a, b, vals in taps:
            if vals is None:
                continue
            for g in range(groups):
                xin = vals[:, g * kin:(g + 1) * kin]
                kg = kernel[a, b, :, g * gout:(g + 1) * gout]
                for o in range(gout):
                    for ci in range(kin):
                        out[:, i, j, g * gout + o] += xin[:, ci] * kg[ci, o]
    return out


def _pool_ref(x, window, stride, dilation, padding, kind):
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    kh, kw = pair(window)
    sy, sx = pair(stride)
    dy, dx = pair(dilation)
    ho = output_size_ref(h, kh, sy, dy, padding)
    wo = output_size_ref(w, kw, sx, dx, padding)
    out = np.zeros((n, ho, wo, c))
    for i, j, taps in _windows(x, (kh, kw), (sy, sx), (dy, dx), padding):
        # zero padding supplies zeros, for max pooling too
        vals = [np.zeros((n, c)) if v is None else v for _, _, v in taps]
        stack = np.stack(vals)
        if kind == "max":
            out[:, i, j] = stack.max(axis=0)
        else:
            out[:, i, j] = stack.sum(axis=0) / (kh * kw)
    return out


def max_pool_ref(x, *, window, stride, dilation=1, padding="zero"):
    """Max over each (dilated) window; padded positions hold 0 for "zero"."""
    return _pool_ref(x, window, stride, dilation, padding, "max")


def avg_pool_ref(x, *, window, stride, dilation=1, padding="zero"):
    """Sum over each (dilated) window divided by kh*kw (padding included)."""
    return _pool_ref(x, window, stride, dilation, padding, "avg")


def binomial_ref(size):
    """Binomial coefficients C(size-1, j) / 2**(size-1), by Pascal's triangle."""
    row = [1]
    for _ in range(size - 1):
        row = [a + b for a, b in zip([0] + row, row + [0])]
    return np.array(row, np.float64) / 2 ** (size - 1)


def blur_pool_ref(x, *, size=3, stride=2, dilation=1, padding="reflect"):
    """Depthwise conv with the outer-product binomial kernel (one group per channel)."""
    c = np.shape(x)[3]
    b = binomial_ref(size)
    k2 = np.outer(b, b)
    kernel = np.repeat(k2[:, :, None, None], c, axis=3)      # [k, k, 1, C]
    return conv_ref(x, kernel, stride=stride, dilation=dilation, padding=padding)


def polyphase_ref(x, stride):
    """out[:, py, px, i, j] = x[:, sy*i + py, sx*j + px], by loops."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    sy, sx = pair(stride)
    out = np.zeros((n, sy, sx, h // sy, w // sx, c), x.dtype)
    for py in range(sy):
        for px in range(sx):
            for i in range(h // sy):
                for j in range(w // sx):
                    out[:, py, px, i, j] = x[:, sy * i + py, sx * j + px]
    return out


def unpolyphase_ref(comp):
    """x[:, sy*i + py, sx*j + px] = comp[:, py, px, i, j], by loops."""
    comp = np.asarray(comp)
    n, sy, sx, h, w, c = comp.shape
    out = np.zeros((n, sy * h, sx * w, c), comp.dtype)
    for py in range(sy):
        for px in range(sx):
            for i in range(h):
                for j in range(w):
                    out[:, sy * i + py, sx * j + px] = comp[:, py, px, i, j]
    return out


# ----------------------------------------------------------------------- spectra


def signed_bin(k, n):
    """Signed index of DFT bin k of an n-point axis (np.fft.fftfreq order)."""
    return k if k <= (n - 1) // 2 else k - n


def _dft_matrix(n):
    """F[k, m] = exp(-2 pi i k m / n), built entry by entry."""
    f = np.zeros((n, n), np.complex128)
    for k in range(n):
        for m in range(n):
            f[k, m] = np.exp(-2j * np.pi * ((k * m) % n) / n)
    return f


def dft2_ref(x):
    """Explicit 2-D DFT over axes 1 and 2 of an NHWC array (complex128)."""
    x = np.asarray(x, np.float64)
    fh = _dft_matrix(x.shape[1])
    fw = _dft_matrix(x.shape[2])
    return np.einsum("kh,nhwc,lw->nklc", fh, x, fw)


def _centre(x):
    x = np.asarray(x, np.float64)
    return x - x.mean(axis=(1, 2), keepdims=True)


def power_spectrum_ref(x, *, remove_mean=True, reduce=True):
    """|DFT|^2 / (H W), optionally mean-removed and averaged over N and C."""
    x = np.asarray(x, np.float64)
    if remove_mean:
        x = _centre(x)
    p = np.abs(dft2_ref(x)) ** 2 / (x.shape[1] * x.shape[2])
    return p.mean(axis=(0, 3)) if reduce else p


def _inside(k, n, s):
    """Whether bin k of an n-point axis lies in the open box |f| < 1/(2 s)."""
    return abs(Fraction(signed_bin(k, n), n)) < Fraction(1, 2 * s)


def nyquist_mask_ref(shape, stride):
    """Open Nyquist box, bin by bin in exact rational arithmetic."""
    h, w = shape
    sy, sx = pair(stride)
    m = np.zeros((h, w), bool)
    for ky in range(h):
        for kx in range(w):
            m[ky, kx] = _inside(ky, h, sy) and _inside(kx, w, sx)
    return m


def aliasing_ratio_ref(r2, stride):
    """Energy fraction outside the open box, summed bin by bin over N and C."""
    c = _centre(r2)
    p = np.abs(dft2_ref(c)) ** 2
    h, w = c.shape[1], c.shape[2]
    sy, sx = pair(stride)
    total = 0.0
    outside = 0.0
    for ky in range(h):
        for kx in range(w):
            e = float(p[:, ky, kx, :].sum())
            total += e
            if not (_inside(ky, h, sy) and _inside(kx, w, sx)):
                outside += e
    return outside / total if total > 0 else 0.0


def _interp_matrix(m, s, shift=0.0):
    """T[u, q]: value at fine position u - shift of the band-limited interpolant.

    Samples q = 0..m-1 sit at fine positions s*q on a grid of s*m pixels. The
    interpolant is ``y(u) = (1/m) sum_k X[k] w e^{2 pi i k' u / (s m)}`` with X the
    m-point DFT of the samples, k' the signed bin and, for the Nyquist bin of an
    even m, the coefficient split in halves between k' = +m/2 and k' = -m/2.
    """
    n_out = s * m
    t = np.zeros((n_out, m), np.complex128)
    for u in range(n_out):
        pos = u - shift
        for q in range(m):
            acc = 0.0 + 0.0j
            for k in range(m):
                dft = np.exp(-2j * np.pi * k * q / m)
                kk = signed_bin(k, m)
                if m % 2 == 0 and abs(kk) == m // 2:
                    terms = [(0.5, m / 2), (0.5, -m / 2)]
                else:
                    terms = [(1.0, kk)]
                for wgt, kf in terms:
                    acc += wgt * dft * np.exp(2j * np.pi * kf * pos / n_out)
            t[u, q] = acc / m
    return t


def fourier_upsample_ref(r, stride):
    """Periodic band-limited interpolation of samples to an (sy H', sx W') grid."""
    r = np.asarray(r, np.float64)
    sy, sx = pair(stride)
    ty = _interp_matrix(r.shape[1], sy)
    tx = _interp_matrix(r.shape[2], sx)
    return np.real(np.einsum("uh,nhwc,vw->nuvc", ty, r, tx))


def fourier_shift_ref(x, shift):
    """The band-limited interpolant of x (Nyquist bin split) evaluated at u - d."""
    x = np.asarray(x, np.float64)
    dy, dx = shift
    ty = _interp_matrix(x.shape[1], 1, dy)
    tx = _interp_matrix(x.shape[2], 1, dx)
    return np.real(np.einsum("uh,nhwc,vw->nuvc", ty, x, tx))


def shiftability_error_ref(r2, stride):
    """||c - B(c[::sy, ::sx])||^2 / ||c||^2 with c the mean-removed r2."""
    c = _centre(r2)
    sy, sx = pair(stride)
    rec = fourier_upsample_ref(c[:, ::sy, ::sx], (sy, sx))
    den = float((c ** 2).sum())
    return float(((c - rec) ** 2).sum()) / den if den > 0 else 0.0
