"""Settings of ``sigcnn report``: `ReportConfig`, `DEFAULT_REPORT`, `QUICK_REPORT`.

The training fields of `ReportConfig` default to `sigcnn.data.BASELINE_TRAINING`
and its dataset to `sigcnn.data.DatasetSpec()`, the same recipe ``sigcnn train``
uses on its defaults, so the report's baseline is the model that command trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers

import numpy as np

from sigcnn._checks import check_choice, check_positive_int
from sigcnn.data.datasets import BASELINE_TRAINING, DatasetSpec

__all__ = [
    "DEFAULT_REPORT",
    "QUICK_REPORT",
    "REPORT_MODELS",
    "VERIFY_MODES",
    "ReportConfig",
    "cache_name",
]

VERIFY_MODES = ("all", "subset", "none")
"""What `make_report` runs of the verification suite."""

REPORT_MODELS = (("baseline", "max"), ("anti-aliased", "blur"))
"""The two models of the report: (label, ``downsample`` mode)."""

_B = BASELINE_TRAINING


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Settings of `make_report` (all JSON-ready; `to_dict` records them).

    Attributes:
      dataset: the `sigcnn.data.DatasetSpec` both models train and are tested
        on (default: the baseline's, ``DatasetSpec()``).
      model: zoo model name.
      width: channel multiplier.
      padding: ``"zero"`` or ``"circular"``.
      blur_size: binomial taps of the anti-aliased model's BlurPool.
      epochs, batch_size, learning_rate, seed, augment_shift: training (the
        same for both models; defaults from `sigcnn.data.BASELINE_TRAINING`).
      n_spectra_images: held-out images the per-layer spectra average over.
      n_shift_images: held-out images of the shift test.
      protocols: shift-test protocols (`sigcnn.shift_test.PROTOCOLS`).
      all_shifts: also measure accuracy under all S x S circular shifts.
      sweep_images: example images of the jaggedness sweep (chosen among the
        held-out images both models classify correctly at the sweep's first
        position).
      verify: ``"all"`` (the full ``sigcnn verify`` suite), ``"subset"``
        (four fast checks) or ``"none"``.
      quick: marks a smoke-test configuration; its page says that the numbers
        mean nothing.
    """

    dataset: DatasetSpec = DatasetSpec()
    model: str = _B["model"]
    width: float = _B["width"]
    padding: str = _B["padding"]
    blur_size: int = _B["blur_size"]
    epochs: int = _B["epochs"]
    batch_size: int = _B["batch_size"]
    learning_rate: float = _B["learning_rate"]
    seed: int = _B["seed"]
    augment_shift: int = _B["augment_shift"]
    n_spectra_images: int = 16
    n_shift_images: int = 500
    protocols: tuple = ("circular", "crop", "black", "inpaint", "scale")
    all_shifts: bool = True
    sweep_images: int = 4
    verify: str = "all"
    quick: bool = False

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
        for name in ("all_shifts", "quick"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"`{name}` must be a bool; got "
                                f"{getattr(self, name)!r}.")
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
    dataset=DatasetSpec(n_train=256), model="vgg_tiny", width=0.5, epochs=1,
    n_spectra_images=2, n_shift_images=16, protocols=("circular", "black"),
    all_shifts=False, sweep_images=2, verify="subset", quick=True)
"""``sigcnn report --quick``: a tiny configuration for smoke tests (vgg_tiny
trained for one epoch on 256 canvases, a shift test on 16 images, four of the
verification checks); its numbers mean nothing."""


def cache_name(label: str, cfg: ReportConfig, downsample: str) -> str:
    """Folder name of one cached model: label, model and a hash of its settings.

    Examples:
      >>> cache_name("baseline", DEFAULT_REPORT, "max")[:19]
      'baseline-vgg_small-'
    """
    settings = {"dataset": cfg.dataset.to_dict(), **cfg.train_options(downsample)}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"{label}-{cfg.model}-{digest[:10]}"
