"""sigcnn: shift invariance of CNNs through the sampling theorem, in JAX.

Reproduces and extends Azulay & Weiss, "Why do deep convolutional networks
generalize so poorly to small image transformations?" (JMLR 2019). Arrays are NHWC,
kernels HWIO, frequencies in cycles/pixel.
"""

from sigcnn import atrous as atrous
from sigcnn.atrous import (
    all_shifts as all_shifts,
)
from sigcnn.atrous import (
    clear_cache as clear_cache,
)
from sigcnn.atrous import (
    decimation_points as decimation_points,
)
from sigcnn.atrous import (
    register_rule as register_rule,
)
from sigcnn.atrous import (
    undecimate as undecimate,
)
from sigcnn.layerwise import layer_spectra as layer_spectra
from sigcnn.metrics import (
    accuracy as accuracy,
)
from sigcnn.metrics import (
    binomial_ci as binomial_ci,
)
from sigcnn.metrics import (
    bootstrap_ci as bootstrap_ci,
)
from sigcnn.metrics import (
    consistency as consistency,
)
from sigcnn.metrics import (
    eqt_psnr as eqt_psnr,
)
from sigcnn.metrics import (
    jaggedness as jaggedness,
)
from sigcnn.metrics import (
    mean_abs_change as mean_abs_change,
)
from sigcnn.metrics import (
    p_top1_change as p_top1_change,
)
from sigcnn.metrics import (
    robust_accuracy as robust_accuracy,
)
from sigcnn.metrics import (
    top1_flips as top1_flips,
)
from sigcnn.ops import (
    avg_pool as avg_pool,
)
from sigcnn.ops import (
    binomial_filter as binomial_filter,
)
from sigcnn.ops import (
    blur_pool as blur_pool,
)
from sigcnn.ops import (
    conv as conv,
)
from sigcnn.ops import (
    ideal_lowpass as ideal_lowpass,
)
from sigcnn.ops import (
    max_pool as max_pool,
)
from sigcnn.ops import (
    polyphase as polyphase,
)
from sigcnn.ops import (
    unpolyphase as unpolyphase,
)
from sigcnn.spectra import (
    aliasing_ratio as aliasing_ratio,
)
from sigcnn.spectra import (
    fourier_shift as fourier_shift,
)
from sigcnn.spectra import (
    fourier_upsample as fourier_upsample,
)
from sigcnn.spectra import (
    nyquist_mask as nyquist_mask,
)
from sigcnn.spectra import (
    power_spectrum as power_spectrum,
)
from sigcnn.spectra import (
    shiftability_error as shiftability_error,
)

__version__ = "0.1.0"

__all__ = [
    "accuracy",
    "all_shifts",
    "clear_cache",
    "decimation_points",
    "register_rule",
    "layer_spectra",
    "undecimate",
    "binomial_ci",
    "bootstrap_ci",
    "consistency",
    "eqt_psnr",
    "jaggedness",
    "mean_abs_change",
    "p_top1_change",
    "robust_accuracy",
    "top1_flips",
    "aliasing_ratio",
    "avg_pool",
    "binomial_filter",
    "blur_pool",
    "conv",
    "fourier_shift",
    "fourier_upsample",
    "ideal_lowpass",
    "max_pool",
    "nyquist_mask",
    "polyphase",
    "power_spectrum",
    "shiftability_error",
    "unpolyphase",
]
