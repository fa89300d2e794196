"""`undecimate` and `decimation_points`: tracing, the program cache, outputs.

The tracing, argument checks and bounded program cache here serve
:mod:`~sigcnn.atrous.every_shift` (`all_shifts`) too.

References:
    Holschneider, Kronland-Martinet, Morlet and Tchamitchian, "A real-time algorithm
    for signal analysis with the help of the wavelet transform", Wavelets, 1989 (the
    algorithme à trous).
    Azulay and Weiss, "Why do deep convolutional networks generalize so poorly to
    small image transformations?", JMLR 20(184), 2019.
"""

from __future__ import annotations

import collections
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from sigcnn._checks import check_finite, check_float_array, check_nhwc, check_nonempty
from sigcnn.atrous import values as V
from sigcnn.atrous.interpreter import Interpreter
from sigcnn.atrous.policy import Refusal, Undecimate
from sigcnn.atrous.precision import check_precision, with_precision
from sigcnn.atrous.tiling import Tiling

__all__ = ["clear_cache", "decimation_points", "undecimate", "undecimate_with_points"]


# --------------------------------------------------------------------------------------
# The compiled-program cache.
# --------------------------------------------------------------------------------------

_CACHE_SIZE = 32


class _Cache:
    """A bounded LRU of compiled interpreter programs."""

    def __init__(self, size: int):
        self.size = size
        self.entries = collections.OrderedDict()

    def get(self, key, build):
        entry = self.entries.get(key)
        if entry is None:
            entry = build()
            self.entries[key] = entry
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return entry


_PROGRAMS = _Cache(_CACHE_SIZE)


def clear_cache() -> None:
    """Drops every compiled interpreter program (`undecimate`, `all_shifts`).

    The cache holds at most 32 programs (least recently used first out); each keeps
    its compiled XLA executable alive, so call this to free memory after working
    with large networks.

    Examples:
        >>> import sigcnn
        >>> sigcnn.clear_cache()
    """
    _PROGRAMS.entries.clear()


def _trace(f, x, precision=None):
    # A fresh wrapper each call: JAX caches traces per function object, which would
    # keep stale copies of arrays that f reads from mutable state (NNX modules).
    closed, out_shapes = jax.make_jaxpr(lambda xx: f(xx), return_shape=True)(x)
    closed = with_precision(_dead_code_removed(closed), precision)
    return closed, jax.tree.structure(out_shapes)


def _dead_code_removed(closed):
    """Drops equations no output depends on (and without effects), also inside
    nested ``jit`` calls.

    A network imported with taps computes its whole forward pass even when only
    an early map is returned; its head (e.g. an adaptive pool with no à trous
    form) must not decide whether the taps can be undecimated.
    """
    jaxpr = closed.jaxpr
    live = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    kept = []
    changed = False
    for eqn in reversed(jaxpr.eqns):
        if not (eqn.effects or any(v in live for v in eqn.outvars)):
            changed = True
            continue
        inner = eqn.params.get("jaxpr")
        if eqn.primitive.name in ("pjit", "jit") and isinstance(inner,
                                                               jcore.ClosedJaxpr):
            pruned = _dead_code_removed(inner)
            if pruned is not inner:
                eqn = eqn.replace(params={**eqn.params, "jaxpr": pruned})
                changed = True
        kept.append(eqn)
        live.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    if not changed:
        return closed
    return jcore.ClosedJaxpr(jaxpr.replace(eqns=kept[::-1]), closed.consts)


def _nested_consts(jaxpr, out):
    for eqn in jaxpr.eqns:
        for val in eqn.params.values():
            for sub in (val if isinstance(val, (tuple, list)) else (val,)):
                if isinstance(sub, jcore.ClosedJaxpr):
                    out.extend(id(c) for c in sub.consts)
                    _nested_consts(sub.jaxpr, out)
                elif isinstance(sub, jcore.Jaxpr):
                    _nested_consts(sub, out)
    return out


