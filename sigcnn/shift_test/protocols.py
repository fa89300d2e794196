"""The protocols' geometry and frames, one entry per protocol in a table.

Each protocol is a `Protocol`: ``plan(size, opts)`` fixes its geometry (the
offsets of every frame, the pairs compared, the frame size) before any
evaluation, so a bad size raises early; ``frames(plan, x, opts)`` builds the
frames of a group of images with `sigcnn.shifts` (jitted, vmapped). `PLANS`
maps each name of `sigcnn.shift_test.PROTOCOLS` to its entry; the jaggedness
sweep (`sweep_plan`, `sweep_frames`) reuses the same transforms.

References:
  Azulay & Weiss, JMLR 2019, Section 2 (``CheckTranslationInvariance.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from sigcnn import shifts as _shifts

__all__ = ["PLANS", "Plan", "Protocol", "embed_size", "sweep_frames",
           "sweep_plan"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The geometry of one protocol on images of one size.

    Attributes:
      name: the protocol.
      offsets: [T, 2] offsets of the T frames (crop window, object or shift).
      pairs: [P, 2] indices of the frames compared.
      frame_size: (h, w) of a frame.
      sizes: [T, 2] object sizes (``"scale"``), else None.
      extra: JSON-ready geometry recorded with the results.
    """

    name: str
    offsets: np.ndarray
    pairs: np.ndarray
    frame_size: tuple
    sizes: np.ndarray | None = None
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A protocol: its plan builder and its frame builder."""

    plan: Callable[[str, tuple, Mapping], Plan]
    frames: Callable[[Plan, object, Mapping], tuple]


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


def _direction(direction):
    return {"diagonal": (1, 1), "horizontal": (0, 1), "vertical": (1, 0)}[direction]


def embed_size(size, factor):
    """(h, w) of an object resized by 1 / `factor` from `size`, or raises."""
    h, w = int(size[0] / factor), int(size[1] / factor)
    if h < 1 or w < 1:
        raise ValueError(
                f"`embed_factor`={factor} shrinks the {size} images to nothing "
                f"({(h, w)}); use a smaller factor.")
    return h, w


def _pairs(opts):
    n = opts["n_pairs"]
    return np.stack([np.arange(n), np.arange(1, n + 1)], axis=1)


def _crop_geometry(size, opts):
    """(image size before cropping, window size) of the crop protocol."""
    m = opts["crop_margin"]
    if opts["crop_resize"]:
        return (size[0] + m, size[1] + m), size
    win = (size[0] - m, size[1] - m)
    if win[0] < 1 or win[1] < 1:
        raise ValueError(f"`crop_margin`={m} leaves no window in the {size} images "
                         f"with `crop_resize`=False.")
    return size, win


# -- plans ---------------------------------------------------------------------


def _plan_translate(name, size, opts):
    step = opts["subpixel_step"] if name == "subpixel" else opts["step"]
    dtype = np.float64 if name == "subpixel" else np.int64
    d = np.asarray(_direction(opts["direction"]), dtype)
    offsets = (np.arange(opts["n_pairs"] + 1)[:, None] * step * d[None, :])
    return Plan(name, offsets.astype(dtype), _pairs(opts), size,
                extra=dict(step=step, direction=opts["direction"]))


def _plan_crop(name, size, opts):
    big, win = _crop_geometry(size, opts)
    extra = dict(step=opts["step"], direction=opts["direction"],
                 resized_to=big if opts["crop_resize"] else None)
    if opts["crop_resize"]:
        extra.update(resize_method=opts["resize_method"], antialias=True)
    offsets = _moving_offsets((big[0] - win[0], big[1] - win[1]),
                              n_pairs=opts["n_pairs"], step=opts["step"],
                              direction=opts["direction"], name=name)
    return Plan(name, offsets, _pairs(opts), win,
                extra=dict(extra, window=win, image_size=big))


def _plan_embed(name, size, opts):
    obj = embed_size(size, opts["embed_factor"])
    offsets = _moving_offsets((size[0] - obj[0], size[1] - obj[1]),
                              n_pairs=opts["n_pairs"], step=opts["step"],
                              direction=opts["direction"], name=name)
    return Plan(name, offsets, _pairs(opts), size,
                extra=dict(step=opts["step"], direction=opts["direction"],
                           embed_factor=opts["embed_factor"]))


def _plan_scale(name, size, opts):
    obj = embed_size(size, opts["embed_factor"])
    sched = _shifts.scale_schedule(obj, size, n_pairs=opts["n_pairs"],
                                   step=opts["step"])
    return Plan(name, sched.offsets, _pairs(opts), size, sizes=sched.sizes,
                extra=dict(step=opts["step"], direction="grow",
                           embed_factor=opts["embed_factor"]))


# -- frames --------------------------------------------------------------------


def _frames_circular(plan, x, opts):
    return _shifts.translate(x, plan.offsets, method="circular")


def _frames_subpixel(plan, x, opts):
    return _shifts.translate(x, plan.offsets, method="fourier")


def _frames_crop(plan, x, opts):
    if opts["crop_resize"]:
        x = _shifts.resize_images(x, plan.extra["image_size"],
                                  method=opts["resize_method"], antialias=True)
    return _shifts.crop(x, plan.offsets, size=plan.frame_size)


def _frames_embed(plan, x, opts):
    inpaint = opts["inpaint_method"] if plan.name == "inpaint" else None
    return _shifts.embed(x, plan.offsets, canvas_size=plan.frame_size,
                         object_size=embed_size(x.shape[1:3], opts["embed_factor"]),
                         fill=opts["fill"], method=opts["resize_method"],
                         inpaint=inpaint)


def _frames_scale(plan, x, opts):
    return _shifts.scale(x, plan.sizes, plan.offsets, canvas_size=plan.frame_size,
                         fill=opts["fill"], method=opts["resize_method"])


PLANS: Mapping[str, Protocol] = {
        "circular": Protocol(_plan_translate, _frames_circular),
        "subpixel": Protocol(_plan_translate, _frames_subpixel),
        "crop": Protocol(_plan_crop, _frames_crop),
        "black": Protocol(_plan_embed, _frames_embed),
        "inpaint": Protocol(_plan_embed, _frames_embed),
        "scale": Protocol(_plan_scale, _frames_scale),
}
"""Protocol name -> `Protocol` (plan and frame builders)."""


# -- the jaggedness sweep --------------------------------------------------------


def sweep_plan(size, opts):
    """``(offsets [T, 2], extra geometry, frame size)`` of the dense sweep."""
    protocol, axis = opts["sweep_protocol"], opts["sweep_axis"]
    d = np.asarray(_direction(axis))
    if protocol == "circular":
        period = {"vertical": size[0], "horizontal": size[1]}.get(axis, min(size))
        steps = opts["sweep_steps"] or period
        offsets = np.arange(steps)[:, None] * d[None, :]
        return offsets.astype(np.int64), {}, size
    if protocol == "crop":
        big, win = _crop_geometry(size, opts)
        margins = (big[0] - win[0], big[1] - win[1])
        extra = dict(resized_to=big if opts["crop_resize"] else None, window=win)
    else:
        obj = embed_size(size, opts["embed_factor"])
        margins = (size[0] - obj[0], size[1] - obj[1])
        extra = dict(embed_factor=opts["embed_factor"])
        win = size
    moving = d.astype(bool)
    span = min(margins[i] for i in range(2) if moving[i]) + 1
    steps = min(opts["sweep_steps"] or span, span)
    cols = [np.arange(steps) if moving[i] else np.full(steps, margins[i] // 2)
            for i in range(2)]
    return np.stack(cols, axis=1).astype(np.int64), extra, win


def sweep_frames(x, offsets, extra, size, opts):
    """Frames [k, T, h, w, C] and the ShiftRecord of the sweep of images x."""
    protocol = opts["sweep_protocol"]
    if protocol == "circular":
        return _shifts.translate(x, offsets, method="circular")
    if protocol == "crop":
        if opts["crop_resize"]:
            x = _shifts.resize_images(x, extra["resized_to"],
                                      method=opts["resize_method"], antialias=True)
        return _shifts.crop(x, offsets, size=extra["window"])
    return _shifts.embed(x, offsets, canvas_size=size,
                         object_size=embed_size(size, opts["embed_factor"]),
                         fill=opts["fill"], method=opts["resize_method"])
