"""Rules for reductions, contractions and lookups.

A reduction or contraction over non-spatial axes keeps the grids. One over every
spatial axis (global pooling, flatten + dense) consumes them: the result depends
on the input's shift through the polyphase component it reads, and the interpreter
continues on it as a phased value (known for every shift class when the map is
periodic, or, for order-free reductions, when its support is tiled by its grid).
One over some spatial axes only keeps the others and is known unshifted only along
the consumed input axes.
"""

from __future__ import annotations

import numpy as np

from sigcnn.atrous import values as V
from sigcnn.atrous.policy import Consume, NoForm, NoRule
from sigcnn.atrous.registry import rule
from sigcnn.atrous.rules_elementwise import aligned_operands, lift_const
from sigcnn.atrous.rules_structure import _consume_axes

__all__ = []

_ORDER_FREE = frozenset("reduce_sum reduce_max reduce_min reduce_prod reduce_and "
                        "reduce_or reduce_xor".split())


@rule("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and",
      "reduce_or", "reduce_xor", "argmax", "argmin")
def reduce(ctx, ins, *, axes, **params):
    (v,) = ins
    axes = tuple(axes)
    spatial = [a for a in axes if v.grids[a] is not None]
    if spatial and len(spatial) == len(v.spatial_axes()):
        raise Consume(circular=ctx.primitive.name in _ORDER_FREE)
    if spatial:
        return _consume_axes(ctx, v, spatial,
                             lambda u: ctx.bind([u], axes=axes, **params)[0], axes)
    keep = [g for a, g in enumerate(v.grids) if a not in axes]
    return [V.Spatial(ctx.bind([v.u], axes=axes, **params)[0], keep,
                      ctx.out_shapes[0], v.partial)]


@rule("reduce")
def reduce_generic(ctx, ins, *, computation, jaxpr, dimensions, **params):
    nops = len(ins) // 2
    ops, inits = ins[:nops], ins[nops:]
    if any(not isinstance(i, V.Const) for i in inits) or any(
            isinstance(o, V.Phased) for o in ops):
        raise NoForm("an initial value depends on the input")
    shape = next(o for o in ops if isinstance(o, V.Spatial)).shape
    args, grids, partial = aligned_operands(ops, shape)
    red = [a for a in dimensions if grids[a] is not None]
    if red and len(red) == sum(g is not None for g in grids):
        raise Consume(circular=False)
    if red:
        args = [V.sample(V.Spatial(x, grids, shape), red).u for x in args]
        partial = partial | {grids[a].axis for a in red}
        grids = [None if a in red else g for a, g in enumerate(grids)]
    keep = [g for a, g in enumerate(grids) if a not in dimensions]
    outs = ctx.bind(args + [i.arr for i in inits], computation=computation,
                    jaxpr=jaxpr, dimensions=dimensions, **params)
    return [V.Spatial(o, keep, s, partial) for o, s in zip(outs, ctx.out_shapes)]