def _key(tag, closed, x, *extra):
    """Cache key: the program's text, its argument types and the arrays it bakes in."""
    consts = tuple((np.shape(c), str(jnp.result_type(c))) for c in closed.consts)
    nested = tuple(_nested_consts(closed.jaxpr, []))
    return (tag, str(closed.jaxpr), consts, nested, x.shape, str(x.dtype)) + extra


def _input(x):
    h, w = x.shape[1], x.shape[2]
    return V.Spatial(x, (None, V.Grid(0, 1, 0, 1, 0, h, h), V.Grid(1, 1, 0, 1, 0, w, w),
                         None), x.shape)


def _check_f(f):
    if not callable(f):
        raise TypeError(f"`f` must be callable (a function of x [N, H, W, C]); got "
                        f"{f!r} of type {type(f).__name__}.")


def _check_x(x):
    if isinstance(x, jax.ShapeDtypeStruct):
        raise TypeError("`x` must be an array; got a ShapeDtypeStruct.")
    x = check_nhwc("x", x)
    x = check_float_array("x", x)
    check_nonempty("x", x, (1, 2))
    check_finite("x", x)
    return x


def _check_tiling(tiling):
    if tiling is None:
        return Tiling()
    if not isinstance(tiling, Tiling):
        raise TypeError(f"`tiling` must be a sigcnn.atrous.Tiling or None; got "
                        f"{tiling!r}.")
    return tiling


# --------------------------------------------------------------------------------------
# Outputs.
# --------------------------------------------------------------------------------------


def _r2_leaf(i, v, x):
    """r2 and stride of one output leaf of `undecimate`."""
    if isinstance(v, V.Const):
        return v.arr, (1, 1)
    if isinstance(v, V.Phased):
        return v.explicit.value[0], (1, 1)
    spatial = v.spatial_axes()
    if any(a not in (1, 2) for a in spatial):
        raise Refusal(
            f"cannot undecimate f: output leaf {i} has shape {v.shape} with spatial "
            f"axes at positions {spatial} (following input axes "
            f"{['HW'[v.grids[a].axis] for a in spatial]}); spatial outputs must have "
            "them at axes 1 and 2, as NHWC [N, H, W, ...] does: transpose them inside "
            "`f`.")
    u = v.u
    stride = [1, 1]
    for a in spatial:
        g = v.grids[a]
        n = v.shape[a]
        length = min(g.hi - g.phase, g.stride * n)
        if g.period and (g.covers() or g.circle):  # the circle
            length = min(g.stride * n, max(g.period, g.hi - g.phase))
        pos = g.phase + np.arange(length)
        if g.period:
            pos = pos % g.period
        if not (pos.size == u.shape[a] and np.array_equal(pos, np.arange(pos.size))):
            u = V.take_positions(u, a, pos)
        stride[a - 1] = g.stride
    return u, tuple(stride)


# --------------------------------------------------------------------------------------
# undecimate.
# --------------------------------------------------------------------------------------


class _Entry:
    def __init__(self):
        self.run = None
        self.meta = None


def _build_undecimate(closed, sizes, tiling, record):
    entry = _Entry()

    def run(consts, x):
        interp = Interpreter(Undecimate(record=record), sizes, tiling)
        outs = interp.run(closed.jaxpr, consts, [_input(x)])
        pairs = [_r2_leaf(i, v, x) for i, v in enumerate(outs)]
        entry.meta = ([s for _, s in pairs], [m for m, _ in interp.records])
        return [r for r, _ in pairs], [sig for _, sig in interp.records]

    entry.run = jax.jit(run)
    return entry


