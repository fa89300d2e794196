"""Tests of sigcnn.atrous: undecimate and all_shifts on networks in four styles.

The identities under test (docs/architecture.md):

    f(x) == r2[:, ::sy, ::sx]                                    (any padding)
    f(roll(x, t))[:, i] == r2[:, S*i - t]                        (circular padding)
    all_shifts(f, x)[:, ty, tx] == f(roll(x, (ty, tx), (1, 2)))  (circular padding)

References are f itself evaluated on rolled inputs, so no output is hard-coded.
"""

import functools

import _nets
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax
from jax._src import core as _jax_core

from sigcnn import atrous
from sigcnn.atrous import all_shifts, registry, undecimate
from sigcnn.atrous.interpreter import _CALL_NAMES as _CALLS

# float32 networks: sums of O(100) products of O(1) numbers (values up to ~30); the
# undecimated and the strided computations add in different orders. An indexing
# error would show up as an O(1) difference.
TOL = dict(rtol=1e-4, atol=1e-4)


def _x(shape, seed=1, dtype=jnp.float32):
    """Standard normal test input (NumPy's generator: no XLA compile per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _is_stride(s):
    return isinstance(s, tuple) and len(s) == 2 and all(
        isinstance(i, (int, np.integer)) for i in s)


def _roll(x, t):
    """jnp.roll(x, t, axis=(1, 2)) computed in NumPy (no XLA compile per shift)."""
    return jnp.asarray(np.roll(np.asarray(x), t, axis=(1, 2)))


def check_undecimate(f, x):
    """Asserts f(x) == r2[:, ::sy, ::sx] leafwise; returns (r2, stride)."""
    r2, stride = undecimate(f)(x)
    ref = jax.jit(f)(x)
    flat_ref, tree = jax.tree.flatten(ref)
    flat_r2 = tree.flatten_up_to(r2)
    flat_s = tree.flatten_up_to(stride)
    for o, r, s in zip(flat_ref, flat_r2, flat_s):
        assert _is_stride(s), s
        if s == (1, 1):
            np.testing.assert_allclose(r, o, **TOL)
            continue
        assert r.shape[0] == o.shape[0] and r.shape[3:] == o.shape[3:]
        np.testing.assert_allclose(r[:, ::s[0], ::s[1]], o, **TOL)
        # The à trous network's extent: every grid sample, at most one cell past
        # the last one (VALID layers shorten it; the exact values of the other
        # positions are checked against naive à trous references elsewhere).
        for ax, si in enumerate(s, start=1):
            if ax >= o.ndim:
                continue
            n = o.shape[ax]
            assert si * (n - 1) < r.shape[ax] <= si * n, (r.shape, o.shape, s)
    return r2, stride


def check_shifts(f, x, *, direct=True, **kw):
    """Asserts atrous == brute (== f(roll(x, t)) if `direct`); returns atrous."""
    a = all_shifts(f, x, **kw)
    b = all_shifts(f, x, method="brute", **kw)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), a, b)
    if not direct:
        return a
    # Two shifts checked against f directly (independent of the brute path).
    first = jax.tree.leaves(a)[0]
    grid = first.shape[1:3]
    jf = jax.jit(f)
    for ty, tx in [(0, 0), (grid[0] - 1, grid[1] - 1)]:
        ref = jf(_roll(x, (ty, tx)))
        jax.tree.map(lambda p, q: np.testing.assert_allclose(p[:, ty, tx], q, **TOL),
                     a, ref)
    return a


# --------------------------------------------------------------------------------------
# undecimate: f(x) == r2[::S] on hand-written networks.
# --------------------------------------------------------------------------------------

SIZES = [(16, 16), (15, 17)]
# Every padding with every stride at least once; "SAME" with stride 2 on even sizes
# pads (0, 1) and shifts the sampling phase.
PAD_STRIDE = [("SAME", 2), ("SAME", 3), ("SAME", (1, 2)), ("VALID", 2),
              ("VALID", (1, 2)), (((1, 1), (1, 1)), 3), (((0, 2), (2, 0)), 2),
              (((0, 2), (2, 0)), (1, 2))]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("padding, stride", PAD_STRIDE)
def test_undecimate_lax_nhwc(hw, padding, stride):
    rng = np.random.default_rng(0)
    w1 = _nets._he(rng, (3, 3, 2, 3), 18)
    w2 = _nets._he(rng, (2, 3, 3, 4), 18)

    def f(x):
        y = jax.nn.relu(_nets.conv_nhwc(x, w1, stride=stride, padding=padding))
        y = _nets.max_pool(y, 2, 2, "SAME")
        return _nets.conv_nhwc(y, w2, stride=stride, padding=padding)

    x = _x((2,) + hw + (2,))
    _, s = check_undecimate(f, x)
    st = stride if isinstance(stride, tuple) else (stride, stride)
    assert s == (st[0] * 2 * st[0], st[1] * 2 * st[1])


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("padding", ["SAME", ((1, 0), (2, 1))])
def test_undecimate_lax_nchw(hw, padding):
    rng = np.random.default_rng(2)
    w1 = _nets._he(rng, (4, 2, 3, 3), 18)      # OIHW
    w2 = _nets._he(rng, (3, 4, 3, 2), 24)

    def f(x):
        y = jnp.transpose(x, (0, 3, 1, 2))
        y = jax.nn.gelu(_nets.conv_nchw(y, w1, stride=2, padding=padding))
        y = _nets.conv_nchw(y, w2, stride=(3, 1), padding=padding)
        return jnp.transpose(y, (0, 2, 3, 1))

    _, s = check_undecimate(f, _x((2,) + hw + (2,)))
    assert s == (6, 2)


@pytest.mark.parametrize("hw", SIZES)
def test_undecimate_flax_linen(hw):
    f = _nets.linen_net(3)
    x = _x((2,) + hw + (3,))
    try:
        _, s = check_undecimate(f, x)
    except NotImplementedError as err:  # circular padding at a non-dividing size
        assert hw[0] % 2 and "do not tile" in str(err)
        check_shifts(f, x, direct=False)
        return
    assert s == {"features": (12, 12), "logits": (1, 1)}


@pytest.mark.parametrize("hw", SIZES)
def test_undecimate_flax_nnx(hw):
    model = _nets.nnx_net(4)
    _, s = check_undecimate(model, _x((2,) + hw + (3,)))
    assert s == {"map": (4, 8), "logits": (1, 1)}


@pytest.mark.parametrize("hw", SIZES)
def test_undecimate_equinox(hw):
    x = _x((2,) + hw + (3,))
    _, s = check_undecimate(_nets.equinox_net(5, mode="ZEROS"), x)
    assert s == (4, 4)
    # A circular conv after an unpadded 2x2 pool: the pool's à trous output is
    # d - 1 positions short of a whole number of cells, so circular padding of it
    # has no à trous form; all_shifts is still exact.
    f = _nets.equinox_net(5)
    with pytest.raises(NotImplementedError, match="do not tile"):
        undecimate(f)(x)
    check_shifts(f, x, direct=False)


@pytest.mark.parametrize("hw", SIZES)
def test_undecimate_depthwise_and_residual(hw):
    x = _x((2,) + hw + (3,))
    _, s = check_undecimate(_nets.depthwise(6), x)
    assert s == (2, 4)
    for circular in (True, False):
        f = _nets.residual_net(7, circular=circular)
        if circular and hw[0] % 2:
            # Circular padding of a map whose length the stride does not divide:
            # the strided map wraps after ceil(H / 2) samples, the à trous one
            # after H pixels.
            with pytest.raises(NotImplementedError, match="concatenation"):
                undecimate(f)(x)
            check_shifts(f, x, direct=False)
            continue
        _, s = check_undecimate(f, x)
        assert s == {"block": (2, 2), "logits": (1, 1)}


# This network (asymmetric pads, stride 3 along W) has an à trous form at no size
# for wrap, reflect and symmetric padding: the strided maps wrap or mirror about
# samples that the full-resolution maps do not end at. Constant padding works at
# any size. (Consistent reflect / wrap networks: test_reflect_and_wrap_equal_naive.)
PAD_SIZES = {"wrap": (None, (16, 16)), "reflect": (None, (16, 16)),
             "symmetric": (None, (16, 16)), "constant": ((16, 16), (15, 17))}


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("mode", ["wrap", "reflect", "symmetric", "constant"])
def test_undecimate_jnp_pad_modes(which, mode):
    hw = PAD_SIZES[mode][which]
    if hw is None:
        return
    rng = np.random.default_rng(8)
    w1 = _nets._he(rng, (3, 3, 2, 3), 18)
    w2 = _nets._he(rng, (3, 3, 3, 3), 27)
    w3 = _nets._he(rng, (5, 5, 3, 2), 75)

    def pad(y, lo, hi):
        return jnp.pad(y, ((0, 0), (lo, hi), (hi, lo), (0, 0)), mode=mode)

    def f(x):
        y = jnp.tanh(_nets.conv_nhwc(pad(x, 1, 1), w1, stride=2, padding="VALID"))
        y = _nets.conv_nhwc(pad(y, 1, 2), w2, stride=(2, 3), padding="VALID")
        return _nets.conv_nhwc(pad(y, 2, 2), w3, padding="VALID")

    x = _x((2,) + hw + (2,))
    if which == 1 and mode != "constant":
        try:  # refused, or (wrap: exact on the circle) the identity holds
            check_undecimate(f, x)
            assert mode == "wrap"
        except NotImplementedError as err:
            assert "concatenation" in str(err)
    else:
        check_undecimate(f, x)
    check_shifts(f, x, direct=False)


@pytest.mark.parametrize("padding, hw", [("reflect", (17, 9)), ("circular", (16, 8)),
                                         ("zero", (15, 13))])
def test_reflect_and_wrap_equal_naive(padding, hw):
    # Independent oracle: the à trous network written with sigcnn.ops (stride 1,
    # later layers dilated by 2, padding scaled by the dilation).
    import sigcnn as sc
    rng = np.random.default_rng(40)
    k1 = _nets._he(rng, (3, 3, 2, 3), 18)
    k2 = _nets._he(rng, (3, 3, 3, 2), 27)

    def f(x):
        y = jnp.tanh(sc.conv(x, k1, stride=2, padding=padding))
        return sc.conv(y, k2, padding=padding)

    x = _x((2,) + hw + (2,))
    r2, s = check_undecimate(f, x)
    naive = sc.conv(jnp.tanh(sc.conv(x, k1, padding=padding)), k2, dilation=2,
                    padding=padding)
    assert s == (2, 2) and r2.shape == naive.shape
    np.testing.assert_allclose(r2, naive, **TOL)
    check_shifts(f, x, direct=False)


def test_r2_gives_the_response_to_every_shift():
    # docs/architecture.md: r(roll(x, t))[i] == r2(x)[S*i - t] with circular padding.
    f = _nets.circular_vgg(9, spatial=True)
    x = _x((1, 16, 8, 3))
    r2, s = undecimate(f)(x)
    assert s["features"] == (4, 4)
    jf = jax.jit(f)
    for t in [(1, 0), (3, 2), (2, 7)]:
        ref = jf(_roll(x, t))["features"]
        rows = (4 * np.arange(ref.shape[1]) - t[0]) % 16
        cols = (4 * np.arange(ref.shape[2]) - t[1]) % 8
        np.testing.assert_allclose(r2["features"][:, rows][:, :, cols], ref, **TOL)


def test_non_spatial_leaves_are_returned_with_stride_one():
    f = _nets.circular_vgg(10, spatial=True)
    x = _x((2, 16, 16, 3))
    r2, s = undecimate(f)(x)
    ref = jax.jit(f)(x)
    assert s["logits"] == (1, 1)
    np.testing.assert_allclose(r2["logits"], ref["logits"], **TOL)
    # jax.tree.map over (r2, stride) works: r2 is a prefix of stride.
    sub = jax.tree.map(lambda r, st: r[:, ::st[0], ::st[1]] if r.ndim == 4 else r,
                       r2, s)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), sub, ref)


def test_identity_and_constant_outputs():
    x = _x((1, 6, 5, 2))
    r2, s = undecimate(lambda x: {"x": x, "c": jnp.ones(3)})(x)
    assert s == {"x": (1, 1), "c": (1, 1)}
    np.testing.assert_array_equal(r2["x"], x)
    out = all_shifts(lambda x: {"x": x[:, ::2, ::1], "c": jnp.arange(3.0),
                                "s": jnp.sum(x)}, x)
    # The leading axis of every leaf is its batch axis.
    assert out["c"].shape == (3, 2, 1)
    np.testing.assert_array_equal(out["c"][:, 1, 0], jnp.arange(3.0))
    assert out["s"].shape == (2, 1)
    np.testing.assert_allclose(out["s"], jnp.full((2, 1), jnp.sum(x)), rtol=1e-5)
    np.testing.assert_allclose(out["x"][:, 1, 0], _roll(x, (1, 0))[:, ::2],
                               **TOL)


# --------------------------------------------------------------------------------------
# all_shifts: atrous == brute on circular networks.
# --------------------------------------------------------------------------------------


def test_all_shifts_circular_vgg():
    f = _nets.circular_vgg(11, spatial=True)
    out = check_shifts(f, _x((2, 16, 16, 3)))
    assert out["logits"].shape == (2, 4, 4, 5)
    assert out["features"].shape == (2, 4, 4, 4, 4, 8)


def test_all_shifts_residual_anisotropic_and_chunks():
    f = _nets.residual_net(12)
    x = _x((2, 8, 16, 3))
    out = check_shifts(f, x, chunk=3, direct=False)
    assert out["logits"].shape == (2, 2, 2, 3)

    def g(x):  # anisotropic total stride (4, 2)
        return f(x)["block"][:, ::2, :]

    out = check_shifts(g, x)
    assert out.shape == (2, 4, 2, 2, 8, 8)


def test_all_shifts_explicit_shifts():
    f = _nets.residual_net(13)
    x = _x((2, 16, 8, 3))
    shifts = [(0, 0), (3, -5), (17, 2)]
    a = all_shifts(f, x, shifts=shifts)
    b = all_shifts(f, x, shifts=np.array(shifts), method="brute", chunk=2)
    assert a["logits"].shape == (2, 3, 3)
    assert a["block"].shape == (2, 3, 8, 4, 8)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), a, b)
    jf = jax.jit(f)
    for p, t in enumerate(shifts):
        ref = jf(_roll(x, t))
        jax.tree.map(lambda o, r: np.testing.assert_allclose(o[:, p], r, **TOL),
                     a, ref)


def test_all_shifts_zero_padding_is_exact():
    # Zero padding is not shift-equivariant: all_shifts runs phase by phase from
    # the first padded layer on, and equals brute force at every shift.
    f = _nets.circular_vgg(14, padding="zero")
    x = _x((2, 16, 16, 3))
    check_shifts(f, x)


def test_all_shifts_flax_and_equinox_circular():
    import flax.linen as nn
    from flax import nnx

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.relu(nn.Conv(3, (3, 3), padding="CIRCULAR")(x))
            y = nn.max_pool(y, (2, 2), (2, 2))
            y = nn.Conv(4, (3, 3), strides=(2, 2), padding="CIRCULAR")(y)
            return nn.Dense(2)(jnp.mean(y, axis=(1, 2)))

    net = Net()
    x = _x((2, 16, 16, 2))
    variables = _nets._fill(jax.eval_shape(net.init, jax.random.key(0), x),
                            np.random.default_rng(15))
    check_shifts(lambda x: net.apply(variables, x), x)

    conv = nnx.eval_shape(lambda: nnx.Conv(2, 3, (3, 3), strides=2,
                                           padding="CIRCULAR", rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(conv)
    conv = nnx.merge(graphdef, _nets._fill(state, np.random.default_rng(16)))
    check_shifts(lambda x: nn.avg_pool(conv(x), (2, 2), (2, 2)), x)

    import equinox as eqx
    c = _nets.equinox_conv(17, 2, 3, 3, stride=2, padding=1,
                           padding_mode="CIRCULAR")
    pool = eqx.nn.MaxPool2d(2, 2)

    def f(x):
        y = jax.vmap(lambda im: pool(c(im)))(jnp.transpose(x, (0, 3, 1, 2)))
        return jnp.transpose(y, (0, 2, 3, 1))

    check_shifts(f, x)


# Random circular architectures: the atrous path must equal the brute path exactly
# (to rounding) whatever the depth, kernels, strides and pools.
stage = st.tuples(
    st.sampled_from([1, 2, 3]),
    st.sampled_from([1, 2]),
    st.sampled_from([None, ("max", 2, 2), ("max", 3, 2), ("avg", 2, 2),
                     ("avg", 3, 1), ("blur", 2)]))
arch = st.fixed_dictionaries({
    "stages": st.lists(stage, min_size=1, max_size=3),
    "head": st.sampled_from(["gap", "spatial"]),
})


@settings(max_examples=8, deadline=None)
@given(spec=arch, seed=st.integers(0, 2**16))
def test_all_shifts_random_circular_architectures(spec, seed):
    total = 1
    for _, s, pool in spec["stages"]:
        total *= s * (pool[-1] if pool else 1)
    f = _nets.random_circular_net(seed, spec)
    x = _x((1, 8 * total if total <= 2 else 2 * total, 2 * total, 2), seed=seed)
    a = all_shifts(f, x)
    b = all_shifts(f, x, method="brute")
    assert a.shape[1:3] == (total, total)
    np.testing.assert_allclose(a, b, **TOL)


# Windows wider than their stride read past the wrap-padded array: the undecimated
# op must continue it with the layer's period (hypothesis found the first one).
FIXED_SPECS = [
    {"stages": [(1, 1, ("max", 3, 2))], "head": "gap"},
    {"stages": [(3, 2, ("avg", 3, 1)), (2, 1, ("blur", 2))], "head": "spatial"},
    {"stages": [(2, 2, None), (3, 1, ("max", 3, 2))], "head": "spatial"},
]


@pytest.mark.parametrize("spec", FIXED_SPECS)
def test_all_shifts_fixed_circular_architectures(spec):
    f = _nets.random_circular_net(3, spec)
    x = _x((1, 8, 8, 2))
    check_shifts(f, x, direct=False)
    check_undecimate(f, x)


# --------------------------------------------------------------------------------------
# Every rule, exercised on a value of dilation 2 (after a strided slice or conv).
# --------------------------------------------------------------------------------------

W3 = _nets._he(np.random.default_rng(20), (3, 3, 2, 2), 18)


def _s2(x):
    """A circular strided conv: its output has dilation 2."""
    return _nets.conv_nhwc(_nets.wrap(x, 1), W3, stride=2, padding="VALID")


@jax.custom_vjp
def _cubic(y):
    return y ** 3


_cubic.defvjp(lambda y: (y ** 3, y), lambda y, g: (3 * g * y ** 2,))


def _closed_call(y):
    cj = jax.make_jaxpr(lambda v: v * 2.0)(y)
    p = _jax_core.closed_call_p.get_bind_params({"call_jaxpr": cj})
    return _jax_core.closed_call_p.bind(y, **p)[0]


def _variadic_reduce(y):
    s, m = lax.reduce((y, y), (np.float32(0.0), np.float32(-np.inf)),
                      lambda a, b: (a[0] + b[0], jnp.maximum(a[1], b[1])), (3,))
    return (s + m)[..., None]


def _elementwise(x):
    y = _s2(x)
    y = jnp.where(y > 0, y, 0.1 * y) ** 3 + jnp.tanh(y) * 2.0
    y = lax.clamp(np.float32(-0.5), y, np.float32(0.5))
    return y.astype(jnp.float64).astype(jnp.float32)  # conftest enables x64


def _calls(x):
    y = jax.nn.relu(_s2(x))                                   # custom_jvp_call
    y = jax.checkpoint(lambda v: jnp.sin(v) * v)(_cubic(y))   # remat2, custom_vjp
    y = jax.jit(lambda v: v - 1.0)(_closed_call(y))           # jit, closed_call
    return lax.optimization_barrier(y)


def _layout(x):
    y = jnp.expand_dims(_s2(x), 3) * jnp.ones((1, 1, 1, 3, 1), jnp.float32)
    y = jnp.transpose(jnp.transpose(y, (0, 4, 3, 1, 2)) * 2, (0, 3, 4, 2, 1))
    return jnp.squeeze(y[..., :1, :], axis=3)


def _reshapes(x):
    y = _s2(x)
    channels = y.reshape(x.shape[0], 4, 4, 2, 1)[..., 0]
    phases = y.reshape(x.shape[0], 2, 2, 2, 2, 2)[:, :, 1, :, 0]   # polyphase split
    return {"channels": channels, "phases": phases}


def _joins(x):
    y = _s2(x)
    y = jnp.concatenate([y, jnp.zeros_like(y)], axis=3)
    y = jnp.stack([y, -y], axis=3).reshape(y.shape[:3] + (-1,))
    y = jnp.concatenate(jnp.split(y, [1], axis=3)[::-1], axis=3)
    return jnp.tile(y, (1, 2, 1, 2))


def _reductions(x):
    y = _s2(x)
    return {"c": jnp.max(y, axis=3, keepdims=True), "hw": jnp.sum(y, axis=(1, 2)),
            "w": jnp.max(y, axis=2), "argc": jnp.argmax(y, axis=3),
            "argw": jnp.argmax(y, axis=2)}


def _along_channels(x):
    y = _s2(x)
    return jnp.cumsum(y, axis=3) + jnp.sort(y, axis=3) + lax.top_k(y, 2)[0]


def _dots(x):
    y = _s2(x)
    return {
        "pointwise": jnp.einsum("nhwc,cd->nhwd", y, jnp.ones((2, 3), jnp.float32)),
        "batched": lax.dot_general(y, y + 1, (((3,), (3,)), ((0, 1, 2), (0, 1, 2)))),
        "dense": lax.dot_general(y, jnp.ones((4, 4, 3), jnp.float32),
                                 (((1, 2), (0, 1)), ((), ()))),
    }


def _pools(x):
    y = _s2(x)
    return {"sum": _nets.avg_pool(_nets.wrap(y, 0, 1), 2, 1),
            "max": _nets.max_pool(y, 2, 2),
            "generic": lax.reduce_window(y, np.float32(0.0), lax.max, (1, 2, 2, 1),
                                         (1, 2, 2, 1), "VALID")}


def _gathers(x):
    y = _s2(x)
    return {"index": y[..., jnp.array([1, 0, 1])],
            "along": jnp.take_along_axis(y, jnp.argmax(y, axis=3, keepdims=True),
                                         axis=3)}


# (primitives, f, equivariant): f applies each primitive to a spatial value of
# dilation 2; equivariant cases are also checked with all_shifts (atrous == brute).
RULE_CASES = [
    (("tanh", "select_n", "clamp", "integer_pow", "convert_element_type"),
     _elementwise, True),
    (("custom_jvp_call", "custom_vjp_call", "remat2", "jit",
      _jax_core.closed_call_p.name, "optimization_barrier"), _calls, True),
    (("bitcast_convert_type",),
     lambda x: lax.bitcast_convert_type(
         lax.bitcast_convert_type(_s2(x), jnp.int32) + 1, jnp.float32), True),
    (("broadcast_in_dim", "transpose", "squeeze"), _layout, True),
    (("reshape",), _reshapes, True),
    (("slice",), lambda x: _s2(x)[:, 1::2, ::2] + x[:, 3::4, 1::4], True),
    (("dynamic_slice",), lambda x: jnp.roll(_s2(x), jnp.array([1, 3]), axis=(1, 2)),
     True),
    (("pad",),
     lambda x: jnp.pad(lax.pad(_s2(x), np.float32(0.5),
                               [(0, 0, 0), (-1, 2, 0), (1, -1, 0), (0, 0, 0)]),
                       ((0, 0), (1, 2), (0, 3), (0, 0))), False),
    (("rev",), lambda x: jnp.flip(_s2(x), axis=(1, 2)), False),
    (("concatenate", "stack", "split", "tile"), _joins, True),
    (("concatenate", "split"),  # along a spatial axis: a roll, and a constant piece
     lambda x: jnp.concatenate(jnp.split(_s2(x), [1], axis=1)[::-1] +
                               [jnp.ones((2, 4, 4, 2), jnp.float32)], axis=1),
     False),
    (("reduce_max", "reduce_sum", "argmax"), _reductions, True),
    (("reduce",), _variadic_reduce, True),
    (("cumsum", "sort", "top_k"), _along_channels, True),
    (("dot_general",), _dots, True),
    (("conv_general_dilated",), _s2, True),
    (("reduce_window_sum", "reduce_window_max", "reduce_window"), _pools, True),
    (("reduce_window_min",),
     lambda x: lax.reduce_window(_s2(x), jnp.inf, lax.min, (1, 3, 3, 1),
                                 (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),
     False),
    (("gather",), _gathers, True),
]


def _prims(jaxpr):
    names = {eqn.primitive.name for eqn in jaxpr.eqns}
    for sub in jax.extend.core.subjaxprs(jaxpr):
        names |= _prims(sub)
    return names


@pytest.mark.parametrize("case", RULE_CASES, ids=[c[0][0] for c in RULE_CASES])
def test_rule(case, monkeypatch):
    prims, f, equivariant = case
    x = _x((2, 8, 8, 2))
    assert set(prims) <= _prims(jax.make_jaxpr(f)(x).jaxpr)
    seen = set()
    for prim, rule in list(registry.RULES.items()):
        def spy(ctx, ins, _rule=rule, _name=prim.name, **params):
            seen.add(_name)
            return _rule(ctx, ins, **params)
        monkeypatch.setitem(registry.RULES, prim, spy)
    for name, rule in list(registry._BY_NAME.items()):
        def spy(ctx, ins, _rule=rule, _name=name, **params):
            seen.add(_name)
            return _rule(ctx, ins, **params)
        monkeypatch.setitem(registry._BY_NAME, name, spy)
    atrous.clear_cache()  # re-interpret
    try:
        check_undecimate(f, x)
    finally:
        atrous.clear_cache()
    # Each primitive's own rule (or, for calls, the recursion) ran on a spatial value.
    assert set(prims) <= seen | _CALLS
    if equivariant:
        check_shifts(f, x, direct=False)


def test_every_rule_is_exercised():
    covered = set().union(*(c[0] for c in RULE_CASES))
    rules = {}
    for prim, fn in registry.RULES.items():
        rules.setdefault(fn, set()).add(prim.name)
    for name, fn in registry._BY_NAME.items():
        rules.setdefault(fn, set()).add(name)
    missing = [sorted(names) for names in rules.values() if not names & covered]
    assert not missing
    calls = {"jit", _jax_core.closed_call_p.name, "remat2", "custom_jvp_call",
             "custom_vjp_call"}
    assert calls <= covered and calls <= _CALLS


def test_partial_reductions_keep_the_other_spatial_axis():
    x = _x((2, 8, 8, 2))
    weights = jnp.arange(4.0, dtype=jnp.float32)
    cases = {
        "mean over W": (lambda x: jnp.mean(_s2(x), axis=2), (2, 1)),
        "squeeze H": (lambda x: jnp.squeeze(_s2(x)[:, 1:2], axis=1), (2, 1)),
        "contract W": (lambda x: jnp.einsum("nhwc,w->nhc", _s2(x), weights), (2, 1)),
        "lookup per pixel": (lambda x: jnp.take(
            weights, jnp.clip(jnp.argmax(_s2(x), axis=3), 0, 3)), (2, 2)),
    }
    for name, (f, stride) in cases.items():
        r2, s = check_undecimate(f, x)
        assert s == stride, name
        assert r2.shape[1] == 8, name


def test_flatten_ends_the_undecimated_part():
    x = _x((2, 8, 8, 2))
    dense = jnp.asarray(np.random.default_rng(4).standard_normal((32, 3)), jnp.float32)

    def f(x):
        y = _s2(x)
        return {"map": y, "logits": y.reshape(y.shape[0], -1) @ dense}

    _, s = check_undecimate(f, x)
    assert s == {"map": (2, 2), "logits": (1, 1)}
    check_shifts(f, x, direct=False)


def test_upsampling_by_repeat_is_refused_by_undecimate_only():
    def f(x):
        return jnp.repeat(_s2(x), 2, axis=1)

    x = _x((2, 8, 8, 2))
    with pytest.raises(NotImplementedError, match="upsampling"):
        undecimate(f)(x)
    check_shifts(f, x, direct=False)


# --------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("prim, f", [
    ("cumsum", lambda x: jnp.cumsum(x, axis=1)),
    ("sort", lambda x: jnp.sort(_s2(x), axis=2)),
    ("cummax", lambda x: lax.cummax(x, axis=2)),
])
def test_unsupported_primitive_names_primitive_and_line(prim, f):
    x = _x((1, 8, 8, 2))
    with pytest.raises(NotImplementedError, match=rf"`{prim}` at .*test_atrous\.py:"):
        undecimate(f)(x)
    out = check_shifts(f, x)  # phase by phase: exact
    np.testing.assert_allclose(out[:, 0, 0], f(x), **TOL)


def test_aps_is_refused_and_points_to_brute():
    w = _nets._he(np.random.default_rng(30), (3, 3, 2, 3), 18)

    def f(x):
        y = _nets.conv_nhwc(_nets.wrap(x, 1), w, padding="VALID")
        y = _nets.aps_downsample(jax.nn.relu(y))
        return jnp.mean(y, axis=(1, 2))

    x = _x((2, 8, 8, 2))
    with pytest.raises(NotImplementedError,
                       match=r"data-dependent sampling.*all_shifts\(f, x\)"):
        undecimate(f)(x)
    out = check_shifts(f, x)
    assert out.shape == (2, 2, 2, 3)
    # Circular APS is shift-invariant after global pooling.
    np.testing.assert_allclose(out, jnp.broadcast_to(out[:, :1, :1], out.shape),
                               **TOL)


def test_global_gating_and_position_dependent_constants():
    x = _x((2, 8, 8, 2))

    def se(x):  # squeeze-and-excitation style gating
        y = _s2(x)
        return y * jax.nn.sigmoid(jnp.mean(y, axis=(1, 2), keepdims=True))

    # One gate per shift class: exact undecimated form and all shifts.
    r2, s = check_undecimate(se, x)
    check_shifts(se, x)
    jse = jax.jit(se)
    for t in [(1, 0), (0, 1), (1, 1)]:  # r2's other phases are the shifted responses
        ref = jse(_roll(x, t))
        rows = (2 * np.arange(4) - t[0]) % 8
        cols = (2 * np.arange(4) - t[1]) % 8
        np.testing.assert_allclose(r2[:, rows][:, :, cols], ref, **TOL)
    pos = jnp.linspace(0.0, 1.0, 16, dtype=jnp.float32).reshape(1, 4, 4, 1)

    def embed(x):
        return jnp.sum(_s2(x) + pos, axis=(1, 2))

    with pytest.raises(NotImplementedError, match="varies along a spatial axis"):
        undecimate(embed)(x)
    # all_shifts falls back to the strided computation, exactly.
    check_shifts(embed, x)


def test_transposed_conv_refused():
    w = jnp.ones((2, 2, 2, 2), jnp.float32)

    def f(x):
        y = _s2(x)
        return lax.conv_transpose(y, w, (2, 2), "SAME",
                                  dimension_numbers=_nets.NHWC)

    with pytest.raises(NotImplementedError, match="transposed"):
        undecimate(f)(_x((1, 8, 8, 2)))


def test_spatial_output_must_be_nhwc():
    with pytest.raises(NotImplementedError, match="NHWC"):
        undecimate(lambda x: jnp.transpose(_s2(x), (0, 3, 1, 2)))(_x((1, 8, 8, 2)))


def test_input_validation():
    f = _nets.circular_vgg(31)
    x = _x((1, 8, 8, 3))
    with pytest.raises(TypeError, match="`f` must be callable"):
        undecimate(3)
    with pytest.raises(TypeError, match="`f` must be callable"):
        all_shifts("f", x)
    with pytest.raises(ValueError, match=r"`x` must have rank 4.*x\[None\]"):
        undecimate(f)(x[0])
    with pytest.raises(TypeError, match="`x` must be a real float"):
        all_shifts(f, jnp.ones((1, 8, 8, 3), jnp.int32))
    with pytest.raises(ValueError, match="`method` must be one of"):
        all_shifts(f, x, method="fast")
    with pytest.raises(ValueError, match="`chunk` must be a positive int"):
        all_shifts(f, x, chunk=0)
    with pytest.raises(TypeError, match="`chunk` must be a positive int"):
        all_shifts(f, x, chunk=2.5)
    with pytest.raises(ValueError, match=r"`shifts` must be .*shape \[P, 2\]"):
        all_shifts(f, x, shifts=[1, 2])
    with pytest.raises(ValueError, match=r"`shifts` must be .*shape \[P, 2\]"):
        all_shifts(f, x, shifts=np.zeros((0, 2), int))
    with pytest.raises(TypeError, match="`shifts` must be .*integer"):
        all_shifts(f, x, shifts=[(0.5, 1.0)])


# --------------------------------------------------------------------------------------
# jit, caching, updated weights.
# --------------------------------------------------------------------------------------


def test_under_jit():
    f = _nets.residual_net(32)
    x = _x((2, 8, 8, 3))
    r2, s = undecimate(f)(x)
    r2j, sj = jax.jit(undecimate(f))(x)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), r2, r2j)
    assert jax.tree.map(int, sj) == jax.tree.map(int, s)
    a = all_shifts(f, x)
    aj = jax.jit(lambda x: all_shifts(f, x))(x)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), a, aj)
    bj = jax.jit(functools.partial(all_shifts, f, method="brute", chunk=2))(x)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, **TOL), a, bj)


def test_updated_weights_are_used():
    from flax import nnx

    conv = nnx.eval_shape(lambda: nnx.Conv(2, 2, (3, 3), strides=2,
                                           padding="CIRCULAR", rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(conv)
    conv = nnx.merge(graphdef, _nets._fill(state, np.random.default_rng(18)))

    def f(x):
        return jnp.mean(conv(x), axis=(1, 2))

    x = _x((1, 8, 8, 2))
    before = all_shifts(f, x)
    conv.kernel[...] = conv.kernel[...] * 2.0
    after = all_shifts(f, x)
    np.testing.assert_allclose(after, 2 * before - conv.bias[...], **TOL)
    np.testing.assert_allclose(after[:, 1, 1], f(_roll(x, (1, 1))), **TOL)


# --------------------------------------------------------------------------------------
# Tiled undecimated convolutions (CPU): the same numbers as one call, to rounding.
# --------------------------------------------------------------------------------------

_TILE_NETS = [
    # (name, layout, feature groups, rhs dilation, padding, input shape)
    ("nhwc_same", ("NHWC", "HWIO", "NHWC"), 1, (1, 1), "SAME", (3, 13, 11, 4)),
    ("nchw_groups", ("NCHW", "OIHW", "NCHW"), 2, (1, 2), ((2, 0), (1, 3)),
     (2, 4, 12, 14)),
    ("mixed_layouts", ("HCNW", "IHOW", "WNHC"), 1, (2, 1), "SAME", (11, 2, 2, 13)),
    ("valid_crop", ("NHWC", "HWIO", "NHWC"), 4, (2, 1), ((-1, 0), (0, -2)),
     (1, 16, 13, 4)),
]


@pytest.mark.parametrize("unrolled", [True, False], ids=["unrolled", "loop"])
@pytest.mark.parametrize("name, dn, groups, rdil, pad, shape", _TILE_NETS,
                         ids=[t[0] for t in _TILE_NETS])
def test_tiled_convolutions_equal_one_call(name, dn, groups, rdil, pad, shape,
                                           unrolled, monkeypatch):
    rng = np.random.default_rng(21)
    cin = shape[dn[0].index("C")]
    k1 = rng.standard_normal((3, 3, cin // groups, 4)).astype(np.float32)
    k2 = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    k1, k2 = (np.transpose(k, ["HWIO".index(c) for c in dn[1]]) for k in (k1, k2))

    def f(x):
        y = lax.conv_general_dilated(x, k1, (2, 2), pad, rhs_dilation=rdil,
                                     dimension_numbers=dn,
                                     feature_group_count=groups)
        y = jax.nn.relu(y)
        return lax.conv_general_dilated(y, k2, (2, 1), "SAME",
                                        dimension_numbers=(dn[2], dn[1], dn[2]))

    x = _x(shape, seed=22)
    # undecimate takes NHWC input and returns NHWC maps: transpose inside g.
    to_lhs = [("NHWC").index(c) for c in dn[0]]
    from_out = [dn[2].index(c) for c in "NHWC"]
    g = lambda x: jnp.transpose(f(jnp.transpose(x, to_lhs)), from_out)
    x = jnp.transpose(x, [dn[0].index(c) for c in "NHWC"])
    one, s1 = undecimate(g)(x)
    # 5 positions per call: batch chunks of 1 and 2x2 spatial tiles, as separate
    # convolutions or in a loop.
    tiling = atrous.Tiling(positions=5, unrolled=10**6 if unrolled else 0)
    tiled, s2 = undecimate(g, tiling=tiling)(x)
    assert s1 == s2 == (4, 2)
    assert tiled.shape == one.shape
    # Same products and sums; XLA may pick another summation order per tile shape.
    scale = float(np.max(np.abs(one)))
    np.testing.assert_allclose(tiled, one, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(tiled[:, ::4, ::2], jax.jit(g)(x), **TOL)
    if jax.default_backend() == "cpu":
        # The tiling is really used.
        text = str(jax.make_jaxpr(undecimate(g, tiling=tiling))(x))
        if unrolled:
            assert text.count("conv_general_dilated") >= 8 * shape[0]
        else:
            assert "while" in text or "scan" in text
        # Tiles run channels-last whatever the layout (XLA:CPU runs channels-first
        # convolutions in a loop ~70x slower; benchmarks/README.md).
        specs = [line for line in text.splitlines() if "lhs_spec=" in line]
        assert specs
        for line in specs:
            assert "lhs_spec=(0, 3, 1, 2)" in line and "out_spec=(0, 3, 1, 2)" in line, line


# --------------------------------------------------------------------------------------
# Certification, user rules, the cache, the tiling setting, layout errors.
# --------------------------------------------------------------------------------------


def test_check_certifies_and_catches_a_wrong_rule(monkeypatch):
    f = _nets.circular_vgg(41)
    x = _x((2, 8, 8, 3))
    ref = all_shifts(f, x, method="brute")
    good = all_shifts(f, x, check=3)
    np.testing.assert_allclose(good, ref, **TOL)
    # A deliberately wrong rule for tanh-free `max` (pointwise maximum): it drops
    # the second operand. check= must notice at the shifts it recomputes.
    from jax.extend.core import primitives as P
    wrong = lambda ctx, ins, **params: [ins[0]]
    monkeypatch.setitem(registry.RULES, P.max_p, wrong)
    atrous.clear_cache()
    try:
        bad = all_shifts(f, x)
        assert np.abs(np.asarray(bad) - np.asarray(ref)).max() > 1e-3
        with pytest.raises(atrous.CertificationError, match="differs from brute"):
            all_shifts(f, x, check=4)
    finally:
        monkeypatch.undo()
        atrous.clear_cache()
    with pytest.raises(ValueError, match="`check` must be a non-negative int"):
        all_shifts(f, x, check=-1)
    with pytest.raises(ValueError, match="`check` needs concrete results"):
        jax.jit(lambda x: all_shifts(f, x, check=1))(x)


def test_check_accepts_rounding_noise_of_an_ill_conditioned_network(monkeypatch):
    # sin(1e6 * mean): a one-ulp change of x moves the output by O(0.01-1), so the
    # atrous and brute evaluation orders differ by far more than 1e-4 relative.
    # check= measures that noise and accepts it; with the noise bound off it raises.
    from sigcnn.atrous import every_shift

    w = (jnp.ones((3, 3, 3, 4)) / 27
         + jnp.arange(108.0).reshape(3, 3, 3, 4) * 1e-3).astype(jnp.float32)

    def f(x):
        y = lax.conv_general_dilated(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)),
                                             mode="wrap"), w, (2, 2), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sin(1e6 * jax.nn.relu(y).mean(axis=(1, 2)))

    x = _x((2, 8, 8, 3))
    # The undecimated convolution as one product per tap sums in another order
    # than brute force's convolution, whichever code XLA generates.
    tiling = atrous.Tiling(form="matmul")
    gap = np.abs(np.asarray(all_shifts(f, x, tiling=tiling)) - np.asarray(
        all_shifts(f, x, method="brute"))).max()
    assert gap > 1e-3  # the test exercises the noise bound
    all_shifts(f, x, check=4, tiling=tiling)
    monkeypatch.setattr(every_shift, "CHECK_NOISE_FACTOR", 0.0)
    with pytest.raises(atrous.CertificationError, match="rounding noise"):
        all_shifts(f, x, check=4, tiling=tiling)


def test_a_failing_rule_is_reported_with_its_primitive_and_line(monkeypatch):
    from jax.extend.core import primitives as P

    def broken(ctx, ins, **params):
        raise TypeError("shapes do not match")

    monkeypatch.setitem(registry.RULES, P.max_p, broken)
    atrous.clear_cache()

    def f(x):
        return jnp.maximum(x[:, ::2, ::2], 0.0)

    try:
        with pytest.raises(atrous.RuleError, match=r"`max` at \S+\.py:\d+.*TypeError"):
            all_shifts(f, _x((1, 4, 4, 1)))
    finally:
        monkeypatch.undo()
        atrous.clear_cache()


def test_register_rule_for_a_user_primitive():
    from jax.extend.core import Primitive
    from jax.interpreters import batching, mlir

    import sigcnn

    halve_p = Primitive("halve_for_test")
    halve_p.def_impl(lambda x: x / 2)
    halve_p.def_abstract_eval(lambda x: x)
    batching.defvectorized(halve_p)
    mlir.register_lowering(halve_p, mlir.lower_fun(lambda x: x / 2,
                                                   multiple_results=False))
    f = lambda x: halve_p.bind(_s2(x))
    x = _x((1, 8, 8, 2))
    with pytest.raises(NotImplementedError, match="`halve_for_test` at .*no undecim"):
        undecimate(f)(x)
    sigcnn.register_rule(halve_p, sigcnn.atrous.elementwise)
    sigcnn.clear_cache()
    check_undecimate(f, x)
    check_shifts(f, x)
    with pytest.raises(TypeError, match="`primitive` must be a JAX primitive"):
        sigcnn.register_rule("halve", sigcnn.atrous.elementwise)
    with pytest.raises(TypeError, match="`rule_fn` must be callable"):
        sigcnn.register_rule(halve_p, None)


def test_cache_is_bounded_and_clearable():
    from sigcnn.atrous import api
    atrous.clear_cache()
    assert not api._PROGRAMS.entries
    f = _nets.circular_vgg(42)
    for n in range(1, 4):
        undecimate(f)(_x((n, 8, 8, 3)))
    assert len(api._PROGRAMS.entries) == 3
    assert api._PROGRAMS.size == 32
    atrous.clear_cache()
    assert not api._PROGRAMS.entries


def test_tiling_setting_is_validated():
    with pytest.raises(ValueError, match="`positions` must be a non-negative int"):
        atrous.Tiling(positions=-5)
    with pytest.raises(TypeError, match="`tiling` must be a sigcnn.atrous.Tiling"):
        undecimate(_s2, tiling=4096)
    assert not atrous.Tiling(positions=0).enabled("cpu")


def test_channels_first_input_is_refused():
    # A 1-channel NCHW image passed where NHWC is expected: x[N, 1, H, W].
    w = _nets._he(np.random.default_rng(43), (4, 1, 3, 3), 9)
    f = lambda x: _nets.conv_nchw(x, w, stride=2)
    x = _x((1, 1, 16, 16))
    for call in (lambda: undecimate(f)(x), lambda: all_shifts(f, x)):
        with pytest.raises(ValueError, match="channels-first .*NHWC"):
            call()


def test_shifts_beyond_a_consumed_maps_stride():
    # Regression (torchvision GoogLeNet, circular): a map at stride 2 consumed by
    # an operation that is not shift-equivariant (a pool padded at its end, a
    # flatten) depends on the whole shift, not on t mod 2; shifts >= 2 must not be
    # read from the shift classes.
    w = _nets._he(np.random.default_rng(44), (3, 3, 2, 3), 18)
    dense = jnp.asarray(np.random.default_rng(45).standard_normal((32, 2)),
                        jnp.float32)

    def f(x):
        y = _s2(x)
        p = lax.reduce_window(y, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                              ((0, 0), (0, 1), (0, 1), (0, 0)))
        return {"pool": jnp.mean(p, axis=(1, 2)),
                "flat": y.reshape(y.shape[0], -1) @ dense}

    del w
    x = _x((2, 8, 8, 2))
    check_shifts(f, x, direct=False, shifts=[(0, 0), (3, 1), (5, 4), (2, 7), (-1, 6)])
