"""Three exact forms of an undecimated (stride-1, dilated) convolution.

The interpreter's convolution rule produces a stride-1 convolution whose kernel
taps are dilated by D = d * r along each undecimated axis (d the input's stride, r
the layer's own dilation). That one convolution can be computed in three ways,
equal up to the order of the float summation:

* ``"dilated"``: the convolution primitive with rhs dilation D, as emitted.
* ``"polyphase"`` (space-to-batch): positions p + D m of an axis whose padded
  length is a multiple of D form D phase images, and a tap spacing of D within
  the map is a spacing of 1 within each phase. So the dilated convolution is a
  dense convolution over the batch of D_h x D_w phase images, interleaved back
  afterwards (the map is zero-extended to a multiple of D first; the extra
  outputs are dropped).
* ``"matmul"``: the convolution written as matrix products: the input windows of
  a group of taps (concatenated along the channels) times the matching rows of
  the kernel, summed over the tap groups. A dilation only moves where each
  tap's window starts, so it costs nothing.

Which form runs is :class:`sigcnn.atrous.Tiling`'s ``form``. The default
``"auto"`` picks per backend (:func:`choose`):

* CPU: "matmul" for convolutions with at least `AUTO_MATMUL_CHANNELS` input x
  output channels per group, "dilated" below. XLA:CPU's convolution kernel copies
  the input windows of each block of outputs into a freshly mapped buffer (252
  MiB per block of rows of an undecimated 512-channel VGG16 layer at 224 x 224,
  58 MB per 56 x 56 tile), paged in anew every time; the dense convolution of the
  polyphase form does the same. Undecimated VGG16 ran about three times faster
  with its large layers as matrix products (benchmarks/README.md), while its
  64-channel layers were faster as convolutions.
* Other backends (GPU, TPU): "dilated". Their convolution libraries run a
  dilated convolution as one call that reads the windows in place, so neither
  rewrite removes work there, and both add copies of the activations (the
  phase transposes, or one window copy per tap group). Not measured here: pass
  ``Tiling(form="polyphase")`` to try the dense form on such a backend.

References:
    Vaidyanathan, Multirate Systems and Filter Banks, Prentice Hall, 1993
    (polyphase decomposition).
    Chellapilla, Puri and Simard, "High performance convolutional neural networks
    for document processing", IWFHR 2006 (convolution as matrix products).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["AUTO_MATMUL_CHANNELS", "FORMS", "choose", "from_phases", "matmul_conv",
           "to_phases"]

#: The accepted values of `Tiling.form`.
FORMS = ("auto", "dilated", "polyphase", "matmul")

#: "auto" on the CPU uses the matmul form from this many input x output channels
#: per group (128 x 128): VGG16's 64-channel layers ran faster as convolutions,
#: its 128- to 512-channel layers about twice to four times faster as products.
AUTO_MATMUL_CHANNELS = 128 * 128

#: The matmul form concatenates the windows of ceil(this / input channels) taps
#: into one product, so that small channel counts still give long products.
_MIN_CONTRACTION = 256


def _plain(params, nsp) -> bool:
    """Stride 1, no input dilation and no batch groups on every spatial axis (the
    matmul form's requirement)."""
    return (params["batch_group_count"] == 1
            and tuple(params["window_strides"]) == (1,) * nsp
            and tuple(params["lhs_dilation"] or (1,) * nsp) == (1,) * nsp)


def choose(form: str, backend: str, lhs_shape, rhs_shape, dtype, params,
           axes) -> str:
    """The form one undecimated convolution runs in.

    Args:
      form: `Tiling.form` (one of `FORMS`).
      backend: the backend the program runs on (``jax.default_backend()``).
      lhs_shape, rhs_shape, dtype: the operands' shapes and dtype.
      params: the convolution's parameters (any dimension numbers).
      axes: (input axis, output axis, kernel extent - 1) of each undecimated axis.

    Returns:
      "dilated", "polyphase" or "matmul". A form that does not apply to this
      convolution gives "dilated": "polyphase" needs no batch groups and an
      undecimated axis with a dilated kernel of more than one tap; "matmul" needs
      a floating dtype, stride 1 and no input dilation on every spatial axis, no
      batch groups, and more than one kernel tap. "auto" is "matmul" on the CPU
      for at least `AUTO_MATMUL_CHANNELS` input x output channels per group and
      "dilated" otherwise.

    Examples:
      >>> from jax import lax
      >>> dn = lax.conv_dimension_numbers((1, 8, 8, 256), (3, 3, 256, 256),
      ...                                 ("NHWC", "HWIO", "NHWC"))
      >>> p = dict(window_strides=(1, 1), padding=((0, 0), (0, 0)),
      ...          lhs_dilation=(1, 1), rhs_dilation=(2, 2), dimension_numbers=dn,
      ...          feature_group_count=1, batch_group_count=1)
      >>> axes = [(1, 1, 4), (2, 2, 4)]
      >>> [choose("auto", b, (1, 12, 12, 256), (3, 3, 256, 256), "float32", p,
      ...         axes) for b in ("cpu", "gpu")]
      ['matmul', 'dilated']
    """
    dn = params["dimension_numbers"]
    taps = int(np.prod([rhs_shape[a] for a in dn.rhs_spec[2:]]))
    if form == "auto":
        if backend != "cpu":
            return "dilated"
        groups = params["feature_group_count"]
        channels = (rhs_shape[dn.rhs_spec[1]]
                    * rhs_shape[dn.rhs_spec[0]] // groups)
        form = "matmul" if channels >= AUTO_MATMUL_CHANNELS else "dilated"
    if form == "matmul":
        ok = (taps > 1 and jnp.issubdtype(dtype, jnp.floating)
              and _plain(params, len(lhs_shape) - 2))
        return "matmul" if ok else "dilated"
    if form == "polyphase":
        j_of = {a: j for j, a in enumerate(dn.lhs_spec[2:])}
        rdil = params["rhs_dilation"] or (1,) * len(j_of)
        ok = params["batch_group_count"] == 1 and any(
            rdil[j_of[a]] > 1 and eff > 0 for a, _, eff in axes)
        return "polyphase" if ok else "dilated"
    return form


def to_phases(u, params, axes):
    """The polyphase form of a channels-last convolution (NHWC / HWIO / NHWC).

    Args:
      u: input [N, *spatial, C].
      params: the convolution's parameters; along `axes` stride 1, no input
        dilation, rhs dilation D.
      axes: (input axis, output axis, kernel extent - 1) of each undecimated axis.

    Returns:
      (phases, params, axes, undo): `phases` is [N * prod(D), *spatial / D, C]
      with the padding of `axes` applied and rhs dilation 1 in the returned
      `params` along them; convolving it and passing the result to
      ``from_phases(out, undo)`` gives the original convolution's output.
    """
    nsp = u.ndim - 2
    pads = [tuple(p) for p in params["padding"]]
    rdil = list(params["rhs_dilation"] or (1,) * nsp)
    n = u.shape[0]
    factors = [1] * nsp
    cfg = [(0, 0, 0)] * u.ndim
    lengths = [None] * nsp
    new_axes = []
    for a, o, eff in axes:
        j = a - 1
        length = u.shape[a] + pads[j][0] + pads[j][1] - eff   # output length
        lengths[j] = length
        f = rdil[j] if eff > 0 else 1
        padded = u.shape[a] + pads[j][0] + pads[j][1]
        cfg[a] = (pads[j][0], pads[j][1] + (-padded) % f, 0)
        pads[j] = (0, 0)
        factors[j] = f
        rdil[j] = 1
        new_axes.append((a, o, eff // f))
    u = lax.pad(u, jnp.zeros((), u.dtype), cfg)
    # [N, ..., L_j, ...] -> [N, ..., L_j / f_j, f_j, ...] -> phases in front.
    split = [n]
    for j in range(nsp):
        split += [u.shape[1 + j] // factors[j], factors[j]]
    split.append(u.shape[-1])
    u = u.reshape(split)
    phase_axes = [2 + 2 * j for j in range(nsp)]
    keep = [1 + 2 * j for j in range(nsp)]
    u = jnp.transpose(u, phase_axes + [0] + keep + [len(split) - 1])
    u = u.reshape((int(np.prod(factors)) * n,) + tuple(
        split[k] for k in keep) + (split[-1],))
    undo = (n, tuple(factors), tuple(lengths))
    return u, dict(params, padding=tuple(pads), rhs_dilation=tuple(rdil)), \
        new_axes, undo


def from_phases(out, undo):
    """Interleaves the phase outputs of `to_phases` back into one map.

    Args:
      out: [N * prod(D), *spatial', O], the dense convolution of the phases.
      undo: the last value `to_phases` returned.

    Returns:
      [N, *spatial, O]: along each undecimated axis the original output length.
    """
    n, factors, lengths = undo
    nsp = out.ndim - 2
    sp = out.shape[1:-1]
    out = out.reshape(tuple(factors) + (n,) + tuple(sp) + (out.shape[-1],))
    # [f_1..f_k, N, s_1..s_k, O] -> [N, s_1, f_1, ..., s_k, f_k, O]
    perm = [nsp]
    for j in range(nsp):
        perm += [nsp + 1 + j, j]
    perm.append(2 * nsp + 1)
    out = jnp.transpose(out, perm)
    out = out.reshape((n,) + tuple(s * f for s, f in zip(sp, factors))
                      + (out.shape[-1],))
    limit = [n] + [lengths[j] if lengths[j] is not None else out.shape[1 + j]
                   for j in range(nsp)] + [out.shape[-1]]
    return lax.slice(out, [0] * out.ndim, limit)


def matmul_conv(u, rhs, params):
    """A channels-last convolution (NHWC / HWIO / NHWC) as matrix products.

    Args:
      u: input [N, *spatial, G * C].
      rhs: kernel [*K, C, G * O].
      params: the convolution's parameters: stride 1, no input dilation and no
        batch groups on every spatial axis; any padding, rhs dilation and
        feature groups G.

    Returns:
      [N, *spatial', G * O], the convolution's output, summed in float32 or wider
      (the product of each tap group is one `dot_general` at the convolution's
      precision).
    """
    nsp = u.ndim - 2
    pads = [tuple(p) for p in params["padding"]]
    if any(p != (0, 0) for p in pads):
        cfg = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
        u = lax.pad(u, jnp.zeros((), u.dtype), cfg)
    rdil = list(params["rhs_dilation"] or (1,) * nsp)
    ksize = rhs.shape[:nsp]
    out_sp = [u.shape[1 + j] - rdil[j] * (ksize[j] - 1) for j in range(nsp)]
    groups = params["feature_group_count"]
    c, o_all = rhs.shape[-2], rhs.shape[-1]
    o = o_all // groups
    n = u.shape[0]
    out_dtype = params.get("preferred_element_type") or u.dtype
    acc = jnp.promote_types(out_dtype, jnp.float32)
    precision = params.get("precision")
    taps = list(np.ndindex(*ksize))
    per = max(1, min(len(taps), -(-_MIN_CONTRACTION // c)))
    total = None
    for start in range(0, len(taps), per):
        chunk = taps[start:start + per]
        wins = [lax.slice(u, (0,) + tuple(t[j] * rdil[j] for j in range(nsp)) + (0,),
                          (n,) + tuple(t[j] * rdil[j] + out_sp[j] for j in range(nsp))
                          + (u.shape[-1],)) for t in chunk]
        w = jnp.stack([rhs[t] for t in chunk])            # [T, C, G * O]
        if groups == 1:
            lhs = wins[0] if len(wins) == 1 else jnp.concatenate(wins, axis=-1)
            part = lax.dot_general(
                lhs, w.reshape(len(chunk) * c, o_all),
                (((u.ndim - 1,), (0,)), ((), ())), precision=precision,
                preferred_element_type=acc)
        else:
            # [N, *S', T, G, C] x [T, C, G, O] -> [G, N, *S', O], batched over G.
            lhs = jnp.stack(wins, axis=-2).reshape(
                (n, *out_sp, len(chunk), groups, c))
            part = lax.dot_general(
                lhs, w.reshape(len(chunk), c, groups, o),
                (((nsp + 1, nsp + 3), (0, 1)), ((nsp + 2,), (2,))),
                precision=precision, preferred_element_type=acc)
            part = jnp.moveaxis(part, 0, -2).reshape((n, *out_sp, o_all))
        total = part if total is None else total + part
    return total.astype(out_dtype)
