"""Argument validators shared by sigcnn's public functions.

Every validator raises early, before any heavy computation, with a message that
names the argument, shows its value and states the expected form.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
        "as_pair",
        "check_float_array",
        "check_finite",
        "check_nhwc",
        "check_choice",
        "check_positive_int",
]


def check_positive_int(name: str, value: Any) -> int:
    """Returns `value` as an int, or raises if it is not a positive integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Integral, np.integer)):
        raise TypeError(
                f"`{name}` must be a positive int; got {value!r} of type "
                f"{type(value).__name__}.")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    return int(value)


def as_pair(name: str, value: Any) -> tuple[int, int]:
    """Returns `value` as a pair of positive ints (an int is used for both axes)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                    f"`{name}` must be a positive int or a pair (h, w) of them; got "
                    f"{value!r} with {len(value)} entries.")
        ok = all(not isinstance(v, (bool, np.bool_))
                          and isinstance(v, (numbers.Integral, np.integer)) and v >= 1
                          for v in value)
        if not ok:
            raise ValueError(
                    f"`{name}` must be a positive int or a pair (h, w) of them; got "
                    f"{value!r}.")
        return int(value[0]), int(value[1])
    try:
        v = check_positive_int(name, value)
    except (TypeError, ValueError):
        raise (TypeError if not isinstance(value, numbers.Number) else ValueError)(
                f"`{name}` must be a positive int or a pair (h, w) of them; got "
                f"{value!r}.") from None
    return v, v


def check_choice(name: str, value: Any, choices) -> str:
    """Raises unless `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
                f"`{name}` must be one of {list(choices)}; got {value!r}.")
    return value


def check_float_array(name: str, x: Any, *, allow_complex: bool = False):
    """Returns `x` as a jax array; raises unless its dtype is a real float."""
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    dt = np.dtype(x.dtype)
    if jnp.issubdtype(dt, jnp.floating):
        return jnp.asarray(x)
    if allow_complex and jnp.issubdtype(dt, jnp.complexfloating):
        return jnp.asarray(x)
    expected = "a real or complex float" if allow_complex else "a real float"
    raise TypeError(
            f"`{name}` must be {expected} array (float32 or float64); got dtype "
            f"{dt.name}. Convert it first, e.g. `{name}.astype(jnp.float32)`.")


def check_nhwc(name: str, x: Any, *, channels_first_hint: bool = True):
    """Raises unless `x` has rank 4, read as [N, H, W, C]."""
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        x = np.asarray(x)
        ndim = x.ndim
    if ndim != 4:
        extra = ""
        if ndim == 3:
            extra = " For a single image [H, W, C] use `x[None]`."
        elif ndim == 2:
            extra = " For a single-channel image [H, W] use `x[None, :, :, None]`."
        elif ndim == 1:
            extra = " For a 1-D signal of length W use `x[None, None, :, None]`."
        raise ValueError(
                f"`{name}` must have rank 4 and layout [N, H, W, C] (NHWC); got shape "
                f"{tuple(x.shape)}.{extra}")
    if channels_first_hint:
        _, h, w, c = x.shape
        if h == 3 and w == c and c > 4:
            raise ValueError(
                    f"`{name}` has shape {tuple(x.shape)}, which looks channels-first "
                    f"[N, C, H, W]; sigcnn expects [N, H, W, C] (NHWC). Use "
                    f"`jnp.transpose({name}, (0, 2, 3, 1))`.")
    return x


def check_finite(name: str, x) -> None:
    """Raises if `x` holds NaN or Inf (only for concrete, non-traced arrays)."""
    try:
        finite = bool(np.all(np.isfinite(np.asarray(x))))
    except Exception:  # traced value: cannot be checked before compilation
        return
    if not finite:
        arr = np.asarray(x)
        raise ValueError(
                f"`{name}` must be finite; it contains {int(np.isnan(arr).sum())} NaN "
                f"and {int(np.isinf(arr).sum())} Inf values.")
