"""Shift protocols and shift schedules, with their exact geometry.

Images are NHWC float arrays [N, H, W, C] with no empty axis and finite values
(the protocols raise ``ValueError`` otherwise). Conventions:

* A shift by t = (ty, tx) means ``jnp.roll(x, (ty, tx), axis=(1, 2))``: content
  moves down by ty rows and right by tx columns.
* An offset (oy, ox) is the top-left corner (row, column) of a crop window in
  the image, or of the embedded object in the canvas. Moving the offset by +1
  moves the content of a crop by -1 pixel and the content of an embed by +1.
* Frames come out as [N, T, h, w, C], one per offset; offsets are either shared
  by the batch, shape [T, 2], or per sample, shape [N, T, 2].

Protocols (Azulay & Weiss 2019, Section 2): `translate` (circular or
band-limited sub-pixel shift), `crop` (a window translated inside a larger
image), `embed` (the image resized and pasted into a canvas of a given value,
optionally with the background inpainted), `scale` (the embedded image grows).
Each returns ``(frames, record)``; the `ShiftRecord` holds the geometry
(offsets, sizes, canvas value, resize kernel, inpainting) for results files.

Schedules return a `Schedule` of offsets and the frame pairs to compare: the
authors' 8 diagonal one-pixel pairs (`diagonal_schedule`), sweeps along an axis
(`sweep_schedule`), Zhang's two random offsets per image
(`random_pair_schedule`), every shift of an S×S grid (`grid_schedule`) and a
growing object (`scale_schedule`). To compare frames of model outputs
``logits`` [N, T, K]: ``logits[:, s.pairs[:, 0]]`` against
``logits[:, s.pairs[:, 1]]``.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (protocols; authors' code
  ``CheckTranslationInvariance.py`` and ``InpaintingFunction.py``).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn._checks import (
    as_pair,
    check_bool,
    check_choice,
    check_finite,
    check_float_array,
    check_key,
    check_nhwc,
    check_nonempty,
    check_positive_int,
    is_traced,
)
from sigcnn.spectra import fourier_shift

__all__ = [
        "INPAINT_KERNEL",
        "RESIZE_METHODS",
        "Schedule",
        "ShiftRecord",
        "center_offset",
        "circular_shift",
        "crop",
        "diagonal_schedule",
        "embed",
        "fourier_shift",
        "grid_schedule",
        "inpaint",
        "random_pair_schedule",
        "resize_images",
        "scale",
        "scale_schedule",
        "sweep_schedule",
        "translate",
]

RESIZE_METHODS = ("nearest", "linear", "cubic", "lanczos3", "lanczos5")
"""Resize kernels accepted by `resize_images`, `embed` and `scale`."""


def _binomial_kernel_12() -> np.ndarray:
    k = np.array([0.5, 0.5])
    for _ in range(10):
        k = np.convolve(k, [0.5, 0.5])
    return k


INPAINT_KERNEL = _binomial_kernel_12()
INPAINT_KERNEL.setflags(write=False)
"""The authors' inpainting kernel: [1/2, 1/2] convolved with itself 10 more
times, i.e. C(11, j) / 2**11 for j = 0..11 (length 12, sum 1)."""

_OFFSET_CONVENTION = (
        "offsets are the top-left (row, col) of the crop window in the image or of "
        "the object in the canvas; a shift t means jnp.roll(x, t, axis=(1, 2))")


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(u) for k, u in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(u) for u in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclasses.dataclass(frozen=True)
class ShiftRecord:
    """Geometry of one protocol run, for results files.

    Attributes:
      protocol: ``"circular"``, ``"fourier"``, ``"crop"``, ``"embed"`` or
        ``"scale"``.
      offsets: per frame (oy, ox) (or shift (ty, tx) for translations), nested
        per sample when offsets were given per sample.
      input_size: (H, W) of the input images.
      output_size: (h, w) of each frame.
      object_sizes: per frame (h, w) of the content: the crop window, the
        embedded (resized) object, or the input for translations.
      fill: canvas value (a float, or one per channel), or None.
      resize_method: the ``jax.image.resize`` kernel, or None if not resized.
      antialias: whether the resize was antialiased, or None if not resized.
      inpaint: None, ``"normalized_conv"`` or ``"biharmonic"``.
      inpaint_max_iter: iteration cap of the normalized-convolution inpainting.
      inpaint_max_unfilled: it stops once at most this many pixels are unfilled.
      convention: the offset and shift convention, in words.
    """

    protocol: str
    offsets: tuple
    input_size: tuple
    output_size: tuple
    object_sizes: tuple
    fill: Any = None
    resize_method: str | None = None
    antialias: bool | None = None
    inpaint: str | None = None
    inpaint_max_iter: int | None = None
    inpaint_max_unfilled: int | None = None
    convention: str = _OFFSET_CONVENTION

    def to_dict(self) -> dict:
        """The record as a JSON-serialisable dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A shift schedule: frame offsets and the frame pairs to compare.

    Attributes:
      name: e.g. ``"diagonal"``.
      offsets: int (float for sub-pixel sweeps) array, shape [T, 2] (shared by
        the batch) or [N, T, 2] (per sample); pass to a protocol.
      pairs: int array, shape [P, 2]; frame indices (first, second) of each
        compared pair. Compare ``logits[:, pairs[:, 0]]`` with
        ``logits[:, pairs[:, 1]]``.
      sizes: None, or int array [T, 2] of object sizes (scale schedules).
      params: the arguments that produced the schedule.
    """

    name: str
    offsets: np.ndarray
    pairs: np.ndarray
    sizes: np.ndarray | None = None
    params: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The schedule as a JSON-serialisable dict."""
        return _jsonable(dataclasses.asdict(self))


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _check_images(name: str, x):
    x = check_float_array(name, x)
    x = check_nhwc(name, x)
    check_nonempty(name, x, (0, 1, 2, 3))
    check_finite(name, x)
    return x


