"""A small random CNN, strided and undecimated (à trous), built from the
ops, and the checks of the à trous identities.

References: see `sigcnn.verify`.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn import ops
from sigcnn._checks import check_choice, check_positive_int
from sigcnn.verify._common import (
    Check,
    _all_rolls,
    _dtype,
    _fmt,
    _max_abs,
    _rng,
    _scale,
    _tol,
)

__all__ = ["DEFAULT_STACK", "apply_stack", "check_shift_equivariance",
           "check_shift_polyphase", "check_strided_vs_undecimated", "init_stack",
           "polyphase_prediction", "stack_stride", "undecimated_dilations"]

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
