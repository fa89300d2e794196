"""Small networks of the remedies experiment that the model zoo does not have.

`RemedyVGG` is `sigcnn.models.VGG` (same parameters, same convs, GAP head) with
two more ways to subsample:

* ``downsample="ideal"``: MaxPool(2, 1), then an exact low-pass keeping the DFT
  bins strictly below 1/4 cycle per pixel of the map (the Nyquist rate of the
  stride-2 grid that follows; the box mask of `sigcnn.ideal_lowpass`), then
  ``[::2, ::2]``: Zhang's anti-aliased pooling with the binomial filter replaced
  by an ideal one.
* ``keep_strides=k`` (reduced subsampling): the pools of the first k stages
  subsample as usual; the pools of the later stages keep stride 1 and every
  conv and pool after them is dilated by the stride removed in front of it
  (à trous), so the receptive field is the full network's and the last map is
  the full network's undecimated last map r2 sampled at stride 2**k.
  ``keep_strides=0`` is the fully undecimated twin (r == r2).

`RemedyVGG.taps` can also return, for each stage, the signal its subsampling
decimates (``pre=True``): the stride-1 output of the pooling site (after the
blur or the ideal low-pass) on the stage's own grid, whose energy above 1/4
cycle per pixel is the local aliasing of that subsampling (Ribeiro & Schön).

The factories follow ``f(rngs, **options)`` (see ``Recipe.model`` in _common).
The helpers at the end evaluate these networks: the top-1 class at every
circular shift, and FLOPs and inference time per image.
"""

from __future__ import annotations

import collections
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn import ops
from sigcnn.models import VGG
from sigcnn.models.layers import aps_downsample, global_avg_pool

__all__ = ["STAGES3", "RemedyVGG", "all_shift_tops", "analytic_flops", "jitted",
           "measure_costs", "vgg3"]

STAGES3 = ((32,), (64,), (128,))
"""Three stages of one conv each: total stride 8 (a 4 x 4 last map at 32 x 32)."""

MODES = ("max", "blur", "aps", "ideal")


def lowpass_matrix(n: int, dilation: int = 1) -> np.ndarray:
    """The ideal low-pass of cutoff 1/4 on a circular axis of length n, as a matrix.

    ``M @ v`` keeps the DFT bins of v strictly below 1/4 cycle per sample (the
    1-D factor of ``sigcnn.ops.lowpass_mask``). With ``dilation == d`` it filters
    each of the d interleaved sub-sequences ``v[p::d]`` on its own: the
    undecimated form of the low-pass of a sequence sampled at stride d (its DFT
    mask is the sub-sequence's mask tiled d times).

    Args:
      n: length, divisible by `dilation`.
      dilation: positive int.

    Returns:
      float64 array [n, n] (real, symmetric, circulant).
    """
    if n % dilation:
        raise ValueError(f"length {n} is not divisible by the dilation {dilation}")
    m = n // dilation
    mask = np.tile(np.abs(np.fft.fftfreq(m)) < 0.25, dilation)
    eye = np.eye(n)
    return np.real(np.fft.ifft(np.fft.fft(eye, axis=0) * mask[:, None], axis=0))


def tiled_lowpass(x, *, dilation: int = 1):
    """The ideal low-pass of cutoff 1/4 of a map (each polyphase component's).

    With ``dilation == 1`` this equals ``sigcnn.ideal_lowpass(x, cutoff=0.25)``
    (the same separable box mask of the DFT, applied as two matrix products,
    which is much faster than FFTs on CPU, gradients included).

    Args:
      x: float array [N, H, W, C], H and W divisible by `dilation`.
      dilation: positive int.

    Returns:
      float array, shape and dtype of x.
    """
    return separable(x, lowpass_matrix(x.shape[1], dilation),
                     lowpass_matrix(x.shape[2], dilation))


