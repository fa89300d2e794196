"""Rules for windowed primitives: convolutions and window reductions (pooling).

The à trous rule: a window op with stride s on a value of stride d runs at stride 1
on the undecimated array with its taps (and padding) dilated by d, and its output
lies on a grid of stride d * s with the input's phase. Per spatial axis:

* a periodic input read without padding (the op of a circularly padded layer, or a
  VALID op) is extended around its circle, so the output stays periodic: exactly
  shift-equivariant. Its support shrinks by the window, as the à trous network's
  extent does, also when it still covers the circle (a k = 1 VALID op, a
  circularly padded layer); the positions past it hold wrapped values, which a
  later zero padding replaces with its zeros;
* otherwise the op's own padding (zeros, or -inf / the initial value for pooling)
  is applied at full resolution, scaled by d; when the strided op covers its whole
  input (any "SAME"-like padding), the output keeps the input's extent, extending
  the far padding as the strided op would for a longer input. The output is then
  the à trous network's value, not shift-equivariant.

A window sum also carries the undecimated count of its in-range taps, so that an
average that divides by that count (``count_include_pad=False``) stays exact.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn.atrous import values as V
from sigcnn.atrous.policy import NoForm, NoRule
from sigcnn.atrous.registry import rule
from sigcnn.atrous.tiling import tiled_conv

__all__ = ["LayoutError"]


class LayoutError(ValueError):
    """The input's axes are used in a way that contradicts NHWC."""


def _axis(u, grids, shape, a, n_out, lo, hi, s, eff):
    """Prepares axis a of the operand for a stride-1 dilated window op.

    Returns (u, (lo, hi) padding for the op, output grid, output physical length).
    """
    g = grids[a]
    d = g.stride
    n_in = shape[a]
    if g.period and lo == 0 and hi == 0:
        length = g.period
        u = V.take_positions(u, a, np.arange(length + eff) % length)
        # The support shrinks by the window, as in the à trous network, even if
        # it still covers the circle: past it u holds wrapped values that a later
        # zero padding must not keep (the à trous network has its zeros there).
        reads_all = (g.covers() or g.circle) and s * (n_out - 1) + eff // d + 1 >= n_in
        grid = dataclasses.replace(g, stride=d * s, hi=g.hi - eff, circle=reads_all)
        return u, (0, 0), grid, length
    u, w = V.window(V.Spatial(u, grids, shape), a)
    natural = u.shape[a] + d * (lo + hi) - eff
    extra = 0
    if (lo or hi) and s * n_out >= n_in:
        extra = max(0, u.shape[a] - natural)
    grid = V.Grid(w.axis, d * s, w.phase, w.sign, 0, natural + extra, None)
    return u, (d * lo, d * hi + extra), grid, natural + extra


def _fake(shape, grids, dtype):
    """Probe only: a zero array carrying `grids` (values are never read)."""
    phys = [g.hi if g is not None else n for g, n in zip(grids, shape)]
    return V.Spatial(jnp.zeros(phys, dtype), grids, shape)


