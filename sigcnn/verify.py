"""The sampling-theorem verification suite behind ``sigcnn verify``.

Each check is a pure function that builds a small synthetic experiment, states what
theory predicts, measures it with sigcnn's own ops and spectra, and returns a
:class:`Check`: display strings for the predicted and measured values, a pass flag,
and the raw numbers (including the tolerance used) in a JSON-friendly ``detail``
dict. :func:`run_all` runs the whole suite; :func:`checks_to_json` turns its result
into plain dicts.

The facts checked (see DESIGN.md, "The one idea"):

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

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn import ops
from sigcnn._io import to_jsonable
from sigcnn._checks import as_pair, check_choice, check_positive_int
from sigcnn.data.synthetic import (
    bandlimited_field,
    rectified_cosine,
    tone,
    tone_1d,
)
from sigcnn.spectra import (
    aliasing_ratio,
    fourier_upsample,
    nyquist_mask,
    power_spectrum,
    shiftability_error,
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
# Result type
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the verification suite.

    Attributes:
      name: short identifier, e.g. ``"strided_vs_undecimated/circular"``.
      predicted: what theory predicts, for display.
      measured: what was measured, for display.
      passed: whether the measurement matches the prediction within tolerance.
      detail: raw numbers (floats, ints, bools, strings and lists of them),
        including the tolerance used; JSON-serialisable via
        :func:`checks_to_json`.
    """

    name: str
    predicted: str
    measured: str
    passed: bool
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict,
                                                  hash=False)


