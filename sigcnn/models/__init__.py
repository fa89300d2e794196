"""Model zoo: VGG and ResNet in Flax NNX, built from :mod:`sigcnn.ops`.

Inputs are NHWC ``[N, H, W, C]``, conv kernels HWIO. Every model has

* ``model(x)``: logits, shape [N, num_classes];
* ``model.taps(x)``: an ordered dict of named block outputs (NHWC maps, the last
  one the pre-head map);
* ``model.tap_strides()`` and ``model.total_stride``: the cumulative stride of
  each tap;

and options for padding (``"zero"``, ``"circular"``) and downsampling
(``"max"``, ``"stride"``, ``"blur"``, ``"aps"``, ``"none"``); see
:mod:`sigcnn.models.layers`. The parameter tree does not depend on these options,
so :func:`variant` moves a model's weights to another mode.

References:
  Simonyan & Zisserman, ICLR 2015 (VGG); He et al., CVPR 2016 (ResNet);
  Zhang, ICML 2019 (BlurPool); Chaman & Dokmanić, CVPR 2021 (APS).
"""

from sigcnn.models.layers import (
    DOWNSAMPLE_MODES as DOWNSAMPLE_MODES,
    MODEL_PADDINGS as MODEL_PADDINGS,
    Conv as Conv,
    Sampling as Sampling,
    adaptive_avg_pool as adaptive_avg_pool,
    aps_downsample as aps_downsample,
    global_avg_pool as global_avg_pool,
)
from sigcnn.models.resnet import (
    BasicBlock as BasicBlock,
    Bottleneck as Bottleneck,
    ResNet as ResNet,
)
from sigcnn.models.vgg import VGG as VGG, VGG_STAGES as VGG_STAGES
from sigcnn.models.zoo import (
    MODEL_NAMES as MODEL_NAMES,
    count_params as count_params,
    create as create,
    variant as variant,
)

__all__ = [
    "DOWNSAMPLE_MODES",
    "MODEL_NAMES",
    "MODEL_PADDINGS",
    "BasicBlock",
    "Bottleneck",
    "Conv",
    "ResNet",
    "Sampling",
    "VGG",
    "VGG_STAGES",
    "adaptive_avg_pool",
    "aps_downsample",
    "count_params",
    "create",
    "global_avg_pool",
    "variant",
]