def _is_int(v) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(
            v, (bool, np.bool_))


def _as_offsets(name: str, offsets: Any, n: int, *, integer: bool = True):
    """Concrete offsets as an array [N, T, 2] and whether they were per sample."""
    try:
        arr = np.asarray(offsets)
    except Exception:
        raise TypeError(
                f"`{name}` must be concrete (not traced) offsets of shape [T, 2] or "
                f"[N, T, 2]; got {type(offsets).__name__}.") from None
    kind = "integer" if integer else "real"
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or (
            not integer and np.issubdtype(arr.dtype, np.floating))):
        if integer and np.issubdtype(arr.dtype, np.floating) and np.all(
                np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(
                    f"`{name}` must hold {kind} (row, col) pairs; got dtype "
                    f"{arr.dtype}: {offsets!r}.")
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr[None]
    if arr.ndim not in (2, 3) or arr.shape[-1] != 2 or arr.shape[-2] < 1:
        raise ValueError(
                f"`{name}` must have shape [T, 2] (shared by the batch) or "
                f"[N, T, 2] (per sample) with T >= 1; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite; got {offsets!r}.")
    per_sample = arr.ndim == 3
    if per_sample and arr.shape[0] != n:
        raise ValueError(
                f"per-sample `{name}` must have shape [N, T, 2] with N = {n} (the "
                f"batch size); got shape {arr.shape}.")
    if not per_sample:
        arr = np.broadcast_to(arr, (n,) + arr.shape)
    return (arr.astype(np.int64) if integer else arr.astype(np.float64)), per_sample


def _check_inside(name: str, offsets: np.ndarray, inner, outer, what: str):
    """Raises unless every window of size `inner` at `offsets` fits in `outer`."""
    h, w = inner
    big_h, big_w = outer
    oy, ox = offsets[..., 0], offsets[..., 1]
    bad = (oy < 0) | (ox < 0) | (oy > big_h - h) | (ox > big_w - w)
    if bad.any():
        first = tuple(int(v) for v in offsets[bad][0])
        raise ValueError(
                f"`{name}` must place the {(h, w)} {what} inside the {(big_h, big_w)} "
                f"{'image' if what == 'window' else 'canvas'}, i.e. 0 <= oy <= "
                f"{big_h - h} and 0 <= ox <= {big_w - w}; got offset {first}.")


def _record_offsets(arr: np.ndarray, per_sample: bool):
    a = arr if per_sample else arr[0]
    return _jsonable_tuple(a)


def _jsonable_tuple(a: np.ndarray):
    if a.ndim == 1:
        return tuple(v.item() for v in a)
    return tuple(_jsonable_tuple(r) for r in a)


def _check_fill(fill: Any, channels: int):
    """Returns the canvas value as a [C] float array plus its record value."""
    try:
        arr = np.asarray(fill, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
                f"`fill` must be a float or a sequence of {channels} floats (one per "
                f"channel); got {fill!r}.") from None
    if isinstance(fill, (bool, np.bool_)) or arr.ndim > 1 or (
            arr.ndim == 1 and arr.shape[0] != channels):
        raise ValueError(
                f"`fill` must be a float or a sequence of {channels} floats (one per "
                f"channel); got {fill!r}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`fill` must be finite; got {fill!r}.")
    record = float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)
    return np.broadcast_to(arr, (channels,)), record


