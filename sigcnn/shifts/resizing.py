"""Image resizing with ``jax.image.resize``, for the Embed and Scale protocols."""

from __future__ import annotations

import functools

import jax

from sigcnn._checks import as_pair, check_choice
from sigcnn.shifts._validate import _check_bool, _check_images

__all__ = ["RESIZE_METHODS", "resize_images"]


RESIZE_METHODS = ("nearest", "linear", "cubic", "lanczos3", "lanczos5")
"""Resize kernels accepted by `resize_images`, `embed` and `scale`."""


@functools.partial(jax.jit, static_argnames=("size", "method", "antialias"))
def _resize(x, size, method, antialias):
    shape = (x.shape[0], size[0], size[1], x.shape[3])
    return jax.image.resize(x, shape, method=method, antialias=antialias).astype(
            x.dtype)


def resize_images(x, size, *, method: str = "linear", antialias: bool = True):
    """Resizes images with ``jax.image.resize``.

    The default, antialiased ``"linear"``, is a triangle filter widened by the
    scale factor when downsampling (like PIL's antialiased bilinear resize);
    ``"lanczos3"`` is sharper but overshoots the input range near edges.

    Args:
      x: float array, shape [N, H, W, C].
      size: positive int or pair (h, w); the new size.
      method: one of `RESIZE_METHODS`.
      antialias: whether to widen the kernel when downsampling.

    Returns:
      float array, shape [N, h, w, C], dtype of `x`.

    Raises:
      TypeError: if `x` is not a float array or `antialias` not a bool.
      ValueError: if `x` is not NHWC, or `size` or `method` is invalid.
    """
    x = _check_images("x", x)
    size = as_pair("size", size)
    method = check_choice("method", method, RESIZE_METHODS)
    antialias = _check_bool("antialias", antialias)
    return _resize(x, size, method, antialias)
