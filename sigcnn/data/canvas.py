"""Canvas datasets: objects placed in a larger canvas at controlled positions.

Each object (an MNIST digit, an image patch, any [h, w, C] array) is pasted
into a canvas of a constant value at a position drawn from a chosen
distribution, from an explicit PRNG key. The distribution of object positions
seen in training thereby becomes a controlled variable: train on centred
digits and test on uniformly placed ones to reproduce the paper's
"photographer's bias" (objects in ImageNet sit near the centre, so learned
invariance only holds near typical positions).

Positions are the top-left corner (row, col) of the object in the canvas, in
[0, Hc - h] × [0, Wc - w]; the object centre is ``position + (size - 1) / 2``.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (photographer's bias).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import numpy as np

from sigcnn._checks import as_pair, check_choice, check_positive_int
from sigcnn.shifts import embed

__all__ = [
    "POSITION_DISTRIBUTIONS",
    "CanvasData",
    "canvas_dataset",
    "sample_positions",
]

POSITION_DISTRIBUTIONS = ("center", "gaussian", "uniform")
"""Position distributions accepted by `sample_positions` and `canvas_dataset`."""


class CanvasData(NamedTuple):
    """A canvas dataset.

    Attributes:
      images: float array, shape [N, Hc, Wc, C].
      labels: int array, shape [N]; the objects' labels.
      positions: int array, shape [N, 2]; top-left (row, col) of each object.
    """

    images: Any
    labels: Any
    positions: Any


def _check_sigma(sigma: Any, distribution: str):
    if distribution != "gaussian":
        if sigma is not None:
            raise ValueError(
                f"`sigma` is only used with distribution='gaussian'; got "
                f"sigma={sigma!r} with distribution={distribution!r}.")
        return None
    vals = sigma if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    ok = len(vals) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        and np.isfinite(v) and v >= 0 for v in vals)
    if not ok:
        raise ValueError(
            f"`sigma` must be a non-negative float or a pair (sy, sx) of them, in "
            f"pixels, for distribution='gaussian'; got {sigma!r}.")
    return float(vals[0]), float(vals[1])


def sample_positions(key, n: int, *, canvas_size, object_size,
                     distribution: str = "uniform", sigma=None) -> np.ndarray:
    """Draws top-left object positions inside a canvas.

    With margin M = Hc - h (rows; likewise for columns) and centre
    c = M // 2:

    * ``"center"``: every position is (c_y, c_x).
    * ``"gaussian"``: ``clip(round(c + sigma * z), 0, M)`` with z standard
      normal per axis; clipping keeps the object inside (it piles up mass at
      the edges when sigma is large compared with M).
    * ``"uniform"``: uniform on the integers {0, ..., M} per axis.

    Args:
      key: a JAX PRNG key.
      n: positive int; number of positions.
      canvas_size: positive int or pair (Hc, Wc).
      object_size: positive int or pair (h, w), at most the canvas size.
      distribution: one of `POSITION_DISTRIBUTIONS`.
      sigma: for ``"gaussian"``, the standard deviation in pixels (a float or a
        pair (sy, sx)); must be None otherwise.

    Returns:
      int array (NumPy), shape [n, 2]; (row, col) top-left positions.

    Raises:
      TypeError: if `key` is not a PRNG key.
      ValueError: if an argument is malformed or the object exceeds the canvas.
    """
    n = check_positive_int("n", n)
    canvas = as_pair("canvas_size", canvas_size)
    obj = as_pair("object_size", object_size)
    distribution = check_choice("distribution", distribution,
                                POSITION_DISTRIBUTIONS)
    sig = _check_sigma(sigma, distribution)
    if key is None or not hasattr(key, "dtype"):
        raise TypeError(
            f"`key` must be a JAX PRNG key, e.g. `jax.random.key(0)`; got {key!r}.")
    if obj[0] > canvas[0] or obj[1] > canvas[1]:
        raise ValueError(
            f"`object_size` {obj} must not exceed `canvas_size` {canvas}.")
    margin = np.array([canvas[0] - obj[0], canvas[1] - obj[1]])
    center = margin // 2
    if distribution == "center":
        return np.broadcast_to(center, (n, 2)).astype(np.int64)
    if distribution == "uniform":
        u = jax.random.randint(key, (n, 2), 0, margin + 1)
        return np.asarray(u).astype(np.int64)
    z = np.asarray(jax.random.normal(key, (n, 2)), np.float64)
    pos = np.rint(center + np.asarray(sig) * z)
    return np.clip(pos, 0, margin).astype(np.int64)


def canvas_dataset(key, images, labels, *, canvas_size=56,
                   distribution: str = "uniform", sigma=None,
                   fill=0.0) -> CanvasData:
    """Places each object in its own canvas at a random position.

    Args:
      key: a JAX PRNG key (draws the positions).
      images: float array, shape [N, h, w, C]; the objects (e.g. MNIST digits
        from ``sigcnn.data.mnist.load_mnist``, or crops of natural images).
      labels: int array, shape [N].
      canvas_size: positive int or pair (Hc, Wc); e.g. 56 or 64 for 28×28
        digits.
      distribution: one of `POSITION_DISTRIBUTIONS` (see `sample_positions`).
      sigma: standard deviation in pixels for ``"gaussian"``, else None.
      fill: canvas value, a float or one per channel (0 is black for MNIST).

    Returns:
      `CanvasData` ``(images, labels, positions)``: float array
      [N, Hc, Wc, C] (a JAX array) with
      ``images[i, py:py + h, px:px + w] == objects[i]``, the labels (NumPy int
      [N]) and the positions (NumPy int [N, 2]).

    Raises:
      TypeError: if `images` is not a float array or `labels` not integer.
      ValueError: if shapes disagree or an option is invalid.

    References:
      Azulay & Weiss, JMLR 2019 (photographer's bias).
    """
    if not hasattr(images, "dtype"):
        images = np.asarray(images)
    if getattr(images, "ndim", 0) != 4:
        raise ValueError(
            f"`images` must have shape [N, h, w, C]; got shape "
            f"{tuple(np.shape(images))}. For [N, h, w] digits use `images[..., None]`.")
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"`labels` must be an integer array; got dtype {labels.dtype}.")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"`labels` must have shape [N] = ({images.shape[0]},) to match `images`; "
            f"got {labels.shape}.")
    obj = (images.shape[1], images.shape[2])
    positions = sample_positions(key, images.shape[0], canvas_size=canvas_size,
                                 object_size=obj, distribution=distribution,
                                 sigma=sigma)
    frames, _ = embed(images, positions[:, None, :], canvas_size=canvas_size,
                      fill=fill)
    return CanvasData(frames[:, 0], labels, positions)
