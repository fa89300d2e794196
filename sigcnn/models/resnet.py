"""ResNets (He et al., 2016) in torchvision's layout (v1.5), in Flax NNX.

Inputs are NHWC ``[N, H, W, C]``. Stem: conv (7x7, stride 2, no bias) - batch
norm - ReLU - 3x3 max pool of stride 2; then stages of basic (two 3x3 convs) or
bottleneck (1x1, 3x3, 1x1 with expansion 4) blocks, the first block of every
stage but the first of stride 2, carried by its 3x3 conv (torchvision v1.5), with
a 1x1 projection + batch norm on the shortcut where the shape changes; then
global average pooling and a linear layer. At width 1.0 with 1000 classes
ResNet18/34/50 have 11,689,512 / 21,797,672 / 25,557,032 parameters (batch-norm
scale and bias count; running statistics are state, not parameters), exactly as
torchvision's.

Downsampling modes (see :mod:`sigcnn.models.layers`):

* ``"max"``: the plain network.
* ``"stride"``: the stem max pool is dropped and its stride moves onto the stem
  conv (stride 4 in the torchvision stem); blocks as in ``"max"``.
* ``"blur"``: Zhang's antialiased ResNet (his default ``pool_only=True``): the
  stem conv keeps its stride; the stem pool becomes MaxPool(2, 1) + BlurPool; in
  a strided block the 3x3 conv runs at stride 1 and BlurPool follows its ReLU,
  i.e. *after* the formerly strided conv and *before* the next conv (basic block:
  conv1 - BN - ReLU - BlurPool - conv2; bottleneck: conv2 - BN - ReLU - BlurPool -
  conv3); the projection shortcut becomes BlurPool + 1x1 conv of stride 1.
* ``"aps"``: adaptive polyphase sampling (Chaman & Dokmanić) at the places
  where ``"blur"`` blurs and subsamples, and also after the stem conv (run at
  stride 1), so that nothing subsamples at a fixed phase; the shortcut reuses the
  phase chosen on its block's main path.
* ``"none"``: the ``"max"`` network undecimated (stride 1 everywhere, later
  convs and pools dilated by the cumulative stride).

References:
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR
  2016.
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
  Chaman & Dokmanić, "Truly Shift-Invariant Convolutional Neural Networks",
  CVPR 2021.
"""

from __future__ import annotations

import collections
import functools
import numbers

import jax
import jax.numpy as jnp
from flax import nnx

from sigcnn._checks import check_choice, check_positive_int
from sigcnn.models._base import (
    ZooModel,
    check_bool,
    check_dtype,
    check_num_classes,
)
from sigcnn.models.layers import (
    Conv,
    Sampling,
    batch_norm,
    check_width,
    global_avg_pool,
    lecun_normal,
    scale_width,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "RESNET_BLOCKS",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet_small",
    "resnet_tiny",
]

RESNET_BLOCKS = ("basic", "bottleneck")


def _batch_norm(c, param_dtype, rngs):
    return batch_norm(c, param_dtype=param_dtype, rngs=rngs)


def _next_dilation(sampling: Sampling, d: int, s: int) -> int:
    return d * s if not sampling.decimate else 1


class BasicBlock(nnx.Module):
    """Two 3x3 convs with batch norm and a residual connection.

    Args:
      in_features: C_in.
      planes: C_out.
      stride: stride of the block (on its first conv) in the base layout.
      dilation: dilation of the block's input (1 unless undecimated).
      sampling: the :class:`Sampling` rules.
      param_dtype: parameter dtype.
      rngs: :class:`flax.nnx.Rngs`.
    """

    expansion = 1

    def __init__(self, in_features: int, planes: int, *, stride: int,
                 dilation: int, sampling: Sampling, param_dtype, rngs: nnx.Rngs):
        self.stride = stride
        self.dilation = dilation
        self.sampling = sampling
        self.conv1 = Conv(in_features, planes, 3, use_bias=False,
                          param_dtype=param_dtype, rngs=rngs)
        self.bn1 = _batch_norm(planes, param_dtype, rngs)
        self.conv2 = Conv(planes, planes, 3, use_bias=False,
                          param_dtype=param_dtype, rngs=rngs)
        self.bn2 = _batch_norm(planes, param_dtype, rngs)
        if stride != 1 or in_features != planes:
            self.proj = Conv(in_features, planes, 1, use_bias=False,
                             param_dtype=param_dtype, rngs=rngs)
            self.proj_bn = _batch_norm(planes, param_dtype, rngs)
        else:
            self.proj = None
            self.proj_bn = None

    def __call__(self, x):
        """Args: x [N, H, W, C_in]. Returns: [N, ceil(H/s), ceil(W/s), C_out]."""
        samp, s, d = self.sampling, self.stride, self.dilation
        h = jax.nn.relu(self.bn1(samp.conv(self.conv1, x, s=s, d=d)))
        h, index = samp.subsample(h, s=s, d=d)
        h = self.bn2(samp.conv(self.conv2, h, d=_next_dilation(samp, d, s)))
        if self.proj is None:
            shortcut = x
        else:
            shortcut = self.proj_bn(
                samp.project(self.proj, x, s=s, d=d, index=index))
        return jax.nn.relu(h + shortcut)


