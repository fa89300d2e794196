"""The shift-test protocol runner: the paper's Table 1 for any classifier.

`run_shift_test` measures how a classifier's output changes under small image
transformations, with the geometry of Azulay & Weiss (2019), and returns a
frozen `ShiftTestResult` that serialises to JSON (`ShiftTestResult.to_dict`)
and prints as a Table-1-like text table (`format_table`).

Protocols. Each builds, for every image, T = n_pairs + 1 frames with
`sigcnn.shifts` (jitted, vmapped over images and frames) and compares the
logits of consecutive frames (the authors' consecutive pairs). With the
defaults ``n_pairs=8``, ``step=1``, ``direction="diagonal"`` a pair moves the
content by one pixel in both x and y, as in the authors' code:

* ``"circular"``: ``jnp.roll`` by (k·step, k·step), k = 0..n_pairs.
* ``"subpixel"``: band-limited Fourier shift (`sigcnn.fourier_shift`) by
  (k·subpixel_step, k·subpixel_step), half a pixel per pair by default.
* ``"crop"``: the image is first resized (antialiased, `resize_method`) from
  (H, W) to (H + crop_margin, W + crop_margin), as the authors'
  ``RandomResizedCrop(234)`` does for their 224 crops (margin 10, the whole
  image, no random aspect ratio); then (H, W) windows are taken at the
  offsets c = center - n_pairs // 2 .. with center = (margin - 1) // 2 (for
  224/234: c = 0..8). With ``crop_resize=False`` the image is not resized and
  the windows are (H - crop_margin, W - crop_margin) instead (the model then
  sees smaller inputs, so it needs a global-pool head). Moving the window by +1
  moves the content by -1 pixel.
* ``"black"``: the image is resized to (int(H / embed_factor),
  int(W / embed_factor)) (the authors' w = int(224 / s) with s = 1.3, 1.6,
  1.9) and pasted into an (H, W) canvas of value `fill` at the same centred
  diagonal offsets. The authors paste after mean/std normalisation, so their
  "black" is 0 in normalised units (mean gray); `fill` defaults to 0.
* ``"inpaint"``: as ``"black"``, with the background filled by the authors'
  iterated normalized convolution (`sigcnn.shifts.inpaint`).
* ``"scale"``: the embedded object of the first frame grows by `step` pixels
  per pair, centred in the canvas (`sigcnn.shifts.scale_schedule`).

Per protocol (`ProtocolResult`): P(top-1 change) over all N·n_pairs pairs with
a binomial (Wilson) interval, or a cluster bootstrap over images with
``p_ci="bootstrap"`` (the pairs of one image are correlated, so the binomial
interval is optimistic); MAC (the first frame's top class, the authors'
definition) with a bootstrap interval over images; top-1 accuracy on the first
frames of the pairs with a bootstrap interval over images; and the geometry
(the `sigcnn.shifts.ShiftRecord` dict plus the pairs and preprocessing).

Extras:

* Consistency (`ConsistencyResult`, Zhang 2019): two random offsets per image
  from an explicit key; ``"circular"`` rolls by offsets in [-m, m)² (Chaman &
  Dokmanić's circular consistency) or ``"crop"`` takes (H, W) windows at
  offsets in [0, m)² of the image resized to (H + m, W + m) (Zhang's 224 crops
  of a 256 image: m = 32). The default m is round(H · 32 / 224), at least 1.
* All shifts (`AllShiftsResult`, Michaeli et al. 2023): the logits of every
  circular shift in [0, Sy) × [0, Sx) (S the model's total stride, or
  `all_shifts_extent`) from `sigcnn.all_shifts`, with ``method="atrous"``
  (one undecimated pass) when the network can be undecimated and
  ``method="brute"`` otherwise (data-dependent downsampling such as APS); the
  method that ran is recorded. Robust accuracy counts an image only if every
  shift, the unshifted image included, is classified correctly; the invariant
  fraction counts images whose top-1 class is the same for every shift.
* Jaggedness (`JaggednessResult`, the paper's Figure 1): p(true class) and the
  top-1 class along a dense one-pixel sweep for a few example images, and the
  number of top-1 flips between neighbouring shifts.

Batching. The logits function is jit-compiled once (a Flax NNX module is
evaluated in inference mode through ``nnx.view``, without modifying it) and
called on fixed-size chunks of `chunk` frames (the last one padded), so
memory stays bounded and each frame size compiles once. Images are processed
in groups of max(1, chunk // T) images (T frames per image), and in groups of
max(1, chunk // max(Sy, Sx)) images for all shifts (an undecimated pass holds
deep feature maps at full resolution; ``"brute"`` evaluates chunk // group
shifts at once); `progress` (name, done, total) is called after each group
with the number of images done.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (protocols, Table 1,
  Figure 1; ``CheckTranslationInvariance.py``).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (consistency).
  Chaman & Dokmanić, "Truly shift-invariant convolutional neural networks",
  CVPR 2021 (circular consistency).
  Michaeli, Michaeli & Soudry, "Alias-Free Convnets", CVPR 2023 (accuracy
  under all shifts).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn import metrics
from sigcnn import shifts as _shifts
from sigcnn._checks import (as_pair, check_choice, check_finite,
                            check_float_array, check_nhwc, check_positive_int)

__all__ = [
        "AllShiftsResult",
        "ConsistencyResult",
        "DEFAULT_PROTOCOLS",
        "JaggednessResult",
        "PROTOCOLS",
        "ProtocolResult",
        "ShiftTestResult",
        "format_table",
        "run_shift_test",
]

PROTOCOLS = ("circular", "subpixel", "crop", "black", "inpaint", "scale")
"""Protocol names accepted by `run_shift_test`."""

DEFAULT_PROTOCOLS = ("circular", "crop", "black", "inpaint", "scale")
"""The protocols `run_shift_test` runs by default (all but ``"subpixel"``)."""

_DIRECTIONS = ("diagonal", "horizontal", "vertical")
_SWEEP_PROTOCOLS = ("circular", "crop", "black")
_SWEEP_AXES = ("horizontal", "vertical", "diagonal")
_CONSISTENCY_MODES = ("circular", "crop")
_P_CI_METHODS = ("binomial", "bootstrap")


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def _jsonable(v):
    """Nested dicts/tuples/NumPy values as plain JSON types (lists, floats)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(u) for k, u in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(u) for u in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _pair_list(v):
    return None if v is None else [float(v[0]), float(v[1])]


def _pair_tuple(v):
    return None if v is None else (float(v[0]), float(v[1]))


