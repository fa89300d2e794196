"""Shift schedules: the frame offsets of a protocol and the frame pairs to compare."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import as_pair, check_choice, check_key, check_positive_int
from sigcnn.shifts._validate import _is_int
from sigcnn.shifts.records import Schedule

__all__ = ["center_offset", "diagonal_schedule", "grid_schedule",
           "random_pair_schedule", "scale_schedule", "sweep_schedule"]


def _consecutive_pairs(t: int) -> np.ndarray:
    return np.stack([np.arange(t - 1), np.arange(1, t)], axis=1).astype(np.int64)


def center_offset(large, small) -> tuple[int, int]:
    """Top-left offset that centres a (h, w) window or object in (H, W).

    Args:
      large: positive int or pair (H, W); the image or canvas size.
      small: positive int or pair (h, w); the window or object size.

    Returns:
      ``((H - h) // 2, (W - w) // 2)``.

    Raises:
      ValueError: if a size is malformed or `small` exceeds `large`.
    """
    big = as_pair("large", large)
    sm = as_pair("small", small)
    if sm[0] > big[0] or sm[1] > big[1]:
        raise ValueError(f"`small` {sm} must not exceed `large` {big}.")
    return (big[0] - sm[0]) // 2, (big[1] - sm[1]) // 2


def diagonal_schedule(large, small, *, n_pairs: int = 8) -> Schedule:
    """The authors' consecutive diagonal one-pixel pairs around the centre.

    Per axis, ``center = floor((L - l - 1) / 2)``; the pairs are (c, c) and
    (c + 1, c + 1) for c = center - n_pairs // 2, ..., so for ``n_pairs=8``
    c = center - 4 .. center + 3 (the authors' code). For the Crop protocol
    (a 224 window in a 234 image) that is c = 0..7; for the Black protocol use
    L = canvas size, l = object size. The frames are the n_pairs + 1 offsets
    c = center - n_pairs // 2 .. (last c) + 1, and pair i compares frames i and
    i + 1.

    Args:
      large: positive int or pair (H, W); image (crop) or canvas (embed) size.
      small: positive int or pair (h, w); window (crop) or object (embed) size.
      n_pairs: positive int; number of consecutive pairs.

    Returns:
      `Schedule` with offsets [n_pairs + 1, 2] and pairs [n_pairs, 2].

    Raises:
      ValueError: if a size is malformed or the frames do not all fit, i.e.
        the margin L - l is too small for `n_pairs`.

    Examples:
      >>> from sigcnn.shifts import diagonal_schedule
      >>> s = diagonal_schedule(234, 224)      # the Crop protocol
      >>> s.offsets[:, 0].tolist()
      [0, 1, 2, 3, 4, 5, 6, 7, 8]
      >>> s.pairs[:2].tolist()
      [[0, 1], [1, 2]]

    References:
      Azulay & Weiss, JMLR 2019; ``CheckTranslationInvariance.py``.
    """
    big = as_pair("large", large)
    sm = as_pair("small", small)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    cols = []
    for axis in range(2):
        margin = big[axis] - sm[axis]
        center = (margin - 1) // 2
        first = center - n_pairs // 2
        c = np.arange(first, first + n_pairs + 1)
        if c[0] < 0 or c[-1] > margin:
            raise ValueError(
                    f"`large` {big} and `small` {sm} leave a margin of {margin} "
                    f"pixels on axis {axis}, too small for `n_pairs`={n_pairs} "
                    f"diagonal pairs around center {center} (frames {int(c[0])}.."
                    f"{int(c[-1])} must lie in [0, {margin}]).")
        cols.append(c)
    offsets = np.stack(cols, axis=1).astype(np.int64)
    return Schedule("diagonal", offsets, _consecutive_pairs(n_pairs + 1),
                    params=dict(large=big, small=sm, n_pairs=n_pairs))


def sweep_schedule(n_steps: int, *, axis: str = "horizontal", start=(0, 0),
                   step=1) -> Schedule:
    """Offsets (or shifts) along a line, with consecutive pairs.

    Frame k is ``start + k * step * d`` with d = (0, 1) (horizontal), (1, 0)
    (vertical) or (1, 1) (diagonal). For a dense 1-px sweep of a crop or embed,
    use ``n_steps = L - l + 1`` with the other coordinate from `center_offset`.

    Args:
      n_steps: positive int; number of frames T.
      axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.
      start: pair (oy, ox) of ints (or reals, for sub-pixel sweeps).
      step: int, or a real for sub-pixel `translate(..., method="fourier")`
        sweeps; must be nonzero.

    Returns:
      `Schedule` with offsets [T, 2] and pairs [T - 1, 2].

    Raises:
      ValueError: if an argument is malformed.

    References:
      Azulay & Weiss, JMLR 2019, Figure 1 (dense sweeps).
    """
    n_steps = check_positive_int("n_steps", n_steps)
    axis = check_choice("axis", axis, ("horizontal", "vertical", "diagonal"))
    if not (isinstance(start, (tuple, list)) and len(start) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            and np.isfinite(v) for v in start)):
        raise ValueError(
                f"`start` must be a pair (oy, ox) of finite numbers; got {start!r}.")
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, numbers.Real) or step == 0 or not np.isfinite(step):
        raise ValueError(f"`step` must be a nonzero number; got {step!r}.")
    d = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal": (1, 1)}[axis]
    k = np.arange(n_steps)[:, None]
    offsets = np.asarray(start)[None, :] + k * step * np.asarray(d)[None, :]
    integral = all(_is_int(v) for v in start) and _is_int(step)
    offsets = offsets.astype(np.int64 if integral else np.float64)
    return Schedule("sweep", offsets, _consecutive_pairs(n_steps),
                    params=dict(n_steps=n_steps, axis=axis, start=tuple(start),
                                step=step))


def random_pair_schedule(key, n: int, *, max_offset=32,
                         min_offset=0) -> Schedule:
    """Zhang's consistency protocol: two random offsets per sample.

    Each of the n samples gets two independent offsets drawn uniformly from
    ``{min_offset, ..., max_offset - 1}`` per axis ([0, 32)² by default: 224
    crops of a 256 image). For Chaman & Dokmanić's circular version use
    ``min_offset=-m, max_offset=m`` with `translate`.

    Args:
      key: a single JAX PRNG key, ``jax.random.key(seed)`` or the legacy
        ``jax.random.PRNGKey(seed)``.
      n: positive int; number of samples N.
      max_offset: int or pair; exclusive upper bound per axis.
      min_offset: int or pair; inclusive lower bound per axis.

    Returns:
      `Schedule` with per-sample offsets [N, 2, 2] and pairs [[0, 1]].

    Raises:
      TypeError: if `key` is not a PRNG key.
      ValueError: if `key` is a batch of keys, or `n` or the bounds are
        malformed or empty.

    References:
      Zhang, ICML 2019 (consistency, ``main.py -es`` of adobe/antialiased-cnns).
    """
    n = check_positive_int("n", n)
    key = check_key("key", key)

    def pair(name, v):
        if _is_int(v):
            return int(v), int(v)
        if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(u) for u in v):
            return int(v[0]), int(v[1])
        raise ValueError(f"`{name}` must be an int or a pair of ints; got {v!r}.")

    hi = pair("max_offset", max_offset)
    lo = pair("min_offset", min_offset)
    if hi[0] <= lo[0] or hi[1] <= lo[1]:
        raise ValueError(
                f"`max_offset` {hi} must exceed `min_offset` {lo} on both axes.")
    u = jax.random.randint(key, (n, 2, 2), jnp.asarray(lo), jnp.asarray(hi))
    offsets = np.asarray(u).astype(np.int64)
    return Schedule("random_pair", offsets, np.array([[0, 1]], np.int64),
                    params=dict(n=n, min_offset=lo, max_offset=hi))


def grid_schedule(extent) -> Schedule:
    """Every shift (ty, tx) of a grid, 0 <= ty < Sy, 0 <= tx < Sx.

    Row-major order (frame ``ty * Sx + tx``). With S the network's total
    stride these are all distinct circular shifts modulo S; pass them to
    `translate` (or use ``sigcnn.all_shifts``). Pairs compare every shift with
    the unshifted frame 0.

    Args:
      extent: positive int or pair (Sy, Sx).

    Returns:
      `Schedule` with offsets [Sy * Sx, 2] and pairs [Sy * Sx - 1, 2].

    Raises:
      ValueError: if `extent` is malformed.

    References:
      Michaeli et al., CVPR 2023 (accuracy under all shifts).
    """
    sy, sx = as_pair("extent", extent)
    ty, tx = np.meshgrid(np.arange(sy), np.arange(sx), indexing="ij")
    offsets = np.stack([ty.ravel(), tx.ravel()], axis=1).astype(np.int64)
    t = offsets.shape[0]
    pairs = np.stack([np.zeros(t - 1, np.int64), np.arange(1, t)], axis=1)
    return Schedule("grid", offsets, pairs.reshape(-1, 2).astype(np.int64),
                    params=dict(extent=(sy, sx)))


def scale_schedule(object_size, canvas_size, *, n_pairs: int = 8,
                   step: int = 1) -> Schedule:
    """Object sizes growing by `step` pixels per frame, centred in the canvas.

    Frame k has size ``(h + k * step, w + k * step)`` for k = 0..n_pairs at the
    centred offset ``((Hc - h_k) // 2, (Wc - w_k) // 2)``; pair i compares
    frames i and i + 1 (the object grows by `step` pixels). Pass
    ``schedule.sizes`` and ``schedule.offsets`` to `scale`.

    Args:
      object_size: positive int or pair (h, w); the first frame's size.
      canvas_size: positive int or pair (Hc, Wc).
      n_pairs: positive int; number of consecutive pairs.
      step: positive int; growth per frame in pixels.

    Returns:
      `Schedule` with sizes and offsets [n_pairs + 1, 2] and pairs [n_pairs, 2].

    Raises:
      ValueError: if a size is malformed or the largest object exceeds the
        canvas.

    References:
      Azulay & Weiss, JMLR 2019, "Scale" protocol.
    """
    h, w = as_pair("object_size", object_size)
    big = as_pair("canvas_size", canvas_size)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    step = check_positive_int("step", step)
    k = np.arange(n_pairs + 1)
    sizes = np.stack([h + k * step, w + k * step], axis=1).astype(np.int64)
    if sizes[-1, 0] > big[0] or sizes[-1, 1] > big[1]:
        raise ValueError(
                f"the largest object {tuple(int(v) for v in sizes[-1])} must fit in "
                f"`canvas_size` {big}; reduce `object_size`, `n_pairs` or `step`.")
    offsets = (np.asarray(big)[None, :] - sizes) // 2
    return Schedule("scale", offsets.astype(np.int64), _consecutive_pairs(n_pairs + 1),
                    sizes=sizes,
                    params=dict(object_size=(h, w), canvas_size=big,
                                n_pairs=n_pairs, step=step))
