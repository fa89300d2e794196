"""Thin layers and the downsampling rules shared by the model zoo.

Arrays are NHWC ``[N, H, W, C]`` and conv kernels HWIO ``[kh, kw, C_in, C_out]``.
Modules here only hold parameters; every numerical step goes through
:mod:`sigcnn.ops` (``conv``, ``max_pool``, ``blur_pool``, ``avg_pool``,
``polyphase``) so that the à trous machinery can follow it. The one exception is
adaptive polyphase sampling (:func:`aps_downsample`), which picks a sampling phase
from the data and therefore has no fixed undecimated form.

:class:`Sampling` turns one of the downsampling modes into concrete calls. A
network is described by its *base layout* (where it subsamples by how much) and
each subsampling site asks :class:`Sampling` how to realise it:

* ``"max"``: the plain layout (strided max pools, strided convs where the base
  network has them).
* ``"stride"``: every max pool is removed and its stride moves onto the conv in
  front of it.
* ``"blur"``: anti-aliasing (Zhang, 2019): MaxPool(k, s) -> MaxPool(k, 1) +
  BlurPool(s); Conv(s) + ReLU -> Conv(1) + ReLU + BlurPool(s); strided 1x1
  projection -> BlurPool(s) + Conv1x1(1).
* ``"aps"``: adaptive polyphase sampling (Chaman & Dokmanić, 2021) wherever
  ``"blur"`` would blur and subsample.
* ``"none"``: reduced subsampling. The ``"max"`` layout with every stride removed
  and every later conv and pool dilated by the cumulative stride in front of it
  (à trous), so every map is the undecimated response r2 of the ``"max"`` network.
  ``undecimated=True`` does the same to the ``"stride"`` and ``"blur"`` layouts.

With these rules the parameter tree does not depend on the mode, so weights move
freely between modes (see :func:`sigcnn.models.variant`), and for every mode but
``"aps"``, with circular padding and spatial sizes divisible by the strides, or
with zero padding and any size::

    decimated.taps(x)[k] == undecimated.taps(x)[k][:, ::S_k, ::S_k]

References:
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
  Chaman & Dokmanić, "Truly Shift-Invariant Convolutional Neural Networks",
  CVPR 2021.
  Holschneider et al., "A real-time algorithm for signal analysis with the help
  of the wavelet transform", 1989 (à trous).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn import ops
from sigcnn._checks import as_pair, check_choice, check_nhwc, check_positive_int

__all__ = [
    "DOWNSAMPLE_MODES",
    "MODEL_PADDINGS",
    "Conv",
    "Sampling",
    "batch_norm",
    "adaptive_avg_pool",
    "aps_downsample",
    "global_avg_pool",
    "he_normal_fan_out",
    "lecun_normal",
    "normal",
    "scale_width",
]

DOWNSAMPLE_MODES = ("max", "stride", "blur", "aps", "none")
MODEL_PADDINGS = ("zero", "circular")
Downsample = Literal["max", "stride", "blur", "aps", "none"]

def _normal(key, shape, dtype, std):
    # Drawn as a 1-D vector and reshaped: XLA on CPU compiles a 1-D random draw
    # about ten times faster than the same draw with a 2-D or 4-D shape.
    n = int(np.prod(shape))
    return (std * jax.random.normal(key, (n,), dtype)).reshape(shape)


def he_normal_fan_out(key, shape, dtype=jnp.float32):
    """He-normal initialiser over the output fan (torchvision's conv init).

    Args:
      key: jax PRNG key.
      shape: HWIO kernel shape [kh, kw, C_in, C_out].
      dtype: float dtype.

    Returns:
      array of `shape`, normal with std ``sqrt(2 / (kh * kw * C_out))``.
    """
    fan_out = int(np.prod(shape[:-2])) * shape[-1]
    return _normal(key, shape, dtype, float(np.sqrt(2.0 / fan_out)))


def lecun_normal(key, shape, dtype=jnp.float32):
    """LeCun-normal initialiser for a dense kernel [in, out]: std 1/sqrt(in)."""
    return _normal(key, shape, dtype, float(1.0 / np.sqrt(shape[0])))


def normal(std: float):
    """Normal initialiser with a fixed std (torchvision's VGG classifier: 0.01)."""
    def init(key, shape, dtype=jnp.float32):
        return _normal(key, shape, dtype, std)
    return init


def scale_width(channels: int, width: float) -> int:
    """Channel count scaled by a width multiplier, rounded half up, at least 1.

    Args:
      channels: channel count at width 1.0.
      width: positive multiplier.

    Returns:
      ``max(1, floor(channels * width + 0.5))``.
    """
    return max(1, int(np.floor(channels * width + 0.5)))


def check_width(width) -> float:
    """Returns `width` as a float, or raises unless it is a positive finite number."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) \
            or not np.isfinite(width) or width <= 0:
        raise ValueError(
            f"`width` must be a positive finite number (channel multiplier); got "
            f"{width!r}.")
    return float(width)


def check_blur_size(blur_size) -> int:
    """Returns `blur_size`, or raises unless it is an int from 1 to 7."""
    if isinstance(blur_size, (bool, np.bool_)) or not isinstance(
            blur_size, (numbers.Integral, np.integer)) or not 1 <= blur_size <= 7:
        raise ValueError(
            f"`blur_size` must be an int from 1 to 7 (binomial filter taps); got "
            f"{blur_size!r}.")
    return int(blur_size)


class Conv(nnx.Module):
    """2-D convolution holding an HWIO kernel; the numerics are :func:`sigcnn.ops.conv`.

    Stride, dilation and padding are arguments of the call, not of the layer, so
    the same parameters serve a strided network and its undecimated twin.

    Args:
      in_features: C_in.
      out_features: C_out.
      kernel_size: k or (kh, kw).
      use_bias: add a learned per-channel bias.
      param_dtype: dtype of the parameters.
      rngs: :class:`flax.nnx.Rngs` for the initialisation (He normal over the
        output fan, zero bias, as in torchvision).

    Raises:
      ValueError / TypeError: non-positive channel counts or kernel size.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size, *,
                 use_bias: bool = True, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        in_features = check_positive_int("in_features", in_features)
        out_features = check_positive_int("out_features", out_features)
        kh, kw = as_pair("kernel_size", kernel_size)
        self.in_features = in_features
        self.out_features = out_features
        self.kernel_size = (kh, kw)
        self.kernel = nnx.Param(he_normal_fan_out(
            rngs.params(), (kh, kw, in_features, out_features), param_dtype))
        self.bias = nnx.Param(jnp.zeros((out_features,), param_dtype)) \
            if use_bias else None

    def __call__(self, x, *, stride=1, dilation=1, padding="zero"):
        """Applies the convolution.

        Args:
          x: float array, shape [N, H, W, C_in].
          stride: s or (sh, sw).
          dilation: d or (dh, dw).
          padding: any mode of :func:`sigcnn.ops.conv`.

        Returns:
          array, shape [N, ceil(H/sh), ceil(W/sw), C_out], in the promoted dtype
          of ``x`` and the kernel.
        """
        kernel = self.kernel[...]
        dtype = jnp.result_type(x.dtype, kernel.dtype)
        y = ops.conv(x.astype(dtype), kernel.astype(dtype), stride=stride,
                     dilation=dilation, padding=padding)
        if self.bias is not None:
            y = y + self.bias[...].astype(dtype)
        return y


def batch_norm(num_features: int, *, param_dtype=jnp.float32,
               rngs: nnx.Rngs) -> nnx.BatchNorm:
    """PyTorch-equivalent batch norm (momentum 0.1 there, 0.9 here; eps 1e-5).

    The running statistics take `param_dtype` too (nnx keeps them in float32
    otherwise). In eval mode (``model.eval()``) it is a per-channel affine map.

    Args:
      num_features: C.
      param_dtype: dtype of the scale, bias and running statistics.
      rngs: :class:`flax.nnx.Rngs`.

    Returns:
      an :class:`flax.nnx.BatchNorm` over the last axis.
    """
    bn = nnx.BatchNorm(num_features, momentum=0.9, epsilon=1e-5,
                       param_dtype=param_dtype, rngs=rngs)
    bn.mean = nnx.BatchStat(jnp.zeros((num_features,), param_dtype))
    bn.var = nnx.BatchStat(jnp.ones((num_features,), param_dtype))
    return bn


def aps_downsample(x, *, stride=2, index=None):
    """Adaptive polyphase sampling: keeps the polyphase component of largest norm.

    Each sample's ``sy x sx`` polyphase components ``x[:, py::sy, px::sx]`` are
    compared by their l2 norm over all channels jointly, and the largest is kept
    (the first on ties). Odd sizes are first padded circularly at the end. A
    circular shift of ``x`` (with even sizes) only permutes the components and
    rolls each of them, so the kept component of the shifted input is a circular
    shift of the kept component of ``x`` (barring ties). A circularly padded
    network that subsamples only this way is therefore exactly shift-invariant
    after global pooling.

    Args:
      x: float array, shape [N, H, W, C].
      stride: s or (sy, sx).
      index: optional int array, shape [N], a phase ``py * sx + px`` chosen
        earlier (e.g. on a block's main path) to reuse here (its shortcut).

    Returns:
      ``(y, index)``: y of shape [N, ceil(H/sy), ceil(W/sx), C] with
      ``y[n] == pad(x)[n, py::sy, px::sx]`` for the phase ``index[n]``, and the
      index, int array of shape [N].

    Raises:
      ValueError: if `x` is not NHWC or `index` has the wrong shape.

    References:
      Chaman & Dokmanić, "Truly Shift-Invariant Convolutional Neural Networks",
      CVPR 2021.
    """
    sy, sx = as_pair("stride", stride)
    x = check_nhwc("x", x)
    n, h, w, c = x.shape
    ph, pw = (-h) % sy, (-w) % sx
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="wrap")
    comps = ops.polyphase(x, (sy, sx))
    comps = comps.reshape((n, sy * sx) + comps.shape[3:])
    if index is None:
        norms = jnp.sum(jnp.square(comps), axis=(2, 3, 4))
        index = jnp.argmax(norms, axis=1)
    elif getattr(index, "shape", None) != (n,):
        raise ValueError(
            f"`index` must be an int array of shape ({n},) (one phase per "
            f"sample); got shape {getattr(index, 'shape', None)}.")
    y = jnp.take_along_axis(comps, index[:, None, None, None, None], axis=1)
    return y[:, 0], index


def global_avg_pool(x):
    """Mean over the spatial axes.

    Args:
      x: array, shape [N, H, W, C].

    Returns:
      array, shape [N, C].
    """
    return jnp.mean(check_nhwc("x", x), axis=(1, 2))


def _bin_matrix(size: int, out: int) -> np.ndarray:
    """[out, size] averaging matrix of PyTorch's adaptive pooling bins."""
    mat = np.zeros((out, size))
    for i in range(out):
        start = (i * size) // out
        stop = -(-((i + 1) * size) // out)
        mat[i, start:stop] = 1.0 / (stop - start)
    return mat


def adaptive_avg_pool(x, *, output_size=7):
    """Adaptive average pooling to a fixed grid, with PyTorch's bins.

    Output cell i along an axis of length H averages the input rows
    ``floor(i*H/n) .. ceil((i+1)*H/n) - 1``, as ``torch.nn.AdaptiveAvgPool2d``
    does. When n divides H this is an average pool with window and stride H/n
    (computed with :func:`sigcnn.ops.avg_pool`); otherwise (e.g. H < n, when
    cells repeat rows) it is a fixed averaging matrix applied to each axis.

    Args:
      x: float array, shape [N, H, W, C].
      output_size: n or (nh, nw).

    Returns:
      array, shape [N, nh, nw, C].
    """
    nh, nw = as_pair("output_size", output_size)
    x = check_nhwc("x", x)
    h, w = x.shape[1], x.shape[2]
    if h % nh == 0 and w % nw == 0:
        win = (h // nh, w // nw)
        return ops.avg_pool(x, window=win, stride=win, padding="valid")
    my = jnp.asarray(_bin_matrix(h, nh), x.dtype)
    mx = jnp.asarray(_bin_matrix(w, nw), x.dtype)
    return jnp.einsum("ih,nhwc,jw->nijc", my, x, mx,
                      precision=jax.lax.Precision.HIGHEST)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How a network realises its subsampling sites (see the module docstring).

    Each method takes the stride ``s`` of the site in the base layout and the
    dilation ``d`` of its input (1 in a decimated network; the cumulative stride
    in front of the site in an undecimated one).

    Attributes:
      downsample: one of ``"max"``, ``"stride"``, ``"blur"``, ``"aps"``,
        ``"none"``.
      padding: ``"zero"`` or ``"circular"``; used by every conv and pool,
        BlurPool included (Zhang pads BlurPool by reflection; a model-wide mode
        keeps circular models exactly equivariant and the à trous identity exact).
      blur_size: binomial filter taps for ``"blur"``, 1 to 7 (default 4, Zhang's
        default since 2020).
      undecimated: remove every stride and dilate later ops instead (implied by
        ``"none"``; not available for ``"aps"``).

    Raises:
      ValueError: unknown mode or padding, bad blur size, or ``"aps"`` with
        ``undecimated=True``.
    """

    downsample: Downsample = "max"
    padding: Literal["zero", "circular"] = "zero"
    blur_size: int = 4
    undecimated: bool = False

    def __post_init__(self):
        check_choice("downsample", self.downsample, DOWNSAMPLE_MODES)
        check_choice("padding", self.padding, MODEL_PADDINGS)
        check_blur_size(self.blur_size)
        if not isinstance(self.undecimated, (bool, np.bool_)):
            raise TypeError(
                f"`undecimated` must be a bool; got {self.undecimated!r}.")
        if self.downsample == "aps" and self.undecimated:
            raise ValueError(
                "`undecimated`=True is not available with `downsample`='aps': "
                "adaptive polyphase sampling picks its phase from the data and has "
                "no fixed undecimated form; got downsample='aps', "
                "undecimated=True.")

    @property
    def layout(self) -> str:
        """The base layout: ``"max"`` for ``"none"``, else the mode itself."""
        return "max" if self.downsample == "none" else self.downsample

    @property
    def decimate(self) -> bool:
        """False when strides are replaced by dilation (``"none"`` or undecimated)."""
        return not (self.undecimated or self.downsample == "none")

    def input_dilation(self, cumulative_stride: int) -> int:
        """Dilation of the ops at a point with the given cumulative stride."""
        return 1 if self.decimate else cumulative_stride

    def _stride(self, s):
        return s if self.decimate else 1

    def conv(self, layer: Conv, x, *, s: int = 1, d: int = 1,
             antialias: bool = True):
        """A conv that subsamples by `s` in the base layout.

        ``"blur"`` (when `antialias`) and ``"aps"`` run it at stride 1 and leave
        the subsampling to :meth:`subsample`, to be called after the activation.
        """
        deferred = s > 1 and (self.layout == "aps"
                              or (self.layout == "blur" and antialias))
        stride = 1 if deferred else self._stride(s)
        return layer(x, stride=stride, dilation=d, padding=self.padding)

    def subsample(self, x, *, s: int = 1, d: int = 1, index=None,
                  antialias: bool = True):
        """The subsampling deferred by :meth:`conv`: BlurPool or APS, else identity.

        Returns:
          ``(y, index)``; index is the APS phase (None in other modes).
        """
        if s == 1:
            return x, index
        if self.layout == "blur" and antialias:
            return ops.blur_pool(x, size=self.blur_size, stride=self._stride(s),
                                 dilation=d, padding=self.padding), index
        if self.layout == "aps":
            return aps_downsample(x, stride=s, index=index)
        return x, index

    def pool(self, x, *, window: int, s: int, d: int = 1,
             antialias_window: int | None = None):
        """A MaxPool(window, s) site of the base layout.

        ``"stride"`` drops it (its stride belongs to the conv in front);
        ``"blur"`` / ``"aps"`` use MaxPool(antialias_window or window, 1) followed
        by BlurPool / APS.
        """
        layout = self.layout
        if layout == "stride":
            return x
        if layout in ("blur", "aps"):
            win = window if antialias_window is None else antialias_window
            x = ops.max_pool(x, window=win, stride=1, dilation=d,
                             padding=self.padding)
            return self.subsample(x, s=s, d=d)[0]
        return ops.max_pool(x, window=window, stride=self._stride(s), dilation=d,
                            padding=self.padding)

    def project(self, layer: Conv, x, *, s: int = 1, d: int = 1, index=None):
        """A (1x1) projection shortcut that subsamples by `s`.

        ``"blur"``: BlurPool(s) then the conv at stride 1 (Zhang's ResNet);
        ``"aps"``: the main path's APS phase `index` reused, then the conv.
        """
        if s > 1 and self.layout in ("blur", "aps"):
            x, _ = self.subsample(x, s=s, d=d, index=index)
            return layer(x, stride=1, dilation=1, padding=self.padding)
        return layer(x, stride=self._stride(s), dilation=d, padding=self.padding)
