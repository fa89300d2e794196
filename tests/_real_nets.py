"""Real CNN architectures written outside sigcnn, as pure JAX functions of NHWC x.

A helper module (not collected by pytest) shared by ``tests/test_real_architectures.py``
and ``benchmarks/bench_real_architectures.py``. Every entry of `REGISTRY` builds, with
random weights and in eval mode, a function ``f(x) -> {"feat": NHWC map, "logits":
[N, K]}`` of an NHWC batch x [N, H, W, C]. Weights: torchvision's own initialisation
(``weights=None``) with batch-norm running statistics from one train-mode pass over
random images; Keras initialisers fed from NumPy; Flax / Equinox modules built
abstractly and filled from NumPy (He-normal kernels, random running statistics), all
float32 whether or not jax_enable_x64 is on. ``feat`` is an intermediate spatial map
(total stride 8 where the architecture has one) so that the identity
``f(x) == r2[:, ::sy, ::sx]`` is checked on a spatial output and not only on logits.

Frameworks and routes to a pure JAX function:

* torchvision through torchax: ``torchax.extract_jax(module)`` gives
  ``(weights, jfn)``; f transposes NHWC -> NCHW, calls ``jfn(weights, (x,))`` and
  transposes 4-D outputs back. The intermediate map is captured by a forward hook.
  torch, torchvision and torchax are imported by sigcnn.interop's importer, which
  works around their incompatibilities on CPU torch 2.13.
* Keras 3 applications on the JAX backend: ``model.stateless_call(trainable,
  non_trainable, x, training=False)`` of a functional model whose outputs are the
  tapped layer and the classifier (``classifier_activation=None``: logits); the
  initializers draw from NumPy while the model is built (`_numpy_keras_random`).
* Equinox (``eqx.nn`` layers, channel-first, ``jax.vmap`` over the batch, BatchNorm
  in inference mode with an ``eqx.nn.State``), Flax linen (``model.apply``) and
  Flax NNX (``nnx.split`` / ``nnx.merge``; one net built with ``nnx.vmap`` +
  ``nnx.scan`` over a stack of identical residual blocks).

Variants: ``"zero"`` is the architecture as written. ``"circular"`` pads every
convolution with nonzero padding circularly (torch ``padding_mode="circular"``; flax
``padding="CIRCULAR"``; equinox ``padding_mode="CIRCULAR"``) and replaces padded
pools by an explicit circular pad followed by the unpadded pool; what stays
non-circular (VALID convolutions, ceil-mode pools, adaptive pools on sizes they do not
divide) is listed in the notes. Keras has no circular padding: zero only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
from typing import Callable, NamedTuple

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["REGISTRY", "RealNet", "Spec", "available", "build"]


class RealNet(NamedTuple):
    name: str            # "framework/network[variant]"
    f: Callable          # NHWC x -> {"feat": NHWC, "logits": [N, K]}
    x_shape: tuple       # the input shape it is built and measured for
    notes: str           # construction details, what stays non-circular


@dataclasses.dataclass(frozen=True)
class Spec:
    key: str                     # "framework/network"
    framework: str               # "torchvision", "keras", "equinox", "flax.linen", "flax.nnx"
    builder: Callable            # (variant, seed) -> RealNet
    variants: tuple = ("zero", "circular")
    slow: bool = False           # heavy on a 2-core CPU


_FRAMEWORK_MODULES = {"torchvision": ("torch", "torchvision", "torchax"),
                      "keras": ("keras",), "equinox": ("equinox",),
                      "flax.linen": ("flax",), "flax.nnx": ("flax",)}


def available(key: str) -> str | None:
    """None when `key`'s framework can be imported, else the reason it cannot."""
    spec = REGISTRY[key]
    for mod in _FRAMEWORK_MODULES[spec.framework]:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    if spec.framework == "keras" and os.environ.get("KERAS_BACKEND") != "jax":
        return f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}, not 'jax'"
    return None


