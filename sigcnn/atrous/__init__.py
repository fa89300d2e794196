"""Undecimated (à trous) evaluation of any JAX CNN, and its outputs at every shift.

A layer reached through a cumulative stride S computes r(x). Remove every stride
and dilate every later filter and pooling window by the stride in front of it (the
"algorithme à trous"): that gives r2(x), defined at every input pixel, with

    r(x) == r2(x)[:, ::S, ::S]                       (exact)
    r(roll(x, t))[:, i] == r2(x)[:, S*i - t]         (exact with circular padding)

This package obtains r2 for a user's own network without touching its code. The
network is traced to a jaxpr and re-evaluated by an interpreter with one rule per
primitive, in the manner of JAX's batching rules:

* :mod:`~sigcnn.atrous.values`: the values, each undecimated array carrying per
  spatial axis its sampling lattice (:class:`Grid`: stride, phase, orientation,
  support, period);
* :mod:`~sigcnn.atrous.registry`: the rule table and :func:`register_rule`;
* ``rules_elementwise``, ``rules_structure``, ``rules_concatenate``,
  ``rules_window``, ``rules_reduce``: the rules, one file per family;
* :mod:`~sigcnn.atrous.interpreter` and :mod:`~sigcnn.atrous.policy`: the
  interpreter and what it does where no exact undecimated form exists;
  :mod:`~sigcnn.atrous.sources`: the user's source line of an equation, for
  messages;
* :mod:`~sigcnn.atrous.tiling`: the CPU tiling setting (:class:`Tiling`);
  :mod:`~sigcnn.atrous.conv_forms`: the forms of an undecimated convolution
  (dilated, polyphase, matrix products) and the choice per backend;
* :mod:`~sigcnn.atrous.precision`: the `precision=` of every convolution and
  matrix product, and the tolerance of the check at each precision;
* :mod:`~sigcnn.atrous.api`: `undecimate`, `decimation_points`, tracing and the
  bounded program cache (:func:`clear_cache`);
* :mod:`~sigcnn.atrous.every_shift`: `all_shifts` and its check against brute
  force.

Arrays are NHWC (the input x is [N, H, W, C]); a network may use any layout inside
(NCHW convolutions, transposes, channel-first Equinox modules under `vmap`).

References:
    Holschneider, Kronland-Martinet, Morlet and Tchamitchian, "A real-time algorithm
    for signal analysis with the help of the wavelet transform", Wavelets, 1989.
    Shensa, "The discrete wavelet transform: wedding the à trous and Mallat
    algorithms", IEEE Trans. Signal Processing 40(10), 1992.
    Vaidyanathan, Multirate Systems and Filter Banks, Prentice Hall, 1993.
    Azulay and Weiss, "Why do deep convolutional networks generalize so poorly to
    small image transformations?", JMLR 20(184), 2019.
"""

from sigcnn.atrous import rules_concatenate as _rules_concatenate  # noqa: F401
from sigcnn.atrous import rules_elementwise as _rules_elementwise  # noqa: F401
from sigcnn.atrous import rules_reduce as _rules_reduce  # noqa: F401
from sigcnn.atrous import rules_structure as _rules_structure  # noqa: F401
from sigcnn.atrous import rules_window as _rules_window  # noqa: F401
from sigcnn.atrous.api import (
    clear_cache,
    decimation_points,
    undecimate,
    undecimate_with_points,
)
from sigcnn.atrous.every_shift import (
    CHECK_NOISE_FACTOR,
    CHECK_TOLERANCE,
    CertificationError,
    all_shifts,
)
from sigcnn.atrous.policy import Refusal, RuleError
from sigcnn.atrous.precision import PRECISION_TOLERANCE
from sigcnn.atrous.registry import register_rule
from sigcnn.atrous.rules_elementwise import elementwise
from sigcnn.atrous.rules_window import LayoutError
from sigcnn.atrous.tiling import Tiling
from sigcnn.atrous.values import Const, Grid, Phased, Spatial

__all__ = [
    "CHECK_NOISE_FACTOR",
    "CHECK_TOLERANCE",
    "CertificationError",
    "Const",
    "Grid",
    "LayoutError",
    "PRECISION_TOLERANCE",
    "Phased",
    "Refusal",
    "RuleError",
    "Spatial",
    "Tiling",
    "all_shifts",
    "clear_cache",
    "decimation_points",
    "elementwise",
    "register_rule",
    "undecimate",
    "undecimate_with_points",
]
