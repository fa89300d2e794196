"""Tests of the verification suite (sigcnn.verify).

The suite itself runs as tests (every check passes), negative controls show that
each kind of check can fail, and the helpers are compared with naive NumPy
references or brute force over the library's own operators.
"""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigcnn as sc
from sigcnn import verify
from sigcnn.verify import sampling as verify_sampling
from sigcnn.verify import stack as verify_stack

KEY = jax.random.key(0)
_stack = verify_stack._stack_jit     # the suite's jitted stack: shares its compiles


@pytest.fixture(scope="module")
def suite():
    return verify.run_all(key=KEY)


# --------------------------------------------------------------------------
# The suite passes
# --------------------------------------------------------------------------

NAMES = [
    "strided_vs_undecimated/circular",
    "strided_vs_undecimated/zero",
    "strided_vs_undecimated/reflect",
    "undecimated_shift_equivariance",
    "strided_shift_is_polyphase",
    "gap_poisson_formula",
    "gap_invariance_tones",
    "bandlimited_field_shiftable",
    "tone_above_nyquist",
    "tone_sweep",
    "field_sweep",
    "relu_harmonic_2f",
    "relu_aliasing",
    "blurpool_response",
    "blurpool_aliasing",
    "maxpool_zhang_example",
]


def test_suite_has_every_check_once(suite):
    assert [c.name for c in suite] == NAMES
    for c in suite:
        assert isinstance(c, verify.Check)
        assert c.predicted and c.measured
        assert isinstance(c.passed, bool)


@pytest.mark.parametrize("name", NAMES)
def test_check_passes(suite, name):
    check = {c.name: c for c in suite}[name]
    assert check.passed, (check.predicted, check.measured, dict(check.detail))


def test_suite_is_float64_under_x64(suite):
    # conftest enables x64: every check that records a dtype computed in float64
    dtypes = {c.detail["dtype"] for c in suite if "dtype" in c.detail}
    assert dtypes == {"float64"}


def test_suite_is_deterministic_in_the_key(suite):
    again = verify.run_all(key=KEY)
    assert verify.checks_to_json(again) == verify.checks_to_json(suite)
    other = verify.check_field_sweep(key=jax.random.key(1))
    same = {c.name: c for c in suite}["field_sweep"]
    assert other.detail["error"] != same.detail["error"]


def test_exact_checks_report_rounding_level_numbers(suite):
    by = {c.name: c.detail for c in suite}
    assert by["strided_vs_undecimated/circular"]["max_rel_diff"] < 1e-12
    assert by["tone_above_nyquist"]["ratios"] == pytest.approx([1, 1], abs=1e-12)
    assert by["tone_above_nyquist"]["errors"] == pytest.approx([2, 2], abs=1e-12)
    assert by["relu_harmonic_2f"]["grids"]["fine"]["measured"] == pytest.approx(
        2 / (3 * math.pi), abs=1e-4)
    # the 5-sample period folds harmonics 8f, 12f, ... onto 2f: exactly 1/5
    assert by["relu_harmonic_2f"]["grids"]["pixel"]["measured"] == pytest.approx(
        0.2, abs=1e-12)
    assert by["relu_aliasing"]["alias_freq"] == pytest.approx(0.1)
    tones = by["gap_invariance_tones"]["tones"]
    assert tones["off-bin above Nyquist"]["above_nyquist"]
    assert tones["off-bin above Nyquist"]["invariant"]
    assert not tones["on-bin"]["invariant"]


def test_float32_checks():
    check = verify.check_strided_vs_undecimated(key=KEY, dtype=jnp.float32)
    assert check.passed
    assert check.detail["dtype"] == "float32"
    assert check.detail["tol"] == 1e-5
    sweep = verify.check_tone_sweep(dtype=jnp.float32)
    assert sweep.passed and sweep.detail["dtype"] == "float32"


# --------------------------------------------------------------------------
# Negative controls: the checks can fail
# --------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["circular", "zero"])
def test_wrong_dilations_fail(padding):
    # Undecimated stack without the à trous dilations: not r2 at all.
    wrong = (1,) * len(verify.DEFAULT_STACK)
    check = verify.check_strided_vs_undecimated(key=KEY, padding=padding,
                                                dilations=wrong)
    assert not check.passed
    assert check.detail["max_rel_diff"] > 0.05


def test_one_wrong_dilation_fails():
    dil = list(verify.undecimated_dilations())
    dil[-1] = 4                      # last conv dilated by 4 instead of 8
    check = verify.check_strided_vs_undecimated(key=KEY, dilations=dil)
    assert not check.passed
    assert check.detail["max_rel_diff"] > 0.05


