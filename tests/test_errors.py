"""Bad input raises ValueError / TypeError naming the argument, its value and the
expected form, before any computation."""

import re

import jax
import numpy as np
import pytest

import sigcnn as sc
from sigcnn import ops, spectra
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
