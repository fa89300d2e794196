"""Tiling of large undecimated convolutions (CPU), as an overridable setting.

XLA's CPU convolution slows down on large outputs. Undecimated convolutions are
S^2 times larger than their strided originals, so on CPU they are split into
batch chunks and spatial output tiles of about 4096 positions; each tile is the
same convolution on the input slice it reads, so the result equals one call up to
the summation order XLA picks. For large channel counts the convolution kernel
still copies every input window of a tile into a freshly mapped buffer (58 MB per
56 x 56 tile of a 512-channel layer), paged in anew for every tile; those
convolutions therefore run as matrix products on CPU
(:mod:`sigcnn.atrous.conv_forms`), tiled the same way (benchmarks/README.md).

The thresholds and the form of the convolutions (dilated, polyphase or matrix
products: :mod:`sigcnn.atrous.conv_forms`) are a :class:`Tiling` value passed as
``tiling=`` to `sigcnn.undecimate`, `sigcnn.all_shifts` and `sigcnn.layer_spectra`
(or read from the environment variables ``SIGCNN_TILE_POSITIONS``,
``SIGCNN_TILE_UNROLLED`` and ``SIGCNN_CONV_FORM``).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sigcnn.atrous import conv_forms

__all__ = ["Tiling", "tiled_conv"]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"the environment variable `{name}` must be a "
                         f"non-negative int; got {raw!r}.") from None


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How undecimated convolutions are cut into tiles.

    Attributes:
        positions: target output positions (batch x spatial) per tile; 0 disables
            tiling. Default 4096, or ``$SIGCNN_TILE_POSITIONS``.
        unrolled: up to this many tiles are separate convolution calls (XLA runs
            them concurrently); more run in a `lax.map` loop so compile time stays
            flat. Default 4, or ``$SIGCNN_TILE_UNROLLED``.
        width: tiles computed per loop step (default: the usable cores, at most 8,
            for convolutions, whose tiles run on about one core each; 1 for the
            matmul form, whose products use every core).
        backends: backends on which tiling applies (default: CPU only; GPU
            convolutions are fastest as one call).
        form: how each undecimated convolution is computed
            (:mod:`sigcnn.atrous.conv_forms`): "dilated" (the convolution with
            dilated taps), "polyphase" (a dense convolution over the batch of
            phase images), "matmul" (matrix products, one per group of taps), or
            "auto" (default, or ``$SIGCNN_CONV_FORM``): "matmul" on the CPU for
            convolutions with at least 128 x 128 channels per group, "dilated"
            otherwise and on every other backend (`conv_forms.choose`). All
            forms give the same values up to float rounding.

    Examples:
        >>> Tiling(positions=0).enabled("cpu")
        False
        >>> Tiling().enabled("cpu"), Tiling().enabled("gpu")
        (True, False)
        >>> Tiling(form="polyphase").form
        'polyphase'
    """

    positions: int = -1
    unrolled: int = -1
    width: int | None = None
    backends: tuple = ("cpu",)
    form: str | None = None

    def __post_init__(self):
        if self.positions == -1:
            object.__setattr__(self, "positions",
                               _env_int("SIGCNN_TILE_POSITIONS", 4096))
        if self.unrolled == -1:
            object.__setattr__(self, "unrolled", _env_int("SIGCNN_TILE_UNROLLED", 4))
        for name in ("positions", "unrolled"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative int; got "
                                 f"{value!r}.")
        w = self.width
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 1):
            raise ValueError(f"`width` must be None or a positive int; got {w!r}.")
        b = self.backends
        if isinstance(b, str) or not isinstance(b, (tuple, list)) or not all(
                isinstance(v, str) for v in b):
            raise TypeError(f"`backends` must be a tuple of backend names, e.g. "
                            f"('cpu',) or ('cpu', 'gpu'); got {b!r}.")
        object.__setattr__(self, "backends", tuple(b))
        if self.form is None:
            object.__setattr__(self, "form",
                               os.environ.get("SIGCNN_CONV_FORM", "auto"))
        if self.form not in conv_forms.FORMS:
            raise ValueError(f"`form` must be one of {conv_forms.FORMS}; got "
                             f"{self.form!r}.")

    def enabled(self, backend: str) -> bool:
        return self.positions > 0 and backend in self.backends

    def loop_width(self, form: str = "dilated") -> int:
        if self.width is not None:
            return max(1, int(self.width))
        if form == "matmul":
            return 1
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))


