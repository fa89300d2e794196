"""Augmentation by per-image integer translations, the paper's data remedy.

``max_shift=r`` translates every image by its own integer shift
``t = (ty, tx)`` drawn uniformly from ``[-r, r]^2`` (a pair ``(ry, rx)`` gives
``[-ry, ry] x [-rx, rx]``; 0 turns it off). The padding says what fills the
pixels that the shift uncovers:

* ``"circular"``: wrap around, ``jnp.roll(x, t, axis=(1, 2))`` exactly, the
  shift that sigcnn's metrics test against;
* ``"zero"``: zeros, i.e. the usual "pad by r and take a random crop of the
  original size" augmentation;
* ``"reflect"``: mirror without repeating the edge, ``1234 -> 32|1234|32``.

Images are NHWC. Everything here is jit-compiled and works with traced shifts;
the random draws come from an explicit ``key``.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019, Section 5 (more data
  augmentation as a remedy).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import check_choice, check_key, check_nhwc, check_positive_int

__all__ = ["AUGMENT_PADDINGS", "augment", "random_shifts", "shift_images"]

AUGMENT_PADDINGS = ("circular", "zero", "reflect")

AugmentPadding = Literal["circular", "zero", "reflect"]


def as_shift_range(name: str, value: Any) -> tuple[int, int]:
    """`value` as a pair (ry, rx) of non-negative ints (an int is used for both)."""
    expected = (f"`{name}` must be a non-negative int or a pair (ry, rx) of them "
                f"(0 = no shift)")

    def ok(v):
        return (not isinstance(v, (bool, np.bool_))
                and isinstance(v, (numbers.Integral, np.integer)) and v >= 0)

    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not all(ok(v) for v in value):
            raise ValueError(f"{expected}; got {value!r}.")
        return int(value[0]), int(value[1])
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Integral, np.integer)):
        raise TypeError(f"{expected}; got {value!r} of type {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"{expected}; got {value!r}.")
    return int(value), int(value)


def random_shifts(key, n: int, *, max_shift) -> jax.Array:
    """Draws one integer translation per image, uniform on a square of shifts.

    Args:
      key: a JAX PRNG key.
      n: number of shifts N (positive int).
      max_shift: non-negative int r, or a pair (ry, rx).

    Returns:
      int32 array [N, 2]: rows ``(ty, tx)`` with ``-ry <= ty <= ry`` and
      ``-rx <= tx <= rx``, each value equally likely, independent across rows.

    Raises:
      TypeError, ValueError: if `key`, `n` or `max_shift` is malformed.

    Examples:
      >>> s = random_shifts(jax.random.key(3), 6000, max_shift=(2, 3))
      >>> s.shape, s.min(axis=0).tolist(), s.max(axis=0).tolist()
      ((6000, 2), [-2, -3], [2, 3])
    """
    check_key("key", key)
    n = check_positive_int("n", n)
    ry, rx = as_shift_range("max_shift", max_shift)
    return random_shifts_jit(key, n, (ry, rx))


@functools.partial(jax.jit, static_argnums=(1, 2))
def random_shifts_jit(key, n, max_shift):
    """`random_shifts` without checks; `n` and `max_shift` static."""
    ry, rx = max_shift
    lo = jnp.array([-ry, -rx], jnp.int32)
    hi = jnp.array([ry + 1, rx + 1], jnp.int32)
    return jax.random.randint(key, (n, 2), lo, hi, dtype=jnp.int32)


def _source_index(i, t, size, padding):
    """Index read by output position `i` of an axis of `size` shifted by `t`."""
    j = i - t
    if padding == "circular":
        return jnp.mod(j, size), None
    if padding == "zero":
        valid = (j >= 0) & (j < size)
        return jnp.clip(j, 0, size - 1), valid
    # reflect (no edge repeat): period 2 (size - 1)
    if size == 1:
        return jnp.zeros_like(j), None
    period = 2 * (size - 1)
    m = jnp.mod(j, period)
    return jnp.minimum(m, period - m), None


def _shift_one(img, t, padding):
    h, w = img.shape[0], img.shape[1]
    sy, vy = _source_index(jnp.arange(h), t[0], h, padding)
    sx, vx = _source_index(jnp.arange(w), t[1], w, padding)
    out = img[sy[:, None], sx[None, :]]
    if padding == "zero":
        mask = (vy[:, None] & vx[None, :])[:, :, None]
        out = jnp.where(mask, out, jnp.zeros((), out.dtype))
    return out


@functools.partial(jax.jit, static_argnums=(2,))
def shift_images_jit(images, shifts, padding):
    """`shift_images` without checks; `padding` static."""
    return jax.vmap(_shift_one, in_axes=(0, 0, None))(images, shifts, padding)


def shift_images(images, shifts, *, padding: AugmentPadding = "circular"):
    """Translates each image by its own integer shift.

    Image ``n`` moves by ``shifts[n] = (ty, tx)`` pixels: output pixel ``(i, j)``
    reads input pixel ``(i - ty, j - tx)``. With ``padding="circular"`` this is
    ``jnp.roll(images[n], (ty, tx), axis=(0, 1))`` exactly; ``"zero"`` fills the
    uncovered pixels with 0 (a crop of the zero-padded image); ``"reflect"``
    mirrors without repeating the edge. Works under `jax.jit` with traced shifts.

    Args:
      images: array [N, H, W, C].
      shifts: integer array [N, 2] of ``(ty, tx)``; any size (for ``"zero"``, a
        shift of H or more leaves zeros).
      padding: ``"circular"``, ``"zero"`` or ``"reflect"``.

    Returns:
      array [N, H, W, C] with the dtype of `images`.

    Raises:
      ValueError: if `images` is not NHWC, `shifts` is not [N, 2] or `padding`
        is unknown.
      TypeError: if `shifts` is not an integer array.

    Examples:
      >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
      >>> shift_images(x, jnp.array([[0, 1]]), padding="zero")[0, 0, :, 0]
      Array([0., 0., 1., 2.], dtype=float32)
    """
    check_nhwc("images", images)
    check_choice("padding", padding, AUGMENT_PADDINGS)
    shifts = jnp.asarray(shifts)
    if not jnp.issubdtype(shifts.dtype, jnp.integer):
        raise TypeError(
            f"`shifts` must be an integer array [N, 2]; got dtype {shifts.dtype}.")
    if shifts.shape != (images.shape[0], 2):
        raise ValueError(
            f"`shifts` must have shape [N, 2] = ({images.shape[0]}, 2) to match "
            f"`images` {tuple(images.shape)}; got {tuple(shifts.shape)}.")
    return shift_images_jit(jnp.asarray(images), shifts, padding)


def augment(images, key, *, max_shift, padding: AugmentPadding = "circular"):
    """Random per-image translations: `shift_images` with `random_shifts`.

    Args:
      images: array [N, H, W, C].
      key: a JAX PRNG key.
      max_shift: non-negative int r or pair (ry, rx); shifts are uniform on
        ``[-ry, ry] x [-rx, rx]``. 0 returns `images` unchanged.
      padding: ``"circular"``, ``"zero"`` or ``"reflect"`` (see `shift_images`).

    Returns:
      ``(shifted, shifts)``: array [N, H, W, C] and int32 array [N, 2].

    Raises:
      TypeError, ValueError: for malformed arguments (see `shift_images`).
    """
    check_nhwc("images", images)
    check_key("key", key)
    r = as_shift_range("max_shift", max_shift)
    check_choice("padding", padding, AUGMENT_PADDINGS)
    return _augment(jnp.asarray(images), key, r, padding)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _augment(images, key, max_shift, padding):
    shifts = random_shifts_jit(key, images.shape[0], max_shift)
    return shift_images_jit(images, shifts, padding), shifts
