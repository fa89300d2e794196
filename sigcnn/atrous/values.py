"""Values carried by the à trous interpreter, each with its sampling lattice.

The interpreter re-evaluates a network's jaxpr on three kinds of value, the way a
batching interpreter carries a batch dimension beside each array:

* :class:`Const`: independent of the input x (parameters, literals, `iota`), with
  the axes along which it is known to be uniform.
* :class:`Spatial`: an *undecimated* array u and, for each array axis that follows
  an input axis, a :class:`Grid` saying where the strided value v lives in u::

      v[..., i, ...] == u[..., grid.phase + grid.stride * i, ...]

  and which positions of u belong to the value (its *support*). When the grid is
  *periodic* (u has the input's length L and is exactly shift-equivariant), the
  strided value for the rolled input roll(x, t) is, exactly,

      v_t[..., i, ...] == u[..., (phase + stride * i - sign * t) mod L, ...].

* :class:`Phased`: a value without spatial axes that depends on the input's shift
  (logits after global pooling, a squeeze-and-excitation gate): one entry per
  shift class t mod D (`classes`, when it is known for every class) and one entry
  per shift the evaluation asks for (`explicit`). Both are computed lazily.

Everything here is a pure function of arrays and static metadata.

References:
    Vaidyanathan, Multirate Systems and Filter Banks, Prentice Hall, 1993
    (polyphase components).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Const", "Grid", "Lazy", "Phased", "Spatial", "take_positions"]


@dataclasses.dataclass(frozen=True)
class Grid:
    """The sampling lattice of one axis of an undecimated array u.

    Attributes:
        axis: the input axis this array axis follows (0 for H, 1 for W).
        stride: cumulative stride d: strided samples lie d positions apart in u.
        phase: position in u of strided sample 0.
        sign: +1 or -1; a shift of the input by t moves the samples by -sign * t
            (a reversal in the network flips it).
        lo, hi: the support: positions lo <= p < hi of u belong to the value (its
            undecimated extent). At most stride - 1 positions precede sample 0 and
            at most stride - 1 follow the last sample. For a periodic grid the
            support may run past [0, L) and is read modulo L; it is the à trous
            network's extent even when it covers the circle (positions of u past
            it hold wrapped values, which zero padding after it must not keep).
        period: L (the input length along `axis`) when u has length L and is
            exactly shift-equivariant along it, else None.
        circle: for a periodic grid whose support does not cover the circle: the
            support is shorter only because a VALID window op that reads all of
            its periodic input cut it to the à trous network's extent; every
            position of u is still the response to a shifted input, so an output
            leaf shows the whole circle (readers of the support, such as zero
            padding, keep to the support).
    """

    axis: int
    stride: int
    phase: int
    sign: int = 1
    lo: int = 0
    hi: int = 1
    period: int | None = None
    uniform: bool = False  # u is constant along the axis (a repeated sample)
    circle: bool = False

    def __post_init__(self):
        if self.circle and (not self.period or self.hi - self.lo >= self.period):
            object.__setattr__(self, "circle", False)  # one form per lattice

    def last(self, n: int) -> int:
        """Position of strided sample n - 1."""
        return self.phase + self.stride * (n - 1)

    def head(self) -> int:
        return self.phase - self.lo

    def tail(self, n: int) -> int:
        return self.hi - self.last(n)

    def key(self):
        """What two grids must share to be combined elementwise."""
        return (self.axis, self.stride, self.sign)

    def covers(self) -> bool:
        """True for a periodic grid whose support is the whole circle."""
        return bool(self.period) and self.hi - self.lo >= self.period

    def clipped(self, n: int) -> "Grid":
        """The grid with its support cut to the cell invariant."""
        lo = max(self.lo, self.phase - self.stride + 1)
        hi = min(self.hi, self.last(n) + self.stride)
        return dataclasses.replace(self, lo=lo, hi=hi)


class Lazy:
    """A memoised thunk: `value` evaluates `fn` once, inside the current trace."""

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: Callable[[], jax.Array]):
        self._fn = fn
        self._value = None

    @classmethod
    def of(cls, value):
        lazy = cls(lambda: value)
        lazy._value = value
        return lazy

    @property
    def value(self):
        if self._value is None:
            self._value = self._fn()
            self._fn = None
        return self._value


class Const:
    """A value that does not depend on x; `uni` = axes along which it is uniform."""

    __slots__ = ("arr", "uni")

    def __init__(self, arr, uni=frozenset()):
        self.arr = arr
        self.uni = frozenset(uni)

    @property
    def shape(self) -> tuple:
        return tuple(np.shape(self.arr))


class Spatial:
    """An undecimated value: array u, grids per axis and the strided shape.

    Attributes:
        u: the undecimated array; along an axis with a grid its length covers the
            support (non-periodic grids: exactly [0, len(u)) is the support).
        grids: one :class:`Grid` or None per axis.
        shape: the strided shape (that of the value f computes).
        partial: input axes along which the value depends on x but only its
            unshifted value is known (a reduction consumed that axis).
        count: optional :class:`Lazy` giving the undecimated number of in-range
            taps of the window sum that produced u (for averages that divide by it).
    """

    __slots__ = ("u", "grids", "shape", "partial", "count")

    def __init__(self, u, grids, shape, partial=frozenset(), count=None):
        self.u = u
        self.grids = tuple(grids)
        self.shape = tuple(shape)
        self.partial = frozenset(partial)
        self.count = count

    @property
    def periodic(self) -> bool:
        """True when every grid is periodic and no axis is known at t = 0 only."""
        return not self.partial and all(g.period for g in self.grids if g)

    def spatial_axes(self):
        return [a for a, g in enumerate(self.grids) if g is not None]

    def with_grid(self, a: int, grid: Grid, u=None) -> "Spatial":
        grids = list(self.grids)
        grids[a] = grid
        return Spatial(self.u if u is None else u, grids, self.shape, self.partial)


# --------------------------------------------------------------------------------------
# Reading positions of an undecimated array.
# --------------------------------------------------------------------------------------


def take_positions(u, axis: int, positions) -> jax.Array:
    """u at the static integer `positions` along `axis`, as slices where possible.

    Runs of consecutive positions become slices (reversed for decreasing runs);
    a few runs are concatenated, anything else is a gather.
    """
    pos = np.asarray(positions, dtype=np.int64)
    if pos.size == 0:
        shape = list(u.shape)
        shape[axis] = 0
        return jnp.zeros(shape, u.dtype)
    runs = []
    i, n = 0, pos.size
    while i < n:
        j, step = i + 1, 0
        if j < n and abs(pos[j] - pos[i]) <= 1:
            step = int(pos[j] - pos[i])
            while j + 1 < n and pos[j + 1] - pos[j] == step:
                j += 1
            j += 1
        runs.append((i, j, step))
        i = j
    if len(runs) > 8:
        return jnp.take(u, jnp.asarray(pos, jnp.int32), axis=axis)
    pieces = []
    for a, b, step in runs:
        first, last = int(pos[a]), int(pos[b - 1])
        if step == 0:
            piece = lax.slice_in_dim(u, first, first + 1, axis=axis)
            if b - a > 1:
                shape = list(piece.shape)
                shape[axis] = b - a
                piece = jnp.broadcast_to(piece, shape)
        elif step > 0:
            piece = lax.slice_in_dim(u, first, last + 1, axis=axis)
        else:
            piece = lax.rev(lax.slice_in_dim(u, last, first + 1, axis=axis), (axis,))
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else lax.concatenate(pieces, axis)


def window(v: Spatial, a: int) -> tuple[jax.Array, Grid]:
    """Axis a of v as a non-periodic array holding exactly its support."""
    g = v.grids[a]
    n = v.shape[a]
    if g.period is None:
        if g.lo == 0 and g.hi == v.u.shape[a]:
            return v.u, g
        u = lax.slice_in_dim(v.u, g.lo, g.hi, axis=a)
        return u, dataclasses.replace(g, phase=g.phase - g.lo, lo=0, hi=g.hi - g.lo)
    pos = np.arange(g.lo, g.hi) % g.period
    u = take_positions(v.u, a, pos)
    return u, Grid(g.axis, g.stride, g.phase - g.lo, g.sign, 0, g.hi - g.lo).clipped(n)


def materialize(v: Spatial, axes=None) -> Spatial:
    """v with the grids on `axes` (default: all) cut to their supports (periodic
    grids become non-periodic windows; spare positions are dropped)."""
    u, grids = v.u, list(v.grids)
    for a, g in enumerate(v.grids):
        if g is None or (axes is not None and a not in axes):
            continue
        u, grids[a] = window(Spatial(u, grids, v.shape), a)
    return Spatial(u, grids, v.shape, v.partial)


def sample(v: Spatial, axes=None):
    """The strided value on `axes` (default: all grids): u at its grid positions."""
    u = v.u
    grids = list(v.grids)
    for a, g in enumerate(v.grids):
        if g is None or (axes is not None and a not in axes):
            continue
        pos = g.phase + g.stride * np.arange(v.shape[a])
        if g.period:
            pos = pos % g.period
        if g.stride > 1 or g.phase or u.shape[a] != v.shape[a]:
            u = take_positions(u, a, pos)
        grids[a] = None
    if any(g is not None for g in grids):
        return Spatial(u, grids, v.shape, v.partial)
    return u


def shift_positions(g: Grid, n: int, t: int, *, circular_len: int | None = None):
    """Positions of u that the strided samples take for an input shift by t."""
    length = g.period or circular_len
    pos = g.phase + g.stride * np.arange(n) - g.sign * t
    if length is None:
        raise ValueError("shifted positions need a periodic grid")
    return pos % length


def shifted(v: Spatial, shifts: np.ndarray, *, circular: bool = False) -> jax.Array:
    """[P, *shape]: entry p is the strided value for the input roll(x, shifts[p]).

    Exact when every grid is periodic; with `circular`, non-periodic grids are read
    circularly within their support (the polyphase components of a support whose
    length is stride * n, for order-free reductions).
    """
    axes = v.spatial_axes()
    idx = []
    for a in axes:
        g = v.grids[a]
        n = v.shape[a]
        clen = None
        if g.period is None:
            if not circular:
                raise ValueError("shifted() needs periodic grids")
            clen = v.u.shape[a]
        idx.append(np.stack([shift_positions(g, n, int(t[g.axis]), circular_len=clen)
                             for t in shifts]))
    if len(shifts) == 1:
        out = v.u
        for a, ix in zip(axes, idx):
            out = take_positions(out, a, ix[0])
        return out[None]

    def one(*ix):
        out = v.u
        for a, i in zip(axes, ix):
            out = jnp.take(out, i, axis=a)
        return out

    return jax.vmap(one)(*[jnp.asarray(i, jnp.int32) for i in idx])


def class_grid(period) -> np.ndarray:
    """[Dy * Dx, 2] shifts (ty, tx) enumerating the classes t mod (Dy, Dx)."""
    ty, tx = np.meshgrid(np.arange(period[0]), np.arange(period[1]), indexing="ij")
    return np.stack([ty.ravel(), tx.ravel()], axis=1).astype(np.int64)


def class_period(v: Spatial) -> tuple[int, int] | None:
    """(Dy, Dx): the strides of v's grids per input axis (1 where it has none).

    The value then depends on the shift t only through t mod (Dy, Dx), provided its
    samples are whole polyphase components: stride * n equals the grid's period
    (or the length of its support, for a circular reading). None otherwise.
    """
    per = [1, 1]
    seen = [False, False]
    for a, g in enumerate(v.grids):
        if g is None:
            continue
        length = g.period or v.u.shape[a]
        if seen[g.axis] or g.stride * v.shape[a] != length:
            return None
        per[g.axis] = g.stride
        seen[g.axis] = True
    if v.partial - {k for k in (0, 1) if seen[k]}:
        return None
    return tuple(per)


class Phased:
    """A value without spatial axes that depends on the input's shift.

    Attributes:
        shape: shape of one entry (the strided value of f).
        period: (Dy, Dx) if `classes` is available: entry Dx * (ty mod Dy) +
            (tx mod Dx) is the value for any shift t; else None.
        classes: :class:`Lazy` array [Dy * Dx, *shape], or None.
        explicit: :class:`Lazy` array [P, *shape], entry p for the p-th shift the
            evaluation asks for (just the unshifted value in `undecimate`).
    """

    __slots__ = ("shape", "period", "classes", "explicit", "exact")

    def __init__(self, shape, period, classes, explicit, exact=True):
        self.shape = tuple(shape)
        self.period = None if period is None else tuple(period)
        self.classes = classes
        self.explicit = explicit
        self.exact = exact  # classes are the responses to shifts (not à trous only)
