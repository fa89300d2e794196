"""The records of the shift protocols: `ShiftRecord` (the geometry of one
protocol run) and `Schedule` (frame offsets and the pairs to compare).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Schedule", "ShiftRecord"]


_OFFSET_CONVENTION = (
        "offsets are the top-left (row, col) of the crop window in the image or of "
        "the object in the canvas; a shift t means jnp.roll(x, t, axis=(1, 2))")


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(u) for k, u in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(u) for u in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclasses.dataclass(frozen=True)
class ShiftRecord:
    """Geometry of one protocol run, for results files.

    Attributes:
      protocol: ``"circular"``, ``"fourier"``, ``"crop"``, ``"embed"`` or
        ``"scale"``.
      offsets: per frame (oy, ox) (or shift (ty, tx) for translations), nested
        per sample when offsets were given per sample.
      input_size: (H, W) of the input images.
      output_size: (h, w) of each frame.
      object_sizes: per frame (h, w) of the content: the crop window, the
        embedded (resized) object, or the input for translations.
      fill: canvas value (a float, or one per channel), or None.
      resize_method: the ``jax.image.resize`` kernel, or None if not resized.
      antialias: whether the resize was antialiased, or None if not resized.
      inpaint: None, ``"normalized_conv"`` or ``"biharmonic"``.
      inpaint_max_iter: iteration cap of the normalized-convolution inpainting.
      inpaint_max_unfilled: it stops once at most this many pixels are unfilled.
      convention: the offset and shift convention, in words.
    """

    protocol: str
    offsets: tuple
    input_size: tuple
    output_size: tuple
    object_sizes: tuple
    fill: Any = None
    resize_method: str | None = None
    antialias: bool | None = None
    inpaint: str | None = None
    inpaint_max_iter: int | None = None
    inpaint_max_unfilled: int | None = None
    convention: str = _OFFSET_CONVENTION

    def to_dict(self) -> dict:
        """The record as a JSON-serialisable dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A shift schedule: frame offsets and the frame pairs to compare.

    Attributes:
      name: e.g. ``"diagonal"``.
      offsets: int (float for sub-pixel sweeps) array, shape [T, 2] (shared by
        the batch) or [N, T, 2] (per sample); pass to a protocol.
      pairs: int array, shape [P, 2]; frame indices (first, second) of each
        compared pair. Compare ``logits[:, pairs[:, 0]]`` with
        ``logits[:, pairs[:, 1]]``.
      sizes: None, or int array [T, 2] of object sizes (scale schedules).
      params: the arguments that produced the schedule.
    """

    name: str
    offsets: np.ndarray
    pairs: np.ndarray
    sizes: np.ndarray | None = None
    params: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The schedule as a JSON-serialisable dict."""
        return _jsonable(dataclasses.asdict(self))
