"""The Crop protocol: a window translated inside a larger image."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from sigcnn._checks import as_pair
from sigcnn.shifts._validate import (
    _as_offsets,
    _check_images,
    _check_inside,
    _record_offsets,
)
from sigcnn.shifts.records import ShiftRecord

__all__ = ["crop"]


@functools.partial(jax.jit, static_argnames=("size",))
def _crop_frames(x, offsets, size):
    h, w = size
    c = x.shape[-1]

    def one(img, off):
        zero = jnp.zeros_like(off[0])
        return lax.dynamic_slice(img, (off[0], off[1], zero), (h, w, c))

    return jax.vmap(lambda img, offs: jax.vmap(lambda o: one(img, o))(offs))(
            x, offsets)


def crop(x, offsets, *, size):
    """Windows of size (h, w) at offsets (oy, ox) inside larger images.

    ``frames[n, t] == x[n, oy:oy + h, ox:ox + w]`` with (oy, ox) the t-th
    offset. Moving the window by +1 moves the content by -1 pixel.

    Args:
      x: float array, shape [N, H, W, C].
      offsets: int array, shape [T, 2] (shared) or [N, T, 2] (per sample);
        top-left corners with 0 <= oy <= H - h and 0 <= ox <= W - w.
      size: positive int or pair (h, w); the window size.

    Returns:
      ``(frames, record)``: frames float array, shape [N, T, h, w, C]; record a
      `ShiftRecord` with ``protocol="crop"``.

    Raises:
      TypeError: if `x` is not a float array or `offsets` not integer.
      ValueError: if `x` is not NHWC, the window is larger than the image or an
        offset puts it outside.

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.shifts import crop
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> frames, record = crop(x, [(0, 0), (1, 1)], size=2)
      >>> frames[0, 1, :, :, 0].tolist()
      [[5.0, 6.0], [9.0, 10.0]]
      >>> record.offsets
      ((0, 0), (1, 1))

    References:
      Azulay & Weiss, JMLR 2019, "Crop" protocol (224 windows of a 234 image).
    """
    x = _check_images("x", x)
    h, w = as_pair("size", size)
    big = (x.shape[1], x.shape[2])
    if h > big[0] or w > big[1]:
        raise ValueError(
                f"`size` {(h, w)} must fit inside the images of size (H, W) = "
                f"{big}.")
    arr, per_sample = _as_offsets("offsets", offsets, x.shape[0])
    _check_inside("offsets", arr, (h, w), big, "window")
    frames = _crop_frames(x, jnp.asarray(arr, jnp.int32), (h, w))
    record = ShiftRecord(
            protocol="crop", offsets=_record_offsets(arr, per_sample),
            input_size=big, output_size=(h, w),
            object_sizes=((h, w),) * arr.shape[1])
    return frames, record
