"""EQ-T PSNR between feature maps, over the pixels a translation keeps defined."""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import as_pair, check_finite, check_float_array, is_traced
from sigcnn.metrics._logits import _check_reduce, _float_dtype

__all__ = ["eqt_psnr", "translation_mask"]


def _as_shift(name: str, shift: Any) -> tuple[int, int]:
    ok = isinstance(shift, (tuple, list)) and len(shift) == 2 and all(
            isinstance(v, (numbers.Integral, np.integer))
            and not isinstance(v, (bool, np.bool_)) for v in shift)
    if not ok:
        raise ValueError(
                f"`{name}` must be a pair (ty, tx) of ints; got {shift!r}.")
    return int(shift[0]), int(shift[1])


def translation_mask(size, shift, *, margin: int = 0):
    """Pixels that stay defined after a non-circular translation.

    A translation by t = (ty, tx) with zero fill moves pixel i to i + t; output
    pixels whose source i - t lies outside the map are invalid. `margin` drops
    that many more pixels next to the invalid band and next to the map's own
    border (e.g. the receptive-field radius of a network with zero padding).

    Args:
      size: positive int or pair (H, W); the map size.
      shift: pair (ty, tx) of ints; the translation, in the ``jnp.roll``
        direction.
      margin: non-negative int; extra pixels to drop on each side.

    Returns:
      bool array, shape [H, W]; True where the pixel is valid.

    Raises:
      ValueError: if `size`, `shift` or `margin` is malformed.

    References:
      Karras et al., NeurIPS 2021, EQ-T (masked MSE over valid pixels).
    """
    h, w = as_pair("size", size)
    ty, tx = _as_shift("shift", shift)
    if isinstance(margin, (bool, np.bool_)) or not isinstance(
            margin, (numbers.Integral, np.integer)) or margin < 0:
        raise ValueError(f"`margin` must be a non-negative int; got {margin!r}.")
    m = int(margin)
    rows = np.arange(h)
    cols = np.arange(w)
    row_ok = (rows >= max(ty, 0) + m) & (rows < h + min(ty, 0) - m)
    col_ok = (cols >= max(tx, 0) + m) & (cols < w + min(tx, 0) - m)
    return jnp.asarray(row_ok[:, None] & col_ok[None, :])


