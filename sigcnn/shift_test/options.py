"""Options of the shift test: names, defaults and their validation.

`ShiftTestOptions` holds every keyword option of
`sigcnn.shift_test.run_shift_test` with its default; `resolve` checks them
against the images (sizes, channels) before any evaluation and returns the
plain dict the runner uses. Every check raises with the option's name, its
value and what was expected.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Sequence

import jax
import numpy as np

from sigcnn import shifts as _shifts
from sigcnn._checks import as_pair, check_choice, check_positive_int

__all__ = ["DEFAULT_PROTOCOLS", "PROTOCOLS", "ShiftTestOptions"]

PROTOCOLS = ("circular", "subpixel", "crop", "black", "inpaint", "scale")
"""Protocol names accepted by `run_shift_test`."""

DEFAULT_PROTOCOLS = ("circular", "crop", "black", "inpaint", "scale")
"""The protocols `run_shift_test` runs by default (all but ``"subpixel"``)."""

DIRECTIONS = ("diagonal", "horizontal", "vertical")
SWEEP_PROTOCOLS = ("circular", "crop", "black")
SWEEP_AXES = ("horizontal", "vertical", "diagonal")
CONSISTENCY_MODES = ("circular", "crop")
P_CI_METHODS = ("binomial", "bootstrap")
ALL_SHIFTS_METHODS = ("auto", "atrous", "brute")
INPAINT_METHODS = ("normalized_conv", "biharmonic")


@dataclasses.dataclass(frozen=True)
class ShiftTestOptions:
    """The keyword options of `run_shift_test`, with the paper's defaults.

    Attributes:
      protocols: names from `PROTOCOLS` (a name or a sequence), run in order.
      n_pairs: positive int; consecutive pairs per image (8 as the authors).
      step: positive int; pixels per pair of the translations (and growth per
        pair of ``"scale"``). With a multiple of the total stride S of a
        circularly padded network with a global-pool head, ``"circular"``
        gives P(top-1 change) == 0.
      direction: ``"diagonal"`` (the authors'), ``"horizontal"`` or
        ``"vertical"``; translation direction of the pairs.
      subpixel_step: positive float; shift per pair of ``"subpixel"``.
      crop_margin: positive int; the authors' 234 - 224 = 10.
      crop_resize: resize the image to (H + margin, W + margin) before
        cropping (H, W) windows (True), or crop (H - margin, W - margin)
        windows of the image as is (False).
      embed_factor: float > 1; ``"black"``, ``"inpaint"`` and ``"scale"``
        resize the image to int(H / embed_factor) × int(W / embed_factor).
      fill: canvas value (float, or one per channel); 0 is the authors'
        mean-gray canvas for normalised inputs.
      resize_method: `sigcnn.shifts.RESIZE_METHODS` kernel (antialiased).
      inpaint_method: ``"normalized_conv"`` (the authors') or
        ``"biharmonic"`` (scikit-image, slow) for ``"inpaint"``.
      consistency: ``"circular"``, ``"crop"`` or None (skip).
      consistency_max_shift: m, or None for round(H · 32 / 224) (at least 1).
      all_shifts: run the all-shifts robust accuracy.
      all_shifts_extent: None (the network's total stride, found by
        `sigcnn.all_shifts`) or a positive int or pair (Sy, Sx).
      all_shifts_method: ``"auto"`` (``"atrous"``, falling back to
        ``"brute"`` when the network cannot be undecimated), ``"atrous"`` or
        ``"brute"``.
      all_shifts_check: shifts per batch recomputed by brute force to certify
        the atrous result (`sigcnn.all_shifts`'s ``check``; default 2, about
        two strided forward passes per batch; 0 skips it).
      sweep_images: int k (the first k images), a sequence of image indices,
        or None / 0 (skip the jaggedness sweep).
      sweep_protocol: ``"black"`` (the paper's Figure 1: an embedded object
        moving across the canvas), ``"crop"`` or ``"circular"``.
      sweep_axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.
      sweep_steps: None (the whole range: every position of the object or
        window, or one period W of a circular shift) or a positive int cap.
      chunk: positive int; frames per call of the logits function.
      confidence: float in (0, 1), for every interval.
      n_resamples: positive int; bootstrap resamples.
      p_ci: ``"binomial"`` (Wilson over all pairs) or ``"bootstrap"`` (over
        images) for P(top-1 change).
      jit: jit-compile the logits function.
      mesh: None, or a :class:`jax.sharding.Mesh`: every batch of frames (and
        of images for the all-shifts accuracy) is split over all its devices,
        ``chunk`` rounded up to a multiple of their number. The numbers equal
        a one-device run to float rounding.

    Examples:
      >>> opts = ShiftTestOptions(protocols=("crop",), n_pairs=4)
      >>> opts.resolve((2, 32, 32, 3))["n_pairs"]
      4
    """

    protocols: Sequence[str] = DEFAULT_PROTOCOLS
    n_pairs: int = 8
    step: int = 1
    direction: str = "diagonal"
    subpixel_step: float = 0.5
    crop_margin: int = 10
    crop_resize: bool = True
    embed_factor: float = 1.6
    fill: Any = 0.0
    resize_method: str = "linear"
    inpaint_method: str = "normalized_conv"
    consistency: str | None = "circular"
    consistency_max_shift: int | None = None
    all_shifts: bool = True
    all_shifts_extent: Any = None
    all_shifts_method: str = "auto"
    all_shifts_check: int = 2
    sweep_images: Any = 4
    sweep_protocol: str = "black"
    sweep_axis: str = "horizontal"
    sweep_steps: int | None = None
    chunk: int = 256
    confidence: float = 0.95
    n_resamples: int = 2000
    p_ci: str = "binomial"
    jit: bool = True
    mesh: Any = None

    @classmethod
    def from_kwargs(cls, options: "ShiftTestOptions | None" = None,
                    **kwargs) -> "ShiftTestOptions":
        """`options` (or the defaults) with `kwargs` replacing fields by name.

        Raises:
          TypeError: if `options` is not a `ShiftTestOptions` or a keyword is
            not one of its fields.
        """
        if options is None:
            options = cls()
        elif not isinstance(options, cls):
            raise TypeError(f"`options` must be a ShiftTestOptions or None; got "
                            f"{type(options).__name__}.")
        names = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(kwargs) - set(names))
        if bad:
            raise TypeError(f"unknown shift-test option(s) {bad}; the options are "
                            f"{names}.")
        return dataclasses.replace(options, **kwargs)

    def resolve(self, shape) -> dict:
        """The validated options for images of `shape` [N, H, W, C], as a dict.

        Raises:
          TypeError, ValueError: naming the first bad option.
        """
        n, h, w, c = (int(v) for v in shape)
        o = dict(
                protocols=_check_protocols(self.protocols),
                n_pairs=check_positive_int("n_pairs", self.n_pairs),
                step=check_positive_int("step", self.step),
                direction=check_choice("direction", self.direction, DIRECTIONS),
                subpixel_step=_check_pos_float("subpixel_step", self.subpixel_step),
                crop_margin=check_positive_int("crop_margin", self.crop_margin),
                crop_resize=_check_bool("crop_resize", self.crop_resize),
                embed_factor=_check_pos_float("embed_factor", self.embed_factor,
                                              above=1.0),
                fill=_check_fill(self.fill, c),
                resize_method=check_choice("resize_method", self.resize_method,
                                           _shifts.RESIZE_METHODS),
                inpaint_method=check_choice("inpaint_method", self.inpaint_method,
                                            INPAINT_METHODS))
        consistency = self.consistency
        if consistency is not None:
            consistency = check_choice("consistency", consistency,
                                       CONSISTENCY_MODES)
        m = _check_optional_int("consistency_max_shift", self.consistency_max_shift,
                                "the largest offset m")
        if m is None:
            m = max(1, int(round(h * 32 / 224)))
        check = self.all_shifts_check
        if isinstance(check, (bool, np.bool_)) or not isinstance(
                check, (numbers.Integral, np.integer)) or check < 0:
            raise ValueError(f"`all_shifts_check` must be a non-negative int; got "
                             f"{check!r}.")
        extent = self.all_shifts_extent
        if extent is not None:
            extent = as_pair("all_shifts_extent", extent)
        confidence = self.confidence
        if isinstance(confidence, (bool, np.bool_)) or not isinstance(
                confidence, numbers.Real) or not 0.0 < confidence < 1.0:
            raise ValueError(
                    f"`confidence` must be a float in (0, 1), e.g. 0.95; got "
                    f"{confidence!r}.")
        o.update(
                consistency=consistency, consistency_max_shift=m,
                all_shifts=_check_bool("all_shifts", self.all_shifts),
                all_shifts_extent=extent,
                all_shifts_method=check_choice("all_shifts_method",
                                               self.all_shifts_method,
                                               ALL_SHIFTS_METHODS),
                all_shifts_check=int(check),
                sweep_images=_check_sweep_images(self.sweep_images, n),
                sweep_protocol=check_choice("sweep_protocol", self.sweep_protocol,
                                            SWEEP_PROTOCOLS),
                sweep_axis=check_choice("sweep_axis", self.sweep_axis, SWEEP_AXES),
                sweep_steps=_check_optional_int("sweep_steps", self.sweep_steps,
                                                "the number of sweep frames"),
                chunk=check_positive_int("chunk", self.chunk),
                confidence=float(confidence),
                n_resamples=check_positive_int("n_resamples", self.n_resamples),
                p_ci=check_choice("p_ci", self.p_ci, P_CI_METHODS),
                jit=_check_bool("jit", self.jit),
                mesh=_check_mesh(self.mesh))
        return o


def _check_mesh(mesh):
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"`mesh` must be None or a jax.sharding.Mesh; got "
                        f"{type(mesh).__name__} {mesh!r}.")
    return mesh


def _check_protocols(protocols) -> tuple[str, ...]:
    if isinstance(protocols, str):
        protocols = (protocols,)
    if not isinstance(protocols, (tuple, list)):
        raise TypeError(
                f"`protocols` must be a sequence of names from {list(PROTOCOLS)}; "
                f"got {protocols!r}.")
    bad = [p for p in protocols if not isinstance(p, str) or p not in PROTOCOLS]
    if bad:
        raise ValueError(
                f"`protocols` has unknown name(s) {bad!r}; valid names are "
                f"{list(PROTOCOLS)}.")
    dup = sorted({p for p in protocols if protocols.count(p) > 1})
    if dup:
        raise ValueError(
                f"`protocols` names {dup!r} more than once; got {protocols!r}.")
    return tuple(protocols)


def check_labels(labels, n):
    """`labels` as int64 [n] class indices, or raises naming `labels`."""
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    dt = np.dtype(labels.dtype)
    if not np.issubdtype(dt, np.integer) or dt == np.bool_:
        raise TypeError(
                f"`labels` must be an integer array of class indices; got dtype "
                f"{dt.name}.")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
                f"`labels` must have shape [N] = ({n},) to match `images`; got shape "
                f"{labels.shape}.")
    return labels.astype(np.int64)


def _check_pos_float(name, v, *, above=0.0):
    if isinstance(v, (bool, np.bool_)) or not isinstance(
            v, numbers.Real) or not np.isfinite(v) or v <= above:
        raise ValueError(f"`{name}` must be a float > {above:g}; got {v!r}.")
    return float(v)


def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool; got {v!r}.")
    return bool(v)


def _check_optional_int(name, v, what):
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(
                f"`{name}` must be None or a positive int ({what}); got {v!r}.")
    return int(v)


def _check_fill(fill, channels):
    try:
        arr = np.asarray(fill, np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or isinstance(fill, (bool, np.bool_)) or arr.ndim > 1 or (
            arr.ndim == 1 and arr.shape[0] != channels) or not np.all(np.isfinite(arr)):
        raise ValueError(
                f"`fill` must be a finite float or a sequence of {channels} floats "
                f"(one per channel); got {fill!r}.")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def _check_sweep_images(v, n):
    if v is None:
        return ()
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(
                f"`sweep_images` must be an int (the first k images), a sequence of "
                f"image indices, or None; got {v!r}.")
    if isinstance(v, numbers.Integral):
        if v < 0:
            raise ValueError(
                    f"`sweep_images` must be a non-negative int (the first k images) "
                    f"or a sequence of indices; got {v!r}.")
        return tuple(range(min(int(v), n)))
    try:
        idx = np.asarray(v)
    except Exception:
        idx = None
    if idx is not None and idx.ndim == 1 and idx.size == 0:
        return ()
    if idx is None or idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or (
            idx.size and (idx.min() < 0 or idx.max() >= n)):
        raise ValueError(
                f"`sweep_images` must be an int (the first k images) or a sequence of "
                f"image indices in [0, {n}); got {v!r}.")
    return tuple(int(i) for i in idx)


# ---------------------------------------------------------------------------
# Logits evaluation
# ---------------------------------------------------------------------------