def _check_bool(name: str, v: Any) -> bool:
    return check_bool(name, v)


def _check_nonneg_int(name: str, v: Any) -> int:
    if not _is_int(v) or v < 0:
        raise ValueError(f"`{name}` must be a non-negative int; got {v!r}.")
    return int(v)


# ---------------------------------------------------------------------------
# Translations
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Crop
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Resize, embed, scale
# ---------------------------------------------------------------------------


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


@functools.partial(jax.jit, static_argnames=("canvas_size",))
def _paste_frames(obj, offsets, fill, canvas_size):
    big_h, big_w = canvas_size
    c = obj.shape[-1]
    canvas = jnp.broadcast_to(fill.astype(obj.dtype), (big_h, big_w, c))
    blank = jnp.zeros((big_h, big_w), bool)
    inside = jnp.ones(obj.shape[1:3], bool)

    def one(o, off):
        img = lax.dynamic_update_slice(canvas, o,
                                       (off[0], off[1], jnp.zeros_like(off[0])))
        known = lax.dynamic_update_slice(blank, inside, (off[0], off[1]))
        return img, known

    return jax.vmap(lambda o, offs: jax.vmap(lambda off: one(o, off))(offs))(
            obj, offsets)


def _check_inpaint_options(inpaint, max_iter, max_unfilled):
    if inpaint is not None:
        check_choice("inpaint", inpaint, ("normalized_conv", "biharmonic"))
    max_iter = check_positive_int("max_iter", max_iter)
    max_unfilled = _check_nonneg_int("max_unfilled", max_unfilled)
    return max_iter, max_unfilled


def _fill_background(frames, known, inpaint, max_iter, max_unfilled):
    """Inpaints the canvas around the pasted objects of frames [N, T, H, W, C]."""
    n, t = frames.shape[:2]
    flat = frames.reshape((n * t,) + frames.shape[2:])
    kflat = known.reshape((n * t,) + known.shape[2:])
    filled, _ = _inpaint_impl(flat, kflat, inpaint, max_iter, max_unfilled)
    return filled.reshape(frames.shape)


def _inpaint_record(inpaint, max_iter, max_unfilled):
    if inpaint == "normalized_conv":
        return dict(inpaint=inpaint, inpaint_max_iter=max_iter,
                    inpaint_max_unfilled=max_unfilled)
    if inpaint == "biharmonic":
        return dict(inpaint=inpaint)
    return {}