def undecimate(f: Callable[[jax.Array], Any], *, tiling: Tiling | None = None,
               precision=None) -> Callable:
    """Returns g with g(x) = (r2, stride): f's undecimated (à trous) responses.

    f is any JAX function of one NHWC image batch x [N, H, W, C] that returns a pytree
    of arrays, written with plain `jax.lax`, `jax.numpy`, Flax (linen or NNX),
    Equinox, Keras 3 (JAX backend) or PyTorch through torchax. g traces f and
    re-evaluates it with every stride removed and every later filter and pooling
    window dilated by the stride in front of it (padding scaled alike). For each
    leaf of f(x):

    * a spatial leaf [N, h, w, ...] (h, w after the cumulative strides sy, sx) gives
      r2 [N, H', W', ...] with ``f(x) == r2[:, ::sy, ::sx]`` exactly (to float
      rounding) for any padding and size, and every other position of r2 equal to
      that à trous network. H' == H when every layer's strided output covers its
      input ("SAME"-like padding: zero, circular, reflect, edge, explicit pairs,
      lax's strings), else the extent of the à trous network (VALID layers
      shorten it). The stride leaf is the pair (sy, sx) (per axis 1 + j of the leaf;
      1 where that axis is not spatial, e.g. a map averaged over W).
    * a leaf whose spatial axes were consumed (global pooling, flatten, a dense
      layer over them), e.g. logits [N, K], is returned as f(x) itself with stride
      (1, 1); so is a leaf that does not depend on x.

    Constructs with an exact undecimated form that are handled: strided, dilated,
    grouped and NCHW convolutions; max / sum / average pooling, including averages
    that divide by the count of in-range taps; crops, strided slices, flips,
    transposes, polyphase splits (space-to-depth); zero, circular, reflect and edge
    padding (`jnp.pad`, `jnp.roll`, concatenations); residual additions and
    channel concatenations; squeeze-and-excitation and instance-norm statistics
    (one gate per polyphase component: each full-resolution position uses the gate
    of the shift class it belongs to); batch norm; `lax.scan` (unrolled),
    `lax.cond` / `lax.switch`, `fori_loop`; nested `jit`, `custom_jvp` / `custom_vjp`,
    remat, `stop_gradient`.

    Refused with a NotImplementedError that names the primitive, the user's source
    line and the reason (each has no undecimated form; `all_shifts` evaluates them
    exactly): upsampling of a strided map (nearest or linear via `jnp.repeat`,
    broadcast + reshape, `jax.image.resize`, transposed convolutions, depth-to-space);
    a flipped map combined with an unflipped one; data-dependent downsampling
    (adaptive polyphase sampling); position-dependent constants; and sizes at which
    the à trous network itself breaks the identity above: circular padding of a map
    whose length is not a multiple of its cumulative stride, reflect or edge
    padding unless the map's length leaves exactly one position after its last
    sample (e.g. H - 1 a multiple of the stride).

    g may be wrapped in `jax.jit` (the strides then come back as integer arrays).
    The interpreted function is compiled once per program and input shape;
    parameters closed over by f are passed as arguments, so updated weights (an NNX
    module trained in place) are always used. On the CPU backend large undecimated
    convolutions are computed in tiles (see :class:`sigcnn.atrous.Tiling`).

    Args:
        f: callable x [N, H, W, C] -> pytree of arrays.
        tiling: optional :class:`sigcnn.atrous.Tiling` (default: 4096 positions
            per tile on CPU).
        precision: None (f's own precisions) or the precision of every
            convolution and matrix product of f: a `jax.lax.Precision` or
            "highest" / "high" / "default" (see :mod:`sigcnn.atrous.precision`;
            "highest" for results exact to float32 rounding on GPUs and TPUs).

    Returns:
        g: callable; g(x) returns (r2, stride), two pytrees with f(x)'s structure:
        r2 leaves [N, H', W', ...] (spatial) or f(x)'s leaf (non-spatial); stride
        leaves, tuples (sy, sx) of ints.

    Raises:
        TypeError: if `f` is not callable, or g's `x` is not a real float array.
        ValueError: if `precision` is not one of the values above, or g's `x` is
            not rank 4, has H = 0 or W = 0, holds NaN/Inf
            (checked for concrete x only), or f uses an axis of x that NHWC
            calls spatial as a channel axis (x passed channels-first). An empty
            batch (N = 0) gives empty r2 leaves.
        NotImplementedError: (raised by g) for the constructs listed above.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jax import lax
        >>> k = jnp.ones((3, 3, 1, 1))
        >>> f = lambda x: lax.conv_general_dilated(
        ...     x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        >>> x = jax.random.normal(jax.random.key(0), (1, 8, 8, 1))
        >>> r2, stride = undecimate(f)(x)
        >>> r2.shape, stride
        ((1, 8, 8, 1), (2, 2))
        >>> bool(jnp.allclose(f(x), r2[:, ::2, ::2], atol=1e-5))
        True

    References:
        Holschneider et al., "A real-time algorithm for signal analysis with the
        help of the wavelet transform", 1989 (algorithme à trous).
        Azulay and Weiss, "Why do deep convolutional networks generalize so poorly
        to small image transformations?", JMLR 20(184), 2019, section 3.
    """
    _check_f(f)
    tiling = _check_tiling(tiling)
    precision = check_precision(precision)

    def g(x):
        x = _check_x(x)
        closed, out_tree = _trace(f, x, precision)
        sizes = (x.shape[1], x.shape[2])
        entry = _PROGRAMS.get(_key("undecimate", closed, x, tiling),
                              lambda: _build_undecimate(closed, sizes, tiling, False))
        leaves, _ = entry.run(list(closed.consts), x)
        return (jax.tree.unflatten(out_tree, leaves),
                jax.tree.unflatten(out_tree, list(entry.meta[0])))

    g.__name__ = f"undecimated_{getattr(f, '__name__', type(f).__name__)}"
    g.__doc__ = "Undecimated form of f: g(x) -> (r2, stride); see sigcnn.undecimate."
    return g


