"""Reverse-mode rules of the window ops in :mod:`sigcnn.ops`, fast on XLA:CPU.

The forward computations are the plain lax ones; only the backward passes are
written out, because XLA:CPU's generic transposes of these ops are several times
slower than the forward passes, and training on CPU spends most of its time in
them. Each rule computes the same gradient as JAX's own transpose, up to float
rounding of the summation order (tested in ``tests/test_ops.py``):

* `conv_valid`: the input gradient is lax's (a transposed convolution, which
  XLA:CPU runs as fast as the forward pass); the kernel gradient is one
  ``[P, C_in]^T @ [P, C_out]`` matrix product per kernel tap (P = N*Ho*Wo),
  instead of XLA's backward-filter convolution, 2-3x slower on CPU, once P is
  at least `MIN_POSITIONS` (below it, and for grouped convolutions, lax's rule).
* `max_window`: each window's cotangent goes to its first maximal tap in
  row-major order (the select-and-scatter rule), from strided slices, compares
  and pads; JAX has no rule for dilated windows at all.
* `tap_sum`: a 1-D FIR filter by shifted slices. Its transpose is the same
  filter with reversed taps on the zero-padded cotangent (one pad and a fused
  sum), instead of one pad per tap.

The functions are `jax.custom_vjp`, so forward-mode differentiation
(``jax.jvp``, ``jax.jacfwd``) through them raises JAX's own TypeError;
reverse mode, ``vmap``, ``jit`` and higher-order ``grad`` work. The à trous
interpreter inlines them and sees the plain lax primitives.

Measured (``benchmarks/train_step.py``, 2-core CPU, f32): one Adam step of
`vgg_small` (width 0.25, 64x64 MNIST, batch 64) is 1.6-1.9x faster than with
JAX's default transposes with ``downsample="max"`` or ``"aps"``, 2.2-2.4x with
``"blur"``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["MIN_POSITIONS", "conv_valid", "max_window", "tap_sum"]

_DIMS = ("NHWC", "HWIO", "NHWC")
# Output positions N*Ho*Wo from which the per-tap matmuls beat XLA:CPU's
# backward-filter convolution (measured 1.9-2.3x at 16,384-262,144, no gain at
# 4,096 and below); smaller convolutions keep lax's rule, which also compiles
# to a smaller program.
MIN_POSITIONS = 16384


def _lax_conv(xp, kernel, strides, dilation, groups):
    return lax.conv_general_dilated(
        xp, kernel, window_strides=strides, padding="VALID",
        rhs_dilation=dilation, dimension_numbers=_DIMS,
        feature_group_count=groups, precision=lax.Precision.HIGHEST)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_valid(xp, kernel, strides, dilation, groups):
    """VALID cross-correlation of an already padded NHWC input with an HWIO kernel.

    Args:
      xp: float array [N, Hp, Wp, C_in], padded.
      kernel: float array [kh, kw, C_in / groups, C_out], same dtype as `xp`.
      strides: (sh, sw).
      dilation: (dh, dw) of the kernel taps.
      groups: feature group count.

    Returns:
      array [N, Ho, Wo, C_out], ``lax.conv_general_dilated`` at highest precision.
    """
    return _lax_conv(xp, kernel, strides, dilation, groups)


def _conv_fwd(xp, kernel, strides, dilation, groups):
    return _lax_conv(xp, kernel, strides, dilation, groups), (xp, kernel)


def _conv_bwd(strides, dilation, groups, res, g):
    xp, kernel = res
    conv_x = lambda a: _lax_conv(a, kernel, strides, dilation, groups)  # noqa: E731
    gx, = jax.vjp(conv_x, xp)[1](g)
    n, ho, wo, _ = g.shape
    if groups != 1 or n * ho * wo < MIN_POSITIONS:   # lax's own kernel rule
        conv_k = lambda b: _lax_conv(xp, b, strides, dilation, groups)  # noqa: E731
        return gx, jax.vjp(conv_k, kernel)[1](g)[0]
    kh, kw, cin, cout = kernel.shape
    g2 = g.reshape(n * ho * wo, cout)
    acc = jnp.promote_types(kernel.dtype, jnp.float32)   # f32 sums for bf16/f16
    taps = [lax.dot_general(xs.reshape(n * ho * wo, cin), g2,
                            (((0,), (0,)), ((), ())),
                            precision=lax.Precision.HIGHEST,
                            preferred_element_type=acc)
            for _, _, xs in _window_taps(xp, (n, ho, wo, cin), (1, kh, kw, 1),
                                         (1, *strides, 1), (1, *dilation, 1))]
    gk = jnp.stack(taps).reshape(kernel.shape).astype(kernel.dtype)
    return gx, gk


conv_valid.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_window(xp, dims, strides, wdil):
    """VALID max over (dilated) windows: ``lax.reduce_window`` with `lax.max`.

    Args:
      xp: float array [N, Hp, Wp, C], padded.
      dims, strides, wdil: window shape, strides and window dilation, each a
        4-tuple over (N, H, W, C).

    Returns:
      the pooled array.
    """
    return lax.reduce_window(xp, np.array(-np.inf, xp.dtype), lax.max, dims,
                             strides, "VALID", window_dilation=wdil)


def _window_taps(xp, y_shape, dims, strides, wdil):
    # yields (start, limit, tap): tap[n, p, q, c] = xp[n, p*sh + i*dh, q*sw + j*dw, c]
    n, ho, wo, c = y_shape
    for i in range(dims[1]):
        for j in range(dims[2]):
            start = (0, i * wdil[1], j * wdil[2], 0)
            limit = (n, start[1] + (ho - 1) * strides[1] + 1,
                     start[2] + (wo - 1) * strides[2] + 1, c)
            yield start, limit, lax.slice(xp, start, limit, strides)


def _max_fwd(xp, dims, strides, wdil):
    y = max_window(xp, dims, strides, wdil)
    return y, (xp, y)


def _max_bwd(dims, strides, wdil, res, g):
    xp, y = res
    grad = jnp.zeros_like(xp)
    free = jnp.ones(y.shape, bool)           # windows whose maximum is not yet taken
    for start, limit, tap in _window_taps(xp, y.shape, dims, strides, wdil):
        hit = free & (tap == y)
        free = free & ~hit
        widths = [(start[a], xp.shape[a] - limit[a], strides[a] - 1)
                  for a in range(4)]
        grad = grad + lax.pad(jnp.where(hit, g, 0).astype(xp.dtype),
                              np.array(0, xp.dtype), widths)
    return (grad,)


max_window.defvjp(_max_fwd, _max_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def tap_sum(x, taps, axis, dilation, n_out):
    """``y[..., i, ...] = sum_j taps[j] * x[..., i + dilation*j, ...]`` along `axis`.

    Args:
      x: float array; ``x.shape[axis] >= n_out + dilation * (len(taps) - 1)``.
      taps: tuple of Python floats.
      axis: the filtered axis.
      dilation: spacing of the taps.
      n_out: output length along `axis`.

    Returns:
      array of `x`'s shape with ``n_out`` along `axis`.
    """
    out = None
    for j, t in enumerate(taps):
        sl = lax.slice_in_dim(x, j * dilation, j * dilation + n_out, 1, axis)
        term = sl * jnp.asarray(t, x.dtype)
        out = term if out is None else out + term
    return out


def _tap_fwd(x, taps, axis, dilation, n_out):
    return tap_sum(x, taps, axis, dilation, n_out), x.shape[axis]


def _tap_bwd(taps, axis, dilation, n_out, length, g):
    # x[m] receives taps[j] * g[m - dilation*j]: the reversed filter on g padded
    # by dilation*(K-1) in front and to the input's length behind.
    widths = [(0, 0, 0)] * g.ndim
    widths[axis] = (dilation * (len(taps) - 1), length - n_out, 0)
    gp = lax.pad(g, np.array(0, g.dtype), widths)
    return (tap_sum(gp, tuple(reversed(taps)), axis, dilation, length),)


tap_sum.defvjp(_tap_fwd, _tap_bwd)