def embed(x, offsets, *, canvas_size, object_size=None, fill=0.0,
          method: str = "linear", antialias: bool = True, inpaint=None,
          max_iter: int = 80, max_unfilled: int = 200):
    """Images resized and pasted into a canvas at offsets (oy, ox).

    The image is resized once to `object_size` (skipped when None) and pasted
    with its top-left corner at each offset into a canvas of value `fill`. The
    authors paste after mean/std normalisation, so their "black" canvas is 0 in
    normalised units, i.e. mean gray; pass the value that matches your inputs.
    With `inpaint`, the canvas around the object is then filled by `inpaint`
    (the "Embed-inpaint" protocol); pixels still unfilled keep `fill`.

    Args:
      x: float array, shape [N, H, W, C].
      offsets: int array, shape [T, 2] (shared) or [N, T, 2] (per sample); the
        object's top-left corner, 0 <= oy <= Hc - h and 0 <= ox <= Wc - w.
      canvas_size: positive int or pair (Hc, Wc).
      object_size: None (keep (H, W)) or positive int or pair (h, w).
      fill: float, or a sequence of C floats (one per channel).
      method: resize kernel, one of `RESIZE_METHODS`.
      antialias: antialiased resize (see `resize_images`).
      inpaint: None, ``"normalized_conv"`` or ``"biharmonic"`` (see `inpaint`).
      max_iter: iteration cap of ``"normalized_conv"``.
      max_unfilled: ``"normalized_conv"`` stops once at most this many pixels
        are unfilled.

    Returns:
      ``(frames, record)``: frames float array, shape [N, T, Hc, Wc, C], with
      ``frames[n, t, oy:oy + h, ox:ox + w] == resize(x)[n]``; record a
      `ShiftRecord` with ``protocol="embed"``.

    Raises:
      TypeError: if `x` is not a float array or an option has the wrong type.
      ValueError: if `x` is not NHWC, the object is larger than the canvas, an
        offset puts it outside, or an option is invalid.

    References:
      Azulay & Weiss, JMLR 2019, "Embed-black" and "Embed-inpaint" protocols.
    """
    x = _check_images("x", x)
    canvas = as_pair("canvas_size", canvas_size)
    resized = object_size is not None
    obj_size = as_pair("object_size", object_size) if resized else (
            x.shape[1], x.shape[2])
    method = check_choice("method", method, RESIZE_METHODS)
    antialias = _check_bool("antialias", antialias)
    fill_arr, fill_rec = _check_fill(fill, x.shape[3])
    max_iter, max_unfilled = _check_inpaint_options(inpaint, max_iter, max_unfilled)
    if obj_size[0] > canvas[0] or obj_size[1] > canvas[1]:
        raise ValueError(
                f"the object of size {obj_size} (`object_size`, or the image size) "
                f"must fit inside `canvas_size` {canvas}.")
    arr, per_sample = _as_offsets("offsets", offsets, x.shape[0])
    _check_inside("offsets", arr, obj_size, canvas, "object")
    obj = _resize(x, obj_size, method, antialias) if resized else x
    frames, known = _paste_frames(obj, jnp.asarray(arr, jnp.int32),
                                  jnp.asarray(fill_arr), canvas)
    if inpaint is not None:
        frames = _fill_background(frames, known, inpaint, max_iter, max_unfilled)
    record = ShiftRecord(
            protocol="embed", offsets=_record_offsets(arr, per_sample),
            input_size=(x.shape[1], x.shape[2]), output_size=canvas,
            object_sizes=(obj_size,) * arr.shape[1], fill=fill_rec,
            resize_method=method if resized else None,
            antialias=antialias if resized else None,
            **_inpaint_record(inpaint, max_iter, max_unfilled))
    return frames, record


