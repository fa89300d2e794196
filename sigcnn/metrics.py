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

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc
from jax.scipy.stats import norm

from sigcnn._checks import (
    as_pair,
    check_bool,
    check_choice,
    check_finite,
    check_float_array,
    check_key,
    check_logit_values,
    check_positive_int,
    is_traced,
)

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


class ConfidenceInterval(NamedTuple):
    """A point estimate with the bounds of its confidence interval.

    A NamedTuple, hence a JAX pytree: it can be returned from jitted code.
    """

    estimate: Any
    low: Any
    high: Any


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _check_logits(name: str, logits: Any, *, values: bool = True):
    logits = check_float_array(name, logits)
    if logits.ndim < 2:
        raise ValueError(
                f"`{name}` must have shape [N, K] or [N, shifts..., K] (rank >= 2); "
                f"got shape {tuple(logits.shape)}.")
    if logits.shape[-1] < 1:
        raise ValueError(
                f"`{name}` must have K >= 1 classes in its last axis; got shape "
                f"{tuple(logits.shape)}.")
    if logits.size == 0:
        raise ValueError(
                f"`{name}` must hold at least one sample; got shape "
                f"{tuple(logits.shape)}.")
    if values:
        check_logit_values(name, logits)
    return logits


def _check_pair(logits_a: Any, logits_b: Any):
    a = _check_logits("logits_a", logits_a, values=False)
    b = _check_logits("logits_b", logits_b, values=False)
    if a.shape != b.shape:
        raise ValueError(
                f"`logits_a` and `logits_b` must have the same shape; got "
                f"{tuple(a.shape)} and {tuple(b.shape)}.")
    check_logit_values("logits_a", a)
    check_logit_values("logits_b", b)
    return a, b


def _check_reduce(reduce: Any) -> bool:
    return check_bool("reduce", reduce)


def _check_labels(labels: Any, logits) -> jax.Array:
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    dt = np.dtype(labels.dtype)
    if not np.issubdtype(dt, np.integer):
        raise TypeError(
                f"`labels` must be an integer array of class indices; got dtype "
                f"{dt.name}.")
    n, k = logits.shape[0], logits.shape[-1]
    if tuple(labels.shape) != (n,):
        raise ValueError(
                f"`labels` must have shape [N] = ({n},) to match `logits` of shape "
                f"{tuple(logits.shape)}; got {tuple(labels.shape)}.")
    try:
        arr = np.asarray(labels)
    except Exception:  # traced: the range cannot be checked before compilation
        return jnp.asarray(labels)
    bad = (arr < 0) | (arr >= k)
    if bad.any():
        raise ValueError(
                f"`labels` must lie in [0, K) = [0, {k}); got {int(bad.sum())} "
                f"out-of-range value(s), e.g. {int(arr[bad][0])}.")
    return jnp.asarray(labels)


