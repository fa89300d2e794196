"""sigcnn: shift invariance of CNNs through the sampling theorem, in JAX.

Reproduces and extends Azulay & Weiss, "Why do deep convolutional networks
generalize so poorly to small image transformations?" (JMLR 2019). Arrays are NHWC,
kernels HWIO, frequencies in cycles/pixel.
"""

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
