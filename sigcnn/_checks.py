"""Argument validators shared by sigcnn's public functions.

Every validator raises early, before any heavy computation, with a message that
names the argument, shows its value and states the expected form.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
        "as_pair",
        "check_bool",
        "check_float_array",
        "check_finite",
        "check_key",
        "check_logit_values",
        "check_nhwc",
        "check_nonempty",
        "check_choice",
        "check_positive_int",
        "is_traced",
]


def is_traced(x: Any) -> bool:
    """True if `x` is a JAX tracer (under jit, vmap, grad...): no values to check."""
    return isinstance(x, jax.core.Tracer)


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


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` as a bool; raises unless it is a Python or NumPy bool.

    Strings such as ``"False"`` are refused rather than read as truthy.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
                f"`{name}` must be a bool (True or False); got {value!r} of type "
                f"{type(value).__name__}.")
    return bool(value)


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


def check_nonempty(name: str, x: Any, axes=(1, 2), *, what: str = "") -> None:
    """Raises if any of `axes` of `x` (NHWC by default: H and W) has size 0."""
    labels = "NHWC" if len(x.shape) == 4 else None
    bad = [a for a in axes if x.shape[a] == 0]
    if bad:
        names = ", ".join((labels[a] if labels else f"axis {a}") for a in axes)
        raise ValueError(
                f"`{name}` must not be empty along {names}{what}; got shape "
                f"{tuple(x.shape)}.")


def _finite_flag(x) -> bool | None:
    """Whether every entry of `x` is finite; None for traced values."""
    if is_traced(x):
        return None
    if isinstance(x, jax.Array):   # reduce on the device; one bool comes back
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            return True
        return bool(jnp.all(jnp.isfinite(x)))
    try:
        arr = np.asarray(x)
    except Exception:  # traced value: cannot be checked before compilation
        return None
    if arr.dtype == object:
        return True
    return bool(np.all(np.isfinite(arr)))


def check_finite(name: str, x) -> None:
    """Raises if `x` holds NaN or Inf (only for concrete, non-traced arrays).

    A device array is reduced on its device (only one bool is copied to the
    host); the NaN and Inf counts are computed only for the error message.
    """
    if _finite_flag(x) is False:
        arr = np.asarray(x)
        raise ValueError(
                f"`{name}` must be finite; it contains {int(np.isnan(arr).sum())} NaN "
                f"and {int(np.isinf(arr).sum())} Inf values.")


@jax.jit
def _logit_stats(x):
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    unit = jnp.all((x >= 0) & (x <= 1))
    dev = jnp.max(jnp.abs(jnp.sum(x, axis=-1) - 1))
    return unit, dev


def check_logit_values(name: str, logits) -> None:
    """Raises if concrete `logits` hold NaN/Inf or look like probabilities.

    Rows (the last axis) that all lie in [0, 1] and sum to 1 (within 1e-5, or
    ``K * eps`` for half precision) with K >= 2 classes are taken for softmax
    outputs passed where logits are expected. Traced values (inside
    ``jax.jit``) cannot be checked and pass silently.
    """
    if is_traced(logits):
        return
    check_finite(name, logits)
    k = logits.shape[-1]
    if k < 2 or logits.size == 0:
        return
    if isinstance(logits, jax.Array):
        unit, dev = (np.asarray(v) for v in _logit_stats(logits))
    else:
        arr = np.asarray(logits)
        if arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        unit = bool(arr.min() >= 0 and arr.max() <= 1)
        dev = float(np.max(np.abs(arr.sum(axis=-1, dtype=np.float64) - 1))) \
            if unit else np.inf
    eps = float(jnp.finfo(logits.dtype).eps)
    tol = max(1e-5, k * eps) if eps > 1e-6 else 1e-5
    if bool(unit) and float(dev) <= tol:
        raise ValueError(
                f"`{name}` looks like probabilities, not logits: every row (last "
                f"axis, K = {k} classes) lies in [0, 1] and sums to 1. Pass the "
                f"logits (the inputs of the softmax), or `jnp.log(p)` for "
                f"probabilities p.")


def check_key(name: str, key):
    """Returns `key` unchanged; raises unless it is a single JAX PRNG key.

    Accepts a new-style typed key (``jax.random.key(seed)``, dtype ``key<...>``
    and shape ``()``) or a legacy raw key (``jax.random.PRNGKey(seed)``,
    ``uint32[2]``). Refuses ints, floats, arrays of other dtypes or shapes, and
    batches of keys (split them and pass one). Only the dtype and shape are
    read, so traced keys are checked too.
    """
    how = ("make one with `jax.random.key(seed)` (or the legacy "
           "`jax.random.PRNGKey(seed)`)")
    dt = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dt is None or shape is None or isinstance(key, np.generic):
        raise TypeError(
                f"`{name}` must be a JAX PRNG key; got {key!r} of type "
                f"{type(key).__name__}: {how}.")
    shape = tuple(shape)
    if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        if shape != ():
            raise ValueError(
                    f"`{name}` must be a JAX PRNG key, a single one; got a batch of "
                    f"keys with shape {shape}. Pass one key, e.g. `{name}[0]`, or "
                    f"{how}.")
        return key
    if np.dtype(dt) == np.uint32 and shape == (2,):
        return key
    if np.dtype(dt) == np.uint32 and len(shape) >= 2 and shape[-1] == 2:
        raise ValueError(
                f"`{name}` must be a JAX PRNG key, a single one; got a batch of "
                f"legacy keys with shape {shape}. Pass one key, e.g. `{name}[0]`, or "
                f"{how}.")
    raise TypeError(
            f"`{name}` must be a JAX PRNG key; got an array of shape {shape} and "
            f"dtype {np.dtype(dt).name} (a legacy key is uint32[2]): {how}.")