def scale(x, sizes, offsets, *, canvas_size, fill=0.0, method: str = "linear",
          antialias: bool = True, inpaint=None, max_iter: int = 80,
          max_unfilled: int = 200):
    """Images embedded at a different size in each frame (the Scale protocol).

    Frame t holds the image resized to ``sizes[t]`` and pasted at
    ``offsets[t]``; the paper's protocol grows the object by one pixel between
    the frames of a pair (see `scale_schedule`).

    Args:
      x: float array, shape [N, H, W, C].
      sizes: int array, shape [T, 2]; object size (h, w) per frame.
      offsets: int array, shape [T, 2] (shared) or [N, T, 2] (per sample); the
        object's top-left corner per frame.
      canvas_size: positive int or pair (Hc, Wc).
      fill: float, or a sequence of C floats (one per channel).
      method: resize kernel, one of `RESIZE_METHODS`.
      antialias: antialiased resize.
      inpaint: None, ``"normalized_conv"`` or ``"biharmonic"``.
      max_iter: iteration cap of ``"normalized_conv"``.
      max_unfilled: ``"normalized_conv"`` stops once at most this many pixels
        are unfilled.

    Returns:
      ``(frames, record)``: frames float array, shape [N, T, Hc, Wc, C]; record
      a `ShiftRecord` with ``protocol="scale"``.

    Raises:
      TypeError: if `x` is not a float array or an option has the wrong type.
      ValueError: if `x` is not NHWC, `sizes` and `offsets` disagree in T, or an
        object does not fit the canvas at its offset.

    References:
      Azulay & Weiss, JMLR 2019, "Scale" protocol.
    """
    x = _check_images("x", x)
    canvas = as_pair("canvas_size", canvas_size)
    size_arr = np.asarray(sizes)
    if size_arr.ndim != 2 or size_arr.shape[1] != 2 or size_arr.shape[0] < 1 or not (
            np.issubdtype(size_arr.dtype, np.integer)) or (size_arr < 1).any():
        raise ValueError(
                f"`sizes` must be positive int pairs (h, w), shape [T, 2]; got "
                f"{sizes!r}.")
    method = check_choice("method", method, RESIZE_METHODS)
    antialias = _check_bool("antialias", antialias)
    fill_arr, fill_rec = _check_fill(fill, x.shape[3])
    max_iter, max_unfilled = _check_inpaint_options(inpaint, max_iter, max_unfilled)
    arr, per_sample = _as_offsets("offsets", offsets, x.shape[0])
    t = size_arr.shape[0]
    if arr.shape[1] != t:
        raise ValueError(
                f"`offsets` must hold one offset per frame, T = {t} (the length of "
                f"`sizes`); got {arr.shape[1]}.")
    out, known = [], []
    for i in range(t):
        size = (int(size_arr[i, 0]), int(size_arr[i, 1]))
        if size[0] > canvas[0] or size[1] > canvas[1]:
            raise ValueError(
                    f"`sizes[{i}]` = {size} must fit inside `canvas_size` {canvas}.")
        _check_inside("offsets", arr[:, i], size, canvas, "object")
    for i in range(t):
        size = (int(size_arr[i, 0]), int(size_arr[i, 1]))
        obj = _resize(x, size, method, antialias)
        f, k = _paste_frames(obj, jnp.asarray(arr[:, i:i + 1], jnp.int32),
                             jnp.asarray(fill_arr), canvas)
        out.append(f)
        known.append(k)
    frames = jnp.concatenate(out, axis=1)
    if inpaint is not None:
        frames = _fill_background(frames, jnp.concatenate(known, axis=1), inpaint,
                                  max_iter, max_unfilled)
    record = ShiftRecord(
            protocol="scale", offsets=_record_offsets(arr, per_sample),
            input_size=(x.shape[1], x.shape[2]), output_size=canvas,
            object_sizes=tuple((int(a), int(b)) for a, b in size_arr), fill=fill_rec,
            resize_method=method, antialias=antialias,
            **_inpaint_record(inpaint, max_iter, max_unfilled))
    return frames, record


# ---------------------------------------------------------------------------
# Inpainting
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def _consecutive_pairs(t: int) -> np.ndarray:
    return np.stack([np.arange(t - 1), np.arange(1, t)], axis=1).astype(np.int64)


def center_offset(large, small) -> tuple[int, int]:
    """Top-left offset that centres a (h, w) window or object in (H, W).

    Args:
      large: positive int or pair (H, W); the image or canvas size.
      small: positive int or pair (h, w); the window or object size.

    Returns:
      ``((H - h) // 2, (W - w) // 2)``.

    Raises:
      ValueError: if a size is malformed or `small` exceeds `large`.
    """
    big = as_pair("large", large)
    sm = as_pair("small", small)
    if sm[0] > big[0] or sm[1] > big[1]:
        raise ValueError(f"`small` {sm} must not exceed `large` {big}.")
    return (big[0] - sm[0]) // 2, (big[1] - sm[1]) // 2


