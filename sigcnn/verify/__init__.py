"""The sampling-theorem verification suite behind ``sigcnn verify``.

Each check is a pure function that builds a small synthetic experiment, states what
theory predicts, measures it with sigcnn's own ops and spectra, and returns a
:class:`Check`: display strings for the predicted and measured values, a pass flag,
and the raw numbers (including the tolerance used) in a JSON-friendly ``detail``
dict. :func:`run_all` runs the whole suite; :func:`checks_to_json` turns its result
into plain dicts.

The facts checked (see docs/architecture.md and the README, "The one idea"):

* à trous identity: a strided stack r equals its undecimated stack r2 (stride 1,
  each op dilated by the product of the strides in front of it) sampled at the
  total stride S, ``r(x) == r2(x)[:, ::S, ::S]``; r2 is exactly shift-equivariant
  under circular padding, and ``r(roll(x, t))[i] == r2(x)[S*i - t]`` for every t.
* shiftability: r is shiftable (its samples determine r2 by band-limited
  interpolation) exactly when r2 has no energy at or above ``1/(2S)``; the aliasing
  ratio and the shiftability error measure that energy and its effect.
* nonlinearities create harmonics (ReLU of a cosine), which alias.
* global average pooling of r is shift invariant exactly when the DFT of r2
  vanishes at the bins ``k N / S``, ``k != 0`` (Poisson summation).
* BlurPool's binomial filter has response ``|cos(pi f)|**(k-1)`` and lowers the
  aliasing ratio by the amount that response predicts.
* the max-pool example of Zhang (2019).

Computations use float64 when ``jax_enable_x64`` is on (the command line turns it
on for the suite), float32 otherwise; tolerances follow the dtype and are stored in
each check's ``detail``. Nothing here prints, writes files or changes JAX's
configuration.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
  Simoncelli, Freeman, Adelson & Heeger, "Shiftable multiscale transforms", IEEE
  Trans. Inf. Theory 38(2), 1992.
  Vaidyanathan, "Multirate Systems and Filter Banks", Prentice Hall, 1993.
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
"""

from __future__ import annotations

import jax

from sigcnn._checks import check_key
from sigcnn.verify._common import Check, checks_to_json
from sigcnn.verify.pooling import (
    binomial_response,
    check_blurpool_aliasing,
    check_blurpool_response,
    check_gap_poisson,
    check_gap_tones,
    check_maxpool_zhang,
)
from sigcnn.verify.relu import (
    check_relu_aliasing,
    check_relu_harmonic,
    rectified_cosine_harmonic,
    relu_tone_spectra_2d,
)
from sigcnn.verify.sampling import (
    alias_weights,
    check_field_sweep,
    check_shiftable_field,
    check_tone_above_nyquist,
    check_tone_sweep,
)
from sigcnn.verify.stack import (
    DEFAULT_STACK,
    apply_stack,
    check_shift_equivariance,
    check_shift_polyphase,
    check_strided_vs_undecimated,
    init_stack,
    polyphase_prediction,
    stack_stride,
    undecimated_dilations,
)

__all__ = [
    "Check",
    "DEFAULT_STACK",
    "alias_weights",
    "apply_stack",
    "binomial_response",
    "check_blurpool_aliasing",
    "check_blurpool_response",
    "check_field_sweep",
    "check_gap_poisson",
    "check_gap_tones",
    "check_maxpool_zhang",
    "check_relu_aliasing",
    "check_relu_harmonic",
    "check_shift_equivariance",
    "check_shift_polyphase",
    "check_shiftable_field",
    "check_strided_vs_undecimated",
    "check_tone_above_nyquist",
    "check_tone_sweep",
    "checks_to_json",
    "init_stack",
    "polyphase_prediction",
    "rectified_cosine_harmonic",
    "relu_tone_spectra_2d",
    "run_all",
    "stack_stride",
    "undecimated_dilations",
]



# --------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------


def run_all(*, key) -> list[Check]:
    """Runs every check of the suite.

    Args:
      key: a ``jax.random`` key. The checks on the random CNN stack share one
        subkey (they test the same stack); the random-field and white-noise
        checks get their own.

    Returns:
      list of :class:`Check`, one per row.

    Raises:
      TypeError: if ``key`` is not a JAX PRNG key.
    """
    check_key("key", key)
    k_stack, k_field, k_white = jax.random.split(key, 3)
    return [
        check_strided_vs_undecimated(key=k_stack, padding="circular"),
        check_strided_vs_undecimated(key=k_stack, padding="zero"),
        check_strided_vs_undecimated(key=k_stack, padding="reflect"),
        check_shift_equivariance(key=k_stack),
        check_shift_polyphase(key=k_stack),
        check_gap_poisson(key=k_stack),
        check_gap_tones(),
        check_shiftable_field(key=k_field),
        check_tone_above_nyquist(),
        check_tone_sweep(),
        check_field_sweep(key=k_field),
        check_relu_harmonic(),
        check_relu_aliasing(),
        check_blurpool_response(),
        check_blurpool_aliasing(key=k_white),
        check_maxpool_zhang(),
    ]