def eqt_psnr(features_a, features_b, *, mask=None, peak=None,
             reduce: bool = True):
    """EQ-T-style PSNR in dB between two feature maps, over valid pixels.

    ``PSNR = 10 * log10(peak**2 / MSE)``, with MSE the mean of
    ``(features_a - features_b)**2`` over the entries where `mask` is True.
    Typically features_a = translate(g(x)) and features_b = g(translate(x)).

    Peak convention: `peak` is the peak-to-peak range of the signal. StyleGAN3
    compares images in [-1, 1] and uses ``20 * log10(2) - 10 * log10(MSE)``,
    i.e. ``peak=2``. Feature maps have no fixed range, so by default
    (``peak=None``) the range ``max - min`` of `features_a` over its valid
    entries in the whole batch is used, one value for all samples. Pass a
    number to fix it (e.g. to compare models on the same scale).

    With ``reduce=True`` the MSE is pooled over all samples before the log
    (as StyleGAN3 accumulates it over its 50k samples); with ``reduce=False``
    each sample gets its own PSNR. A zero MSE gives ``inf``. With
    ``peak=None``, a `features_a` that is constant over its valid entries
    (range 0) raises ``ValueError`` instead of returning ``-inf`` (concrete
    arrays only).

    Args:
      features_a: float array, shape [N, ...], e.g. [N, H, W, C].
      features_b: float array, same shape as `features_a`.
      mask: None (all entries valid) or a bool array broadcastable to the
        features; for 4-D features also [H, W] or [N, H, W] (read as
        [1, H, W, 1] and [N, H, W, 1]). See `translation_mask`.
      peak: None or a positive float; the signal range.
      reduce: if True one pooled PSNR; if False a PSNR per sample.

    Returns:
      A float scalar, or with ``reduce=False`` a float array of shape [N].

    Raises:
      TypeError: if the features are not float arrays, `mask` is not boolean
        or `reduce` not a bool.
      ValueError: if the shapes differ, `mask` does not broadcast, it selects
        no entry of some sample, `peak` is not positive, the features hold
        NaN/Inf, or `peak` is None and `features_a` is constant.

    References:
      Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021
      (EQ-T metric, ``metrics/equivariance.py`` of NVlabs/stylegan3).
    """
    a = check_float_array("features_a", features_a)
    b = check_float_array("features_b", features_b)
    reduce = _check_reduce(reduce)
    if a.shape != b.shape:
        raise ValueError(
                f"`features_a` and `features_b` must have the same shape; got "
                f"{tuple(a.shape)} and {tuple(b.shape)}.")
    if a.ndim < 1 or a.size == 0:
        raise ValueError(
                f"`features_a` must have shape [N, ...] with N >= 1 and no empty "
                f"axis; got {tuple(a.shape)}.")
    if mask is None:
        m = jnp.ones(a.shape, bool)
    else:
        if not hasattr(mask, "dtype"):
            mask = np.asarray(mask)
        if np.dtype(mask.dtype) != np.bool_:
            raise TypeError(
                    f"`mask` must be a bool array (True = valid); got dtype "
                    f"{np.dtype(mask.dtype).name}.")
        mk = jnp.asarray(mask)
        if a.ndim == 4 and mk.ndim == 2:
            mk = mk[None, :, :, None]
        elif a.ndim == 4 and mk.ndim == 3:
            mk = mk[..., None]
        try:
            if mk.ndim != a.ndim:
                raise ValueError
            m = jnp.broadcast_to(mk, a.shape)
        except ValueError:
            raise ValueError(
                    f"`mask` of shape {tuple(np.shape(mask))} does not broadcast to "
                    f"the features' shape {tuple(a.shape)}; use a bool array of the "
                    f"same rank, or [H, W] / [N, H, W] for [N, H, W, C] "
                    f"features.") from None
        try:
            counts = np.asarray(m).reshape(a.shape[0], -1).sum(axis=1)
        except Exception:  # traced mask
            counts = None
        if counts is not None and (counts == 0).any():
            raise ValueError(
                    f"`mask` selects no entry in sample(s) "
                    f"{np.flatnonzero(counts == 0).tolist()}; the PSNR is undefined "
                    f"there.")
    if peak is not None:
        if isinstance(peak, (bool, np.bool_)) or not isinstance(
                peak, numbers.Real) or not np.isfinite(peak) or peak <= 0:
            raise ValueError(f"`peak` must be None or a positive float; got {peak!r}.")
    check_finite("features_a", a)
    check_finite("features_b", b)
    dt = _float_dtype(a)
    if peak is None and not (is_traced(a) or is_traced(m)):
        span = float(jnp.max(jnp.where(m, a, -jnp.inf))
                     - jnp.min(jnp.where(m, a, jnp.inf)))
        if span == 0:
            raise ValueError(
                    "`features_a` is constant over the valid entries, so its range "
                    "(the default `peak`) is 0 and the PSNR is undefined; pass "
                    "`peak` (the signal range, e.g. peak=2 for images in [-1, 1]).")
    return _psnr_kernel(a.astype(dt), b.astype(dt), m,
                        None if peak is None else jnp.asarray(peak, dt), reduce)


@functools.partial(jax.jit, static_argnames=("reduce",))
def _psnr_kernel(a, b, m, peak, reduce):
    if peak is None:
        hi = jnp.max(jnp.where(m, a, -jnp.inf))
        lo = jnp.min(jnp.where(m, a, jnp.inf))
        peak = hi - lo
    sq = jnp.where(m, (a - b) ** 2, 0).reshape(a.shape[0], -1)
    cnt = m.reshape(a.shape[0], -1).sum(axis=1).astype(a.dtype)
    if reduce:
        mse = jnp.sum(sq) / jnp.sum(cnt)
    else:
        mse = jnp.sum(sq, axis=1) / cnt
    return 10.0 * jnp.log10(peak ** 2 / mse)
