"""Tests of the model zoo: parameter counts, shapes, exact shift identities."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax import lax

from sigcnn import models
from sigcnn.models import layers

F64 = jnp.float64
MODES = ("max", "stride", "blur", "aps", "none")


# ----------------------------------------------------------------------------
# Shared models (built once; other modes come from `models.variant`).


def _filled(make, *, seed):
    """Builds a model abstractly and fills it with float64 NumPy draws.

    No per-shape initialiser has to compile, and batch norm gets non-trivial
    running statistics and affine parameters. Returns the model in eval mode.
    """
    net = nnx.eval_shape(make)
    rng = np.random.default_rng(seed)

    def put(var, arr):
        var.set_value(jnp.asarray(arr, F64))

    for _, mod in nnx.iter_modules(net):
        if isinstance(mod, layers.Conv):
            kh, kw, cin, cout = mod.kernel.shape
            put(mod.kernel, rng.normal(0, np.sqrt(2 / (kh * kw * cin)),
                                       (kh, kw, cin, cout)))
            if mod.bias is not None:
                put(mod.bias, rng.normal(0, 0.1, cout))
        elif isinstance(mod, nnx.Linear):
            cin, cout = mod.kernel.shape
            put(mod.kernel, rng.normal(0, np.sqrt(1 / cin), (cin, cout)))
            put(mod.bias, rng.normal(0, 0.1, cout))
        elif isinstance(mod, nnx.BatchNorm):
            c = mod.mean.shape[0]
            put(mod.mean, rng.normal(0, 0.1, c))
            put(mod.var, rng.uniform(0.5, 2.0, c))
            put(mod.scale, rng.uniform(0.5, 1.5, c))
            put(mod.bias, rng.normal(0, 0.1, c))
    leaves = jax.tree.leaves(nnx.state(net))
    assert all(isinstance(a, jax.Array) and a.dtype == F64 for a in leaves)
    net.eval()
    return net


def _bottleneck_tiny(**kw):
    """Test-only bottleneck ResNet: stem conv s2 + pool, two stages, stride 8."""
    return models.ResNet("bottleneck", (1, 1), widths=(2, 2), stem_channels=4,
                         stem_kernel=3, stem_stride=2, num_classes=5, **kw)


@pytest.fixture(scope="module")
def nets():
    """Float64 tiny models with circular padding, in eval mode."""
    return {
        "vgg_tiny": _filled(lambda: models.create(
            "vgg_tiny", key=0, padding="circular"), seed=0),
        "resnet_tiny": _filled(lambda: models.create(
            "resnet_tiny", key=0, padding="circular"), seed=1),
        "bottleneck_tiny": _filled(lambda: _bottleneck_tiny(
            padding="circular", rngs=nnx.Rngs(0)), seed=2),
    }


def _image(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), F64)


def _shifted_batch(x, shifts):
    """Circular shifts of x [1, H, W, C] stacked on the batch axis (NumPy rolls,
    so no per-shift compile)."""
    x = np.asarray(x)
    return jnp.asarray(np.concatenate([np.roll(x, t, axis=(1, 2))
                                       for t in shifts]))


def _shifts(stride):
    """Every phase shift in [0, S)^2 plus a few larger and negative ones."""
    return list(itertools.product(range(stride), range(stride))) + [
        (5, 11), (-7, 3), (9, -2)]


# ----------------------------------------------------------------------------
# Parameter counts (torchvision, 1000 classes, width 1.0), abstract init only.


@pytest.mark.parametrize("name, expected", [
    # torchvision.models.<name>() parameter counts (sum of p.numel()).
    ("vgg11", 132_863_336),
    ("vgg13", 133_047_848),
    ("vgg16", 138_357_544),
    ("vgg16_bn", 138_365_992),
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
])
def test_parameter_counts_match_torchvision(name, expected):
    net = nnx.eval_shape(lambda: models.create(name, key=0))
    assert models.count_params(net) == expected


def test_parameter_layout_vgg16():
    net = nnx.eval_shape(lambda: models.create("vgg16", key=0))
    assert [c.kernel.shape for c in net.convs][:3] == [
        (3, 3, 3, 64), (3, 3, 64, 64), (3, 3, 64, 128)]
    assert [fc.kernel.shape for fc in net.classifier] == [
        (25088, 4096), (4096, 4096), (4096, 1000)]


def test_parameter_count_independent_of_mode_and_width_scales():
    base = nnx.eval_shape(lambda: models.create("resnet_tiny", key=0))
    ref = jax.tree.structure(nnx.state(base))
    for mode in MODES:
        net = nnx.eval_shape(lambda: models.create(
            "resnet_tiny", key=0, downsample=mode, padding="circular"))
        assert jax.tree.structure(nnx.state(net)) == ref
        assert models.count_params(net) == models.count_params(base)
    half = nnx.eval_shape(lambda: models.create("resnet18", key=0, width=0.5))
    assert half.stem_conv.kernel.shape == (7, 7, 3, 32)
    assert half.fc.kernel.shape == (256, 1000)
    tiny = nnx.eval_shape(lambda: models.create("vgg_small", key=0, width=0.01,
                                                num_classes=3, in_channels=1))
    assert [c.kernel.shape for c in tiny.convs] == [
        (3, 3, 1, 1), (3, 3, 1, 1), (3, 3, 1, 1), (3, 3, 1, 3)]
    assert tiny.fc.kernel.shape == (3, 3)


# ----------------------------------------------------------------------------
# Shapes and taps of the CPU-sized models in every mode (abstract evaluation).


@pytest.mark.parametrize("name", ["vgg_small", "resnet_small"])
@pytest.mark.parametrize("mode", MODES)
def test_small_models_shapes_and_taps(name, mode):
    net = nnx.eval_shape(lambda: models.create(
        name, key=0, downsample=mode, padding="circular"))
    net.eval()
    names = ["block1", "block2", "block3", "block4"]
    if name == "resnet_small":
        names = ["stem"] + names
    assert list(net.tap_strides()) == names
    nominal = net.tap_strides(nominal=True)
    assert list(nominal.values())[-1] == 16
    for size in (28, 32, 56, 64):
        x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
        if size in (28, 64):
            logits, taps = nnx.eval_shape(lambda m, x: (m(x), m.taps(x)), net, x)
            assert logits.shape == (2, 10)
        else:
            taps = nnx.eval_shape(lambda m, x: m.taps(x), net, x)
        assert list(taps) == names
        for k, tap in taps.items():
            s = net.tap_strides()[k]
            assert s == (1 if mode == "none" else nominal[k])
            assert tap.shape[:3] == (2, -(-size // s), -(-size // s))
        assert net.total_stride == (1 if mode == "none" else 16)


def test_vgg_classifier_head_shapes():
    net = nnx.eval_shape(lambda: models.create("vgg11", key=0, width=0.125,
                                               num_classes=7))
    for size in (32, 224, 100):  # final maps 1x1, 7x7 and 4x4 (bins)
        x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        assert nnx.eval_shape(lambda m, x: m(x), net, x).shape == (1, 7)


# ----------------------------------------------------------------------------
# The "max" networks against an independent lax reference (torchvision rules).


def _lax_conv(x, k, stride, pad):
    return lax.conv_general_dilated(
        x, k, (stride, stride), ((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=lax.Precision.HIGHEST)


def _lax_maxpool(x, window, stride, pad):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1),
                             (1, stride, stride, 1),
                             ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _bn(mod, x):
    return (x - mod.mean[...]) / jnp.sqrt(mod.var[...] + 1e-5) * mod.scale[...] \
        + mod.bias[...]


def test_vgg_tiny_max_matches_lax_reference(nets):
    net = models.variant(nets["vgg_tiny"], padding="zero")
    x = _image((2, 12, 12, 3))

    def reference(x):
        h = x
        for conv in net.convs:
            h = jax.nn.relu(_lax_conv(h, conv.kernel[...], 1, 1) + conv.bias[...])
            h = _lax_maxpool(h, 2, 2, 0)
        return h, h.mean(axis=(1, 2)) @ net.fc.kernel[...] + net.fc.bias[...]

    (tap, logits), (h, ref_logits) = jax.jit(
        lambda x: ((net.taps(x)["block2"], net(x)), reference(x)))(x)
    np.testing.assert_allclose(tap, h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)


def test_resnet_tiny_max_matches_lax_reference(nets):
    net = models.variant(nets["resnet_tiny"], padding="zero")
    x = _image((2, 16, 16, 3))

    def reference(x):
        h = jax.nn.relu(_bn(net.stem_bn, _lax_conv(
            x, net.stem_conv.kernel[...], 2, 1)))
        h = _lax_maxpool(h, 3, 2, 1)
        for stage in net.stages:
            for blk in stage:
                s = blk.stride
                y = jax.nn.relu(_bn(blk.bn1, _lax_conv(
                    h, blk.conv1.kernel[...], s, 1)))
                y = _bn(blk.bn2, _lax_conv(y, blk.conv2.kernel[...], 1, 1))
                sc = h if blk.proj is None else _bn(
                    blk.proj_bn, _lax_conv(h, blk.proj.kernel[...], s, 0))
                h = jax.nn.relu(y + sc)
        return h

    tap, h = jax.jit(lambda x: (net.taps(x)["block2"], reference(x)))(x)
    np.testing.assert_allclose(tap, h, rtol=1e-12, atol=1e-12)


def test_blur_of_size_one_is_plain_subsampling(nets):
    # BlurPool with a 1-tap filter only subsamples, so Zhang's rewrites
    # MaxPool(k,2) -> MaxPool(k,1)+sub and Conv(2)+ReLU -> Conv(1)+ReLU+sub, and
    # the projection sub+Conv1x1, must give the "max" network exactly.
    x = _image((2, 16, 16, 3))
    vgg = nets["vgg_tiny"]
    res = _filled(lambda: models.ResNet(
        "basic", (1, 1), widths=(3, 5), stem_channels=4, stem_kernel=3,
        stem_stride=2, stem_pool=False, rngs=nnx.Rngs(0)), seed=4)
    vgg1 = models.variant(vgg, downsample="blur", blur_size=1)
    res1 = models.variant(res, downsample="blur", blur_size=1)
    res4 = models.variant(res, downsample="blur")
    out = jax.jit(lambda x: [vgg1(x), vgg(x), res1(x), res(x), res4(x)])(x)
    np.testing.assert_allclose(out[0], out[1], atol=1e-12)
    np.testing.assert_allclose(out[2], out[3], atol=1e-12)
    # A real blur changes the output.
    assert float(jnp.max(jnp.abs(out[4] - out[3]))) > 1e-4


# ----------------------------------------------------------------------------
# The à trous identity: strided tap == undecimated tap sampled at its stride.


@pytest.mark.parametrize("arch, padding", [
    ("vgg_tiny", "circular"), ("vgg_tiny", "zero"), ("resnet_tiny", "circular"),
    ("resnet_tiny", "zero"), ("bottleneck_tiny", "circular")])
def test_atrous_identity_all_layouts(nets, arch, padding):
    base = models.variant(nets[arch], padding=padding)
    # "none" is the undecimated "max" network; the others via `undecimated`.
    pairs = [(base, models.variant(base, downsample="none"))]
    for mode in ("stride", "blur"):
        dec = models.variant(base, downsample=mode)
        pairs.append((dec, models.variant(dec, undecimated=True)))
    # Circular padding needs sizes divisible by the strides; zero padding does
    # not (odd sizes exercise the far edge).
    size = (16, 16) if padding == "circular" else (15, 13)
    x = _image((2,) + size + (3,), seed=1)

    @jax.jit
    def run(x):
        return [(d.taps(x), u.taps(x)) for d, u in pairs]

    for (dec, und), (a, b) in zip(pairs, run(x)):
        assert und.tap_strides(nominal=True) == dec.tap_strides()
        for k, s in dec.tap_strides().items():
            assert b[k].shape[1:3] == size
            np.testing.assert_allclose(a[k], b[k][:, ::s, ::s], rtol=1e-10,
                                       atol=1e-12, err_msg=f"{dec.downsample} {k}")


def test_weights_shared_between_modes():
    nets_ = [models.create("vgg_tiny", key=7, downsample=m, batch_norm=True,
                           param_dtype=F64) for m in MODES]
    ref = nnx.state(nets_[0], nnx.Param)
    for net in nets_[1:]:
        st = nnx.state(net, nnx.Param)
        assert jax.tree.structure(st) == jax.tree.structure(ref)
        for a, b in zip(jax.tree.leaves(st), jax.tree.leaves(ref)):
            np.testing.assert_array_equal(a, b)
    # variant keeps the weights, the batch statistics and the eval mode.
    src = nets_[0]
    src.eval()
    v = models.variant(src, downsample="none", padding="circular")
    assert v.downsample == "none" and v.padding == "circular" and v.undecimated
    assert v.norms[0].use_running_average and not nets_[1].norms[0].use_running_average
    for a, b in zip(jax.tree.leaves(nnx.state(v)), jax.tree.leaves(
            nnx.state(src))):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------
# Shift invariance with circular padding.


@pytest.mark.parametrize("arch", ["vgg_tiny", "resnet_tiny"])
def test_none_mode_exactly_equivariant_and_invariant(nets, arch):
    net = models.variant(nets[arch], downsample="none")
    x = _image((1, 16, 16, 3), seed=2)
    shifts = _shifts(net.tap_strides(nominal=True)["block2"])
    xs = _shifted_batch(x, [(0, 0)] + shifts)
    logits, taps = jax.jit(lambda x: (net(x), net.taps(x)))(xs)
    np.testing.assert_allclose(logits[1:], jnp.broadcast_to(
        logits[:1], logits[1:].shape), rtol=1e-10, atol=1e-12)
    for k, tap in taps.items():
        tap = np.asarray(tap)
        assert tap.shape[1:3] == (16, 16)
        for i, t in enumerate(shifts):
            np.testing.assert_allclose(tap[i + 1], np.roll(tap[0], t, (0, 1)),
                                       rtol=1e-10, atol=1e-12, err_msg=k)


def _is_circular_shift(a, b):
    """True when map b [H, W, C] equals a circular shift of a."""
    return any(np.allclose(np.roll(a, (u, v), (0, 1)), b, rtol=1e-10, atol=1e-12)
               for u in range(a.shape[0]) for v in range(a.shape[1]))


@pytest.mark.parametrize("arch", ["vgg_tiny", "resnet_tiny"])
def test_aps_invariant_where_max_is_not(nets, arch):
    aps = models.variant(nets[arch], downsample="aps")
    plain = models.variant(nets[arch], downsample="max")
    x = _image((1, 16, 16, 3), seed=3)
    shifts = _shifts(aps.total_stride)
    xs = _shifted_batch(x, [(0, 0)] + shifts)
    (la, ta), lm = jax.jit(lambda x: ((aps(x), aps.taps(x)), plain(x)))(xs)
    np.testing.assert_allclose(la[1:], jnp.broadcast_to(la[:1], la[1:].shape),
                               rtol=1e-10, atol=1e-12)
    last = np.asarray(list(ta.values())[-1])
    for i in range(1, len(xs)):
        assert _is_circular_shift(last[0], last[i])
    # The same weights with fixed-phase max pooling are not invariant.
    assert float(jnp.max(jnp.abs(lm[1:] - lm[:1]))) > 1e-4


def test_max_mode_equivariant_for_multiples_of_total_stride(nets):
    # A shift by a multiple of S moves the strided output by exactly t/S.
    net = nets["resnet_tiny"]
    x = _image((1, 16, 16, 3), seed=4)
    xs = _shifted_batch(x, [(0, 0), (8, 8), (-8, 0)])
    taps = jax.jit(net.taps)(xs)
    last = np.asarray(taps["block2"])
    np.testing.assert_allclose(last[1], np.roll(last[0], (1, 1), (0, 1)),
                               atol=1e-12)
    np.testing.assert_allclose(last[2], np.roll(last[0], (-1, 0), (0, 1)),
                               atol=1e-12)


# ----------------------------------------------------------------------------
# Building blocks against naive references.


def _adaptive_pool_ref(x, n):
    """PyTorch's AdaptiveAvgPool2d bins, written out with loops."""
    nb, h, w, c = x.shape
    out = np.zeros((nb, n, n, c))
    for i in range(n):
        y0, y1 = (i * h) // n, -(-((i + 1) * h) // n)
        for j in range(n):
            x0, x1 = (j * w) // n, -(-((j + 1) * w) // n)
            out[:, i, j] = x[:, y0:y1, x0:x1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [1, 4, 7, 9, 14, 15])