def build(key: str, variant: str = "zero", *, seed: int = 0,
          float64: bool = False) -> RealNet:
    """Builds `REGISTRY[key]` in `variant` ("zero" or "circular").

    float64=True (torchvision only; needs jax_enable_x64) casts the weights to
    float64, for comparisons below float32 rounding on ill-conditioned networks.
    """
    spec = REGISTRY[key]
    if variant not in spec.variants:
        raise ValueError(f"variant={variant!r}: {key} supports {spec.variants}")
    if not float64:
        return spec.builder(variant, seed)
    if spec.framework != "torchvision" or not jax.config.jax_enable_x64:
        raise ValueError(f"float64=True needs a torchvision network and "
                         f"jax_enable_x64; got {key} (x64 "
                         f"{jax.config.jax_enable_x64}).")
    return spec.builder(variant, seed, float64=True)


def _to_nhwc(tree):
    return jax.tree.map(lambda a: jnp.transpose(a, (0, 2, 3, 1)) if a.ndim == 4 else a,
                        tree)


def _f32(a):
    return jnp.asarray(np.asarray(a, np.float32))


# --------------------------------------------------------------------------------------
# torchvision through torchax
# --------------------------------------------------------------------------------------


def _torch_stack():
    """(torch, torchvision, torchax) through sigcnn.interop's importer, which repairs
    the CPU torch 2.13 incompatibilities in memory (see sigcnn/interop/_torch_env)."""
    from sigcnn.interop._torch_env import import_torch, import_torchvision

    torch, torchax = import_torch()
    return torch, import_torchvision(), torchax


def _calibrate_bn_torch(model, size: int, rng):
    """Random affine BN parameters; running statistics from one train-mode pass over
    8 random images (cumulative average), so that eval-mode activations stay O(1)
    whatever the initialisation (inception_v3's fixed-std init otherwise reaches
    logits ~1e9)."""
    torch = _torch_stack()[0]
    F = torch.nn.functional
    orig_pad = F.pad

    def wrap_pad(x, pad, mode="constant", value=None):
        # eager torch refuses a circular pad wider than the map; jnp.pad does not
        if mode != "circular":
            return orig_pad(x, pad, mode, value)
        for i in range(len(pad) // 2):
            dim, lo, hi = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
            n = x.shape[dim]
            x = x.index_select(dim, torch.arange(-lo, n + hi) % n)
        return x

    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [m.momentum for m in bns]
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            if m.affine:
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c)))
                m.bias.copy_(torch.from_numpy(0.1 * rng.standard_normal(c)))
            m.reset_running_stats()
            m.momentum = None
        model.train()
        F.pad = wrap_pad
        try:
            model(torch.from_numpy(
                rng.standard_normal((8, 3, size, size)).astype(np.float32)))
        finally:
            F.pad = orig_pad
        model.eval()
    for m, mom in zip(bns, saved):
        m.momentum = mom


