"""The Embed and Scale protocols: images resized and pasted into a canvas,
optionally with the background inpainted.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn._checks import as_pair, check_choice, check_positive_int
from sigcnn.shifts._validate import (
    _as_offsets,
    _check_bool,
    _check_fill,
    _check_images,
    _check_inside,
    _check_nonneg_int,
    _record_offsets,
)
from sigcnn.shifts.inpainting import _inpaint_impl
from sigcnn.shifts.records import ShiftRecord
from sigcnn.shifts.resizing import RESIZE_METHODS, _resize

__all__ = ["embed", "scale"]


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