def checks_to_json(checks: Sequence[Check]) -> list[dict]:
    """Turns checks into JSON-serialisable dicts.

    Args:
      checks: sequence of :class:`Check`.

    Returns:
      list of dicts with keys ``name``, ``predicted``, ``measured``, ``passed``
      (bool) and ``detail`` (plain Python numbers, strings and lists; non-finite
      floats as strings).

    Raises:
      TypeError: if an element is not a :class:`Check`.
    """
    rows = []
    for i, c in enumerate(checks):
        if not isinstance(c, Check):
            raise TypeError(
                f"`checks` must be a sequence of Check; element {i} is "
                f"{type(c).__name__}.")
        rows.append({"name": c.name, "predicted": c.predicted,
                     "measured": c.measured, "passed": bool(c.passed),
                     "detail": to_jsonable(dict(c.detail))})
    return rows


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _dtype():
    """float64 when x64 is enabled, else float32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _is64(dtype) -> bool:
    return np.dtype(dtype) == np.float64


def _tol(dtype, *, f32: float, f64: float) -> float:
    return f64 if _is64(dtype) else f32


def _fmt(v: float) -> str:
    """Compact number for display: 0, 1.2e-16, 0.2122, 2."""
    v = float(v)
    if v == 0.0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.1e}"
    return f"{v:.4g}"


def _check_key(key):
    ok = isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,)))
    if not ok:
        raise TypeError(
            f"`key` must be a JAX PRNG key, e.g. jax.random.key(0); got "
            f"{key!r}.")
    return key


def _rng(key, stream: int = 0) -> np.random.Generator:
    """NumPy generator seeded from a JAX key and a stream number (deterministic).

    Host-side sampling avoids compiling a random-number kernel per shape, which
    dominates the run time of a suite of small experiments on CPU.
    """
    _check_key(key)
    data = np.asarray(jax.random.key_data(key) if jnp.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key, np.uint32)
    return np.random.default_rng([*data.ravel().tolist(), stream])


@functools.partial(jax.jit, static_argnums=1)
def _metrics(x, stride):
    """(aliasing ratio, shiftability error) of x, jitted per shape and stride."""
    return aliasing_ratio(x, stride), shiftability_error(x, stride)


@functools.partial(jax.jit, static_argnums=1)
def _metrics_each(xs, stride):
    """Both metrics of every image of xs [N, H, W, C] separately: two [N]."""
    return jax.vmap(lambda x: _metrics(x[None], stride))(xs)


def _all_rolls(x, shifts) -> np.ndarray:
    """Stack of roll(x, t) for each t, built on the host: [len(shifts) * N, ...]."""
    x = np.asarray(x)
    return np.concatenate([np.roll(x, t, axis=(1, 2)) for t in shifts])


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def _scale(a) -> float:
    return max(float(np.max(np.abs(np.asarray(a)))), 1e-30)


def _cos_amplitudes(x):
    """One-sided cosine amplitudes of a real 1-D signal [1, 1, n, 1] (NumPy FFT).

    Returns (freqs, amps) over the rfft bins: ``amps[k] = 2 |X_k| / n`` except
    at DC (and at 1/2 for even n), where it is ``|X_k| / n``.
    """
    v = np.asarray(x, np.float64)[0, 0, :, 0]
    n = v.shape[0]
    amps = 2.0 * np.abs(np.fft.rfft(v)) / n
    amps[0] /= 2.0
    if n % 2 == 0:
        amps[-1] /= 2.0
    return np.fft.rfftfreq(n), amps


# --------------------------------------------------------------------------
# A small random CNN, strided and undecimated (à trous), built from the ops
# --------------------------------------------------------------------------

#: Layer specification of the test stack: (kind, window/size, stride) per
#: layer. Strides 1, 1, 2, 2, 1, 2, 1: total stride 8; in the undecimated stack
#: the second conv is dilated by 2, the blur pool by 4 and the last conv by 8.
DEFAULT_STACK = (
    ("conv", 3, 1),
    ("relu", 1, 1),
    ("max", 2, 2),
    ("conv", 3, 2),
    ("relu", 1, 1),
    ("blur", 3, 2),
    ("conv", 3, 1),
)

_KINDS = ("conv", "relu", "max", "avg", "blur")


def _check_spec(spec):
    if not isinstance(spec, (tuple, list)) or not spec:
        raise ValueError(
            f"`spec` must be a non-empty sequence of (kind, size, stride) "
            f"triples; got {spec!r}.")
    for layer in spec:
        if not isinstance(layer, (tuple, list)) or len(layer) != 3:
            raise ValueError(
                f"`spec` entries must be (kind, size, stride) triples; got "
                f"{layer!r}.")
        if layer[0] not in _KINDS:
            raise ValueError(
                f"`spec` layer kind must be one of {list(_KINDS)}; got "
                f"{layer[0]!r} in {layer!r}.")
        for v in layer[1:]:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) \
                    or v < 1:
                raise ValueError(
                    f"`spec` sizes and strides must be positive ints; got "
                    f"{layer!r}.")


def stack_stride(spec=DEFAULT_STACK) -> int:
    """Total stride S of a stack: the product of its layer strides.

    Args:
      spec: sequence of (kind, size, stride) triples.

    Returns:
      int S.

    Raises:
      ValueError: malformed ``spec``.
    """
    _check_spec(spec)
    return int(np.prod([s for _, _, s in spec]))


def undecimated_dilations(spec=DEFAULT_STACK) -> tuple[int, ...]:
    """Dilation of each layer in the undecimated stack (the à trous rule).

    Layer j is dilated by the product of the strides of layers 0..j-1.

    Args:
      spec: sequence of (kind, size, stride) triples.

    Returns:
      tuple of ints, one per layer.

    Raises:
      ValueError: malformed ``spec``.
    """
    _check_spec(spec)
    out, d = [], 1
    for _, _, s in spec:
        out.append(d)
        d *= s
    return tuple(out)


def init_stack(key, *, spec=DEFAULT_STACK, in_channels: int = 2,
               width: int = 4, dtype=jnp.float32) -> tuple:
    """Random HWIO kernels for the conv layers of a stack.

    Args:
      key: a ``jax.random`` key (seeds a NumPy generator).
      spec: sequence of (kind, size, stride) triples.
      in_channels: channels C of the input.
      width: output channels of every conv.
      dtype: float dtype of the kernels.

    Returns:
      tuple of kernels, one per "conv" layer, shapes [k, k, C_in, width], with
      variance 2 / fan_in (He initialisation).

    Raises:
      ValueError: malformed ``spec``. TypeError: ``key`` is not a JAX key.
    """
    _check_spec(spec)
    in_channels = check_positive_int("in_channels", in_channels)
    width = check_positive_int("width", width)
    rng = _rng(key, 1)
    kernels, cin = [], in_channels
    for kind, size, _ in spec:
        if kind != "conv":
            continue
        std = math.sqrt(2.0 / (size * size * cin))
        kernels.append(jnp.asarray(
            std * rng.standard_normal((size, size, cin, width)), dtype))
        cin = width
    return tuple(kernels)


def apply_stack(x, kernels, *, spec=DEFAULT_STACK, padding="circular",
                undecimated: bool = False, dilations=None):
    """Runs a stack of sigcnn ops, strided or undecimated.

    Strided: every layer uses its own stride and dilation 1. Undecimated: every
    layer uses stride 1 and dilation ``dilations[j]`` (default
    :func:`undecimated_dilations`), so the output r2 has full input resolution
    and ``r == r2[:, ::S, ::S]`` with S = :func:`stack_stride`.

    Args:
      x: float array, shape [N, H, W, C].
      kernels: tuple of HWIO kernels, one per "conv" layer (:func:`init_stack`).
      spec: sequence of (kind, size, stride) triples; kinds "conv", "relu",
        "max", "avg", "blur".
      padding: padding mode of every layer: "zero", "circular" or "reflect".
      undecimated: build the undecimated (à trous) stack.
      dilations: per-layer dilations of the undecimated stack (for experiments
        and negative controls); ignored unless ``undecimated``.

    Returns:
      array, shape [N, ceil(H/S), ceil(W/S), C_out] (strided) or [N, H, W,
      C_out] (undecimated).

    Raises:
      ValueError: malformed ``spec``, ``dilations`` or ``padding``.
    """
    _check_spec(spec)
    check_choice("padding", padding, ("zero", "circular", "reflect"))
    if dilations is None:
        dilations = undecimated_dilations(spec)
    if len(dilations) != len(spec):
        raise ValueError(
            f"`dilations` must have one entry per layer ({len(spec)}); got "
            f"{dilations!r}.")
    ki = 0
    for (kind, size, s), d in zip(spec, dilations):
        stride, dil = (1, d) if undecimated else (s, 1)
        if kind == "conv":
            x = ops.conv(x, kernels[ki], stride=stride, dilation=dil,
                         padding=padding)
            ki += 1
        elif kind == "relu":
            x = jax.nn.relu(x)
        elif kind == "max":
            x = ops.max_pool(x, window=size, stride=stride, dilation=dil,
                             padding=padding)
        elif kind == "avg":
            x = ops.avg_pool(x, window=size, stride=stride, dilation=dil,
                             padding=padding)
        else:
            x = ops.blur_pool(x, size=size, stride=stride, dilation=dil,
                              padding=padding)
    return x


_stack_jit = jax.jit(apply_stack,
                     static_argnames=("spec", "padding", "undecimated",
                                      "dilations"))


def _stack_setup(key, dtype, *, size=32, channels=2):
    """Input [1, size, size, channels] and kernels of the default stack."""
    x = _rng(key, 0).standard_normal((1, size, size, channels))
    return jnp.asarray(x, dtype), init_stack(key, in_channels=channels,
                                             dtype=dtype)


def _circular_responses(key, dtype):
    """Strided and undecimated responses of the stack to all S x S shifts."""
    x, kernels = _stack_setup(key, dtype)
    s = stack_stride()
    shifts = [(ty, tx) for ty in range(s) for tx in range(s)]
    xs = jnp.asarray(_all_rolls(x, shifts))            # xs[0] is x itself
    r = np.asarray(_stack_jit(xs, kernels, padding="circular"))
    r2 = np.asarray(_stack_jit(xs, kernels, padding="circular",
                               undecimated=True))
    return s, shifts, r, r2


def polyphase_prediction(r2, shift, stride):
    """The strided response to ``roll(x, shift)`` predicted from r2.

    Implements ``r(roll(x, t))[i] == r2(x)[S*i - t]`` (indices mod the size).

    Args:
      r2: array, shape [N, H, W, C]: the undecimated response to x.
      shift: (ty, tx) integer shift.
      stride: (Sy, Sx) total stride, dividing (H, W).

    Returns:
      array, shape [N, H/Sy, W/Sx, C].
    """
    sy, sx = stride
    h, w = r2.shape[1], r2.shape[2]
    iy = (sy * np.arange(h // sy) - shift[0]) % h
    ix = (sx * np.arange(w // sx) - shift[1]) % w
    return r2[:, iy][:, :, ix]


# --------------------------------------------------------------------------
# Checks: the à trous identities
# --------------------------------------------------------------------------


def check_strided_vs_undecimated(*, key, padding="circular", dilations=None,
                                 dtype=None) -> Check:
    """``r(x) == r2(x)[:, ::S, ::S]`` for a random conv/ReLU/max/blur stack.

    Circular padding uses a 32 x 32 input and all S x S shifts of it; zero
    padding a 32 x 32 input; reflect padding a 33 x 33 input: reflection
    mirrors about the last sample, and the last samples of the strided and the
    undecimated grids coincide only when ``H - 1`` is a multiple of S.

    Args:
      key: ``jax.random`` key for the input and kernels.
      padding: "circular", "zero" or "reflect".
      dilations: per-layer dilations of the undecimated stack; the default is
        the à trous rule (a negative control passes wrong ones).
      dtype: float dtype (default float64 if x64 is enabled, else float32).

    Returns:
      :class:`Check` with the max abs difference relative to max |r|.

    Raises:
      ValueError: unknown ``padding``.
    """
    check_choice("padding", padding, ("circular", "zero", "reflect"))
    dtype = dtype or _dtype()
    dil = tuple(dilations) if dilations is not None else undecimated_dilations()
    s = stack_stride()
    if padding == "circular":
        x, kernels = _stack_setup(key, dtype)
        xs = jnp.asarray(_all_rolls(
            x, [(ty, tx) for ty in range(s) for tx in range(s)]))
    else:
        xs, kernels = _stack_setup(key, dtype,
                                   size=33 if padding == "reflect" else 32)
    r = _stack_jit(xs, kernels, padding=padding)
    r2 = _stack_jit(xs, kernels, padding=padding, undecimated=True,
                    dilations=None if dilations is None else dil)
    err = _max_abs(r, r2[:, ::s, ::s]) / _scale(r)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    return Check(
        name=f"strided_vs_undecimated/{padding}",
        predicted=f"r == r2[::{s}] (rel. diff <= {tol:.0e})",
        measured=f"max rel. diff {_fmt(err)}",
        passed=err <= tol,
        detail={"padding": padding, "stride": s, "dilations": list(dil),
                "input_shape": list(xs.shape), "max_rel_diff": err, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_shift_equivariance(*, key, dtype=None) -> Check:
    """r2 is exactly shift-equivariant under circular padding.

    ``r2(roll(x, t)) == roll(r2(x), t)`` for every t in ``[0, S)^2``.

    Args:
      key: ``jax.random`` key.
      dtype: float dtype.

    Returns:
      :class:`Check` with the max abs difference over the shifts.
    """
    dtype = dtype or _dtype()
    s, shifts, _, r2 = _circular_responses(key, dtype)
    expected = _all_rolls(r2[:1], shifts)
    err = float(np.max(np.abs(r2 - expected))) / _scale(r2)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    return Check(
        name="undecimated_shift_equivariance",
        predicted=f"r2(roll(x,t)) == roll(r2(x),t) (rel. diff <= {tol:.0e})",
        measured=f"max rel. diff {_fmt(err)} over {len(shifts)} shifts",
        passed=err <= tol,
        detail={"n_shifts": len(shifts), "max_rel_diff": err, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_shift_polyphase(*, key, predict: Callable = polyphase_prediction,
                          dtype=None) -> Check:
    """Every shifted strided response is a polyphase component of r2.

    ``r(roll(x, t))[i] == r2(x)[S*i - t]`` for all S x S shifts t in
    ``[0, S)^2`` (circular padding).

    Args:
      key: ``jax.random`` key.
      predict: ``predict(r2, t, (S, S))`` giving the predicted strided response
        (default :func:`polyphase_prediction`; a negative control passes a wrong
        phase).
      dtype: float dtype.

    Returns:
      :class:`Check` with the max abs difference over all shifts.
    """
    dtype = dtype or _dtype()
    s, shifts, r, r2 = _circular_responses(key, dtype)
    pred = np.concatenate([np.asarray(predict(r2[:1], t, (s, s)))
                           for t in shifts])
    err = float(np.max(np.abs(r - pred))) / _scale(r)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    return Check(
        name="strided_shift_is_polyphase",
        predicted=f"r(roll(x,t))[i] == r2(x)[{s}i-t] (rel. diff <= {tol:.0e})",
        measured=f"max rel. diff {_fmt(err)} over all {len(shifts)} shifts",
        passed=err <= tol,
        detail={"stride": s, "n_shifts": len(shifts), "max_rel_diff": err,
                "tol": tol, "dtype": np.dtype(dtype).name})


# --------------------------------------------------------------------------
# Checks: aliasing ratio and shiftability error
# --------------------------------------------------------------------------

_FIELD_SHAPE = (32, 32)
_FIELD_BATCH = 8
_STRIDES_2D = ((2, 2), (2, 4))


def _field(key, cutoff, dtype):
    return bandlimited_field(key, _FIELD_SHAPE, cutoff=cutoff,
                             batch=_FIELD_BATCH, dtype=dtype)


def check_shiftable_field(*, key, dtype=None) -> Check:
    """A field band-limited below Nyquist: aliasing ratio 0, shiftability error 0.

    Eight 32 x 32 fields with cutoff ``1/(2s)`` per axis, for strides 2 and
    (2, 4).

    Args:
      key: ``jax.random`` key.
      dtype: float dtype.

    Returns:
      :class:`Check` with the largest ratio and error over the strides.
    """
    dtype = dtype or _dtype()
    ratios, errors = [], []
    for sy, sx in _STRIDES_2D:
        f = _field(key, (1 / (2 * sy), 1 / (2 * sx)), dtype)
        ratio, error = _metrics(f, (sy, sx))
        ratios.append(float(ratio))
        errors.append(float(error))
    tol = 1e-10
    worst = max(max(ratios), max(errors))
    return Check(
        name="bandlimited_field_shiftable",
        predicted=f"ratio 0, error 0 (<= {tol:.0e})",
        measured=f"max ratio {_fmt(max(ratios))}, max error {_fmt(max(errors))}",
        passed=worst <= tol,
        detail={"strides": [list(s) for s in _STRIDES_2D], "ratios": ratios,
                "errors": errors, "tol": tol, "dtype": np.dtype(dtype).name})


def check_tone_above_nyquist(*, dtype=None) -> Check:
    """A tone above Nyquist: aliasing ratio 1 and shiftability error 2.

    The 2-D tone (10/32, 3/32) is above Nyquist along y for strides 2 and
    (2, 4) (and below it along x); its alias lands on a different bin,
    orthogonal to it.

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with the measured ratios and errors.
    """
    dtype = dtype or _dtype()
    x = tone(_FIELD_SHAPE, (10 / 32, 3 / 32), phase=0.4, dtype=dtype)
    # Identical copies leave both metrics unchanged and share the compiled
    # metrics of the field checks.
    x = jnp.asarray(np.tile(np.asarray(x), (_FIELD_BATCH, 1, 1, 1)))
    ratios, errors = [], []
    for s in _STRIDES_2D:
        ratio, error = _metrics(x, s)
        ratios.append(float(ratio))
        errors.append(float(error))
    tol = _tol(dtype, f32=1e-5, f64=1e-10)
    dev = max(max(abs(r - 1) for r in ratios), max(abs(e - 2) for e in errors))
    return Check(
        name="tone_above_nyquist",
        predicted=f"ratio 1, error 2 (+-{tol:.0e})",
        measured=f"ratio {_fmt(min(ratios))}..{_fmt(max(ratios))}, error "
                 f"{_fmt(min(errors))}..{_fmt(max(errors))}",
        passed=dev <= tol,
        detail={"freq": [10 / 32, 3 / 32], "strides":
                [list(s) for s in _STRIDES_2D], "ratios": ratios,
                "errors": errors, "max_deviation": dev, "tol": tol,
                "dtype": np.dtype(dtype).name})


def _tone_error_s2(k: int, n: int, phase: float) -> float:
    """Predicted shiftability error at stride 2 of cos(2 pi k u / n + phase)."""
    k = abs(k)
    if k == 0 or 4 * k < n:
        return 0.0                        # constant, or below Nyquist 1/4
    if 4 * k == n:
        return math.sin(phase) ** 2       # at Nyquist: the sine part is lost
    return 2.0                            # alias orthogonal to the tone


def check_tone_sweep(*, n: int = 64, phase: float = math.pi / 3,
                     dtype=None) -> Check:
    """1-D tone sweep at stride 2: the ratio is a step at 1/4, the error 0 / 2.

    Tones ``cos(2 pi f u + phase)`` at every on-grid f = k/n, k = 0..n/2.
    Predicted: ratio 0 for f < 1/4 and 1 for f >= 1/4 (the Nyquist bin counts as
    outside); error 0 below 1/4, ``sin(phase)**2`` at exactly 1/4 (sampling at
    Nyquist keeps only the cosine part), 2 above (the alias is orthogonal).

    Args:
      n: signal length, a multiple of 4.
      phase: tone phase in radians.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the swept frequencies, predicted and
      measured ratios and errors.

    Raises:
      ValueError: if n is not a positive multiple of 4.
    """
    n = check_positive_int("n", n)
    if n % 4:
        raise ValueError(f"`n` must be a multiple of 4; got {n!r}.")
    dtype = dtype or _dtype()
    ks = np.arange(n // 2 + 1)
    xs = jnp.asarray(np.concatenate([
        np.asarray(tone_1d(n, k / n, phase=phase, dtype=dtype)) for k in ks]))
    ratio, error = (np.asarray(v, np.float64)
                    for v in _metrics_each(xs, (1, 2)))
    pred_ratio = np.where(4 * ks >= n, 1.0, 0.0)
    pred_error = np.array([_tone_error_s2(int(k), n, phase) for k in ks])
    dev = float(max(np.max(np.abs(ratio - pred_ratio)),
                    np.max(np.abs(error - pred_error))))
    tol = _tol(dtype, f32=1e-4, f64=1e-9)
    return Check(
        name="tone_sweep",
        predicted="ratio: step 0->1 at f=1/4; error 0 | sin^2(phase) | 2",
        measured=f"max deviation {_fmt(dev)} over {len(ks)} tones",
        passed=dev <= tol,
        detail={"stride": 2, "n": n, "phase": phase,
                "freqs": (ks / n).tolist(), "ratio": ratio.tolist(),
                "error": error.tolist(), "predicted_ratio": pred_ratio.tolist(),
                "predicted_error": pred_error.tolist(), "max_deviation": dev,
                "tol": tol, "dtype": np.dtype(dtype).name})


def _axis_factors(n: int, s: int):
    """Per DFT bin of an n-axis: <e, P e> and ||P e||^2 for P = B o (::s)."""
    k = np.rint(np.fft.fftfreq(n) * n).astype(np.int64)
    if s == 1:
        return np.ones(n), np.ones(n)
    m = n // s
    alias = k % m
    alias = np.where(alias >= (m + 1) // 2, alias - m, alias)  # in [-m/2, m/2)
    split = (m % 2 == 0) & (np.abs(alias) * 2 == m)  # lands on the Nyquist bin
    inner = np.where(split, np.where(np.abs(k) * 2 == m, 0.5, 0.0),
                     np.where(alias == k, 1.0, 0.0))
    norm2 = np.where(split, 0.5, 1.0)
    return inner, norm2


def alias_weights(shape, stride) -> np.ndarray:
    """Expected shiftability error of a random-phase tone at each DFT bin.

    With ``P = B o subsample`` (B: :func:`sigcnn.spectra.fourier_upsample`), a
    complex exponential e at bin k has ``w(k) = ||e - P e||^2 / ||e||^2 = 1 - 2
    <e, Pe> + ||Pe||^2``, computed per axis (P is separable): a bin strictly
    inside the Nyquist box maps to itself; a bin above Nyquist maps to a
    different, orthogonal bin; a bin exactly at ``±1/(2s)``, or one that aliases
    onto it, is split between ``±1/(2s)`` (half its energy each). So w = 0
    inside the box, 2 above Nyquist, and 1/2, 3/4 or 3/2 on the Nyquist lines.
    For a signal with independent random phases, ``E[error] = sum_k P_k w_k /
    sum_k P_k``; with no energy on the Nyquist lines this is ``2 x aliasing
    ratio``.

    Args:
      shape: (H, W), divisible by the stride.
      stride: s or (sy, sx).

    Returns:
      float64 NumPy array, shape [H, W], in ``np.fft.fftfreq`` order.

    Raises:
      ValueError: if the stride does not divide the shape.
    """
    h, w = (int(v) for v in shape)
    sy, sx = as_pair("stride", stride)
    if h % sy or w % sx:
        raise ValueError(
            f"`stride` {(sy, sx)} must divide `shape` {(h, w)}.")
    iy, ny = _axis_factors(h, sy)
    ix, nx = _axis_factors(w, sx)
    inner = iy[:, None] * ix[None, :]
    norm2 = ny[:, None] * nx[None, :]
    return 1.0 - 2.0 * inner + norm2


def check_field_sweep(*, key, cutoffs=tuple(j / 16 for j in range(1, 9)),
                      stride: int = 2, dtype=None) -> Check:
    """Band-limited fields of growing cutoff: error follows out-of-band energy.

    Eight 32 x 32 fields per cutoff (the same noise low-passed at each cutoff).
    For ``c <= 1/(2s)``: ratio 0 and error 0 (to rounding). Above: the error
    matches ``sum_k P_k w_k / sum_k P_k`` (:func:`alias_weights`, P the
    measured power spectrum of the fields), its expectation over random phases;
    the deviation is the random interference of aliases landing on the same
    bin, tolerance 0.08.

    Args:
      key: ``jax.random`` key.
      cutoffs: field cutoffs in (0, 0.5] cycles/pixel.
      stride: the stride s.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the cutoffs, ratios, errors and predicted
      errors.
    """
    dtype = dtype or _dtype()
    weights = alias_weights(_FIELD_SHAPE, stride)
    ratios, errors, preds = [], [], []
    for c in cutoffs:
        f = _field(key, c, dtype)
        p = np.asarray(_power(f), np.float64)
        ratio, error = _metrics(f, (stride, stride))
        ratios.append(float(ratio))
        errors.append(float(error))
        preds.append(float((p * weights).sum() / p.sum()))
    ratios, errors, preds = map(np.array, (ratios, errors, preds))
    below = np.array(cutoffs) <= 1 / (2 * stride)
    tol0, tol = 1e-10, 0.08
    dev_below = float(np.max(np.abs(np.concatenate(
        [ratios[below], errors[below]])))) if below.any() else 0.0
    dev_above = float(np.max(np.abs(errors - preds)[~below])) \
        if (~below).any() else 0.0
    return Check(
        name="field_sweep",
        predicted=(f"c<=1/{2 * stride}: 0; above: error = E[error | spectrum] "
                   f"+-{tol}"),
        measured=(f"below: max {_fmt(dev_below)}; above: max |diff| "
                  f"{_fmt(dev_above)}"),
        passed=dev_below <= tol0 and dev_above <= tol,
        detail={"stride": stride, "shape": list(_FIELD_SHAPE),
                "batch": _FIELD_BATCH, "cutoffs": list(cutoffs),
                "ratio": ratios.tolist(), "error": errors.tolist(),
                "predicted_error": preds.tolist(), "max_below": dev_below,
                "max_deviation_above": dev_above, "tol_below": tol0,
                "tol_above": tol, "dtype": np.dtype(dtype).name})


_power = jax.jit(power_spectrum, static_argnames=("remove_mean", "reduce"))


# --------------------------------------------------------------------------
# Checks: ReLU creates harmonics that alias
# --------------------------------------------------------------------------


def rectified_cosine_harmonic(harmonic: int, period: int, *,
                              terms: int = 200_000) -> float:
    """Cosine amplitude at bin ``harmonic`` of ``max(0, cos(2 pi u / period))``.

    From the Fourier series ``max(0, cos t) = 1/pi + cos(t)/2 + (2/pi) sum_k
    (-1)^(k+1) cos(2kt) / (4k^2 - 1)``: sampling with ``period`` samples per
    cycle folds harmonic j onto ``j mod period``, so the amplitude at bin h is
    the sum of the series coefficients of all j = ±h (mod period).

    Args:
      harmonic: bin h >= 1 with 2h != period (not DC, not Nyquist).
      period: samples per cycle (``1 / f``), an int > 2.
      terms: folded terms summed per class (truncation error about
        ``1 / (pi period terms)``).

    Returns:
      float: the amplitude of ``cos(2 pi h u / period)`` in the sampled signal.

    Raises:
      ValueError: for a DC or Nyquist bin, or a bad period.
    """
    harmonic = check_positive_int("harmonic", harmonic)
    period = check_positive_int("period", period)
    if period < 3 or 2 * (harmonic % period) in (0, period):
        raise ValueError(
            f"`harmonic` {harmonic} must not fall on the DC or Nyquist bin of a "
            f"period of {period} samples (period >= 3).")
    m = np.arange(terms, dtype=np.float64)
    h = harmonic % period
    j = np.concatenate([h + m * period, (period - h) + m * period])
    coef = np.zeros_like(j)
    coef[j == 1] = 0.5
    even = (j % 2 == 0) & (j > 0)
    kk = j[even] / 2
    coef[even] = (2 / np.pi) * np.where(kk % 2 == 1, 1.0, -1.0) / (4 * kk ** 2 - 1)
    return float(coef.sum())


def check_relu_harmonic(*, freq: float = 0.2, n: int = 40, oversample: int = 64,
                        dtype=None) -> Check:
    """ReLU of a unit cosine at f has a component at 2f of amplitude 2/(3 pi).

    Measured from the DFT on a grid fine enough (``oversample`` samples per
    pixel) that the higher harmonics barely fold back; and on the n-pixel grid
    itself, where f = 0.2 gives a 5-sample period and harmonics 8f, 12f, ...
    fold onto 2f: there the folded Fourier series
    (:func:`rectified_cosine_harmonic`) predicts the sampled value exactly.

    Args:
      freq: tone frequency f in cycles/pixel, with ``1/f`` an integer dividing
        n.
      n: pixels.
      oversample: samples per pixel of the fine grid.
      dtype: float dtype.

    Returns:
      :class:`Check` with both amplitudes.
    """
    dtype = dtype or _dtype()
    continuous = 2 / (3 * math.pi)
    out = {}
    for label, m in (("fine", n * oversample), ("pixel", n)):
        f = freq * n / m
        period = round(1 / f)
        _, amps = _cos_amplitudes(rectified_cosine(m, f, dtype=dtype))
        out[label] = {"samples": m, "period": period,
                      "measured": float(amps[round(2 * f * m)]),
                      "folded_series": rectified_cosine_harmonic(2, period)}
    tol = _tol(dtype, f32=1e-5, f64=1e-9)
    tol_cont = 1e-4
    dev_fold = max(abs(v["measured"] - v["folded_series"]) for v in out.values())
    dev_cont = abs(out["fine"]["measured"] - continuous)
    return Check(
        name="relu_harmonic_2f",
        predicted=(f"amp at 2f: 2/(3pi)={continuous:.4f}; folded on "
                   f"{n} px: {out['pixel']['folded_series']:.4f}"),
        measured=(f"{out['fine']['measured']:.4f} ({oversample}x grid), "
                  f"{out['pixel']['measured']:.4f} ({n} px)"),
        passed=dev_cont <= tol_cont and dev_fold <= tol,
        detail={"freq": freq, "continuous_amplitude": continuous,
                "grids": out, "max_deviation_folded": dev_fold,
                "deviation_continuous": dev_cont, "tol_folded": tol,
                "tol_continuous": tol_cont, "dtype": np.dtype(dtype).name})


@functools.partial(jax.jit, static_argnums=1)
def _relu_resampled(x, stride):
    """ReLU(x), its band-limited reconstruction from stride samples, ratios."""
    s = (1, stride)
    r2 = jax.nn.relu(x)
    rec = fourier_upsample(r2[:, :, ::stride], s)
    return r2, rec, aliasing_ratio(x, s), aliasing_ratio(r2, s)


def check_relu_aliasing(*, freq: float = 0.2, n: int = 40, stride: int = 2,
                        dtype=None) -> Check:
    """A cosine below Nyquist is aliased after ReLU: 2f lands at |2f - 1/s|.

    f = 0.2 is below the Nyquist frequency 1/4 of stride 2 (aliasing ratio 0);
    ReLU adds a harmonic at 0.4 (ratio ``A2^2 / (A1^2 + A2^2)`` from the folded
    Fourier series); subsampling by 2 and interpolating back puts that
    harmonic at ``|0.4 - 1/2| = 0.1``, a bin where r2 itself has no energy.

    Args:
      freq: tone frequency in cycles/pixel, with ``1/f`` an integer dividing n.
      n: pixels, a multiple of the stride.
      stride: subsampling factor s.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the amplitude spectra of the tone, of
      ReLU(tone) and of its band-limited reconstruction from stride-s samples.
    """
    dtype = dtype or _dtype()
    x = tone_1d(n, freq, dtype=dtype)
    r2, rec, ratio_before, ratio_after = _relu_resampled(x, stride)
    ratio_before, ratio_after = float(ratio_before), float(ratio_after)
    period = round(1 / freq)
    a1 = rectified_cosine_harmonic(1, period)
    a2 = rectified_cosine_harmonic(2, period)
    pred_ratio = a2 ** 2 / (a1 ** 2 + a2 ** 2)
    alias_f = abs(2 * freq - round(2 * freq * stride) / stride)
    freqs, amp_x = _cos_amplitudes(x)
    _, amp_r2 = _cos_amplitudes(r2)
    _, amp_rec = _cos_amplitudes(rec)
    ka = int(round(alias_f * n))
    tol = _tol(dtype, f32=1e-5, f64=1e-9)
    devs = [ratio_before, abs(ratio_after - pred_ratio), amp_r2[ka],
            abs(amp_rec[ka] - a2)]
    return Check(
        name="relu_aliasing",
        predicted=(f"ratio 0 -> {pred_ratio:.4f}; {2 * freq:g} aliases to "
                   f"{alias_f:g} (amp {a2:.4f})"),
        measured=(f"ratio {_fmt(ratio_before)} -> {ratio_after:.4f}; amp at "
                  f"{alias_f:g}: {_fmt(amp_r2[ka])} -> {amp_rec[ka]:.4f}"),
        passed=max(devs) <= tol,
        detail={"freq": freq, "n": n, "stride": stride,
                "ratio_before": ratio_before, "ratio_after": ratio_after,
                "predicted_ratio_after": pred_ratio, "alias_freq": alias_f,
                "alias_amp_before_sampling": float(amp_r2[ka]),
                "alias_amp_after_sampling": float(amp_rec[ka]),
                "predicted_alias_amp": a2, "freqs": freqs.tolist(),
                "amp_tone": amp_x.tolist(), "amp_relu": amp_r2.tolist(),
                "amp_relu_resampled": amp_rec.tolist(),
                "max_deviation": float(max(devs)), "tol": tol,
                "dtype": np.dtype(dtype).name})


def relu_tone_spectra_2d(*, shape=(40, 40), freq=(0.2, 0.1), dtype=None):
    """Power spectra of a 2-D tone and of its ReLU, for plotting.

    Args:
      shape: (H, W).
      freq: on-grid (fy, fx) in cycles/pixel.
      dtype: float dtype.

    Returns:
      dict of NumPy arrays: ``fy`` [H] and ``fx`` [W] (fftshifted frequencies),
      ``before`` and ``after`` [H, W] (fftshifted power spectra, mean removed).
    """
    dtype = dtype or _dtype()
    x = tone(shape, freq, dtype=dtype)
    x = np.asarray(x)
    both = jnp.asarray(np.concatenate([x, np.maximum(x, 0.0)]))
    spectra = _power(both, reduce=False)
    p = np.fft.fftshift(np.asarray(spectra)[..., 0], axes=(1, 2))
    return {"fy": np.fft.fftshift(np.fft.fftfreq(shape[0])),
            "fx": np.fft.fftshift(np.fft.fftfreq(shape[1])),
            "before": p[0], "after": p[1]}


# --------------------------------------------------------------------------
# Checks: global average pooling and the bins k N / S
# --------------------------------------------------------------------------


def check_gap_tones(*, dtype=None) -> Check:
    """GAP of r is shift invariant iff the DFT of r2 vanishes at k n / S, k != 0.

    r2 is a tone on n = 32 pixels and r = r2 sampled every S = 4 pixels; GAP(t)
    is the mean of the strided response to roll(x, t), for all 32 shifts t.
    Tones: 3/32, below the Nyquist frequency 1/8 (invariant); 11/32, above
    Nyquist but off the bins k n / S = 8, 16, 24 (aliased, yet invariant); 8/32,
    on the bin n / S (GAP varies with t).

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with, per tone, the spread of GAP over shifts and the
      largest |DFT| / n at the bins k n / S.
    """
    dtype = dtype or _dtype()
    n, stride = 32, 4
    ks = {"below Nyquist": 3, "off-bin above Nyquist": 11, "on-bin": 8}
    v = np.stack([np.asarray(tone_1d(n, k / n, phase=0.3, dtype=dtype),
                             np.float64)[0, 0, :, 0] for k in ks.values()])
    bins = np.arange(1, stride) * (n // stride)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    rows, consistent = {}, True
    for i, (label, k) in enumerate(ks.items()):
        # GAP of the strided response to roll(x, t), r2 being the tone itself.
        gap = np.array([np.roll(v[i], t)[::stride].mean() for t in range(n)])
        spread = float(gap.max() - gap.min())
        on_bins = float(np.abs(np.fft.fft(v[i])[bins]).max()) / n
        invariant, vanishes = spread <= tol, on_bins <= tol
        consistent &= invariant == vanishes
        rows[label] = {"freq": k / n, "gap_spread": spread,
                       "max_dft_at_bins": on_bins, "invariant": invariant,
                       "above_nyquist": 2 * stride * k >= n}
    passed = (consistent and not rows["on-bin"]["invariant"]
              and rows["off-bin above Nyquist"]["invariant"])
    return Check(
        name="gap_invariance_tones",
        predicted="GAP spread 0 <=> DFT(r2)[kN/S]=0: below, off-bin: 0; on-bin: >0",
        measured="; ".join(f"{lab.split()[0]} {_fmt(r['gap_spread'])}"
                           for lab, r in rows.items()),
        passed=passed,
        detail={"n": n, "stride": stride, "tones": rows, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_gap_poisson(*, key, dtype=None) -> Check:
    """GAP of the random stack under every shift, from the DFT of r2.

    Poisson summation: ``GAP(r(roll(x, t))) = (1 / HW) sum_{ky, kx}
    X[ky H/S, kx W/S] exp(-2 pi i (ky ty + kx tx) / S)`` with X = DFT(r2), for
    all t in [0, S)^2; GAP is constant exactly when those bins vanish for
    k != 0.

    Args:
      key: ``jax.random`` key.
      dtype: float dtype.

    Returns:
      :class:`Check` with the max abs difference between measured and predicted
      GAP, and the spread of GAP over shifts.
    """
    dtype = dtype or _dtype()
    s, shifts, r, r2 = _circular_responses(key, dtype)
    gap = r.mean(axis=(1, 2))                                     # [S*S, C]
    h, w = r2.shape[1], r2.shape[2]
    spec = np.fft.fft2(r2[0].astype(np.float64), axes=(0, 1))     # [H, W, C]
    sub = spec[:: h // s, :: w // s]                              # [S, S, C]
    k = np.arange(s)
    t = np.array(shifts)
    phase = np.exp(-2j * np.pi * (t[:, 0, None, None] * k[None, :, None]
                                  + t[:, 1, None, None] * k[None, None, :]) / s)
    pred = np.real(np.einsum("tab,abc->tc", phase, sub)) / (h * w)
    err = float(np.max(np.abs(gap - pred))) / _scale(gap)
    spread = float(np.max(gap.max(0) - gap.min(0)))
    nonzero = np.abs(sub)
    nonzero[0, 0] = 0.0
    at_bins = float(nonzero.max()) / (h * w)
    tol = _tol(dtype, f32=1e-5, f64=1e-12)
    return Check(
        name="gap_poisson_formula",
        predicted=f"GAP(t) = sum_k X[kN/{s}] e^(-2pi i kt/{s}) / N "
                  f"(rel <= {tol:.0e})",
        measured=f"max rel. diff {_fmt(err)}; GAP spread {_fmt(spread)}",
        passed=err <= tol and (spread > tol) == (at_bins > tol),
        detail={"stride": s, "max_rel_diff": err, "gap_spread": spread,
                "max_dft_at_bins": at_bins, "tol": tol,
                "dtype": np.dtype(dtype).name})


# --------------------------------------------------------------------------
# Checks: BlurPool
# --------------------------------------------------------------------------


def binomial_response(freqs, size: int) -> np.ndarray:
    """Magnitude response ``|cos(pi f)|**(size - 1)`` of the binomial filter.

    Args:
      freqs: frequencies in cycles/pixel, any shape.
      size: filter taps, 1 to 7.

    Returns:
      float64 NumPy array, shape of ``freqs``.

    Raises:
      ValueError: if size is not an int from 1 to 7.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    ops.binomial_filter(size)  # validates size
    return np.abs(np.cos(np.pi * np.asarray(freqs, np.float64))) ** (size - 1)