def _circularize_torch(model) -> list[str]:
    """Circular padding on every padded Conv2d; padded pools -> CircularPad2d + pool.

    Returns notes on what stays non-circular.
    """
    torch = _torch_stack()[0]
    nn = torch.nn
    kept = set()
    n_conv = n_pool = 0
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            pad = mod.padding
            if isinstance(pad, str):
                if pad == "same":
                    mod.padding_mode = "circular"
                    n_conv += 1
            elif any(p != 0 for p in pad):
                mod.padding_mode = "circular"
                n_conv += 1
            elif any(k > 1 for k in mod.kernel_size):
                kept.add("VALID (padding 0) convs")
    for parent in list(model.modules()):
        for cname, child in list(parent.named_children()):
            if isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)):
                p = child.padding
                p = (p, p) if isinstance(p, int) else tuple(p)
                if child.ceil_mode and child.stride not in (1, (1, 1)):
                    kept.add("ceil_mode pools (implicit end padding)")
                if any(p):
                    if isinstance(child, nn.MaxPool2d):
                        new = nn.MaxPool2d(child.kernel_size, child.stride, 0,
                                           child.dilation, ceil_mode=child.ceil_mode)
                    else:
                        new = nn.AvgPool2d(child.kernel_size, child.stride, 0,
                                           ceil_mode=child.ceil_mode)
                    setattr(parent, cname, nn.Sequential(
                        nn.CircularPad2d((p[1], p[1], p[0], p[0])), new))
                    n_pool += 1
                elif any(k > 1 for k in ((child.kernel_size,) * 2
                                         if isinstance(child.kernel_size, int)
                                         else child.kernel_size)):
                    kept.add("VALID pools")
            elif isinstance(child, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                if child.output_size not in (1, (1, 1)):
                    kept.add(f"adaptive pool to {child.output_size}")
    notes = [f"circular: {n_conv} convs, {n_pool} pools wrapped"]
    if kept:
        notes.append("non-circular: " + ", ".join(sorted(kept)))
    return notes


def _probe_tap(model, xt, target: int):
    """Name of the last module whose output is a 4-D map of spatial size <= target
    (the largest such size), i.e. the end of the stage at total stride ~8."""
    torch = _torch_stack()[0]
    order, hooks = [], []
    for name, mod in model.named_modules():
        if name:
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, n=name: order.append(
                    (n, tuple(o.shape) if torch.is_tensor(o) else None))))
    with torch.no_grad():
        model(xt)
    for h in hooks:
        h.remove()
    sizes = [s[2] for _, s in order if s and len(s) == 4 and s[2] <= target]
    if not sizes:
        return None
    best = max(sizes)
    return [n for n, s in order if s and len(s) == 4 and s[2] == best][-1]


