"""Rules for structural primitives: transposes, reshapes, crops, pads, reversals,
splits.

These move samples without arithmetic, so their undecimated form moves the
undecimated array the same way and updates the lattice: a crop or strided slice
moves the grid's phase (and multiplies its stride) without cutting the periodic
array; a reversal flips the array and the sign of shifts; a transpose carries the
grids along. Concatenations, stacks and tiles are in
:mod:`~sigcnn.atrous.rules_concatenate`.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn.atrous import values as V
from sigcnn.atrous.interpreter import concrete
from sigcnn.atrous.policy import Consume, NoForm, NoRule
from sigcnn.atrous.registry import _axis_map, rule

__all__ = []


def _spatial(v: V.Spatial, u=None, grids=None, shape=None):
    return V.Spatial(v.u if u is None else u, v.grids if grids is None else grids,
                     v.shape if shape is None else shape, v.partial)


@rule("transpose")
def transpose(ctx, ins, *, permutation):
    (v,) = ins
    return [V.Spatial(lax.transpose(v.u, permutation),
                      [v.grids[q] for q in permutation], ctx.out_shapes[0],
                      v.partial)]


@rule("broadcast_in_dim")
def broadcast_in_dim(ctx, ins, *, shape, broadcast_dimensions, sharding=None):
    v = ins[0]
    if len(ins) > 1 or not isinstance(v, V.Spatial):
        raise NoRule("dynamic shapes")
    out = list(shape)
    grids = [None] * len(shape)
    u = v.u
    for i, b in enumerate(broadcast_dimensions):
        g = v.grids[i]
        if g is None:
            continue
        if v.shape[i] == shape[b]:
            grids[b] = g
            out[b] = u.shape[i]
            continue
        # A single sample repeated along the axis (edge padding, jnp.repeat of a
        # row): uniform along it.
        s = V.sample(V.Spatial(u, [g if j == i else None for j in range(u.ndim)],
                               v.shape))
        u = s
        length = g.stride * (shape[b] - 1) + 1
        grids[b] = V.Grid(g.axis, g.stride, 0, g.sign, 0, length, None, True)
        out[b] = length
    args = dict(shape=tuple(out), broadcast_dimensions=broadcast_dimensions,
                sharding=sharding)
    return [V.Spatial(ctx.bind([u], **args)[0], grids, shape, v.partial)]


@rule("squeeze")
def squeeze(ctx, ins, *, dimensions):
    (v,) = ins
    dims = [d % v.u.ndim for d in dimensions]
    spatial = [d for d in dims if v.grids[d] is not None]
    if spatial:
        return _consume_axes(ctx, v, spatial, lambda u: lax.squeeze(u, dims), dims)
    keep = [g for a, g in enumerate(v.grids) if a not in dims]
    return [V.Spatial(lax.squeeze(v.u, dims), keep, ctx.out_shapes[0], v.partial)]


def _consume_axes(ctx, v, axes, fn, dropped):
    """An operation that consumes the spatial `axes` (e.g. a reduction over them).

    If it consumes every spatial axis the value becomes phased; otherwise the
    consumed axes are sampled on their grids and their input axes are marked as
    known unshifted only.
    """
    if len(axes) == len(v.spatial_axes()):
        raise Consume(circular=False)
    sampled = V.sample(v, axes)
    keep = [g for a, g in enumerate(v.grids) if a not in dropped]
    partial = v.partial | {v.grids[a].axis for a in axes}
    return [V.Spatial(fn(sampled.u), keep, ctx.out_shapes[0], partial)]


@rule("reshape")
def reshape(ctx, ins, *, new_sizes, dimensions=None, sharding=None):
    v = ins[0]
    if len(ins) > 1 or dimensions is not None:
        raise NoRule("a reshape with dynamic shape or dimension order")
    out_shape = list(new_sizes)
    in_shape = v.shape
    mapping = _axis_map(in_shape, out_shape)
    pin = np.concatenate([[1], np.cumprod(in_shape, dtype=np.int64)])
    pout = np.concatenate([[1], np.cumprod(out_shape, dtype=np.int64)])
    grids = [None] * len(out_shape)
    phys = list(out_shape)
    u = v.u
    splits, merged = [], []
    for a, g in enumerate(v.grids):
        if g is None:
            continue
        if a in mapping:
            b = mapping[a]
            grids[b] = g
            phys[b] = u.shape[a]
            continue
        hit = [b for b in range(len(out_shape) - 1)
               if pout[b] == pin[a] and pout[b + 2] == pin[a + 1] and out_shape[b] > 1]
        if not hit:
            merged.append(a)
            continue
        splits.append((a, hit[0]))
    ones = [a for a in merged if in_shape[a] == 1 and v.grids[a].stride != 1]
    if ones:
        # A strided axis of length 1 merged into a neighbour (flattening a 1 x 1
        # map, or [N, 1, 1, C] -> [N, 1, C]) drops it: a squeeze, then the rest.
        shape = tuple(n for a, n in enumerate(in_shape) if a not in ones)
        (sq,) = _consume_axes(dataclasses.replace(ctx, out_shapes=(shape,)), v, ones,
                              lambda u: lax.squeeze(u, ones), ones)
        if list(shape) == out_shape:
            return [sq]
        return reshape(ctx, [sq], new_sizes=new_sizes)
    for a in list(merged):
        # A single sample at stride 1 merged with the next axis (edge padding of
        # the input builds it so): at stride 1 there is nothing between samples.
        g = v.grids[a]
        hit = [b for b in range(len(out_shape))
               if pout[b] == pin[a] and pout[b + 1] == pin[a + 2]]
        if in_shape[a] == 1 and a + 1 < len(in_shape) and v.grids[a + 1] is None \
                and hit:
            if g.stride != 1:
                raise NoForm(
                    "a single row or column is repeated along a spatial axis at "
                    f"cumulative stride {g.stride} (edge padding of a strided map): "
                    "the positions between the repeated samples have no à trous "
                    "value")
            u = V.materialize(V.Spatial(u, v.grids, v.shape), [a]).u
            b = hit[0]
            grids[b] = V.Grid(g.axis, 1, 0, g.sign, 0, out_shape[b], None)
            phys[b] = out_shape[b]
            merged.remove(a)
    if merged:
        if any(g is not None for g in grids) or splits:
            raise NoForm("a reshape merges a spatial axis with another axis while "
                         "keeping others: nearest-neighbour upsampling (jnp.repeat, "
                         "broadcast + reshape) or depth-to-space; an upsampled map's "
                         "response to a shift is not a resampling of one undecimated "
                         "map")
        raise Consume()
    if splits:  # non-periodic splits read the support only
        v = V.materialize(v, [a for a, _ in splits if v.grids[a].period is None])
        u = v.u
    for a, b in reversed(splits):
        # A polyphase split n -> (n / s, s): the outer axis keeps a grid of stride
        # d * s, the inner one enumerates the s phases, each moved onto phase 0.
        g = v.grids[a]
        s = out_shape[b + 1]
        d = g.stride
        if g.period:
            phases = [jnp.roll(u, -d * q, axis=a) for q in range(s)]
            # The support shrinks as the à trous network's extent does (past it:
            # wrapped values); the split reads all of its input.
            grid = dataclasses.replace(g, stride=d * s, hi=g.hi - d * (s - 1),
                                       circle=g.covers() or g.circle)
        else:
            length = u.shape[a] - d * (s - 1)
            phases = [lax.slice_in_dim(u, d * q, d * q + length, axis=a)
                      for q in range(s)]
            grid = dataclasses.replace(g, stride=d * s, hi=length)
        u = jnp.stack(phases, axis=a + 1)
        grids[b] = grid
        phys[b] = u.shape[a]
    args = dict(new_sizes=tuple(int(p) for p in phys), dimensions=None,
                sharding=sharding)
    return [V.Spatial(ctx.bind([u], **args)[0], grids, tuple(out_shape), v.partial)]


def _crop(v: V.Spatial, a: int, start: int, stride: int, count: int) -> V.Spatial:
    """Samples start, start + stride, ... (count of them) of axis a."""
    g = v.grids[a]
    grid = dataclasses.replace(g, phase=g.phase + g.stride * start,
                               stride=g.stride * stride)
    n = v.shape[a]
    whole = start < stride and count == -(-(n - start) // stride)
    # A decimation keeps the support (the à trous extent); a crop keeps the kept
    # samples' cells, scaled by the stride.
    if not whole and count > 0:
        lo = grid.phase if start > 0 else g.lo
        hi = grid.last(count) + grid.stride if start + stride * (count - 1) < n - 1 \
            else g.hi
        grid = dataclasses.replace(grid, lo=max(g.lo, lo), hi=min(g.hi, hi),
                                   circle=False)
    shape = list(v.shape)
    shape[a] = count
    return V.Spatial(v.u, [grid if j == a else x for j, x in enumerate(v.grids)],
                     shape, v.partial)


@rule("slice")
def slice_(ctx, ins, *, start_indices, limit_indices, strides):
    (v,) = ins
    strides = strides or (1,) * len(start_indices)
    out_shape = ctx.out_shapes[0]
    s0, l0, st0 = list(start_indices), list(limit_indices), list(strides)
    for a, g in enumerate(v.grids):
        if g is not None:
            s0[a], l0[a], st0[a] = 0, v.u.shape[a], 1
    u = v.u
    if tuple(s0) != (0,) * len(s0) or tuple(l0) != tuple(u.shape) or \
            any(t != 1 for t in st0):
        u = lax.slice(u, s0, l0, st0)
    shape = list(v.shape)
    for a, g in enumerate(v.grids):
        if g is None:
            shape[a] = out_shape[a]
    out = V.Spatial(u, v.grids, shape, v.partial)
    for a, g in enumerate(v.grids):
        if g is not None:
            out = _crop(out, a, start_indices[a], strides[a], out_shape[a])
    return [out]


@rule("dynamic_slice")
def dynamic_slice(ctx, ins, *, slice_sizes):
    v, *idx = ins
    if not isinstance(v, V.Spatial) or any(not isinstance(i, V.Const) for i in idx):
        raise NoForm("a slice whose position depends on the input")
    if not all(concrete(i.arr) for i in idx):
        return [_traced_slice(ctx, v, idx, slice_sizes)]
    starts = [int(np.asarray(i.arr)) for i in idx]
    n = v.shape
    starts = [min(max(s, 0), n[a] - slice_sizes[a]) for a, s in enumerate(starts)]
    limits = [s + k for s, k in zip(starts, slice_sizes)]
    return slice_(ctx, [v], start_indices=starts, limit_indices=limits,
                  strides=None)


def _traced_slice(ctx, v, idx, sizes):
    """A slice at a traced (input-independent) position, as `jnp.roll` makes."""
    v = V.materialize(v, [a for a, g in enumerate(v.grids)
                          if g is not None and g.period is None])
    u = v.u
    grids = list(v.grids)
    starts = []
    for a, (i, g) in enumerate(zip(idx, v.grids)):
        n = v.shape[a]
        start = jnp.clip(jnp.asarray(i.arr, jnp.int32), 0, n - sizes[a])
        if g is None:
            starts.append(start)
            continue
        d, m = g.stride, sizes[a]
        if g.period:  # a roll of the circle, then the first m samples
            length = g.period
            u = lax.concatenate([u, u], a)
            grid = dataclasses.replace(g, lo=g.phase - g.head(),
                                       hi=g.phase + d * (m - 1) + g.tail(n))
            starts.append((d * start) % length)
            grids[a] = (grid, length)
        else:
            length = g.phase + d * (m - 1) + g.tail(n)
            starts.append(d * start)
            grids[a] = (V.Grid(g.axis, d, g.phase, g.sign, 0, length, None), length)
    out_sizes = [grids[a][1] if grids[a] is not None else sizes[a]
                 for a in range(len(sizes))]
    u = lax.dynamic_slice(u, starts, out_sizes)
    return V.Spatial(u, [None if x is None else x[0] for x in grids],
                     ctx.out_shapes[0], v.partial)


@rule("rev")
def rev(ctx, ins, *, dimensions):
    (v,) = ins
    u = lax.rev(v.u, dimensions)
    grids = list(v.grids)
    for a in dimensions:
        g = v.grids[a]
        if g is None:
            continue
        n = v.shape[a]
        length = g.period or v.u.shape[a]
        grids[a] = dataclasses.replace(
            g, phase=length - 1 - g.last(n), sign=-g.sign,
            lo=length - g.hi, hi=length - g.lo)
    return [V.Spatial(u, grids, v.shape, v.partial)]


@rule("pad")
def pad(ctx, ins, *, padding_config):
    v, val = ins
    if not isinstance(v, V.Spatial) or not isinstance(val, V.Const):
        raise NoForm("the padding value depends on the input")
    cfg = [tuple(c) for c in padding_config]
    out = v
    for a, g in enumerate(v.grids):
        if g is None:
            continue
        lo, hi, interior = cfg[a]
        if interior:
            raise NoForm("interior padding (zero-insertion upsampling) of a spatial "
                         "axis; an upsampled map's response to a shift is not a "
                         "resampling of one undecimated map")
        n = out.shape[a]
        if lo < 0 or hi < 0:
            start, stop = max(-lo, 0), n - max(-hi, 0)
            out = _crop(out, a, start, 1, stop - start)
            lo, hi = max(lo, 0), max(hi, 0)
        cfg[a] = (0, 0, 0)
        if lo == 0 and hi == 0:
            continue
        u, w = V.window(out, a)
        d = w.stride
        pcfg = [(0, 0, 0)] * u.ndim
        pcfg[a] = (d * lo, d * hi, 0)
        u = lax.pad(u, jnp.asarray(val.arr, u.dtype), pcfg)
        shape = list(out.shape)
        shape[a] += lo + hi
        grid = V.Grid(w.axis, d, w.phase, w.sign, 0, u.shape[a], None)
        out = V.Spatial(u, [grid if j == a else x for j, x in enumerate(out.grids)],
                        shape, out.partial)
    if any(c != (0, 0, 0) for c in cfg):
        u = lax.pad(out.u, jnp.asarray(val.arr, out.u.dtype), cfg)
        out = V.Spatial(u, out.grids, ctx.out_shapes[0], out.partial)
    return [out]


@rule("split")
def split(ctx, ins, *, sizes, axis):
    (v,) = ins
    outs, start = [], 0
    for size, shape in zip(sizes, ctx.out_shapes):
        if v.grids[axis] is not None:
            outs.append(_crop(v, axis, start, 1, size))
        else:
            u = lax.slice_in_dim(v.u, start, start + size, axis=axis)
            outs.append(V.Spatial(u, v.grids, shape, v.partial))
        start += size
    return outs
