"""Evaluation of NNX classifiers: logits, accuracy and cross-entropy.

`predict_logits` and `evaluate` run a model in evaluation mode (Dropout off,
BatchNorm on its running statistics) through an ``nnx.view``, so the module
itself is not modified. They are jit-compiled and work in chunks of one fixed
size, the last chunk zero-padded (and its padding trimmed or weighted out), so
memory stays bounded and one compiled program serves any number of images.
Images are NHWC float arrays; labels integer classes in ``[0, K)``.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sigcnn._checks import check_finite, check_nhwc, check_positive_int
from sigcnn.train.results import EvalResult

__all__ = ["evaluate", "predict_logits"]


def cross_entropy(logits, labels):
    """Per-image softmax cross-entropy (float32) for integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels)


@nnx.jit
def _logits_step(model, x):
    return model(x)


@nnx.jit
def _eval_step(model, x, y, weight):
    logits = model(x)
    loss = jnp.sum(cross_entropy(logits, y) * weight)
    correct = jnp.sum((jnp.argmax(logits, axis=-1) == y) * weight)
    return loss, correct


def eval_view(model):
    """The model with Dropout/BatchNorm in inference mode, without mutating it."""
    return nnx.view(model, deterministic=True, use_running_average=True,
                    raise_if_not_found=False)


def _chunks(n, batch_size):
    b = min(batch_size, n)
    return b, [(s, min(s + b, n)) for s in range(0, n, b)]


def _pad_to(x, b):
    """Host array `x` zero-padded along axis 0 to length `b`."""
    if x.shape[0] == b:
        return x
    pad = [(0, b - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)


def check_images(name, images):
    """`images` as a finite float32 host array [N, H, W, C] with N >= 1."""
    if not hasattr(images, "dtype"):
        images = np.asarray(images)
    check_nhwc(name, images)
    dt = np.dtype(images.dtype)
    if not np.issubdtype(dt, np.floating):
        raise TypeError(
            f"`{name}` must be a real float array [N, H, W, C] (e.g. float32 in "
            f"[0, 1]); got dtype {dt.name}. Convert it first, e.g. "
            f"`{name}.astype(np.float32) / 255`.")
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one image; got shape "
                         f"{tuple(images.shape)}.")
    x = np.asarray(images, np.float32)
    check_finite(name, x)
    return x


def check_labels(name, labels, images_name, n):
    """`labels` as an int32 host array [n] of non-negative classes."""
    labels = np.asarray(labels) if not hasattr(labels, "dtype") else labels
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise TypeError(f"`{name}` must be an integer array [N] of classes; got "
                        f"dtype {np.dtype(labels.dtype).name}.")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"`{images_name}` [N, H, W, C] and `{name}` [N] must have the same "
            f"length N; got {n} images and labels of shape {tuple(labels.shape)}.")
    lab = np.asarray(labels)
    if lab.size and lab.min() < 0:
        raise ValueError(f"`{name}` must be class indices >= 0; got minimum "
                         f"{int(lab.min())}.")
    return lab.astype(np.int32)


def check_label_range(name, y, k):
    """Raises unless every label in `y` is below the model's K outputs."""
    top = int(np.max(y))
    if top >= k:
        raise ValueError(f"`{name}` must be class indices in [0, K) = [0, {k}) for "
                         f"a model with K = {k} outputs; got a label {top}.")


def num_classes(view, x):
    """K, the number of logits the model gives for images shaped like `x`."""
    graphdef, state = nnx.split(view)

    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    out = jax.eval_shape(forward, state, jax.ShapeDtypeStruct((1,) + x.shape[1:],
                                                              x.dtype))
    if not hasattr(out, "shape") or len(out.shape) != 2:
        raise ValueError(
            f"`model` must map images [N, H, W, C] to logits [N, K]; for input "
            f"{(1,) + tuple(x.shape[1:])} it returns {getattr(out, 'shape', out)}.")
    return int(out.shape[1])


def _check_module(name, model):
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`{name}` must be a Flax NNX module (nnx.Module); got "
                        f"{type(model).__name__}.")


def predict_logits(model, images, *, batch_size: int = 256) -> jax.Array:
    """Logits of a model in evaluation mode, jit-compiled, in fixed-size chunks.

    The model runs with ``deterministic=True`` and ``use_running_average=True``
    (Dropout off, BatchNorm on its running statistics) through a view, so the
    module itself is not modified. Every chunk has ``min(batch_size, N)`` images
    (the last one zero-padded and trimmed), so one compiled program serves all.

    Args:
      model: a Flax NNX module mapping [B, H, W, C] to logits [B, K].
      images: finite float array [N, H, W, C] (cast to float32).
      batch_size: images per chunk (positive int).

    Returns:
      float array [N, K].

    Raises:
      TypeError: if `model` is not an NNX module or `images` is not float.
      ValueError: if `images` is not NHWC, holds NaN or Inf, or `batch_size` is
        not positive.

    Examples:
      >>> net = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
      >>> predict_logits(net, np.ones((5, 1, 1, 3), np.float32), batch_size=2).shape
      (5, 1, 1, 2)
    """
    _check_module("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    x = check_images("images", images)
    view = eval_view(model)
    b, spans = _chunks(x.shape[0], batch_size)
    run = nnx.cached_partial(_logits_step, view)
    out = jax.device_get([run(_pad_to(x[s:e], b)) for s, e in spans])
    out = [np.asarray(o)[:e - s] for o, (s, e) in zip(out, spans)]
    return jnp.asarray(out[0] if len(out) == 1 else np.concatenate(out, axis=0))


def evaluate_checked(view, x, y, batch_size):
    """`evaluate` on checked host arrays and an evaluation view."""
    b, spans = _chunks(x.shape[0], batch_size)
    run = nnx.cached_partial(_eval_step, view)
    sums = []
    for s, e in spans:
        w = (np.arange(b) < (e - s)).astype(np.float32)
        sums.append(run(_pad_to(x[s:e], b), _pad_to(y[s:e], b), w))
    loss, correct = np.sum(np.asarray(jax.device_get(sums), np.float64), axis=0)
    n = x.shape[0]
    return EvalResult(accuracy=float(correct) / n, loss=float(loss) / n, n=int(n))


def evaluate(model, images, labels, *, batch_size: int = 256) -> EvalResult:
    """Accuracy and mean cross-entropy of a model in evaluation mode.

    Runs like `predict_logits` (jitted, chunked, module not modified); the
    padding of the last chunk is weighted out.

    Args:
      model: a Flax NNX module mapping [B, H, W, C] to logits [B, K].
      images: finite float array [N, H, W, C].
      labels: integer array [N] of classes in [0, K).
      batch_size: images per chunk (positive int).

    Returns:
      `EvalResult` with ``accuracy`` (argmax == label rate), ``loss`` (mean
      softmax cross-entropy) and ``n``.

    Raises:
      TypeError: if `model` is not an NNX module, `images` not float or `labels`
        not integer.
      ValueError: if shapes disagree, `images` holds NaN or Inf, a label is
        negative or not below K, or `batch_size` is not positive.
    """
    _check_module("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    x = check_images("images", images)
    y = check_labels("labels", labels, "images", x.shape[0])
    view = eval_view(model)
    check_label_range("labels", y, num_classes(view, x))
    return evaluate_checked(view, x, y, batch_size)
