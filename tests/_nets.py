"""Hand-written test networks in four styles: plain lax, Flax linen, Flax NNX, Equinox.

Each builder takes an integer seed and returns ``f(x) -> pytree`` for NHWC inputs
x [N, H, W, C]. Weights come from NumPy's generator (drawing them with jax.random
would compile one XLA program per shape); Flax and Equinox modules are built
abstractly (`eval_shape`) and then filled. The networks are small (a few channels)
so that every test compiles and runs in well under a second.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "aps_downsample",
    "circular_vgg",
    "conv_nchw",
    "conv_nhwc",
    "depthwise",
    "equinox_conv",
    "equinox_net",
    "linen_net",
    "nnx_net",
    "random_circular_net",
    "residual_net",
]

NHWC = ("NHWC", "HWIO", "NHWC")


def _he(rng, shape, fan_in):
    """He-normal float32 weights from a NumPy generator."""
    w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return jnp.asarray(w, jnp.float32)


def _small(rng, shape, scale=0.1):
    return jnp.asarray(scale * rng.standard_normal(shape), jnp.float32)


def _fill(tree, rng):
    """Replaces every ShapeDtypeStruct leaf by random float32 values (scale 0.3)."""
    def one(leaf):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            return jnp.asarray(0.3 * rng.standard_normal(leaf.shape), leaf.dtype)
        return leaf
    return jax.tree.map(one, tree,
                        is_leaf=lambda t: isinstance(t, jax.ShapeDtypeStruct))


def conv_nhwc(x, w, *, stride=1, padding="SAME", dilation=1, groups=1):
    """lax convolution, NHWC / HWIO."""
    s = stride if isinstance(stride, tuple) else (stride, stride)
    r = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    return lax.conv_general_dilated(x, w, s, padding, rhs_dilation=r,
                                    dimension_numbers=NHWC,
                                    feature_group_count=groups)


def conv_nchw(x, w, *, stride=1, padding="SAME"):
    """lax convolution, NCHW / OIHW."""
    s = stride if isinstance(stride, tuple) else (stride, stride)
    return lax.conv_general_dilated(x, w, s, padding,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"))


def wrap(x, lo, hi=None):
    """Circular padding of H and W by (lo, hi) pixels."""
    hi = lo if hi is None else hi
    return jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode="wrap")


def max_pool(x, window=2, stride=2, padding="VALID"):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1),
                             (1, stride, stride, 1), padding)


def avg_pool(x, window=2, stride=2, padding="VALID"):
    s = lax.reduce_window(x, 0.0, lax.add, (1, window, window, 1),
                          (1, stride, stride, 1), padding)
    return s / (window * window)


def aps_downsample(x):
    """Adaptive polyphase sampling by 2 (Chaman & Dokmanic, 2021), written directly.

    Keeps, per image, the polyphase component x[:, py::2, px::2] of largest l2 norm.
    """
    comps = jnp.stack([x[:, py::2, px::2] for py in (0, 1) for px in (0, 1)], axis=1)
    index = jnp.argmax(jnp.sum(comps ** 2, axis=(2, 3, 4)), axis=1)
    return jnp.take_along_axis(comps, index[:, None, None, None, None], axis=1)[:, 0]


def circular_vgg(seed, *, channels=(4, 8), cin=3, classes=5, padding="circular",
                 spatial=False):
    """VGG-like: stages of conv3x3 + ReLU + maxpool 2/2, then GAP + dense.

    padding: "circular" (jnp.pad wrap + VALID conv) or "zero" (explicit pairs).
    """
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    c = cin
    for co in channels:
        ws.append(_he(rng, (3, 3, c, co), 9 * c))
        bs.append(_small(rng, (co,)))
        c = co
    dense = _he(rng, (c, classes), c)
    bias = _small(rng, (classes,))

    def f(x):
        y = x
        for w, b in zip(ws, bs):
            if padding == "circular":
                y = conv_nhwc(wrap(y, 1), w, padding="VALID")
            else:
                y = conv_nhwc(y, w, padding=((1, 1), (1, 1)))
            y = jax.nn.relu(y + b)
            y = max_pool(y)
        logits = jnp.mean(y, axis=(1, 2)) @ dense + bias
        if spatial:
            return {"features": y, "logits": logits}
        return logits

    return f


def residual_net(seed, *, cin=3, width=4, classes=3, circular=True):
    """Stem conv, then a residual block with a strided 1x1 projection shortcut."""
    rng = np.random.default_rng(seed)
    stem = _he(rng, (3, 3, cin, width), 9 * cin)
    c1 = _he(rng, (3, 3, width, 2 * width), 9 * width)
    c2 = _he(rng, (3, 3, 2 * width, 2 * width), 18 * width)
    proj = _he(rng, (1, 1, width, 2 * width), width)
    dense = _he(rng, (2 * width, classes), 2 * width)
    scale = jnp.linspace(0.5, 1.5, 2 * width, dtype=jnp.float32)
    shift = jnp.linspace(-0.2, 0.2, 2 * width, dtype=jnp.float32)

    def c3(y, w, stride):
        if circular:
            return conv_nhwc(wrap(y, 1), w, stride=stride, padding="VALID")
        return conv_nhwc(y, w, stride=stride, padding=((1, 1), (1, 1)))

    def f(x):
        y = jax.nn.relu(c3(x, stem, 1))
        h = jax.nn.gelu(c3(y, c1, 2))
        h = c3(h, c2, 1) * scale + shift          # inference batch norm
        short = conv_nhwc(y, proj, stride=2, padding="VALID")
        out = jax.nn.relu(h + short)
        return {"block": out, "logits": jnp.mean(out, axis=(1, 2)) @ dense}

    return f


def depthwise(seed, *, c=3):
    """Depthwise (feature_group_count=C) strided convs and a pointwise conv."""
    rng = np.random.default_rng(seed)
    dw1 = _he(rng, (3, 3, 1, c), 9)
    dw2 = _he(rng, (5, 5, 1, c), 25)
    pw = _he(rng, (1, 1, c, 2 * c), c)

    def f(x):
        y = conv_nhwc(x, dw1, stride=2, padding="SAME", groups=c)
        y = jax.nn.silu(y)
        y = conv_nhwc(y, dw2, stride=(1, 2), padding=((2, 1), (0, 3)), groups=c,
                      dilation=(1, 2))
        return conv_nhwc(y, pw, padding="VALID")

    return f


def linen_net(seed, *, cin=3, spatial_only=False):
    """Flax linen: Conv, BatchNorm (running averages), max_pool, avg_pool, Dense."""
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.Conv(4, (3, 3), strides=(2, 2), padding="SAME")(x)
            y = nn.BatchNorm(use_running_average=True)(y)
            y = nn.relu(y)
            y = nn.max_pool(y, (3, 3), strides=(1, 1), padding="SAME")
            y = nn.Conv(6, (3, 3), padding="CIRCULAR")(y)
            y = nn.avg_pool(y, (2, 2), strides=(2, 2))
            feats = nn.Conv(5, (3, 3), strides=(3, 3), padding=((1, 1), (1, 1)))(y)
            if spatial_only:
                return feats
            logits = nn.Dense(3)(feats.reshape((feats.shape[0], -1)))
            return {"features": feats, "logits": logits}

    net = Net()
    shapes = jax.eval_shape(net.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 18, 18, cin), jnp.float32))
    variables = _fill(shapes, np.random.default_rng(seed))
    # Running variances must be positive.
    variables["batch_stats"]["BatchNorm_0"]["var"] = (
        1.0 + jnp.abs(variables["batch_stats"]["BatchNorm_0"]["var"]))
    return lambda x: net.apply(variables, x)


def nnx_net(seed, *, cin=3):
    """Flax NNX: nnx.Conv, nnx.BatchNorm in eval mode, linen pooling, nnx.Linear."""
    import flax.linen as nn
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(cin, 4, (3, 3), strides=(1, 2), rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.c2 = nnx.Conv(4, 6, (3, 3), padding="VALID", rngs=rngs)
            self.lin = nnx.Linear(6, 2, rngs=rngs)

        def __call__(self, x):
            y = nnx.relu(self.bn(self.c1(x)))
            y = nn.max_pool(y, (2, 2), strides=(2, 2), padding="SAME")
            y = self.c2(y)
            y = nn.avg_pool(y, (2, 2), strides=(2, 2))
            return {"map": y, "logits": self.lin(jnp.mean(y, axis=(1, 2)))}

    model = nnx.eval_shape(lambda: Net(nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    model = nnx.merge(graphdef, _fill(state, np.random.default_rng(seed)))
    model.bn.var[...] = 1.0 + jnp.abs(model.bn.var[...])
    model.eval()
    return model


def equinox_conv(seed, *args, **kwargs):
    """An eqx.nn.Conv2d with float32 weights from NumPy."""
    import equinox as eqx

    conv = eqx.filter_eval_shape(
        lambda: eqx.nn.Conv2d(*args, key=jax.random.key(0), dtype=jnp.float32,
                              **kwargs))
    return _fill(conv, np.random.default_rng(seed))


def equinox_net(seed, *, cin=3, mode="CIRCULAR"):
    """Equinox Conv2d / MaxPool2d / AvgPool2d on CHW images, vmapped over N."""
    import equinox as eqx

    c1 = equinox_conv(seed, cin, 4, 3, stride=2, padding=1)
    c2 = equinox_conv(seed + 1, 4, 5, 3, stride=1, padding=1, padding_mode=mode)
    mp = eqx.nn.MaxPool2d(2, 2)
    ap = eqx.nn.AvgPool2d(3, 1, padding=1)

    def one(im):  # [C, H, W]
        y = jax.nn.relu(c1(im))
        y = mp(y)
        return ap(c2(y))

    def f(x):
        y = jax.vmap(one)(jnp.transpose(x, (0, 3, 1, 2)))
        return jnp.transpose(y, (0, 2, 3, 1))

    return f


def random_circular_net(seed, spec, *, cin=2):
    """A circular network drawn from `spec` (see test_atrous.arch).

    spec: dict with "stages": list of (kernel, conv_stride, pool) where pool is
    None, ("max", window, stride), ("avg", window, stride) or ("blur", stride);
    "head": "gap" (global average pool + dense) or "spatial".
    """
    rng = np.random.default_rng(seed)
    params = []
    c = cin
    for i, (k, s, pool) in enumerate(spec["stages"]):
        co = 2 + i
        params.append(_he(rng, (k, k, c, co), k * k * c))
        c = co
    dense = _he(rng, (c, 3), c)
    taps = jnp.array([1.0, 2.0, 1.0], jnp.float32)
    blur = jnp.outer(taps, taps) / 16

    def f(x):
        y = x
        for w, (k, s, pool) in zip(params, spec["stages"]):
            y = conv_nhwc(wrap(y, (k - 1) // 2, k // 2), w, stride=s,
                          padding="VALID")
            y = jax.nn.relu(y)
            if pool is None:
                continue
            if pool[0] == "max":
                _, win, st = pool
                y = max_pool(wrap(y, 0, win - st) if win > st else y, win, st)
            elif pool[0] == "avg":
                _, win, st = pool
                y = avg_pool(wrap(y, 0, win - st) if win > st else y, win, st)
            else:
                _, st = pool
                ch = y.shape[-1]
                kern = jnp.tile(blur[:, :, None, None], (1, 1, 1, ch))
                y = conv_nhwc(wrap(y, 1), kern, stride=st, padding="VALID",
                              groups=ch)
        if spec["head"] == "gap":
            return jnp.mean(y, axis=(1, 2)) @ dense
        return y

    return f