def _torchvision(arch: str, size: int, kwargs=None, note: str = ""):
    def builder(variant: str, seed: int, float64: bool = False) -> RealNet:
        torch, tv, torchax = _torch_stack()
        torch.manual_seed(seed)
        model = getattr(tv.models, arch)(weights=None, **(kwargs or {})).eval()
        notes = [note] if note else []
        # probe before circularizing: eager torch refuses a circular pad wider than
        # the map ("wrapping around more than once"), and module names then change
        tap = _probe_tap(model, torch.zeros(1, 3, size, size), size // 8)
        if variant == "circular":
            notes += _circularize_torch(model)
        _calibrate_bn_torch(model, size, np.random.default_rng(seed))

        class Tapped(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net
                self._store = {}
                if tap is not None:
                    net.get_submodule(tap).register_forward_hook(self._hook)

            def _hook(self, mod, inp, out):
                self._store["feat"] = out.clone()  # later in-place ops must not touch it

            def forward(self, x):
                self._store.clear()
                y = self.net(x)
                return {**self._store, "logits": y}

        tapped = Tapped(model).eval()
        weights, jfn = torchax.extract_jax(tapped)
        notes.append(f"tap feat = {tap}")
        if float64:
            weights = jax.tree.map(
                lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating)
                else a, weights)
            notes.append("float64 weights")

        def f(x):
            return _to_nhwc(jfn(weights, (jnp.transpose(x, (0, 3, 1, 2)),)))

        f.torch_module = tapped  # NCHW torch reference (eager), for cross-checks

        return RealNet(f"torchvision/{arch}[{variant}]", f, (1, size, size, 3),
                       "; ".join(notes))
    return builder


# --------------------------------------------------------------------------------------
# Keras 3 applications (JAX backend)
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _numpy_keras_random(rng):
    """Keras initializers draw from NumPy (by call order) instead of jax.random.

    Under the JAX backend every initializer call compiles one XLA program per shape
    (26 compiles, ~15 s for MobileNet alpha=0.25 on a loaded 2-core machine); the
    patched functions of ``keras.src.backend.jax.random`` are restored on exit.
    """
    from keras.src.backend.jax import random as kr

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return _f32(rng.normal(mean, stddev, shape))

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return _f32(rng.uniform(minval, maxval, shape))

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        v = rng.standard_normal(int(np.prod(shape)) * 2 + 16)
        v = v[np.abs(v) <= 2.0][:int(np.prod(shape))].reshape(shape)
        return _f32(mean + stddev * v)

    saved = kr.normal, kr.uniform, kr.truncated_normal
    kr.normal, kr.uniform, kr.truncated_normal = normal, uniform, truncated_normal
    try:
        yield
    finally:
        kr.normal, kr.uniform, kr.truncated_normal = saved


def _keras_app(arch: str, size: int, kwargs=None):
    def builder(variant: str, seed: int) -> RealNet:
        import keras
        if keras.backend.backend() != "jax":
            raise RuntimeError(f"keras backend is {keras.backend.backend()}, not jax")
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        with _numpy_keras_random(rng):
            model = getattr(keras.applications, arch)(
                weights=None, include_top=True, input_shape=(size, size, 3),
                classifier_activation=None, **(kwargs or {}))
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                c = layer.moving_mean.shape
                layer.moving_mean.assign(0.1 * rng.standard_normal(c).astype("float32"))
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
                if layer.gamma is not None:
                    layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
                if layer.beta is not None:
                    layer.beta.assign(0.1 * rng.standard_normal(c).astype("float32"))
        target = size // 8
        cands = [l for l in model.layers
                 if len(getattr(l.output, "shape", ())) == 4 and l.output.shape[1] <= target]
        best = max(l.output.shape[1] for l in cands)
        tap = [l for l in cands if l.output.shape[1] == best][-1]
        tapped = keras.Model(model.inputs, {"feat": tap.output, "logits": model.outputs[0]})
        tvars = [v.value for v in tapped.trainable_variables]
        ntvars = [v.value for v in tapped.non_trainable_variables]

        def f(x):
            out, _ = tapped.stateless_call(tvars, ntvars, x, training=False)
            return dict(out)

        notes = (f"keras {keras.__version__} stateless_call, classifier_activation=None"
                 f"{''.join(f', {k}={v}' for k, v in (kwargs or {}).items())}; "
                 f"tap feat = {tap.name}")
        return RealNet(f"keras/{arch}[{variant}]", f, (1, size, size, 3), notes)
    return builder


# --------------------------------------------------------------------------------------
# Weights for the JAX-native nets: built abstractly, filled from NumPy (drawing them
# with jax.random compiles one XLA program per shape: ~30 s for a tiny flax net on a
# loaded 2-core machine)
# --------------------------------------------------------------------------------------


def _fill_abstract(tree, rng, *, layout: str):
    """Replaces each ShapeDtypeStruct leaf by float32 NumPy-drawn values, by its name.

    layout "hwio" (flax: conv kernels [.., kh, kw, cin, cout], dense [in, out]) or
    "oihw" (equinox: conv weights [out, in, kh, kw], linear [out, in]). Kernels get
    He-normal values; biases N(0, 0.1); norm scales U(0.5, 1.5); running means
    N(0, 0.1); running variances U(0.5, 1.5).
    """
    def one(path, leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        name = jax.tree_util.keystr(path).lower()
        shape = leaf.shape
        if leaf.dtype == jnp.bool_:
            return jnp.zeros(shape, bool)
        if "var" in name:
            v = rng.uniform(0.5, 1.5, shape)
        elif "scale" in name or (layout == "oihw" and "bn" in name and "weight" in name):
            v = rng.uniform(0.5, 1.5, shape)
        elif "kernel" in name or "weight" in name:
            if layout == "hwio":
                fan_in = int(np.prod(shape[-4:-1])) if len(shape) >= 4 else shape[-2]
            else:
                fan_in = int(np.prod(shape[1:]))
            v = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:  # bias, mean, state means
            v = 0.1 * rng.standard_normal(shape)
        return _f32(v)
    return jax.tree_util.tree_map_with_path(
        one, tree, is_leaf=lambda t: isinstance(t, jax.ShapeDtypeStruct))


# --------------------------------------------------------------------------------------
# Equinox
# --------------------------------------------------------------------------------------


def _equinox_cnn(variant: str, seed: int) -> RealNet:
    import equinox as eqx

    circ = variant == "circular"
    pm = "CIRCULAR" if circ else "ZEROS"

    class Net(eqx.Module):
        conv1: eqx.nn.Conv2d
        bn1: eqx.nn.BatchNorm
        pool1: eqx.nn.MaxPool2d
        conv2: eqx.nn.Conv2d
        bn2: eqx.nn.BatchNorm
        pool2: eqx.nn.AvgPool2d
        conv3: eqx.nn.Conv2d
        head: eqx.nn.Linear

        def __init__(self, key):
            k = jax.random.split(key, 4)
            self.conv1 = eqx.nn.Conv2d(3, 8, 3, padding=1, padding_mode=pm, key=k[0])
            self.bn1 = eqx.nn.BatchNorm(8, axis_name="batch", inference=True,
                                        mode="ema")
            self.pool1 = eqx.nn.MaxPool2d(2, 2)
            self.conv2 = eqx.nn.Conv2d(8, 16, 3, stride=2, padding=1, padding_mode=pm,
                                       key=k[1])
            self.bn2 = eqx.nn.BatchNorm(16, axis_name="batch", inference=True,
                                        mode="ema")
            # circular: explicit wrap pad below, then an unpadded pool
            self.pool2 = eqx.nn.AvgPool2d(3, stride=2, padding=0 if circ else 1)
            self.conv3 = eqx.nn.Conv2d(16, 16, 3, padding=1, padding_mode=pm, key=k[2])
            self.head = eqx.nn.Linear(16, 10, key=k[3])

        def __call__(self, x, state):  # x [C, H, W]
            x, state = self.bn1(self.conv1(x), state)
            x = self.pool1(jax.nn.relu(x))
            x, state = self.bn2(self.conv2(x), state)
            x = jax.nn.relu(x)
            if circ:
                x = jnp.pad(x, ((0, 0), (1, 1), (1, 1)), mode="wrap")
            x = self.pool2(x)
            feat = jax.nn.gelu(self.conv3(x)) + x
            return {"feat": feat, "logits": self.head(feat.mean(axis=(1, 2)))}, state

    model, state = eqx.filter_eval_shape(eqx.nn.make_with_state(Net), jax.random.key(0))
    rng = np.random.default_rng(seed)
    model, state = _fill_abstract((model, state), rng, layout="oihw")
    for bn in (model.bn1, model.bn2):  # running statistics (float32, x64 or not)
        c = bn.input_size
        state = state.set(bn.ema_state_index, (_f32(0.1 * rng.standard_normal(c)),
                                               _f32(rng.uniform(0.5, 1.5, c))))

    def f(x):
        out, _ = jax.vmap(model, axis_name="batch", in_axes=(0, None),
                          out_axes=(0, None))(jnp.transpose(x, (0, 3, 1, 2)), state)
        return _to_nhwc(out)

    notes = ("eqx.nn Conv2d (stride 2), MaxPool2d 2/2, AvgPool2d 3/2, BatchNorm "
             "inference, vmap over batch, CHW inside; total stride 8")
    if not circ:
        notes += "; AvgPool2d padding=1 zero-pads"
    return RealNet(f"equinox/cnn[{variant}]", f, (1, 32, 32, 3), notes)


# --------------------------------------------------------------------------------------
# Flax linen
# --------------------------------------------------------------------------------------


def _linen_resnet(variant: str, seed: int) -> RealNet:
    import flax.linen as nn

    circ = variant == "circular"
    pad = "CIRCULAR" if circ else "SAME"

    def wrap(x, p):
        return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="wrap")

    class Block(nn.Module):
        features: int
        strides: int

        @nn.compact
        def __call__(self, x):
            y = nn.Conv(self.features, (3, 3), strides=self.strides, padding=pad,
                        use_bias=False)(x)
            y = nn.relu(nn.BatchNorm(use_running_average=True)(y))
            y = nn.Conv(self.features, (3, 3), padding=pad, use_bias=False)(y)
            y = nn.BatchNorm(use_running_average=True)(y)
            if self.strides != 1 or x.shape[-1] != self.features:
                x = nn.Conv(self.features, (1, 1), strides=self.strides)(x)
            return nn.relu(x + y)

    class ResNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(8, (3, 3), padding=pad)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=True)(x))
            if circ:
                x = nn.max_pool(wrap(x, 1), (3, 3), strides=(2, 2), padding="VALID")
            else:
                x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            x = Block(8, 1)(x)
            feat = Block(16, 2)(x)
            if circ:
                x = nn.avg_pool(wrap(feat, 1), (3, 3), strides=(2, 2), padding="VALID")
            else:
                x = nn.avg_pool(feat, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                                count_include_pad=False)
            x = Block(32, 1)(x)
            return {"feat": feat, "logits": nn.Dense(10)(x.mean(axis=(1, 2)))}

    model = ResNet()
    x0 = jnp.zeros((1, 32, 32, 3), jnp.float32)
    variables = _fill_abstract(jax.eval_shape(model.init, jax.random.key(0), x0),
                               np.random.default_rng(seed), layout="hwio")

    def f(x):
        return model.apply(variables, x)

    notes = ("nn.Conv strides=2; max_pool 3/2; avg_pool 3/2; BatchNorm running average; "
             "feat at stride 4, total stride 8")
    notes += ("; pools: jnp.pad wrap + VALID" if circ else
              "; padding='SAME' (lax, phase-shifted for stride 2), max_pool SAME (-inf), "
              "avg_pool count_include_pad=False")
    return RealNet(f"flax.linen/resnet_small[{variant}]", f, (1, 32, 32, 3), notes)


