"""VGG networks (Simonyan & Zisserman, 2015) in torchvision's layout, in Flax NNX.

Inputs are NHWC ``[N, H, W, C]``. Each stage is a run of 3x3 convs (bias, ReLU,
optionally batch norm before the ReLU) closed by a 2x2 max pool of stride 2, so
stage k's output has cumulative stride 2**k. Two heads:

* ``"classifier"`` (torchvision): adaptive average pool to 7x7, flatten in
  channel-major (NCHW) order, Linear(C*49, 4096) - ReLU - Dropout -
  Linear(4096, 4096) - ReLU - Dropout - Linear(4096, num_classes). At width 1.0
  with 1000 classes VGG11/13/16 have 132,863,336 / 133,047,848 / 138,357,544
  parameters, exactly as torchvision's.
* ``"gap"``: global average pool, then Linear(C, num_classes).

In an undecimated model (``downsample="none"`` or ``undecimated=True``) the head
reads the full-resolution last map: global pooling then averages every phase,
and the 7x7 adaptive pool bins the full map.

Torchvision weights map one to one: conv kernels are HWIO here (OIHW there,
transpose (2, 3, 1, 0)) and linear kernels [in, out] (transpose of ``weight``).

References:
  Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015.
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (``downsample="blur"``).
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
    adaptive_avg_pool,
    check_width,
    global_avg_pool,
    lecun_normal,
    normal,
    scale_width,
)
from sigcnn.models.layers import (
    batch_norm as _batch_norm,
)

__all__ = [
    "VGG",
    "VGG_HEADS",
    "VGG_STAGES",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg_small",
    "vgg_tiny",
]

VGG_HEADS = ("classifier", "gap")

# Channels of the convs of each stage (torchvision configurations A, B, D).
VGG_STAGES = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
              (512, 512, 512)),
    # CPU-sized: four stages, total stride 16, for 28x28 to 64x64 inputs.
    "vgg_small": ((32,), (64,), (128,), (256,)),
    # Test-only: two stages of 4 and 8 channels, total stride 4.
    "vgg_tiny": ((4,), (8,)),
}

_CLASSIFIER_INIT = normal(0.01)  # torchvision's init of the classifier


def _check_stages(stages):
    ok = isinstance(stages, (tuple, list)) and len(stages) > 0 and all(
        isinstance(st, (tuple, list)) and len(st) > 0 and all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and c > 0
            for c in st) for st in stages)
    if not ok:
        raise ValueError(
            f"`stages` must be a non-empty sequence of non-empty sequences of "
            f"positive channel counts, e.g. ((64,), (128,)); got {stages!r}.")
    return tuple(tuple(int(c) for c in st) for st in stages)


class VGG(ZooModel):
    """VGG: stages of 3x3 convs, each closed by a 2x2 stride-2 max pool.

    Downsampling (``downsample``, see :mod:`sigcnn.models.layers`): ``"max"``
    the plain network; ``"stride"`` drops the pools and gives the last conv of
    each stage stride 2; ``"blur"`` MaxPool(2, 1) + BlurPool(blur_size, 2)
    (Zhang's antialiased VGG); ``"aps"`` MaxPool(2, 1) + adaptive polyphase
    sampling; ``"none"`` the ``"max"`` network undecimated (pools at stride 1,
    later convs and pools dilated by the cumulative stride).

    Args:
      stages: channels of the convs of each stage at width 1.0, e.g.
        ``VGG_STAGES["vgg16"]``.
      num_classes: number of logits.
      in_channels: C of the input.
      width: channel multiplier (also scales the classifier's hidden size); each
        count becomes ``max(1, round(c * width))``.
      head: ``"classifier"`` (torchvision) or ``"gap"``.
      hidden: hidden size of the ``"classifier"`` head at width 1.0.
      batch_norm: batch norm between each conv and its ReLU (torchvision
        ``vgg*_bn``).
      dropout: dropout rate of the ``"classifier"`` head (train mode only).
      padding: ``"zero"`` or ``"circular"``, for every conv and pool.
      downsample: ``"max"``, ``"stride"``, ``"blur"``, ``"aps"`` or ``"none"``.
      blur_size: binomial filter taps for ``"blur"``, 1 to 7.
      undecimated: undecimate the chosen layout (see :class:`Sampling`).
      param_dtype: parameter dtype.
      rngs: :class:`flax.nnx.Rngs` for the initialisation (and dropout).

    Raises:
      ValueError / TypeError: bad options, naming the argument.
    """

    def __init__(self, stages, *, num_classes: int = 1000, in_channels: int = 3,
                 width: float = 1.0, head: str = "classifier", hidden: int = 4096,
                 batch_norm: bool = False, dropout: float = 0.5,
                 padding: str = "zero", downsample: str = "max",
                 blur_size: int = 4, undecimated: bool = False,
                 param_dtype=jnp.float32, rngs: nnx.Rngs):
        stages = _check_stages(stages)
        num_classes = check_num_classes(num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        width = check_width(width)
        check_choice("head", head, VGG_HEADS)
        hidden = check_positive_int("hidden", hidden)
        batch_norm = check_bool("batch_norm", batch_norm)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be a rate in [0, 1); got {dropout!r}.")
        param_dtype = check_dtype(param_dtype)
        self.sampling = Sampling(downsample=downsample, padding=padding,
                                 blur_size=blur_size, undecimated=undecimated)
        self.config = (
            ("stages", stages), ("num_classes", num_classes),
            ("in_channels", in_channels), ("width", width), ("head", head),
            ("hidden", hidden), ("batch_norm", batch_norm),
            ("dropout", float(dropout)), ("padding", padding),
            ("downsample", downsample), ("blur_size", blur_size),
            ("undecimated", undecimated), ("param_dtype", param_dtype))
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.head = head
        self.stages = tuple(tuple(scale_width(c, width) for c in st)
                            for st in stages)
        self._nominal_strides = tuple(
            (f"block{i + 1}", 2 ** (i + 1)) for i in range(len(stages)))

        convs, norms = [], []
        cin = in_channels
        for st in self.stages:
            for c in st:
                convs.append(Conv(cin, c, 3, param_dtype=param_dtype, rngs=rngs))
                if batch_norm:
                    norms.append(_batch_norm(c, param_dtype=param_dtype,
                                             rngs=rngs))
                cin = c
        self.convs = nnx.List(convs)
        self.norms = nnx.List(norms)
        if head == "gap":
            self.fc = nnx.Linear(cin, num_classes, kernel_init=lecun_normal,
                                 param_dtype=param_dtype, rngs=rngs)
        else:
            hid = scale_width(hidden, width)
            dims = (cin * 49, hid, hid, num_classes)
            self.classifier = nnx.List([
                nnx.Linear(a, b, kernel_init=_CLASSIFIER_INIT,
                           param_dtype=param_dtype, rngs=rngs)
                for a, b in zip(dims[:-1], dims[1:])])
            self.dropout = nnx.Dropout(float(dropout), rngs=rngs)

    def taps(self, x) -> collections.OrderedDict:
        """Outputs of the stages.

        Args:
          x: float array, shape [N, H, W, in_channels].

        Returns:
          OrderedDict ``{"block1": ..., "blockK": ...}`` (in order; the last is the
          pre-head map); ``"blockk"`` has shape [N, ceil(H/S), ceil(W/S), C_k]
          with S = ``tap_strides()["blockk"]`` (2**k, or 1 when undecimated).

        Raises:
          ValueError / TypeError: if `x` is not a float NHWC array with
            ``in_channels`` channels.
        """
        x = self._check_input(x)
        samp = self.sampling
        out = collections.OrderedDict()
        k = 0
        cum = 1
        for i, st in enumerate(self.stages):
            d = samp.input_dilation(cum)
            for j in range(len(st)):
                s = 2 if (samp.layout == "stride" and j == len(st) - 1) else 1
                x = samp.conv(self.convs[k], x, s=s, d=d)
                if len(self.norms):
                    x = self.norms[k](x)
                x = jax.nn.relu(x)
                k += 1
            x = samp.pool(x, window=2, s=2, d=d)
            cum *= 2
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
        if self.head == "gap":
            return self.fc(global_avg_pool(feats))
        y = adaptive_avg_pool(feats, output_size=7)
        y = jnp.transpose(y, (0, 3, 1, 2)).reshape(y.shape[0], -1)
        fc1, fc2, fc3 = self.classifier
        y = self.dropout(jax.nn.relu(fc1(y)))
        y = self.dropout(jax.nn.relu(fc2(y)))
        return fc3(y)


vgg11 = functools.partial(VGG, VGG_STAGES["vgg11"])
vgg13 = functools.partial(VGG, VGG_STAGES["vgg13"])
vgg16 = functools.partial(VGG, VGG_STAGES["vgg16"])
vgg11_bn = functools.partial(VGG, VGG_STAGES["vgg11"], batch_norm=True)
vgg13_bn = functools.partial(VGG, VGG_STAGES["vgg13"], batch_norm=True)
vgg16_bn = functools.partial(VGG, VGG_STAGES["vgg16"], batch_norm=True)
vgg_small = functools.partial(VGG, VGG_STAGES["vgg_small"], head="gap",
                              num_classes=10)
vgg_tiny = functools.partial(VGG, VGG_STAGES["vgg_tiny"], head="gap",
                             num_classes=10)
