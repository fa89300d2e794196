"""Strided and dilated (à trous) convolution and pooling, polyphase split, ideal low-pass.

All functions take NHWC arrays ``[N, H, W, C]`` and, for convolutions, HWIO kernels
``[kh, kw, C_in / groups, C_out]``, as in Flax.

Padding modes (keyword ``padding``):

* ``"zero"``: pad with zeros (for pooling too: after a ReLU this equals -inf padding).
* ``"circular"``: wrap around (periodic signal), ``1234 -> 34|1234|12``.
* ``"reflect"``: mirror without repeating the edge, ``1234 -> 32|1234|32``.
* ``"valid"``: no padding; only windows fully inside the input.

For every mode but ``"valid"`` the window is anchored so that output position ``i``
reads the input around ``s * i``: a window of size ``k`` with dilation ``d`` covers
``s*i - d*floor((k-1)/2) ... s*i + d*ceil((k-1)/2)``. The output therefore has
``ceil(H / s) x ceil(W / s)`` positions and, exactly,

    op(x, stride=s) == op(x, stride=1)[:, ::s, ::s]

(for ``"valid"`` the same identity holds with ``floor((H - d*(k-1) - 1) / s) + 1``
positions). ``dilation`` spreads kernel taps and pooling windows ``d`` pixels apart
and scales the padding by ``d``, so a stack of strided ops equals the stack of its
undecimated versions (stride 1, each op dilated by the product of the strides in
front of it) sampled at the total stride: the à trous algorithm. This stack identity
is exact for ``"zero"`` and ``"valid"`` padding at every size. For ``"circular"`` it
needs the product P of the strides in front of each op to divide H and W (else the
strided map wraps after ``ceil(H / P)`` samples, the undecimated one after H); for
``"reflect"``, P must divide ``H - 1`` and ``W - 1`` (else the two grids mirror
about different last samples and the far edge differs).

Inputs: float arrays (integer, bool and complex ones are refused). In the
convolutions and pooling, NaN and Inf propagate locally as IEEE arithmetic says
and are not checked (these ops are building blocks called inside networks, where
a check would cost a device synchronisation per call); `ideal_lowpass`, whose FFT
would spread one NaN over the whole image, refuses them for concrete inputs.
Empty batches or channel sets (N = 0 or C = 0) give empty outputs of the
right shape; an empty spatial axis (H = 0 or W = 0) raises ``ValueError``, as
does a convolution of an input with no channels. `polyphase` and `unpolyphase`
are pure rearrangements and return empty arrays for any empty axis.

Unlike lax's ``"SAME"`` string, whose padding depends on the stride and shifts the
sampling phase by one pixel on even sizes, these modes never move the sampling grid.

References:
  Holschneider, Kronland-Martinet, Morlet & Tchamitchian, "A real-time algorithm
  for signal analysis with the help of the wavelet transform", 1989 (à trous).
  Vaidyanathan, "Multirate Systems and Filter Banks", Prentice Hall, 1993
  (noble identities, polyphase decomposition).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (BlurPool).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn._checks import (
    as_pair,
    check_choice,
    check_finite,
    check_float_array,
    check_nhwc,
    check_nonempty,
)
from sigcnn._op_vjps import conv_valid, max_window, tap_sum

__all__ = [
    "PADDING_MODES",
    "avg_pool",
    "binomial_filter",
    "blur_pool",
    "conv",
    "ideal_lowpass",
    "lowpass_mask",
    "max_pool",
    "output_size",
    "pad",
    "polyphase",
    "unpolyphase",
    "window_pads",
]

Padding = Literal["zero", "circular", "reflect", "valid"]
PADDING_MODES = ("zero", "circular", "reflect", "valid")


def window_pads(window: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that anchors a window at its centre tap.

    Args:
      window: number of taps k >= 1.
      dilation: spacing d >= 1 between taps.

    Returns:
      ``(d * floor((k - 1) / 2), d * ceil((k - 1) / 2))``: the first tap of output
      position ``i`` sits at input ``s*i - before``.
    """
    lo = (window - 1) // 2
    return lo * dilation, (window - 1 - lo) * dilation


