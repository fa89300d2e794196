"""Confidence intervals: binomial (Wilson or Clopper-Pearson) and bootstrap."""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc
from jax.scipy.stats import norm

from sigcnn._checks import (
    check_choice,
    check_finite,
    check_float_array,
    check_key,
    check_positive_int,
)
from sigcnn.metrics._logits import _float_dtype

__all__ = ["ConfidenceInterval", "binomial_ci", "bootstrap_ci"]


class ConfidenceInterval(NamedTuple):
    """A point estimate with the bounds of its confidence interval.

    A NamedTuple, hence a JAX pytree: it can be returned from jitted code.
    """

    estimate: Any
    low: Any
    high: Any


def _check_confidence(confidence: Any) -> float:
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(
            confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ValueError(
                f"`confidence` must be a float in (0, 1), e.g. 0.95; got "
                f"{confidence!r}.")
    return float(confidence)


def _beta_ppf(q, a, b, dtype, iters: int = 80):
    """Quantile of Beta(a, b) by bisection on the regularized incomplete beta."""

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = betainc(a, b, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(
            0, iters, body, (jnp.zeros_like(q, dtype), jnp.ones_like(q, dtype)))
    return 0.5 * (lo + hi)


def binomial_ci(successes, n, *, confidence: float = 0.95,
                method: str = "wilson") -> ConfidenceInterval:
    """Confidence interval for a binomial rate (e.g. P(top-1 change)).

    * ``"wilson"``: the Wilson score interval,
      ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.
    * ``"clopper-pearson"``: the exact interval from Beta quantiles,
      ``[B(α/2; k, n-k+1), B(1-α/2; k+1, n-k)]``, with 0 and 1 at k = 0 and
      k = n; the quantiles are found by bisection (80 steps), so the bounds are
      accurate to the precision of ``jax.scipy.special.betainc``.

    Both assume independent trials. Pairs from the same image (e.g. the 8
    diagonal pairs per image) are correlated; use `bootstrap_ci` over images
    for those.

    Args:
      successes: int or int array, shape [...]; number of events k in [0, n].
      n: positive int or int array broadcastable with `successes`.
      confidence: float in (0, 1).
      method: ``"wilson"`` or ``"clopper-pearson"``.

    Returns:
      ``ConfidenceInterval(estimate=k/n, low, high)``, float arrays of the
      broadcast shape of `successes` and `n`.

    Raises:
      TypeError: if `successes` or `n` is not integer.
      ValueError: if `n` < 1, `successes` lies outside [0, n] (checked for
        concrete values), or `confidence`/`method` is invalid.

    References:
      Wilson, J. Am. Stat. Assoc. 22:209-212, 1927.
      Clopper & Pearson, Biometrika 26(4):404-413, 1934.
      Newcombe, Statistics in Medicine 17:857-872, 1998 (comparison).
    """
    confidence = _check_confidence(confidence)
    method = check_choice("method", method, ("wilson", "clopper-pearson"))
    for name, v in (("successes", successes), ("n", n)):
        dt = np.dtype(v.dtype) if hasattr(v, "dtype") else np.asarray(v).dtype
        if not np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.bool_):
            raise TypeError(
                    f"`{name}` must be an int or an integer array; got {v!r}.")
    try:
        k_np, n_np = np.asarray(successes), np.asarray(n)
    except Exception:  # traced
        k_np = n_np = None
    if k_np is not None:
        if (n_np < 1).any():
            raise ValueError(f"`n` must be a positive int; got {n!r}.")
        if ((k_np < 0) | (k_np > n_np)).any():
            raise ValueError(
                    f"`successes` must lie in [0, n]; got successes={successes!r}, "
                    f"n={n!r}.")
    dt = jnp.result_type(float)
    k = jnp.asarray(successes).astype(dt)
    nn = jnp.asarray(n).astype(dt)
    return _binomial_kernel(k, nn, jnp.asarray(1.0 - confidence, dt), method)


@functools.partial(jax.jit, static_argnames=("method",))
def _binomial_kernel(k, nn, alpha, method):
    dt = k.dtype
    k, nn = jnp.broadcast_arrays(k, nn)
    p = k / nn
    if method == "wilson":
        z = norm.ppf(1.0 - alpha / 2.0).astype(dt)
        denom = 1.0 + z ** 2 / nn
        center = (p + z ** 2 / (2.0 * nn)) / denom
        half = z / denom * jnp.sqrt(p * (1.0 - p) / nn + z ** 2 / (4.0 * nn ** 2))
        low = jnp.clip(center - half, 0.0, 1.0)
        high = jnp.clip(center + half, 0.0, 1.0)
        # Exact at the ends, where rounding could leave a tiny nonzero bound.
        low = jnp.where(k == 0, 0.0, low)
        high = jnp.where(k == nn, 1.0, high)
    else:
        q_lo = jnp.full_like(p, alpha / 2.0)
        q_hi = jnp.full_like(p, 1.0 - alpha / 2.0)
        low = _beta_ppf(q_lo, jnp.maximum(k, 1.0), nn - k + 1.0, dt)
        high = _beta_ppf(q_hi, k + 1.0, jnp.maximum(nn - k, 1.0), dt)
        low = jnp.where(k == 0, 0.0, low)
        high = jnp.where(k == nn, 1.0, high)
    return ConfidenceInterval(p, low, high)


def bootstrap_ci(values, *, key, n_resamples: int = 2000,
                 confidence: float = 0.95) -> ConfidenceInterval:
    """Percentile bootstrap interval for a mean (e.g. MAC), resampling samples.

    Rows (axis 0, the samples) are drawn with replacement; all entries of a row
    stay together, so the several frame pairs of one image are resampled as a
    unit (a cluster bootstrap). The statistic is the mean over all entries,
    which equals the mean of row means since rows have equal sizes. The bounds
    are the α/2 and 1 - α/2 quantiles (linear interpolation, NumPy's default)
    of the resampled means, drawn one resample at a time so memory stays O(N).
    Deterministic for a given `key`.

    Args:
      values: float array, shape [N] or [N, ...]; per-sample values such as
        ``mean_abs_change(a, b, reduce=False)``.
      key: a single JAX PRNG key, ``jax.random.key(seed)`` or the legacy
        ``jax.random.PRNGKey(seed)``.
      n_resamples: positive int; number of bootstrap resamples.
      confidence: float in (0, 1).

    Returns:
      ``ConfidenceInterval(estimate=mean(values), low, high)``, float scalars.

    Raises:
      TypeError: if `values` is not a float array or `key` not a PRNG key.
      ValueError: if `values` is empty or holds NaN/Inf, `key` is a batch of
        keys, or `n_resamples`/`confidence` is invalid.

    References:
      Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall,
      1993, Chapter 13 (percentile interval).
    """
    values = check_float_array("values", values)
    if values.ndim < 1 or values.size == 0:
        raise ValueError(
                f"`values` must have shape [N] or [N, ...] with N >= 1 and no empty "
                f"axis; got {tuple(values.shape)}.")
    n_resamples = check_positive_int("n_resamples", n_resamples)
    confidence = _check_confidence(confidence)
    key = check_key("key", key)
    check_finite("values", values)
    dt = _float_dtype(values)
    rows = values.astype(dt).reshape(values.shape[0], -1).mean(axis=1)
    return _bootstrap_kernel(rows, key, n_resamples,
                             jnp.asarray(1.0 - confidence, dt))


def _percentile(sorted_values, q):
    """Quantile q of sorted values, linear interpolation (NumPy's default)."""
    pos = q * (sorted_values.shape[0] - 1)
    lo = jnp.floor(pos).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, sorted_values.shape[0] - 1)
    frac = pos - lo
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


@functools.partial(jax.jit, static_argnames=("n_resamples",))
def _bootstrap_kernel(rows, key, n_resamples, alpha):
    n = rows.shape[0]
    keys = jax.random.split(key, n_resamples)

    def one(k):
        idx = jax.random.randint(k, (n,), 0, n)
        return jnp.mean(rows[idx])

    means = jnp.sort(jax.lax.map(one, keys))
    low = _percentile(means, alpha / 2.0)
    high = _percentile(means, 1.0 - alpha / 2.0)
    return ConfidenceInterval(jnp.mean(rows), low, high)
