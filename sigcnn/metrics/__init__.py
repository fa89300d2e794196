"""Output-level shift-invariance metrics.

All metrics take classifier logits: float arrays of shape [N, K] or
[N, shifts..., K], with N samples, any number of shift (frame) axes and K
classes in the last axis. Each rate is the mean of a per-entry indicator over
every axis but the last; ``reduce=False`` returns the per-entry values instead
(shape ``logits.shape[:-1]``) so that callers can bootstrap over samples.

Ties in the top-1 class resolve to the first (lowest) class index, as
``jnp.argmax`` does.

Bad values are refused for concrete arrays: logits (and features, bootstrap
values) holding NaN or Inf raise ``ValueError``, and so do logits whose rows
all lie in [0, 1] and sum to 1 (K >= 2): those are probabilities, and MAC
would apply a second softmax to them; pass ``jnp.log(p)`` instead. Empty
inputs (no sample, no shift, no class) raise ``ValueError`` rather than
returning a NaN mean over nothing.

The functions are pure jnp code and work under ``jax.jit`` and ``jax.vmap``.
Argument checks use shapes and dtypes; value checks (finite values, logits
that look like probabilities, label range, binomial counts, empty masks) run
only on concrete (non-traced) arrays: inside ``jax.jit`` nothing about the
values can be checked, and NaN logits there give what ``jnp.argmax`` does
(it treats NaN as the largest value).

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (P(top-1 change), MAC).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (consistency).
  Michaeli, Michaeli & Soudry, "Alias-Free Convnets", CVPR 2023 (accuracy
  under all shifts).
  Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021
  (EQ-T PSNR).
"""

from sigcnn.metrics.accuracies import accuracy, robust_accuracy, true_class_probability
from sigcnn.metrics.intervals import ConfidenceInterval, binomial_ci, bootstrap_ci
from sigcnn.metrics.pairs import consistency, mean_abs_change, p_top1_change
from sigcnn.metrics.psnr import eqt_psnr, translation_mask
from sigcnn.metrics.sweeps import jaggedness, top1_flips

__all__ = [
        "ConfidenceInterval",
        "accuracy",
        "binomial_ci",
        "bootstrap_ci",
        "consistency",
        "eqt_psnr",
        "jaggedness",
        "mean_abs_change",
        "p_top1_change",
        "robust_accuracy",
        "top1_flips",
        "translation_mask",
        "true_class_probability",
]