class Bottleneck(nnx.Module):
    """1x1 - 3x3 (strided) - 1x1 convs (expansion 4) with batch norm and a residual.

    Args:
      in_features: C_in.
      planes: width of the inner convs; C_out = 4 * planes.
      stride: stride of the block (on its 3x3 conv) in the base layout.
      dilation: dilation of the block's input (1 unless undecimated).
      sampling: the :class:`Sampling` rules.
      param_dtype: parameter dtype.
      rngs: :class:`flax.nnx.Rngs`.
    """

    expansion = 4

    def __init__(self, in_features: int, planes: int, *, stride: int,
                 dilation: int, sampling: Sampling, param_dtype, rngs: nnx.Rngs):
        out = planes * self.expansion
        self.stride = stride
        self.dilation = dilation
        self.sampling = sampling
        self.conv1 = Conv(in_features, planes, 1, use_bias=False,
                          param_dtype=param_dtype, rngs=rngs)
        self.bn1 = _batch_norm(planes, param_dtype, rngs)
        self.conv2 = Conv(planes, planes, 3, use_bias=False,
                          param_dtype=param_dtype, rngs=rngs)
        self.bn2 = _batch_norm(planes, param_dtype, rngs)
        self.conv3 = Conv(planes, out, 1, use_bias=False,
                          param_dtype=param_dtype, rngs=rngs)
        self.bn3 = _batch_norm(out, param_dtype, rngs)
        if stride != 1 or in_features != out:
            self.proj = Conv(in_features, out, 1, use_bias=False,
                             param_dtype=param_dtype, rngs=rngs)
            self.proj_bn = _batch_norm(out, param_dtype, rngs)
        else:
            self.proj = None
            self.proj_bn = None

    def __call__(self, x):
        """Args: x [N, H, W, C_in]. Returns: [N, ceil(H/s), ceil(W/s), 4*planes]."""
        samp, s, d = self.sampling, self.stride, self.dilation
        h = jax.nn.relu(self.bn1(samp.conv(self.conv1, x, d=d)))
        h = jax.nn.relu(self.bn2(samp.conv(self.conv2, h, s=s, d=d)))
        h, index = samp.subsample(h, s=s, d=d)
        h = self.bn3(samp.conv(self.conv3, h, d=_next_dilation(samp, d, s)))
        if self.proj is None:
            shortcut = x
        else:
            shortcut = self.proj_bn(
                samp.project(self.proj, x, s=s, d=d, index=index))
        return jax.nn.relu(h + shortcut)


