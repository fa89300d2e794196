"""Results of the shift test and their Table-1-like text table.

`sigcnn.shift_test.run_shift_test` returns a frozen `ShiftTestResult`; its
parts are one `ProtocolResult` per protocol, a `ConsistencyResult`, an
`AllShiftsResult` and a `JaggednessResult`. Each converts to a JSON-ready dict
(``to_dict``) and back (``from_dict``); `format_table` prints one or several
results like the paper's Table 1.

Without labels (a folder of unlabelled images), every accuracy field is None
and the label-free measures (P(top-1 change), MAC, consistency, the fraction of
images whose top-1 class is the same at every shift, the jaggedness sweep) are
still given; `format_table` says that accuracy needs labels.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (Table 1).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Mapping

import numpy as np

from sigcnn._format import render_table
from sigcnn._io import to_jsonable

__all__ = [
        "AllShiftsResult",
        "ConsistencyResult",
        "JaggednessResult",
        "ProtocolResult",
        "ShiftTestResult",
        "as_result",
        "format_table",
]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


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
      accuracy: top-1 accuracy on the first frames of the pairs (None
        without labels).
      accuracy_ci: (low, high) bootstrap interval over images (None without
        labels).
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
    accuracy: float | None
    accuracy_ci: tuple | None
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
        d["geometry"] = to_jsonable(self.geometry)
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
      accuracy: top-1 accuracy over both frames (None without labels).
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
    accuracy: float | None
    n_images: int
    offsets: tuple
    geometry: dict
    seconds: float

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["consistency_ci"] = _pair_list(d["consistency_ci"])
        d["offsets"] = to_jsonable(self.offsets)
        d["geometry"] = to_jsonable(self.geometry)
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
      robust_accuracy: (None without labels) fraction of images classified
        correctly at every shift
        (the unshifted image included).
      robust_accuracy_ci: (low, high) Wilson interval over images, or None.
      invariant_fraction: fraction of images whose top-1 class is the same at
        every shift.
      invariant_fraction_ci: (low, high) Wilson interval over images.
      accuracy: accuracy of the unshifted images (None without labels).
      mean_accuracy: accuracy averaged over all shifts (or None).
      accuracy_by_shift: accuracy at each shift, nested [Sy][Sx] (or None).
      n_images: number of images N.
      seconds: wall time.
    """

    method: str
    fallback_reason: str | None
    extent: tuple
    robust_accuracy: float | None
    robust_accuracy_ci: tuple | None
    invariant_fraction: float
    invariant_fraction_ci: tuple
    accuracy: float | None
    mean_accuracy: float | None
    accuracy_by_shift: tuple | None
    n_images: int
    seconds: float

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        for k in ("robust_accuracy_ci", "invariant_fraction_ci"):
            d[k] = _pair_list(d[k])
        d["extent"] = [int(v) for v in self.extent]
        d["accuracy_by_shift"] = to_jsonable(self.accuracy_by_shift)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "AllShiftsResult":
        """Inverse of `to_dict`."""
        d = dict(d)
        for k in ("robust_accuracy_ci", "invariant_fraction_ci"):
            d[k] = _pair_tuple(d[k])
        d["extent"] = tuple(int(v) for v in d["extent"])
        d["accuracy_by_shift"] = (None if d["accuracy_by_shift"] is None else
                                  _nested_tuple(d["accuracy_by_shift"]))
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class JaggednessResult:
    """p(true class) and top-1 along a dense one-pixel sweep (Figure 1).

    Attributes:
      protocol: ``"circular"``, ``"crop"`` or ``"black"``.
      axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.
      indices: indices of the example images, length k.
      labels: the class each sweep follows, length k: the image's label, or
        without labels its top-1 class on the first frame (see `reference`).
      shifts: the sweep coordinate of each frame, length T: the shift in
        pixels (circular), the window offset (crop) or the object offset
        (black) along the swept axis (the row offset for diagonal sweeps).
      offsets: per frame the (row, col) shift or offset, [T][2].
      p_correct: softmax probability of that class, [k][T].
      top1: top-1 class, [k][T].
      flips: number of top-1 changes between neighbouring frames, length k.
      geometry: the `sigcnn.shifts.ShiftRecord` dict of the frames (its
        offsets given in `offsets`), plus ``resized_to`` for crops.
      reference: ``"label"`` (`labels` are the true classes) or ``"top1"``
        (no labels were given; the first frame's top-1 class).
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
    reference: str = "label"

    def to_dict(self) -> dict:
        """The result as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        for k in ("indices", "labels", "shifts", "offsets", "p_correct", "top1",
                  "flips"):
            d[k] = to_jsonable(getattr(self, k))
        d["geometry"] = to_jsonable(self.geometry)
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
      labelled: whether labels were given (without them every accuracy is
        None).
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
    labelled: bool = True

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
                "settings": to_jsonable(self.settings),
                "seconds": float(self.seconds),
                "labelled": bool(self.labelled),
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
                labelled=bool(d.get("labelled", True)),
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
    if value is None:
        return "-"
    if ci is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def as_result(name: str, r) -> ShiftTestResult:
    """`r` as a `ShiftTestResult` (given one or its ``to_dict()``), or raises
    naming the argument `name`."""
    if isinstance(r, ShiftTestResult):
        return r
    if isinstance(r, Mapping) and "protocols" in r:
        return ShiftTestResult.from_dict(r)
    raise TypeError(
            f"`{name}` must be a ShiftTestResult (or its to_dict()), or a mapping "
            f"model name -> one of them; got {type(r).__name__}.")


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
        named = [(str(k), as_result("results", v)) for k, v in results.items()]
    else:
        named = [(None, as_result("results", results))]
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
                        _fmt_ci(p.accuracy, None, digits), str(p.n_images),
                        str(p.n_pairs)])
    notes = []
    for model, r in named:
        c = r.consistency
        if c is not None:
            lo, hi = c.consistency_ci
            add(model, [f"random pairs ({c.mode}, m={c.max_shift})",
                        _fmt_ci(1.0 - c.consistency, (1.0 - hi, 1.0 - lo), digits),
                        "-", _fmt_ci(c.accuracy, None, digits), str(c.n_images),
                        str(c.n_images)])
            note = ("random pairs: two random offsets per image (Zhang 2019); "
                    "P(top-1 change) = 1 - consistency.")
            if note not in notes:
                notes.append(note)
    unlabelled = [m for m, r in named if not r.labelled]
    if unlabelled:
        who = "" if named[0][0] is None else f" ({', '.join(unlabelled)})"
        notes.append(f"accuracy needs labels: none were given{who}; the other "
                     "measures do not use them.")
    text = render_table(header, rows)
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
                 _fmt_ci(a.accuracy, None, digits),
                 _fmt_ci(a.mean_accuracy, None, digits),
                 str(a.n_images)]
        arows.append(([model] if model is not None else []) + cells)
    if arows:
        aheader = ["all shifts", "method", f"top-1 invariant [{pct} CI]",
                   f"robust accuracy [{pct} CI]", "accuracy", "mean accuracy",
                   "images"]
        if named[0][0] is not None:
            aheader = ["model"] + aheader
        text += "\n\n" + render_table(aheader, arows)
    return text


