"""Translations: circular integer shifts and band-limited (Fourier) sub-pixel
shifts of whole images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import check_choice, check_float_array, check_nhwc, is_traced
from sigcnn.shifts._validate import _as_offsets, _check_images, _is_int, _record_offsets
from sigcnn.shifts.records import ShiftRecord
from sigcnn.spectra import fourier_shift

__all__ = ["circular_shift", "translate"]


def circular_shift(x, shift):
    """Circular integer shift, ``jnp.roll(x, (ty, tx), axis=(1, 2))``.

    Args:
      x: float array, shape [N, H, W, C].
      shift: pair (ty, tx) of ints, or an int array of shape [2] (may be traced).
        A concrete shift is reduced modulo (H, W) on the host first, so any
        Python int (e.g. 10**12) rolls exactly.

    Returns:
      array, shape [N, H, W, C]; ``out[:, i, j] = x[:, (i - ty) % H,
      (j - tx) % W]`` (empty arrays roll to themselves).

    Raises:
      TypeError: if `x` is not a float array.
      ValueError: if `x` is not NHWC or `shift` is not a pair of ints.
    """
    x = check_float_array("x", x)
    x = check_nhwc("x", x)
    if isinstance(shift, (tuple, list)):
        if len(shift) != 2 or not all(_is_int(s) or (
                hasattr(s, "dtype") and jnp.issubdtype(s.dtype, jnp.integer)
                and jnp.ndim(s) == 0) for s in shift):
            raise ValueError(
                    f"`shift` must be a pair (ty, tx) of ints; got {shift!r}.")
        if any(is_traced(s) for s in shift):
            shift = jnp.stack([jnp.asarray(s) for s in shift])
        else:  # Python ints may not fit int32: reduce them on the host first
            shift = np.array([int(s) for s in shift], dtype=object)
            shift = np.mod(shift, np.maximum(x.shape[1:3], 1)).astype(np.int64)
    elif not hasattr(shift, "dtype"):
        shift = np.asarray(shift)
    if tuple(shift.shape) != (2,) or not jnp.issubdtype(shift.dtype, jnp.integer):
        raise ValueError(
                f"`shift` must be a pair (ty, tx) of ints; got an array of shape "
                f"{tuple(shift.shape)} and dtype {np.dtype(shift.dtype).name}.")
    if not is_traced(shift):
        shift = np.mod(np.asarray(shift, np.int64), np.maximum(x.shape[1:3], 1))
    shift = jnp.asarray(shift)
    return jnp.roll(x, (shift[0], shift[1]), axis=(1, 2))


@functools.partial(jax.jit, static_argnames=("method",))
def _translate_frames(x, shifts, method):
    def one(img, s):
        if method == "circular":
            return jnp.roll(img, (s[0], s[1]), axis=(0, 1))
        return fourier_shift(img[None], s)[0]

    return jax.vmap(lambda img, ss: jax.vmap(lambda s: one(img, s))(ss))(x, shifts)


def translate(x, shifts, *, method: str = "circular"):
    """Frames of circularly shifted images: integer or band-limited sub-pixel.

    Args:
      x: float array, shape [N, H, W, C].
      shifts: shifts (ty, tx), shape [T, 2] (shared) or [N, T, 2] (per
        sample); ints for ``"circular"``, finite reals for ``"fourier"``. They
        are reduced modulo (H, W) in int64 / float64 before the computation, so
        huge shifts are exact (the record keeps the shifts as given).
      method: ``"circular"`` (``jnp.roll``) or ``"fourier"`` (`fourier_shift`:
        the periodic band-limited interpolant, equal to the roll for integer
        shifts).

    Returns:
      ``(frames, record)``: frames float array, shape [N, T, H, W, C], with
      ``frames[:, t] == roll(x, shifts[t])``; record a `ShiftRecord`.

    Raises:
      TypeError: if `x` is not a float array or `shifts` has the wrong type.
      ValueError: if `x` is not NHWC, or `shifts` or `method` is invalid.

    References:
      Michaeli et al., CVPR 2023 (circular and fractional shifts).
    """
    x = _check_images("x", x)
    method = check_choice("method", method, ("circular", "fourier"))
    arr, per_sample = _as_offsets("shifts", shifts, x.shape[0],
                                  integer=method == "circular")
    # Both translations are periodic in (H, W): reduce in int64 / float64 on the
    # host, before the cast to int32 or to x's dtype can lose the shift.
    period = np.array([x.shape[1], x.shape[2]])
    red = np.mod(arr, period.astype(arr.dtype))
    frames = _translate_frames(x, jnp.asarray(red, x.dtype if method == "fourier"
                                              else jnp.int32), method)
    size = (x.shape[1], x.shape[2])
    record = ShiftRecord(
            protocol=method, offsets=_record_offsets(arr, per_sample),
            input_size=size, output_size=size,
            object_sizes=(size,) * arr.shape[1])
    return frames, record