def diagonal_schedule(large, small, *, n_pairs: int = 8) -> Schedule:
    """The authors' consecutive diagonal one-pixel pairs around the centre.

    Per axis, ``center = floor((L - l - 1) / 2)``; the pairs are (c, c) and
    (c + 1, c + 1) for c = center - n_pairs // 2, ..., so for ``n_pairs=8``
    c = center - 4 .. center + 3 (the authors' code). For the Crop protocol
    (a 224 window in a 234 image) that is c = 0..7; for the Black protocol use
    L = canvas size, l = object size. The frames are the n_pairs + 1 offsets
    c = center - n_pairs // 2 .. (last c) + 1, and pair i compares frames i and
    i + 1.

    Args:
      large: positive int or pair (H, W); image (crop) or canvas (embed) size.
      small: positive int or pair (h, w); window (crop) or object (embed) size.
      n_pairs: positive int; number of consecutive pairs.

    Returns:
      `Schedule` with offsets [n_pairs + 1, 2] and pairs [n_pairs, 2].

    Raises:
      ValueError: if a size is malformed or the frames do not all fit, i.e.
        the margin L - l is too small for `n_pairs`.

    Examples:
      >>> from sigcnn.shifts import diagonal_schedule
      >>> s = diagonal_schedule(234, 224)      # the Crop protocol
      >>> s.offsets[:, 0].tolist()
      [0, 1, 2, 3, 4, 5, 6, 7, 8]
      >>> s.pairs[:2].tolist()
      [[0, 1], [1, 2]]

    References:
      Azulay & Weiss, JMLR 2019; ``CheckTranslationInvariance.py``.
    """
    big = as_pair("large", large)
    sm = as_pair("small", small)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    cols = []
    for axis in range(2):
        margin = big[axis] - sm[axis]
        center = (margin - 1) // 2
        first = center - n_pairs // 2
        c = np.arange(first, first + n_pairs + 1)
        if c[0] < 0 or c[-1] > margin:
            raise ValueError(
                    f"`large` {big} and `small` {sm} leave a margin of {margin} "
                    f"pixels on axis {axis}, too small for `n_pairs`={n_pairs} "
                    f"diagonal pairs around center {center} (frames {int(c[0])}.."
                    f"{int(c[-1])} must lie in [0, {margin}]).")
        cols.append(c)
    offsets = np.stack(cols, axis=1).astype(np.int64)
    return Schedule("diagonal", offsets, _consecutive_pairs(n_pairs + 1),
                    params=dict(large=big, small=sm, n_pairs=n_pairs))


def sweep_schedule(n_steps: int, *, axis: str = "horizontal", start=(0, 0),
                   step=1) -> Schedule:
    """Offsets (or shifts) along a line, with consecutive pairs.

    Frame k is ``start + k * step * d`` with d = (0, 1) (horizontal), (1, 0)
    (vertical) or (1, 1) (diagonal). For a dense 1-px sweep of a crop or embed,
    use ``n_steps = L - l + 1`` with the other coordinate from `center_offset`.

    Args:
      n_steps: positive int; number of frames T.
      axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.
      start: pair (oy, ox) of ints (or reals, for sub-pixel sweeps).
      step: int, or a real for sub-pixel `translate(..., method="fourier")`
        sweeps; must be nonzero.

    Returns:
      `Schedule` with offsets [T, 2] and pairs [T - 1, 2].

    Raises:
      ValueError: if an argument is malformed.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1 (dense sweeps).
    """
    n_steps = check_positive_int("n_steps", n_steps)
    axis = check_choice("axis", axis, ("horizontal", "vertical", "diagonal"))
    if not (isinstance(start, (tuple, list)) and len(start) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            and np.isfinite(v) for v in start)):
        raise ValueError(
                f"`start` must be a pair (oy, ox) of finite numbers; got {start!r}.")
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, numbers.Real) or step == 0 or not np.isfinite(step):
        raise ValueError(f"`step` must be a nonzero number; got {step!r}.")
    d = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal": (1, 1)}[axis]
    k = np.arange(n_steps)[:, None]
    offsets = np.asarray(start)[None, :] + k * step * np.asarray(d)[None, :]
    integral = all(_is_int(v) for v in start) and _is_int(step)
    offsets = offsets.astype(np.int64 if integral else np.float64)
    return Schedule("sweep", offsets, _consecutive_pairs(n_steps),
                    params=dict(n_steps=n_steps, axis=axis, start=tuple(start),
                                step=step))