def tiled_conv(prim, u, rhs, params, axes, tiling: Tiling):
    """Binds a stride-1 convolution over `axes` in `tiling`'s form, tiled on CPU.

    Args:
      prim: the convolution primitive; `params` its parameters, whose strides and
        input dilation are 1 along `axes`.
      u: input; rhs: kernel.
      axes: (input axis, output axis, effective kernel extent - 1) of each
        undecimated spatial axis.

    The form (dilated, polyphase or matmul: :mod:`sigcnn.atrous.conv_forms`) is
    ``conv_forms.choose(tiling.form, ...)`` for the default backend. Where tiling
    is enabled, the output is cut into a grid of equal tiles (batch chunks times
    spatial blocks, the input zero-extended at the far end where the sizes do not
    divide); each tile is the same convolution applied to the input slice it
    reads, so the result equals one call up to the summation order XLA picks for
    the tile shape. Up to `tiling.unrolled` tiles are separate convolutions (XLA
    runs them concurrently); more run in a `lax.map` loop, so compile time stays
    flat.
    """
    dn = params["dimension_numbers"]
    backend = jax.default_backend()
    form = conv_forms.choose(tiling.form, backend, u.shape, np.shape(rhs),
                             u.dtype, params, axes)
    if form == "dilated" and not _tiled(u, params, axes, tiling, backend):
        return _bind1(prim, [u, rhs], params)[0]
    canonical = _channels_last(dn, u.ndim)
    if dn == canonical:
        return _canonical(prim, u, rhs, params, axes, tiling, form, backend)
    # XLA:CPU runs a channels-first convolution inside a loop about 70x slower
    # than the same convolution channels-last (NCHW tiles of VGG-11's third
    # convolution at 224: 32.7 s vs 0.46 s; one untiled call: 1.47 s vs 1.41 s),
    # and the polyphase and matmul forms are written channels-last. So they run
    # channels-last, with one transpose on each side.
    lhs_perm = (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1])
    rhs_perm = (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0])
    moved = [(1 + dn.lhs_spec[2:].index(a), 1 + dn.out_spec[2:].index(o), eff)
             for a, o, eff in axes]
    out = _canonical(prim, jnp.transpose(u, lhs_perm), jnp.transpose(rhs, rhs_perm),
                     dict(params, dimension_numbers=canonical), moved, tiling, form,
                     backend)
    back = [0] * u.ndim
    back[dn.out_spec[0]], back[dn.out_spec[1]] = 0, u.ndim - 1
    for i, a in enumerate(dn.out_spec[2:]):
        back[a] = 1 + i
    return jnp.transpose(out, back)


def _tiled(u, params, axes, tiling, backend) -> bool:
    """Whether the convolution is cut into tiles (enabled and large enough)."""
    dn = params["dimension_numbers"]
    n = u.shape[dn.lhs_spec[0]]
    pads = list(params["padding"])
    j_of = {a: j for j, a in enumerate(dn.lhs_spec[2:])}
    lengths = [u.shape[a] + sum(pads[j_of[a]]) - eff for a, _, eff in axes]
    return bool(axes) and tiling.enabled(backend) and \
        n * int(np.prod(lengths)) > tiling.positions


def _canonical(prim, u, rhs, params, axes, tiling, form, backend):
    """tiled_conv on channels-last operands, in `form`."""
    if form == "polyphase":
        u, params, axes, undo = conv_forms.to_phases(u, params, axes)
        out = _canonical(prim, u, rhs, params, axes, tiling, "dilated", backend)
        return conv_forms.from_phases(out, undo)
    if form == "matmul":
        body = conv_forms.matmul_conv
    else:
        def body(v, k, p):
            return _bind1(prim, [v, k], p)[0]
    if not _tiled(u, params, axes, tiling, backend):
        return body(u, rhs, params)
    return _tiles(body, u, rhs, params, axes, tiling, tiling.loop_width(form))


def _channels_last(dn, ndim):
    """The dimension numbers of the same convolution in NHWC / HWIO / NHWC order."""
    spatial = tuple(range(1, ndim - 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, ndim - 1) + spatial, rhs_spec=(ndim - 1, ndim - 2)
        + tuple(range(ndim - 2)), out_spec=(0, ndim - 1) + spatial)


