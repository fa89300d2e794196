"""Rules for concatenations, stacks and tiles.

Concatenations (which is how `jnp.pad` builds wrap, reflect and edge padding, and
`jnp.roll` a roll) are assembled from the pieces' supports:

* pieces of one periodic array whose grids follow each other around the circle
  (a roll, circular padding) give the same array with a longer grid: exact and
  still shift-equivariant;
* otherwise the pieces' supports are laid side by side. Between the last sample of
  one piece and the first of the next lie stride - 1 positions; they are filled
  from the pieces' own supports (data before constants), and if the pieces cannot
  fill them exactly once (sizes the stride does not divide, or two pieces that
  could both fill them) the concatenation has no undecimated form.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn.atrous import values as V
from sigcnn.atrous.interpreter import concrete
from sigcnn.atrous.policy import NoForm, NoRule
from sigcnn.atrous.registry import rule
from sigcnn.atrous.rules_structure import _spatial

__all__ = ["assemble"]


def _same_others(pieces, a):
    ref = None
    for v in pieces:
        if not isinstance(v, V.Spatial):
            continue
        other = tuple(g for j, g in enumerate(v.grids) if j != a)
        if ref is None:
            ref = other
        elif other != ref:
            raise NoForm("concatenated maps lie on different grids along the other "
                         "axes")
    return ref


def _chain(pieces, a):
    """The periodic result when the pieces follow each other on one circle."""
    first = pieces[0]
    if not all(isinstance(v, V.Spatial) and v.u is first.u for v in pieces):
        return None
    g0 = first.grids[a]
    if g0 is None or not g0.period or not first.periodic:
        return None
    phase = g0.phase
    for v in pieces:
        g = v.grids[a]
        if g.key() != g0.key() or g.period != g0.period or \
                (g.phase - phase) % g.period:
            return None
        phase = g.phase + g.stride * v.shape[a]
    n = sum(v.shape[a] for v in pieces)
    last = pieces[-1].grids[a]
    grid = dataclasses.replace(g0, lo=g0.lo,
                               hi=g0.phase + g0.stride * (n - 1)
                               + last.tail(pieces[-1].shape[a]))
    return grid, n


def assemble(pieces, a: int, shape):
    """The undecimated concatenation of `pieces` (Spatial or Const) along axis a."""
    pieces = [v for v in pieces if (v.shape if isinstance(v, V.Spatial)
                                    else np.shape(v.arr))[a] > 0]
    spatial = [v for v in pieces if isinstance(v, V.Spatial)]
    if not spatial:
        raise NoRule("a concatenation without undecimated operands")
    chained = _chain(pieces, a)
    if chained is not None:
        grid, n = chained
        v = pieces[0]
        return V.Spatial(v.u, [grid if j == a else g for j, g in enumerate(v.grids)],
                         shape, v.partial)
    # Non-periodic assembly from the supports (and the spare positions around
    # them, where a seam needs them and only one piece has them).
    wins, srcs = [], []
    for v in pieces:
        srcs.append((v.u, v.grids[a]) if isinstance(v, V.Spatial) else None)
        if not isinstance(v, V.Spatial):
            wins.append(("const", v, None))
            continue
        if v.grids[a] is None:
            raise NoForm("a concatenation along a spatial axis of a value that has "
                         "no lattice along it")
        m = V.materialize(v, [j for j in range(len(v.grids)) if j != a])
        g = m.grids[a]
        u = m.u
        if g.period:  # a window of the circle, without spare positions
            if g.period % g.stride and g.stride > 1:
                raise NoForm(
                    "the pieces of a concatenation along a spatial axis do not tile "
                    f"its undecimated grid: cumulative stride {g.stride} does not "
                    f"divide the circle of {g.period} pixels (circular padding of a "
                    "map whose size is not a multiple of its stride: the strided map "
                    "wraps after ceil(size / stride) samples); use an input size "
                    "that is a multiple of the total stride")
            u, g = V.window(m, a)
        wins.append(("data", V.Spatial(u, [g if j == a else x for j, x in
                                           enumerate(m.grids)], m.shape, m.partial),
                     g))
    _same_others([w[1] for w in wins if w[0] == "data"], a)  # raises if not
    main = max((w for w in wins if w[0] == "data"), key=lambda w: w[1].shape[a])
    d, sign, key = main[2].stride, main[2].sign, main[2].key()
    # Orientation matters only to shifts; the assembly is not shift-equivariant.
    if any(w[0] == "data" and w[2].stride != d for w in wins):
        raise NoForm("concatenated maps have different strides")
    inf = 1 << 30

    def fwd(w):  # positions after the last sample within the support; spare ones
        g, n = w[2], w[1].shape[a]
        return (inf, 0) if g.uniform else (g.tail(n) - 1, w[1].u.shape[a] - g.hi)

    def bwd(w):
        g = w[2]
        return (inf, 0) if g.uniform else (g.head(), g.lo)

    def own(w):
        return w[0] == "data" and not w[2].uniform and w[2].sign == sign

    def agree(j):
        """Two windows of one periodic array that continue each other."""
        sa, sb = srcs[j], srcs[j + 1]
        if sa is None or sb is None or sa[0] is not sb[0] or not sa[1].period:
            return False
        ga, gb = sa[1], sb[1]
        n = wins[j][1].shape[a]
        return ga.sign == gb.sign and (gb.phase - ga.last(n) - d) % ga.period == 0

    need = d - 1
    before = [0] * len(wins)
    after = [0] * len(wins)
    if own(wins[0]):
        before[0] = min(bwd(wins[0])[0], need)
    if own(wins[-1]):
        after[-1] = min(fwd(wins[-1])[0], need)
    for j in range(len(wins) - 1):
        left, right = wins[j], wins[j + 1]
        if not need:
            continue
        if left[0] == "const" and right[0] == "const":
            ca, cb = left[1].arr, right[1].arr
            if not (concrete(ca) and concrete(cb) and np.array_equal(
                    np.asarray(ca), np.asarray(cb))):
                raise NoForm("two different constants meet between grid samples")
            after[j] = need
            continue
        if left[0] == "const":
            before[j + 1] = min(bwd(right)[0], need)
            after[j] = need - before[j + 1]
            continue
        if right[0] == "const":
            after[j] = min(fwd(left)[0], need)
            before[j + 1] = need - after[j]
            continue
        (fa, fs), (bb, bs) = fwd(left), bwd(right)
        fa, bb = min(fa, need), min(bb, need)
        if fa + bb >= need:
            if fa + bb > need and not (own(left) and own(right)) and not agree(j):
                raise NoForm(
                    "two pieces of a concatenation along a spatial axis could both "
                    f"fill the {need} positions between their grid samples at "
                    f"cumulative stride {d}: the map's undecimated length leaves more "
                    "than one position after its last sample (reflect or edge padding "
                    "needs the stride to divide the map's size minus one, circular "
                    "padding needs it to divide the size), so the à trous network is "
                    "not defined; use an input size that suits the total stride")
            after[j], before[j + 1] = fa, need - fa
            continue
        gap = need - fa - bb
        if fs >= gap and bs == 0:
            after[j], before[j + 1] = fa + gap, bb
        elif bs >= gap and fs == 0:
            after[j], before[j + 1] = fa, bb + gap
        else:
            raise NoForm(
                "the pieces of a concatenation along a spatial axis do not tile its "
                f"undecimated grid at cumulative stride {d} (the pieces' "
                "full-resolution lengths are not multiples of the stride; this is "
                "what circular, reflect or edge padding of a map whose size does "
                "not suit its cumulative stride gives); use an input size that is a "
                "multiple of the total stride (reflect: one more than a multiple)")
    parts = []
    ref_data = next(w[1] for w in wins if w[0] == "data")
    for (kind, v, g), b, f in zip(wins, before, after):
        if kind == "data":
            n = v.shape[a]
            start, stop = g.phase - b, g.last(n) + 1 + f
            if g.uniform:
                piece = lax.slice_in_dim(v.u, 0, 1, axis=a)
                shp = list(piece.shape)
                shp[a] = stop - start
                piece = jnp.broadcast_to(piece, shp)
            else:
                piece = lax.slice_in_dim(v.u, start, stop, axis=a)
        else:
            n = np.shape(v.arr)[a]
            length = b + d * (n - 1) + 1 + f
            shp = list(ref_data.u.shape)
            shp[a] = length
            arr = jnp.asarray(v.arr, ref_data.u.dtype)
            for j, x in enumerate(ref_data.grids):
                if x is not None and j != a:
                    if arr.shape[j] != 1 and j not in v.uni:
                        raise NoForm("a concatenated constant varies along the other "
                                     "spatial axis")
                    arr = lax.slice_in_dim(arr, 0, 1, axis=j)
            if arr.shape[a] != 1 and a not in v.uni:
                raise NoForm("a concatenated constant varies along the axis")
            arr = lax.slice_in_dim(arr, 0, 1, axis=a)
            for j in range(len(shp)):
                if ref_data.grids[j] is None and j != a:
                    shp[j] = arr.shape[j] if arr.shape[j] != 1 else shp[j]
            piece = jnp.broadcast_to(arr, shp)
        parts.append(piece)
    u = lax.concatenate(parts, a)
    grid = V.Grid(key[0], d, before[0], key[2], 0, u.shape[a], None)
    partial = frozenset().union(*[w[1].partial for w in wins if w[0] == "data"])
    return V.Spatial(u, [grid if j == a else x for j, x in enumerate(ref_data.grids)],
                     shape, partial)


@rule("concatenate")
def concatenate(ctx, ins, *, dimension):
    shape = ctx.out_shapes[0]
    spatial = [v for v in ins if isinstance(v, V.Spatial)]
    if any(isinstance(v, V.Phased) for v in ins):
        raise NoForm("it concatenates a map with a phased value")
    if spatial[0].grids[dimension] is not None or any(
            v.grids[dimension] is not None for v in spatial):
        return [assemble(ins, dimension, shape)]
    # Concatenation along a non-spatial axis (channels): operands on one lattice.
    from sigcnn.atrous.rules_elementwise import aligned_operands
    each = tuple(1 if j == dimension else n for j, n in enumerate(shape))
    args, grids, partial = aligned_operands(
        [_spatial(v, shape=tuple(1 if j == dimension else n
                                 for j, n in enumerate(v.shape)))
         if isinstance(v, V.Spatial) else v for v in ins], each)
    return [V.Spatial(lax.concatenate(args, dimension), grids, shape, partial)]


@rule("stack")
def stack(ctx, ins, *, axis):
    from sigcnn.atrous.rules_elementwise import aligned_operands
    shape = ctx.out_shapes[0]
    if any(isinstance(v, V.Phased) for v in ins):
        raise NoForm("it stacks a map with a phased value")
    args, grids, partial = aligned_operands(ins, shape[:axis] + shape[axis + 1:])
    out_grids = list(grids)
    out_grids.insert(axis, None)
    return [V.Spatial(jnp.stack(args, axis=axis), out_grids, shape, partial)]


@rule("tile")
def tile(ctx, ins, *, reps):
    (v,) = ins
    out = v
    rest = list(reps)
    for a, g in enumerate(v.grids):
        if g is not None and reps[a] != 1:
            shape = list(out.shape)
            shape[a] *= reps[a]
            out = assemble([out] * reps[a], a, tuple(shape))
            rest[a] = 1
    if any(r != 1 for r in rest):
        u = ctx.bind([out.u], reps=tuple(rest))[0]
        out = V.Spatial(u, out.grids, ctx.out_shapes[0], out.partial)
    return [out]
