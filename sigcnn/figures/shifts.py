"""Matplotlib figures for shift-test results (`sigcnn.shift_test`) and training.

* `jaggedness_figure`: p(correct class) against a one-pixel sweep for a few
  example images, one line per model (the paper's Figure 1 in miniature).
* `table1_figure`: P(top-1 change) and MAC per protocol with confidence
  intervals, one bar per model (the paper's Table 1 as bars).
* `protocol_frames_figure`: an image as the model sees it under each protocol.
* `training_figure`: loss and held-out accuracy per epoch.

Each function takes results (the dataclasses of `sigcnn.shift_test` or their
``to_dict()`` as read back from JSON), builds a
:class:`matplotlib.figure.Figure` without pyplot (no global state), saves it
when given a ``path`` and returns it. Labels are in English.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (Figure 1, Table 1).
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sigcnn.figures._style import save as _save
from sigcnn.figures._style import styled
from sigcnn.shift_test import JaggednessResult, ProtocolResult, ShiftTestResult
from sigcnn.shift_test.results import as_result

__all__ = [
        "jaggedness_figure",
        "protocol_frames_figure",
        "table1_figure",
        "training_figure",
]

_SWEEP_LABELS = {
        "circular": "circular shift",
        "crop": "crop window offset",
        "black": "object offset in the canvas",
}


def _jagged(name: str, r) -> JaggednessResult:
    if isinstance(r, JaggednessResult):
        return r
    if isinstance(r, ShiftTestResult):
        j = r.jaggedness
    elif isinstance(r, Mapping) and "p_correct" in r:
        return JaggednessResult.from_dict(r)
    elif isinstance(r, Mapping) and "protocols" in r:
        j = ShiftTestResult.from_dict(r).jaggedness
    else:
        raise TypeError(
                f"`{name}` must be a JaggednessResult, a ShiftTestResult (or their "
                f"to_dict()), or a mapping model name -> one of them; got "
                f"{type(r).__name__}.")
    if j is None:
        raise ValueError(
                f"`{name}` holds no jaggedness sweep; run the shift test with "
                f"`sweep_images` > 0.")
    return j


def _is_single(results) -> bool:
    if isinstance(results, (JaggednessResult, ShiftTestResult)):
        return True
    return isinstance(results, Mapping) and (
            "p_correct" in results or "protocols" in results)


def _named(results, convert):
    if _is_single(results):
        return [(None, convert("results", results))]
    if isinstance(results, Mapping):
        if not results:
            raise ValueError(
                    "`results` must name at least one model; got an empty mapping.")
        return [(str(k), convert(f"results[{k!r}]", v)) for k, v in results.items()]
    return [(None, convert("results", results))]


@styled
def jaggedness_figure(results, *, max_examples: int = 4, examples=None,
                      thumbnails=None, path=None,
                      title: str | None = None) -> Figure:
    """p(correct class) along a one-pixel sweep, per example image and model.

    One panel per example image (at most `max_examples`), one line per model,
    with the number of top-1 flips along the sweep in the legend. Models are
    matched by the position of the example in their sweep (run them on the
    same images and `sweep_images` to compare like with like).

    Args:
      results: a `JaggednessResult` or `ShiftTestResult` (or their
        ``to_dict()``), or a mapping model name -> one of them.
      max_examples: positive int; panels drawn.
      examples: None (the first examples of the sweep) or a sequence of
        positions in the sweep (e.g. those classified correctly at its first
        position), at most `max_examples` of them drawn.
      thumbnails: None, or one image [H, W] or [H, W, C] per drawn example,
        shown beside its panel.
      path: None, or a file name to save the figure to.
      title: figure title (default: names the sweep).

    Returns:
      the :class:`matplotlib.figure.Figure`.

    Raises:
      TypeError: if `results` is not one of the accepted types.
      ValueError: if a result holds no sweep, `max_examples` < 1, an example
        position is out of range or `thumbnails` does not match the examples.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1.
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or (
            max_examples < 1):
        raise ValueError(
                f"`max_examples` must be a positive int; got {max_examples!r}.")
    named = _named(results, _jagged)
    n_sweep = max(len(j.indices) for _, j in named)
    if examples is None:
        chosen = list(range(min(max_examples, n_sweep)))
    else:
        chosen = [int(e) for e in examples][:max_examples]
        if any(not 0 <= e < n_sweep for e in chosen):
            raise ValueError(f"`examples` must be positions in [0, {n_sweep}) of "
                             f"the sweep; got {list(examples)!r}.")
    k = len(chosen)
    if k == 0:
        raise ValueError("`results` holds sweeps of no example image.")
    if thumbnails is not None and len(thumbnails) < k:
        raise ValueError(f"`thumbnails` must hold one image per drawn example "
                         f"({k}); got {len(thumbnails)}.")
    first = named[0][1]
    if thumbnails is None:
        cols = min(k, 4)
        rows = math.ceil(k / cols)
        fig = Figure(figsize=(2.5 * cols + 0.6, 2.5 * rows + 0.5),
                     layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
        thumbs = [None] * len(axes)
    else:
        cols = min(k, 2)
        rows = math.ceil(k / cols)
        fig = Figure(figsize=(4.6 * cols, 2.6 * rows + 0.5), layout="constrained")
        gs = fig.add_gridspec(rows, 2 * cols, width_ratios=[1, 3] * cols)
        axes, thumbs = [], []
        for e in range(rows * cols):
            r, c = divmod(e, cols)
            thumbs.append(fig.add_subplot(gs[r, 2 * c]))
            axes.append(fig.add_subplot(gs[r, 2 * c + 1]))
    for slot, e in enumerate(chosen):
        ax = axes[slot]
        for model, j in named:
            if e >= len(j.indices):
                continue
            p = np.asarray(j.p_correct[e], np.float64)
            x = np.asarray(j.shifts, np.float64)
            flips = j.flips[e]
            label = (f"{model + ': ' if model else ''}{flips} "
                     f"flip{'' if flips == 1 else 's'}")
            ax.plot(x, p, marker=".", ms=3, lw=1.2, label=label)
        ax.set_ylim(-0.03, 1.03)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"image {first.indices[e]} (class {first.labels[e]})")
        ax.set_xlabel(f"{_SWEEP_LABELS.get(first.protocol, 'shift')} (pixels)")
        if slot % cols == 0:
            ax.set_ylabel("p(correct class)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        if thumbs[slot] is not None:
            img = np.asarray(thumbnails[slot], np.float64)
            if img.ndim == 3 and img.shape[-1] == 1:
                img = img[..., 0]
            thumbs[slot].imshow(np.clip(img, 0, 1) if img.ndim == 3 else img,
                                cmap="gray", interpolation="nearest")
            thumbs[slot].set_xticks([])
            thumbs[slot].set_yticks([])
            thumbs[slot].set_title("held-out image", fontsize=8)
    for slot in range(k, len(axes)):
        axes[slot].set_visible(False)
        if thumbs[slot] is not None:
            thumbs[slot].set_visible(False)
    if title is None:
        title = (f"p(correct class) along a one-pixel {first.axis} sweep "
                 f"({first.protocol} protocol)")
    fig.suptitle(title)
    return _save(fig, path)


@styled
def protocol_frames_figure(frames, *, labels=None, path=None,
                           title: str | None = None) -> Figure:
    """One image as the model sees it under each shift protocol.

    Args:
      frames: mapping protocol name -> image [H, W] or [H, W, C] (a frame of
        that protocol), drawn in order, each at its own size.
      labels: None or mapping protocol name -> caption under the image.
      path: None, or a file name to save the figure to.
      title: figure title.

    Returns:
      the :class:`matplotlib.figure.Figure`, one panel per protocol titled by
      its name.

    Raises:
      ValueError: if `frames` is empty.
    """
    if not frames:
        raise ValueError("`frames` must hold at least one protocol's frame.")
    names = list(frames)
    fig = Figure(figsize=(1.75 * len(names) + 0.3, 2.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        img = np.asarray(frames[name], np.float64)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(np.clip(img, 0, 1) if img.ndim == 3 else img, cmap="gray",
                  vmin=None if img.ndim == 3 else 0.0,
                  vmax=None if img.ndim == 3 else 1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name)
        if labels and name in labels:
            ax.set_xlabel(textwrap.fill(labels[name], 20), fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


@styled
def training_figure(histories) -> Figure:
    """Training loss and held-out accuracy per epoch, one line per model.

    Args:
      histories: mapping model name -> list of epoch records (dicts with
        ``epoch``, ``train_loss`` and ``test_accuracy``, as in
        `sigcnn.train.FitResult.history`).

    Returns:
      the :class:`matplotlib.figure.Figure` with two panels.
    """
    fig = Figure(figsize=(8.5, 3.0), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for label, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        ax1.plot(ep, [h["train_loss"] for h in hist], "o-", ms=3, label=label)
        ax2.plot(ep, [h["test_accuracy"] for h in hist], "o-", ms=3, label=label)
    ax1.set_ylabel("training loss (cross-entropy)")
    ax2.set_ylabel("held-out accuracy")
    n_epochs = max([len(h) for h in histories.values()] + [1])
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        if n_epochs <= 12:
            ax.set_xticks(range(1, n_epochs + 1))
            ax.set_xlim(0.5, n_epochs + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


@styled
def table1_figure(results, *, path=None, title: str | None = None) -> Figure:
    """P(top-1 change) and MAC per protocol with confidence intervals, as bars.

    Args:
      results: a `ShiftTestResult` (or its ``to_dict()``), or a mapping model
        name -> one of them.
      path: None, or a file name to save the figure to.
      title: figure title.

    Returns:
      the :class:`matplotlib.figure.Figure` with two panels: P(top-1 change)
      and MAC, one group of bars per protocol and one bar per model, with the
      confidence intervals as error bars.

    Raises:
      TypeError: if `results` is not one of the accepted types.
      ValueError: if no protocol was run.

    References:
      Azulay & Weiss, JMLR 2019, Table 1.
    """
    named = _named(results, as_result)
    protocols = []
    for _, r in named:
        for p in r.protocols:
            if p.name not in protocols:
                protocols.append(p.name)
    if not protocols:
        raise ValueError("`results` holds no protocol result to plot.")
    conf = named[0][1].settings.get("confidence", 0.95)
    fig = Figure(figsize=(min(10.0, max(6.0, 1.6 * len(protocols) + 1.5)), 3.4),
                 layout="constrained")
    axes = fig.subplots(1, 2)
    width = 0.8 / len(named)
    x = np.arange(len(protocols))
    panels = (("p_top1_change", "p_top1_change_ci", "P(top-1 change)", "P(top-1 change)"),
              ("mac", "mac_ci", "mean absolute change (MAC)", "MAC"))
    for ax, (field, ci_field, label, short) in zip(axes, panels):
        for i, (model, r) in enumerate(named):
            vals, lo, hi, xs = [], [], [], []
            for j, name in enumerate(protocols):
                try:
                    p: ProtocolResult = r.protocol(name)
                except KeyError:
                    continue
                v = getattr(p, field)
                ci = getattr(p, ci_field)
                vals.append(v)
                lo.append(max(v - ci[0], 0.0))
                hi.append(max(ci[1] - v, 0.0))
                xs.append(x[j] - 0.4 + width * (i + 0.5))
            ax.bar(xs, vals, width=width * 0.95, yerr=[lo, hi], capsize=2,
                   label=model if model is not None else None)
        ax.set_xticks(x, protocols)
        ax.set_ylabel(label)
        ax.set_title(f"{short}, {100 * conf:g}% CI")
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(bottom=0.0)
        if named[0][0] is not None:
            ax.legend()
    fig.suptitle(title or "One-pixel shifts: top-1 changes per protocol")
    return _save(fig, path)
