"""Matplotlib figures of sigcnn results (the presentation layer).

Every function takes plain data or result dataclasses, builds a
:class:`matplotlib.figure.Figure` without pyplot (no global state, safe with
the Agg backend and in threads), saves it when given a ``path`` and returns it.
The numerical modules never import this package.

Submodules: :mod:`sigcnn.figures.spectra` (the sampling-theorem checks and
per-layer spectra) and :mod:`sigcnn.figures.shifts` (shift-test results, the
protocols' frames, training curves).
"""

from sigcnn.figures._style import coarse_map as coarse_map
from sigcnn.figures.shifts import (
    jaggedness_figure as jaggedness_figure,
)
from sigcnn.figures.shifts import (
    protocol_frames_figure as protocol_frames_figure,
)
from sigcnn.figures.shifts import (
    table1_figure as table1_figure,
)
from sigcnn.figures.shifts import (
    training_figure as training_figure,
)
from sigcnn.figures.spectra import (
    aliasing_depth_figure as aliasing_depth_figure,
)
from sigcnn.figures.spectra import (
    blurpool_figure as blurpool_figure,
)
from sigcnn.figures.spectra import (
    layer_spectra_figure as layer_spectra_figure,
)
from sigcnn.figures.spectra import (
    relu_spectrum_figure as relu_spectrum_figure,
)
from sigcnn.figures.spectra import (
    shiftability_sweep_figure as shiftability_sweep_figure,
)
from sigcnn.figures.spectra import (
    verify_figure_set as verify_figure_set,
)
from sigcnn.figures.spectra import (
    verify_figures as verify_figures,
)

__all__ = [
    "aliasing_depth_figure",
    "blurpool_figure",
    "coarse_map",
    "jaggedness_figure",
    "layer_spectra_figure",
    "protocol_frames_figure",
    "relu_spectrum_figure",
    "shiftability_sweep_figure",
    "table1_figure",
    "training_figure",
    "verify_figure_set",
    "verify_figures",
]
