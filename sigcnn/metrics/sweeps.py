"""Jaggedness of a shift sweep: top-1 flips between neighbouring shifts."""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn.metrics._logits import _check_logits, _check_reduce

__all__ = ["jaggedness", "top1_flips"]


@functools.partial(jax.jit, static_argnames=("ax",))
def _flips_kernel(logits, ax):
    top = jnp.argmax(logits, axis=-1)
    first = jax.lax.slice_in_dim(top, 0, top.shape[ax] - 1, axis=ax)
    second = jax.lax.slice_in_dim(top, 1, top.shape[ax], axis=ax)
    return jnp.sum(first != second, axis=ax)


@functools.partial(jax.jit, static_argnames=("ax", "reduce"))
def _jagged_kernel(logits, ax, reduce):
    flips = _flips_kernel(logits, ax)
    rate = flips.astype(jnp.result_type(float)) / (logits.shape[ax] - 1)
    return jnp.mean(rate) if reduce else rate


def _check_sweep_axis(axis: Any, logits) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(
            axis, (numbers.Integral, np.integer)):
        raise TypeError(f"`axis` must be an int naming a shift axis; got {axis!r}.")
    nd = logits.ndim
    if nd < 3:
        raise ValueError(
                f"`logits` must have a shift axis to sweep, shape [N, shifts..., K]; "
                f"got shape {tuple(logits.shape)}.")
    ax = int(axis) + nd if axis < 0 else int(axis)
    if not 1 <= ax <= nd - 2:
        raise ValueError(
                f"`axis` must name a shift axis of `logits` with shape "
                f"{tuple(logits.shape)}, i.e. lie in [1, {nd - 2}] (not the sample "
                f"axis 0 nor the class axis); got {axis!r}.")
    if logits.shape[ax] < 2:
        raise ValueError(
                f"the sweep axis {axis} of `logits` must hold at least 2 shifts; got "
                f"shape {tuple(logits.shape)}.")
    return ax


def top1_flips(logits, *, axis: int = 1):
    """Number of top-1 changes between neighbouring shifts of a sweep.

    Along the sweep axis with T frames, counts ``argmax(t) != argmax(t + 1)``
    for t = 0 .. T - 2 (ties resolve to the first class index).

    Args:
      logits: float array, shape [N, shifts..., K] with at least one shift axis.
      axis: the sweep axis, in [1, ndim - 2] (negative values count from the
        end, so -2 is the last shift axis).

    Returns:
      int array, shape ``logits.shape[:-1]`` without `axis`; values in
      [0, T - 1].

    Raises:
      TypeError: if `logits` is not a float array or `axis` not an int.
      ValueError: if `axis` is not a shift axis or holds fewer than 2 shifts.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1 (p(correct) along a 1-px sweep).
    """
    logits = _check_logits("logits", logits)
    ax = _check_sweep_axis(axis, logits)
    return _flips_kernel(logits, ax)


def jaggedness(logits, *, axis: int = 1, reduce: bool = True):
    """Rate of top-1 flips between neighbouring shifts of a sweep.

    ``top1_flips / (T - 1)``: the P(top-1 change) over consecutive pairs of a
    sweep of T frames.

    Args:
      logits: float array, shape [N, shifts..., K] with at least one shift axis.
      axis: the sweep axis, in [1, ndim - 2] (negative values count from the
        end).
      reduce: if True return the mean; if False the per-sweep rate.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits.shape[:-1]`` without `axis`.

    Raises:
      TypeError: if `logits` is not a float array, `axis` not an int or
        `reduce` not a bool.
      ValueError: if `axis` is not a shift axis or holds fewer than 2 shifts.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1.
    """
    logits = _check_logits("logits", logits)
    reduce = _check_reduce(reduce)
    ax = _check_sweep_axis(axis, logits)
    return _jagged_kernel(logits, ax, reduce)
