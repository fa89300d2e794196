"""Pair metrics: P(top-1 change), consistency and mean absolute change (MAC)
between the logits of two frames.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sigcnn.metrics._logits import _check_pair, _check_reduce, _float_dtype, _rate

__all__ = ["consistency", "mean_abs_change", "p_top1_change"]


@functools.partial(jax.jit, static_argnames=("kind", "reduce"))
def _pair_kernel(a, b, kind, reduce):
    top_a = jnp.argmax(a, axis=-1)
    if kind == "change":
        return _rate(top_a != jnp.argmax(b, axis=-1), reduce)
    if kind == "agree":
        return _rate(top_a == jnp.argmax(b, axis=-1), reduce)
    dt = _float_dtype(a)
    p = jax.nn.softmax(a.astype(dt), axis=-1)
    q = jax.nn.softmax(b.astype(dt), axis=-1)
    k = top_a[..., None]
    change = jnp.abs(jnp.take_along_axis(p, k, axis=-1)
                     - jnp.take_along_axis(q, k, axis=-1))[..., 0]
    return jnp.mean(change) if reduce else change


def p_top1_change(logits_a, logits_b, *, reduce: bool = True):
    """Probability that the top-1 class changes between two frames.

    The mean over all leading entries of ``argmax(a) != argmax(b)``. Ties in the
    arg max resolve to the first class index (``jnp.argmax``).

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K]; first frames.
      logits_b: float array, same shape as `logits_a`; second frames.
      reduce: if True return the mean; if False the per-entry indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]`` holding 0.0 or 1.0.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import p_top1_change
      >>> a = jnp.array([[2.0, 1.0], [0.0, 1.0]])
      >>> b = jnp.array([[1.0, 2.0], [0.0, 3.0]])
      >>> float(p_top1_change(a, b))
      0.5

    References:
      Azulay & Weiss, JMLR 2019, Section 2 ("P(top-1 change)"; the variable
      ``Jagged`` in the authors' ``CheckTranslationInvariance.py``).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "change", _check_reduce(reduce))


def consistency(logits_a, logits_b, *, reduce: bool = True):
    """Fraction of frame pairs whose top-1 classes agree.

    The mean of ``argmax(a) == argmax(b)``, i.e. ``1 - p_top1_change``, as a
    fraction in [0, 1] (Zhang reports it in percent). Ties resolve to the first
    class index.

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K].
      logits_b: float array, same shape as `logits_a`.
      reduce: if True return the mean; if False the per-entry indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]`` holding 0.0 or 1.0.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import consistency
      >>> a = jnp.array([[2.0, 1.0], [1.0, 1.0]])   # second row: a tie -> class 0
      >>> b = jnp.array([[1.0, 2.0], [3.0, 0.0]])
      >>> float(consistency(a, b))
      0.5

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
      (two random crop offsets per image).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "agree", _check_reduce(reduce))


def mean_abs_change(logits_a, logits_b, *, reduce: bool = True):
    """Mean absolute change (MAC) of the first frame's top-1 probability.

    With p = softmax(a), q = softmax(b) over the last axis and k = argmax(a)
    (the first frame's top class, first index on ties), the mean of
    ``|p[k] - q[k]|``. This follows the authors' code; it is not symmetric in
    its arguments.

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K]; first frames.
      logits_b: float array, same shape as `logits_a`; second frames.
      reduce: if True return the mean; if False the per-entry values.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]``. Computed in at least float32.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import mean_abs_change
      >>> a = jnp.log(jnp.array([[0.5, 0.3, 0.2]]))   # top class 0, p = 0.5
      >>> b = jnp.log(jnp.array([[0.2, 0.7, 0.1]]))   # class 0 now has 0.2
      >>> round(float(mean_abs_change(a, b)), 6)
      0.3

    References:
      Azulay & Weiss, JMLR 2019, Section 2 ("mean absolute change",
      ``CheckTranslationInvariance.py``).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "mac", _check_reduce(reduce))
