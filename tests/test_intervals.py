"""The shift test's host-side intervals (scipy.stats) against independent
references: sigcnn.metrics' jit-compatible Wilson interval and the normal
approximation of a mean's interval."""

import jax
import numpy as np
import pytest

from sigcnn import metrics
from sigcnn.shift_test.intervals import bootstrap_mean, wilson


@pytest.mark.parametrize("k,n", [(0, 40), (3, 40), (40, 40), (517, 4000)])
def test_wilson_equals_the_metrics_implementation(k, n):
    ref = metrics.binomial_ci(k, n, confidence=0.9)
    low, high = wilson(k, n, confidence=0.9)
    assert low == pytest.approx(float(ref.low), abs=1e-6)
    assert high == pytest.approx(float(ref.high), abs=1e-6)


def test_bootstrap_mean_matches_the_normal_approximation_and_is_seeded():
    rng = np.random.default_rng(0)
    values = rng.random((4000, 8))               # images x pairs
    rows = values.mean(axis=1)
    mean, (low, high) = bootstrap_mean(values, key=jax.random.key(1),
                                       n_resamples=4000, confidence=0.95)
    half = 1.96 * rows.std(ddof=1) / np.sqrt(rows.size)
    assert mean == pytest.approx(values.mean())
    assert low == pytest.approx(mean - half, rel=2e-3)
    assert high == pytest.approx(mean + half, rel=2e-3)
    again = bootstrap_mean(values, key=jax.random.key(1), n_resamples=4000,
                           confidence=0.95)
    other = bootstrap_mean(values, key=jax.random.key(2), n_resamples=4000,
                           confidence=0.95)
    assert again == (mean, (low, high)) and other != again


def test_bootstrap_mean_of_one_image_or_constant_rows_is_the_point():
    assert bootstrap_mean(np.full((1, 3), 0.5), key=jax.random.key(0),
                          n_resamples=10, confidence=0.95) == (0.5, (0.5, 0.5))
    assert bootstrap_mean(np.zeros((6, 2)), key=jax.random.key(0),
                          n_resamples=10, confidence=0.95) == (0.0, (0.0, 0.0))
