"""Tests for sigcnn.metrics: hand fixtures, NumPy references, exact identities."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.stats import binom, binomtest

from sigcnn import metrics

# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_pair_metrics(a, b):
    """Naive loops over the leading entries: (P(change), consistency, MAC)."""
    a2 = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
    b2 = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
    change, agree, mac = [], [], []
    for za, zb in zip(a2, b2):
        ka = int(np.argmax(za))
        kb = int(np.argmax(zb))
        change.append(float(ka != kb))
        agree.append(float(ka == kb))
        mac.append(abs(np_softmax(za)[ka] - np_softmax(zb)[ka]))
    return np.mean(change), np.mean(agree), np.mean(mac)


def logits_pair(seed, shape, scale=1.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape) * scale
    b = a + rng.normal(size=shape) * 0.5 * scale
    return a.astype(dtype), b.astype(dtype)


# ---------------------------------------------------------------------------
# P(top-1 change), consistency, MAC
# ---------------------------------------------------------------------------


def test_hand_fixture_authors_mac_uses_first_frame_top_class():
    # Logits are log-probabilities, so softmax returns these exact probabilities.
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    q = np.array([[0.2, 0.7, 0.1], [0.1, 0.5, 0.4]])
    a, b = np.log(p), np.log(q)
    # Pair 0: top class 0 -> 1 (a change); pair 1: 1 -> 1 (no change).
    assert float(metrics.p_top1_change(a, b)) == pytest.approx(0.5)
    assert float(metrics.consistency(a, b)) == pytest.approx(0.5)
    # MAC with k = argmax of the FIRST frame: |0.5 - 0.2| and |0.6 - 0.5|.
    per = metrics.mean_abs_change(a, b, reduce=False)
    np.testing.assert_allclose(per, [0.3, 0.1], atol=1e-12)
    assert float(metrics.mean_abs_change(a, b)) == pytest.approx(0.2)
    # Not symmetric: with b first, k = 1 in pair 0: |0.7 - 0.3|.
    np.testing.assert_allclose(metrics.mean_abs_change(b, a, reduce=False),
                               [0.4, 0.1], atol=1e-12)


def test_ties_resolve_to_first_index():
    # argmax of [1, 1, 0] is 0 and of [0, 3, 3] is 1 (first maximum).
    a = np.array([[1.0, 1.0, 0.0], [0.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    b = np.array([[1.0, 0.0, 1.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0]])
    # Top classes: a -> (0, 1, 0), b -> (0, 1, 0): no change anywhere.
    assert float(metrics.p_top1_change(a, b)) == 0.0
    assert float(metrics.consistency(a, b)) == 1.0
    # Swap the tie order: [0, 1, 1] has argmax 1, against 0 for [1, 1, 0].
    b2 = np.array([[0.0, 1.0, 1.0], [0.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(
            metrics.p_top1_change(a, b2, reduce=False), [1.0, 0.0, 0.0])
    # MAC on ties uses the first tied class: p = (1/3, 1/3, 1/3), k = 0.
    c = np.array([[2.0, 2.0, 2.0]])
    d = np.log(np.array([[0.5, 0.25, 0.25]]))
    assert float(metrics.mean_abs_change(c, d)) == pytest.approx(0.5 - 1 / 3)


@pytest.mark.parametrize("k", [1, 2, 10, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_numpy_reference(k, dtype):
    a, b = logits_pair(k, (64, 3, k), scale=3.0, dtype=dtype)
    change, agree, mac = np_pair_metrics(a, b)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert float(metrics.p_top1_change(a, b)) == pytest.approx(change, abs=tol)
    assert float(metrics.consistency(a, b)) == pytest.approx(agree, abs=tol)
    assert float(metrics.mean_abs_change(a, b)) == pytest.approx(mac, abs=tol)
    if k == 1:
        assert (change, agree, mac) == (0.0, 1.0, 0.0)


def test_k2_hand_values():
    # K = 2: softmax(a)[0] = sigmoid(a0 - a1).
    a = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    b = np.array([[0.0, 1.0], [0.0, 3.0], [0.5, -0.5]])
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
    expect_mac = np.array([
            abs(sig(2.0) - sig(-1.0)),       # k = 0
            abs(sig(1.0) - sig(3.0)),        # k = 1
            abs(0.5 - sig(1.0)),             # tie -> k = 0
    ])
    np.testing.assert_allclose(metrics.mean_abs_change(a, b, reduce=False),
                               expect_mac, atol=1e-12)
    np.testing.assert_array_equal(metrics.p_top1_change(a, b, reduce=False),
                                  [1.0, 0.0, 0.0])


def test_reduce_false_shapes_and_means():
    a, b = logits_pair(3, (5, 4, 3, 7))
    for fn in (metrics.p_top1_change, metrics.consistency, metrics.mean_abs_change):
        per = fn(a, b, reduce=False)
        assert per.shape == (5, 4, 3)
        assert float(jnp.mean(per)) == pytest.approx(float(fn(a, b)), abs=1e-7)


def test_jit_and_vmap_match_eager():
    a, b = logits_pair(4, (6, 8, 10))
    for fn in (metrics.p_top1_change, metrics.consistency, metrics.mean_abs_change):
        eager = fn(a, b, reduce=False)
        np.testing.assert_allclose(jax.jit(fn)(a, b), jnp.mean(eager), atol=1e-7)
        batched = jax.vmap(lambda x, y: fn(x, y, reduce=False))(a, b)
        np.testing.assert_allclose(batched, eager, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(1, 1), (4, 2), (6, 5)]), st.integers(0, 10_000))
def test_change_plus_consistency_is_one(shape, seed):
    rng = np.random.default_rng(seed)
    # Small integers make ties frequent; few shapes keep compiles few.
    a = rng.integers(0, 3, size=shape).astype(np.float32)
    b = rng.integers(0, 3, size=shape).astype(np.float32)
    total = metrics.p_top1_change(a, b) + metrics.consistency(a, b)
    assert float(total) == pytest.approx(1.0)
    mac = float(metrics.mean_abs_change(a, b))
    assert 0.0 <= mac <= 1.0
    assert float(metrics.mean_abs_change(a, a)) == 0.0


# ---------------------------------------------------------------------------
# Accuracy, robust accuracy, p(true class)
# ---------------------------------------------------------------------------


def onehot_logits(classes, k):
    # A hot value of 5, not 1: exact one-hot rows would be refused as
    # probabilities passed where logits are expected.
    classes = np.asarray(classes)
    out = np.zeros(classes.shape + (k,), np.float32)
    np.put_along_axis(out, classes[..., None], 5.0, axis=-1)
    return out


def test_robust_accuracy_hand_fixture():
    # Predicted classes per (sample, shift); labels (0, 1, 2).
    pred = [[0, 0, 0], [1, 2, 1], [0, 0, 0]]
    logits = onehot_logits(pred, 4)
    labels = np.array([0, 1, 2])
    np.testing.assert_array_equal(
            metrics.robust_accuracy(logits, labels, reduce=False), [1.0, 0.0, 0.0])
    assert float(metrics.robust_accuracy(logits, labels)) == pytest.approx(1 / 3)
    # Plain accuracy over all frames: 3 + 2 + 0 correct of 9.
    assert float(metrics.accuracy(logits, labels)) == pytest.approx(5 / 9)
    # [N, K] robust accuracy is the accuracy of that frame.
    assert float(metrics.robust_accuracy(logits[:, 1], labels)) == pytest.approx(1 / 3)


def test_robust_accuracy_2d_shift_grid_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 2, 3, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=40)
    correct = logits.argmax(-1) == labels[:, None, None]
    expect = correct.reshape(40, -1).all(axis=1).mean()
    assert float(metrics.robust_accuracy(logits, labels)) == pytest.approx(expect)
    assert float(metrics.accuracy(logits, labels)) == pytest.approx(correct.mean())


def test_true_class_probability_against_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 6, 3)).astype(np.float64)
    labels = np.array([0, 2, 1, 2])
    p = np_softmax(logits)
    expect = np.stack([p[i, :, labels[i]] for i in range(4)])
    np.testing.assert_allclose(metrics.true_class_probability(logits, labels),
                               expect, atol=1e-12)


# ---------------------------------------------------------------------------
# Jaggedness
# ---------------------------------------------------------------------------


def test_flips_hand_fixture():
    # Top classes along a sweep of 5 shifts: 0 0 1 1 0 -> 2 flips of 4 pairs.
    logits = onehot_logits([[0, 0, 1, 1, 0], [2, 2, 2, 2, 2]], 3)
    np.testing.assert_array_equal(metrics.top1_flips(logits), [2, 0])
    np.testing.assert_allclose(metrics.jaggedness(logits, reduce=False), [0.5, 0.0])
    assert float(metrics.jaggedness(logits)) == pytest.approx(0.25)


def test_jaggedness_equals_p_change_of_consecutive_pairs():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 4, 6, 3)).astype(np.float32)
    # Along axis 2 (equivalently -2): the sweep of 6 shifts.
    expect = metrics.p_top1_change(logits[:, :, :-1], logits[:, :, 1:],
                                   reduce=False).mean(axis=-1)
    np.testing.assert_allclose(metrics.jaggedness(logits, axis=2, reduce=False),
                               expect, atol=1e-7)
    np.testing.assert_array_equal(metrics.top1_flips(logits, axis=-2),
                                  metrics.top1_flips(logits, axis=2))
    assert metrics.top1_flips(logits, axis=1).shape == (7, 6)


def test_jaggedness_errors():
    logits = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match="`axis` must name a shift axis"):
        metrics.jaggedness(logits, axis=0)
    with pytest.raises(ValueError, match="`axis` must name a shift axis"):
        metrics.top1_flips(logits, axis=-1)
    with pytest.raises(TypeError, match="`axis` must be an int"):
        metrics.top1_flips(logits, axis=1.0)
    with pytest.raises(ValueError, match="at least 2 shifts"):
        metrics.jaggedness(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match="must have a shift axis to sweep"):
        metrics.jaggedness(np.zeros((2, 3), np.float32), axis=1)


# ---------------------------------------------------------------------------
# EQ-T PSNR
# ---------------------------------------------------------------------------


def np_translation_mask(h, w, ty, tx, margin):
    valid = np.zeros((h, w), bool)
    for i in range(h):
        for j in range(w):
            src_i, src_j = i - ty, j - tx
            valid[i, j] = (0 <= src_i < h and 0 <= src_j < w)
    # margin: erode by `margin` pixels, the map's border counting as invalid.
    padded = np.pad(valid, margin, constant_values=False)
    if margin:
        padded = ndimage.binary_erosion(padded, np.ones((2 * margin + 1,) * 2),
                                        border_value=0)
    return padded[margin:margin + h, margin:margin + w]


@pytest.mark.parametrize("shift", [(0, 0), (2, -1), (-3, 4), (7, 0)])
@pytest.mark.parametrize("margin", [0, 1, 2])
def test_translation_mask_against_loops(shift, margin):
    got = np.asarray(metrics.translation_mask((9, 11), shift, margin=margin))
    np.testing.assert_array_equal(got, np_translation_mask(9, 11, *shift, margin))


def test_psnr_constant_offset_and_stylegan3_constant():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 6, 6, 2))
    b = a + 0.1  # MSE = 0.01 exactly (to rounding)
    # StyleGAN3: images in [-1, 1] -> 20 log10(2) - 10 log10(MSE).
    sg3 = 20 * np.log10(2.0) - 10 * np.log10(0.01)
    assert float(metrics.eqt_psnr(a, b, peak=2.0)) == pytest.approx(sg3, abs=1e-9)
    # Default peak: range of features_a over the batch.
    rng_a = a.max() - a.min()
    expect = 10 * np.log10(rng_a ** 2 / 0.01)
    assert float(metrics.eqt_psnr(a, b)) == pytest.approx(expect, abs=1e-9)
    np.testing.assert_allclose(metrics.eqt_psnr(a, b, reduce=False),
                               [expect] * 3, atol=1e-9)
    assert float(metrics.eqt_psnr(a, a)) == np.inf


def test_psnr_per_sample_and_pooled_against_numpy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 5, 5, 3))
    b = a + rng.normal(size=a.shape) * np.array([0.1, 0.2, 0.3, 0.4])[:, None, None, None]
    mask = rng.random((4, 5, 5)) > 0.3
    m = np.broadcast_to(mask[..., None], a.shape)
    peak = 3.0
    per = [10 * np.log10(peak ** 2 / np.mean((a[i] - b[i])[m[i]] ** 2))
           for i in range(4)]
    pooled = 10 * np.log10(peak ** 2 / np.mean((a - b)[m] ** 2))
    np.testing.assert_allclose(
            metrics.eqt_psnr(a, b, mask=mask, peak=peak, reduce=False), per, atol=1e-9)
    assert float(metrics.eqt_psnr(a, b, mask=mask, peak=peak)) == pytest.approx(pooled)


def test_psnr_masks_invalid_border_of_a_zero_padded_filter():
    # g: 3x3 box filter with zero padding; translation with zero fill. Inside
    # the valid region (translation mask eroded by the filter radius 1),
    # translate(g(x)) == g(translate(x)) exactly, so the masked PSNR is inf.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 12, 12, 1))
    shift = (2, -3)

    def g(v):
        return ndimage.correlate(v, np.ones((1, 3, 3, 1)), mode="constant")

    def translate_zero_fill(v, t):
        out = np.zeros_like(v)
        h, w = v.shape[1:3]
        ty, tx = t
        out[:, max(ty, 0):h + min(ty, 0), max(tx, 0):w + min(tx, 0)] = \
            v[:, max(-ty, 0):h + min(-ty, 0), max(-tx, 0):w + min(-tx, 0)]
        return out

    fa = translate_zero_fill(g(x), shift)
    fb = g(translate_zero_fill(x, shift))
    mask = metrics.translation_mask(12, shift, margin=1)
    assert float(metrics.eqt_psnr(fa, fb, mask=mask)) == np.inf
    assert np.isfinite(float(metrics.eqt_psnr(fa, fb)))


def test_psnr_errors():
    a = np.zeros((2, 4, 4, 1))
    with pytest.raises(ValueError, match="same shape"):
        metrics.eqt_psnr(a, np.zeros((2, 4, 4, 2)))
    with pytest.raises(TypeError, match="`mask` must be a bool array"):
        metrics.eqt_psnr(a, a, mask=np.ones((4, 4)))
    with pytest.raises(ValueError, match="does not broadcast"):
        metrics.eqt_psnr(a, a, mask=np.ones((5, 4), bool))
    with pytest.raises(ValueError, match=r"selects no entry in sample\(s\) \[1\]"):
        mask = np.ones((2, 4, 4), bool)
        mask[1] = False
        metrics.eqt_psnr(a, a, mask=mask)
    with pytest.raises(ValueError, match="`peak` must be None or a positive float"):
        metrics.eqt_psnr(a, a, peak=-1.0)
    with pytest.raises(TypeError, match="`features_a` must be a real float"):
        metrics.eqt_psnr(a.astype(int), a)
    with pytest.raises(ValueError, match=r"`shift` must be a pair \(ty, tx\)"):
        metrics.translation_mask(4, (1.5, 0))
    with pytest.raises(ValueError, match="`margin` must be a non-negative int"):
        metrics.translation_mask(4, (1, 0), margin=-1)


# ---------------------------------------------------------------------------
# Confidence intervals
# ---------------------------------------------------------------------------

# Newcombe, Statistics in Medicine 17:857-872 (1998), Table I: methods 3
# (Wilson score, no continuity correction) and 5 (Clopper-Pearson "exact").
NEWCOMBE = [
        # (k, n, wilson_low, wilson_high, cp_low, cp_high)
        (81, 263, 0.2553, 0.3662, 0.2527, 0.3676),
        (15, 148, 0.0624, 0.1605, 0.0578, 0.1617),
        (0, 20, 0.0000, 0.1611, 0.0000, 0.1684),
        (1, 29, 0.0061, 0.1718, 0.0009, 0.1776),
]


@pytest.mark.parametrize("k,n,wl,wh,cl,ch", NEWCOMBE)
def test_binomial_ci_textbook_values(k, n, wl, wh, cl, ch):
    w = metrics.binomial_ci(k, n)
    assert float(w.estimate) == pytest.approx(k / n)
    assert (round(float(w.low), 4), round(float(w.high), 4)) == (wl, wh)
    c = metrics.binomial_ci(k, n, method="clopper-pearson")
    assert (round(float(c.low), 4), round(float(c.high), 4)) == (cl, ch)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (3, 10), (50, 100), (999, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_binomial_ci_against_scipy(k, n, confidence):
    ref = binomtest(k, n)
    w = metrics.binomial_ci(k, n, confidence=confidence)
    rw = ref.proportion_ci(confidence_level=confidence, method="wilson")
    np.testing.assert_allclose([w.low, w.high], [rw.low, rw.high], atol=1e-9)
    c = metrics.binomial_ci(k, n, confidence=confidence, method="clopper-pearson")
    rc = ref.proportion_ci(confidence_level=confidence, method="exact")
    np.testing.assert_allclose([c.low, c.high], [rc.low, rc.high], atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 500), st.floats(0, 1))
def test_intervals_contain_the_estimate(n, frac):
    k = int(round(frac * n))
    for method in ("wilson", "clopper-pearson"):
        ci = metrics.binomial_ci(k, n, method=method)
        assert 0.0 <= float(ci.low) <= k / n <= float(ci.high) <= 1.0


def test_binomial_coverage_sanity():
    # Exact coverage for n = 60 at p = 0.05 .. 0.95: the sum of
    # Binomial(k; n, p) over the k whose interval contains p. Wilson's coverage
    # oscillates around the nominal 0.95 (mean close to it, dips near 0.93);
    # Clopper-Pearson's never falls below it (Brown, Cai & DasGupta, Stat. Sci.
    # 16(2), 2001).
    n = 60
    k = np.arange(n + 1)
    ps = np.linspace(0.05, 0.95, 91)
    covers = {}
    for method in ("wilson", "clopper-pearson"):
        ci = metrics.binomial_ci(k, n, method=method)
        lo, hi = np.asarray(ci.low), np.asarray(ci.high)
        covers[method] = np.array(
                [binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum() for p in ps])
    assert 0.94 <= covers["wilson"].mean() <= 0.96
    assert covers["wilson"].min() >= 0.92
    assert covers["clopper-pearson"].min() >= 0.95


def test_bootstrap_matches_numpy_with_same_indices():
    rng = np.random.default_rng(3)
    values = rng.exponential(size=(40, 4))
    key = jax.random.key(7)
    ci = metrics.bootstrap_ci(values, key=key, n_resamples=400, confidence=0.9)
    rows = values.mean(axis=1)
    # The same per-resample indices (vmap over keys draws what a loop would).
    idx = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (40,), 0, 40))(
            jax.random.split(key, 400)))
    means = np.array([rows[i].mean() for i in idx])
    assert float(ci.estimate) == pytest.approx(values.mean())
    np.testing.assert_allclose([ci.low, ci.high], np.quantile(means, [0.05, 0.95]),
                               atol=1e-12)


def test_bootstrap_properties():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(40, 8))
    key = jax.random.key(0)
    ci = metrics.bootstrap_ci(values, key=key, n_resamples=400)
    # Deterministic for a key; pairs of one sample are resampled together.
    again = metrics.bootstrap_ci(values, key=key, n_resamples=400)
    assert (float(ci.low), float(ci.high)) == (float(again.low), float(again.high))
    rows = metrics.bootstrap_ci(values.mean(axis=1), key=key, n_resamples=400)
    np.testing.assert_allclose([ci.low, ci.high], [rows.low, rows.high], atol=1e-12)
    assert float(ci.low) < float(ci.estimate) < float(ci.high)
    other = metrics.bootstrap_ci(values, key=jax.random.key(1), n_resamples=400)
    assert float(other.low) != float(ci.low)
    # Constant data: a degenerate interval.
    const = metrics.bootstrap_ci(np.full((40,), 0.25), key=key, n_resamples=400)
    assert (float(const.low), float(const.high)) == (0.25, 0.25)


def test_bootstrap_coverage_sanity_under_vmap():
    # 200 data sets of 60 exponential draws (mean 1): the 95% percentile
    # interval should cover the true mean roughly 95% of the time.
    data = jax.random.exponential(jax.random.key(11), (200, 60))
    keys = jax.random.split(jax.random.key(12), 200)
    ci = jax.jit(jax.vmap(
            lambda v, k: metrics.bootstrap_ci(v, key=k, n_resamples=400)))(data, keys)
    cover = float(jnp.mean((ci.low <= 1.0) & (1.0 <= ci.high)))
    assert 0.87 <= cover <= 0.99


def test_ci_errors():
    with pytest.raises(ValueError, match=r"`successes` must lie in \[0, n\]"):
        metrics.binomial_ci(5, 4)
    with pytest.raises(ValueError, match="`n` must be a positive int"):
        metrics.binomial_ci(0, 0)
    with pytest.raises(TypeError, match="`successes` must be an int"):
        metrics.binomial_ci(0.5, 4)
    with pytest.raises(ValueError, match=r"`confidence` must be a float in \(0, 1\)"):
        metrics.binomial_ci(1, 4, confidence=95)
    with pytest.raises(ValueError, match="`method` must be one of"):
        metrics.binomial_ci(1, 4, method="wald")
    with pytest.raises(TypeError, match="`key` must be a JAX PRNG key"):
        metrics.bootstrap_ci(np.ones(3), key=None)
    with pytest.raises(TypeError, match="`n_resamples` must be a positive int"):
        metrics.bootstrap_ci(np.ones(3), key=jax.random.key(0), n_resamples=1.5)
    with pytest.raises(ValueError, match="`values` must have shape"):
        metrics.bootstrap_ci(np.ones((0,)), key=jax.random.key(0))


# ---------------------------------------------------------------------------
# Validation of logits and labels
# ---------------------------------------------------------------------------


def test_logit_errors():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="must have the same shape; got"):
        metrics.p_top1_change(a, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"`logits_a` must have shape \[N, K\]"):
        metrics.mean_abs_change(np.zeros(4), np.zeros(4))
    with pytest.raises(TypeError, match="`logits_b` must be a real float array"):
        metrics.consistency(a, a.astype(np.int32))
    with pytest.raises(ValueError, match="K >= 1"):
        metrics.p_top1_change(np.zeros((3, 0)), np.zeros((3, 0)))
    with pytest.raises(ValueError, match="at least one sample"):
        metrics.p_top1_change(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(TypeError, match="`reduce` must be a bool"):
        metrics.p_top1_change(a, a, reduce=1)


def test_label_errors():
    logits = np.zeros((3, 2, 4), np.float32)
    with pytest.raises(TypeError, match="`labels` must be an integer array"):
        metrics.robust_accuracy(logits, np.zeros(3))
    with pytest.raises(ValueError, match=r"`labels` must have shape \[N\] = \(3,\)"):
        metrics.accuracy(logits, np.zeros(4, int))
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, K\) = \[0, 4\)"):
        metrics.robust_accuracy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"lie in \[0, K\)"):
        metrics.true_class_probability(logits, np.array([0, -1, 1]))


def test_results_are_json_friendly():
    ci = metrics.binomial_ci(3, 10)
    assert json.loads(json.dumps({k: float(v) for k, v in ci._asdict().items()}))