def undecimate_with_points(f: Callable[[jax.Array], Any], x, *,
                           tiling: Tiling | None = None):
    """`undecimate(f)(x)` and `decimation_points(f, x)` from one evaluation.

    Args:
        f: callable x [N, H, W, C] -> pytree of arrays.
        x: float array, shape [N, H, W, C].
        tiling: optional :class:`sigcnn.atrous.Tiling`.

    Returns:
        (r2, stride, points): as `undecimate(f)(x)` and `decimation_points(f, x)`.
    """
    _check_f(f)
    tiling = _check_tiling(tiling)
    x = _check_x(x)
    closed, out_tree = _trace(f, x)
    sizes = (x.shape[1], x.shape[2])
    entry = _PROGRAMS.get(_key("decimations", closed, x, tiling),
                          lambda: _build_undecimate(closed, sizes, tiling, True))
    leaves, signals = entry.run(list(closed.consts), x)
    strides, metas = entry.meta
    points = [dict(meta, signal=sig) for meta, sig in zip(metas, signals)]
    return (jax.tree.unflatten(out_tree, leaves),
            jax.tree.unflatten(out_tree, list(strides)), points)


def decimation_points(f: Callable[[jax.Array], Any], x, *,
                      tiling: Tiling | None = None) -> list[dict]:
    """Every subsampling operation of f, with the signal it decimates.

    For each strided convolution, window reduction (max, sum or average pooling),
    strided slice (the subsampling step of `sigcnn.blur_pool`) or polyphase split of
    f, in program order: its primitive, the user's source line, the cumulative
    stride of its input, its own stride, and its output evaluated at stride 1 on
    its input's grid (the signal just before decimation, as Ribeiro & Schön hook
    it), obtained from the undecimated evaluation of f.

    Args:
        f: callable x [N, H, W, C] -> pytree of arrays (as for `undecimate`).
        x: float array, shape [N, H, W, C].
        tiling: optional :class:`sigcnn.atrous.Tiling`.

    Returns:
        list of dicts with keys ``primitive``, ``where``, ``input_stride`` (sy,
        sx), ``stride`` (sy, sx), ``output_stride`` and ``signal``: an array of
        shape [1, H / input_sy, W / input_sx, M] (all non-spatial axes, batch
        included, folded into the last axis).

    Raises:
        As `undecimate`.

    References:
        Ribeiro and Schön, "How convolutional neural networks deal with
        aliasing", ICASSP 2021.
    """
    return undecimate_with_points(f, x, tiling=tiling)[2]
