"""Accuracy under shifts: top-1 accuracy, robust accuracy (correct at every
shift) and the probability of the true class.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sigcnn.metrics._logits import (
    _check_labels,
    _check_logits,
    _check_reduce,
    _float_dtype,
    _rate,
)

__all__ = ["accuracy", "robust_accuracy", "true_class_probability"]


@functools.partial(jax.jit, static_argnames=("kind", "reduce"))
def _label_kernel(logits, labels, kind, reduce):
    if kind == "true_prob":
        p = jax.nn.softmax(logits.astype(_float_dtype(logits)), axis=-1)
        idx = labels.reshape(labels.shape + (1,) * (logits.ndim - 1))
        idx = jnp.broadcast_to(idx, p.shape[:-1] + (1,))
        return jnp.take_along_axis(p, idx, axis=-1)[..., 0]
    lab = labels.reshape(labels.shape + (1,) * (logits.ndim - 2))
    correct = jnp.argmax(logits, axis=-1) == lab
    if kind == "robust":
        correct = jnp.all(correct.reshape(correct.shape[0], -1), axis=1)
    return _rate(correct, reduce)


def accuracy(logits, labels, *, reduce: bool = True):
    """Top-1 accuracy, averaged over samples and any shift axes.

    Args:
      logits: float array, shape [N, K] or [N, shifts..., K].
      labels: int array, shape [N], values in [0, K).
      reduce: if True return the mean; if False the per-entry indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits.shape[:-1]`` holding 0.0 or 1.0.

    Raises:
      TypeError: if `logits` is not float or `labels` not an integer array.
      ValueError: if the shapes do not match, a label is out of range, or
        (concrete arrays) the logits hold NaN/Inf or look like probabilities.
    """
    logits = _check_logits("logits", logits)
    labels = _check_labels(labels, logits)
    return _label_kernel(logits, labels, "accuracy", _check_reduce(reduce))


def robust_accuracy(logits, labels, *, reduce: bool = True):
    """Accuracy under all shifts: a sample counts only if every frame is correct.

    Include the unshifted frame among the shifts to get Michaeli et al.'s
    "adversarial shift" accuracy (correct on the original image and on every
    shift). With logits [N, K] it is the plain accuracy.

    Args:
      logits: float array, shape [N, shifts..., K]; all frames of each sample.
      labels: int array, shape [N], values in [0, K).
      reduce: if True return the mean over samples; if False the per-sample
        indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      [N] holding 0.0 or 1.0.

    Raises:
      TypeError: if `logits` is not float or `labels` not an integer array.
      ValueError: if the shapes do not match, a label is out of range, or
        (concrete arrays) the logits hold NaN/Inf or look like probabilities.

    References:
      Michaeli, Michaeli & Soudry, "Alias-Free Convnets: Fractional Shift
      Invariance via Polynomial Activations", CVPR 2023.
    """
    logits = _check_logits("logits", logits)
    labels = _check_labels(labels, logits)
    return _label_kernel(logits, labels, "robust", _check_reduce(reduce))


def true_class_probability(logits, labels):
    """Softmax probability of the true class, e.g. along a shift sweep.

    The quantity plotted in the paper's "jagged" figure.

    Args:
      logits: float array, shape [N, K] or [N, shifts..., K].
      labels: int array, shape [N], values in [0, K).

    Returns:
      float array, shape ``logits.shape[:-1]``, values in [0, 1].

    Raises:
      TypeError: if `logits` is not float or `labels` not an integer array.
      ValueError: if the shapes do not match, a label is out of range, or
        (concrete arrays) the logits hold NaN/Inf or look like probabilities.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1.
    """
    logits = _check_logits("logits", logits)
    labels = _check_labels(labels, logits)
    return _label_kernel(logits, labels, "true_prob", False)
