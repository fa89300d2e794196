"""sigcnn: shift invariance of CNNs through the sampling theorem, in JAX.

Reproduces and extends Azulay & Weiss, "Why do deep convolutional networks
generalize so poorly to small image transformations?" (JMLR 2019). Arrays are NHWC,
kernels HWIO, frequencies in cycles/pixel.
"""

from sigcnn import atrous as atrous
from sigcnn.atrous import (
    all_shifts as all_shifts,
    clear_cache as clear_cache,
    decimation_points as decimation_points,
    register_rule as register_rule,
    undecimate as undecimate,
)
from sigcnn.layerwise import layer_spectra as layer_spectra
from sigcnn.metrics import (
    accuracy as accuracy,
    binomial_ci as binomial_ci,
    bootstrap_ci as bootstrap_ci,
    consistency as consistency,
    eqt_psnr as eqt_psnr,
    jaggedness as jaggedness,
    mean_abs_change as mean_abs_change,
    p_top1_change as p_top1_change,
    robust_accuracy as robust_accuracy,
    top1_flips as top1_flips,
)
from sigcnn.ops import (
    avg_pool as avg_pool,
    binomial_filter as binomial_filter,
    blur_pool as blur_pool,
    conv as conv,
    ideal_lowpass as ideal_lowpass,
    max_pool as max_pool,
    polyphase as polyphase,
    unpolyphase as unpolyphase,
)
from sigcnn.spectra import (
    aliasing_ratio as aliasing_ratio,
    fourier_shift as fourier_shift,
    fourier_upsample as fourier_upsample,
    nyquist_mask as nyquist_mask,
    power_spectrum as power_spectrum,
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
