"""The à trous interpreter: re-evaluates a jaxpr on lattice-carrying values.

Modelled on JAX's batching interpreter: the interpreter walks the equations, looks
up one rule per primitive (a pure function of the values and the equation's
parameters, see :mod:`sigcnn.atrous.registry`) and owns every policy decision:
what to do where a rule finds no exact undecimated form (refuse, or continue
phase by phase: :mod:`sigcnn.atrous.policy`), constant folding, sub-jaxprs
(jit, custom derivatives, remat), control flow (scan, cond, while) and the record
of decimation points.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore
from jax.extend.core import primitives as P

from sigcnn.atrous import values as V
from sigcnn.atrous.policy import BRUTE_HINT, Consume, NoForm, NoRule, Refusal, RuleError
from sigcnn.atrous.registry import lookup
from sigcnn.atrous.sources import _source_info, source_line
from sigcnn.atrous.tiling import Tiling

__all__ = ["Interpreter", "RuleContext"]

_Tracer = getattr(jax.core, "Tracer", None)
if _Tracer is None:  # pragma: no cover
    from jax._src.core import Tracer as _Tracer

# Constants up to this many elements are folded at trace time (so that rules can
# read index maps, resampling matrices and pooling counts).
_FOLD_LIMIT = 1 << 20

# Primitives whose output axis b is the operands' axis b, at another length.
_KEEP_AXES = frozenset({"concatenate", "pad", "slice", "dynamic_slice"})


@dataclasses.dataclass(frozen=True)
class RuleContext:
    """What a rule may know beyond its operands and the equation's parameters.

    Attributes:
        primitive: the primitive being evaluated.
        out_shapes: the strided output shapes (as f computes them).
        out_dtypes: their dtypes.
        sizes: (H, W) of the network's input.
        where: the user's source line (for messages).
    """

    primitive: Any
    out_shapes: tuple
    out_dtypes: tuple
    sizes: tuple
    where: str
    tiling: Tiling = Tiling()

    def bind(self, args, **params):
        out = self.primitive.bind(*args, **params)
        return list(out) if self.primitive.multiple_results else [out]


def concrete(arr) -> bool:
    return not isinstance(arr, _Tracer)


def bind_eqn(eqn, args):
    """Binds an equation's primitive as `jax.core.eval_jaxpr` does."""
    params = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(params, tuple):  # older JAX: (subfuns, params)
        subfuns, params = params
        args = [*subfuns, *args]
    out = eqn.primitive.bind(*args, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


_CALLS = {P.jit_p, P.closed_call_p, P.remat_p, P.custom_jvp_call_p,
          P.custom_vjp_call_p, P.call_p}
_CALL_NAMES = {"pjit", "jit", "closed_call", "core_call", "remat2", "checkpoint",
               "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
               "custom_lin"}
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _sub_jaxpr(eqn):
    for name in _CALL_PARAMS:
        sub = eqn.params.get(name)
        if isinstance(sub, jcore.ClosedJaxpr):
            return sub.jaxpr, sub.consts
        if isinstance(sub, jcore.Jaxpr):
            return sub, ()
    return None


def _uni_const(eqn, ins, outs):
    """Axes along which a constant output is known to be uniform (cheap cases)."""
    from sigcnn.atrous import registry
    return registry.const_uniform(eqn, ins, outs)


class Interpreter:
    """Evaluates a jaxpr on :mod:`values <sigcnn.atrous.values>` under a policy.

    Attributes:
        policy: an :mod:`policy <sigcnn.atrous.policy>` object.
        sizes: (H, W) of the input.
        strides: [sy, sx]: the largest stride seen on each input axis.
        records: decimation points (when the policy records them).
    """

    def __init__(self, policy, sizes, tiling: Tiling | None = None):
        self.policy = policy
        self.sizes = tuple(sizes)
        self.tiling = tiling if tiling is not None else Tiling()
        self.strides = [1, 1]
        self.records = []
        self._callers = []

    # ------------------------------------------------------------------ walking
    def run(self, jaxpr, consts, args):
        env = {}
        for var, c in zip(jaxpr.constvars, consts):
            env[var] = c if isinstance(c, (V.Const, V.Spatial, V.Phased)) \
                else V.Const(c)
        for var, a in zip(jaxpr.invars, args):
            env[var] = a
        for eqn in jaxpr.eqns:
            ins = [self._read(env, v) for v in eqn.invars]
            outs = self.eval_eqn(eqn, ins)
            for var, o in zip(eqn.outvars, outs):
                if not isinstance(var, jcore.DropVar):
                    env[var] = o
        return [self._read(env, v) for v in jaxpr.outvars]

    @staticmethod
    def _read(env, var):
        if isinstance(var, jcore.Literal):
            return V.Const(var.val)
        return env[var]

    def where(self, eqn) -> str:
        line = source_line(eqn)
        if not line:
            line = next((c for c in reversed(self._callers) if c), "")
        if not line and _source_info is not None:
            try:
                line = _source_info.summarize(eqn.source_info)
            except Exception:  # pragma: no cover
                line = ""
        return line or "<unknown location>"

    # ------------------------------------------------------------- one equation
    def eval_eqn(self, eqn, ins):
        prim = eqn.primitive
        if not any(isinstance(v, (V.Spatial, V.Phased)) for v in ins):
            return self._eval_const(eqn, ins)
        if prim in _CALLS or prim.name in _CALL_NAMES:
            sub = _sub_jaxpr(eqn)
            if sub is not None:
                self._callers.append(self.where(eqn))
                try:
                    return self.run(sub[0], sub[1], ins)
                finally:
                    self._callers.pop()
        if prim is P.scan_p:
            return self._scan(eqn, ins)
        if prim is P.cond_p:
            return self._cond(eqn, ins)
        if prim is P.while_p:
            return self._while(eqn, ins)
        if not any(isinstance(v, V.Spatial) for v in ins):
            return self.eval_phased(eqn, ins)
        ctx = RuleContext(prim, tuple(tuple(v.aval.shape) for v in eqn.outvars),
                          tuple(v.aval.dtype for v in eqn.outvars), self.sizes,
                          self.where(eqn), self.tiling)
        rule = lookup(prim)
        try:
            if rule is None:
                raise NoRule()
            outs = rule(ctx, ins, **eqn.params)
            outs = [self._normal(o) for o in outs]
            if self.policy.periodic_only:
                for o in outs:
                    if isinstance(o, V.Spatial) and not o.periodic:
                        raise NoForm("its result is not exactly shift-equivariant "
                                     "(zero, reflect or edge padding, a crop that "
                                     "breaks the period, or maps that do not tile)")
        except Consume as exc:
            return self.eval_phased(eqn, [self.to_phased(v, circular=exc.circular)
                                          for v in ins])
        except NoRule as exc:
            return self._no_form(eqn, ins, None,
                                 "no undecimation rule for this primitive acting on "
                                 "a spatial (H or W) axis"
                                 + (f" ({exc.detail})" if exc.detail else ""))
        except NoForm as exc:
            return self._no_form(eqn, ins, exc.lattice, exc.reason)
        except Exception as exc:
            if type(exc).__module__.startswith("sigcnn"):
                raise  # refusals and errors about the input, already explained
            raise RuleError(
                f"the undecimation rule for `{prim.name}` at {ctx.where} failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                f"); this is a defect, please report it; all_shifts(f, x, "
                f"method=\"brute\") evaluates f without the rules.") from exc
        self._note(eqn, ins, outs, ctx)
        return outs

    def _normal(self, v):
        """Cuts supports to the cell invariant (non-periodic: physically)."""
        if not isinstance(v, V.Spatial):
            return v
        u, grids, changed, count = v.u, list(v.grids), False, v.count
        for a, g in enumerate(v.grids):
            if g is None:
                continue
            c = g.clipped(v.shape[a])
            if c.period is None:  # keep at most stride - 1 spare positions around
                lo = max(0, c.lo - c.stride + 1)
                hi = min(u.shape[a], c.hi + c.stride - 1)
                if lo != 0 or hi != u.shape[a]:
                    u = lax.slice_in_dim(u, lo, hi, axis=a)
                    if count is not None:
                        count = V.Lazy(lambda c=count, lo=lo, hi=hi, a=a: _cut(
                            c.value, lo, hi, a))
                    c = dataclasses.replace(c, phase=c.phase - lo, lo=c.lo - lo,
                                            hi=c.hi - lo)
            if c != g:
                grids[a], changed = c, True
        if not changed:
            return v
        return V.Spatial(u, grids, v.shape, v.partial, count)

    def _note(self, eqn, ins, outs, ctx):
        """Tracks the largest strides and records decimation points."""
        first = next(v for v in ins if isinstance(v, V.Spatial))
        d_in = {g.axis: g.stride for g in first.grids if g}
        for o in outs:
            if not isinstance(o, V.Spatial):
                continue
            d_out = {}
            for a, g in enumerate(o.grids):
                if g is not None:
                    self.strides[g.axis] = max(self.strides[g.axis], g.stride)
                    d_out[g.axis] = (a, g)
            if not self.policy.record or set(d_out) != {0, 1} or set(d_in) != {0, 1}:
                continue
            if all(d_out[k][1].stride == d_in[k] for k in (0, 1)):
                continue
            if any(d_out[k][1].stride % d_in[k] for k in (0, 1)):
                continue
            self.records.append(_decimation(eqn.primitive.name, ctx.where, o, d_in,
                                            d_out))
            break

    # --------------------------------------------------------- non-spatial paths
    def _eval_const(self, eqn, ins):
        arrs = [v.arr for v in ins]
        if all(concrete(a) for a in arrs) and all(
                int(np.prod(v.aval.shape)) <= _FOLD_LIMIT for v in eqn.outvars):
            with jax.ensure_compile_time_eval():
                outs = bind_eqn(eqn, arrs)
        else:
            outs = bind_eqn(eqn, arrs)
        uni = _uni_const(eqn, ins, outs) if len(outs) == 1 else frozenset()
        return [V.Const(o, uni) for o in outs]

    def to_phased(self, v, *, circular: bool = False):
        """A value as a :class:`~sigcnn.atrous.values.Phased` (or a Const).

        With `circular` (the consumer is an order-free reduction over every
        spatial axis, invariant to rolling the samples), the result is also
        known per shift class t mod stride: exactly for periodic values whose
        grid tiles the circle, and as the polyphase components of the à trous
        value for non-periodic ones whose support the grid tiles.
        """
        if not isinstance(v, V.Spatial):
            return v
        shifts = self.policy.shifts
        if not v.periodic:
            v = V.materialize(v)
        if v.periodic:
            explicit = V.Lazy(lambda: V.shifted(v, shifts))
            period = V.class_period(v)
            # Shift classes only for a consumer that is invariant to rolling the
            # samples (a reduction over every spatial axis): the value for t + D
            # is the value for t rolled by one sample, equal only after such a
            # reduction.
            if circular and period is not None and any(p > 1 for p in period):
                classes = V.Lazy(lambda: V.shifted(v, V.class_grid(period)))
                return V.Phased(v.shape, period, classes, explicit)
            return V.Phased(v.shape, None, None, explicit)
        if len(shifts) != 1 or np.any(shifts):
            raise AssertionError("a non-periodic value in an all-shifts evaluation")
        explicit = V.Lazy(lambda: V.sample(v)[None])
        period = V.class_period(v)
        tiled = all(v.u.shape[a] == g.stride * v.shape[a] and not g.uniform
                    for a, g in enumerate(v.grids) if g is not None)
        if circular and tiled and period is not None and any(p > 1 for p in period):
            classes = V.Lazy(lambda: V.shifted(v, V.class_grid(period),
                                               circular=True))
            return V.Phased(v.shape, period, classes, explicit, exact=False)
        return V.Phased(v.shape, None, None, explicit)

    def eval_phased(self, eqn, ins):
        """Evaluates an equation on phased and constant operands, entry by entry."""
        phased = [v for v in ins if isinstance(v, V.Phased)]
        periods = {v.period for v in phased}
        out_shapes = [tuple(o.aval.shape) for o in eqn.outvars]

        def batched(get):
            def compute():
                arrs = [get(v) if isinstance(v, V.Phased) else v.arr for v in ins]
                axes = [0 if isinstance(v, V.Phased) else None for v in ins]
                return jax.vmap(lambda *a: bind_eqn(eqn, list(a)),
                                in_axes=axes)(*arrs)
            return V.Lazy(compute)

        # Explicit entries are computed now (XLA drops them if unused): a chain of
        # lazy values as long as a network would recurse too deeply.
        explicit = V.Lazy.of(batched(lambda v: v.explicit.value).value)
        exact = all(v.exact for v in phased)
        classes = None
        period = None
        if len(periods) == 1 and None not in periods:
            period = periods.pop()
            classes = batched(lambda v: v.classes.value)
        outs = []
        for i, shape in enumerate(out_shapes):
            outs.append(V.Phased(
                shape, period,
                None if classes is None else V.Lazy(
                    lambda i=i, c=classes: c.value[i]),
                V.Lazy(lambda i=i, e=explicit: e.value[i]), exact))
        return outs

    # -------------------------------------------------------------- no exact form
    def _no_form(self, eqn, ins, lattice, reason):
        pol = self.policy
        if pol.refuses:
            raise Refusal(
                f"cannot undecimate f: primitive `{eqn.primitive.name}` at "
                f"{self.where(eqn)}: {reason}, so it has no undecimated form; "
                f"{BRUTE_HINT}.")
        if pol.follows_lattice:
            if lattice is not None:
                return lattice
            return self._fake(eqn, ins)
        return self.eval_phased(eqn, [self.to_phased(v) for v in ins])

    def _fake(self, eqn, ins):
        """Probe: outputs that keep the lattices of the spatial operands of equal
        rank (values are never read).

        Along each axis the longest operand with a lattice there gives it, when the
        output keeps its length or, for a pad, slice or concatenation (of pieces of
        a map whose period does not tile: its samples still lie `stride` apart),
        changes it by less than that length.
        """
        resizes = eqn.primitive.name in _KEEP_AXES
        spatial = [v for v in ins if isinstance(v, V.Spatial)]
        outs = []
        for var in eqn.outvars:
            shape = tuple(var.aval.shape)
            same = [v for v in spatial if len(v.shape) == len(shape)]
            grids, phys = [None] * len(shape), list(shape)
            for b, n in enumerate(shape):
                have = [v for v in same if v.grids[b] is not None]
                if not have:
                    continue
                like = max(have, key=lambda v: v.shape[b])
                g, m = like.grids[b], like.shape[b]
                if m == n:
                    grids[b], phys[b] = g, like.u.shape[b]
                elif resizes and abs(m - n) < m:
                    grids[b] = V.Grid(g.axis, g.stride, 0, g.sign, 0,
                                      g.stride * (n - 1) + 1)
                    phys[b] = grids[b].hi
            if not any(grids):
                outs.append(V.Phased(shape, None, None, V.Lazy(
                    lambda s=shape, d=var.aval.dtype: jnp.zeros((1,) + s, d))))
                continue
            partial = frozenset().union(*[v.partial for v in same])
            outs.append(V.Spatial(jnp.zeros(phys, var.aval.dtype), grids, shape,
                                  partial))
        return outs

    # ------------------------------------------------------------- control flow
    def _scan(self, eqn, ins):
        p = eqn.params
        body = p["jaxpr"]
        nc, ncar, length = p["num_consts"], p["num_carry"], p["length"]
        if length > 512:
            return self._no_form(eqn, ins, None, f"a scan of {length} steps over a "
                                 "spatial value (at most 512 are unrolled)")
        consts, carry, xs = ins[:nc], list(ins[nc:nc + ncar]), ins[nc + ncar:]
        ys = []
        order = range(length - 1, -1, -1) if p["reverse"] else range(length)
        self._callers.append(self.where(eqn))
        try:
            for i in order:
                try:
                    xi = [_index(x, i) for x in xs]
                except NoRule as exc:
                    return self._no_form(eqn, ins, None, exc.detail)
                out = self.run(body.jaxpr, body.consts, [*consts, *carry, *xi])
                carry, y = out[:ncar], out[ncar:]
                ys.append(y)
        finally:
            self._callers.pop()
        if p["reverse"]:
            ys = ys[::-1]
        stacked = []
        for j, var in enumerate(eqn.outvars[ncar:]):
            try:
                stacked.append(_stack([y[j] for y in ys], tuple(var.aval.shape)))
            except NoForm as exc:
                return self._no_form(eqn, ins, None, exc.reason)
        return [*carry, *stacked]

    def _cond(self, eqn, ins):
        index, ops = ins[0], ins[1:]
        branches = eqn.params["branches"]
        if isinstance(index, V.Const):
            if concrete(index.arr):
                b = int(np.clip(int(np.asarray(index.arr)), 0, len(branches) - 1))
                return self.run(branches[b].jaxpr, branches[b].consts, ops)
            results = [self.run(br.jaxpr, br.consts, ops) for br in branches]
            try:
                return [_select(index.arr, [r[j] for r in results])
                        for j in range(len(eqn.outvars))]
            except NoForm as exc:
                return self._no_form(eqn, ins, None, exc.reason)
        return self._no_form(eqn, ins, None, "a branch chosen from the input's "
                             "values (data-dependent control flow)")

    def _while(self, eqn, ins):
        p = eqn.params
        cn, bn = p["cond_nconsts"], p["body_nconsts"]
        cconsts, bconsts, carry = ins[:cn], ins[cn:cn + bn], list(ins[cn + bn:])
        cj, bj = p["cond_jaxpr"], p["body_jaxpr"]
        for _ in range(4096):
            (pred,) = self.run(cj.jaxpr, cj.consts, [*cconsts, *carry])
            if not (isinstance(pred, V.Const) and concrete(pred.arr)):
                return self._no_form(eqn, ins, None, "a while loop whose trip count "
                                     "depends on the input or on traced values")
            if not bool(np.asarray(pred.arr)):
                return carry
            carry = self.run(bj.jaxpr, bj.consts, [*bconsts, *carry])
        return self._no_form(eqn, ins, None, "a while loop of more than 4096 steps")


def _cut(arr, lo, hi, a):
    with jax.ensure_compile_time_eval():
        return lax.slice_in_dim(arr, lo, hi, axis=a)


def _index(v, i):
    """Entry i of a scanned-over operand (its leading axis)."""
    if isinstance(v, V.Const):
        return V.Const(v.arr[i], frozenset(a - 1 for a in v.uni if a > 0))
    if isinstance(v, V.Phased):
        return V.Phased(v.shape[1:], v.period,
                        None if v.classes is None else
                        V.Lazy(lambda: v.classes.value[:, i]),
                        V.Lazy(lambda: v.explicit.value[:, i]))
    if v.grids[0] is not None:
        raise NoRule("a scan over a spatial axis")
    return V.Spatial(v.u[i], v.grids[1:], v.shape[1:], v.partial)


def _stack(vals, shape):
    """Stacks per-step outputs of a scan along a new leading axis."""
    if all(isinstance(v, V.Const) for v in vals):
        return V.Const(jnp.stack([jnp.asarray(v.arr) for v in vals]))
    if all(isinstance(v, V.Spatial) for v in vals):
        if len({(v.grids, v.u.shape) for v in vals}) != 1:
            raise NoForm("scan steps whose outputs have different lattices")
        v0 = vals[0]
        return V.Spatial(jnp.stack([v.u for v in vals]), (None,) + v0.grids, shape,
                         v0.partial)
    if all(isinstance(v, V.Phased) for v in vals):
        periods = {v.period for v in vals}
        period = periods.pop() if len(periods) == 1 else None
        return V.Phased(
            shape, period,
            None if period is None else V.Lazy(
                lambda: jnp.stack([v.classes.value for v in vals], axis=1)),
            V.Lazy(lambda: jnp.stack([v.explicit.value for v in vals], axis=1)))
    raise NoForm("scan steps whose outputs are of different kinds")


def _select(index, vals):
    """lax.switch over branch results that share one lattice."""
    if all(isinstance(v, V.Const) for v in vals):
        return V.Const(lax.select_n(index, *[jnp.asarray(v.arr) for v in vals])
                       if len(vals) > 1 else vals[0].arr)
    if all(isinstance(v, V.Spatial) for v in vals):
        if len({(v.grids, v.u.shape) for v in vals}) != 1:
            raise NoForm("cond branches whose outputs have different lattices")
        return V.Spatial(lax.select_n(index, *[v.u for v in vals]), vals[0].grids,
                         vals[0].shape, vals[0].partial)
    raise NoForm("cond branches whose outputs are of different kinds")


def _decimation(name, where, out: V.Spatial, d_in, d_out):
    """A decimation record: the op's stride-1 output on its input's grid."""
    sig = out
    for k in (0, 1):
        a, g = d_out[k]
        step = d_in[k]
        length = g.period or g.hi
        count = -(-(length - (0 if g.period else g.phase)) // step)
        pos = g.phase + step * np.arange(count)
        if g.period:
            pos = pos % g.period
        sig = V.Spatial(V.take_positions(sig.u, a, pos), sig.grids, sig.shape)
    u = sig.u
    ah, aw = d_out[0][0], d_out[1][0]
    rest = [a for a in range(u.ndim) if a not in (ah, aw)]
    u = jnp.transpose(u, [ah, aw] + rest)
    u = jnp.reshape(u, u.shape[:2] + (-1,))[None]
    meta = {
        "primitive": name,
        "where": where,
        "input_stride": (d_in[0], d_in[1]),
        "stride": (d_out[0][1].stride // d_in[0], d_out[1][1].stride // d_in[1]),
        "output_stride": (d_out[0][1].stride, d_out[1][1].stride),
    }
    return meta, u