# --------------------------------------------------------------------------------------
# Flax NNX
# --------------------------------------------------------------------------------------


def _nnx_pure(cls, seed):
    """Pure f of nnx module `cls(rngs)`, built abstractly and filled from NumPy."""
    from flax import nnx
    graphdef, state = nnx.split(nnx.eval_shape(lambda: cls(nnx.Rngs(0))))
    nnx.replace_by_pure_dict(state, _fill_abstract(
        nnx.to_pure_dict(state), np.random.default_rng(seed), layout="hwio"))

    def f(x):
        # copy=True: fresh Variables at the caller's trace level (without it, nnx.scan
        # inside jax.jit fails with "Cannot extract graph node from different trace
        # level").
        return nnx.merge(graphdef, state, copy=True)(x)
    return f


def _nnx_cnn(variant: str, seed: int) -> RealNet:
    from flax import nnx

    circ = variant == "circular"
    pad = "CIRCULAR" if circ else "SAME"

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(3, 8, (3, 3), strides=2, padding=pad, rngs=rngs)
            self.b1 = nnx.BatchNorm(8, use_running_average=True, rngs=rngs)
            self.c2 = nnx.Conv(8, 16, (3, 3), padding=pad, rngs=rngs)
            self.b2 = nnx.BatchNorm(16, use_running_average=True, rngs=rngs)
            self.c3 = nnx.Conv(16, 16, (3, 3), strides=2, padding=pad,
                               feature_group_count=4, rngs=rngs)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.b1(self.c1(x)))
            x = nnx.relu(self.b2(self.c2(x)))
            if circ:
                x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="wrap")
                x = nnx.max_pool(x, (2, 2), strides=(1, 1), padding="VALID")
            else:
                x = nnx.max_pool(x, (2, 2), strides=(1, 1), padding="SAME")
            feat = nnx.silu(self.c3(x))
            return {"feat": feat, "logits": self.head(feat.mean(axis=(1, 2)))}

    notes = ("nnx.Conv strides=2 (grouped), BatchNorm running average, max_pool 2/1; "
             "total stride 4")
    return RealNet(f"flax.nnx/cnn[{variant}]", _nnx_pure(CNN, seed), (1, 32, 32, 3),
                   notes)


