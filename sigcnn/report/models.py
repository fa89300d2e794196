"""Training glue of the report and of ``sigcnn train`` / ``sigcnn shift-test``.

* `train_model`: `sigcnn.train.fit` on a `sigcnn.data.DatasetSpec`, with the
  dataset record stored in the run's config so that the checkpoint knows its
  own held-out data;
* `shift_test_checkpoint`: `sigcnn.shift_test.run_shift_test` on a saved model
  and the held-out images of the dataset it was trained on;
* `TrainProgress`: readable progress lines (epoch, step, loss, images/s) from
  `sigcnn.train.TrainEvent`.
"""

from __future__ import annotations

import numbers
import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from sigcnn._checks import check_choice, check_positive_int
from sigcnn.data.datasets import BASELINE_TRAINING, DatasetSpec, load_dataset

__all__ = ["TrainProgress", "held_out", "shift_test_checkpoint", "train_model"]

_B = BASELINE_TRAINING


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


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


def train_model(dataset: DatasetSpec, *, out_dir, model: str = _B["model"],
                epochs: int = _B["epochs"], batch_size: int = _B["batch_size"],
                learning_rate: float = _B["learning_rate"],
                seed: int = _B["seed"], width: float = _B["width"],
                padding: str = _B["padding"],
                downsample: str = _B["downsample"],
                blur_size: int = _B["blur_size"],
                augment_shift: int = _B["augment_shift"],
                augment_padding: str = _B["augment_padding"],
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
      out_dir: folder for ``checkpoint/``, ``model/`` and ``config.json``.
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


def held_out(config: Mapping, n_images: int | None, checkpoint: str):
    """The held-out images of the dataset a training config records.

    Args:
      config: a run's config (``config.json`` of `train_model`).
      n_images: None (all) or the number of first held-out images kept.
      checkpoint: the run's folder, named in the error message.

    Returns:
      ``(spec, x_test, y_test)``: the `DatasetSpec`, images [N, S, S, 1] and
      labels [N].

    Raises:
      ValueError: if the config records no dataset.
    """
    extra = config.get("extra") or {}
    if "dataset" not in extra:
        raise ValueError(
            f"`checkpoint` {checkpoint!r} records no dataset (it was not written by "
            f"`sigcnn train`), so its held-out images are unknown.")
    spec = DatasetSpec.from_dict(extra["dataset"])
    _, _, x_test, y_test = load_dataset(spec)
    if n_images is not None:
        if n_images > x_test.shape[0]:
            raise ValueError(
                f"`n_images` must be at most the {x_test.shape[0]} held-out images "
                f"of the {spec.name!r} dataset the model in {checkpoint!r} was "
                f"trained on; got {n_images}.")
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
    spec, x, y = held_out(config, n_images, checkpoint)
    result = shift_test.run_shift_test(module, x, y, key=key, progress=progress,
                                       **options)
    return result, config, spec