@dataclasses.dataclass(frozen=True)
class ProtocolResult:
    """P(top-1 change), MAC and accuracy of one protocol.

    Attributes:
      name: the protocol, one of `PROTOCOLS`.
      p_top1_change: fraction of frame pairs whose top-1 class differs.
      p_top1_change_ci: (low, high) confidence interval of it.
      p_ci_method: ``"binomial"`` (Wilson, over all pairs) or ``"bootstrap"``
        (over images).
      mac: mean absolute change of the first frame's top-class probability.
      mac_ci: (low, high) bootstrap interval over images.
      accuracy: top-1 accuracy on the first frames of the pairs.
      accuracy_ci: (low, high) bootstrap interval over images.
      p_by_pair: P(top-1 change) of each pair position, length n_pairs.
      n_images: number of images N.
      n_pairs: number of compared pairs, N · pairs_per_image.
      pairs_per_image: pairs per image.
      geometry: the `sigcnn.shifts.ShiftRecord` dict of the frames, plus
        ``pairs`` (frame indices compared), ``step``, ``direction`` and, for
        crops, ``resized_to``.
      seconds: wall time of the protocol (frames, logits and metrics).
    """

    name: str
    p_top1_change: float
    p_top1_change_ci: tuple
    p_ci_method: str
    mac: float
    mac_ci: tuple
    accuracy: float
    accuracy_ci: tuple
    p_by_pair: tuple
    n_images: int
    n_pairs: int
    pairs_per_image: int
    geometry: dict
    seconds: float

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        for k in ("p_top1_change_ci", "mac_ci", "accuracy_ci"):
            d[k] = _pair_list(d[k])
        d["p_by_pair"] = [float(v) for v in self.p_by_pair]
        d["geometry"] = _jsonable(self.geometry)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "ProtocolResult":
        """Inverse of `to_dict`."""
        d = dict(d)
        for k in ("p_top1_change_ci", "mac_ci", "accuracy_ci"):
            d[k] = _pair_tuple(d[k])
        d["p_by_pair"] = tuple(float(v) for v in d["p_by_pair"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class ConsistencyResult:
    """Zhang-style consistency: agreement of top-1 at two random offsets.

    Attributes:
      mode: ``"circular"`` (rolls) or ``"crop"`` (windows of a resized image).
      max_shift: m; offsets lie in [-m, m)² (circular) or [0, m)² (crop).
      consistency: fraction of images whose two frames have the same top-1.
      consistency_ci: (low, high) Wilson interval over images.
      accuracy: top-1 accuracy over both frames.
      n_images: number of images N (one pair each).
      offsets: per image the two offsets, nested lists [N][2][2].
      geometry: the `sigcnn.shifts.ShiftRecord` dict of the frames (its
        offsets replaced by the count) plus ``resized_to`` for crops.
      seconds: wall time.
    """

    mode: str
    max_shift: int
    consistency: float
    consistency_ci: tuple
    accuracy: float
    n_images: int
    offsets: tuple
    geometry: dict
    seconds: float

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["consistency_ci"] = _pair_list(d["consistency_ci"])
        d["offsets"] = _jsonable(self.offsets)
        d["geometry"] = _jsonable(self.geometry)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "ConsistencyResult":
        """Inverse of `to_dict`."""
        d = dict(d)
        d["consistency_ci"] = _pair_tuple(d["consistency_ci"])
        d["offsets"] = _nested_tuple(d["offsets"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class AllShiftsResult:
    """Accuracy and invariance under every circular shift of an Sy × Sx grid.

    Attributes:
      method: ``"atrous"`` or ``"brute"``, the `sigcnn.all_shifts` method that
        ran.
      fallback_reason: why ``"atrous"`` was not used (the first line of its
        error), or None.
      extent: (Sy, Sx); shifts (ty, tx) with 0 <= ty < Sy, 0 <= tx < Sx.
      robust_accuracy: fraction of images classified correctly at every shift
        (the unshifted image included).
      robust_accuracy_ci: (low, high) Wilson interval over images.
      invariant_fraction: fraction of images whose top-1 class is the same at
        every shift.
      invariant_fraction_ci: (low, high) Wilson interval over images.
      accuracy: accuracy of the unshifted images.
      mean_accuracy: accuracy averaged over all shifts.
      accuracy_by_shift: accuracy at each shift, nested [Sy][Sx].
      n_images: number of images N.
      seconds: wall time.
    """

    method: str
    fallback_reason: str | None
    extent: tuple
    robust_accuracy: float
    robust_accuracy_ci: tuple
    invariant_fraction: float
    invariant_fraction_ci: tuple
    accuracy: float
    mean_accuracy: float
    accuracy_by_shift: tuple
    n_images: int
    seconds: float

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        for k in ("robust_accuracy_ci", "invariant_fraction_ci"):
            d[k] = _pair_list(d[k])
        d["extent"] = [int(v) for v in self.extent]
        d["accuracy_by_shift"] = _jsonable(self.accuracy_by_shift)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "AllShiftsResult":
        """Inverse of `to_dict`."""
        d = dict(d)
        for k in ("robust_accuracy_ci", "invariant_fraction_ci"):
            d[k] = _pair_tuple(d[k])
        d["extent"] = tuple(int(v) for v in d["extent"])
        d["accuracy_by_shift"] = _nested_tuple(d["accuracy_by_shift"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class JaggednessResult:
    """p(true class) and top-1 along a dense one-pixel sweep (Figure 1).

    Attributes:
      protocol: ``"circular"``, ``"crop"`` or ``"black"``.
      axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.
      indices: indices of the example images, length k.
      labels: their labels, length k.
      shifts: the sweep coordinate of each frame, length T: the shift in
        pixels (circular), the window offset (crop) or the object offset
        (black) along the swept axis (the row offset for diagonal sweeps).
      offsets: per frame the (row, col) shift or offset, [T][2].
      p_correct: softmax probability of the true class, [k][T].
      top1: top-1 class, [k][T].
      flips: number of top-1 changes between neighbouring frames, length k.
      geometry: the `sigcnn.shifts.ShiftRecord` dict of the frames (its
        offsets given in `offsets`), plus ``resized_to`` for crops.
    """

    protocol: str
    axis: str
    indices: tuple
    labels: tuple
    shifts: tuple
    offsets: tuple
    p_correct: tuple
    top1: tuple
    flips: tuple
    geometry: dict

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        for k in ("indices", "labels", "shifts", "offsets", "p_correct", "top1",
                  "flips"):
            d[k] = _jsonable(getattr(self, k))
        d["geometry"] = _jsonable(self.geometry)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "JaggednessResult":
        """Inverse of `to_dict`."""
        d = dict(d)
        for k in ("indices", "labels", "shifts", "offsets", "p_correct", "top1",
                  "flips"):
            d[k] = _nested_tuple(d[k])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class ShiftTestResult:
    """All results of `run_shift_test`.

    Attributes:
      protocols: one `ProtocolResult` per protocol, in the order asked for.
      consistency: a `ConsistencyResult`, or None if not run.
      all_shifts: an `AllShiftsResult`, or None if not run.
      jaggedness: a `JaggednessResult`, or None if not run.
      n_images: number of images N.
      num_classes: number of logits K.
      input_size: (H, W) of the images.
      settings: the options of the run (JSON-serialisable).
      seconds: total wall time.
    """

    protocols: tuple
    consistency: ConsistencyResult | None
    all_shifts: AllShiftsResult | None
    jaggedness: JaggednessResult | None
    n_images: int
    num_classes: int
    input_size: tuple
    settings: dict
    seconds: float

    def protocol(self, name: str) -> ProtocolResult:
        """The `ProtocolResult` of protocol `name`.

        Raises:
          KeyError: if `name` was not run.
        """
        for p in self.protocols:
            if p.name == name:
                return p
        raise KeyError(
                f"protocol {name!r} was not run; ran "
                f"{[p.name for p in self.protocols]}.")

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict (``json.dumps`` works on it)."""
        return {
                "protocols": [p.to_dict() for p in self.protocols],
                "consistency": None if self.consistency is None
                else self.consistency.to_dict(),
                "all_shifts": None if self.all_shifts is None
                else self.all_shifts.to_dict(),
                "jaggedness": None if self.jaggedness is None
                else self.jaggedness.to_dict(),
                "n_images": int(self.n_images),
                "num_classes": int(self.num_classes),
                "input_size": [int(v) for v in self.input_size],
                "settings": _jsonable(self.settings),
                "seconds": float(self.seconds),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "ShiftTestResult":
        """Inverse of `to_dict` (e.g. on a result read back from JSON)."""
        return cls(
                protocols=tuple(ProtocolResult.from_dict(p) for p in d["protocols"]),
                consistency=None if d.get("consistency") is None
                else ConsistencyResult.from_dict(d["consistency"]),
                all_shifts=None if d.get("all_shifts") is None
                else AllShiftsResult.from_dict(d["all_shifts"]),
                jaggedness=None if d.get("jaggedness") is None
                else JaggednessResult.from_dict(d["jaggedness"]),
                n_images=int(d["n_images"]),
                num_classes=int(d["num_classes"]),
                input_size=tuple(int(v) for v in d["input_size"]),
                settings=dict(d["settings"]),
                seconds=float(d["seconds"]),
        )

    def table(self) -> str:
        """The Table-1-like text table (see `format_table`)."""
        return format_table(self)


def _nested_tuple(v):
    if isinstance(v, (list, tuple)):
        return tuple(_nested_tuple(u) for u in v)
    return v


# ---------------------------------------------------------------------------
# Text table
# ---------------------------------------------------------------------------


def _fmt_ci(value, ci, digits):
    if ci is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _render(header, rows):
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule] + [line(r) for r in table[1:]])


def _as_result(name: str, r) -> ShiftTestResult:
    if isinstance(r, ShiftTestResult):
        return r
    if isinstance(r, Mapping) and "protocols" in r:
        return ShiftTestResult.from_dict(r)
    raise TypeError(
            f"`{name}` must be a ShiftTestResult (or its to_dict()) or a mapping "
            f"name -> ShiftTestResult; got {type(r).__name__}.")


def format_table(results, *, digits: int = 3) -> str:
    """Formats results like the paper's Table 1, as plain text.

    Rows are protocols (one per model and protocol when several models are
    given); columns are P(top-1 change) with its confidence interval, MAC with
    its interval, accuracy on the first frames, and the numbers of images and
    pairs. Consistency follows as a ``random pairs`` row whose P(top-1
    change) is 1 - consistency; all-shifts results follow in a second table
    (fraction of images with the same top-1 at every shift, robust accuracy,
    accuracy unshifted and averaged over shifts).

    Args:
      results: a `ShiftTestResult` (or its ``to_dict()``), or a mapping model
        name -> `ShiftTestResult` (or dict) to compare models side by side.
      digits: decimals shown.

    Returns:
      the table as one string, lines joined by newlines (no trailing newline).

    Raises:
      TypeError: if `results` is not a result or a mapping of them.
      ValueError: if `digits` is not a non-negative int.

    Examples:
      >>> print(format_table(result))             # doctest: +SKIP
      protocol  P(top-1 change) [95% CI]  MAC [95% CI]  accuracy  images  pairs
      --------  ...
      circular  0.062 [0.051, 0.075]      0.038 [...]   0.981     100     800
    """
    if isinstance(digits, (bool, np.bool_)) or not isinstance(
            digits, numbers.Integral) or digits < 0:
        raise ValueError(f"`digits` must be a non-negative int; got {digits!r}.")
    if isinstance(results, Mapping) and "protocols" not in results:
        if not results:
            raise ValueError("`results` must name at least one model; got an empty "
                             "mapping.")
        named = [(str(k), _as_result("results", v)) for k, v in results.items()]
    else:
        named = [(None, _as_result("results", results))]
    conf = named[0][1].settings.get("confidence", 0.95)
    pct = f"{100 * conf:g}%"
    header = ["protocol", f"P(top-1 change) [{pct} CI]", f"MAC [{pct} CI]",
              "accuracy", "images", "pairs"]
    if named[0][0] is not None:
        header = ["model"] + header
    names = []
    for _, r in named:
        for p in r.protocols:
            if p.name not in names:
                names.append(p.name)
    rows = []

    def add(model, cells):
        rows.append(([model] if model is not None else []) + cells)

    for pname in names:
        for model, r in named:
            try:
                p = r.protocol(pname)
            except KeyError:
                continue
            add(model, [p.name, _fmt_ci(p.p_top1_change, p.p_top1_change_ci, digits),
                        _fmt_ci(p.mac, p.mac_ci, digits),
                        f"{p.accuracy:.{digits}f}", str(p.n_images), str(p.n_pairs)])
    notes = []
    for model, r in named:
        c = r.consistency
        if c is not None:
            lo, hi = c.consistency_ci
            add(model, [f"random pairs ({c.mode}, m={c.max_shift})",
                        _fmt_ci(1.0 - c.consistency, (1.0 - hi, 1.0 - lo), digits),
                        "-", f"{c.accuracy:.{digits}f}", str(c.n_images),
                        str(c.n_images)])
            note = ("random pairs: two random offsets per image (Zhang 2019); "
                    "P(top-1 change) = 1 - consistency.")
            if note not in notes:
                notes.append(note)
    text = _render(header, rows)
    if notes:
        text += "\n" + "\n".join(notes)
    arows = []
    for model, r in named:
        a = r.all_shifts
        if a is None:
            continue
        sy, sx = a.extent
        cells = [f"{sy}x{sx}", a.method,
                 _fmt_ci(a.invariant_fraction, a.invariant_fraction_ci, digits),
                 _fmt_ci(a.robust_accuracy, a.robust_accuracy_ci, digits),
                 f"{a.accuracy:.{digits}f}", f"{a.mean_accuracy:.{digits}f}",
                 str(a.n_images)]
        arows.append(([model] if model is not None else []) + cells)
    if arows:
        aheader = ["all shifts", "method", f"top-1 invariant [{pct} CI]",
                   f"robust accuracy [{pct} CI]", "accuracy", "mean accuracy",
                   "images"]
        if named[0][0] is not None:
            aheader = ["model"] + aheader
        text += "\n\n" + _render(aheader, arows)
    return text


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


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


def _check_key(key):
    if key is None or not hasattr(key, "dtype"):
        raise TypeError(
                f"`key` must be a JAX PRNG key, e.g. `jax.random.key(0)`; got "
                f"{key!r}.")
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.dtype != jnp.uint32 or key.shape != (2,):
            raise TypeError(
                    f"`key` must be a JAX PRNG key, e.g. `jax.random.key(0)`; got "
                    f"an array of dtype {key.dtype} and shape {tuple(key.shape)}.")
        key = jax.random.wrap_key_data(key)
    if key.shape != ():
        raise TypeError(
                f"`key` must be a single JAX PRNG key; got a key array of shape "
                f"{tuple(key.shape)}.")
    return key


def _check_labels(labels, n):
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


class _Evaluator:
    """A jitted logits function called on fixed-size chunks of frames."""

    def __init__(self, logits_fn, chunk: int, jit: bool):
        self.chunk = chunk
        if isinstance(logits_fn, nnx.Module):
            module = nnx.view(logits_fn, deterministic=True,
                              use_running_average=True, raise_if_not_found=False)
            graphdef, state = nnx.split(module)

            def run(st, x):
                return nnx.merge(graphdef, st)(x)

            run = jax.jit(run) if jit else run
            self.fn = functools.partial(run, state)
            self.traceable = module
        else:
            self.fn = jax.jit(logits_fn) if jit else logits_fn
            self.traceable = logits_fn

    def probe(self, shape, dtype):
        """K for frames of the given shape [h, w, C], or raises."""
        spec = jax.ShapeDtypeStruct((1,) + tuple(shape), dtype)
        try:
            out = jax.eval_shape(self.fn, spec)
        except Exception as e:
            raise ValueError(
                    f"`logits_fn` failed on a batch of shape {spec.shape} (the frames "
                    f"of the protocols asked for): {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}") from e
        ok = hasattr(out, "shape") and len(out.shape) == 2 and out.shape[0] == 1 and (
                jnp.issubdtype(out.dtype, jnp.floating))
        if not ok:
            raise ValueError(
                    f"`logits_fn` must map float images [N, H, W, C] to float logits "
                    f"[N, K]; on input {spec.shape} it returned "
                    f"{jax.tree.map(lambda a: (a.shape, str(a.dtype)), out)}.")
        return int(out.shape[1])

    def __call__(self, frames) -> np.ndarray:
        """Logits of frames [M, h, w, C] as a NumPy array [M, K]."""
        m = frames.shape[0]
        out = []
        for s in range(0, m, self.chunk):
            piece = frames[s:s + self.chunk]
            k = piece.shape[0]
            if k < self.chunk:
                piece = np.asarray(piece)
                pad = [(0, self.chunk - k)] + [(0, 0)] * (piece.ndim - 1)
                piece = np.pad(piece, pad, mode="edge")
            out.append(np.asarray(self.fn(piece))[:k])
        return np.concatenate(out, axis=0)


def _groups(n, size):
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _pad_images(x, size):
    """x [g, ...] padded along axis 0 to `size` by repeating its last image."""
    g = x.shape[0]
    if g == size:
        return x
    x = np.asarray(x)
    return np.concatenate([x, np.repeat(x[-1:], size - g, axis=0)], axis=0)


# ---------------------------------------------------------------------------
# Protocol plans (geometry, built before any evaluation)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Plan:
    name: str
    offsets: np.ndarray          # [T, 2]
    pairs: np.ndarray            # [P, 2]
    frame_size: tuple
    sizes: np.ndarray | None = None
    extra: dict = dataclasses.field(default_factory=dict)


def _moving_offsets(margins, *, n_pairs, step, direction, name):
    """Per axis: moving axes c0 + k*step (the authors' centring), others centred."""
    moving = {"diagonal": (True, True), "horizontal": (False, True),
              "vertical": (True, False)}[direction]
    cols = []
    for axis in range(2):
        margin = margins[axis]
        if moving[axis]:
            center = (margin - 1) // 2
            c = center - (n_pairs // 2) * step + step * np.arange(n_pairs + 1)
            if c[0] < 0 or c[-1] > margin:
                raise ValueError(
                        f"the {name!r} protocol leaves a margin of {margin} pixels on "
                        f"axis {axis}, too small for `n_pairs`={n_pairs} pairs of "
                        f"`step`={step} pixels around center {center} (offsets "
                        f"{int(c[0])}..{int(c[-1])} must lie in [0, {margin}]); reduce "
                        f"`n_pairs` or `step`, or enlarge the margin.")
        else:
            c = np.full(n_pairs + 1, margin // 2)
        cols.append(c)
    return np.stack(cols, axis=1).astype(np.int64)


def _diag_direction(direction):
    return {"diagonal": (1, 1), "horizontal": (0, 1), "vertical": (1, 0)}[direction]


def _embed_size(size, factor):
    h, w = int(size[0] / factor), int(size[1] / factor)
    if h < 1 or w < 1:
        raise ValueError(
                f"`embed_factor`={factor} shrinks the {size} images to nothing "
                f"({(h, w)}); use a smaller factor.")
    return h, w


def _make_plan(name, size, opts) -> _Plan:
    n_pairs, step, direction = opts["n_pairs"], opts["step"], opts["direction"]
    pairs = np.stack([np.arange(n_pairs), np.arange(1, n_pairs + 1)], axis=1)
    common = dict(step=step, direction=direction)
    if name == "circular":
        d = np.asarray(_diag_direction(direction))
        offsets = (np.arange(n_pairs + 1)[:, None] * step * d[None, :]).astype(np.int64)
        return _Plan(name, offsets, pairs, size, extra=common)
    if name == "subpixel":
        d = np.asarray(_diag_direction(direction), np.float64)
        offsets = np.arange(n_pairs + 1)[:, None] * opts["subpixel_step"] * d[None, :]
        return _Plan(name, offsets, pairs, size,
                     extra=dict(step=opts["subpixel_step"], direction=direction))
    if name == "crop":
        m = opts["crop_margin"]
        if opts["crop_resize"]:
            big, win = (size[0] + m, size[1] + m), size
            extra = dict(common, resized_to=big, resize_method=opts["resize_method"],
                         antialias=True)
        else:
            big, win = size, (size[0] - m, size[1] - m)
            if win[0] < 1 or win[1] < 1:
                raise ValueError(
                        f"`crop_margin`={m} leaves no window in the {size} images "
                        f"with `crop_resize`=False.")
            extra = dict(common, resized_to=None)
        offsets = _moving_offsets((big[0] - win[0], big[1] - win[1]),
                                  n_pairs=n_pairs, step=step, direction=direction,
                                  name=name)
        return _Plan(name, offsets, pairs, win, extra=dict(extra, window=win,
                                                           image_size=big))
    obj = _embed_size(size, opts["embed_factor"])
    if name in ("black", "inpaint"):
        offsets = _moving_offsets((size[0] - obj[0], size[1] - obj[1]),
                                  n_pairs=n_pairs, step=step, direction=direction,
                                  name=name)
        return _Plan(name, offsets, pairs, size,
                     extra=dict(common, embed_factor=opts["embed_factor"]))
    # scale
    sched = _shifts.scale_schedule(obj, size, n_pairs=n_pairs, step=step)
    return _Plan(name, sched.offsets, pairs, size, sizes=sched.sizes,
                 extra=dict(step=step, direction="grow",
                            embed_factor=opts["embed_factor"]))


def _build_frames(plan: _Plan, x, opts):
    """Frames [g, T, h, w, C] and the ShiftRecord for images x [g, H, W, C]."""
    name = plan.name
    if name == "circular":
        return _shifts.translate(x, plan.offsets, method="circular")
    if name == "subpixel":
        return _shifts.translate(x, plan.offsets, method="fourier")
    if name == "crop":
        if opts["crop_resize"]:
            x = _shifts.resize_images(x, plan.extra["image_size"],
                                      method=opts["resize_method"], antialias=True)
        return _shifts.crop(x, plan.offsets, size=plan.frame_size)
    obj = _embed_size(x.shape[1:3], opts["embed_factor"])
    inpaint = opts["inpaint_method"] if name == "inpaint" else None
    if name in ("black", "inpaint"):
        return _shifts.embed(x, plan.offsets, canvas_size=plan.frame_size,
                             object_size=obj, fill=opts["fill"],
                             method=opts["resize_method"], inpaint=inpaint)
    return _shifts.scale(x, plan.sizes, plan.offsets, canvas_size=plan.frame_size,
                         fill=opts["fill"], method=opts["resize_method"])


def _run_frames(plan, images, evaluator, opts, progress, label):
    """Logits [N, T, K] of every frame of `plan`, in groups of images."""
    n = images.shape[0]
    t = plan.offsets.shape[0]
    g = max(1, evaluator.chunk // t)
    g = min(g, n)
    out, record = [], None
    for s, e in _groups(n, g):
        xg = _pad_images(images[s:e], g)
        frames, rec = _build_frames(plan, xg, opts)
        record = record or rec
        flat = frames.reshape((g * t,) + frames.shape[2:])
        logits = evaluator(flat).reshape(g, t, -1)[:e - s]
        out.append(logits)
        if progress is not None:
            progress(label, e, n)
    return np.concatenate(out, axis=0), record


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def _interval(ci):
    return float(ci.low), float(ci.high)


def _protocol_result(plan, logits, labels, record, opts, key, seconds):
    n = logits.shape[0]
    a = logits[:, plan.pairs[:, 0]]
    b = logits[:, plan.pairs[:, 1]]
    change = np.asarray(metrics.p_top1_change(a, b, reduce=False))   # [N, P]
    mac = metrics.mean_abs_change(a, b, reduce=False)
    correct = metrics.accuracy(a, labels, reduce=False)
    conf, nres = opts["confidence"], opts["n_resamples"]
    k_p, k_mac, k_acc = jax.random.split(key, 3)
    if opts["p_ci"] == "binomial":
        p_ci = metrics.binomial_ci(int(change.sum()), int(change.size),
                                   confidence=conf)
    else:
        p_ci = metrics.bootstrap_ci(jnp.asarray(change), key=k_p,
                                    n_resamples=nres, confidence=conf)
    mac_ci = metrics.bootstrap_ci(mac, key=k_mac, n_resamples=nres, confidence=conf)
    acc_ci = metrics.bootstrap_ci(correct, key=k_acc, n_resamples=nres,
                                  confidence=conf)
    geometry = dict(record.to_dict())
    geometry.update(plan.extra)
    geometry["pairs"] = plan.pairs.tolist()
    return ProtocolResult(
            name=plan.name,
            p_top1_change=float(change.mean()),
            p_top1_change_ci=_interval(p_ci),
            p_ci_method=opts["p_ci"],
            mac=float(mac_ci.estimate),
            mac_ci=_interval(mac_ci),
            accuracy=float(acc_ci.estimate),
            accuracy_ci=_interval(acc_ci),
            p_by_pair=tuple(float(v) for v in change.mean(axis=0)),
            n_images=int(n),
            n_pairs=int(change.size),
            pairs_per_image=int(plan.pairs.shape[0]),
            geometry=_jsonable(geometry),
            seconds=float(seconds))


def _run_consistency(images, labels, evaluator, opts, key, progress):
    t0 = time.perf_counter()
    n, h, w = images.shape[:3]
    mode, m = opts["consistency"], opts["consistency_max_shift"]
    if mode == "circular":
        sched = _shifts.random_pair_schedule(key, n, min_offset=-m, max_offset=m)
    else:
        sched = _shifts.random_pair_schedule(key, n, min_offset=0, max_offset=m)
    offsets = sched.offsets                                       # [N, 2, 2]
    g = min(n, max(1, evaluator.chunk // 2))
    out, record = [], None
    for s, e in _groups(n, g):
        xg = _pad_images(images[s:e], g)
        og = offsets[s:e]
        if e - s < g:
            og = np.concatenate([og, np.repeat(og[-1:], g - (e - s), axis=0)])
        if mode == "circular":
            frames, rec = _shifts.translate(xg, og, method="circular")
        else:
            big = _shifts.resize_images(xg, (h + m, w + m),
                                        method=opts["resize_method"], antialias=True)
            frames, rec = _shifts.crop(big, og, size=(h, w))
        record = record or rec
        flat = frames.reshape((g * 2,) + frames.shape[2:])
        out.append(evaluator(flat).reshape(g, 2, -1)[:e - s])
        if progress is not None:
            progress("consistency", e, n)
    logits = np.concatenate(out, axis=0)
    agree = np.asarray(metrics.consistency(logits[:, 0], logits[:, 1], reduce=False))
    ci = metrics.binomial_ci(int(agree.sum()), int(n), confidence=opts["confidence"])
    geometry = dict(record.to_dict())
    geometry["offsets"] = f"per image, see `offsets` ({n} pairs)"
    geometry["input_size"] = [h + m, w + m] if mode == "crop" else [h, w]
    geometry["resized_to"] = [h + m, w + m] if mode == "crop" else None
    if mode == "crop":
        geometry["resize_method"] = opts["resize_method"]
        geometry["antialias"] = True
    return ConsistencyResult(
            mode=mode, max_shift=int(m), consistency=float(agree.mean()),
            consistency_ci=_interval(ci),
            accuracy=float(metrics.accuracy(logits, labels)),
            n_images=int(n), offsets=_nested_tuple(offsets.tolist()),
            geometry=_jsonable(geometry),
            seconds=float(time.perf_counter() - t0))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _run_all_shifts(images, labels, evaluator, opts, progress):
    from sigcnn.atrous import all_shifts

    t0 = time.perf_counter()
    n = images.shape[0]
    extent = opts["all_shifts_extent"]
    explicit = None if extent is None else _shifts.grid_schedule(extent).offsets
    mode = opts["all_shifts_method"]
    method = "brute" if mode == "brute" else "atrous"
    reason = None
    f = evaluator.traceable

    def call(x, brute_chunk, check=0):
        res = all_shifts(f, x, method=method, shifts=explicit,
                         chunk=brute_chunk if method == "brute" else None,
                         check=check if method == "atrous" else 0)
        if explicit is not None:
            res = res.reshape((x.shape[0],) + tuple(extent) + res.shape[2:])
        return res

    def fall_back(err):
        nonlocal method, reason
        if mode != "auto" or method != "atrous":
            raise err
        method, reason = "brute", _first_line(err)

    # The grid (Sy, Sx) from an abstract evaluation: traces, compiles nothing.
    spec = jax.ShapeDtypeStruct((1,) + tuple(images.shape[1:]), images.dtype)
    while True:
        try:
            shape = jax.eval_shape(lambda x: call(x, None), spec).shape
            break
        except (NotImplementedError, ValueError) as err:
            fall_back(err)
    if len(shape) != 4:
        raise ValueError(
                f"`logits_fn` must return logits [B, K]; `all_shifts` gave shape "
                f"{shape}.")
    # An undecimated pass over one image holds about max(Sy, Sx) strided
    # passes' worth of activations (deep layers at full resolution), so groups
    # of chunk // max(Sy, Sx) images; "brute" then runs chunk // g shifts at once.
    g = min(n, max(1, evaluator.chunk // max(shape[1], shape[2])))
    brute_chunk = max(1, evaluator.chunk // g)
    out, done = [], 0
    while done < n:
        e = min(done + g, n)
        xg = _pad_images(images[done:e], g)
        try:
            res = np.asarray(call(xg, brute_chunk, opts["all_shifts_check"]))
        except (NotImplementedError, ValueError) as err:
            fall_back(err)
            out, done = [], 0
            continue
        out.append(res[:e - done])
        done = e
        if progress is not None:
            progress("all_shifts", done, n)
    logits = np.concatenate(out, axis=0)                          # [N, Sy, Sx, K]
    sy, sx = logits.shape[1:3]
    flat = logits.reshape(n, sy * sx, -1)
    top = np.argmax(flat, axis=-1)
    invariant = np.all(top == top[:, :1], axis=1)
    robust = np.asarray(metrics.robust_accuracy(flat, labels, reduce=False))
    correct = np.asarray(metrics.accuracy(flat, labels, reduce=False))   # [N, P]
    conf = opts["confidence"]
    r_ci = metrics.binomial_ci(int(robust.sum()), int(n), confidence=conf)
    i_ci = metrics.binomial_ci(int(invariant.sum()), int(n), confidence=conf)
    by_shift = correct.mean(axis=0).reshape(sy, sx)
    return AllShiftsResult(
            method=method, fallback_reason=reason, extent=(int(sy), int(sx)),
            robust_accuracy=float(robust.mean()), robust_accuracy_ci=_interval(r_ci),
            invariant_fraction=float(invariant.mean()),
            invariant_fraction_ci=_interval(i_ci),
            accuracy=float(correct[:, 0].mean()), mean_accuracy=float(correct.mean()),
            accuracy_by_shift=_nested_tuple(by_shift.tolist()), n_images=int(n),
            seconds=float(time.perf_counter() - t0))


def _sweep_plan(size, opts):
    protocol, axis = opts["sweep_protocol"], opts["sweep_axis"]
    d = np.asarray(_diag_direction(axis))
    if protocol == "circular":
        period = size[0] if axis == "vertical" else size[1]
        if axis == "diagonal":
            period = min(size)
        steps = opts["sweep_steps"] or period
        offsets = np.arange(steps)[:, None] * d[None, :]
        return offsets.astype(np.int64), {}, size
    if protocol == "crop":
        m = opts["crop_margin"]
        if opts["crop_resize"]:
            big, win = (size[0] + m, size[1] + m), size
        else:
            big, win = size, (size[0] - m, size[1] - m)
        margins = (big[0] - win[0], big[1] - win[1])
        extra = dict(resized_to=big if opts["crop_resize"] else None, window=win)
    else:
        obj = _embed_size(size, opts["embed_factor"])
        margins = (size[0] - obj[0], size[1] - obj[1])
        extra = dict(embed_factor=opts["embed_factor"])
        win = size
    moving = d.astype(bool)
    span = min(margins[i] for i in range(2) if moving[i]) + 1
    steps = min(opts["sweep_steps"] or span, span)
    cols = []
    for i in range(2):
        cols.append(np.arange(steps) if moving[i] else np.full(steps, margins[i] // 2))
    return np.stack(cols, axis=1).astype(np.int64), extra, win


def _run_sweep(images, labels, idx, evaluator, opts, progress):
    size = images.shape[1:3]
    offsets, extra, _ = _sweep_plan(size, opts)
    x = images[np.asarray(idx)]
    lab = labels[np.asarray(idx)]
    protocol = opts["sweep_protocol"]
    if protocol == "circular":
        frames, rec = _shifts.translate(x, offsets, method="circular")
    elif protocol == "crop":
        if opts["crop_resize"]:
            x = _shifts.resize_images(x, extra["resized_to"],
                                      method=opts["resize_method"], antialias=True)
        frames, rec = _shifts.crop(x, offsets, size=extra["window"])
    else:
        obj = _embed_size(size, opts["embed_factor"])
        frames, rec = _shifts.embed(x, offsets, canvas_size=size, object_size=obj,
                                    fill=opts["fill"], method=opts["resize_method"])
    k, t = frames.shape[:2]
    logits = evaluator(frames.reshape((k * t,) + frames.shape[2:])).reshape(k, t, -1)
    p = np.asarray(metrics.true_class_probability(logits, lab))
    top = np.argmax(logits, axis=-1)
    flips = np.asarray(metrics.top1_flips(logits, axis=1)) if t > 1 else np.zeros(k)
    if progress is not None:
        progress("jaggedness", k, k)
    geometry = dict(rec.to_dict())
    geometry["offsets"] = "see `offsets`"
    geometry.update(extra)
    axis = opts["sweep_axis"]
    coord = offsets[:, 1] if axis == "horizontal" else offsets[:, 0]
    return JaggednessResult(
            protocol=protocol, axis=axis,
            indices=tuple(int(i) for i in idx),
            labels=tuple(int(v) for v in lab),
            shifts=tuple(int(v) for v in coord),
            offsets=_nested_tuple(offsets.tolist()),
            p_correct=_nested_tuple(p.astype(np.float64).tolist()),
            top1=_nested_tuple(top.astype(np.int64).tolist()),
            flips=tuple(int(v) for v in np.asarray(flips).reshape(k)),
            geometry=_jsonable(geometry))


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------


def run_shift_test(logits_fn: Callable, images, labels, *, key,
                   protocols: Sequence[str] = DEFAULT_PROTOCOLS,
                   n_pairs: int = 8, step: int = 1, direction: str = "diagonal",
                   subpixel_step: float = 0.5, crop_margin: int = 10,
                   crop_resize: bool = True, embed_factor: float = 1.6,
                   fill=0.0, resize_method: str = "linear",
                   inpaint_method: str = "normalized_conv",
                   consistency: str | None = "circular",
                   consistency_max_shift: int | None = None,
                   all_shifts: bool = True, all_shifts_extent=None,
                   all_shifts_method: str = "auto", all_shifts_check: int = 2,
                   sweep_images=4, sweep_protocol: str = "black",
                   sweep_axis: str = "horizontal", sweep_steps: int | None = None,
                   chunk: int = 256, confidence: float = 0.95,
                   n_resamples: int = 2000, p_ci: str = "binomial",
                   jit: bool = True,
                   progress: Callable[[str, int, int], Any] | None = None,
                   ) -> ShiftTestResult:
    """Runs the paper's shift protocols on a classifier (see the module doc).

    Args:
      logits_fn: a callable mapping float images [B, H, W, C] to logits
        [B, K] (a function, a jitted function, or a Flax NNX module, which is
        evaluated in inference mode without being modified).
      images: float array, shape [N, H, W, C]; finite, in the model's input
        units (e.g. normalised).
      labels: int array, shape [N], classes in [0, K).
      key: a JAX PRNG key; draws the consistency offsets and the bootstrap
        resamples.
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
        the atrous result (`sigcnn.all_shifts`'s ``check``; default 2, about two
        strided forward passes per batch; 0 skips it).
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
      progress: None, or a callable ``progress(name, done, total)`` called
        after each group of images (``name`` a protocol, ``"consistency"``,
        ``"all_shifts"`` or ``"jaggedness"``; ``done`` images of ``total``).

    Returns:
      a `ShiftTestResult`; ``result.to_dict()`` is JSON-serialisable and
      ``format_table(result)`` prints it like the paper's Table 1.

    Raises:
      TypeError: if `logits_fn` is not callable, `images` is not a float
        array, `labels` not integer, `key` not a PRNG key, or an option has
        the wrong type.
      ValueError: if `images` is not [N, H, W, C] with N >= 1 or not finite,
        `labels` does not match it or lies outside [0, K), a protocol name is
        unknown, an option is out of range, the images are too small for the
        geometry asked for, or `logits_fn` does not return logits [B, K].
      NotImplementedError: if ``all_shifts_method="atrous"`` and the network
        cannot be undecimated (``"auto"`` falls back to ``"brute"`` instead).

    Examples:
      >>> import jax
      >>> from sigcnn import models
      >>> from sigcnn.shift_test import run_shift_test, format_table
      >>> net = models.create("vgg_tiny", key=0, padding="circular")
      >>> x = jax.random.normal(jax.random.key(1), (8, 32, 32, 3))
      >>> y = jax.numpy.arange(8) % 10
      >>> res = run_shift_test(net, x, y, key=jax.random.key(2),
      ...                      protocols=("circular",), step=4,
      ...                      sweep_images=0, consistency=None)
      >>> res.protocol("circular").p_top1_change      # stride 4: invariant
      0.0

    References:
      Azulay & Weiss, JMLR 2019, Section 2 and Table 1
      (``CheckTranslationInvariance.py``).
      Zhang, ICML 2019 (consistency). Michaeli et al., CVPR 2023 (accuracy
      under all shifts).
    """
    t_start = time.perf_counter()
    if not callable(logits_fn):
        raise TypeError(
                f"`logits_fn` must be callable (images [B, H, W, C] -> logits "
                f"[B, K]); got {logits_fn!r} of type {type(logits_fn).__name__}.")
    images = check_float_array("images", images)
    images = check_nhwc("images", images)
    n, h, w, c = images.shape
    if n < 1 or h < 1 or w < 1 or c < 1:
        raise ValueError(
                f"`images` must hold at least one non-empty image [N, H, W, C]; got "
                f"shape {tuple(images.shape)}.")
    check_finite("images", images)
    labels = _check_labels(labels, n)
    key = _check_key(key)
    protocols = _check_protocols(protocols)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    step = check_positive_int("step", step)
    direction = check_choice("direction", direction, _DIRECTIONS)
    subpixel_step = _check_pos_float("subpixel_step", subpixel_step)
    crop_margin = check_positive_int("crop_margin", crop_margin)
    crop_resize = _check_bool("crop_resize", crop_resize)
    embed_factor = _check_pos_float("embed_factor", embed_factor, above=1.0)
    fill = _check_fill(fill, c)
    resize_method = check_choice("resize_method", resize_method,
                                 _shifts.RESIZE_METHODS)
    inpaint_method = check_choice("inpaint_method", inpaint_method,
                                  ("normalized_conv", "biharmonic"))
    if consistency is not None:
        consistency = check_choice("consistency", consistency, _CONSISTENCY_MODES)
    consistency_max_shift = _check_optional_int(
            "consistency_max_shift", consistency_max_shift, "the largest offset m")
    if consistency_max_shift is None:
        consistency_max_shift = max(1, int(round(h * 32 / 224)))
    all_shifts = _check_bool("all_shifts", all_shifts)
    if isinstance(all_shifts_check, (bool, np.bool_)) or not isinstance(
            all_shifts_check, (int, np.integer)) or all_shifts_check < 0:
        raise ValueError(f"`all_shifts_check` must be a non-negative int; got "
                         f"{all_shifts_check!r}.")
    if all_shifts_extent is not None:
        all_shifts_extent = as_pair("all_shifts_extent", all_shifts_extent)
    all_shifts_method = check_choice("all_shifts_method", all_shifts_method,
                                     ("auto", "atrous", "brute"))
    sweep_idx = _check_sweep_images(sweep_images, n)
    sweep_protocol = check_choice("sweep_protocol", sweep_protocol, _SWEEP_PROTOCOLS)
    sweep_axis = check_choice("sweep_axis", sweep_axis, _SWEEP_AXES)
    sweep_steps = _check_optional_int("sweep_steps", sweep_steps,
                                      "the number of sweep frames")
    chunk = check_positive_int("chunk", chunk)
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(
            confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ValueError(
                f"`confidence` must be a float in (0, 1), e.g. 0.95; got "
                f"{confidence!r}.")
    confidence = float(confidence)
    n_resamples = check_positive_int("n_resamples", n_resamples)
    p_ci = check_choice("p_ci", p_ci, _P_CI_METHODS)
    jit = _check_bool("jit", jit)
    if progress is not None and not callable(progress):
        raise TypeError(
                f"`progress` must be None or a callable (name, done, total); got "
                f"{progress!r}.")

    opts = dict(n_pairs=n_pairs, step=step, direction=direction,
                subpixel_step=subpixel_step, crop_margin=crop_margin,
                crop_resize=crop_resize, embed_factor=embed_factor, fill=fill,
                resize_method=resize_method, inpaint_method=inpaint_method,
                consistency=consistency, consistency_max_shift=consistency_max_shift,
                all_shifts_extent=all_shifts_extent,
                all_shifts_method=all_shifts_method,
                all_shifts_check=all_shifts_check,
                sweep_protocol=sweep_protocol, sweep_axis=sweep_axis,
                sweep_steps=sweep_steps, confidence=confidence,
                n_resamples=n_resamples, p_ci=p_ci)

    # Geometry first: every plan raises on a bad size before any evaluation.
    size = (h, w)
    plans = [_make_plan(name, size, opts) for name in protocols]
    sweep = None
    if sweep_idx:
        sweep = _sweep_plan(size, opts)
        if sweep[0].shape[0] < 2:
            raise ValueError(
                    f"the {sweep_protocol!r} sweep of the {size} images has a single "
                    f"position; use another `sweep_protocol` or larger images.")
    evaluator = _Evaluator(logits_fn, chunk, jit)
    frame_sizes = {size} | {p.frame_size for p in plans}
    if sweep is not None:
        frame_sizes.add(tuple(sweep[2]))
    num_classes = None
    for fs in sorted(frame_sizes):
        k = evaluator.probe((fs[0], fs[1], c), images.dtype)
        num_classes = k if num_classes is None else num_classes
        if k != num_classes:
            raise ValueError(
                    f"`logits_fn` returns {num_classes} logits on {size} images but "
                    f"{k} on {fs} frames.")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
                f"`labels` must lie in [0, K) = [0, {num_classes}) (K from "
                f"`logits_fn`); got {int(bad.sum())} out-of-range value(s), e.g. "
                f"{int(labels[bad][0])}.")

    k_proto, k_cons = jax.random.split(key)
    results = []
    for i, plan in enumerate(plans):
        t0 = time.perf_counter()
        logits, record = _run_frames(plan, images, evaluator, opts, progress,
                                     plan.name)
        results.append(_protocol_result(
                plan, logits, labels, record, opts,
                jax.random.fold_in(k_proto, i), time.perf_counter() - t0))

    cons = None
    if consistency is not None:
        cons = _run_consistency(images, labels, evaluator, opts, k_cons, progress)
    alls = None
    if all_shifts:
        alls = _run_all_shifts(images, labels, evaluator, opts, progress)
    jag = None
    if sweep_idx:
        jag = _run_sweep(images, labels, sweep_idx, evaluator, opts, progress)

    settings = dict(
            protocols=list(protocols), n_pairs=n_pairs, step=step,
            direction=direction, subpixel_step=subpixel_step,
            crop_margin=crop_margin, crop_resize=crop_resize,
            embed_factor=embed_factor, fill=fill, resize_method=resize_method,
            inpaint_method=inpaint_method, consistency=consistency,
            consistency_max_shift=consistency_max_shift if consistency else None,
            all_shifts=all_shifts,
            all_shifts_extent=None if all_shifts_extent is None
            else list(all_shifts_extent),
            all_shifts_method=all_shifts_method,
            sweep_images=list(sweep_idx), sweep_protocol=sweep_protocol,
            sweep_axis=sweep_axis, sweep_steps=sweep_steps, chunk=chunk,
            confidence=confidence, n_resamples=n_resamples, p_ci=p_ci,
            key=np.asarray(jax.random.key_data(key)).tolist())
    return ShiftTestResult(
            protocols=tuple(results), consistency=cons, all_shifts=alls,
            jaggedness=jag, n_images=int(n), num_classes=int(num_classes),
            input_size=(int(h), int(w)), settings=_jsonable(settings),
            seconds=float(time.perf_counter() - t_start))

