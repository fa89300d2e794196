"""Argument checks of logits and labels, and small helpers shared by the metrics."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import check_bool, check_float_array, check_logit_values


def _check_logits(name: str, logits: Any, *, values: bool = True):
    logits = check_float_array(name, logits)
    if logits.ndim < 2:
        raise ValueError(
                f"`{name}` must have shape [N, K] or [N, shifts..., K] (rank >= 2); "
                f"got shape {tuple(logits.shape)}.")
    if logits.shape[-1] < 1:
        raise ValueError(
                f"`{name}` must have K >= 1 classes in its last axis; got shape "
                f"{tuple(logits.shape)}.")
    if logits.size == 0:
        raise ValueError(
                f"`{name}` must hold at least one sample; got shape "
                f"{tuple(logits.shape)}.")
    if values:
        check_logit_values(name, logits)
    return logits


def _check_pair(logits_a: Any, logits_b: Any):
    a = _check_logits("logits_a", logits_a, values=False)
    b = _check_logits("logits_b", logits_b, values=False)
    if a.shape != b.shape:
        raise ValueError(
                f"`logits_a` and `logits_b` must have the same shape; got "
                f"{tuple(a.shape)} and {tuple(b.shape)}.")
    check_logit_values("logits_a", a)
    check_logit_values("logits_b", b)
    return a, b


def _check_reduce(reduce: Any) -> bool:
    return check_bool("reduce", reduce)


def _check_labels(labels: Any, logits) -> jax.Array:
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    dt = np.dtype(labels.dtype)
    if not np.issubdtype(dt, np.integer):
        raise TypeError(
                f"`labels` must be an integer array of class indices; got dtype "
                f"{dt.name}.")
    n, k = logits.shape[0], logits.shape[-1]
    if tuple(labels.shape) != (n,):
        raise ValueError(
                f"`labels` must have shape [N] = ({n},) to match `logits` of shape "
                f"{tuple(logits.shape)}; got {tuple(labels.shape)}.")
    try:
        arr = np.asarray(labels)
    except Exception:  # traced: the range cannot be checked before compilation
        return jnp.asarray(labels)
    bad = (arr < 0) | (arr >= k)
    if bad.any():
        raise ValueError(
                f"`labels` must lie in [0, K) = [0, {k}); got {int(bad.sum())} "
                f"out-of-range value(s), e.g. {int(arr[bad][0])}.")
    return jnp.asarray(labels)


def _float_dtype(x):
    """A float dtype of at least 32 bits for reductions of `x`."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _rate(indicator, reduce: bool):
    values = indicator.astype(jnp.result_type(float))
    return jnp.mean(values) if reduce else values
