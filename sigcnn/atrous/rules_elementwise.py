"""Rules for pointwise primitives: operands aligned on one lattice.

Elementwise operations commute with subsampling, so their undecimated form is the
same operation on the undecimated operands, once those share one lattice. Three
things can stand in the way, each handled exactly or refused:

* operands on different grids: periodic ones are rolled into phase; windows of
  non-periodic ones are cut to their common support; different strides or
  orientations (a flipped map added to an unflipped one) have no single form;
* constants that vary along a spatial axis: the per-position count of an average
  pool that excludes padding is recomputed at full resolution (and checked against
  the constant); anything else depends on the position on the strided grid;
* phased operands (a squeeze-and-excitation gate, instance-norm statistics):
  exact when known for every shift class t mod D with D dividing the map's
  stride; each full-resolution position then takes the class it belongs to.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn.atrous import values as V
from sigcnn.atrous.interpreter import concrete
from sigcnn.atrous.policy import NoForm, NoRule
from sigcnn.atrous.registry import ELEMENTWISE, rule

__all__ = ["align", "aligned_operands", "elementwise", "lift_const"]


def _align_axis(vals, a, n):
    """Brings axis a of the spatial operands onto one grid; returns (us, grid)."""
    gs = [v.grids[a] for v in vals]
    if len({g.key() for g in gs}) > 1:
        raise NoForm("it combines maps whose samples lie on different grids "
                     "(different cumulative strides, or a flipped or transposed map "
                     "combined with an unflipped one)")
    g0 = gs[0]
    us = [v.u for v in vals]
    if all(g.period for g in gs) and len({g.period for g in gs}) == 1:
        head = min(g.head() for g in gs)
        tail = min(g.tail(n) for g in gs)
        out = []
        for u, g in zip(us, gs):
            delta = (g.phase - g0.phase) % g.period
            out.append(jnp.roll(u, -delta, axis=a) if delta else u)
        grid = dataclasses.replace(g0, lo=g0.phase - head, hi=g0.last(n) + tail,
                                   circle=all(g.circle or g.covers() for g in gs))
        return out, grid
    wins = [V.window(v, a) for v in vals]
    uniform = [g.uniform for _, g in wins]
    heads = [g.head() for (_, g), uf in zip(wins, uniform) if not uf]
    tails = [g.tail(n) for (_, g), uf in zip(wins, uniform) if not uf]
    head = min(heads) if heads else wins[0][1].head()
    tail = min(tails) if tails else wins[0][1].tail(n)
    length = head + g0.stride * (n - 1) + tail
    out = []
    for (u, g), uf in zip(wins, uniform):
        if uf:
            piece = lax.slice_in_dim(u, 0, 1, axis=a)
            shape = list(piece.shape)
            shape[a] = length
            out.append(jnp.broadcast_to(piece, shape))
        else:
            out.append(lax.slice_in_dim(u, g.phase - head, g.phase - head + length,
                                        axis=a))
    grid = V.Grid(g0.axis, g0.stride, head, g0.sign, 0, length, None,
                  all(uniform))
    return out, grid


def align(vals, shape):
    """Spatial operands on one lattice: (arrays, grids, partial)."""
    rank = len(shape)
    us = [v.u for v in vals]
    grids = [None] * rank
    partial = frozenset().union(*[v.partial for v in vals])
    for a in range(rank):
        have = [i for i, v in enumerate(vals) if v.grids[a] is not None]
        if not have:
            continue
        for i, v in enumerate(vals):
            if v.grids[a] is None:
                if v.shape[a] != 1:
                    raise NoForm("it combines a map with a value that has a spatial "
                                 "axis's length but no lattice along it")
            elif v.shape[a] != shape[a]:
                raise NoForm("it broadcasts a single row or column of a map along "
                             "a spatial axis")
        sub = [V.Spatial(us[i], vals[i].grids, vals[i].shape) for i in have]
        new, grids[a] = _align_axis(sub, a, shape[a])
        for i, u in zip(have, new):
            us[i] = u
        if grids[a].axis in partial:
            raise NoForm("it combines a map with a value whose other spatial axis was "
                          "reduced and is known unshifted only")
    return us, grids, partial


def aligned_operands(ins, shape):
    """Operands of a same-shape primitive on one lattice: (arrays, grids, partial).

    Spatial operands are aligned (:func:`align`); constants are lifted onto their
    physical grid, keeping their own sizes along the other axes.
    """
    spatial = [v for v in ins if isinstance(v, V.Spatial)]
    us, grids, partial = align(spatial, shape)
    phys = [us[0].shape[a] if g is not None else None for a, g in enumerate(grids)]
    it = iter(us)
    args = []
    for v in ins:
        if isinstance(v, V.Spatial):
            args.append(next(it))
            continue
        arr = lift_const(v, grids, phys, keep_ones=False)
        target = [phys[a] if g is not None else np.shape(v.arr)[a]
                  for a, g in enumerate(grids)]
        args.append(jnp.broadcast_to(arr, target))
    return args, grids, partial


def _count_candidate(c, spatial, grids):
    """The undecimated pooling count (or its inverse) matching constant c."""
    if len(spatial) != 1 or spatial[0].count is None or not concrete(c.arr):
        return None
    import jax
    count = spatial[0].count.value
    if not concrete(count):
        return None
    arr = np.asarray(c.arr)
    with jax.ensure_compile_time_eval():
        sampled = V.sample(V.Spatial(count, spatial[0].grids, tuple(
            arr.shape[a] if g is None else spatial[0].shape[a]
            for a, g in enumerate(spatial[0].grids))))
    sampled = np.asarray(sampled)
    if sampled.shape != arr.shape:
        return None
    if np.array_equal(sampled, arr):
        return _aligned_like(count.astype(arr.dtype), spatial[0], grids)
    with np.errstate(divide="ignore"):
        inv = np.where(sampled != 0, 1.0 / sampled, 0)
    if np.allclose(inv, arr, rtol=1e-6, atol=0):
        count = jnp.where(count != 0, 1.0 / count, 0).astype(arr.dtype)
    else:
        return None
    return _aligned_like(count, spatial[0], grids)


def _aligned_like(arr, v, grids):
    """`arr`, laid out like v.u, cut to the window that `align` gave v."""
    out = arr
    for a, (g0, g) in enumerate(zip(v.grids, grids)):
        if g0 is None or g is None or g0.period:
            continue
        start = g0.phase - g.phase
        out = lax.slice_in_dim(out, start, start + g.hi, axis=a)
    return out


def lift_const(c: V.Const, grids, phys, *, spatial=(), keep_ones=True):
    """A constant on the physical grid of spatial operands.

    Along a spatial axis a constant of length 1 (or uniform) is broadcast; the
    pooling count of the (single) spatial operand is recomputed at full resolution;
    any other constant depends on the position on the strided grid.
    """
    arr = c.arr
    if np.ndim(arr) == 0:
        return arr
    arr = jnp.asarray(arr)
    varying = [a for a, g in enumerate(grids)
               if g is not None and arr.shape[a] != 1 and a not in c.uni]
    if varying:
        cand = _count_candidate(c, spatial, grids)
        if cand is None:
            raise NoForm("a constant that varies along a spatial axis (a positional "
                         "embedding, a border-dependent normalisation map) depends "
                         "on the position on the strided grid")
        return cand
    target = list(arr.shape)
    changed = False
    for a, g in enumerate(grids):
        if g is None:
            continue
        if arr.shape[a] != 1:
            arr = lax.slice_in_dim(arr, 0, 1, axis=a)
            changed = True
        if not keep_ones:
            target[a] = phys[a]
            changed = True
        else:
            target[a] = 1
    if changed:
        arr = jnp.broadcast_to(arr, tuple(target))
    return arr


def interleave(p: V.Phased, grids, phys):
    """A phased value at full resolution: each position takes its shift class.

    Position m of an axis with grid (phase, stride d, sign) holds samples for the
    shifts t with t = sign * (phase - m) mod d, so with a class period D dividing d
    its class is sign * (phase - m) mod D.
    """
    if p.classes is None:
        raise NoForm("it combines a feature map with a value computed from the map's "
                     "own spatial statistics (squeeze-and-excitation, instance or "
                     "layer normalisation over H and W, data-dependent sampling), "
                     "and that value is not known for every shift class here")
    per = p.period
    axes = [a for a, g in enumerate(grids) if g is not None]
    by_k = {}
    for a in axes:
        g = grids[a]
        if g.axis in by_k or g.stride % per[g.axis] or p.shape[a] != 1:
            raise NoForm("a value known per shift class meets a map whose stride its "
                         "class period does not divide")
        by_k[g.axis] = a
    for k in (0, 1):
        if per[k] > 1 and k not in by_k:
            raise NoForm("a value known per shift class meets a map without a "
                         "lattice along the same input axis")
    idx = np.zeros([phys[a] for a in axes], np.int64)
    for j, a in enumerate(axes):
        g = grids[a]
        m = np.arange(phys[a])
        tau = (g.sign * (g.phase - m)) % per[g.axis]
        weight = per[1] if g.axis == 0 else 1
        shape = [1] * len(axes)
        shape[j] = phys[a]
        idx = idx + (tau * weight).reshape(shape)
    cls = p.classes.value                                   # [B, *shape]
    full = jnp.take(cls, jnp.asarray(idx.ravel(), jnp.int32), axis=0)
    rest = [d for a, d in enumerate(p.shape) if a not in axes]
    full = full.reshape([phys[a] for a in axes] + rest)
    # Move the position axes to where the spatial axes are.
    perm, r = [], len(axes)
    for a in range(len(p.shape)):
        if a in axes:
            perm.append(axes.index(a))
        else:
            perm.append(r)
            r += 1
    return jnp.transpose(full, perm)


_KEEPS_COUNT = frozenset({"convert_element_type", "copy", "copy_p", "stop_gradient",
                          "reduce_precision", "sharding_constraint", "name"})


@rule(*ELEMENTWISE.split(), "sharding_constraint", "name")
def elementwise(ctx, ins, **params):
    """Rule for pointwise primitives (any number of operands, broadcasting)."""
    shape = ctx.out_shapes[0]
    spatial = [v for v in ins if isinstance(v, V.Spatial)]
    if any(len(v.shape) != len(shape) for v in spatial):
        raise NoRule("operands of different rank")
    us, grids, partial = align(spatial, shape)
    phys = [us[0].shape[a] if g is not None else None for a, g in enumerate(grids)]
    it = iter(us)
    args = []
    exact = True
    for v in ins:
        if isinstance(v, V.Spatial):
            args.append(next(it))
        elif isinstance(v, V.Const):
            args.append(lift_const(v, grids, phys, spatial=spatial))
        else:
            args.append(interleave(v, grids, phys))
            exact = exact and v.exact
    # Constants keep their length-1 axes; primitives without implicit broadcasting
    # (select_n, clamp) need every non-scalar operand at the full physical shape.
    target = np.broadcast_shapes(*[np.shape(a) for a in args if np.ndim(a)])
    args = [jnp.broadcast_to(a, target) if np.ndim(a) and np.shape(a) != target
            else a for a in args]
    count = None
    if len(ins) == 1 and ctx.primitive.name in _KEEPS_COUNT and spatial[0].count:
        count = spatial[0].count  # a window sum passed through a type conversion
    outs = [V.Spatial(o, grids, s, partial, count)
            for o, s in zip(ctx.bind(args, **params), ctx.out_shapes)]
    if not exact:  # classes read circularly: an à trous value, not shift-exact
        outs = [V.materialize(o) for o in outs]
    return outs


@rule("optimization_barrier")
def passthrough(ctx, ins, **params):
    """Rule for primitives that return their operands unchanged."""
    return list(ins)


@rule("bitcast_convert_type")
def bitcast(ctx, ins, **params):
    (v,) = ins
    if len(ctx.out_shapes[0]) != v.u.ndim:
        raise NoRule("bitcast that changes the rank")
    return [V.Spatial(o, v.grids, ctx.out_shapes[0], v.partial)
            for o in ctx.bind([v.u], **params)]
