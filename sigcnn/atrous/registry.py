"""The rule table: one undecimation rule per primitive object.

A rule is a pure function ``rule(ctx, ins, **params) -> list of values``: `ctx` is
a :class:`~sigcnn.atrous.interpreter.RuleContext` (output shapes, input size,
source line, ``ctx.bind``), `ins` the operand values (:class:`~values.Const`,
:class:`~values.Spatial` or :class:`~values.Phased`; at least one Spatial) and
`params` the equation's parameters. It returns one value per output, or raises
:class:`~sigcnn.atrous.policy.NoForm` (no exact undecimated form: the policy then
refuses or continues phase by phase) or :class:`~sigcnn.atrous.policy.NoRule`.
Rules never look at the evaluation mode.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from jax.extend.core import primitives as P

__all__ = ["RULES", "const_uniform", "lookup", "register_rule", "rule"]

RULES: dict = {}
_BY_NAME: dict = {}


def prims(names: str):
    """Primitive objects for whitespace-separated names (missing ones skipped).

    Names that this JAX version does not expose in `jax.extend` are kept as strings
    and matched by name.
    """
    out = []
    for name in names.split():
        obj = getattr(P, name + "_p", None)
        out.append(obj if obj is not None else name)
    return out


def rule(*names: str) -> Callable:
    """Decorator registering a rule for primitives given by name."""
    def register(fn):
        for obj in prims(" ".join(names)):
            if isinstance(obj, str):
                _BY_NAME[obj] = fn
            else:
                RULES[obj] = fn
        return fn
    return register


def lookup(primitive):
    fn = RULES.get(primitive)
    if fn is None:
        fn = _BY_NAME.get(primitive.name)
    return fn


def register_rule(primitive, rule_fn: Callable) -> None:
    """Adds (or replaces) the undecimation rule of a primitive.

    The rule is called as ``rule_fn(ctx, ins, **params)`` whenever an operand of
    `primitive` is undecimated; see :mod:`sigcnn.atrous.registry` for the protocol
    and :func:`sigcnn.atrous.rules_elementwise.elementwise` for a ready-made rule
    for pointwise primitives (``register_rule(my_p, sigcnn.atrous.elementwise)``).

    Args:
        primitive: a `jax.extend.core.Primitive` (e.g. from a custom op).
        rule_fn: callable ``(ctx, ins, **params) -> list`` of values.

    Returns:
        None. The rule applies to every later `undecimate` / `all_shifts` call
        (programs compiled before are kept: call `sigcnn.clear_cache()`).

    Raises:
        TypeError: if `primitive` is not a JAX primitive or `rule_fn` not callable.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jax.extend.core import Primitive
        >>> from jax.interpreters import mlir
        >>> import sigcnn
        >>> twice_p = Primitive("twice")
        >>> _ = twice_p.def_impl(lambda x: 2 * x)
        >>> _ = twice_p.def_abstract_eval(lambda x: x)
        >>> mlir.register_lowering(twice_p, mlir.lower_fun(lambda x: 2 * x,
        ...                                               multiple_results=False))
        >>> sigcnn.register_rule(twice_p, sigcnn.atrous.elementwise)
        >>> f = lambda x: twice_p.bind(x)[:, ::2, ::2]
        >>> r2, stride = sigcnn.undecimate(f)(jnp.ones((1, 4, 4, 1)))
        >>> r2.shape, stride
        ((1, 4, 4, 1), (2, 2))
    """
    if not hasattr(primitive, "bind") or not hasattr(primitive, "name"):
        raise TypeError(f"`primitive` must be a JAX primitive (jax.extend.core."
                        f"Primitive); got {primitive!r}.")
    if not callable(rule_fn):
        raise TypeError(f"`rule_fn` must be callable (ctx, ins, **params) -> list; "
                        f"got {rule_fn!r}.")
    RULES[primitive] = rule_fn


# --------------------------------------------------------------------------------------
# Uniform axes of constants (what broadcasts produce), for lifting them onto grids.
# --------------------------------------------------------------------------------------

ELEMENTWISE = """
abs acos acosh add and asin asinh atan atan2 atanh bessel_i0e bessel_i1e cbrt ceil
clamp clz complex conj convert_element_type copy cos cosh digamma div eq erf erf_inv
erfc exp exp2 expm1 floor ge gt igamma igammac imag integer_pow is_finite le lgamma
log log1p logistic lt max min mul mulhi ne neg nextafter not or polygamma
population_count pow real reduce_precision regularized_incomplete_beta rem round
rsqrt select_n shift_left shift_right_arithmetic shift_right_logical sign sin sinh
sqrt square sub tan tanh xor zeta stop_gradient
"""

_ELEM_NAMES = frozenset(ELEMENTWISE.split()) | {"sharding_constraint",
                                                 "optimization_barrier", "name"}
_REDUCE_NAMES = frozenset("reduce_sum reduce_max reduce_min reduce_prod reduce_and "
                          "reduce_or reduce_xor argmax argmin".split())


def _axis_map(in_shape, out_shape):
    """Maps input axes of a reshape to output axes that keep them as they are."""
    pin = np.concatenate([[1], np.cumprod(in_shape, dtype=np.int64)])
    pout = np.concatenate([[1], np.cumprod(out_shape, dtype=np.int64)])
    mapping, used = {}, set()
    for a, n in enumerate(in_shape):
        for b, m in enumerate(out_shape):
            if b in used or m != n or pin[a] != pout[b]:
                continue
            if n == 1 and any(bb > b for bb in used):
                continue
            mapping[a] = b
            used.add(b)
            break
    return mapping


def const_uniform(eqn, ins, outs):
    """Axes along which the (single) constant output is known to be uniform."""
    name = eqn.primitive.name
    p = eqn.params
    rank = np.ndim(outs[0]) if outs else 0
    every = frozenset(range(rank))
    if name in _ELEM_NAMES:
        uni = every
        for v in ins:
            shp = np.shape(v.arr)
            if len(shp) == 0:
                continue
            ones = {a for a, n in enumerate(shp) if n == 1}
            uni = uni & (v.uni | ones)
        return uni
    if name == "broadcast_in_dim":
        dims = p["broadcast_dimensions"]
        shp = np.shape(ins[0].arr)
        uni = set(range(rank)) - set(dims)
        for i, b in enumerate(dims):
            if shp[i] == 1 or i in ins[0].uni:
                uni.add(b)
        return frozenset(uni)
    if name == "iota":
        return every - {p["dimension"]}
    if name == "transpose":
        return frozenset(i for i, q in enumerate(p["permutation"]) if q in ins[0].uni)
    if name in ("reshape", "squeeze"):
        mapping = _axis_map(np.shape(ins[0].arr), np.shape(outs[0]))
        return frozenset(b for a, b in mapping.items() if a in ins[0].uni)
    if name in _REDUCE_NAMES:
        axes = set(p["axes"])
        keep = [a for a in range(np.ndim(ins[0].arr)) if a not in axes]
        return frozenset(i for i, a in enumerate(keep) if a in ins[0].uni)
    if name in ("slice", "rev", "dynamic_slice"):
        return ins[0].uni & every
    if name == "pad":
        cfg = p["padding_config"]
        return frozenset(a for a in ins[0].uni if tuple(cfg[a]) == (0, 0, 0))
    if name == "concatenate":
        uni = every
        for v in ins:
            uni = uni & v.uni
        return uni - {p["dimension"]}
    return frozenset()
