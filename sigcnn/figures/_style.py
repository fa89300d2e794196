"""Font sizes and saving shared by every sigcnn figure.

Figures are at most about 10 inches wide at 100 dpi, so a page that shows them
at 900 px keeps tick labels at about 9 px or more.
"""

from __future__ import annotations

import functools
import os

import matplotlib

__all__ = ["DPI", "STYLE", "coarse_map", "save", "styled"]

DPI = 110
"""Resolution of the PNG files a ``path`` argument writes."""

STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 8.5,
         "figure.titlesize": 11}
"""Matplotlib settings every figure is drawn with."""


def styled(fn):
    """Draws `fn`'s figure with `STYLE` (nothing global is changed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def save(fig, path):
    """Saves `fig` to `path` (if not None) with the whole of every label."""
    if path is not None:
        fig.savefig(os.fspath(path), dpi=DPI, bbox_inches="tight")
    return fig


def coarse_map(map_size) -> bool:
    """True if a strided map of size (h, w) has at most 2 samples on a side.

    Its Nyquist box |f| < 1/(2S) then holds only the zero frequency, which goes
    with the mean, so its aliasing ratio is 1 by construction and its spectrum
    says nothing about the network.

    Examples:
      >>> coarse_map((2, 2)), coarse_map((4, 4))
      (True, False)
    """
    return min(int(n) for n in map_size) <= 2
