"""Confidence intervals of the shift test's statistics, from `scipy.stats`.

The statistics of a finished run are computed on the host from per-image
arrays, so their intervals come from `scipy.stats` (the jit-compatible
versions in `sigcnn.metrics` serve code that runs on the device):

* `wilson`: the Wilson score interval of a binomial rate
  (``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``), for
  P(top-1 change) over pairs, consistency, robust accuracy;
* `bootstrap_mean`: the percentile bootstrap of a mean over images
  (``scipy.stats.bootstrap``), resampling images as units so that the pairs of
  one image stay together (a cluster bootstrap), seeded from a JAX key.

References:
  Wilson, J. Am. Stat. Assoc. 22:209-212, 1927.
  Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall,
  1993, Chapter 13 (percentile interval).
"""

from __future__ import annotations

import jax
import numpy as np
from scipy import stats

__all__ = ["bootstrap_mean", "wilson"]


def wilson(successes: int, n: int, *, confidence: float) -> tuple[float, float]:
    """(low, high) Wilson interval of `successes` out of `n` trials.

    Examples:
      >>> [round(v, 4) for v in wilson(3, 40, confidence=0.95)]
      [0.0258, 0.1986]
    """
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(
            confidence_level=float(confidence), method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_mean(values, *, key, n_resamples: int,
                   confidence: float) -> tuple[float, tuple[float, float]]:
    """Mean of `values` [N, ...] and its percentile bootstrap interval.

    Rows (images) are resampled with replacement; the statistic is the mean
    of row means (equal to the mean of all entries, rows having equal sizes).
    With a single row, or rows all equal, the interval is the point itself.

    Args:
      values: array [N] or [N, ...] of finite numbers.
      key: a JAX PRNG key; seeds the resampling (deterministic).
      n_resamples: number of bootstrap resamples.
      confidence: confidence level in (0, 1).

    Returns:
      ``(mean, (low, high))``.
    """
    rows = np.asarray(values, np.float64).reshape(np.shape(values)[0], -1)
    rows = rows.mean(axis=1)
    mean = float(rows.mean())
    if rows.shape[0] < 2 or np.all(rows == rows[0]):
        return mean, (mean, mean)
    seed = np.asarray(jax.random.key_data(key), np.uint32).ravel().tolist()
    res = stats.bootstrap((rows,), np.mean, n_resamples=int(n_resamples),
                          confidence_level=float(confidence), method="percentile",
                          vectorized=True, batch=max(1, 2 ** 22 // rows.shape[0]),
                          rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return mean, (float(ci.low), float(ci.high))