def test_adaptive_avg_pool_matches_torch_bins(size):
    x = np.random.default_rng(size).normal(size=(2, size, size + 7, 3))
    got = models.adaptive_avg_pool(jnp.asarray(x), output_size=7)
    np.testing.assert_allclose(got, _adaptive_pool_ref(x, 7), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 8, 6, 2), (2, 7, 5, 3)])
def test_aps_downsample_matches_naive(shape):
    x = np.random.default_rng(0).normal(size=shape)
    y, idx = models.aps_downsample(jnp.asarray(x), stride=2)
    n, h, w, _ = shape
    xp = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="wrap")
    for b in range(n):
        comps = [xp[b, py::2, px::2] for py in range(2) for px in range(2)]
        best = int(np.argmax([np.sum(c ** 2) for c in comps]))
        assert int(idx[b]) == best
        np.testing.assert_array_equal(y[b], comps[best])
    # Reusing the index on another map picks the same phase.
    z = np.random.default_rng(1).normal(size=shape[:3] + (4,))
    y2, idx2 = models.aps_downsample(jnp.asarray(z), stride=2, index=idx)
    np.testing.assert_array_equal(idx2, idx)
    zp = np.pad(z, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="wrap")
    for b in range(n):
        py, px = divmod(int(idx[b]), 2)
        np.testing.assert_array_equal(y2[b], zp[b, py::2, px::2])


