"""What training and evaluation return: progress events and result records.

`fit` reports its progress as `TrainEvent` values and returns a `FitResult`;
`evaluate` returns an `EvalResult`. All three are plain dataclasses whose
``to_dict`` gives JSON-ready dicts (the model excepted).

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["EvalResult", "FitResult", "TrainEvent"]


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """One progress report from `fit`, passed to its ``progress`` callable.

    Attributes:
      kind: ``"start"`` (before the first step; ``epoch`` is the first epoch to
        run), ``"step"`` (after each optimizer step), ``"epoch"`` (after each
        epoch, once its checkpoint is written) or ``"end"``.
      epoch: 1-based number of the current epoch (for ``"end"``: epochs done).
      epochs: total number of epochs asked for.
      step: 1-based step within the epoch (0 for non-step events).
      steps: steps per epoch.
      loss: for ``"step"``, the batch's mean loss as a 0-d JAX array (not synced
        to the host: call ``float(...)`` only if you display it); else None.
      record: for ``"epoch"``, that epoch's history record; else None.
    """

    kind: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: Any = None
    record: dict | None = None


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Accuracy and mean cross-entropy of a model on a labelled set.

    Attributes:
      accuracy: fraction of images whose argmax logit is the label.
      loss: mean softmax cross-entropy (nats).
      n: number of images.

    Examples:
      >>> r = EvalResult(accuracy=0.5, loss=0.7, n=4)
      >>> r["accuracy"], r.to_dict()["n"]
      (0.5, 4)
    """

    accuracy: float
    loss: float
    n: int

    def __getitem__(self, name: str):
        """Dict-style access: ``result["accuracy"]``."""
        if name not in ("accuracy", "loss", "n"):
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict:
        """``{"accuracy": ..., "loss": ..., "n": ...}``."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
      model: the trained module (the same object `fit` was given, if it was given
        a module), left in evaluation mode.
      history: one dict per finished epoch, in order, including epochs restored
        from a checkpoint: ``epoch`` (1-based), ``train_loss`` and
        ``train_accuracy`` (running means over the epoch's batches, in training
        mode), ``test_loss`` and ``test_accuracy`` (None without test data),
        ``train_seconds`` (wall time of the epoch's steps, compilation
        included) and ``seconds`` (the whole epoch: steps, evaluation,
        checkpoint).
      test_accuracy: accuracy of the final model on the test data (None without).
      test_loss: its mean cross-entropy on the test data (None without).
      wall_time: seconds spent in this call.
      epochs_run: epochs trained in this call (the others came from a checkpoint).
      start_epoch: number of epochs already finished when this call started.
      images_per_second: training images per second over this call's epochs
        (optimizer steps only, the first step's compilation included; 0.0 if
        no epoch ran).
      config: the JSON-ready run configuration (also written to ``config.json``).
    """

    model: Any
    history: list
    test_accuracy: float | None
    test_loss: float | None
    wall_time: float
    epochs_run: int
    start_epoch: int
    images_per_second: float
    config: dict

    def to_dict(self) -> dict:
        """JSON-ready summary (everything but the model)."""
        return {
            "history": self.history,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "wall_time": self.wall_time,
            "epochs_run": self.epochs_run,
            "start_epoch": self.start_epoch,
            "images_per_second": self.images_per_second,
            "config": self.config,
        }