def output_size(size: int, window: int, *, stride: int = 1, dilation: int = 1,
                padding: Padding = "zero") -> int:
    """Number of output positions along one axis.

    Args:
      size: input length H >= 1.
      window: window / kernel size k.
      stride: stride s.
      dilation: dilation d.
      padding: padding mode.

    Returns:
      ``ceil(H / s)`` for padded modes; ``floor((H - d*(k-1) - 1) / s) + 1`` for
      ``"valid"`` (may be <= 0 when the window does not fit).
    """
    if padding == "valid":
        return (size - dilation * (window - 1) - 1) // stride + 1
    return -(-size // stride)


def _validate_padding(padding, x, window, dilation, op_name):
    check_choice("padding", padding, PADDING_MODES)
    h, w = x.shape[1], x.shape[2]
    for axis, size, k, d in ((1, h, window[0], dilation[0]),
                             (2, w, window[1], dilation[1])):
        ext = d * (k - 1) + 1
        if padding == "valid" and size < ext:
            raise ValueError(
                f"{op_name}: with `padding`='valid' the spatial size {size} of `x` "
                f"(axis {axis}) must be at least the dilated window extent "
                f"{ext} (window {k}, dilation {d}); got x.shape={tuple(x.shape)}.")
        if padding == "reflect":
            lo, hi = window_pads(k, d)
            if max(lo, hi) >= size:
                raise ValueError(
                    f"{op_name}: `padding`='reflect' needs a pad smaller than the "
                    f"spatial size of `x`, but axis {axis} has size {size} and the "
                    f"window {k} with dilation {d} needs a pad of {max(lo, hi)}. "
                    f"Use padding='circular' or 'zero', or a larger input.")


def pad(x, window, *, dilation=1, padding: Padding = "zero", value=0.0):
    """Pads the spatial axes of ``x`` for a centred window of the given size.

    Args:
      x: array, shape [N, H, W, C].
      window: k or (kh, kw).
      dilation: d or (dh, dw).
      padding: ``"zero"`` (constant ``value``), ``"circular"``, ``"reflect"`` or
        ``"valid"`` (no padding).
      value: fill value of ``"zero"`` padding.

    Returns:
      array, shape [N, H + dh*(kh-1), W + dw*(kw-1), C] (unchanged for "valid").
    """
    window = as_pair("window", window)
    dilation = as_pair("dilation", dilation)
    x = check_nhwc("x", x)
    check_nonempty("x", x, (1, 2))
    _validate_padding(padding, x, window, dilation, "pad")
    return _pad(x, window, dilation, padding, value)


def _pad(x, window, dilation, padding, value=0.0):
    if padding == "valid":
        return x
    ph = window_pads(window[0], dilation[0])
    pw = window_pads(window[1], dilation[1])
    widths = ((0, 0), ph, pw, (0, 0))
    if padding == "zero":
        return jnp.pad(x, widths, mode="constant", constant_values=value)
    # One concatenate per axis (jnp.pad chains one per side and pixel, and its
    # transpose is then about 4x slower in training).
    for axis, (lo, hi) in ((1, ph), (2, pw)):
        x = _wrap_axis(x, axis, lo, hi, padding)
    return x


def _wrap_axis(x, axis, lo, hi, padding):
    if lo == hi == 0:
        return x
    n = x.shape[axis]
    sl = functools.partial(lax.slice_in_dim, x, axis=axis)
    if padding == "circular":     # 1234 -> 34|1234|12 (pads may exceed n)
        reps = -(-max(lo, hi) // n)
        if reps > 1:
            x = lax.concatenate([x] * (2 * reps + 1), axis)
            return lax.slice_in_dim(x, reps * n - lo, (reps + 1) * n + hi, axis=axis)
        parts = [sl(n - lo, n), x, sl(0, hi)]
    else:                         # reflect: 1234 -> 32|1234|32 (pads < n)
        parts = [lax.rev(sl(1, lo + 1), (axis,)), x,
                 lax.rev(sl(n - 1 - hi, n - 1), (axis,))]
    return lax.concatenate([p for p in parts if p.shape[axis]], axis)


def _check_inputs(x, stride, dilation, padding):
    # options first: a bad option fails before x is converted or copied
    stride = as_pair("stride", stride)
    dilation = as_pair("dilation", dilation)
    check_choice("padding", padding, PADDING_MODES)
    x = check_nhwc("x", x)
    x = check_float_array("x", x)
    check_nonempty("x", x, (1, 2))
    return x, stride, dilation


def conv(x, kernel, *, stride=1, dilation=1, padding: Padding = "zero"):
    """2-D cross-correlation (a Flax/PyTorch "convolution") with explicit anchoring.

    Grouped and depthwise convolutions follow from the kernel's input-channel
    count: ``groups = C_in / kernel.shape[2]``.

    Args:
      x: float array, shape [N, H, W, C_in] (NHWC).
      kernel: float array, shape [kh, kw, C_in / groups, C_out] (HWIO); C_out must
        be divisible by groups.
      stride: s or (sh, sw), positive ints.
      dilation: d or (dh, dw): spacing of the kernel taps ("à trous").
      padding: ``"zero"``, ``"circular"``, ``"reflect"`` or ``"valid"``.

    Returns:
      array, shape [N, ceil(H/sh), ceil(W/sw), C_out] (padded modes), with
      ``out[:, i, j] = sum_{a,b} kernel[a, b] . x[:, sh*i + dh*(a - (kh-1)//2),
      sw*j + dw*(b - (kw-1)//2)]`` and ``conv(x, k, stride=s) == conv(x, k)[:, ::s,
      ::s]``.

    Raises:
      ValueError: wrong ranks, channel mismatch, bad stride/dilation/padding.
      TypeError: non-float ``x`` or ``kernel``.

    Examples:
      >>> import jax.numpy as jnp, sigcnn as sc
      >>> x = jnp.arange(8.0).reshape(1, 1, 8, 1)
      >>> k = jnp.array([1.0, 0.0, -1.0]).reshape(1, 3, 1, 1)
      >>> sc.conv(x, k, stride=2, padding="circular")[0, 0, :, 0]
      Array([ 6., -2., -2., -2.], dtype=float32)
    """
    x, stride, dilation = _check_inputs(x, stride, dilation, padding)
    kernel = check_float_array("kernel", kernel)
    if kernel.ndim != 4:
        raise ValueError(
            f"`kernel` must have rank 4 and layout [kh, kw, C_in/groups, C_out] "
            f"(HWIO); got shape {tuple(kernel.shape)}.")
    kh, kw, kin, kout = kernel.shape
    cin = x.shape[3]
    if cin == 0:
        raise ValueError(
            f"`x` must have at least one channel for a convolution; got shape "
            f"{tuple(x.shape)} (C_in = 0).")
    if kh < 1 or kw < 1:
        raise ValueError(
            f"`kernel` must have at least one tap per spatial axis; got shape "
            f"{tuple(kernel.shape)}.")
    if kin < 1 or cin % kin or kout % (cin // kin):
        raise ValueError(
            f"`kernel` shape {tuple(kernel.shape)} does not fit `x` with {cin} "
            f"channels: kernel.shape[2] must divide C_in={cin} (groups = C_in / "
            f"kernel.shape[2]) and groups must divide C_out={kout}. Is `x` NHWC "
            f"and `kernel` HWIO?")
    _validate_padding(padding, x, (kh, kw), dilation, "conv")
    dtype = jnp.result_type(x.dtype, kernel.dtype)   # lax needs equal dtypes
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    xp = _pad(x, (kh, kw), dilation, padding)
    return conv_valid(xp, kernel, stride, dilation, cin // kin)


def _pool(x, window, stride, dilation, padding, kind, op_name):
    window = as_pair("window", window)
    x, stride, dilation = _check_inputs(x, stride, dilation, padding)
    _validate_padding(padding, x, window, dilation, op_name)
    xp = _pad(x, window, dilation, padding)
    dims = (1, window[0], window[1], 1)
    strides = (1, stride[0], stride[1], 1)
    wdil = (1, dilation[0], dilation[1], 1)
    if kind == "max":
        return max_window(xp, dims, strides, wdil)
    total = lax.reduce_window(xp, np.array(0, xp.dtype), lax.add, dims, strides,
                              "VALID", window_dilation=wdil)
    return total / (window[0] * window[1])


def max_pool(x, *, window, stride, dilation=1, padding: Padding = "zero"):
    """Max pooling with explicit anchoring (see module docstring).

    Args:
      x: float array, shape [N, H, W, C].
      window: k or (kh, kw).
      stride: s or (sh, sw).
      dilation: d or (dh, dw): spacing of the pooled taps.
      padding: ``"zero"`` (pads with 0), ``"circular"``, ``"reflect"``,
        ``"valid"``.

    Returns:
      array, shape [N, ceil(H/sh), ceil(W/sw), C] (padded modes), with
      ``max_pool(x, window=k, stride=s) == max_pool(x, window=k, stride=1)[:, ::s,
      ::s]``.

    Examples:
      The 1-D example of Zhang (2019): a one-pixel shift changes the pooled output.

      >>> import jax.numpy as jnp, sigcnn as sc
      >>> x = jnp.array([0., 0., 1., 1., 0., 0., 1., 1.]).reshape(1, 1, 8, 1)
      >>> sc.max_pool(x, window=(1, 2), stride=(1, 2))[0, 0, :, 0]
      Array([0., 1., 0., 1.], dtype=float32)
      >>> sc.max_pool(jnp.roll(x, 1, axis=2), window=(1, 2), stride=(1, 2))[0, 0, :, 0]
      Array([1., 1., 1., 1.], dtype=float32)

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    return _pool(x, window, stride, dilation, padding, "max", "max_pool")


def avg_pool(x, *, window, stride, dilation=1, padding: Padding = "zero"):
    """Average pooling: the mean of a ``kh x kw`` window (padded values included).

    Args:
      x: float array, shape [N, H, W, C].
      window: k or (kh, kw).
      stride: s or (sh, sw).
      dilation: d or (dh, dw).
      padding: ``"zero"``, ``"circular"``, ``"reflect"``, ``"valid"``.

    Returns:
      array, shape [N, ceil(H/sh), ceil(W/sw), C] (padded modes). It is a linear
      filter, equal to ``conv`` with a box kernel of weight ``1 / (kh*kw)``.
    """
    return _pool(x, window, stride, dilation, padding, "avg", "avg_pool")


def binomial_filter(size: int) -> np.ndarray:
    """Normalised 1-D binomial filter ``C(size-1, j) / 2**(size-1)``.

    Args:
      size: number of taps, 1 to 7 (1: identity, 2: [1, 1]/2 "Rect-2",
        3: [1, 2, 1]/4 "Tri-3", 5: [1, 4, 6, 4, 1]/16 "Bin-5").

    Returns:
      float64 NumPy array, shape [size], summing to 1. Its frequency response is
      ``|cos(pi f)|**(size - 1)``.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) \
            or not 1 <= size <= 7:
        raise ValueError(
            f"`size` must be an int from 1 to 7 (binomial filter taps); got "
            f"{size!r}.")
    return np.array([math.comb(size - 1, j) for j in range(size)],
                    np.float64) / 2 ** (size - 1)


def blur_pool(x, *, size=3, stride=2, dilation=1, padding: Padding = "reflect"):
    """BlurPool: binomial low-pass filter, then subsampling (Zhang, 2019).

    The 2-D filter is the outer product of ``binomial_filter(size)`` with itself,
    applied per channel. It is computed as two passes of strided slice sums (much
    faster on CPU than a depthwise convolution; same result).

    Args:
      x: float array, shape [N, H, W, C].
      size: binomial filter taps, 1 to 7 (Zhang's default is 4 since 2020; 3 is
        "Tri-3", 5 is "Bin-5").
      stride: s or (sh, sw); ``stride=1`` gives the undecimated blur.
      dilation: d or (dh, dw): spacing of the filter taps.
      padding: ``"reflect"`` (Zhang's default), ``"zero"``, ``"circular"`` or
        ``"valid"``.

    Returns:
      array, shape [N, ceil(H/sh), ceil(W/sw), C] (padded modes). The frequency
      response of the filter is ``|cos(pi fy)|**(size-1) * |cos(pi fx)|**(size-1)``.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    taps = binomial_filter(size)
    x, stride, dilation = _check_inputs(x, stride, dilation, padding)
    _validate_padding(padding, x, (size, size), dilation, "blur_pool")
    xp = _pad(x, (size, size), dilation, padding)
    h, w = x.shape[1], x.shape[2]
    ho = output_size(h, size, dilation=dilation[0], padding=padding)
    wo = output_size(w, size, dilation=dilation[1], padding=padding)
    # Blur at stride 1, then decimate once: the strided slice is then visibly
    # the subsampling of the blurred signal (sigcnn.decimation_points sees it).
    taps = tuple(float(t) for t in taps)
    y = tap_sum(xp, taps, 1, dilation[0], ho)
    y = tap_sum(y, taps, 2, dilation[1], wo)
    if stride == (1, 1):
        return y
    return lax.slice(y, (0, 0, 0, 0), y.shape, (1, stride[0], stride[1], 1))


def polyphase(x, stride):
    """Splits ``x`` into its ``sy x sx`` polyphase components.

    Args:
      x: array, shape [N, H, W, C], with H divisible by sy and W by sx.
      stride: s or (sy, sx).

    Returns:
      array, shape [N, sy, sx, H/sy, W/sx, C], with
      ``out[:, py, px] == x[:, py::sy, px::sx]``.

    Raises:
      ValueError: if the stride does not divide the spatial size.

    Examples:
      >>> import jax.numpy as jnp, sigcnn as sc
      >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
      >>> sc.polyphase(x, (1, 2))[0, 0, :, 0, :, 0]
      Array([[0., 2.],
             [1., 3.]], dtype=float32)

    References:
      Vaidyanathan, "Multirate Systems and Filter Banks", 1993, ch. 4.
    """
    x = check_nhwc("x", x)
    sy, sx = as_pair("stride", stride)
    n, h, w, c = x.shape
    if h % sy or w % sx:
        raise ValueError(
            f"`stride` {(sy, sx)} must divide the spatial size (H, W) = {(h, w)} "
            f"of `x` for a polyphase split; crop or pad `x` first.")
    y = jnp.reshape(x, (n, h // sy, sy, w // sx, sx, c))
    return jnp.transpose(y, (0, 2, 4, 1, 3, 5))


def unpolyphase(components):
    """Inverse of :func:`polyphase`: interleaves polyphase components.

    Args:
      components: array, shape [N, sy, sx, H', W', C].

    Returns:
      array x, shape [N, sy*H', sx*W', C], with ``x[:, py::sy, px::sx] ==
      components[:, py, px]``.
    """
    if not hasattr(components, "ndim"):
        components = np.asarray(components)
    if components.ndim != 6:
        raise ValueError(
            f"`components` must have rank 6 and layout [N, sy, sx, H', W', C]; "
            f"got shape {tuple(np.shape(components))}.")
    n, sy, sx, h, w, c = components.shape
    y = jnp.transpose(components, (0, 3, 1, 4, 2, 5))
    return jnp.reshape(y, (n, h * sy, w * sx, c))


def _as_cutoff_pair(cutoff):
    vals = cutoff if isinstance(cutoff, (tuple, list)) else (cutoff, cutoff)
    ok = len(vals) == 2
    if ok:
        try:
            vals = tuple(float(v) for v in vals)
        except (TypeError, ValueError):
            ok = False
    if not ok or not all(0.0 < v <= 0.5 for v in vals):
        raise ValueError(
            f"`cutoff` must be a frequency in (0, 0.5] cycles/pixel or a pair "
            f"(fy, fx) of them; got {cutoff!r}.")
    return vals


def lowpass_mask(shape, cutoff) -> np.ndarray:
    """Boolean mask of the open box ``|fy| < cy and |fx| < cx`` on the DFT grid.

    Args:
      shape: (H, W).
      cutoff: c or (cy, cx) in cycles/pixel.

    Returns:
      bool NumPy array, shape [H, W], in ``np.fft.fftfreq`` order.
    """
    cy, cx = _as_cutoff_pair(cutoff)
    fy = np.abs(np.fft.fftfreq(shape[0]))
    fx = np.abs(np.fft.fftfreq(shape[1]))
    return (fy[:, None] < cy) & (fx[None, :] < cx)


def ideal_lowpass(x, *, cutoff):
    """Ideal (FFT) low-pass filter on the periodic grid.

    Keeps the DFT bins strictly inside the box ``|fy| < cy, |fx| < cx`` and zeroes
    the rest, including bins exactly at the cutoff. With ``cutoff = 1 / (2 s)`` the
    result has no energy at or above the Nyquist frequency of the ``s``-grid, so
    ``aliasing_ratio(ideal_lowpass(x, cutoff=1/(2*s)), s) == 0``.

    Args:
      x: float array, shape [N, H, W, C].
      cutoff: c or (cy, cx), in (0, 0.5] cycles/pixel.

    Returns:
      float array, shape [N, H, W, C], dtype of x (float16 / bfloat16 x is
      filtered in float32 and cast back).

    Raises:
      ValueError: if x is not rank 4, has H = 0 or W = 0, holds NaN/Inf
        (concrete x only: one NaN would spread over the whole image), or
        `cutoff` is invalid.
      TypeError: if x is not a real float array.
    """
    x = check_float_array("x", x)
    x = check_nhwc("x", x)
    check_nonempty("x", x, (1, 2))
    h, w = x.shape[1], x.shape[2]
    mask = lowpass_mask((h, w), cutoff)
    check_finite("x", x)   # one NaN would spread over the whole image
    spec = jnp.fft.fft2(x, axes=(1, 2))
    out = jnp.fft.ifft2(spec * jnp.asarray(mask)[None, :, :, None], axes=(1, 2))
    return jnp.real(out).astype(x.dtype)