def test_reflect_needs_aligned_grids():
    # With an even size the mirror axes of the strided and undecimated grids
    # differ: reflect padding breaks r == r2[::S] near the far edge only.
    x, kernels = verify_stack._stack_setup(KEY, jnp.float64, size=32)
    r = _stack(x, kernels, padding="reflect")
    r2 = _stack(x, kernels, padding="reflect", undecimated=True)
    diff = np.abs(np.asarray(r) - np.asarray(r2)[:, ::8, ::8])
    assert diff.max() > 1e-3
    assert diff[:, :2, :2].max() < 1e-12        # the near corner agrees


def test_wrong_phase_fails():
    def plus_t(r2, shift, stride):           # r2[S*i + t] instead of S*i - t
        return verify.polyphase_prediction(r2, (-shift[0], -shift[1]), stride)

    check = verify.check_shift_polyphase(key=KEY, predict=plus_t)
    assert not check.passed
    assert check.detail["max_rel_diff"] > 0.1


def test_zero_padding_is_not_shift_equivariant():
    x, kernels = verify_stack._stack_setup(KEY, jnp.float64)
    t = (3, 5)
    xs = jnp.concatenate([x, jnp.roll(x, t, axis=(1, 2))])
    r2 = np.asarray(_stack(xs, kernels, padding="zero", undecimated=True))
    err = np.abs(r2[1] - np.roll(r2[0], t, axis=(0, 1))).max()
    assert err > 1e-2


def test_naive_error_prediction_fails_on_nyquist_lines(monkeypatch):
    # "error = 2 x ratio" ignores the split Nyquist bins: the sweep catches it.
    def naive(shape, stride):
        return 2.0 * (~sc.nyquist_mask(shape, stride)).astype(np.float64)

    monkeypatch.setattr(verify_sampling, "alias_weights", naive)
    check = verify.check_field_sweep(key=KEY)
    assert not check.passed
    assert check.detail["max_deviation_above"] > 0.15


def test_wrong_binomial_exponent_is_far_from_measured(suite):
    detail = {c.name: c.detail for c in suite}["blurpool_response"]
    f = np.asarray(detail["freqs"])
    for k in range(2, 8):
        measured = np.asarray(detail["measured_along_fx"][str(k)])
        assert np.abs(measured - verify.binomial_response(f, k)).max() < 1e-13
        assert np.abs(measured - np.abs(np.cos(np.pi * f)) ** k).max() > 0.05


def test_continuous_amplitude_differs_from_the_sampled_one(suite):
    d = {c.name: c for c in suite}["relu_harmonic_2f"].detail
    assert abs(d["grids"]["pixel"]["measured"] - 2 / (3 * math.pi)) > 0.01


# --------------------------------------------------------------------------
# Helpers against references
# --------------------------------------------------------------------------


def test_stack_stride_and_dilations():
    assert verify.stack_stride() == 8
    assert verify.undecimated_dilations() == (1, 1, 1, 2, 4, 4, 8)
    spec = (("conv", 3, 2), ("max", 2, 3), ("blur", 3, 1), ("conv", 1, 2))
    assert verify.stack_stride(spec) == 12
    assert verify.undecimated_dilations(spec) == (1, 2, 6, 6)


def test_apply_stack_shapes_and_undecimated_sampling():
    spec = (("conv", 3, 2), ("relu", 1, 1), ("avg", 3, 3), ("blur", 2, 1))
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 12, 18, 3)))
    kernels = verify.init_stack(KEY, spec=spec, in_channels=3, width=5,
                                dtype=jnp.float64)
    assert [k.shape for k in kernels] == [(3, 3, 3, 5)]
    r = _stack(x, kernels, spec=spec, padding="circular")
    r2 = _stack(x, kernels, spec=spec, padding="circular", undecimated=True)
    assert r.shape == (2, 2, 3, 5) and r2.shape == (2, 12, 18, 5)
    np.testing.assert_allclose(r, r2[:, ::6, ::6], rtol=0, atol=1e-12)


def test_init_stack_he_scale():
    spec = (("conv", 3, 1), ("conv", 3, 1))
    k1, k2 = verify.init_stack(KEY, spec=spec, in_channels=16, width=64,
                               dtype=jnp.float64)
    assert np.std(np.asarray(k1)) == pytest.approx(math.sqrt(2 / 144), rel=0.1)
    assert np.std(np.asarray(k2)) == pytest.approx(math.sqrt(2 / 576), rel=0.1)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 4), w=st.integers(1, 4), sy=st.integers(1, 3),
       sx=st.integers(1, 3), ty=st.integers(-7, 7), tx=st.integers(-7, 7))