class ResNet(ZooModel):
    """ResNet: stem, stages of residual blocks, global average pool, linear.

    Args:
      block: ``"basic"`` or ``"bottleneck"``.
      depths: number of blocks per stage, e.g. (3, 4, 6, 3).
      widths: planes of each stage at width 1.0 (one per entry of `depths`).
      stem_channels: channels of the stem conv at width 1.0.
      stem_kernel: kernel size of the stem conv.
      stem_stride: stride of the stem conv.
      stem_pool: whether the stem ends with a 3x3 max pool of stride 2.
      num_classes: number of logits.
      in_channels: C of the input.
      width: channel multiplier; each count becomes ``max(1, round(c * width))``.
      padding: ``"zero"`` or ``"circular"``, for every conv and pool.
      downsample: ``"max"``, ``"stride"``, ``"blur"``, ``"aps"`` or ``"none"``
        (see the module docstring).
      blur_size: binomial filter taps for ``"blur"``, 1 to 7.
      undecimated: undecimate the chosen layout.
      param_dtype: parameter dtype.
      rngs: :class:`flax.nnx.Rngs` for the initialisation.

    Raises:
      ValueError / TypeError: bad options, naming the argument.
    """

    def __init__(self, block: str, depths, *, widths=(64, 128, 256, 512),
                 stem_channels: int = 64, stem_kernel: int = 7,
                 stem_stride: int = 2, stem_pool: bool = True,
                 num_classes: int = 1000, in_channels: int = 3,
                 width: float = 1.0, padding: str = "zero",
                 downsample: str = "max", blur_size: int = 4,
                 undecimated: bool = False, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        check_choice("block", block, RESNET_BLOCKS)
        depths = _int_tuple("depths", depths)
        widths = _int_tuple("widths", widths)
        if len(widths) != len(depths):
            raise ValueError(
                f"`widths` must have one entry per stage of `depths` "
                f"({len(depths)}); got widths={widths!r}.")
        stem_channels = check_positive_int("stem_channels", stem_channels)
        stem_kernel = check_positive_int("stem_kernel", stem_kernel)
        stem_stride = check_positive_int("stem_stride", stem_stride)
        stem_pool = check_bool("stem_pool", stem_pool)
        num_classes = check_num_classes(num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        width = check_width(width)
        param_dtype = check_dtype(param_dtype)
        samp = Sampling(downsample=downsample, padding=padding,
                        blur_size=blur_size, undecimated=undecimated)
        self.sampling = samp
        self.config = (
            ("block", block), ("depths", depths), ("widths", widths),
            ("stem_channels", stem_channels), ("stem_kernel", stem_kernel),
            ("stem_stride", stem_stride), ("stem_pool", stem_pool),
            ("num_classes", num_classes), ("in_channels", in_channels),
            ("width", width), ("padding", padding), ("downsample", downsample),
            ("blur_size", blur_size), ("undecimated", undecimated),
            ("param_dtype", param_dtype))
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem_stride = stem_stride
        self.stem_pool = stem_pool

        c0 = scale_width(stem_channels, width)
        self.stem_conv = Conv(in_channels, c0, stem_kernel, use_bias=False,
                              param_dtype=param_dtype, rngs=rngs)
        self.stem_bn = _batch_norm(c0, param_dtype, rngs)
        cum = stem_stride * (2 if stem_pool else 1)
        strides = [("stem", cum)]
        block_cls = BasicBlock if block == "basic" else Bottleneck
        stages = []
        cin = c0
        for i, (depth, planes) in enumerate(zip(depths, widths)):
            planes = scale_width(planes, width)
            blocks = []
            for j in range(depth):
                s = 2 if (i > 0 and j == 0) else 1
                blocks.append(block_cls(
                    cin, planes, stride=s, dilation=samp.input_dilation(cum),
                    sampling=samp, param_dtype=param_dtype, rngs=rngs))
                cin = planes * block_cls.expansion
                cum *= s
            stages.append(nnx.List(blocks))
            strides.append((f"block{i + 1}", cum))
        self.stages = nnx.List(stages)
        self._nominal_strides = tuple(strides)
        self.fc = nnx.Linear(cin, num_classes, kernel_init=lecun_normal,
                             param_dtype=param_dtype, rngs=rngs)

    def taps(self, x) -> collections.OrderedDict:
        """Outputs of the stem and of every stage.

        Args:
          x: float array, shape [N, H, W, in_channels].

        Returns:
          OrderedDict ``{"stem": ..., "block1": ..., "blockK": ...}`` (in order; the
          last is the pre-head map); each of shape [N, ceil(H/S), ceil(W/S), C]
          with S its entry of :meth:`tap_strides`.

        Raises:
          ValueError / TypeError: if `x` is not a float NHWC array with
            ``in_channels`` channels.
        """
        x = self._check_input(x)
        samp = self.sampling
        s0 = self.stem_stride
        if self.stem_pool and samp.layout == "stride":
            s0 *= 2
        # Zhang keeps the stem conv strided (pool_only=True); APS does not.
        x = samp.conv(self.stem_conv, x, s=s0, d=1, antialias=False)
        x = jax.nn.relu(self.stem_bn(x))
        x, _ = samp.subsample(x, s=s0, d=1, antialias=False)
        if self.stem_pool:
            x = samp.pool(x, window=3, s=2, d=samp.input_dilation(self.stem_stride),
                          antialias_window=2)
        out = collections.OrderedDict(stem=x)
        for i, stage in enumerate(self.stages):
            for blk in stage:
                x = blk(x)
            out[f"block{i + 1}"] = x
        return out

    def __call__(self, x):
        """Logits.

        Args:
          x: float array, shape [N, H, W, in_channels].

        Returns:
          array, shape [N, num_classes].
        """
        feats = list(self.taps(x).values())[-1]
        return self.fc(global_avg_pool(feats))


def _int_tuple(name, value):
    ok = isinstance(value, (tuple, list)) and len(value) > 0 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
        for v in value)
    if not ok:
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive ints; got "
            f"{value!r}.")
    return tuple(int(v) for v in value)


resnet18 = functools.partial(ResNet, "basic", (2, 2, 2, 2))
resnet34 = functools.partial(ResNet, "basic", (3, 4, 6, 3))
resnet50 = functools.partial(ResNet, "bottleneck", (3, 4, 6, 3))
# CPU-sized: ResNet18's topology at a quarter width with a 3x3 stride-1 stem conv
# (total stride 16), for 28x28 to 64x64 inputs.
resnet_small = functools.partial(
    ResNet, "basic", (2, 2, 2, 2), widths=(16, 32, 64, 128), stem_channels=16,
    stem_kernel=3, stem_stride=1, num_classes=10)
# Test-only: stem 3x3 conv of stride 2 + max pool, two one-block stages of 4 and
# 8 channels; total stride 8.
resnet_tiny = functools.partial(
    ResNet, "basic", (1, 1), widths=(4, 8), stem_channels=4, stem_kernel=3,
    stem_stride=2, num_classes=10)