def blur_matrix(n: int, size: int, *, stride: int = 2,
                padding: str = "zero") -> np.ndarray:
    """BlurPool along one axis of length n as a matrix [ceil(n / stride), n].

    Row i holds the binomial taps of ``sigcnn.ops.binomial_filter(size)`` placed
    as ``sigcnn.blur_pool`` places them (``window_pads`` before and after),
    with zero or circular padding, so that ``separable(x, B_h, B_w)`` equals
    ``blur_pool(x, size=size, stride=stride, padding=padding)``.
    """
    taps = ops.binomial_filter(size)
    before, _ = ops.window_pads(size)
    out = np.zeros((-(-n // stride), n))
    for i in range(out.shape[0]):
        for k, t in enumerate(taps):
            j = stride * i - before + k
            if padding == "circular":
                out[i, j % n] += t
            elif 0 <= j < n:
                out[i, j] += t
            elif padding != "zero":
                raise ValueError(f"padding {padding!r}: only zero or circular")
    return out


def separable(x, my, mx):
    """``my`` along H and ``mx`` along W of x [N, H, W, C] (float32 matmuls)."""
    my = jnp.asarray(my, x.dtype)
    mx = jnp.asarray(mx, x.dtype)
    return jnp.einsum("ih,nhwc,jw->nijc", my, x, mx,
                      precision=jax.lax.Precision.HIGHEST)


class RemedyVGG(VGG):
    """A GAP-headed VGG with ideal low-pass pooling and reduced subsampling.

    Args:
      stages: channels of the convs of each stage at width 1.0.
      downsample: ``"max"``, ``"blur"`` (MaxPool(2, 1) + BlurPool), ``"aps"``
        (MaxPool(2, 1) + adaptive polyphase sampling) or ``"ideal"``
        (MaxPool(2, 1) + ideal low-pass + subsampling).
      keep_strides: None (every pool subsamples) or k: only the pools of the
        first k stages do (see the module docstring).
      undecimated: the same network with every stride removed (``keep_strides``
        0), for the à trous twin; not with ``"aps"``.
      **kwargs: the other `sigcnn.models.VGG` options (``width``, ``padding``,
        ``blur_size``, ``in_channels``, ``num_classes``, ``rngs``, ...).
    """

    def __init__(self, stages, *, downsample: str = "max", keep_strides=None,
                 undecimated: bool = False, rngs, **kwargs):
        if downsample not in MODES:
            raise ValueError(f"`downsample` must be one of {MODES}; got {downsample!r}")
        n = len(stages)
        if keep_strides is not None and not 0 <= int(keep_strides) <= n:
            raise ValueError(f"`keep_strides` must be None or in [0, {n}]; got "
                             f"{keep_strides!r}")
        if downsample == "aps" and (undecimated or keep_strides not in (None, n)):
            raise ValueError("adaptive polyphase sampling has no undecimated form")
        kwargs.setdefault("head", "gap")
        super().__init__(stages, downsample="max" if downsample == "ideal" else
                         downsample, rngs=rngs, **kwargs)
        self.mode = downsample
        self.keep = n if keep_strides is None else int(keep_strides)
        if undecimated:
            self.keep = 0
        self.config = tuple((k, v) for k, v in self.config
                            if k not in ("downsample", "undecimated")) + (
            ("downsample", downsample), ("keep_strides", keep_strides),
            ("undecimated", bool(undecimated)))
        self._nominal_strides = tuple(
            (f"block{i + 1}", 2 ** min(i + 1, self.keep)) for i in range(n))

    def _site(self, x, *, decimate: bool, d: int):
        """One pooling site: ``(pre, out)``, pre the signal it decimates.

        A decimating blur or ideal low-pass is computed as two matrix products
        that filter and subsample at once (the same values as filtering at
        stride 1 and slicing, several times faster to train on CPU).
        """
        pad = self.padding
        m = ops.max_pool(x, window=2, stride=1, dilation=d, padding=pad)
        if self.mode in ("max", "aps"):
            pre = m
        elif self.mode == "blur":
            pre = ops.blur_pool(m, size=self.sampling.blur_size, stride=1,
                                dilation=d, padding=pad)
        else:
            pre = tiled_lowpass(m, dilation=d)
        if not decimate:
            return pre, pre
        if self.mode == "max":
            return pre, ops.max_pool(x, window=2, stride=2, padding=pad)
        if self.mode == "aps":
            return pre, aps_downsample(m, stride=2)[0]
        if self.mode == "blur":
            size = self.sampling.blur_size
            my, mx = (blur_matrix(n, size, padding=pad) for n in m.shape[1:3])
        else:
            my, mx = (lowpass_matrix(n)[::2] for n in m.shape[1:3])
        return pre, separable(m, my, mx)

    def taps(self, x, *, pre: bool = False) -> collections.OrderedDict:
        """Outputs of the stages (and, with `pre`, the signals they decimate).

        Args:
          x: float array [N, H, W, in_channels].
          pre: also return ``"preK"``: stage K's pooling output at stride 1 on
            the stage's grid (before its subsampling, or the stage's output
            itself where it does not subsample).

        Returns:
          OrderedDict ``{"block1": ..., "blockK": ...}`` (``"preK"`` before each
          ``"blockK"`` with `pre`).
        """
        x = self._check_input(x)
        out = collections.OrderedDict()
        k, d = 0, 1
        for i, st in enumerate(self.stages):
            for _ in st:
                x = jax.nn.relu(self.convs[k](x, stride=1, dilation=d,
                                              padding=self.padding))
                k += 1
            decimate = i < self.keep
            sig, x = self._site(x, decimate=decimate, d=d)
            if not decimate:
                d *= 2
            if pre:
                out[f"pre{i + 1}"] = sig
            out[f"block{i + 1}"] = x
        return out

    def __call__(self, x):
        feats = self.taps(x)[f"block{len(self.stages)}"]
        return self.fc(global_avg_pool(feats))


def vgg3(rngs, **options) -> RemedyVGG:
    """The three-stage, total-stride-8 `RemedyVGG` on 1-channel 10-class inputs.

    Args:
      rngs: `flax.nnx.Rngs`.
      **options: `RemedyVGG` options (``width``, ``downsample``, ``blur_size``,
        ``keep_strides``, ``padding``, ...).
    """
    options = dict(options)
    options.setdefault("in_channels", 1)
    options.setdefault("num_classes", 10)
    return RemedyVGG(STAGES3, rngs=rngs, **options)


# -- evaluation helpers ---------------------------------------------------------


def all_shift_tops(fn, x, extent: int = 8, chunk: int = 512) -> np.ndarray:
    """Top-1 class of every circular shift (ty, tx) in [0, extent)² of each image.

    Args:
      fn: jitted logits function, images [B, H, W, C] -> [B, K].
      x: images [N, H, W, C].

    Returns:
      int array [N, extent * extent] (row-major over (ty, tx)).
    """
    frames = np.stack([np.roll(x, (ty, tx), axis=(1, 2)) for ty in range(extent)
                       for tx in range(extent)], axis=1)
    flat = frames.reshape((-1,) + x.shape[1:])
    out = []
    for s in range(0, flat.shape[0], chunk):
        piece = flat[s:s + chunk]
        k = piece.shape[0]
        if k < chunk:
            piece = np.concatenate([piece, np.repeat(piece[-1:], chunk - k, axis=0)])
        out.append(np.argmax(np.asarray(fn(piece)), axis=-1)[:k])
    return np.concatenate(out).reshape(x.shape[0], extent * extent)


def jitted(model, method: str | None = None, **kwargs):
    """A jitted function of an NNX module (its state an argument, not a constant).

    Args:
      model: the module.
      method: None (the module's call) or the name of a method, e.g. ``"taps"``.
      **kwargs: static keyword arguments of the call.

    Returns:
      ``f(x)``.
    """
    graphdef, state = nnx.split(model)

    def call(st, x):
        m = nnx.merge(graphdef, st)
        return (m if method is None else getattr(m, method))(x, **kwargs)

    run = jax.jit(call)
    return lambda x: run(state, x)


def measure_costs(archs: dict, *, batch: int = 256, reps: int = 3,
                  rounds: int = 3) -> dict:
    """FLOPs and inference time per image of `vgg3` networks on 32 x 32 inputs.

    Args:
      archs: name -> `vgg3` options; must hold ``"baseline"``.
      batch: images per timed forward pass.
      reps, rounds: the passes are timed `reps` times per network in each of
        `rounds` interleaved rounds (so that load changes hit every network
        alike); the fastest pass counts.

    Returns:
      ``{"batch", "models": {name: {"xla_flops", "analytic_flops",
      "us_per_image", "time_ratio", "flops_ratio", "xla_flops_ratio"}}}``;
      ``xla_flops`` is XLA's cost analysis of the compiled forward pass of the
      batch, divided by `batch`; ratios are to the baseline's.
    """
    x = np.random.default_rng(0).random((batch, 32, 32, 1), dtype=np.float32)
    fns, out = {}, {}
    for name, opts in archs.items():
        model = vgg3(nnx.Rngs(0), **opts)
        graphdef, state = nnx.split(model)
        run = jax.jit(lambda st, z, g=graphdef: nnx.merge(g, st)(z)).lower(
            state, x).compile()
        ca = run.cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        run(state, x).block_until_ready()
        fns[name] = (run, state)
        out[name] = {"xla_flops": float(ca.get("flops", float("nan"))) / batch,
                     "analytic_flops": analytic_flops(model, 32), "seconds": []}
    for _ in range(rounds):                 # interleaved, so load changes hit all alike
        for name, (run, state) in fns.items():
            for _ in range(reps):
                t = time.perf_counter()
                run(state, x).block_until_ready()
                out[name]["seconds"].append(time.perf_counter() - t)
    base = min(out["baseline"]["seconds"])
    for d in out.values():
        d["us_per_image"] = min(d["seconds"]) / batch * 1e6
        d["time_ratio"] = min(d["seconds"]) / base
        d.pop("seconds")
    b = out["baseline"]
    for d in out.values():
        d["flops_ratio"] = d["analytic_flops"] / b["analytic_flops"]
        d["xla_flops_ratio"] = d["xla_flops"] / b["xla_flops"]
    return {"batch": batch, "models": out}


def analytic_flops(model, size: int) -> float:
    """2 x multiply-adds of the convs (3 x 3, every output pixel) and the classifier."""
    flops, res = 0.0, size
    cin = model.in_channels
    for i, st in enumerate(model.stages):
        for c in st:
            flops += 2.0 * 9 * cin * c * res * res
            cin = c
        if i < model.keep:
            res //= 2
    return flops + 2.0 * cin * model.num_classes