def _nnx_scan(variant: str, seed: int) -> RealNet:
    from flax import nnx

    circ = variant == "circular"
    pad = "CIRCULAR" if circ else "SAME"
    depth, ch = 4, 16

    class Stack(nnx.Module):
        @nnx.split_rngs(splits=depth)
        @nnx.vmap(in_axes=(0, 0))
        def __init__(self, rngs):
            self.conv = nnx.Conv(ch, ch, (3, 3), padding=pad, rngs=rngs)
            self.bn = nnx.BatchNorm(ch, use_running_average=True, rngs=rngs)

        @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
        def __call__(self, x):
            return x + nnx.relu(self.bn(self.conv(x)))

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.stem = nnx.Conv(3, ch, (3, 3), strides=2, padding=pad, rngs=rngs)
            self.stack1 = Stack(rngs)
            self.down = nnx.Conv(ch, ch, (3, 3), strides=2, padding=pad, rngs=rngs)
            self.stack2 = Stack(rngs)
            self.head = nnx.Linear(ch, 10, rngs=rngs)

        def __call__(self, x):
            x = self.stack1(self.stem(x))
            feat = self.stack2(self.down(x))
            return {"feat": feat, "logits": self.head(feat.mean(axis=(1, 2)))}

    notes = (f"two nnx.scan stacks of {depth} identical residual conv+BN blocks "
             "(nnx.vmap-created), stride-2 convs between; total stride 4")
    return RealNet(f"flax.nnx/scan_resnet[{variant}]", _nnx_pure(Net, seed),
                   (1, 32, 32, 3), notes)


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