def test_polyphase_prediction_matches_loop(h, w, sy, sx, ty, tx):
    rng = np.random.default_rng(h * 100 + w * 10 + sy)
    r2 = rng.standard_normal((2, h * sy, w * sx, 3))
    got = verify.polyphase_prediction(r2, (ty, tx), (sy, sx))
    want = np.empty((2, h, w, 3))
    for i in range(h):
        for j in range(w):
            want[:, i, j] = r2[:, (sy * i - ty) % (h * sy),
                               (sx * j - tx) % (w * sx)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("stride", [(2, 2), (1, 3)])
def test_polyphase_prediction_is_a_component_of_rolled_r2(stride):
    # r2(x)[S*i - t] is the (0, 0) polyphase component of roll(r2, t) and the
    # ((-t) mod S) component of r2 itself.
    r2 = np.random.default_rng(5).standard_normal((1, 6, 6, 2))
    comps = np.asarray(sc.polyphase(r2, stride))
    for t in [(0, 0), (1, 2), (-1, 5)]:
        got = verify.polyphase_prediction(r2, t, stride)
        py, px = (-t[0]) % stride[0], (-t[1]) % stride[1]
        want = np.roll(comps[:, py, px], ((py + t[0]) // stride[0],
                                          (px + t[1]) // stride[1]),
                       axis=(1, 2))
        np.testing.assert_array_equal(got, want)


_resample = jax.jit(lambda x, s: sc.fourier_upsample(x[:, ::s[0], ::s[1]], s),
                    static_argnums=1)


@pytest.mark.parametrize("shape,stride", [((8, 8), (2, 2)), ((8, 12), (2, 4)),
                                          ((12, 8), (4, 1)), ((6, 10), (3, 2))])
def test_alias_weights_match_brute_force(shape, stride):
    # w(k) = ||e - P e||^2 / ||e||^2 for the complex exponential at bin k, with
    # P = fourier_upsample o subsample applied to its real and imaginary parts.
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None, None, None]
    fx = np.fft.fftfreq(w)[None, :, None, None]
    yy = np.arange(h)[None, None, :, None]
    xx = np.arange(w)[None, None, None, :]
    phase = 2 * np.pi * (fy * yy + fx * xx)                    # [h, w, H, W]
    re = np.cos(phase).reshape(h * w, h, w, 1)
    im = np.sin(phase).reshape(h * w, h, w, 1)
    err = sum(((v - np.asarray(_resample(jnp.asarray(v), stride))) ** 2)
              .sum(axis=(1, 2, 3)) for v in (re, im))
    norm = (re ** 2).sum(axis=(1, 2, 3)) + (im ** 2).sum(axis=(1, 2, 3))
    brute = (err / norm).reshape(h, w)
    np.testing.assert_allclose(verify.alias_weights(shape, stride), brute,
                               atol=1e-12)


def test_alias_weights_values():
    wts = verify.alias_weights((8, 8), 2)
    inside = sc.nyquist_mask((8, 8), 2)
    assert np.all(wts[inside] == 0)
    assert wts[0, 3] == 2 and wts[3, 3] == 2        # strictly above Nyquist
    assert wts[0, 2] == 0.5 and wts[2, 2] == 0.75   # on the Nyquist lines
    assert wts[2, 3] == 1.5                          # Nyquist x above


@pytest.mark.parametrize("period,harmonic", [(5, 1), (5, 2), (7, 3), (8, 2),
                                             (12, 5), (80, 2)])
def test_rectified_cosine_harmonic_against_dft(period, harmonic):
    u = np.arange(period)
    v = np.maximum(np.cos(2 * np.pi * u / period), 0.0)
    dft = 2 / period * np.sum(v * np.cos(2 * np.pi * harmonic * u / period))
    assert verify.rectified_cosine_harmonic(harmonic, period) == pytest.approx(
        dft, abs=1e-6)


def test_rectified_cosine_harmonic_tends_to_fourier_series():
    assert verify.rectified_cosine_harmonic(2, 10_000) == pytest.approx(
        2 / (3 * math.pi), abs=1e-7)
    assert verify.rectified_cosine_harmonic(1, 10_000) == pytest.approx(
        0.5, abs=1e-7)


@pytest.mark.parametrize("size", range(1, 8))
def test_binomial_response_against_dft_of_taps(size):
    taps = np.zeros(32)
    taps[:size] = sc.binomial_filter(size)
    np.testing.assert_allclose(
        np.abs(np.fft.fft(taps)),
        verify.binomial_response(np.fft.fftfreq(32), size), atol=1e-14)


def test_relu_tone_spectra_2d():
    d = verify.relu_tone_spectra_2d(shape=(20, 20), freq=(0.2, 0.1))
    assert d["before"].shape == d["after"].shape == (20, 20)
    peak = np.unravel_index(np.argmax(d["before"]), (20, 20))
    assert abs(d["fy"][peak[0]]) == pytest.approx(0.2)
    assert abs(d["fx"][peak[1]]) == pytest.approx(0.1)
    # the 2f harmonic (0.4, 0.2) appears after ReLU only
    iy = int(np.argmin(np.abs(d["fy"] - 0.4)))
    ix = int(np.argmin(np.abs(d["fx"] - 0.2)))
    assert d["before"][iy, ix] < 1e-20 < d["after"][iy, ix]


def test_checks_to_json_round_trips(suite):
    rows = verify.checks_to_json(suite)
    text = json.dumps(rows, allow_nan=False)
    back = json.loads(text)
    assert [r["name"] for r in back] == NAMES
    assert all(set(r) == {"name", "predicted", "measured", "passed", "detail"}
               for r in back)
    assert all(r["passed"] is True for r in back)


def test_checks_to_json_converts_numpy_and_nonfinite():
    c = verify.Check("x", "p", "m", False,
                     {"a": np.float32(1.5), "b": np.arange(3), "c": np.inf,
                      "d": (np.int64(2), np.bool_(True)), "e": jnp.ones(2)})
    (row,) = verify.checks_to_json([c])
    assert row["detail"] == {"a": 1.5, "b": [0, 1, 2], "c": None,
                             "d": [2, True], "e": [1.0, 1.0]}
    json.dumps(row, allow_nan=False)


def test_check_is_frozen():
    c = verify.Check("x", "p", "m", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.passed = False


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


def test_checks_to_json_rejects_non_checks():
    with pytest.raises(TypeError, match=r"`checks` must be a sequence of Check; "
                                        r"element 1 is dict"):
        verify.checks_to_json([verify.Check("x", "", "", True), {"name": "y"}])


@pytest.mark.parametrize("key", [0, np.zeros(2, np.float32), jnp.zeros(3, jnp.uint32)])
def test_run_all_rejects_non_keys(key):
    with pytest.raises(TypeError, match=r"`key` must be a JAX PRNG key"):
        verify.run_all(key=key)


def test_bad_padding():
    with pytest.raises(ValueError, match=r"`padding` must be one of "
                                         r"\['circular', 'zero', 'reflect'\]; "
                                         r"got 'valid'"):
        verify.check_strided_vs_undecimated(key=KEY, padding="valid")
    x, kernels = verify_stack._stack_setup(KEY, jnp.float64)
    with pytest.raises(ValueError, match=r"`padding` .* got 'same'"):
        verify.apply_stack(x, kernels, padding="same")


def test_bad_dilations_length():
    x, kernels = verify_stack._stack_setup(KEY, jnp.float64)
    with pytest.raises(ValueError, match=r"`dilations` must have one entry per "
                                         r"layer \(7\); got \(1, 2\)"):
        verify.apply_stack(x, kernels, undecimated=True, dilations=(1, 2))


@pytest.mark.parametrize("spec,match", [
    ((), r"`spec` must be a non-empty sequence"),
    ((("conv", 3),), r"`spec` entries must be \(kind, size, stride\) triples"),
    ((("pool", 3, 1),), r"`spec` layer kind must be one of .*got 'pool'"),
    ((("conv", 3, 0),), r"`spec` sizes and strides must be positive ints; got "
                        r"\('conv', 3, 0\)"),
    ((("conv", 2.0, 1),), r"`spec` sizes and strides must be positive ints"),
])
def test_bad_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        verify.stack_stride(spec)


def test_bad_init_stack_channels():
    with pytest.raises(ValueError, match=r"`in_channels` must be a positive "
                                         r"int; got 0"):
        verify.init_stack(KEY, in_channels=0)
    with pytest.raises(TypeError, match=r"`width` must be a positive int"):
        verify.init_stack(KEY, width=2.5)


def test_bad_tone_sweep_length():
    with pytest.raises(ValueError, match=r"`n` must be a multiple of 4; got 30"):
        verify.check_tone_sweep(n=30)


def test_bad_alias_weights_stride():
    with pytest.raises(ValueError, match=r"`stride` \(3, 3\) must divide "
                                         r"`shape` \(8, 8\)"):
        verify.alias_weights((8, 8), 3)
    with pytest.raises(ValueError, match=r"`stride` must be a positive int"):
        verify.alias_weights((8, 8), 0)


@pytest.mark.parametrize("harmonic,period", [(2, 4), (5, 5), (1, 2)])
def test_bad_rectified_cosine_harmonic(harmonic, period):
    with pytest.raises(ValueError, match=r"`harmonic` .* must not fall on the "
                                         r"DC or Nyquist bin"):
        verify.rectified_cosine_harmonic(harmonic, period)


def test_bad_binomial_size():
    with pytest.raises(ValueError, match=r"`size` must be an int from 1 to 7"):
        verify.binomial_response([0.1], 8)
