"""Matplotlib figures for shift-test results (`sigcnn.shift_test`).

* `jaggedness_figure`: p(correct class) against a one-pixel sweep for a few
  example images, one line per model (the paper's Figure 1 in miniature).
* `table1_figure`: P(top-1 change) and MAC per protocol with confidence
  intervals, one bar per model (the paper's Table 1 as bars).

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
import os
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sigcnn.shift_test import (JaggednessResult, ProtocolResult,
                               ShiftTestResult)

__all__ = [
        "jaggedness_figure",
        "table1_figure",
]

_DPI = 110
_SWEEP_LABELS = {
        "circular": "circular shift",
        "crop": "crop window offset",
        "black": "object offset in the canvas",
}


def _save(fig: Figure, path) -> Figure:
    if path is not None:
        fig.savefig(os.fspath(path), dpi=_DPI)
    return fig


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


def jaggedness_figure(results, *, max_examples: int = 4, path=None,
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
      path: None, or a file name to save the figure to.
      title: figure title (default: names the sweep).

    Returns:
      the :class:`matplotlib.figure.Figure`.

    Raises:
      TypeError: if `results` is not one of the accepted types.
      ValueError: if a result holds no sweep or `max_examples` < 1.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1.
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or (
            max_examples < 1):
        raise ValueError(
                f"`max_examples` must be a positive int; got {max_examples!r}.")
    named = _named(results, _jagged)
    k = min(max_examples, max(len(j.indices) for _, j in named))
    if k == 0:
        raise ValueError("`results` holds sweeps of no example image.")
    cols = min(k, 4)
    rows = math.ceil(k / cols)
    fig = Figure(figsize=(3.4 * cols, 2.7 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    first = named[0][1]
    for e in range(k):
        ax = axes[e]
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
        ax.set_title(f"image {first.indices[e]} (class {first.labels[e]})",
                     fontsize=9)
        ax.set_xlabel(f"{_SWEEP_LABELS.get(first.protocol, 'shift')} (pixels)",
                      fontsize=8)
        if e % cols == 0:
            ax.set_ylabel("p(correct class)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[k:]:
        ax.set_visible(False)
    if title is None:
        title = (f"p(correct class) along a one-pixel {first.axis} sweep "
                 f"({first.protocol} protocol)")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _result(name: str, r) -> ShiftTestResult:
    if isinstance(r, ShiftTestResult):
        return r
    if isinstance(r, Mapping) and "protocols" in r:
        return ShiftTestResult.from_dict(r)
    raise TypeError(
            f"`{name}` must be a ShiftTestResult (or its to_dict()), or a mapping "
            f"model name -> one of them; got {type(r).__name__}.")


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
    named = _named(results, _result)
    protocols = []
    for _, r in named:
        for p in r.protocols:
            if p.name not in protocols:
                protocols.append(p.name)
    if not protocols:
        raise ValueError("`results` holds no protocol result to plot.")
    conf = named[0][1].settings.get("confidence", 0.95)
    fig = Figure(figsize=(max(6.0, 1.3 * len(protocols) * 2 + 1.5), 3.4),
                 layout="constrained")
    axes = fig.subplots(1, 2)
    width = 0.8 / len(named)
    x = np.arange(len(protocols))
    panels = (("p_top1_change", "p_top1_change_ci", "P(top-1 change)"),
              ("mac", "mac_ci", "mean absolute change (MAC)"))
    for ax, (field, ci_field, label) in zip(axes, panels):
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
        ax.set_title(f"{label}, {100 * conf:g}% CI", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(bottom=0.0)
        if named[0][0] is not None:
            ax.legend(fontsize=8)
    fig.suptitle(title or "One-pixel shifts: top-1 changes per protocol",
                 fontsize=10)
    return _save(fig, path)