def _tiles(body, u, rhs, params, axes, tiling, width):
    """tiled_conv's tiles, each ``body(input slice, rhs, params)`` with the
    padding along `axes` applied beforehand; `width` tiles per loop step."""
    dn = params["dimension_numbers"]
    n = u.shape[dn.lhs_spec[0]]
    pads = list(params["padding"])
    j_of = {a: j for j, a in enumerate(dn.lhs_spec[2:])}
    lengths = [u.shape[a] + sum(pads[j_of[a]]) - eff for a, _, eff in axes]
    side = max(1, round(tiling.positions ** (1 / len(axes))))
    counts = [-(-length // side) if length > side * 3 // 2 else 1
              for length in lengths]
    tiles = [-(-length // c) for length, c in zip(lengths, counts)]
    chunk = n
    if params["batch_group_count"] == 1:
        chunk = min(n, max(1, tiling.positions // int(np.prod(tiles))))
    nchunks = -(-n // chunk)
    # Apply the padding, extended so that every tile is full (and every batch
    # chunk); the tiles are then VALID convolutions of equal shape.
    cfg = [(0, 0, 0)] * u.ndim
    cfg[dn.lhs_spec[0]] = (0, nchunks * chunk - n, 0)
    for (a, _, _), c, t, length in zip(axes, counts, tiles, lengths):
        lo, hi = pads[j_of[a]]
        cfg[a] = (lo, hi + c * t - length, 0)
        pads[j_of[a]] = (0, 0)
    u = lax.pad(u, jnp.zeros((), u.dtype), cfg)
    params = dict(params, padding=tuple(pads))
    in_size = list(u.shape)
    in_size[dn.lhs_spec[0]] = chunk
    for (a, _, eff), t in zip(axes, tiles):
        in_size[a] = t + eff
    tile_shape = jax.eval_shape(
        lambda v: body(v, rhs, params),
        jax.ShapeDtypeStruct(in_size, u.dtype)).shape
    out_size = list(tile_shape)
    out_size[dn.out_spec[0]] = nchunks * chunk
    for (_, o, _), c, t in zip(axes, counts, tiles):
        out_size[o] = c * t
    grid = [nchunks] + counts

    def tile(idx):
        start = [0] * u.ndim
        start[dn.lhs_spec[0]] = idx[0] * chunk
        for (a, _, _), k, t in zip(axes, idx[1:], tiles):
            start[a] = k * t
        return body(lax.dynamic_slice(u, start, in_size), rhs, params)

    total = int(np.prod(grid))
    if total <= tiling.unrolled:
        # Separate convolutions: XLA runs independent ones concurrently.
        stacked = jnp.stack([tile(np.unravel_index(i, grid)) for i in range(total)])
    else:
        # A loop keeps compile time flat; one tile's convolution runs on about one
        # core, so each step computes `width` tiles (one for matrix products,
        # which use every core).
        width = min(total, width)
        steps = -(-total // width)

        def step(i):
            return jnp.stack([
                tile(jnp.unravel_index(jnp.minimum(i * width + j, total - 1), grid))
                for j in range(width)])

        stacked = lax.map(step, jnp.arange(steps))
        stacked = stacked.reshape((steps * width,) + tuple(tile_shape))[:total]
    # [prod(grid), *tile_shape] -> out_size: each grid axis goes in front of the
    # output axis it tiles.
    stacked = stacked.reshape(grid + list(tile_shape))
    g = len(grid)
    grid_of = {dn.out_spec[0]: 0}
    grid_of.update({o: 1 + j for j, (_, o, _) in enumerate(axes)})
    perm = []
    for a in range(len(tile_shape)):
        if a in grid_of:
            perm.append(grid_of[a])
        perm.append(g + a)
    out = jnp.transpose(stacked, perm).reshape(out_size)
    limit = list(out_size)
    limit[dn.out_spec[0]] = n
    for (_, o, _), length in zip(axes, lengths):
        limit[o] = length
    return lax.slice(out, [0] * len(limit), limit)




def _bind1(prim, args, params):
    out = prim.bind(*args, **params)
    return list(out) if prim.multiple_results else [out]