def _float_dtype(x):
    """A float dtype of at least 32 bits for reductions of `x`."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _rate(indicator, reduce: bool):
    values = indicator.astype(jnp.result_type(float))
    return jnp.mean(values) if reduce else values


@functools.partial(jax.jit, static_argnames=("kind", "reduce"))
def _pair_kernel(a, b, kind, reduce):
    top_a = jnp.argmax(a, axis=-1)
    if kind == "change":
        return _rate(top_a != jnp.argmax(b, axis=-1), reduce)
    if kind == "agree":
        return _rate(top_a == jnp.argmax(b, axis=-1), reduce)
    dt = _float_dtype(a)
    p = jax.nn.softmax(a.astype(dt), axis=-1)
    q = jax.nn.softmax(b.astype(dt), axis=-1)
    k = top_a[..., None]
    change = jnp.abs(jnp.take_along_axis(p, k, axis=-1)
                     - jnp.take_along_axis(q, k, axis=-1))[..., 0]
    return jnp.mean(change) if reduce else change


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


@functools.partial(jax.jit, static_argnames=("ax",))
def _flips_kernel(logits, ax):
    top = jnp.argmax(logits, axis=-1)
    first = jax.lax.slice_in_dim(top, 0, top.shape[ax] - 1, axis=ax)
    second = jax.lax.slice_in_dim(top, 1, top.shape[ax], axis=ax)
    return jnp.sum(first != second, axis=ax)


@functools.partial(jax.jit, static_argnames=("ax", "reduce"))
def _jagged_kernel(logits, ax, reduce):
    flips = _flips_kernel(logits, ax)
    rate = flips.astype(jnp.result_type(float)) / (logits.shape[ax] - 1)
    return jnp.mean(rate) if reduce else rate



# ---------------------------------------------------------------------------
# Pair metrics (the DESIGN.md contract)
# ---------------------------------------------------------------------------


def p_top1_change(logits_a, logits_b, *, reduce: bool = True):
    """Probability that the top-1 class changes between two frames.

    The mean over all leading entries of ``argmax(a) != argmax(b)``. Ties in the
    arg max resolve to the first class index (``jnp.argmax``).

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K]; first frames.
      logits_b: float array, same shape as `logits_a`; second frames.
      reduce: if True return the mean; if False the per-entry indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]`` holding 0.0 or 1.0.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import p_top1_change
      >>> a = jnp.array([[2.0, 1.0], [0.0, 1.0]])
      >>> b = jnp.array([[1.0, 2.0], [0.0, 3.0]])
      >>> float(p_top1_change(a, b))
      0.5

    References:
      Azulay & Weiss, JMLR 2019, Section 2 ("P(top-1 change)"; the variable
      ``Jagged`` in the authors' ``CheckTranslationInvariance.py``).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "change", _check_reduce(reduce))


def consistency(logits_a, logits_b, *, reduce: bool = True):
    """Fraction of frame pairs whose top-1 classes agree.

    The mean of ``argmax(a) == argmax(b)``, i.e. ``1 - p_top1_change``, as a
    fraction in [0, 1] (Zhang reports it in percent). Ties resolve to the first
    class index.

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K].
      logits_b: float array, same shape as `logits_a`.
      reduce: if True return the mean; if False the per-entry indicator.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]`` holding 0.0 or 1.0.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import consistency
      >>> a = jnp.array([[2.0, 1.0], [1.0, 1.0]])   # second row: a tie -> class 0
      >>> b = jnp.array([[1.0, 2.0], [3.0, 0.0]])
      >>> float(consistency(a, b))
      0.5

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
      (two random crop offsets per image).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "agree", _check_reduce(reduce))


def mean_abs_change(logits_a, logits_b, *, reduce: bool = True):
    """Mean absolute change (MAC) of the first frame's top-1 probability.

    With p = softmax(a), q = softmax(b) over the last axis and k = argmax(a)
    (the first frame's top class, first index on ties), the mean of
    ``|p[k] - q[k]|``. This follows the authors' code; it is not symmetric in
    its arguments.

    Args:
      logits_a: float array, shape [N, K] or [N, shifts..., K]; first frames.
      logits_b: float array, same shape as `logits_a`; second frames.
      reduce: if True return the mean; if False the per-entry values.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits_a.shape[:-1]``. Computed in at least float32.

    Raises:
      TypeError: if the logits are not float arrays or `reduce` is not a bool.
      ValueError: if the shapes differ or are not [N, ..., K] with K >= 1 and
        no empty axis, or (concrete arrays) the logits hold NaN/Inf or look
        like probabilities (rows in [0, 1] summing to 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn.metrics import mean_abs_change
      >>> a = jnp.log(jnp.array([[0.5, 0.3, 0.2]]))   # top class 0, p = 0.5
      >>> b = jnp.log(jnp.array([[0.2, 0.7, 0.1]]))   # class 0 now has 0.2
      >>> round(float(mean_abs_change(a, b)), 6)
      0.3

    References:
      Azulay & Weiss, JMLR 2019, Section 2 ("mean absolute change",
      ``CheckTranslationInvariance.py``).
    """
    a, b = _check_pair(logits_a, logits_b)
    return _pair_kernel(a, b, "mac", _check_reduce(reduce))


# ---------------------------------------------------------------------------
# Accuracy under shifts
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Jaggedness of a sweep
# ---------------------------------------------------------------------------


def _check_sweep_axis(axis: Any, logits) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(
            axis, (numbers.Integral, np.integer)):
        raise TypeError(f"`axis` must be an int naming a shift axis; got {axis!r}.")
    nd = logits.ndim
    if nd < 3:
        raise ValueError(
                f"`logits` must have a shift axis to sweep, shape [N, shifts..., K]; "
                f"got shape {tuple(logits.shape)}.")
    ax = int(axis) + nd if axis < 0 else int(axis)
    if not 1 <= ax <= nd - 2:
        raise ValueError(
                f"`axis` must name a shift axis of `logits` with shape "
                f"{tuple(logits.shape)}, i.e. lie in [1, {nd - 2}] (not the sample "
                f"axis 0 nor the class axis); got {axis!r}.")
    if logits.shape[ax] < 2:
        raise ValueError(
                f"the sweep axis {axis} of `logits` must hold at least 2 shifts; got "
                f"shape {tuple(logits.shape)}.")
    return ax


def top1_flips(logits, *, axis: int = 1):
    """Number of top-1 changes between neighbouring shifts of a sweep.

    Along the sweep axis with T frames, counts ``argmax(t) != argmax(t + 1)``
    for t = 0 .. T - 2 (ties resolve to the first class index).

    Args:
      logits: float array, shape [N, shifts..., K] with at least one shift axis.
      axis: the sweep axis, in [1, ndim - 2] (negative values count from the
        end, so -2 is the last shift axis).

    Returns:
      int array, shape ``logits.shape[:-1]`` without `axis`; values in
      [0, T - 1].

    Raises:
      TypeError: if `logits` is not a float array or `axis` not an int.
      ValueError: if `axis` is not a shift axis or holds fewer than 2 shifts.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1 (p(correct) along a 1-px sweep).
    """
    logits = _check_logits("logits", logits)
    ax = _check_sweep_axis(axis, logits)
    return _flips_kernel(logits, ax)


def jaggedness(logits, *, axis: int = 1, reduce: bool = True):
    """Rate of top-1 flips between neighbouring shifts of a sweep.

    ``top1_flips / (T - 1)``: the P(top-1 change) over consecutive pairs of a
    sweep of T frames.

    Args:
      logits: float array, shape [N, shifts..., K] with at least one shift axis.
      axis: the sweep axis, in [1, ndim - 2] (negative values count from the
        end).
      reduce: if True return the mean; if False the per-sweep rate.

    Returns:
      A float scalar in [0, 1], or with ``reduce=False`` a float array of shape
      ``logits.shape[:-1]`` without `axis`.

    Raises:
      TypeError: if `logits` is not a float array, `axis` not an int or
        `reduce` not a bool.
      ValueError: if `axis` is not a shift axis or holds fewer than 2 shifts.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1.
    """
    logits = _check_logits("logits", logits)
    reduce = _check_reduce(reduce)
    ax = _check_sweep_axis(axis, logits)
    return _jagged_kernel(logits, ax, reduce)


# ---------------------------------------------------------------------------
# EQ-T PSNR between feature maps
# ---------------------------------------------------------------------------


def _as_shift(name: str, shift: Any) -> tuple[int, int]:
    ok = isinstance(shift, (tuple, list)) and len(shift) == 2 and all(
            isinstance(v, (numbers.Integral, np.integer))
            and not isinstance(v, (bool, np.bool_)) for v in shift)
    if not ok:
        raise ValueError(
                f"`{name}` must be a pair (ty, tx) of ints; got {shift!r}.")
    return int(shift[0]), int(shift[1])


def translation_mask(size, shift, *, margin: int = 0):
    """Pixels that stay defined after a non-circular translation.

    A translation by t = (ty, tx) with zero fill moves pixel i to i + t; output
    pixels whose source i - t lies outside the map are invalid. `margin` drops
    that many more pixels next to the invalid band and next to the map's own
    border (e.g. the receptive-field radius of a network with zero padding).

    Args:
      size: positive int or pair (H, W); the map size.
      shift: pair (ty, tx) of ints; the translation, in the ``jnp.roll``
        direction.
      margin: non-negative int; extra pixels to drop on each side.

    Returns:
      bool array, shape [H, W]; True where the pixel is valid.

    Raises:
      ValueError: if `size`, `shift` or `margin` is malformed.

    References:
      Karras et al., NeurIPS 2021, EQ-T (masked MSE over valid pixels).
    """
    h, w = as_pair("size", size)
    ty, tx = _as_shift("shift", shift)
    if isinstance(margin, (bool, np.bool_)) or not isinstance(
            margin, (numbers.Integral, np.integer)) or margin < 0:
        raise ValueError(f"`margin` must be a non-negative int; got {margin!r}.")
    m = int(margin)
    rows = np.arange(h)
    cols = np.arange(w)
    row_ok = (rows >= max(ty, 0) + m) & (rows < h + min(ty, 0) - m)
    col_ok = (cols >= max(tx, 0) + m) & (cols < w + min(tx, 0) - m)
    return jnp.asarray(row_ok[:, None] & col_ok[None, :])


def eqt_psnr(features_a, features_b, *, mask=None, peak=None,
             reduce: bool = True):
    """EQ-T-style PSNR in dB between two feature maps, over valid pixels.

    ``PSNR = 10 * log10(peak**2 / MSE)``, with MSE the mean of
    ``(features_a - features_b)**2`` over the entries where `mask` is True.
    Typically features_a = translate(g(x)) and features_b = g(translate(x)).

    Peak convention: `peak` is the peak-to-peak range of the signal. StyleGAN3
    compares images in [-1, 1] and uses ``20 * log10(2) - 10 * log10(MSE)``,
    i.e. ``peak=2``. Feature maps have no fixed range, so by default
    (``peak=None``) the range ``max - min`` of `features_a` over its valid
    entries in the whole batch is used, one value for all samples. Pass a
    number to fix it (e.g. to compare models on the same scale).

    With ``reduce=True`` the MSE is pooled over all samples before the log
    (as StyleGAN3 accumulates it over its 50k samples); with ``reduce=False``
    each sample gets its own PSNR. A zero MSE gives ``inf``. With
    ``peak=None``, a `features_a` that is constant over its valid entries
    (range 0) raises ``ValueError`` instead of returning ``-inf`` (concrete
    arrays only).

    Args:
      features_a: float array, shape [N, ...], e.g. [N, H, W, C].
      features_b: float array, same shape as `features_a`.
      mask: None (all entries valid) or a bool array broadcastable to the
        features; for 4-D features also [H, W] or [N, H, W] (read as
        [1, H, W, 1] and [N, H, W, 1]). See `translation_mask`.
      peak: None or a positive float; the signal range.
      reduce: if True one pooled PSNR; if False a PSNR per sample.

    Returns:
      A float scalar, or with ``reduce=False`` a float array of shape [N].

    Raises:
      TypeError: if the features are not float arrays, `mask` is not boolean
        or `reduce` not a bool.
      ValueError: if the shapes differ, `mask` does not broadcast, it selects
        no entry of some sample, `peak` is not positive, the features hold
        NaN/Inf, or `peak` is None and `features_a` is constant.

    References:
      Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021
      (EQ-T metric, ``metrics/equivariance.py`` of NVlabs/stylegan3).
    """
    a = check_float_array("features_a", features_a)
    b = check_float_array("features_b", features_b)
    reduce = _check_reduce(reduce)
    if a.shape != b.shape:
        raise ValueError(
                f"`features_a` and `features_b` must have the same shape; got "
                f"{tuple(a.shape)} and {tuple(b.shape)}.")
    if a.ndim < 1 or a.size == 0:
        raise ValueError(
                f"`features_a` must have shape [N, ...] with N >= 1 and no empty "
                f"axis; got {tuple(a.shape)}.")
    if mask is None:
        m = jnp.ones(a.shape, bool)
    else:
        if not hasattr(mask, "dtype"):
            mask = np.asarray(mask)
        if np.dtype(mask.dtype) != np.bool_:
            raise TypeError(
                    f"`mask` must be a bool array (True = valid); got dtype "
                    f"{np.dtype(mask.dtype).name}.")
        mk = jnp.asarray(mask)
        if a.ndim == 4 and mk.ndim == 2:
            mk = mk[None, :, :, None]
        elif a.ndim == 4 and mk.ndim == 3:
            mk = mk[..., None]
        try:
            if mk.ndim != a.ndim:
                raise ValueError
            m = jnp.broadcast_to(mk, a.shape)
        except ValueError:
            raise ValueError(
                    f"`mask` of shape {tuple(np.shape(mask))} does not broadcast to "
                    f"the features' shape {tuple(a.shape)}; use a bool array of the "
                    f"same rank, or [H, W] / [N, H, W] for [N, H, W, C] "
                    f"features.") from None
        try:
            counts = np.asarray(m).reshape(a.shape[0], -1).sum(axis=1)
        except Exception:  # traced mask
            counts = None
        if counts is not None and (counts == 0).any():
            raise ValueError(
                    f"`mask` selects no entry in sample(s) "
                    f"{np.flatnonzero(counts == 0).tolist()}; the PSNR is undefined "
                    f"there.")
    if peak is not None:
        if isinstance(peak, (bool, np.bool_)) or not isinstance(
                peak, numbers.Real) or not np.isfinite(peak) or peak <= 0:
            raise ValueError(f"`peak` must be None or a positive float; got {peak!r}.")
    check_finite("features_a", a)
    check_finite("features_b", b)
    dt = _float_dtype(a)
    if peak is None and not (is_traced(a) or is_traced(m)):
        span = float(jnp.max(jnp.where(m, a, -jnp.inf))
                     - jnp.min(jnp.where(m, a, jnp.inf)))
        if span == 0:
            raise ValueError(
                    "`features_a` is constant over the valid entries, so its range "
                    "(the default `peak`) is 0 and the PSNR is undefined; pass "
                    "`peak` (the signal range, e.g. peak=2 for images in [-1, 1]).")
    return _psnr_kernel(a.astype(dt), b.astype(dt), m,
                        None if peak is None else jnp.asarray(peak, dt), reduce)


@functools.partial(jax.jit, static_argnames=("reduce",))
def _psnr_kernel(a, b, m, peak, reduce):
    if peak is None:
        hi = jnp.max(jnp.where(m, a, -jnp.inf))
        lo = jnp.min(jnp.where(m, a, jnp.inf))
        peak = hi - lo
    sq = jnp.where(m, (a - b) ** 2, 0).reshape(a.shape[0], -1)
    cnt = m.reshape(a.shape[0], -1).sum(axis=1).astype(a.dtype)
    if reduce:
        mse = jnp.sum(sq) / jnp.sum(cnt)
    else:
        mse = jnp.sum(sq, axis=1) / cnt
    return 10.0 * jnp.log10(peak ** 2 / mse)


# ---------------------------------------------------------------------------
# Confidence intervals
# ---------------------------------------------------------------------------


def _check_confidence(confidence: Any) -> float:
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(
            confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ValueError(
                f"`confidence` must be a float in (0, 1), e.g. 0.95; got "
                f"{confidence!r}.")
    return float(confidence)


def _beta_ppf(q, a, b, dtype, iters: int = 80):
    """Quantile of Beta(a, b) by bisection on the regularized incomplete beta."""

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = betainc(a, b, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(
            0, iters, body, (jnp.zeros_like(q, dtype), jnp.ones_like(q, dtype)))
    return 0.5 * (lo + hi)


def binomial_ci(successes, n, *, confidence: float = 0.95,
                method: str = "wilson") -> ConfidenceInterval:
    """Confidence interval for a binomial rate (e.g. P(top-1 change)).

    * ``"wilson"``: the Wilson score interval,
      ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.
    * ``"clopper-pearson"``: the exact interval from Beta quantiles,
      ``[B(α/2; k, n-k+1), B(1-α/2; k+1, n-k)]``, with 0 and 1 at k = 0 and
      k = n; the quantiles are found by bisection (80 steps), so the bounds are
      accurate to the precision of ``jax.scipy.special.betainc``.

    Both assume independent trials. Pairs from the same image (e.g. the 8
    diagonal pairs per image) are correlated; use `bootstrap_ci` over images
    for those.

    Args:
      successes: int or int array, shape [...]; number of events k in [0, n].
      n: positive int or int array broadcastable with `successes`.
      confidence: float in (0, 1).
      method: ``"wilson"`` or ``"clopper-pearson"``.

    Returns:
      ``ConfidenceInterval(estimate=k/n, low, high)``, float arrays of the
      broadcast shape of `successes` and `n`.

    Raises:
      TypeError: if `successes` or `n` is not integer.
      ValueError: if `n` < 1, `successes` lies outside [0, n] (checked for
        concrete values), or `confidence`/`method` is invalid.

    References:
      Wilson, J. Am. Stat. Assoc. 22:209-212, 1927.
      Clopper & Pearson, Biometrika 26(4):404-413, 1934.
      Newcombe, Statistics in Medicine 17:857-872, 1998 (comparison).
    """
    confidence = _check_confidence(confidence)
    method = check_choice("method", method, ("wilson", "clopper-pearson"))
    for name, v in (("successes", successes), ("n", n)):
        dt = np.dtype(v.dtype) if hasattr(v, "dtype") else np.asarray(v).dtype
        if not np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.bool_):
            raise TypeError(
                    f"`{name}` must be an int or an integer array; got {v!r}.")
    try:
        k_np, n_np = np.asarray(successes), np.asarray(n)
    except Exception:  # traced
        k_np = n_np = None
    if k_np is not None:
        if (n_np < 1).any():
            raise ValueError(f"`n` must be a positive int; got {n!r}.")
        if ((k_np < 0) | (k_np > n_np)).any():
            raise ValueError(
                    f"`successes` must lie in [0, n]; got successes={successes!r}, "
                    f"n={n!r}.")
    dt = jnp.result_type(float)
    k = jnp.asarray(successes).astype(dt)
    nn = jnp.asarray(n).astype(dt)
    return _binomial_kernel(k, nn, jnp.asarray(1.0 - confidence, dt), method)


@functools.partial(jax.jit, static_argnames=("method",))
def _binomial_kernel(k, nn, alpha, method):
    dt = k.dtype
    k, nn = jnp.broadcast_arrays(k, nn)
    p = k / nn
    if method == "wilson":
        z = norm.ppf(1.0 - alpha / 2.0).astype(dt)
        denom = 1.0 + z ** 2 / nn
        center = (p + z ** 2 / (2.0 * nn)) / denom
        half = z / denom * jnp.sqrt(p * (1.0 - p) / nn + z ** 2 / (4.0 * nn ** 2))
        low = jnp.clip(center - half, 0.0, 1.0)
        high = jnp.clip(center + half, 0.0, 1.0)
        # Exact at the ends, where rounding could leave a tiny nonzero bound.
        low = jnp.where(k == 0, 0.0, low)
        high = jnp.where(k == nn, 1.0, high)
    else:
        q_lo = jnp.full_like(p, alpha / 2.0)
        q_hi = jnp.full_like(p, 1.0 - alpha / 2.0)
        low = _beta_ppf(q_lo, jnp.maximum(k, 1.0), nn - k + 1.0, dt)
        high = _beta_ppf(q_hi, k + 1.0, jnp.maximum(nn - k, 1.0), dt)
        low = jnp.where(k == 0, 0.0, low)
        high = jnp.where(k == nn, 1.0, high)
    return ConfidenceInterval(p, low, high)


def bootstrap_ci(values, *, key, n_resamples: int = 2000,
                 confidence: float = 0.95) -> ConfidenceInterval:
    """Percentile bootstrap interval for a mean (e.g. MAC), resampling samples.

    Rows (axis 0, the samples) are drawn with replacement; all entries of a row
    stay together, so the several frame pairs of one image are resampled as a
    unit (a cluster bootstrap). The statistic is the mean over all entries,
    which equals the mean of row means since rows have equal sizes. The bounds
    are the α/2 and 1 - α/2 quantiles (linear interpolation, NumPy's default)
    of the resampled means, drawn one resample at a time so memory stays O(N).
    Deterministic for a given `key`.

    Args:
      values: float array, shape [N] or [N, ...]; per-sample values such as
        ``mean_abs_change(a, b, reduce=False)``.
      key: a single JAX PRNG key, ``jax.random.key(seed)`` or the legacy
        ``jax.random.PRNGKey(seed)``.
      n_resamples: positive int; number of bootstrap resamples.
      confidence: float in (0, 1).

    Returns:
      ``ConfidenceInterval(estimate=mean(values), low, high)``, float scalars.

    Raises:
      TypeError: if `values` is not a float array or `key` not a PRNG key.
      ValueError: if `values` is empty or holds NaN/Inf, `key` is a batch of
        keys, or `n_resamples`/`confidence` is invalid.

    References:
      Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall,
      1993, Chapter 13 (percentile interval).
    """
    values = check_float_array("values", values)
    if values.ndim < 1 or values.size == 0:
        raise ValueError(
                f"`values` must have shape [N] or [N, ...] with N >= 1 and no empty "
                f"axis; got {tuple(values.shape)}.")
    n_resamples = check_positive_int("n_resamples", n_resamples)
    confidence = _check_confidence(confidence)
    key = check_key("key", key)
    check_finite("values", values)
    dt = _float_dtype(values)
    rows = values.astype(dt).reshape(values.shape[0], -1).mean(axis=1)
    return _bootstrap_kernel(rows, key, n_resamples,
                             jnp.asarray(1.0 - confidence, dt))


def _percentile(sorted_values, q):
    """Quantile q of sorted values, linear interpolation (NumPy's default)."""
    pos = q * (sorted_values.shape[0] - 1)
    lo = jnp.floor(pos).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, sorted_values.shape[0] - 1)
    frac = pos - lo
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


@functools.partial(jax.jit, static_argnames=("n_resamples",))
def _bootstrap_kernel(rows, key, n_resamples, alpha):
    n = rows.shape[0]
    keys = jax.random.split(key, n_resamples)

    def one(k):
        idx = jax.random.randint(k, (n,), 0, n)
        return jnp.mean(rows[idx])

    means = jnp.sort(jax.lax.map(one, keys))
    low = _percentile(means, alpha / 2.0)
    high = _percentile(means, 1.0 - alpha / 2.0)
    return ConfidenceInterval(jnp.mean(rows), low, high)