def _upsampling(ctx, lhs, grids_in, axes_factor, out_axes):
    grids = [None] * len(ctx.out_shapes[0])
    for (a, r), o in zip(axes_factor, out_axes):
        g = grids_in[a]
        st = max(1, g.stride // r)
        grids[o] = V.Grid(g.axis, st, 0, g.sign, 0, st * ctx.out_shapes[0][o], None)
    raise NoForm("a transposed (input-dilated) convolution or interior padding "
                 "upsamples a spatial axis; an upsampled map's response to a shift is "
                 "not a resampling of one undecimated map",
                 lattice=[_fake(ctx.out_shapes[0], grids, ctx.out_dtypes[0])])


@rule("conv_general_dilated")
def conv(ctx, ins, *, window_strides, padding, lhs_dilation, rhs_dilation,
         dimension_numbers, feature_group_count, batch_group_count, **rest):
    lhs, rhs = ins
    if not isinstance(lhs, V.Spatial) or not isinstance(rhs, V.Const):
        raise NoForm("the convolution kernel depends on the input")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    out_shape = ctx.out_shapes[0]
    if lhs.grids[lhs_spec[1]] is not None:
        raise LayoutError(
            f"the convolution at {ctx.where} uses an axis that follows input axis "
            f"{'HW'[lhs.grids[lhs_spec[1]].axis]} of x as its feature (channel) "
            "axis: x looks channels-first (NCHW), but sigcnn expects x as NHWC "
            "[N, H, W, C]; pass jnp.transpose(x, (0, 2, 3, 1)) and transpose back "
            "to NCHW inside f.")
    grids = [None] * len(out_shape)
    if lhs.grids[lhs_spec[0]] is not None:
        if batch_group_count != 1:
            raise NoRule("batch-grouped convolution over a spatial axis")
        grids[out_spec[0]] = lhs.grids[lhs_spec[0]]
    strides = list(window_strides)
    pads = [tuple(q) for q in padding]
    ldil = list(lhs_dilation or (1,) * len(strides))
    rdil = list(rhs_dilation or (1,) * len(strides))
    kshape = np.shape(rhs.arr)
    up = [(lhs_spec[2 + j], ldil[j]) for j in range(len(strides))
          if lhs.grids[lhs_spec[2 + j]] is not None and ldil[j] != 1]
    if up:
        _upsampling(ctx, lhs, lhs.grids, up,
                    [out_spec[2 + j] for j in range(len(strides))
                     if lhs.grids[lhs_spec[2 + j]] is not None and ldil[j] != 1])
    u = lhs.u
    in_grids = list(lhs.grids)
    tiled = []
    for j in range(len(strides)):
        a, o = lhs_spec[2 + j], out_spec[2 + j]
        if in_grids[a] is None:
            continue
        d = in_grids[a].stride
        eff = d * rdil[j] * (kshape[rhs_spec[2 + j]] - 1)
        u, pads[j], grids[o], _ = _axis(u, in_grids, lhs.shape, a, out_shape[o],
                                        pads[j][0], pads[j][1], strides[j], eff)
        in_grids[a] = dataclasses.replace(in_grids[a], period=None, lo=0,
                                          hi=u.shape[a], phase=0) \
            if grids[o].period is None else in_grids[a]
        strides[j] = 1
        rdil[j] = d * rdil[j]
        tiled.append((a, o, rdil[j] * (kshape[rhs_spec[2 + j]] - 1)))
    params = dict(window_strides=tuple(strides), padding=tuple(pads),
                  lhs_dilation=tuple(ldil), rhs_dilation=tuple(rdil),
                  dimension_numbers=dimension_numbers,
                  feature_group_count=feature_group_count,
                  batch_group_count=batch_group_count, **rest)
    out = tiled_conv(ctx.primitive, u, rhs.arr, params, tiled, ctx.tiling)
    return [V.Spatial(out, grids, out_shape, lhs.partial)]


def _identity(name, dtype):
    dtype = np.dtype(dtype)
    if name == "reduce_window_sum":
        return np.zeros((), dtype)
    big = (np.inf if np.issubdtype(dtype, np.floating)
           else np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else True)
    if name == "reduce_window_max":
        return np.asarray(-big if dtype != np.bool_ else False, dtype)
    return np.asarray(big, dtype)


@rule("reduce_window_sum", "reduce_window_max", "reduce_window_min", "reduce_window")
def reduce_window(ctx, ins, **p):
    name = ctx.primitive.name
    if name == "reduce_window":
        nops = len(ins) // 2
        ops, inits = list(ins[:nops]), list(ins[nops:])
        if any(not isinstance(i, V.Const) for i in inits):
            raise NoForm("an initial value depends on the input")
        pad_values = [i.arr for i in inits]
    else:
        ops, inits = list(ins), []
        pad_values = [_identity(name, o.u.dtype if isinstance(o, V.Spatial)
                                else jnp.result_type(o.arr)) for o in ops]
    from sigcnn.atrous.rules_elementwise import aligned_operands
    spatial = [o for o in ops if isinstance(o, V.Spatial)]
    if any(isinstance(o, V.Phased) for o in ops):
        raise NoForm("a window reduction over a phased value")
    shape_in = spatial[0].shape
    arrs, grids_in, partial = aligned_operands(ops, shape_in)
    out_shape = ctx.out_shapes[0]
    wdims = list(p["window_dimensions"])
    strides = list(p["window_strides"])
    pads = [tuple(q) for q in p["padding"]]
    base = list(p["base_dilation"])
    wdil = list(p["window_dilation"])
    grids = list(grids_in)
    cur = list(grids_in)
    for a, g in enumerate(grids_in):
        if g is None:
            continue
        if base[a] != 1:
            _upsampling(ctx, spatial[0], grids_in, [(a, base[a])], [a])
        d = g.stride
        eff = d * wdil[a] * (wdims[a] - 1)
        lo, hi = pads[a]
        new = []
        for x, pv in zip(arrs, pad_values):
            xu, pad_a, grid, _ = _axis(x, cur, shape_in, a, out_shape[a], lo, hi,
                                       strides[a], eff)
            if pad_a != (0, 0):
                cfg = [(0, 0, 0)] * xu.ndim
                cfg[a] = (pad_a[0], pad_a[1], 0)
                xu = lax.pad(xu, jnp.asarray(pv, xu.dtype), cfg)
            new.append(xu)
        arrs = new
        pads[a] = (0, 0)
        grids[a] = grid
        cur[a] = grid if grid.period else dataclasses.replace(
            g, period=None, phase=0, lo=0, hi=arrs[0].shape[a])
        strides[a] = 1
        wdil[a] = d * wdil[a]
    params = dict(p, window_strides=tuple(strides), padding=tuple(pads),
                  window_dilation=tuple(wdil))
    outs = ctx.bind(arrs + [i.arr for i in inits], **params)
    count = None
    if name == "reduce_window_sum" and all(g is None or g.period is None
                                           for g in grids):
        count = V.Lazy(lambda: _count(ctx, grids_in, shape_in, out_shape, p))
    return [V.Spatial(o, grids, out_shape, partial, count if i == 0 else None)
            for i, o in enumerate(outs)]


def _count(ctx, grids_in, shape_in, out_shape, p):
    """The undecimated number of in-range taps of a window sum (a constant)."""
    with jax.ensure_compile_time_eval():
        phys = []
        for a, g in enumerate(grids_in):
            if g is None:
                phys.append(1 if p["window_dimensions"][a] == 1 else shape_in[a])
            else:
                phys.append(g.hi if g.period is None else g.period)
        ones = V.Spatial(jnp.ones(phys, ctx.out_dtypes[0]), grids_in, tuple(
            n if g is not None else phys[a] for a, (g, n) in
            enumerate(zip(grids_in, shape_in))))
        sub = dataclasses.replace(ctx, out_shapes=(tuple(
            n if g is not None else phys[a]
            for a, (g, n) in enumerate(zip(grids_in, out_shape))),))
        (out,) = reduce_window(sub, [ones], **p)
        return out.u
