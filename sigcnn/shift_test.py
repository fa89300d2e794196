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
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn import metrics
from sigcnn import shifts as _shifts
from sigcnn.shift_results import (AllShiftsResult, ConsistencyResult,
                                  JaggednessResult, ProtocolResult,
                                  ShiftTestResult, _jsonable, _nested_tuple,
                                  format_table)
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


# ---------------------------------------------------------------------------
# Per-image measurements of a chunk of images, and their aggregation
# ---------------------------------------------------------------------------
#
# A run is split into chunks of images: `_Run.evaluate` turns one chunk into
# per-image arrays (top-1 classes, pair changes, MAC values) and a small JSON
# meta dict; `_Run.finish` concatenates the chunks in order and computes every
# statistic, so a run split into chunks (`sigcnn.shift_runs`) gives the same
# numbers as one call on all images.


def _interval(ci):
    return float(ci.low), float(ci.high)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _accuracy_ci(correct, key, opts):
    ci = metrics.bootstrap_ci(correct, key=key, n_resamples=opts["n_resamples"],
                              confidence=opts["confidence"])
    return float(ci.estimate), _interval(ci)


class _Run:
    """A validated shift test: its plans, evaluator and keys (see `run_shift_test`)."""

    def __init__(self, logits_fn, shape, dtype, labels, *, key, protocols,
                 n_pairs, step, direction, subpixel_step, crop_margin,
                 crop_resize, embed_factor, fill, resize_method, inpaint_method,
                 consistency, consistency_max_shift, all_shifts,
                 all_shifts_extent, all_shifts_method, all_shifts_check,
                 sweep_images, sweep_protocol, sweep_axis, sweep_steps, chunk,
                 confidence, n_resamples, p_ci, jit):
        if not callable(logits_fn):
            raise TypeError(
                    f"`logits_fn` must be callable (images [B, H, W, C] -> logits "
                    f"[B, K]); got {logits_fn!r} of type {type(logits_fn).__name__}.")
        n, h, w, c = shape
        self.n, self.size, self.channels = int(n), (int(h), int(w)), int(c)
        self.labels = None if labels is None else _check_labels(labels, n)
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
            consistency = check_choice("consistency", consistency,
                                       _CONSISTENCY_MODES)
        consistency_max_shift = _check_optional_int(
                "consistency_max_shift", consistency_max_shift,
                "the largest offset m")
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
        self.sweep_idx = _check_sweep_images(sweep_images, n)
        sweep_protocol = check_choice("sweep_protocol", sweep_protocol,
                                      _SWEEP_PROTOCOLS)
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
        self.consistency, self.all_shifts = consistency, all_shifts
        self.opts = opts = dict(
                n_pairs=n_pairs, step=step, direction=direction,
                subpixel_step=subpixel_step, crop_margin=crop_margin,
                crop_resize=crop_resize, embed_factor=embed_factor, fill=fill,
                resize_method=resize_method, inpaint_method=inpaint_method,
                consistency=consistency,
                consistency_max_shift=consistency_max_shift,
                all_shifts_extent=all_shifts_extent,
                all_shifts_method=all_shifts_method,
                all_shifts_check=all_shifts_check, sweep_protocol=sweep_protocol,
                sweep_axis=sweep_axis, sweep_steps=sweep_steps,
                confidence=confidence, n_resamples=n_resamples, p_ci=p_ci)

        # Geometry first: every plan raises on a bad size before any evaluation.
        self.plans = [_make_plan(name, self.size, opts) for name in protocols]
        self.sweep = None
        if self.sweep_idx:
            self.sweep = _sweep_plan(self.size, opts)
            if self.sweep[0].shape[0] < 2:
                raise ValueError(
                        f"the {sweep_protocol!r} sweep of the {self.size} images has "
                        f"a single position; use another `sweep_protocol` or larger "
                        f"images.")
        self.evaluator = _Evaluator(logits_fn, chunk, jit)
        frame_sizes = {self.size} | {p.frame_size for p in self.plans}
        if self.sweep is not None:
            frame_sizes.add(tuple(self.sweep[2]))
        num_classes = None
        for fs in sorted(frame_sizes):
            k = self.evaluator.probe((fs[0], fs[1], c), dtype)
            num_classes = k if num_classes is None else num_classes
            if k != num_classes:
                raise ValueError(
                        f"`logits_fn` returns {num_classes} logits on {self.size} "
                        f"images but {k} on {fs} frames.")
        self.num_classes = int(num_classes)
        if self.labels is not None:
            bad = (self.labels < 0) | (self.labels >= num_classes)
            if bad.any():
                raise ValueError(
                        f"`labels` must lie in [0, K) = [0, {num_classes}) (K from "
                        f"`logits_fn`); got {int(bad.sum())} out-of-range value(s), "
                        f"e.g. {int(self.labels[bad][0])}.")
        self.k_proto, k_cons = jax.random.split(key)
        self.pair_offsets = None
        if consistency is not None:
            m = consistency_max_shift
            lo = -m if consistency == "circular" else 0
            self.pair_offsets = _shifts.random_pair_schedule(
                    k_cons, self.n, min_offset=lo, max_offset=m).offsets   # [N, 2, 2]
        self.alls_method = "brute" if all_shifts_method == "brute" else "atrous"
        self.alls_reason = None
        self.settings = _jsonable(dict(
                protocols=list(protocols), n_pairs=n_pairs, step=step,
                direction=direction, subpixel_step=subpixel_step,
                crop_margin=crop_margin, crop_resize=crop_resize,
                embed_factor=embed_factor, fill=fill, resize_method=resize_method,
                inpaint_method=inpaint_method, consistency=consistency,
                consistency_max_shift=consistency_max_shift if consistency
                else None, all_shifts=all_shifts,
                all_shifts_extent=None if all_shifts_extent is None
                else list(all_shifts_extent),
                all_shifts_method=all_shifts_method,
                sweep_images=list(self.sweep_idx), sweep_protocol=sweep_protocol,
                sweep_axis=sweep_axis, sweep_steps=sweep_steps, chunk=chunk,
                confidence=confidence, n_resamples=n_resamples, p_ci=p_ci,
                key=np.asarray(jax.random.key_data(key)).tolist()))

    # -- one chunk of images ------------------------------------------------

    def evaluate(self, images, start: int = 0, progress=None):
        """Per-image arrays and meta of images [start, start + g) of the run.

        Args:
          images: float array [g, H, W, C], finite, the run's images
            ``start .. start + g - 1``.
          start: index of the first image in the run.
          progress: None or ``progress(name, done, total)``.

        Returns:
          ``(arrays, meta)``: a dict name -> NumPy array (leading axis g) and a
          JSON-ready dict (geometry records, all-shift method, seconds).
        """
        g = images.shape[0]
        arrays, meta = {}, {"records": {}, "seconds": {}, "start": int(start),
                            "n_images": int(g)}
        for plan in self.plans:
            t0 = time.perf_counter()
            logits, record = self._frames(plan, images, start, progress)
            a = logits[:, plan.pairs[:, 0]]
            b = logits[:, plan.pairs[:, 1]]
            arrays[f"{plan.name}/change"] = np.asarray(
                    metrics.p_top1_change(a, b, reduce=False))            # [g, P]
            arrays[f"{plan.name}/mac"] = np.asarray(
                    metrics.mean_abs_change(a, b, reduce=False))          # [g, P]
            arrays[f"{plan.name}/top"] = np.argmax(a, axis=-1).astype(np.int32)
            meta["records"][plan.name] = record.to_dict()
            meta["seconds"][plan.name] = time.perf_counter() - t0
        if self.consistency is not None:
            t0 = time.perf_counter()
            top, record = self._consistency(images, start, progress)
            arrays["consistency/top"] = top                               # [g, 2]
            meta["records"]["consistency"] = record.to_dict()
            meta["seconds"]["consistency"] = time.perf_counter() - t0
        if self.all_shifts:
            t0 = time.perf_counter()
            top, extent = self._all_shifts(images, start, progress)
            arrays["all_shifts/top"] = top                                # [g, Sy*Sx]
            meta["all_shifts"] = dict(method=self.alls_method,
                                      reason=self.alls_reason,
                                      extent=[int(v) for v in extent])
            meta["seconds"]["all_shifts"] = time.perf_counter() - t0
        return arrays, meta

    def _frames(self, plan, images, start, progress):
        """Logits [g, T, K] of every frame of `plan`, in groups of images."""
        n = images.shape[0]
        t = plan.offsets.shape[0]
        g = min(n, max(1, self.evaluator.chunk // t))
        out, record = [], None
        for s, e in _groups(n, g):
            xg = _pad_images(images[s:e], g)
            frames, rec = _build_frames(plan, xg, self.opts)
            record = record or rec
            flat = frames.reshape((g * t,) + frames.shape[2:])
            out.append(self.evaluator(flat).reshape(g, t, -1)[:e - s])
            if progress is not None:
                progress(plan.name, start + e, self.n)
        return np.concatenate(out, axis=0), record

    def _consistency(self, images, start, progress):
        n, h, w = images.shape[:3]
        mode, m = self.opts["consistency"], self.opts["consistency_max_shift"]
        offsets = self.pair_offsets[start:start + n]
        g = min(n, max(1, self.evaluator.chunk // 2))
        out, record = [], None
        for s, e in _groups(n, g):
            xg = _pad_images(images[s:e], g)
            og = _pad_images(offsets[s:e], g)
            if mode == "circular":
                frames, rec = _shifts.translate(xg, og, method="circular")
            else:
                big = _shifts.resize_images(xg, (h + m, w + m),
                                            method=self.opts["resize_method"],
                                            antialias=True)
                frames, rec = _shifts.crop(big, og, size=(h, w))
            record = record or rec
            flat = frames.reshape((g * 2,) + frames.shape[2:])
            logits = self.evaluator(flat).reshape(g, 2, -1)[:e - s]
            out.append(np.argmax(logits, axis=-1).astype(np.int32))
            if progress is not None:
                progress("consistency", start + e, self.n)
        return np.concatenate(out, axis=0), record

    def _all_shifts(self, images, start, progress):
        from sigcnn.atrous import all_shifts

        n = images.shape[0]
        extent = self.opts["all_shifts_extent"]
        explicit = None if extent is None else _shifts.grid_schedule(extent).offsets
        f = self.evaluator.traceable

        def call(x, brute_chunk, check=0):
            method = self.alls_method
            res = all_shifts(f, x, method=method, shifts=explicit,
                             chunk=brute_chunk if method == "brute" else None,
                             check=check if method == "atrous" else 0)
            if explicit is not None:
                res = res.reshape((x.shape[0],) + tuple(extent) + res.shape[2:])
            return res

        def fall_back(err):
            if self.opts["all_shifts_method"] != "auto" or self.alls_method != "atrous":
                raise err
            self.alls_method, self.alls_reason = "brute", _first_line(err)

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
        # passes' worth of activations (deep layers at full resolution), so
        # groups of chunk // max(Sy, Sx) images; "brute" then runs chunk // g
        # shifts at once.
        g = min(n, max(1, self.evaluator.chunk // max(shape[1], shape[2])))
        brute_chunk = max(1, self.evaluator.chunk // g)
        out, done = [], 0
        while done < n:
            e = min(done + g, n)
            xg = _pad_images(images[done:e], g)
            try:
                res = np.asarray(call(xg, brute_chunk, self.opts["all_shifts_check"]))
            except (NotImplementedError, ValueError) as err:
                fall_back(err)
                out, done = [], 0
                continue
            top = np.argmax(res[:e - done], axis=-1)                      # [g, Sy, Sx]
            out.append(top.reshape(e - done, -1).astype(np.int32))
            done = e
            if progress is not None:
                progress("all_shifts", start + done, self.n)
        return np.concatenate(out, axis=0), shape[1:3]

    def sweep_result(self, images, progress=None):
        """The jaggedness sweep of images [k, H, W, C] (the `sweep_idx` images)."""
        opts = self.opts
        offsets, extra, _ = self.sweep
        x = images
        protocol = opts["sweep_protocol"]
        if protocol == "circular":
            frames, rec = _shifts.translate(x, offsets, method="circular")
        elif protocol == "crop":
            if opts["crop_resize"]:
                x = _shifts.resize_images(x, extra["resized_to"],
                                          method=opts["resize_method"],
                                          antialias=True)
            frames, rec = _shifts.crop(x, offsets, size=extra["window"])
        else:
            obj = _embed_size(self.size, opts["embed_factor"])
            frames, rec = _shifts.embed(x, offsets, canvas_size=self.size,
                                        object_size=obj, fill=opts["fill"],
                                        method=opts["resize_method"])
        k, t = frames.shape[:2]
        logits = self.evaluator(frames.reshape((k * t,) + frames.shape[2:]))
        logits = logits.reshape(k, t, -1)
        idx = np.asarray(self.sweep_idx)
        if self.labels is not None:
            lab, reference = self.labels[idx], "label"
        else:
            lab, reference = np.argmax(logits[:, 0], axis=-1), "top1"
        p = np.asarray(metrics.true_class_probability(logits, lab))
        top = np.argmax(logits, axis=-1)
        flips = (np.asarray(metrics.top1_flips(logits, axis=1)) if t > 1
                 else np.zeros(k))
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
                geometry=_jsonable(geometry), reference=reference)

    # -- aggregation --------------------------------------------------------

    def finish(self, parts, jaggedness=None, *, seconds: float):
        """The `ShiftTestResult` of the chunks `parts` = [(arrays, meta), ...]."""
        parts = sorted(parts, key=lambda p: p[1]["start"])
        covered = sum(m["n_images"] for _, m in parts)
        if covered != self.n:
            raise ValueError(f"the chunks cover {covered} of {self.n} images.")
        arrays = {k: np.concatenate([a[k] for a, _ in parts], axis=0)
                  for k in parts[0][0]}
        metas = [m for _, m in parts]
        spent = {}
        for m in metas:
            for k, v in m["seconds"].items():
                spent[k] = spent.get(k, 0.0) + float(v)
        records = metas[0]["records"]
        results = tuple(
                self._protocol_result(plan, arrays, records[plan.name],
                                      jax.random.fold_in(self.k_proto, i),
                                      spent[plan.name])
                for i, plan in enumerate(self.plans))
        cons = None
        if self.consistency is not None:
            cons = self._consistency_result(arrays["consistency/top"],
                                            records["consistency"],
                                            spent["consistency"])
        alls = None
        if self.all_shifts:
            alls = self._all_shifts_result(arrays["all_shifts/top"], metas,
                                           spent["all_shifts"])
        return ShiftTestResult(
                protocols=results, consistency=cons, all_shifts=alls,
                jaggedness=jaggedness, n_images=self.n,
                num_classes=self.num_classes, input_size=self.size,
                settings=self.settings, seconds=float(seconds),
                labelled=self.labels is not None)

    def _protocol_result(self, plan, arrays, record, key, seconds):
        opts = self.opts
        change = arrays[f"{plan.name}/change"]
        mac = arrays[f"{plan.name}/mac"]
        conf, nres = opts["confidence"], opts["n_resamples"]
        k_p, k_mac, k_acc = jax.random.split(key, 3)
        if opts["p_ci"] == "binomial":
            p_ci = metrics.binomial_ci(int(change.sum()), int(change.size),
                                       confidence=conf)
        else:
            p_ci = metrics.bootstrap_ci(jnp.asarray(change), key=k_p,
                                        n_resamples=nres, confidence=conf)
        mac_ci = metrics.bootstrap_ci(jnp.asarray(mac), key=k_mac,
                                      n_resamples=nres, confidence=conf)
        acc = acc_ci = None
        if self.labels is not None:
            top = arrays[f"{plan.name}/top"]
            correct = (top == self.labels[:, None]).astype(mac.dtype)
            acc, acc_ci = _accuracy_ci(jnp.asarray(correct), k_acc, opts)
        geometry = dict(record)
        geometry.update(plan.extra)
        geometry["pairs"] = plan.pairs.tolist()
        return ProtocolResult(
                name=plan.name,
                p_top1_change=float(change.mean()),
                p_top1_change_ci=_interval(p_ci),
                p_ci_method=opts["p_ci"],
                mac=float(mac_ci.estimate),
                mac_ci=_interval(mac_ci),
                accuracy=acc,
                accuracy_ci=acc_ci,
                p_by_pair=tuple(float(v) for v in change.mean(axis=0)),
                n_images=int(change.shape[0]),
                n_pairs=int(change.size),
                pairs_per_image=int(plan.pairs.shape[0]),
                geometry=_jsonable(geometry),
                seconds=float(seconds))

    def _consistency_result(self, top, record, seconds):
        n, (h, w) = self.n, self.size
        mode, m = self.opts["consistency"], self.opts["consistency_max_shift"]
        agree = top[:, 0] == top[:, 1]
        ci = metrics.binomial_ci(int(agree.sum()), int(n),
                                 confidence=self.opts["confidence"])
        acc = None
        if self.labels is not None:
            acc = float(np.mean(top == self.labels[:, None]))
        geometry = dict(record)
        geometry["offsets"] = f"per image, see `offsets` ({n} pairs)"
        geometry["input_size"] = [h + m, w + m] if mode == "crop" else [h, w]
        geometry["resized_to"] = [h + m, w + m] if mode == "crop" else None
        if mode == "crop":
            geometry["resize_method"] = self.opts["resize_method"]
            geometry["antialias"] = True
        return ConsistencyResult(
                mode=mode, max_shift=int(m), consistency=float(agree.mean()),
                consistency_ci=_interval(ci), accuracy=acc, n_images=int(n),
                offsets=_nested_tuple(self.pair_offsets.tolist()),
                geometry=_jsonable(geometry), seconds=float(seconds))

    def _all_shifts_result(self, top, metas, seconds):
        n = self.n
        sy, sx = metas[0]["all_shifts"]["extent"]
        methods = [m["all_shifts"]["method"] for m in metas]
        reasons = [m["all_shifts"]["reason"] for m in metas
                   if m["all_shifts"]["reason"]]
        method = methods[0] if len(set(methods)) == 1 else "atrous+brute"
        reason = reasons[0] if reasons else None
        if method == "atrous+brute":
            first = next(m for m, mm in zip(metas, methods) if mm == "brute")
            reason = (f"{reason} (images from {first['start']} on by brute force, "
                      f"earlier ones undecimated and certified)")
        conf = self.opts["confidence"]
        invariant = np.all(top == top[:, :1], axis=1)
        i_ci = metrics.binomial_ci(int(invariant.sum()), int(n), confidence=conf)
        robust = robust_ci = acc = mean_acc = by_shift = None
        if self.labels is not None:
            correct = top == self.labels[:, None]                          # [N, P]
            ok = np.all(correct, axis=1)
            robust = float(ok.mean())
            robust_ci = _interval(metrics.binomial_ci(int(ok.sum()), int(n),
                                                      confidence=conf))
            acc, mean_acc = float(correct[:, 0].mean()), float(correct.mean())
            by_shift = _nested_tuple(correct.mean(axis=0).reshape(sy, sx).tolist())
        return AllShiftsResult(
                method=method, fallback_reason=reason, extent=(int(sy), int(sx)),
                robust_accuracy=robust, robust_accuracy_ci=robust_ci,
                invariant_fraction=float(invariant.mean()),
                invariant_fraction_ci=_interval(i_ci),
                accuracy=acc, mean_accuracy=mean_acc, accuracy_by_shift=by_shift,
                n_images=int(n), seconds=float(seconds))


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------


def run_shift_test(logits_fn: Callable, images, labels=None, *, key,
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
      labels: int array, shape [N], classes in [0, K); or None (no labels:
        every accuracy is None, the label-free measures are kept, and the
        jaggedness sweep follows each image's top-1 class on its first frame).
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
    run = _Run(logits_fn, images.shape, images.dtype, labels, key=key,
               protocols=protocols, n_pairs=n_pairs, step=step,
               direction=direction, subpixel_step=subpixel_step,
               crop_margin=crop_margin, crop_resize=crop_resize,
               embed_factor=embed_factor, fill=fill, resize_method=resize_method,
               inpaint_method=inpaint_method, consistency=consistency,
               consistency_max_shift=consistency_max_shift,
               all_shifts=all_shifts, all_shifts_extent=all_shifts_extent,
               all_shifts_method=all_shifts_method,
               all_shifts_check=all_shifts_check, sweep_images=sweep_images,
               sweep_protocol=sweep_protocol, sweep_axis=sweep_axis,
               sweep_steps=sweep_steps, chunk=chunk, confidence=confidence,
               n_resamples=n_resamples, p_ci=p_ci, jit=jit)
    if progress is not None and not callable(progress):
        raise TypeError(
                f"`progress` must be None or a callable (name, done, total); got "
                f"{progress!r}.")
    part = run.evaluate(images, 0, progress)
    jag = None
    if run.sweep_idx:
        jag = run.sweep_result(images[np.asarray(run.sweep_idx)], progress)
    return run.finish([part], jag, seconds=time.perf_counter() - t_start)
