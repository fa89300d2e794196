"""Inpainting of unknown pixels: the authors' iterated normalized convolution,
or scikit-image's biharmonic inpainting (imported lazily, inside `_biharmonic`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn._checks import check_choice, check_positive_int
from sigcnn.shifts._validate import _check_images, _check_nonneg_int

__all__ = ["INPAINT_KERNEL", "inpaint"]


def _binomial_kernel_12() -> np.ndarray:
    k = np.array([0.5, 0.5])
    for _ in range(10):
        k = np.convolve(k, [0.5, 0.5])
    return k


INPAINT_KERNEL = _binomial_kernel_12()
INPAINT_KERNEL.setflags(write=False)
"""The authors' inpainting kernel: [1/2, 1/2] convolved with itself 10 more
times, i.e. C(11, j) / 2**11 for j = 0..11 (length 12, sum 1)."""


def _blur12(v):
    """Separable length-12 binomial filter of v [H, W, C], zero padding.

    ``out[i] = sum_j k[j] v[i + j - 6]`` along each spatial axis (taps at
    offsets -6..5: an even-length kernel has no centre tap).
    """
    k = INPAINT_KERNEL
    h, w = v.shape[:2]
    p = jnp.pad(v, ((6, 5), (0, 0), (0, 0)))
    v = sum(float(k[j]) * p[j:j + h] for j in range(12))
    p = jnp.pad(v, ((0, 0), (6, 5), (0, 0)))
    return sum(float(k[j]) * p[:, j:j + w] for j in range(12))


@functools.partial(jax.jit, static_argnames=("max_iter", "max_unfilled"))
def _normalized_conv(x, known, max_iter, max_unfilled):
    n_pix = x.shape[1] * x.shape[2]

    def one(img, kn):
        def cond(state):
            _, k, it = state
            return (it < max_iter) & (n_pix - jnp.sum(k) > max_unfilled)

        def body(state):
            im, k, it = state
            m = k.astype(im.dtype)[..., None]
            both = _blur12(jnp.concatenate([im * m, m], axis=-1))
            num, den = both[..., :-1], both[..., -1:]
            reach = den > 0
            est = num / jnp.where(reach, den, 1)
            im = jnp.where(k[..., None], im, jnp.where(reach, est, im))
            return im, k | reach[..., 0], it + 1

        im, k, _ = lax.while_loop(cond, body, (img, kn, jnp.int32(0)))
        return im, k

    return jax.vmap(one)(x, known)


def _biharmonic(x, known):
    from skimage.restoration import inpaint_biharmonic

    xs = np.asarray(x)
    ks = np.asarray(known)
    out = np.empty_like(xs)
    for i in range(xs.shape[0]):
        if ks[i].all():
            out[i] = xs[i]
        else:
            out[i] = inpaint_biharmonic(xs[i].astype(np.float64), ~ks[i],
                                        channel_axis=-1)
    return jnp.asarray(out, x.dtype), jnp.ones(ks.shape, bool)


def _inpaint_impl(x, known, method, max_iter, max_unfilled):
    if method == "biharmonic":
        return _biharmonic(x, known)
    return _normalized_conv(x, known, max_iter, max_unfilled)


def inpaint(x, known, *, method: str = "normalized_conv", max_iter: int = 80,
            max_unfilled: int = 200):
    """Fills unknown pixels from known ones.

    ``"normalized_conv"`` is the authors' iterated normalized convolution
    (``InpaintingFunction.py``), with the known-pixel mask M as an explicit
    argument instead of "RGB sum != 0". With K the separable length-12 binomial
    `INPAINT_KERNEL` (zero padding), each iteration computes per channel

        imInt = (K * (I·M)) / (K * M)
        I <- M·I + (1 - M)·imInt

    at the pixels where K * M > 0, and those pixels join M (so the filled
    region grows by about 6 pixels per iteration). It repeats while more than
    `max_unfilled` pixels of an image are unknown, at most `max_iter` times;
    each image stops on its own. Known pixels are never changed; pixels still
    unknown at the end keep their input values. Jitted.

    ``"biharmonic"`` is ``skimage.restoration.inpaint_biharmonic`` per image
    (NumPy, not jitted; fills every unknown pixel).

    Args:
      x: float array, shape [N, H, W, C].
      known: bool array, shape [N, H, W] or [H, W]; True where `x` is known.
      method: ``"normalized_conv"`` or ``"biharmonic"``.
      max_iter: positive int; iteration cap (``"normalized_conv"``).
      max_unfilled: non-negative int; stop once at most this many pixels per
        image are unknown (``"normalized_conv"``; 0 fills every pixel reachable
        within `max_iter` iterations).

    Returns:
      ``(filled, known_after)``: float array [N, H, W, C] and bool array
      [N, H, W], True where the pixel is known or was filled.

    Raises:
      TypeError: if `x` is not a float array or `known` not boolean.
      ValueError: if the shapes do not match, an image has no known pixel, or an
        option is invalid.

    References:
      Azulay & Weiss, JMLR 2019, "Embed-inpaint" protocol
      (``InpaintingFunction.py`` in github.com/AzulEye/CNN-Failures).
      Knutsson & Westin, "Normalized and differential convolution", CVPR 1993.
      Damelin & Hoang, "On Surface Completion and Image Inpainting by
      Biharmonic Functions", Int. J. Math. Math. Sci., 2018 (biharmonic).
    """
    x = _check_images("x", x)
    method = check_choice("method", method, ("normalized_conv", "biharmonic"))
    max_iter = check_positive_int("max_iter", max_iter)
    max_unfilled = _check_nonneg_int("max_unfilled", max_unfilled)
    if not hasattr(known, "dtype"):
        known = np.asarray(known)
    if np.dtype(known.dtype) != np.bool_:
        raise TypeError(
                f"`known` must be a bool array (True = known pixel); got dtype "
                f"{np.dtype(known.dtype).name}.")
    n, h, w = x.shape[:3]
    if tuple(known.shape) == (h, w):
        known = jnp.broadcast_to(jnp.asarray(known), (n, h, w))
    elif tuple(known.shape) != (n, h, w):
        raise ValueError(
                f"`known` must have shape [N, H, W] = {(n, h, w)} or [H, W] = "
                f"{(h, w)} to match `x` of shape {tuple(x.shape)}; got "
                f"{tuple(known.shape)}.")
    known = jnp.asarray(known)
    try:
        empty = np.flatnonzero(~np.asarray(known).reshape(n, -1).any(axis=1))
    except Exception:  # traced
        empty = np.zeros(0, int)
    if empty.size:
        raise ValueError(
                f"`known` has no known pixel in image(s) {empty.tolist()}; nothing "
                f"to inpaint from.")
    return _inpaint_impl(x, known, method, max_iter, max_unfilled)