_TV = [
    # arch, input size, constructor kwargs, slow, note
    ("resnet18", 32, None, False, ""),
    ("vgg11_bn", 32, None, True, "classifier 25088x4096 after AdaptiveAvgPool 1x1 -> 7x7"),
    ("alexnet", 64, None, True, "needs >= 63 px; AdaptiveAvgPool 1x1 -> 6x6"),
    ("squeezenet1_0", 32, None, False, "ceil_mode max pools"),
    ("densenet121", 32, None, True, ""),
    ("mobilenet_v2", 32, None, False, ""),
    ("mobilenet_v3_small", 32, None, False, "squeeze-excitation, hardswish"),
    ("efficientnet_b0", 32, None, False, "squeeze-excitation, SiLU"),
    ("regnet_y_400mf", 32, None, True, "squeeze-excitation, grouped convs"),
    ("convnext_tiny", 32, None, True, "4x4/4 stem, LayerNorm2d via permutes, 7x7 depthwise"),
    ("googlenet", 32, dict(aux_logits=False, init_weights=True), True,
     "ceil_mode max pools"),
    ("inception_v3", 75, dict(aux_logits=False, init_weights=True), True,
     "needs >= 75 px; VALID convs and pools"),
]

_KERAS = [  # arch, input size, constructor kwargs, slow
    ("ResNet50", 32, None, True), ("MobileNetV2", 32, None, True),
    ("EfficientNetB0", 32, None, True), ("DenseNet121", 32, None, True),
    ("VGG16", 32, None, True),
    ("MobileNet", 32, dict(alpha=0.25), False),  # v1, width 0.25: the fast Keras case
]

REGISTRY: dict[str, Spec] = {}
for _arch, _size, _kw, _slow, _note in _TV:
    REGISTRY[f"torchvision/{_arch}"] = Spec(f"torchvision/{_arch}", "torchvision",
                                            _torchvision(_arch, _size, _kw, _note),
                                            slow=_slow)
for _arch, _size, _kw, _slow in _KERAS:
    REGISTRY[f"keras/{_arch}"] = Spec(f"keras/{_arch}", "keras",
                                      _keras_app(_arch, _size, _kw),
                                      variants=("zero",), slow=_slow)
REGISTRY["equinox/cnn"] = Spec("equinox/cnn", "equinox", _equinox_cnn)
REGISTRY["flax.linen/resnet_small"] = Spec("flax.linen/resnet_small", "flax.linen",
                                           _linen_resnet)
REGISTRY["flax.nnx/cnn"] = Spec("flax.nnx/cnn", "flax.nnx", _nnx_cnn)
REGISTRY["flax.nnx/scan_resnet"] = Spec("flax.nnx/scan_resnet", "flax.nnx", _nnx_scan)
