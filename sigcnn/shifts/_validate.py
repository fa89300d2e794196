"""Argument checks shared by the shift protocols: images, offsets, canvas values."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from sigcnn._checks import (
    check_bool,
    check_finite,
    check_float_array,
    check_nhwc,
    check_nonempty,
)


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
