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
)
from sigcnn.models.layers import (
    MODEL_PADDINGS as MODEL_PADDINGS,
)
from sigcnn.models.layers import (
    Conv as Conv,
)
from sigcnn.models.layers import (
    Sampling as Sampling,
)
from sigcnn.models.layers import (
    adaptive_avg_pool as adaptive_avg_pool,
)
from sigcnn.models.layers import (
    aps_downsample as aps_downsample,
)
from sigcnn.models.layers import (
    global_avg_pool as global_avg_pool,
)
from sigcnn.models.resnet import (
    BasicBlock as BasicBlock,
)
from sigcnn.models.resnet import (
    Bottleneck as Bottleneck,
)
from sigcnn.models.resnet import (
    ResNet as ResNet,
)
from sigcnn.models.vgg import VGG as VGG
from sigcnn.models.vgg import VGG_STAGES as VGG_STAGES
from sigcnn.models.zoo import (
    MODEL_NAMES as MODEL_NAMES,
)
from sigcnn.models.zoo import (
    count_params as count_params,
)
from sigcnn.models.zoo import (
    create as create,
)
from sigcnn.models.zoo import (
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