def test_scale_width_rounds_half_up_min_one():
    assert [layers.scale_width(c, w) for c, w in
            [(64, 0.25), (64, 1.0), (10, 0.25), (6, 0.25), (3, 0.1)]] == [
        16, 64, 3, 2, 1]


# ----------------------------------------------------------------------------
# Training: one jitted forward and backward pass.


def test_jitted_value_and_grad_tiny():
    net = models.create("vgg_tiny", key=0, param_dtype=F64, batch_norm=True)
    x = _image((4, 12, 12, 3), seed=5)
    y = jnp.array([0, 3, 5, 9])

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

    @nnx.jit
    def step(m):
        return nnx.value_and_grad(loss_fn)(m)

    loss, grads = step(net)
    assert np.isfinite(float(loss))
    params = nnx.state(net, nnx.Param)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    # Directional derivative against central differences (train-mode batch
    # norm uses batch statistics, so the loss is a pure function of params).
    graphdef, p, rest = nnx.split(net, nnx.Param, ...)
    direction = jax.tree.map(
        lambda a: jnp.asarray(np.random.default_rng(a.size).normal(
            size=a.shape), a.dtype), p)
    pure = jax.jit(lambda q, r: loss_fn(nnx.merge(graphdef, q, r)))
    eps = 1e-5
    fd = (pure(jax.tree.map(lambda a, d: a + eps * d, p, direction), rest)
          - pure(jax.tree.map(lambda a, d: a - eps * d, p, direction), rest)
          ) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(
        jax.tree.leaves(grads), jax.tree.leaves(direction)))
    np.testing.assert_allclose(fd, analytic, rtol=1e-6)
    assert float(analytic) != 0.0
    # The forward pass in train mode updated the running statistics.
    assert not np.allclose(net.norms[0].mean[...], 0.0)


