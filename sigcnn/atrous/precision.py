"""The arithmetic precision of f's convolutions and matrix products.

`undecimate(f, precision=...)` and `all_shifts(f, x, precision=...)` evaluate f
with one `jax.lax.Precision` for every ``conv_general_dilated`` and ``dot_general``
of its traced program (nested ``jit``, ``scan``, ``cond``, ``custom_vjp`` bodies
included), overriding the precision f's own code asked for. That makes the
à trous pass, the brute-force pass and the check of one call compute alike:

* ``"highest"`` (``"float32"``): full float32 products on every backend. The
  atrous and brute results agree to float32 rounding (about 1e-6 relative for a
  well-conditioned network); sigcnn's exactness tests run at this precision.
* ``"high"`` (``"tensorfloat32"``): TF32 products on GPUs (10-bit mantissas,
  about 5e-4 relative per product) and 3-pass bfloat16 on TPUs; atrous and brute
  differ by up to about 1e-2 relative through a deep network.
* ``"default"`` (``"bfloat16"``): the backend's fastest mode (TF32 on recent
  GPUs, one bfloat16 pass on TPUs); differences up to a few 1e-2.
* None: f's own precisions, as JAX runs f (the backend's default for
  operations that set none).

XLA's CPU backend computes float32 products in float32 at every precision, so
on the CPU all four give the same numbers.

`all_shifts(..., check=k)` accepts the rounding of the chosen precision
(`PRECISION_TOLERANCE`): below float32 a disagreement of 1e-3 is that
precision's rounding, not an error.

References:
    Micikevicius et al., "Mixed precision training", ICLR 2018 (reduced-precision
    products and float32 accumulation).
"""

from __future__ import annotations

import jax
from jax import lax
from jax.extend import core as jcore

__all__ = ["PRECISIONS", "PRECISION_TOLERANCE", "check_precision", "check_tolerance",
           "with_precision"]

#: The accepted names (JAX's) and the `lax.Precision` each means.
PRECISIONS = {"highest": lax.Precision.HIGHEST, "float32": lax.Precision.HIGHEST,
              "high": lax.Precision.HIGH, "tensorfloat32": lax.Precision.HIGH,
              "default": lax.Precision.DEFAULT, "bfloat16": lax.Precision.DEFAULT}

#: Relative difference between the atrous and brute results that
#: `all_shifts(..., check=k)` accepts at each precision below float32 (off the CPU;
#: the float dtype's own `CHECK_TOLERANCE` applies when it is larger).
PRECISION_TOLERANCE = {lax.Precision.HIGH: 2e-2, lax.Precision.DEFAULT: 5e-2}

_PRODUCTS = ("conv_general_dilated", "dot_general")


def check_precision(precision):
    """Validated precision: None or a `lax.Precision`.

    Args:
        precision: None, a `jax.lax.Precision`, or one of the names of
            `PRECISIONS` (case-insensitive).

    Returns:
        None or a `jax.lax.Precision`.

    Raises:
        ValueError: for any other value, naming `precision`.

    Examples:
        >>> from jax import lax
        >>> check_precision("highest") is lax.Precision.HIGHEST
        True
        >>> check_precision(None) is None
        True
    """
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str) and precision.lower() in PRECISIONS:
        return PRECISIONS[precision.lower()]
    raise ValueError(
        f"`precision` must be None, a jax.lax.Precision or one of "
        f"{', '.join(repr(k) for k in PRECISIONS)}; got {precision!r}.")


def check_tolerance(precision, dtype_tolerance: float) -> float:
    """Relative tolerance of `all_shifts(check=)` at `precision` on this backend.

    Args:
        precision: the validated precision (None: the backend's default, which
            off the CPU may round products below float32).
        dtype_tolerance: the tolerance of the result's float dtype.

    Returns:
        float, the larger of `dtype_tolerance` and the precision's rounding.
    """
    if jax.default_backend() == "cpu" or precision == lax.Precision.HIGHEST:
        return dtype_tolerance
    own = PRECISION_TOLERANCE.get(precision, PRECISION_TOLERANCE[lax.Precision.DEFAULT])
    return max(dtype_tolerance, own)


def with_precision(closed, precision):
    """`closed` with every convolution and matrix product at `precision`.

    Args:
        closed: a ``ClosedJaxpr``.
        precision: None (returns `closed` unchanged) or a `jax.lax.Precision`.

    Returns:
        a ``ClosedJaxpr`` computing the same function, whose
        ``conv_general_dilated`` and ``dot_general`` equations (also inside
        nested jaxprs) carry ``precision=(precision, precision)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jax import lax
        >>> closed = jax.make_jaxpr(lambda a: a @ a)(jnp.ones((2, 2)))
        >>> out = with_precision(closed, lax.Precision.HIGHEST)
        >>> [p.name for p in out.jaxpr.eqns[0].params["precision"]]
        ['HIGHEST', 'HIGHEST']
    """
    if precision is None:
        return closed
    return _closed(closed, (precision, precision))


def _closed(closed, pair):
    jaxpr = _jaxpr(closed.jaxpr, pair)
    return closed if jaxpr is closed.jaxpr else jcore.ClosedJaxpr(jaxpr, closed.consts)


def _sub(value, pair):
    if isinstance(value, jcore.ClosedJaxpr):
        return _closed(value, pair)
    if isinstance(value, jcore.Jaxpr):
        return _jaxpr(value, pair)
    if isinstance(value, (tuple, list)) and any(
            isinstance(v, (jcore.ClosedJaxpr, jcore.Jaxpr)) for v in value):
        new = [_sub(v, pair) for v in value]
        if all(a is b for a, b in zip(new, value)):
            return value
        return type(value)(new)
    return value


def _jaxpr(jaxpr, pair):
    eqns, changed = [], False
    for eqn in jaxpr.eqns:
        params = {k: _sub(v, pair) for k, v in eqn.params.items()}
        if eqn.primitive.name in _PRODUCTS and _pair(params.get("precision")) != pair:
            params["precision"] = pair
        if any(params[k] is not eqn.params[k] for k in params):
            eqn = eqn.replace(params=params)
            changed = True
        eqns.append(eqn)
    return jaxpr.replace(eqns=eqns) if changed else jaxpr


def _pair(p):
    return (p, p) if isinstance(p, lax.Precision) else p
