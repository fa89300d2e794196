"""Bad input raises ValueError / TypeError naming the argument, its value and the
expected form, before any computation."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sigcnn as sc
from sigcnn import _checks, metrics, ops, shifts, spectra
from sigcnn.data import synthetic

X = np.zeros((1, 8, 8, 2), np.float32)
K = np.zeros((3, 3, 2, 2), np.float32)
S = np.zeros((1, 4, 4, 1))

_NHWC = r"`x` must have rank 4 and layout \[N, H, W, C\] \(NHWC\); got shape "
_FLOAT = r"must be a real float array \(float32 or float64\); got dtype "
_PAIR = r"must be a positive int or a pair \(h, w\) of them; got "
_MODES = r"`padding` must be one of \['zero', 'circular', 'reflect', 'valid'\]; got "
_SIZE = r"`size` must be an int from 1 to 7 \(binomial filter taps\); got "
_FINITE = r"must be finite; it contains "
_CUTOFF = (r"`cutoff` must be a frequency in \(0, 0\.5\] cycles/pixel or a pair "
           r"\(fy, fx\) of them; got ")
_SHIFT = r"`shift` must be a pair \(dy, dx\) of real numbers; got "


def _nan_at(shape, where, value):
    a = np.zeros(shape)
    a[where] = value
    return a


CASES = [
    # wrong rank, with the fix in the message
    ("rank3", lambda: sc.conv(X[0], K), ValueError,
     _NHWC + r"\(8, 8, 2\)\. For a single image \[H, W, C\] use `x\[None\]`"),
    ("rank2", lambda: sc.max_pool(X[0, :, :, 0], window=2, stride=2), ValueError,
     _NHWC + r"\(8, 8\)\. For a single-channel image .* `x\[None, :, :, None\]`"),
    ("rank1", lambda: sc.power_spectrum(np.zeros(8)), ValueError,
     _NHWC + r"\(8,\)\. For a 1-D signal of length W use `x\[None, None, :, None\]`"),
    ("rank5", lambda: sc.blur_pool(np.zeros((1, 1, 8, 8, 2))), ValueError,
     _NHWC + r"\(1, 1, 8, 8, 2\)"),
    ("rank_polyphase", lambda: sc.polyphase(np.zeros((6, 8, 1)), 2), ValueError,
     _NHWC + r"\(6, 8, 1\)"),
    ("rank_upsample", lambda: sc.fourier_upsample(np.zeros((4, 4, 1)), 2), ValueError,
     r"`r` must have rank 4 .*got shape \(4, 4, 1\)"),
    ("rank_unpolyphase", lambda: sc.unpolyphase(np.zeros((1, 2, 2, 3, 3))),
     ValueError, r"`components` must have rank 6 and layout \[N, sy, sx, H', W', C\];"
                 r" got shape \(1, 2, 2, 3, 3\)"),
    ("rank_kernel", lambda: sc.conv(X, K[0]), ValueError,
     r"`kernel` must have rank 4 and layout \[kh, kw, C_in/groups, C_out\] \(HWIO\);"
     r" got shape \(3, 2, 2\)"),
    ("rank_spectrum", lambda: spectra.radial_profile(np.zeros((1, 4, 4))), ValueError,
     r"`spectrum` must be a 2-D \[H, W\] power spectrum; got shape \(1, 4, 4\)"),
    # channels-first mistakes
    ("channels_first_conv",
     lambda: sc.conv(np.zeros((2, 3, 32, 32), np.float32), K), ValueError,
     r"`x` has shape \(2, 3, 32, 32\), which looks channels-first \[N, C, H, W\]; "
     r"sigcnn expects \[N, H, W, C\] \(NHWC\)\. Use `jnp\.transpose\(x, "
     r"\(0, 2, 3, 1\)\)`"),
    ("channels_first_spectra", lambda: sc.aliasing_ratio(np.zeros((4, 3, 16, 16)), 2),
     ValueError, r"`r2` has shape \(4, 3, 16, 16\), which looks channels-first"),
    ("kernel_channels", lambda: sc.conv(X, np.zeros((3, 3, 3, 2), np.float32)),
     ValueError, r"`kernel` shape \(3, 3, 3, 2\) does not fit `x` with 2 channels"),
    ("kernel_groups", lambda: sc.conv(X, np.zeros((3, 3, 1, 3), np.float32)),
     ValueError, r"`kernel` shape \(3, 3, 1, 3\) .* groups must divide C_out=3"),
    # integer and complex dtypes
    ("int_x", lambda: sc.conv(X.astype(np.int32), K), TypeError,
     r"`x` " + _FLOAT
     + r"int32\. Convert it first, e\.g\. `x\.astype\(jnp\.float32\)`"),
    ("complex_x", lambda: sc.avg_pool(X.astype(np.complex64), window=2, stride=2),
     TypeError, r"`x` " + _FLOAT + r"complex64"),
    ("int_kernel", lambda: sc.conv(X, K.astype(np.int64)), TypeError,
     r"`kernel` " + _FLOAT + r"int64"),
    ("bool_x", lambda: sc.max_pool(X > 0, window=2, stride=2), TypeError,
     r"`x` " + _FLOAT + r"bool"),
    ("int_lowpass", lambda: sc.ideal_lowpass(X.astype(np.int16), cutoff=0.2),
     TypeError, r"`x` " + _FLOAT + r"int16"),
    ("int_power", lambda: sc.power_spectrum(S.astype(np.uint8)), TypeError,
     r"`x` " + _FLOAT + r"uint8"),
    ("int_ratio", lambda: sc.aliasing_ratio(S.astype(np.int64), 2), TypeError,
     r"`r2` " + _FLOAT + r"int64"),
    ("complex_error", lambda: sc.shiftability_error(S.astype(complex), 2), TypeError,
     r"`r2` " + _FLOAT + r"complex128"),
    ("int_upsample", lambda: sc.fourier_upsample(S.astype(np.int32), 2), TypeError,
     r"`r` " + _FLOAT + r"int32"),
    ("int_shift_x", lambda: sc.fourier_shift(S.astype(np.int32), (1, 0)), TypeError,
     r"`x` " + _FLOAT + r"int32"),
    # stride / dilation / window <= 0 or not integers
    ("stride_zero", lambda: sc.conv(X, K, stride=0), ValueError, r"`stride` " + _PAIR
     + r"0\."),
    ("stride_negative", lambda: sc.max_pool(X, window=2, stride=-2), ValueError,
     r"`stride` " + _PAIR + r"-2\."),
    ("stride_float", lambda: sc.conv(X, K, stride=1.5), ValueError,
     r"`stride` " + _PAIR + r"1\.5\."),
    ("stride_integral_float", lambda: sc.blur_pool(X, stride=2.0), ValueError,
     r"`stride` " + _PAIR + r"2\.0\."),
    ("stride_bool", lambda: sc.conv(X, K, stride=True), ValueError,
     r"`stride` " + _PAIR + r"True\."),
    ("stride_str", lambda: sc.conv(X, K, stride="2"), TypeError,
     r"`stride` " + _PAIR + r"'2'\."),
    ("stride_none", lambda: sc.avg_pool(X, window=2, stride=None), TypeError,
     r"`stride` " + _PAIR + r"None\."),
    ("stride_triple", lambda: sc.conv(X, K, stride=(1, 2, 3)), ValueError,
     r"`stride` " + _PAIR + r"\(1, 2, 3\) with 3 entries\."),
    ("stride_pair_zero", lambda: sc.conv(X, K, stride=(1, 0)), ValueError,
     r"`stride` " + _PAIR + r"\(1, 0\)\."),
    ("stride_pair_float", lambda: sc.max_pool(X, window=2, stride=(1.0, 2)),
     ValueError, r"`stride` " + _PAIR + r"\(1\.0, 2\)\."),
    ("stride_pair_bool", lambda: sc.conv(X, K, stride=(2, False)), ValueError,
     r"`stride` " + _PAIR + r"\(2, False\)\."),
    ("dilation_zero", lambda: sc.conv(X, K, dilation=0), ValueError,
     r"`dilation` " + _PAIR + r"0\."),
    ("dilation_float", lambda: sc.avg_pool(X, window=2, stride=1, dilation=0.5),
     ValueError, r"`dilation` " + _PAIR + r"0\.5\."),
    ("window_zero", lambda: sc.max_pool(X, window=0, stride=1), ValueError,
     r"`window` " + _PAIR + r"0\."),
    ("window_float", lambda: sc.avg_pool(X, window=2.5, stride=1), ValueError,
     r"`window` " + _PAIR + r"2\.5\."),
    ("window_pair_negative", lambda: sc.max_pool(X, window=(2, -1), stride=1),
     ValueError, r"`window` " + _PAIR + r"\(2, -1\)\."),
    ("polyphase_stride_zero", lambda: sc.polyphase(X, 0), ValueError,
     r"`stride` " + _PAIR + r"0\."),
    ("ratio_stride_float", lambda: sc.aliasing_ratio(S, 1.5), ValueError,
     r"`stride` " + _PAIR + r"1\.5\."),
    ("error_stride_zero", lambda: sc.shiftability_error(S, (0, 1)), ValueError,
     r"`stride` " + _PAIR + r"\(0, 1\)\."),
    ("mask_stride", lambda: sc.nyquist_mask((4, 4), -1), ValueError,
     r"`stride` " + _PAIR + r"-1\."),
    # blur / binomial size
    ("size_zero", lambda: sc.blur_pool(X, size=0), ValueError, _SIZE + r"0\."),
    ("size_eight", lambda: sc.blur_pool(X, size=8), ValueError, _SIZE + r"8\."),
    ("size_float", lambda: sc.blur_pool(X, size=3.0), ValueError, _SIZE + r"3\.0\."),
    ("size_bool", lambda: sc.blur_pool(X, size=True), ValueError, _SIZE + r"True\."),
    ("binomial_size", lambda: sc.binomial_filter(-1), ValueError, _SIZE + r"-1\."),
    # stride must divide the size
    ("polyphase_divide", lambda: sc.polyphase(np.zeros((1, 6, 8, 1)), 4), ValueError,
     r"`stride` \(4, 4\) must divide the spatial size \(H, W\) = \(6, 8\) of `x` "
     r"for a polyphase split"),
    ("polyphase_divide_w", lambda: sc.polyphase(np.zeros((1, 6, 8, 1)), (2, 3)),
     ValueError, r"`stride` \(2, 3\) must divide the spatial size \(H, W\) = \(6, 8\)"),
    ("error_divide", lambda: sc.shiftability_error(np.zeros((1, 6, 9, 1)), 2),
     ValueError, r"`stride` \(2, 2\) must divide the spatial size \(H, W\) = \(6, 9\)"),
    ("error_divide_1d", lambda: sc.shiftability_error(np.zeros((1, 1, 8, 1)), 2),
     ValueError, r"= \(1, 8\) .* For a 1-D signal of shape \[N, 1, W, C\] use "
                 r"stride=\(1, s\)\."),
    # padding modes
    ("padding_same", lambda: sc.conv(X, K, padding="same"), ValueError,
     _MODES + r"'same'\."),
    ("padding_SAME", lambda: sc.max_pool(X, window=2, stride=2, padding="SAME"),
     ValueError, _MODES + r"'SAME'\."),
    ("padding_none", lambda: sc.blur_pool(X, padding=None), ValueError,
     _MODES + r"None\."),
    ("padding_pad", lambda: ops.pad(X, 3, padding="wrap"), ValueError,
     _MODES + r"'wrap'\."),
    ("reflect_too_small",
     lambda: sc.conv(np.zeros((1, 2, 8, 2)), np.zeros((5, 1, 2, 2)), padding="reflect"),
     ValueError, r"conv: `padding`='reflect' needs a pad smaller than the spatial size"
                 r" of `x`, but axis 1 has size 2 and the window 5 with dilation 1 "
                 r"needs a pad of 2\."),
    ("reflect_blur_h1", lambda: sc.blur_pool(np.zeros((1, 1, 8, 2))), ValueError,
     r"blur_pool: `padding`='reflect' .* axis 1 has size 1 .* needs a pad of 1\."),
    ("reflect_dilated",
     lambda: sc.max_pool(np.zeros((1, 8, 8, 1)), window=3, stride=1, dilation=(1, 8),
                         padding="reflect"),
     ValueError, r"max_pool: `padding`='reflect' .* axis 2 has size 8 and the window 3 "
                 r"with dilation 8 needs a pad of 8\."),
    ("valid_too_small",
     lambda: sc.max_pool(np.zeros((1, 2, 8, 2)), window=3, stride=1, padding="valid"),
     ValueError, r"max_pool: with `padding`='valid' the spatial size 2 of `x` \(axis "
                 r"1\) must be at least the dilated window extent 3"),
    # NaN / Inf into the spectra
    ("nan_power", lambda: sc.power_spectrum(np.full((1, 4, 4, 1), np.nan)), ValueError,
     r"`x` " + _FINITE + r"16 NaN and 0 Inf values\."),
    ("inf_ratio", lambda: sc.aliasing_ratio(_nan_at((1, 4, 4, 1), (0, 1, 2), np.inf),
                                            2),
     ValueError, r"`r2` " + _FINITE + r"0 NaN and 1 Inf values\."),
    ("nan_error", lambda: sc.shiftability_error(
        _nan_at((1, 1, 4, 1), (0, 0, 1), np.nan) + _nan_at((1, 1, 4, 1), (0, 0, 3),
                                                           -np.inf), (1, 2)),
     ValueError, r"`r2` " + _FINITE + r"1 NaN and 1 Inf values\."),
    ("nan_shift_x", lambda: sc.fourier_shift(_nan_at((1, 4, 4, 1), (0, 0, 0), np.nan),
                                             (0.5, 0)),
     ValueError, r"`x` " + _FINITE + r"1 NaN and 0 Inf values\."),
    ("inf_upsample", lambda: sc.fourier_upsample(_nan_at((1, 2, 2, 1), (0, 0, 0),
                                                         np.inf), 2),
     ValueError, r"`r` " + _FINITE + r"0 NaN and 1 Inf values\."),
    # shifts, cutoffs, masks, profiles
    ("shift_triple", lambda: sc.fourier_shift(S, (1, 2, 3)), ValueError,
     _SHIFT + r"\(1, 2, 3\)\."),
    ("shift_str", lambda: sc.fourier_shift(S, ("a", 2)), TypeError,
     _SHIFT + r"\('a', 2\)\."),
    ("shift_array", lambda: sc.fourier_shift(S, np.zeros(3)), ValueError,
     _SHIFT + r"an array of shape \(3,\) and dtype float64\."),
    ("shift_scalar", lambda: sc.fourier_shift(S, 0.5), ValueError,
     _SHIFT + r"an array of shape \(\) and dtype"),
    ("shift_complex", lambda: sc.fourier_shift(S, np.array([1j, 0])), ValueError,
     _SHIFT + r"an array of shape \(2,\) and dtype complex128\."),
    ("cutoff_zero", lambda: sc.ideal_lowpass(X, cutoff=0), ValueError,
     _CUTOFF + r"0\."),
    ("cutoff_high", lambda: sc.ideal_lowpass(X, cutoff=0.7), ValueError,
     _CUTOFF + r"0\.7\."),
    ("cutoff_triple", lambda: sc.ideal_lowpass(X, cutoff=(0.1, 0.2, 0.3)), ValueError,
     _CUTOFF + r"\(0\.1, 0\.2, 0\.3\)\."),
    ("cutoff_str", lambda: sc.ideal_lowpass(X, cutoff="a"), ValueError,
     _CUTOFF + r"'a'\."),
    ("mask_shape", lambda: sc.nyquist_mask((4, 4, 4), 2), ValueError,
     r"`shape` must be \(H, W\) or an NHWC shape; got \(4, 4, 4\)\."),
    ("profile_axis", lambda: spectra.axis_profile(np.zeros((4, 4)), 2), ValueError,
     r"`axis` must be 0 \(fy\) or 1 \(fx\); got 2\."),
    # synthetic signals
    ("tone_off_grid", lambda: synthetic.tone((16, 16), (0.1, 0.25)), ValueError,
     r"`freq\[0\]` must be an on-grid frequency k/16 in \[-0\.5, 0\.5\] cycles/pixel "
     r"for an axis of 16 samples; got 0\.1 \(= 1\.6/16\)\."),
    ("tone_above_half", lambda: synthetic.tone((16, 16), (0.0, 0.75)), ValueError,
     r"`freq\[1\]` must be an on-grid frequency .* got 0\.75"),
    ("tone_not_pair", lambda: synthetic.tone((16, 16), 0.25), ValueError,
     r"`freq` must be a pair \(fy, fx\); got 0\.25\."),
    ("tone_shape", lambda: synthetic.tone((0, 16), (0, 0.25)), ValueError,
     r"`shape` " + _PAIR + r"\(0, 16\)\."),
    ("tone_1d_n", lambda: synthetic.tone_1d(0, 0.25), ValueError,
     r"`n` must be a positive int; got 0\."),
    ("tone_1d_n_float", lambda: synthetic.tone_1d(8.0, 0.25), TypeError,
     r"`n` must be a positive int; got 8\.0 of type float\."),
    ("rectified_off_grid", lambda: synthetic.rectified_cosine(16, 0.3), ValueError,
     r"`freq\[1\]` must be an on-grid frequency k/16 .* got 0\.3 \(= 4\.8/16\)\."),
    ("field_cutoff_low",
     lambda: synthetic.bandlimited_field(jax.random.key(0), (8, 8), cutoff=0.1),
     ValueError, r"`cutoff` 0\.1 keeps no non-DC frequency on a 8x8 grid; raise it "
                 r"above 1/8\."),
    ("field_cutoff_zero",
     lambda: synthetic.bandlimited_field(jax.random.key(0), (8, 8), cutoff=0.0),
     ValueError, _CUTOFF + r"0\.0\."),
    ("field_batch",
     lambda: synthetic.bandlimited_field(jax.random.key(0), (8, 8), cutoff=0.3,
                                         batch=0),
     ValueError, r"`batch` must be a positive int; got 0\."),
    ("field_channels",
     lambda: synthetic.bandlimited_field(jax.random.key(0), (8, 8), cutoff=0.3,
                                         channels=1.5),
     TypeError, r"`channels` must be a positive int; got 1\.5 of type float\."),
    ("zone_fmax", lambda: synthetic.zone_plate((8, 8), fmax=0), ValueError,
     r"`fmax` must be in \(0, 1\] cycles/pixel; got 0\."),
    ("zone_shape", lambda: synthetic.zone_plate((8, -8)), ValueError,
     r"`shape` " + _PAIR + r"\(8, -8\)\."),
]


@pytest.mark.parametrize("call,exc,pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_message(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    msg = str(info.value)
    assert "`" in msg, "the message names the argument in backticks"
    assert not msg.startswith("("), "message is a string, not a tuple"


def test_case_names_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


def test_static_errors_raise_at_trace_time_under_jit():
    with pytest.raises(ValueError, match=r"`stride` " + _PAIR + r"0\."):
        jax.jit(lambda x: sc.conv(x, K, stride=0))(X)
    with pytest.raises(ValueError, match=_MODES + r"'same'\."):
        jax.jit(lambda x: sc.max_pool(x, window=2, stride=2, padding="same"))(X)
    with pytest.raises(ValueError, match=r"`stride` \(2, 2\) must divide"):
        jax.jit(lambda r: sc.shiftability_error(r, 2))(np.zeros((1, 5, 4, 1)))
    with pytest.raises(TypeError, match=r"`x` " + _FLOAT + r"int32"):
        jax.jit(lambda x: sc.blur_pool(x))(X.astype(np.int32))


def test_errors_come_before_any_computation():
    # a huge input with a bad option fails at once, without touching the data
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32),
                                          shape=(64, 4096, 4096, 8),
                                          strides=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=re.escape("`padding` must be one of")):
        sc.avg_pool(big, window=3, stride=2, padding="mirror")
    with pytest.raises(ValueError, match=r"`stride` " + _PAIR):
        sc.blur_pool(big, stride=0)


# ---------------------------------------------------------------------------
# Bad input found by fuzzing the public numerical API
# ---------------------------------------------------------------------------

_EMPTY = r"must not be empty along "
_LOGITS = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
_PROBS = np.asarray(jax.nn.softmax(_LOGITS, axis=-1))
_LABELS = np.zeros(4, np.int32)
_PROB_MSG = (r"looks like probabilities, not logits: every row \(last axis, K = 10 "
             r"classes\) lies in \[0, 1\] and sums to 1\. Pass the logits .*"
             r"`jnp\.log\(p\)`")
_KEY_HOW = (r"make one with `jax\.random\.key\(seed\)` \(or the legacy "
            r"`jax\.random\.PRNGKey\(seed\)`\)")
_K3 = np.ones((3, 3, 2, 2), np.float32) / 9


def _circ_net(x):
    return sc.conv(x, np.ones((3, 3, x.shape[3], 2), np.float32), stride=2,
                   padding="circular")


def _with(a, where, value):
    a = np.array(a, copy=True)
    a[where] = value
    return a


FUZZ_CASES = [
    # 1. empty arrays
    ("empty_h_conv", lambda: sc.conv(np.zeros((1, 0, 8, 2), np.float32), _K3),
     ValueError, r"`x` " + _EMPTY + r"H, W; got shape \(1, 0, 8, 2\)\."),
    ("empty_w_max_pool",
     lambda: sc.max_pool(np.zeros((1, 8, 0, 2)), window=2, stride=2), ValueError,
     r"`x` " + _EMPTY + r"H, W; got shape \(1, 8, 0, 2\)\."),
    ("empty_h_blur", lambda: sc.blur_pool(np.zeros((1, 0, 8, 2)), padding="zero"),
     ValueError, r"`x` " + _EMPTY + r"H, W"),
    ("empty_c_conv", lambda: sc.conv(np.zeros((1, 8, 8, 0)), np.zeros((3, 3, 0, 2))),
     ValueError, r"`x` must have at least one channel for a convolution; got shape "
                 r"\(1, 8, 8, 0\) \(C_in = 0\)\."),
    ("empty_h_lowpass", lambda: sc.ideal_lowpass(np.zeros((1, 0, 8, 1)), cutoff=0.2),
     ValueError, r"`x` " + _EMPTY + r"H, W"),
    ("empty_h_fourier_shift", lambda: sc.fourier_shift(np.zeros((1, 0, 8, 1)), (1, 0)),
     ValueError, r"`x` " + _EMPTY + r"H, W; got shape \(1, 0, 8, 1\)\."),
    ("empty_w_upsample", lambda: sc.fourier_upsample(np.zeros((1, 4, 0, 1)), 2),
     ValueError, r"`r` " + _EMPTY + r"H, W"),
    ("empty_w_power", lambda: sc.power_spectrum(np.zeros((1, 4, 0, 1)), reduce=False),
     ValueError, r"`x` " + _EMPTY + r"H, W"),
    ("empty_n_power_reduce", lambda: sc.power_spectrum(np.zeros((0, 4, 4, 1))),
     ValueError, r"`x` " + _EMPTY + r"N, C \(the measure sums over samples and "
                 r"channels\); got shape \(0, 4, 4, 1\)\."),
    ("empty_c_power_reduce", lambda: sc.power_spectrum(np.zeros((2, 4, 4, 0))),
     ValueError, r"`x` " + _EMPTY + r"N, C"),
    ("empty_n_ratio", lambda: sc.aliasing_ratio(np.zeros((0, 4, 4, 1)), 2),
     ValueError, r"`r2` " + _EMPTY + r"N, C .*got shape \(0, 4, 4, 1\)\."),
    ("empty_c_error", lambda: sc.shiftability_error(np.zeros((1, 4, 4, 0)), 2),
     ValueError, r"`r2` " + _EMPTY + r"N, C"),
    ("empty_h_ratio", lambda: sc.aliasing_ratio(np.zeros((1, 0, 4, 1)), 2),
     ValueError, r"`r2` " + _EMPTY + r"H, W"),
    ("empty_w_error", lambda: sc.shiftability_error(np.zeros((1, 4, 0, 1)), 2),
     ValueError, r"`r2` " + _EMPTY + r"H, W"),
    ("empty_h_undecimate", lambda: sc.undecimate(_circ_net)(np.zeros((1, 0, 8, 1))),
     ValueError, r"`x` " + _EMPTY + r"H, W; got shape \(1, 0, 8, 1\)\."),
    ("empty_w_all_shifts", lambda: sc.all_shifts(_circ_net, np.zeros((1, 8, 0, 1))),
     ValueError, r"`x` " + _EMPTY + r"H, W"),
    ("empty_n_layer_spectra",
     lambda: sc.layer_spectra(lambda x: {"a": _circ_net(x)}, np.zeros((0, 8, 8, 1))),
     ValueError, r"`x` " + _EMPTY + r"N, H, W, C \(the measures average over "
                 r"samples and channels\); got shape \(0, 8, 8, 1\)\."),
    ("empty_c_layer_spectra",
     lambda: sc.layer_spectra(lambda x: {"a": x[:, ::2, ::2]}, np.zeros((1, 8, 8, 0))),
     ValueError, r"`x` " + _EMPTY + r"N, H, W, C"),
    ("empty_map_layer_spectra",
     lambda: sc.layer_spectra(lambda x: {"a": x[:, ::2, ::2, :0]},
                              np.ones((1, 8, 8, 1))),
     ValueError, r"`f` output 'a' is empty \(undecimated shape \(1, 8, 8, 0\)\)"),
    ("empty_n_translate", lambda: shifts.translate(np.zeros((0, 8, 8, 1)), [(1, 1)]),
     ValueError, r"`x` " + _EMPTY + r"N, H, W, C; got shape \(0, 8, 8, 1\)\."),
    ("empty_n_crop", lambda: shifts.crop(np.zeros((0, 8, 8, 1)), [(0, 0)], size=2),
     ValueError, r"`x` " + _EMPTY + r"N, H, W, C"),
    ("empty_h_resize", lambda: shifts.resize_images(np.zeros((1, 0, 8, 1)), 4),
     ValueError, r"`x` " + _EMPTY + r"N, H, W, C"),
    ("empty_n_p_top1", lambda: sc.p_top1_change(np.zeros((0, 3)), np.zeros((0, 3))),
     ValueError, r"`logits_a` must hold at least one sample; got shape \(0, 3\)\."),
    ("empty_t_mac",
     lambda: sc.mean_abs_change(np.zeros((4, 0, 3)), np.zeros((4, 0, 3))),
     ValueError, r"`logits_a` must hold at least one sample; got shape \(4, 0, 3\)\."),
    ("empty_k_consistency", lambda: sc.consistency(np.zeros((4, 0)), np.zeros((4, 0))),
     ValueError, r"`logits_a` must have K >= 1 classes in its last axis"),
    ("empty_n_accuracy", lambda: sc.accuracy(np.zeros((0, 3)), np.zeros(0, int)),
     ValueError, r"`logits` must hold at least one sample"),
    ("empty_bootstrap", lambda: sc.bootstrap_ci(np.zeros(0), key=jax.random.key(0)),
     ValueError, r"`values` must have shape \[N\] or \[N, \.\.\.\] with N >= 1"),
    ("empty_eqt", lambda: sc.eqt_psnr(np.zeros((0, 4)), np.zeros((0, 4))),
     ValueError, r"`features_a` must have shape \[N, \.\.\.\] with N >= 1"),
    # 3. non-finite values: logits, features, images, shifts
    ("nan_logits_p_top1", lambda: sc.p_top1_change(_with(_LOGITS, (0, 0), np.nan),
                                                   _LOGITS),
     ValueError, r"`logits_a` " + _FINITE + r"1 NaN and 0 Inf values\."),
    ("inf_logits_mac", lambda: sc.mean_abs_change(_LOGITS,
                                                  _with(_LOGITS, (1, 1), np.inf)),
     ValueError, r"`logits_b` " + _FINITE + r"0 NaN and 1 Inf values\."),
    ("ninf_logits_consistency",
     lambda: sc.consistency(_with(_LOGITS, (1, 1), -np.inf), _LOGITS),
     ValueError, r"`logits_a` " + _FINITE + r"0 NaN and 1 Inf values\."),
    ("nan_logits_accuracy", lambda: sc.accuracy(_with(_LOGITS, (2, 0), np.nan),
                                                _LABELS),
     ValueError, r"`logits` " + _FINITE + r"1 NaN"),
    ("nan_logits_jagged",
     lambda: sc.jaggedness(_with(np.stack([_LOGITS] * 3, 1), (0, 1, 0), np.nan)),
     ValueError, r"`logits` " + _FINITE + r"1 NaN"),
    ("nan_logits_jax_array",
     lambda: sc.p_top1_change(jnp.asarray(_LOGITS), jnp.asarray(_with(_LOGITS, 0,
                                                                      np.nan))),
     ValueError, r"`logits_b` " + _FINITE + r"10 NaN and 0 Inf values\."),
    ("nan_features_eqt", lambda: sc.eqt_psnr(X, _with(X, (0, 1, 1, 0), np.nan)),
     ValueError, r"`features_b` " + _FINITE + r"1 NaN"),
    ("nan_bootstrap", lambda: sc.bootstrap_ci(np.array([1.0, np.nan]),
                                              key=jax.random.key(0)),
     ValueError, r"`values` " + _FINITE + r"1 NaN"),
    ("nan_x_undecimate",
     lambda: sc.undecimate(_circ_net)(_with(X, (0, 2, 3, 1), np.nan)),
     ValueError, r"`x` " + _FINITE + r"1 NaN and 0 Inf values\."),
    ("inf_x_all_shifts", lambda: sc.all_shifts(_circ_net, _with(X, (0, 2, 3, 1),
                                                                np.inf)),
     ValueError, r"`x` " + _FINITE + r"0 NaN and 1 Inf values\."),
    ("nan_x_layer_spectra",
     lambda: sc.layer_spectra(lambda x: {"a": _circ_net(x)}, _with(X, 0, np.nan)),
     ValueError, r"`x` " + _FINITE + r"128 NaN"),
    ("nan_shift_tuple", lambda: sc.fourier_shift(S, (np.nan, 0)), ValueError,
     r"`shift` must be a pair \(dy, dx\) of finite real numbers; got \(nan, 0\.0\)\."),
    ("inf_shift_tuple", lambda: sc.fourier_shift(S, (0, -np.inf)), ValueError,
     r"`shift` must be a pair \(dy, dx\) of finite real numbers; got \(0\.0, -inf\)"),
    ("inf_shift_array", lambda: sc.fourier_shift(S, jnp.array([np.inf, 1.0])),
     ValueError, r"`shift` must be a pair \(dy, dx\) of finite real numbers; got "
                 r"\(inf, 1\.0\)"),
    ("nan_shift_translate",
     lambda: shifts.translate(X, [(0.5, np.nan)], method="fourier"), ValueError,
     r"`shifts` must be finite; got \[\(0\.5, nan\)\]\."),
    ("nan_lowpass", lambda: sc.ideal_lowpass(_with(X, (0, 0, 0, 0), np.nan),
                                             cutoff=0.25),
     ValueError, r"`x` " + _FINITE + r"1 NaN and 0 Inf values\."),
    ("bool_shift", lambda: sc.fourier_shift(S, (True, 0)), TypeError,
     _SHIFT + r"\(True, 0\)\."),
    # 4. probabilities passed as logits
    ("probs_p_top1", lambda: sc.p_top1_change(_PROBS, _PROBS[::-1]), ValueError,
     r"`logits_a` " + _PROB_MSG),
    ("probs_mac_b", lambda: sc.mean_abs_change(_LOGITS, _PROBS), ValueError,
     r"`logits_b` " + _PROB_MSG),
    ("probs_consistency", lambda: sc.consistency(jnp.asarray(_PROBS), _LOGITS),
     ValueError, r"`logits_a` " + _PROB_MSG),
    ("probs_accuracy", lambda: sc.accuracy(_PROBS, _LABELS), ValueError,
     r"`logits` " + _PROB_MSG),
    ("probs_robust", lambda: sc.robust_accuracy(_PROBS[:, None], _LABELS),
     ValueError, r"`logits` " + _PROB_MSG),
    ("probs_true_class", lambda: metrics.true_class_probability(_PROBS, _LABELS),
     ValueError, r"`logits` " + _PROB_MSG),
    ("probs_jagged", lambda: sc.jaggedness(np.stack([_PROBS, _PROBS[::-1]], 1)),
     ValueError, r"`logits` " + _PROB_MSG),
    ("probs_flips", lambda: sc.top1_flips(np.stack([_PROBS, _PROBS[::-1]], 1)),
     ValueError, r"`logits` " + _PROB_MSG),
    ("probs_float16",
     lambda: sc.p_top1_change(_PROBS.astype(np.float16), _LOGITS.astype(np.float16)),
     ValueError, r"`logits_a` " + _PROB_MSG),
    # 5. malformed PRNG keys
    ("key_int_bootstrap", lambda: sc.bootstrap_ci(np.ones(3), key=0), TypeError,
     r"`key` must be a JAX PRNG key; got 0 of type int: " + _KEY_HOW),
    ("key_float_bootstrap", lambda: sc.bootstrap_ci(np.ones(3), key=1.5), TypeError,
     r"`key` must be a JAX PRNG key; got 1\.5 of type float"),
    ("key_none_schedule", lambda: shifts.random_pair_schedule(None, 2), TypeError,
     r"`key` must be a JAX PRNG key; got None of type NoneType"),
    ("key_numpy_scalar", lambda: shifts.random_pair_schedule(np.uint32(3), 2),
     TypeError, r"`key` must be a JAX PRNG key; got np\.uint32\(3\)|got 3 of type"),
    ("key_shape3", lambda: sc.bootstrap_ci(np.ones(3), key=np.zeros(3, np.uint32)),
     TypeError, r"`key` must be a JAX PRNG key; got an array of shape \(3,\) and "
                r"dtype uint32 \(a legacy key is uint32\[2\]\): " + _KEY_HOW),
    ("key_float_pair", lambda: shifts.random_pair_schedule(np.zeros(2), 2),
     TypeError, r"`key` must be a JAX PRNG key; got an array of shape \(2,\) and "
                r"dtype float64"),
    ("key_int32_pair",
     lambda: sc.bootstrap_ci(np.ones(3), key=np.zeros(2, np.int32)), TypeError,
     r"dtype int32 \(a legacy key is uint32\[2\]\)"),
    ("key_batch_typed",
     lambda: sc.bootstrap_ci(np.ones(3), key=jax.random.split(jax.random.key(0), 3)),
     ValueError, r"`key` must be a JAX PRNG key, a single one; got a batch of keys "
                 r"with shape \(3,\)\. Pass one key, e\.g\. `key\[0\]`"),
    ("key_batch_legacy",
     lambda: shifts.random_pair_schedule(
         jax.random.split(jax.random.PRNGKey(0), 3), 2),
     ValueError, r"`key` must be a JAX PRNG key, a single one; got a batch of legacy "
                 r"keys with shape \(3, 2\)"),
    ("key_str", lambda: _checks.check_key("rng", "seed"), TypeError,
     r"`rng` must be a JAX PRNG key; got 'seed' of type str"),
    # 6. option strings and bools passed as strings
    ("reduce_no_metrics", lambda: sc.p_top1_change(_LOGITS, _LOGITS, reduce="no"),
     TypeError, r"`reduce` must be a bool \(True or False\); got 'no' of type str\."),
    ("reduce_no_power", lambda: sc.power_spectrum(S, reduce="no"), TypeError,
     r"`reduce` must be a bool \(True or False\); got 'no'"),
    ("remove_mean_str", lambda: sc.power_spectrum(S, remove_mean="False"), TypeError,
     r"`remove_mean` must be a bool \(True or False\); got 'False'"),
    ("antialias_str", lambda: shifts.resize_images(X, 4, antialias="False"),
     TypeError, r"`antialias` must be a bool \(True or False\); got 'False'"),
    ("padding_Zero", lambda: sc.conv(X, K, padding="Zero"), ValueError,
     _MODES + r"'Zero'\."),
    ("method_brute_space", lambda: sc.all_shifts(_circ_net, X, method="brute "),
     ValueError, r"`method` must be one of \['atrous', 'brute'\]; got 'brute '\."),
    ("method_translate", lambda: shifts.translate(X, [(1, 1)], method="Circular"),
     ValueError, r"`method` must be one of \['circular', 'fourier'\]; got 'Circular'"),
    ("method_resize", lambda: shifts.resize_images(X, 4, method="bilinear"),
     ValueError, r"`method` must be one of \['nearest', 'linear', 'cubic', "),
    ("inpaint_name", lambda: shifts.embed(X, [(0, 0)], canvas_size=10, inpaint="NC"),
     ValueError, r"`inpaint` must be one of \['normalized_conv', 'biharmonic'\]"),
    ("method_binomial", lambda: sc.binomial_ci(3, 10, method="Wilson"), ValueError,
     r"`method` must be one of \['wilson', 'clopper-pearson'\]; got 'Wilson'\."),
    ("sweep_axis", lambda: shifts.sweep_schedule(3, axis="x"), ValueError,
     r"`axis` must be one of \['horizontal', 'vertical', 'diagonal'\]; got 'x'\."),
    ("bins_zero", lambda: sc.layer_spectra(lambda x: {"a": _circ_net(x)}, X, bins=0),
     ValueError, r"`bins` must be a positive int; got 0\."),
    ("bins_str", lambda: sc.layer_spectra(lambda x: {"a": _circ_net(x)}, X, bins="3"),
     TypeError, r"`bins` must be a positive int; got '3' of type str\."),
    ("bins_profile", lambda: spectra.radial_profile(np.ones((4, 4)), bins=-1),
     ValueError, r"`bins` must be a positive int; got -1\."),
    ("include_spectrum_str",
     lambda: sc.layer_spectra(lambda x: {"a": _circ_net(x)}, X).to_dict(
         include_spectrum="no"),
     TypeError, r"`include_spectrum` must be a bool \(True or False\); got 'no'"),
    ("tiling_backends_str", lambda: sc.atrous.Tiling(backends="gpu"), TypeError,
     r"`backends` must be a tuple of backend names, e\.g\. \('cpu',\) or "
     r"\('cpu', 'gpu'\); got 'gpu'\."),
    ("tiling_width_zero", lambda: sc.atrous.Tiling(width=0), ValueError,
     r"`width` must be None or a positive int; got 0\."),
    # 9. other findings
    ("sweep_nan_start", lambda: shifts.sweep_schedule(3, start=(np.nan, 0)),
     ValueError, r"`start` must be a pair \(oy, ox\) of finite numbers; got "
                 r"\(nan, 0\)\."),
    ("mask_shape_negative", lambda: sc.nyquist_mask((-4, 4), 2), ValueError,
     r"`shape` " + _PAIR + r"\(-4, 4\)\."),
    ("mask_shape_float", lambda: sc.nyquist_mask((4.5, 4), 2), ValueError,
     r"`shape` " + _PAIR + r"\(4\.5, 4\)\."),
    ("unpolyphase_list_rank5",
     lambda: sc.unpolyphase(np.zeros((1, 2, 2, 3, 3)).tolist()), ValueError,
     r"`components` must have rank 6 .* got shape \(1, 2, 2, 3, 3\)\."),
    ("eqt_constant_peak",
     lambda: sc.eqt_psnr(np.ones((2, 4, 4, 1)), np.zeros((2, 4, 4, 1))), ValueError,
     r"`features_a` is constant over the valid entries, so its range \(the default "
     r"`peak`\) is 0 and the PSNR is undefined; pass `peak`"),
    ("circular_shift_float", lambda: shifts.circular_shift(X, (1.5, 0)), ValueError,
     r"`shift` must be a pair \(ty, tx\) of ints; got \(1\.5, 0\)\."),
]


@pytest.mark.parametrize("call,exc,pattern", [c[1:] for c in FUZZ_CASES],
                         ids=[c[0] for c in FUZZ_CASES])
def test_fuzzed_bad_input_message(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert "`" in str(info.value), "the message names the argument in backticks"


def test_fuzz_case_names_are_unique():
    names = [c[0] for c in CASES + FUZZ_CASES]
    assert len(names) == len(set(names))


# Documented results for edge inputs, checked against independent computations.

_R2 = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)


def test_empty_batch_or_channels_give_correctly_shaped_empty_results():
    n0 = np.zeros((0, 8, 8, 2), np.float32)
    c0 = np.zeros((2, 8, 8, 0), np.float32)
    assert sc.conv(n0, _K3, stride=2).shape == (0, 4, 4, 2)
    assert sc.max_pool(c0, window=2, stride=2).shape == (2, 4, 4, 0)
    assert sc.avg_pool(n0, window=3, stride=2, padding="circular").shape == (0, 4, 4, 2)
    assert sc.blur_pool(c0).shape == (2, 4, 4, 0)
    assert sc.polyphase(np.zeros((1, 0, 8, 1)), 2).shape == (1, 2, 2, 0, 4, 1)
    assert sc.unpolyphase(np.zeros((0, 2, 2, 3, 3, 1))).shape == (0, 6, 6, 1)
    assert sc.fourier_shift(n0, (0.5, 0)).shape == n0.shape
    assert sc.fourier_upsample(c0, 2).shape == (2, 16, 16, 0)
    assert sc.power_spectrum(n0, reduce=False).shape == n0.shape
    assert sc.ideal_lowpass(c0, cutoff=0.25).shape == c0.shape
    r2, stride = sc.undecimate(_circ_net)(n0)
    assert r2.shape == (0, 8, 8, 2) and tuple(int(s) for s in stride) == (2, 2)
    assert sc.all_shifts(_circ_net, n0).shape == (0, 2, 2, 4, 4, 2)
    assert sc.all_shifts(_circ_net, n0, method="brute", check=0).shape == (
        0, 2, 2, 4, 4, 2)
    assert sc.all_shifts(_circ_net, n0, check=2).shape == (0, 2, 2, 4, 4, 2)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["f16", "bf16"])
def test_half_precision_spectra_are_computed_in_float32(dtype):
    half = jnp.asarray(_R2, dtype)
    up = np.asarray(half.astype(jnp.float32))       # the same values in float32
    for fn, want in ((lambda r: sc.aliasing_ratio(r, 2), None),
                     (lambda r: sc.shiftability_error(r, 2), None),
                     (lambda r: sc.power_spectrum(r), None),
                     (lambda r: sc.power_spectrum(r, remove_mean=False,
                                                  reduce=False), None)):
        got, want = fn(half), fn(up)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6,
                                   atol=1e-7)
    # transforms return the input dtype: the float32 result, rounded once
    for fn in (lambda r: sc.fourier_shift(r, (0.5, -1.25)),
               lambda r: sc.fourier_upsample(r, 2),
               lambda r: sc.ideal_lowpass(r, cutoff=0.25)):
        got = fn(half)
        assert got.dtype == dtype
        np.testing.assert_array_equal(
            np.asarray(got, np.float32),
            np.asarray(jnp.asarray(fn(up)).astype(dtype), np.float32))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["f16", "bf16"])
def test_half_precision_layer_spectra_equal_float32_measures(dtype):
    k = jnp.asarray(np.random.default_rng(2).standard_normal((3, 3, 3, 4)), dtype)

    def f(x):
        return {"a": sc.conv(x, k, stride=2, padding="circular")}

    x = jnp.asarray(_R2, dtype)
    res = sc.layer_spectra(f, x)["a"]
    r2 = np.asarray(sc.undecimate(f)(x)[0]["a"], np.float32)
    assert res.aliasing_ratio == pytest.approx(float(sc.aliasing_ratio(r2, 2)),
                                               rel=1e-5, abs=1e-7)
    assert res.shiftability_error == pytest.approx(
        float(sc.shiftability_error(r2, 2)), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1.0e20, 1e-20])
def test_energy_ratios_are_scale_invariant_in_float32(scale):
    scaled = _R2 * np.float32(scale)
    assert np.all(np.isfinite(scaled)) and np.all(scaled[_R2 != 0] != 0)
    for fn in (lambda r: sc.aliasing_ratio(r, 2), lambda r: sc.shiftability_error(r, 2),
               lambda r: sc.aliasing_ratio(r, (1, 4))):
        want = float(fn(_R2))
        assert 0.05 < want
        assert float(fn(scaled)) == pytest.approx(want, rel=1e-5)
    # independent NumPy value of the aliasing ratio, in float64
    c = _R2.astype(np.float64) - _R2.mean(axis=(1, 2), keepdims=True)
    e = (np.abs(np.fft.fft2(c, axes=(1, 2))) ** 2).sum(axis=(0, 3))
    inside = sc.nyquist_mask((8, 8), 2)
    assert float(sc.aliasing_ratio(scaled, 2)) == pytest.approx(
        e[~inside].sum() / e.sum(), rel=1e-5)


def test_aliasing_ratio_stays_in_unit_interval():
    # a 2x2 map at stride 4: all energy outside; the two sums round differently
    for seed in range(20):
        r2 = np.random.default_rng(seed).standard_normal((2, 2, 2, 2)).astype(
            np.float32)
        ratio = float(sc.aliasing_ratio(r2, 4))
        assert ratio == 1.0 or ratio == pytest.approx(1.0, abs=1e-6)
        assert 0.0 <= ratio <= 1.0


def test_energy_ratios_of_zero_or_constant_maps_are_zero():
    for r2 in (np.zeros((1, 8, 8, 2), np.float32), np.full((2, 8, 8, 1), 3e38,
                                                           np.float32),
               np.full((1, 4, 4, 1), -7.5)):
        assert float(sc.aliasing_ratio(r2, 2)) == 0.0
        assert float(sc.shiftability_error(r2, 2)) == 0.0


def test_huge_fourier_shift_is_reduced_modulo_the_period_first():
    x = _R2[:, :, :6]                       # H = 8, W = 6
    got = sc.fourier_shift(x, (1e7 + 0.5, -3e9 - 0.25))
    want = sc.fourier_shift(x, (0.5 + 1e7 % 8, (-3e9 - 0.25) % 6))
    np.testing.assert_allclose(got, want, atol=2e-6)
    got = sc.fourier_shift(x, np.array([1e7 + 0.5, 6e9]))
    np.testing.assert_allclose(got, sc.fourier_shift(x, (0.5 + 1e7 % 8, 0)), atol=2e-6)
    # an integer shift rolls exactly, however large
    np.testing.assert_allclose(sc.fourier_shift(x, (10**12 + 3, 0)),
                               np.roll(x, 3, axis=1), atol=2e-6)
    frames, record = shifts.translate(x, [(1e7 + 0.5, 0.0)], method="fourier")
    np.testing.assert_allclose(frames[:, 0], sc.fourier_shift(x, (0.5 + 1e7 % 8, 0)),
                               atol=2e-6)
    assert record.offsets == ((1e7 + 0.5, 0.0),)


def test_huge_integer_rolls_equal_rolls_modulo_the_period():
    for t in (10**9, 10**12 + 3, -(10**10) - 1, 2**63 + 5):
        want = np.roll(_R2, (t % 8, (3 * t) % 8), axis=(1, 2))
        np.testing.assert_array_equal(shifts.circular_shift(_R2, (t, 3 * t)), want)
        if t < 2**63:
            frames, _ = shifts.translate(_R2, [(t, 3 * t)])
            np.testing.assert_array_equal(frames[:, 0], want)
    big = [(10**12 + 3, -(10**10) - 1), (10**9, 1)]
    out = sc.all_shifts(_circ_net, _R2, shifts=big)
    for p, (ty, tx) in enumerate(big):
        want = _circ_net(np.roll(_R2, (ty % 8, tx % 8), axis=(1, 2)))
        np.testing.assert_allclose(out[:, p], want, atol=1e-5)


def test_value_checks_are_skipped_inside_jit():
    # nothing about traced values can be checked: documented, and it must not fail
    assert float(jax.jit(sc.p_top1_change)(_PROBS, _PROBS)) == 0.0
    out = jax.jit(lambda x, s: sc.fourier_shift(x, s))(S, jnp.array([np.nan, 0.0]))
    assert out.shape == S.shape
    # a traced shift is still reduced modulo the period (in float32)
    x = _R2[:1]
    np.testing.assert_allclose(jax.jit(sc.fourier_shift)(x, jnp.array([8e3 + 0.5, 0])),
                               sc.fourier_shift(x, (0.5, 0)), atol=1e-4)


def test_logit_check_keeps_real_logits_and_single_class():
    # in [0, 1] but rows not summing to 1: logits, accepted
    a = np.full((3, 4), 0.5, np.float32)
    assert float(sc.p_top1_change(a, a)) == 0.0
    # K = 1: every row is [1.0]; nothing to compare, accepted
    one = np.ones((3, 1), np.float32)
    assert float(sc.mean_abs_change(one, one)) == 0.0
    # log-probabilities are logits
    assert float(sc.consistency(np.log(_PROBS), np.log(_PROBS))) == 1.0


def test_check_key_accepts_single_keys_typed_legacy_and_traced():
    typed, legacy = jax.random.key(3), jax.random.PRNGKey(3)
    assert _checks.check_key("key", typed) is typed
    assert _checks.check_key("key", legacy) is legacy
    assert jax.jit(lambda k: _checks.check_key("key", k))(legacy).shape == (2,)
    jax.jit(lambda k: _checks.check_key("key", k))(typed)
    ci = sc.bootstrap_ci(np.arange(6.0), key=legacy, n_resamples=20)
    assert ci.low <= ci.estimate <= ci.high
    s = shifts.random_pair_schedule(typed, 3)
    assert s.offsets.shape == (3, 2, 2)
    with pytest.raises(ValueError, match=r"a batch of keys with shape \(2,\)"):
        jax.jit(lambda k: _checks.check_key("key", k))(jax.random.split(typed, 2))


def _resize_net(x):
    y = sc.conv(x, np.ones((3, 3, x.shape[3], 2), np.float32) / 9, stride=2,
                padding="circular")
    return {"a": jax.image.resize(y, (y.shape[0], 8, 8, y.shape[3]), "linear")}


def test_resize_inside_a_network_undecimate_and_layer_spectra_agree():
    # jax.image.resize resamples the strided map off its lattice: no undecimated
    # form. undecimate and layer_spectra refuse it with the same error; all_shifts
    # evaluates it exactly (checked against brute force over all shifts).
    from sigcnn.atrous import Refusal

    with pytest.raises(Refusal) as a:
        sc.undecimate(_resize_net)(_R2)
    with pytest.raises(Refusal) as b:
        sc.layer_spectra(_resize_net, _R2)
    assert str(a.value) == str(b.value)
    assert isinstance(a.value, NotImplementedError)
    assert re.search(r"jax\.image\.resize.*all_shifts\(f, x\) evaluates it exactly",
                     str(a.value))
    out = sc.all_shifts(_resize_net, _R2)["a"]
    assert out.shape == (2, 2, 2, 8, 8, 2)
    for ty in range(2):
        for tx in range(2):
            want = _resize_net(np.roll(_R2, (ty, tx), axis=(1, 2)))["a"]
            np.testing.assert_allclose(out[:, ty, tx], want, atol=1e-5)