def random_pair_schedule(key, n: int, *, max_offset=32,
                         min_offset=0) -> Schedule:
    """Zhang's consistency protocol: two random offsets per sample.

    Each of the n samples gets two independent offsets drawn uniformly from
    ``{min_offset, ..., max_offset - 1}`` per axis ([0, 32)² by default: 224
    crops of a 256 image). For Chaman & Dokmanić's circular version use
    ``min_offset=-m, max_offset=m`` with `translate`.

    Args:
      key: a single JAX PRNG key, ``jax.random.key(seed)`` or the legacy
        ``jax.random.PRNGKey(seed)``.
      n: positive int; number of samples N.
      max_offset: int or pair; exclusive upper bound per axis.
      min_offset: int or pair; inclusive lower bound per axis.

    Returns:
      `Schedule` with per-sample offsets [N, 2, 2] and pairs [[0, 1]].

    Raises:
      TypeError: if `key` is not a PRNG key.
      ValueError: if `key` is a batch of keys, or `n` or the bounds are
        malformed or empty.

    References:
      Zhang, ICML 2019 (consistency, ``main.py -es`` of adobe/antialiased-cnns).
    """
    n = check_positive_int("n", n)
    key = check_key("key", key)

    def pair(name, v):
        if _is_int(v):
            return int(v), int(v)
        if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(u) for u in v):
            return int(v[0]), int(v[1])
        raise ValueError(f"`{name}` must be an int or a pair of ints; got {v!r}.")

    hi = pair("max_offset", max_offset)
    lo = pair("min_offset", min_offset)
    if hi[0] <= lo[0] or hi[1] <= lo[1]:
        raise ValueError(
                f"`max_offset` {hi} must exceed `min_offset` {lo} on both axes.")
    u = jax.random.randint(key, (n, 2, 2), jnp.asarray(lo), jnp.asarray(hi))
    offsets = np.asarray(u).astype(np.int64)
    return Schedule("random_pair", offsets, np.array([[0, 1]], np.int64),
                    params=dict(n=n, min_offset=lo, max_offset=hi))


def grid_schedule(extent) -> Schedule:
    """Every shift (ty, tx) of a grid, 0 <= ty < Sy, 0 <= tx < Sx.

    Row-major order (frame ``ty * Sx + tx``). With S the network's total
    stride these are all distinct circular shifts modulo S; pass them to
    `translate` (or use ``sigcnn.all_shifts``). Pairs compare every shift with
    the unshifted frame 0.

    Args:
      extent: positive int or pair (Sy, Sx).

    Returns:
      `Schedule` with offsets [Sy * Sx, 2] and pairs [Sy * Sx - 1, 2].

    Raises:
      ValueError: if `extent` is malformed.

    References:
      Michaeli et al., CVPR 2023 (accuracy under all shifts).
    """
    sy, sx = as_pair("extent", extent)
    ty, tx = np.meshgrid(np.arange(sy), np.arange(sx), indexing="ij")
    offsets = np.stack([ty.ravel(), tx.ravel()], axis=1).astype(np.int64)
    t = offsets.shape[0]
    pairs = np.stack([np.zeros(t - 1, np.int64), np.arange(1, t)], axis=1)
    return Schedule("grid", offsets, pairs.reshape(-1, 2).astype(np.int64),
                    params=dict(extent=(sy, sx)))


def scale_schedule(object_size, canvas_size, *, n_pairs: int = 8,
                   step: int = 1) -> Schedule:
    """Object sizes growing by `step` pixels per frame, centred in the canvas.

    Frame k has size ``(h + k * step, w + k * step)`` for k = 0..n_pairs at the
    centred offset ``((Hc - h_k) // 2, (Wc - w_k) // 2)``; pair i compares
    frames i and i + 1 (the object grows by `step` pixels). Pass
    ``schedule.sizes`` and ``schedule.offsets`` to `scale`.

    Args:
      object_size: positive int or pair (h, w); the first frame's size.
      canvas_size: positive int or pair (Hc, Wc).
      n_pairs: positive int; number of consecutive pairs.
      step: positive int; growth per frame in pixels.

    Returns:
      `Schedule` with sizes and offsets [n_pairs + 1, 2] and pairs [n_pairs, 2].

    Raises:
      ValueError: if a size is malformed or the largest object exceeds the
        canvas.

    References:
      Azulay & Weiss, JMLR 2019, "Scale" protocol.
    """
    h, w = as_pair("object_size", object_size)
    big = as_pair("canvas_size", canvas_size)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    step = check_positive_int("step", step)
    k = np.arange(n_pairs + 1)
    sizes = np.stack([h + k * step, w + k * step], axis=1).astype(np.int64)
    if sizes[-1, 0] > big[0] or sizes[-1, 1] > big[1]:
        raise ValueError(
                f"the largest object {tuple(int(v) for v in sizes[-1])} must fit in "
                f"`canvas_size` {big}; reduce `object_size`, `n_pairs` or `step`.")
    offsets = (np.asarray(big)[None, :] - sizes) // 2
    return Schedule("scale", offsets.astype(np.int64), _consecutive_pairs(n_pairs + 1),
                    sizes=sizes,
                    params=dict(object_size=(h, w), canvas_size=big,
                                n_pairs=n_pairs, step=step))