@rule("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(ctx, ins, *, axis, **params):
    (v,) = ins
    if v.grids[axis] is not None:
        raise NoForm("a cumulative operation along a spatial axis (its value at a "
                     "position depends on the position on the strided grid)")
    return [V.Spatial(ctx.bind([v.u], axis=axis, **params)[0], v.grids,
                      ctx.out_shapes[0], v.partial)]


@rule("sort")
def sort(ctx, ins, *, dimension, **params):
    spatial = [v for v in ins if isinstance(v, V.Spatial)]
    if any(v.grids[dimension] is not None for v in spatial):
        raise NoForm("sorting along a spatial axis")
    args, grids, partial = aligned_operands(ins, ctx.out_shapes[0])
    outs = ctx.bind(args, dimension=dimension, **params)
    return [V.Spatial(o, grids, s, partial) for o, s in zip(outs, ctx.out_shapes)]


@rule("top_k")
def top_k(ctx, ins, **params):
    (v,) = ins
    axis = params.get("axis", v.u.ndim - 1) % v.u.ndim
    if v.grids[axis] is not None:
        raise NoForm("top_k along a spatial axis")
    return [V.Spatial(o, v.grids, s, v.partial)
            for o, s in zip(ctx.bind([v.u], **params), ctx.out_shapes)]


def _lift_axis(arr, uni, axis, grid, length):
    grids = [None] * np.ndim(arr)
    grids[axis] = grid
    phys = list(np.shape(arr))
    phys[axis] = length
    return lift_const(V.Const(arr, uni), grids, phys, keep_ones=False)


@rule("dot_general")
def dot_general(ctx, ins, *, dimension_numbers, **params):
    lhs, rhs = ins
    (lc, rc), (lb, rb) = dimension_numbers
    if any(isinstance(v, V.Phased) for v in ins):
        raise NoForm("a product of a map with a phased value")
    partial = frozenset()
    ops = []
    for v, c in ((lhs, lc), (rhs, rc)):
        if isinstance(v, V.Spatial):
            hit = [a for a in c if v.grids[a] is not None]
            if hit and len(hit) == len(v.spatial_axes()):
                raise Consume()
            other, oc = (rhs, rc) if v is lhs else (lhs, lc)
            free = [j for j in range(np.ndim(other.arr if isinstance(other, V.Const)
                                             else other.u))
                    if j not in oc and j not in (rb if other is rhs else lb)]
            if hit and isinstance(other, V.Const) and free:
                raise NoForm(
                    "it multiplies a spatial axis by a constant matrix with an "
                    "output axis of its own: a resampling (jax.image.resize, an "
                    "interpolation or adaptive-pooling matrix), whose rows sit at "
                    "positions of the strided grid")
            if hit:  # contracting some spatial axes: they are read on their grid
                partial = partial | {v.grids[a].axis for a in hit}
                v = V.sample(v, hit)
        ops.append(v)
    lhs, rhs = ops
    lg = lhs.grids if isinstance(lhs, V.Spatial) else (None,) * np.ndim(lhs.arr)
    rg = rhs.grids if isinstance(rhs, V.Spatial) else (None,) * np.ndim(rhs.arr)
    lu = lhs.u if isinstance(lhs, V.Spatial) else lhs.arr
    ru = rhs.u if isinstance(rhs, V.Spatial) else rhs.arr
    if isinstance(lhs, V.Spatial) and isinstance(rhs, V.Spatial):
        for a, b in zip(lb, rb):
            if lg[a] is not None or rg[b] is not None:
                if lg[a] != rg[b] or lu.shape[a] != ru.shape[b]:
                    raise NoForm("a batched product of maps on different grids")
    out = []
    for a, b in zip(lb, rb):
        g = lg[a] or rg[b]
        out.append(g)
        if g is None:
            continue
        if lg[a] is None:
            lu = _lift_axis(lu, lhs.uni, a, g, ru.shape[b])
        if rg[b] is None:
            ru = _lift_axis(ru, rhs.uni, b, g, lu.shape[a])
    out += [lg[a] for a in range(len(lg)) if a not in lc and a not in lb]
    out += [rg[a] for a in range(len(rg)) if a not in rc and a not in rb]
    partial = partial.union(*[v.partial for v in ops if isinstance(v, V.Spatial)])
    return [V.Spatial(ctx.bind([lu, ru], dimension_numbers=dimension_numbers,
                               **params)[0], out, ctx.out_shapes[0], partial)]


@rule("gather")
def gather(ctx, ins, *, dimension_numbers, slice_sizes, **params):
    operand, indices = ins
    dn = dimension_numbers
    out_rank = len(ctx.out_shapes[0])
    out_grids = [None] * out_rank
    offset_dims = tuple(dn.offset_dims)
    batch_positions = [i for i in range(out_rank) if i not in offset_dims]
    if isinstance(operand, V.Phased) or isinstance(indices, V.Phased):
        raise NoForm("a lookup whose indices or operand are computed from the map's "
                     "spatial statistics (data-dependent sampling such as adaptive "
                     "polyphase sampling)")
    opd = operand.u if isinstance(operand, V.Spatial) else operand.arr
    og = operand.grids if isinstance(operand, V.Spatial) else (None,) * np.ndim(opd)
    ind = indices.u if isinstance(indices, V.Spatial) else indices.arr
    ig = indices.grids if isinstance(indices, V.Spatial) else (None,) * np.ndim(ind)
    if ig[-1] is not None:
        raise NoForm("gather indices vary along their index vector")
    carried = [a for a in range(len(og)) if a not in dn.collapsed_slice_dims
               and a not in dn.operand_batching_dims]
    sizes = list(slice_sizes)
    for a, g in enumerate(og):
        if g is None or a in dn.operand_batching_dims:
            continue
        if a in dn.start_index_map or a in dn.collapsed_slice_dims:
            raise NoRule("a gather that indexes along a spatial axis: a lookup "
                         "table of positions, as adaptive pooling to a size the map "
                         "does not divide, interpolation or unpooling indices "
                         "compile to, resamples the strided map off its lattice")
        if sizes[a] != operand.shape[a]:
            raise NoRule("a gather that slices part of a spatial axis")
        sizes[a] = opd.shape[a]
        out_grids[offset_dims[carried.index(a)]] = g
    for j, g in enumerate(ig[:-1]):
        if g is not None:
            out_grids[batch_positions[j]] = g
    for a, b in zip(dn.operand_batching_dims, dn.start_indices_batching_dims):
        ga, gb = og[a], ig[b]
        if ga == gb:
            continue
        if gb is None and ga is not None:
            ind = _lift_axis(ind, indices.uni, b, ga, opd.shape[a])
            out_grids[batch_positions[b]] = ga
        elif ga is None and gb is not None:
            opd = _lift_axis(opd, operand.uni, a, gb, ind.shape[b])
        else:
            raise NoForm("a batched gather over mismatched spatial axes")
    spatial = operand if isinstance(operand, V.Spatial) else indices
    return [V.Spatial(ctx.bind([opd, ind], dimension_numbers=dn,
                               slice_sizes=tuple(sizes), **params)[0], out_grids,
                      ctx.out_shapes[0], spatial.partial)]