@functools.partial(jax.jit, static_argnames=("sizes", "stride"))
def _blurred(x, sizes, stride):
    """Undecimated circular blurs of x per size [K, N, H, W, C], aliasing ratios."""
    outs = jnp.stack([ops.blur_pool(x, size=k, stride=1, padding="circular")
                      for k in sizes])
    return outs, jax.vmap(lambda o: aliasing_ratio(o, stride))(outs)


_SIZES = tuple(range(1, 8))
_BLUR_SIZE, _BLUR_BATCH = 64, 8


def check_blurpool_response(*, n: int = 64, dtype=None) -> Check:
    """BlurPool's measured 2-D frequency response equals the binomial prediction.

    The response of ``blur_pool(stride=1, padding="circular")`` to an impulse is
    the filter; the magnitude of its DFT is compared with
    ``|cos(pi fy)|^(k-1) |cos(pi fx)|^(k-1)`` at every bin, for k = 1..7.

    Args:
      n: grid size.
      dtype: float dtype.

    Returns:
      :class:`Check`; ``detail`` holds the measured response along fx.
    """
    dtype = dtype or _dtype()
    impulse = np.zeros((_BLUR_BATCH, n, n, 1))
    impulse[:, 0, 0, 0] = 1.0   # the batch shape of the white-noise check

    filt, _ = _blurred(jnp.asarray(impulse, dtype), _SIZES, 2)
    mag = np.abs(np.fft.fft2(np.asarray(filt, np.float64)[:, 0, :, :, 0]))
    f = np.fft.fftfreq(n)
    devs, along_fx = [], {}
    for i, k in enumerate(_SIZES):
        pred = binomial_response(f, k)[:, None] * binomial_response(f, k)[None]
        devs.append(float(np.max(np.abs(mag[i] - pred))))
        along_fx[str(k)] = mag[i, 0, : n // 2 + 1].tolist()
    tol = _tol(dtype, f32=1e-6, f64=1e-13)
    return Check(
        name="blurpool_response",
        predicted=f"|H| = |cos(pi f)|^(k-1), k=1..7 (+-{tol:.0e})",
        measured=f"max |diff| {_fmt(max(devs))}",
        passed=max(devs) <= tol,
        detail={"n": n, "sizes": list(_SIZES), "max_abs_diff": devs,
                "freqs": np.abs(f[: n // 2 + 1]).tolist(),
                "measured_along_fx": along_fx, "tol": tol,
                "dtype": np.dtype(dtype).name})


def check_blurpool_aliasing(*, key, stride: int = 2, dtype=None) -> Check:
    """BlurPool lowers the aliasing ratio of white noise as its response predicts.

    Eight 64 x 64 white-noise images, blurred by the binomial filter of size k
    = 1..7. Predicted ratio: ``sum_out |H(f)|^2 / sum |H(f)|^2`` over the non-DC
    bins (a flat white spectrum), tolerance 0.02 for the sampling noise of the
    input. Also compared with ``sum_out P(f) |H(f)|^2 / sum P(f) |H(f)|^2``,
    P the input's measured spectrum, which is exact.

    Args:
      key: ``jax.random`` key.
      stride: the subsampling s.
      dtype: float dtype.

    Returns:
      :class:`Check` with, per size, measured and predicted ratios.
    """
    dtype = dtype or _dtype()
    shape = (_BLUR_SIZE, _BLUR_SIZE)
    x = jnp.asarray(_rng(key, 2).standard_normal((_BLUR_BATCH, *shape, 1)),
                    dtype)
    _, measured = _blurred(x, _SIZES, stride)
    measured = np.asarray(measured, np.float64)
    fy, fx = np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1])
    outside = ~nyquist_mask(shape, stride)
    p_in = np.asarray(_power(x), np.float64)
    nondc = np.ones(shape, bool)
    nondc[0, 0] = False
    flat, exact = [], []
    for k in _SIZES:
        h2 = (binomial_response(fy, k)[:, None]
              * binomial_response(fx, k)[None]) ** 2
        flat.append(float(h2[outside & nondc].sum() / h2[nondc].sum()))
        exact.append(float((p_in * h2)[outside].sum() / (p_in * h2).sum()))
    flat, exact = np.array(flat), np.array(exact)
    tol_flat = 0.02
    tol = _tol(dtype, f32=1e-5, f64=1e-10)
    dev_flat = float(np.max(np.abs(measured - flat)))
    dev_exact = float(np.max(np.abs(measured - exact)))
    decreasing = bool(np.all(np.diff(measured) < 0))
    return Check(
        name="blurpool_aliasing",
        predicted=(f"white: ratio {flat[0]:.3f} -> {flat[-1]:.4f} for k=1..7 "
                   f"(+-{tol_flat})"),
        measured=(f"{measured[0]:.3f} -> {measured[-1]:.4f}; max |diff| "
                  f"{_fmt(dev_flat)}"),
        passed=dev_flat <= tol_flat and dev_exact <= tol and decreasing,
        detail={"stride": stride, "shape": list(shape), "batch": _BLUR_BATCH,
                "sizes": list(_SIZES), "measured": measured.tolist(),
                "predicted_flat": flat.tolist(),
                "predicted_from_input_spectrum": exact.tolist(),
                "max_diff_flat": dev_flat, "max_diff_exact": dev_exact,
                "tol_flat": tol_flat, "tol_exact": tol,
                "dtype": np.dtype(dtype).name})


# --------------------------------------------------------------------------
# Check: Zhang's 1-D max-pool example
# --------------------------------------------------------------------------

_pool_1x2 = jax.jit(functools.partial(ops.max_pool, window=(1, 2),
                                      stride=(1, 2)))


def check_maxpool_zhang(*, dtype=None) -> Check:
    """Max pooling [0,0,1,1,0,0,1,1] (window 2, stride 2) and its 1-pixel shift.

    Zhang (2019): the output changes from [0, 1, 0, 1] to [1, 1, 1, 1] for a
    one-pixel shift (both are polyphase components of the undecimated max pool).

    Args:
      dtype: float dtype.

    Returns:
      :class:`Check` with both pooled outputs.

    References:
      Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019,
      Fig. 2.
    """
    dtype = dtype or _dtype()
    x = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.float64).reshape(1, 1, 8, 1)
    xs = jnp.asarray(np.concatenate([x, np.roll(x, 1, axis=2)]), dtype)
    out = np.asarray(_pool_1x2(xs))[:, 0, :, 0]
    want = np.array([[0, 1, 0, 1], [1, 1, 1, 1]], np.float64)

    def fmt(a):
        return "[" + ",".join(f"{v:g}" for v in a) + "]"

    return Check(
        name="maxpool_zhang_example",
        predicted=f"{fmt(want[0])} -> {fmt(want[1])} after a 1-px shift",
        measured=f"{fmt(out[0])} -> {fmt(out[1])}",
        passed=bool(np.array_equal(out, want)),
        detail={"input": x.ravel().tolist(), "pooled": out[0].tolist(),
                "pooled_shifted": out[1].tolist(),
                "expected": want[0].tolist(),
                "expected_shifted": want[1].tolist()})


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
    _check_key(key)
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