# ----------------------------------------------------------------------------
# Errors.


def test_create_errors():
    with pytest.raises(ValueError, match=r"`name` must be one of \[.*'vgg16'"):
        models.create("vgg19", key=0)
    with pytest.raises(ValueError, match=r"`downsample` must be one of .*'aps'"):
        models.create("vgg_tiny", key=0, downsample="avg")
    with pytest.raises(ValueError, match=r"`padding` must be one of .*'circular'"):
        models.create("vgg_tiny", key=0, padding="reflect")
    with pytest.raises(ValueError, match="`blur_size` must be an int from 1 to 7"):
        models.create("vgg_tiny", key=0, downsample="blur", blur_size=8)
    with pytest.raises(ValueError, match="`width` must be a positive"):
        models.create("vgg_tiny", key=0, width=0)
    with pytest.raises(TypeError, match="`num_classes` must be a positive int"):
        models.create("vgg_tiny", key=0, num_classes=2.5)
    with pytest.raises(ValueError, match="`undecimated`=True is not available"):
        models.create("vgg_tiny", key=0, downsample="aps", undecimated=True)
    with pytest.raises(ValueError, match="`head` must be None or 'gap'"):
        models.create("resnet_tiny", key=0, head="classifier")
    with pytest.raises(ValueError, match=r"`head` must be one of \['classifier'"):
        models.create("vgg_tiny", key=0, head="dense")
    with pytest.raises(ValueError, match="exactly one of `key`"):
        models.create("vgg_tiny")
    with pytest.raises(ValueError, match="exactly one of `key`"):
        models.create("vgg_tiny", key=0, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="`param_dtype` must be a real float"):
        models.create("vgg_tiny", key=0, param_dtype=jnp.int32)


def test_call_and_helper_errors(nets):
    net = nets["vgg_tiny"]
    with pytest.raises(ValueError, match="`x` must have 3 channels"):
        net(jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"`x` must have rank 4 .*NHWC"):
        net.taps(jnp.zeros((8, 8, 3)))
    with pytest.raises(TypeError, match="`x` must be a real float"):
        net(jnp.zeros((1, 8, 8, 3), jnp.int32))
    with pytest.raises(TypeError, match="`model` must be a model of sigcnn"):
        models.variant(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), downsample="none")
    with pytest.raises(ValueError, match="`downsample` must be one of"):
        models.variant(net, downsample="bogus")
    with pytest.raises(ValueError, match=r"`index` must be an int array of shape"):
        models.aps_downsample(jnp.zeros((2, 4, 4, 1)), index=jnp.zeros(3, int))
