"""Tests of sigcnn.ops against naive NumPy references and exact identities."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from sigcnn import _op_vjps, ops

_STATIC = ("stride", "dilation", "padding")
# Shared jitted ops: one compile per configuration instead of one per primitive.
CONV = jax.jit(ops.conv, static_argnames=_STATIC)
MAX_POOL = jax.jit(ops.max_pool, static_argnames=_STATIC + ("window",))
AVG_POOL = jax.jit(ops.avg_pool, static_argnames=_STATIC + ("window",))
BLUR_POOL = jax.jit(ops.blur_pool, static_argnames=_STATIC + ("size",))
LOWPASS = jax.jit(ops.ideal_lowpass, static_argnames=("cutoff",))

# float32 results come from float32 arithmetic on inputs of size ~1 summed over up
# to 48 taps; float64 ones agree with the float64 reference to rounding.
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}

SHAPES = [(2, 5, 6, 3), (1, 8, 7, 2), (1, 1, 9, 2), (1, 6, 6, 1), (1, 7, 4, 2)]
STRIDES = [1, 2, 3, (1, 2), (2, 3)]
DILATIONS = [1, 2, (1, 3)]
PADDINGS = ["zero", "circular", "reflect", "valid"]
WINDOWS = [1, 2, 3, 4, (2, 3), (3, 1), (1, 4), (4, 2)]
BLUR_SIZES = [1, 2, 3, 4, 5, 6, 7]
DTYPES = [np.float32, np.float64]


def _fits(size, k, d, padding):
    """Whether a window of k taps with dilation d is legal on an axis of `size`."""
    if padding == "valid":
        return size >= d * (k - 1) + 1
    if padding == "reflect":
        return max(ops.window_pads(k, d)) < size
    return True


def _fits2(shape, window, dilation, padding):
    kh, kw = ref.pair(window)
    dy, dx = ref.pair(dilation)
    return (_fits(shape[1], kh, dy, padding) and _fits(shape[2], kw, dx, padding))


def _first_fit(options, start, shape, dilation, padding):
    for r in range(len(options)):
        w = options[(start + r) % len(options)]
        if _fits2(shape, w, dilation, padding):
            return w
    raise AssertionError("no legal window")  # the grid always has window 1


def _make_cases():
    """Every (padding, stride, dilation); dtypes alternate and shapes, windows and
    blur sizes rotate through their lists, so each value meets every padding and
    stride (a covering design instead of the full product, to bound compiles)."""
    cases = []
    combos = itertools.product(PADDINGS, STRIDES, DILATIONS)
    for idx, (padding, stride, dilation) in enumerate(combos):
        shape = SHAPES[idx % len(SHAPES)]
        window = _first_fit(WINDOWS, idx % len(WINDOWS), shape, dilation, padding)
        size = _first_fit(BLUR_SIZES, idx % len(BLUR_SIZES), shape, dilation, padding)
        cases.append(dict(shape=shape, stride=stride, dilation=dilation,
                          padding=padding, window=window, size=size,
                          dtype=DTYPES[idx % 2], idx=idx))
    return cases


CASES = _make_cases()


def _case_id(c):
    return (f"{c['padding']}-s{c['stride']}-d{c['dilation']}-{c['shape']}"
            f"-k{c['window']}-b{c['size']}-{np.dtype(c['dtype']).name}")


def _layout_input(shape, dtype, seed):
    """A permuted np.arange: all values distinct, so layout or anchoring errors show."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = rng.permutation(n).reshape(shape).astype(np.float64)
    return ((x - n / 2) / n).astype(dtype)


def _check(got, want, dtype, name):
    assert got.dtype == dtype, name
    assert got.shape == want.shape, name
    np.testing.assert_allclose(np.asarray(got, np.float64), want, err_msg=name,
                               **TOL[dtype])


def test_grid_covers_every_value():
    seen = {k: {str(c[k]) for c in CASES} for k in ("shape", "window", "size")}
    assert seen["shape"] == {str(s) for s in SHAPES}
    assert len(seen["window"]) >= 6 and len(seen["size"]) >= 6
    for padding, stride in itertools.product(PADDINGS, STRIDES):
        dts = {c["dtype"] for c in CASES
               if c["padding"] == padding and c["stride"] == stride}
        assert dts == set(DTYPES)


def _all_ops(x, k, *, window, size, stride, dilation, padding):
    kw = dict(stride=stride, dilation=dilation, padding=padding)
    return dict(conv=ops.conv(x, k, **kw),
                max_pool=ops.max_pool(x, window=window, **kw),
                avg_pool=ops.avg_pool(x, window=window, **kw),
                blur_pool=ops.blur_pool(x, size=size, **kw))


# all four ops of a case in one program: one compile per case
ALL_OPS = jax.jit(_all_ops, static_argnames=_STATIC + ("window", "size"))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_ops_match_reference(case):
    shape, dtype = case["shape"], case["dtype"]
    rng = np.random.default_rng(case["idx"])
    c = shape[3]
    groups = (1, c)[(case["idx"] // 2) % 2]      # dense and depthwise / grouped
    cout = groups * (1 + case["idx"] % 3)        # channel multiplier 1..3
    kh, kw = ref.pair(case["window"])
    x = _layout_input(shape, dtype, case["idx"])
    k = rng.normal(size=(kh, kw, c // groups, cout)).astype(dtype)
    opts = dict(stride=case["stride"], dilation=case["dilation"],
                padding=case["padding"])
    got = ALL_OPS(x, k, window=case["window"], size=case["size"], **opts)
    _check(got["conv"], ref.conv_ref(x, k, **opts), dtype, "conv")
    _check(got["max_pool"], ref.max_pool_ref(x, window=case["window"], **opts),
           dtype, "max_pool")
    _check(got["avg_pool"], ref.avg_pool_ref(x, window=case["window"], **opts),
           dtype, "avg_pool")
    _check(got["blur_pool"], ref.blur_pool_ref(x, size=case["size"], **opts),
           dtype, "blur_pool")


def test_one_hot_kernel_is_a_circular_roll_of_arange():
    # A kernel with a single tap at (a, b) routing channel ci -> co reads x at
    # offset (a - cy, b - cx) from the anchor, i.e. rolls x by (cy - a, cx - b).
    x = np.arange(2 * 5 * 6 * 3, dtype=np.float64).reshape(2, 5, 6, 3)
    perm = [2, 0, 1]
    for (kh, kw), (a, b) in [((3, 4), (0, 3)), ((4, 2), (3, 0)), ((2, 3), (1, 1))]:
        k = np.zeros((kh, kw, 3, 3))
        for co, ci in enumerate(perm):
            k[a, b, ci, co] = 1.0
        got = ops.conv(x, k, padding="circular")
        cy, cx = (kh - 1) // 2, (kw - 1) // 2
        want = np.roll(x[..., perm], (cy - a, cx - b), axis=(1, 2))
        np.testing.assert_array_equal(got, want)


def test_avg_pool_is_a_box_conv():
    x = _layout_input((1, 7, 8, 2), np.float64, 3)
    for padding in PADDINGS:
        box = np.full((3, 2, 1, 2), 1 / 6)
        want = CONV(x, box, stride=(2, 3), dilation=(1, 2), padding=padding)
        got = AVG_POOL(x, window=(3, 2), stride=(2, 3), dilation=(1, 2),
                       padding=padding)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_max_pool_zhang_example():
    # Zhang (2019), Fig. 1: a one-pixel shift turns [0, 1, 0, 1] into [1, 1, 1, 1].
    x = jnp.array([0., 0., 1., 1., 0., 0., 1., 1.]).reshape(1, 1, 8, 1)
    kw = dict(window=(1, 2), stride=(1, 2), padding="circular")
    np.testing.assert_array_equal(ops.max_pool(x, **kw)[0, 0, :, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(
        ops.max_pool(jnp.roll(x, 1, axis=2), **kw)[0, 0, :, 0], [1, 1, 1, 1])


def test_max_pool_zero_padding_pads_with_zero():
    x = -np.ones((1, 3, 3, 1))
    got = ops.max_pool(x, window=3, stride=1, padding="zero")
    # only the centre window lies inside; all others see a padded 0
    want = np.zeros((1, 3, 3, 1))
    want[0, 1, 1, 0] = -1.0
    np.testing.assert_array_equal(got, want)


def test_conv_promotes_mixed_float_dtypes():
    x = np.ones((1, 4, 4, 1), np.float32)
    k = np.full((1, 1, 1, 1), 0.5, np.float64)
    got = ops.conv(x, k)
    assert got.dtype == jnp.float64
    np.testing.assert_array_equal(got, 0.5 * x)


# ------------------------------------------------------- strided == undecimated[::s]

_STRIDES_1 = (1, 2, 3, (1, 2), (2, 3))


def _op_all_strides(x, k, *, op, padding):
    """The op at stride 1 and at every stride in _STRIDES_1[1:], in one program."""
    kw = dict(dilation=(2, 1), padding=padding)
    outs = []
    for stride in _STRIDES_1:
        if op == "conv":
            outs.append(ops.conv(x, k, stride=stride, **kw))
        elif op == "max_pool":
            outs.append(ops.max_pool(x, window=(3, 4), stride=stride, **kw))
        elif op == "avg_pool":
            outs.append(ops.avg_pool(x, window=(3, 4), stride=stride, **kw))
        else:
            outs.append(ops.blur_pool(x, size=4, stride=stride, **kw))
    return outs


OP_ALL_STRIDES = jax.jit(_op_all_strides, static_argnames=("op", "padding"))


@pytest.mark.parametrize("op", ["conv", "max_pool", "avg_pool", "blur_pool"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(1, 7, 9, 2), (2, 8, 6, 3)])
def test_stride_equals_undecimated_sampled(op, padding, shape):
    # Small integers times integer or dyadic weights: every sum is exact in float32,
    # so the identity must hold bit for bit whatever the summation order.
    rng = np.random.default_rng(1)
    x = rng.integers(-8, 9, size=shape).astype(np.float32)
    k = rng.integers(-3, 4, size=(3, 4, shape[3], 2)).astype(np.float32)
    full, *strided = OP_ALL_STRIDES(x, k, op=op, padding=padding)
    kh = 4 if op == "blur_pool" else 3
    for stride, out in zip(_STRIDES_1[1:], strided):
        sy, sx = ref.pair(stride)
        assert out.shape[1:3] == (
            ref.output_size_ref(shape[1], kh, sy, 2, padding),
            ref.output_size_ref(shape[2], 4, sx, 1, padding))
        np.testing.assert_array_equal(out, full[:, ::sy, ::sx],
                                      err_msg=f"stride={stride}")


def test_output_size_and_window_pads_match_reference():
    for n, k, s, d, padding in itertools.product(
            [1, 4, 7, 8], [1, 2, 3, 4], [1, 2, 3], [1, 2], PADDINGS):
        if padding == "valid" and n < d * (k - 1) + 1:
            continue
        assert ops.output_size(n, k, stride=s, dilation=d, padding=padding) == \
            ref.output_size_ref(n, k, s, d, padding)
    for k, d in itertools.product(range(1, 8), [1, 2, 3]):
        lo, hi = ops.window_pads(k, d)
        assert lo + hi == d * (k - 1) and lo == d * ((k - 1) // 2)


@pytest.mark.parametrize("padding", ["zero", "circular", "reflect"])
def test_pad_reads_source_index(padding):
    x = _layout_input((1, 5, 4, 2), np.float64, 7)
    got = np.asarray(ops.pad(x, (4, 3), dilation=(1, 2), padding=padding))
    (ly, hy), (lx, hx) = ops.window_pads(4, 1), ops.window_pads(3, 2)
    assert got.shape == (1, 5 + ly + hy, 4 + lx + hx, 2)
    for i in range(got.shape[1]):
        for j in range(got.shape[2]):
            iy = ref.source_index(i - ly, 5, padding)
            ix = ref.source_index(j - lx, 4, padding)
            want = 0.0 if iy is None or ix is None else x[0, iy, ix]
            np.testing.assert_array_equal(got[0, i, j], want)
    np.testing.assert_array_equal(ops.pad(x, 3, padding="valid"), x)


# ---------------------------------------------------------------- à trous stacks
#
# A stack of strided ops r(x) and its undecimated version r2(x) (every stride set
# to 1, each op dilated by the product P of the strides in front of it). With
# y_k the strided and u_k the undecimated feature map before op k, y_k[j] =
# u_k[P j] inside the map, and op k reads y_k at j outside [0, M) (M = ceil(H/P))
# where r2 reads u_k at P j:
#   * "zero":     both read 0, so r == r2[::S] for every size;
#   * "valid":    nothing is read outside, r == r2[::S] for every size;
#   * "circular": y_k[j mod M] vs u_k[P j mod H]: equal iff P divides H;
#   * "reflect":  left edge always equal, right edge iff P divides H - 1.
# Shift equivariance, r(roll(x, t)) == roll(r2(x), t)[::S], then holds for
# "circular" only (r2 is then a composition of circular, stride-1 ops).


def _stack_impl(x, kernels, *, spec, undecimated, padding):
    py, px = 1, 1
    for (kind, k, (sy, sx), (dy, dx)), kern in zip(spec, kernels):
        if undecimated:
            stride, dil = 1, (dy * py, dx * px)
        else:
            stride, dil = (sy, sx), (dy, dx)
        if kind == "conv":
            x = jax.nn.relu(ops.conv(x, kern, stride=stride, dilation=dil,
                                     padding=padding))
        elif kind == "max_pool":
            x = ops.max_pool(x, window=k, stride=stride, dilation=dil,
                             padding=padding)
        elif kind == "avg_pool":
            x = ops.avg_pool(x, window=k, stride=stride, dilation=dil,
                             padding=padding)
        else:
            x = ops.blur_pool(x, size=k[0], stride=stride, dilation=dil,
                              padding=padding)
        py, px = py * sy, px * sx
    return x


_STACK = jax.jit(_stack_impl, static_argnames=("spec", "undecimated", "padding"))


def _stack(x, layers, *, undecimated, padding):
    """Applies layers (kind, window, stride, dilation, kernel or None) in order.

    Returns the output and the total stride.
    """
    spec = tuple((kind, tuple(k), tuple(s), tuple(d)) for kind, k, s, d, _ in layers)
    kernels = tuple(arg for *_, arg in layers)
    out = _STACK(jnp.asarray(x), kernels, spec=spec, undecimated=undecimated,
                 padding=padding)
    total = (int(np.prod([lay[2][0] for lay in layers])),
             int(np.prod([lay[2][1] for lay in layers])))
    return np.asarray(out), total


def _fixed_layers(c=2):
    rng = np.random.default_rng(5)
    k = rng.normal(size=(3, 3, c, c))
    return [("conv", (3, 3), (2, 2), (1, 1), k),
            ("max_pool", (2, 3), (1, 2), (1, 1), None),
            ("blur_pool", (3, 3), (2, 1), (1, 1), None)]


def _both(x, layers, padding):
    r, s = _stack(x, layers, undecimated=False, padding=padding)
    r2, s2 = _stack(x, layers, undecimated=True, padding=padding)
    assert s == s2 == (4, 4)
    assert r2.shape[1:3] == x.shape[1:3] or padding == "valid"
    return r, r2


@pytest.mark.parametrize("padding", ["zero", "valid"])
@pytest.mark.parametrize("hw", [(16, 16), (19, 23)])
def test_atrous_stack_zero_and_valid_any_size(padding, hw):
    x = np.random.default_rng(0).normal(size=(1, *hw, 2))
    r, r2 = _both(x, _fixed_layers(), padding)
    np.testing.assert_allclose(r, r2[:, ::4, ::4], rtol=1e-12, atol=1e-12)


def test_atrous_stack_circular_needs_dividing_strides():
    rng = np.random.default_rng(1)
    layers = _fixed_layers()
    # strides in front of the last op: (2*1, 2*2) = (2, 4) must divide (H, W)
    x = rng.normal(size=(2, 12, 16, 2))
    r, r2 = _both(x, layers, "circular")
    np.testing.assert_allclose(r, r2[:, ::4, ::4], rtol=1e-12, atol=1e-12)
    x = rng.normal(size=(1, 13, 18, 2))          # 2 ∤ 13 and 4 ∤ 18
    r, r2 = _both(x, layers, "circular")
    assert r.shape == r2[:, ::4, ::4].shape
    assert np.abs(r - r2[:, ::4, ::4]).max() > 1e-3


def test_atrous_stack_reflect_needs_size_one_more_than_multiple():
    rng = np.random.default_rng(2)
    layers = _fixed_layers()
    x = rng.normal(size=(1, 13, 17, 2))          # 2 | 12 and 4 | 16
    r, r2 = _both(x, layers, "reflect")
    np.testing.assert_allclose(r, r2[:, ::4, ::4], rtol=1e-12, atol=1e-12)
    x = rng.normal(size=(1, 12, 16, 2))
    r, r2 = _both(x, layers, "reflect")
    assert np.abs(r - r2[:, ::4, ::4]).max() > 1e-3


def test_circular_stack_shift_equivariance_for_every_shift():
    # docs/architecture.md: r(roll(x, t))[i] == r2(x)[S*i - t], i.e. every polyphase
    # component of r2 is the strided response to one of the S x S shifts.
    x = np.random.default_rng(3).normal(size=(1, 16, 16, 2))
    layers = _fixed_layers()
    r2, (sy, sx) = _stack(x, layers, undecimated=True, padding="circular")
    comps = np.asarray(ops.polyphase(r2, (sy, sx)))
    for ty in range(sy):
        for tx in range(sx):
            xs = np.roll(x, (ty, tx), axis=(1, 2))
            r, _ = _stack(xs, layers, undecimated=False, padding="circular")
            want = np.roll(r2, (ty, tx), axis=(1, 2))[:, ::sy, ::sx]
            np.testing.assert_allclose(r, want, rtol=1e-12, atol=1e-12)
            # the same, read off r2's polyphase component (-t mod S)
            np.testing.assert_allclose(
                r, np.roll(comps[:, (-ty) % sy, (-tx) % sx],
                           ((ty + sy - 1) // sy, (tx + sx - 1) // sx), axis=(1, 2)),
                rtol=1e-12, atol=1e-12)


def test_zero_padding_is_not_shift_equivariant():
    x = np.random.default_rng(4).normal(size=(1, 16, 16, 2))
    layers = _fixed_layers()
    r2, _ = _stack(x, layers, undecimated=True, padding="zero")
    r, _ = _stack(np.roll(x, (1, 3), axis=(1, 2)), layers, undecimated=False,
                  padding="zero")
    want = np.roll(r2, (1, 3), axis=(1, 2))[:, ::4, ::4]
    assert np.abs(r - want).max() > 1e-3


_OPS = ["conv", "max_pool", "avg_pool", "blur_pool"]


@st.composite
def _random_stack(draw):
    padding = draw(st.sampled_from(["zero", "valid", "circular", "reflect"]))
    depth = draw(st.integers(1, 3))
    layers = []
    for _ in range(depth):
        kind = draw(st.sampled_from(_OPS))
        if kind == "blur_pool":
            k = (draw(st.integers(1, 4)),) * 2
        else:
            k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dil = (draw(st.integers(1, 2)), 1)
        layers.append([kind, k, stride, dil, None])
    sizes = []
    for axis in range(2):
        prior = int(np.prod([lay[2][axis] for lay in layers[:-1]]))
        cum, field, need = 1, 1, 0
        for kind, k, stride, dil, _ in layers:
            field += cum * dil[axis] * (k[axis] - 1)
            need = max(need, cum * max(ops.window_pads(k[axis], dil[axis])))
            cum *= stride[axis]
        extra = draw(st.integers(0, 3))
        if padding in ("zero", "valid"):
            sizes.append(max(field, 2) + extra)
        elif padding == "circular":
            sizes.append(prior * (max(1, -(-field // prior)) + extra))
        else:     # reflect: size - 1 divisible by prior, pads fit at every stage
            sizes.append(1 + prior * (max(1, -(-need // prior)) + extra))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    for lay in layers:
        if lay[0] == "conv":
            lay[4] = rng.normal(size=(*lay[1], 2, 2)) / 3
    shift = (draw(st.integers(0, 8)), draw(st.integers(0, 8)))
    return padding, [tuple(lay) for lay in layers], tuple(sizes), seed, shift


@pytest.mark.slow
@settings(max_examples=25, deadline=None)   # each example compiles two stacks
@given(_random_stack())
def test_random_stacks_strided_equals_undecimated(spec):
    padding, layers, (h, w), seed, shift = spec
    x = np.random.default_rng(seed).normal(size=(1, h, w, 2))
    r, s = _stack(x, layers, undecimated=False, padding=padding)
    r2, s2 = _stack(x, layers, undecimated=True, padding=padding)
    assert s == s2
    np.testing.assert_allclose(r, r2[:, ::s[0], ::s[1]], rtol=1e-11, atol=1e-11)
    if padding == "circular":
        t = (shift[0] % s[0], shift[1] % s[1])
        rt, _ = _stack(np.roll(x, t, axis=(1, 2)), layers, undecimated=False,
                       padding=padding)
        want = np.roll(r2, t, axis=(1, 2))[:, ::s[0], ::s[1]]
        np.testing.assert_allclose(rt, want, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------- polyphase

@pytest.mark.parametrize("shape,stride", [((2, 6, 8, 3), 2), ((1, 6, 9, 2), 3),
                                          ((1, 1, 8, 1), (1, 4)),
                                          ((1, 6, 6, 2), (2, 3)),
                                          ((1, 5, 7, 1), 1)])
def test_polyphase_matches_reference_and_round_trips(shape, stride):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    comp = ops.polyphase(x, stride)
    np.testing.assert_array_equal(comp, ref.polyphase_ref(x, stride))
    sy, sx = ref.pair(stride)
    for py in range(sy):
        for px in range(sx):
            np.testing.assert_array_equal(comp[:, py, px], x[:, py::sy, px::sx])
    np.testing.assert_array_equal(ops.unpolyphase(comp), x)
    c = np.arange(np.prod(comp.shape), dtype=np.float64).reshape(comp.shape)
    np.testing.assert_array_equal(ops.unpolyphase(c), ref.unpolyphase_ref(c))
    np.testing.assert_array_equal(ops.polyphase(ops.unpolyphase(c), stride), c)


# ------------------------------------------------------------------- blur pool

def _explicit_pad(x, k, dilation, padding):
    """np.pad with the anchoring of sigcnn.ops, each axis with its own dilation."""
    if padding == "valid":
        return x
    dy, dx = dilation
    lo_y, lo_x = (k - 1) // 2 * dy, (k - 1) // 2 * dx
    hi_y, hi_x = (k - 1) * dy - lo_y, (k - 1) * dx - lo_x
    mode = {"zero": "constant", "circular": "wrap", "reflect": "reflect"}[padding]
    return np.pad(x, ((0, 0), (lo_y, hi_y), (lo_x, hi_x), (0, 0)), mode=mode)


@pytest.mark.parametrize("size,padding", [
    (size, PADDINGS[(size + j) % 4]) for size in BLUR_SIZES for j in (0, 2)])
def test_blur_pool_equals_depthwise_lax_conv(size, padding):
    x = np.random.default_rng(size).normal(size=(2, 15, 14, 3)).astype(np.float32)
    b = np.array([math.comb(size - 1, j) for j in range(size)]) / 2 ** (size - 1)
    k2 = np.outer(b, b).astype(np.float32)
    kernel = np.repeat(k2[:, :, None, None], 3, axis=3)        # [k, k, 1, C]
    configs = [(1, (1, 1)), (2, (1, 1)), ((2, 3), (1, 2))]
    stride, dil = configs[(size + PADDINGS.index(padding)) % 3]
    sy, sx = ref.pair(stride)
    want = lax.conv_general_dilated(
        jnp.asarray(_explicit_pad(x, size, dil, padding)), jnp.asarray(kernel),
        window_strides=(sy, sx), padding="VALID", rhs_dilation=dil,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3,
        precision=lax.Precision.HIGHEST)
    got = BLUR_POOL(x, size=size, stride=stride, dilation=dil, padding=padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[np.float32])


@pytest.mark.parametrize("size", BLUR_SIZES)
def test_blur_frequency_response_is_binomial(size):
    # The impulse response's DFT magnitude is |cos(pi fy)|^(k-1) |cos(pi fx)|^(k-1)
    # (Zhang 2019; binomial = (1 + e^{-2 pi i f})^(k-1) / 2^(k-1)).
    h, w = 16, 12
    delta = np.zeros((1, h, w, 1))
    delta[0, 5, 7, 0] = 1.0
    resp = np.asarray(BLUR_POOL(delta, size=size, stride=1,
                                padding="circular"))[0, :, :, 0]
    mag = np.abs(np.fft.fft2(resp))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    want = np.abs(np.cos(np.pi * fy)) ** (size - 1) * np.abs(np.cos(np.pi * fx)) ** (
        size - 1)
    np.testing.assert_allclose(mag, want, atol=1e-13)
    np.testing.assert_allclose(resp.sum(), 1.0, rtol=1e-14)


def test_blur_pool_on_tone_scales_amplitude():
    # An on-grid cosine at f is an eigenfunction (up to a phase): blur(x) has
    # amplitude |cos(pi f)|^(k-1) times that of x.
    n = 32
    u = np.arange(n)
    for size, kf in [(3, 3), (4, 5), (5, 8), (7, 11)]:
        f = kf / n
        x = np.cos(2 * np.pi * f * u).reshape(1, 1, n, 1)
        y = np.asarray(BLUR_POOL(x, size=size, stride=1, padding="circular"))
        gain = np.sqrt((y ** 2).sum() / (x ** 2).sum())
        np.testing.assert_allclose(gain, abs(np.cos(np.pi * f)) ** (size - 1),
                                   rtol=1e-12)


@pytest.mark.parametrize("size", BLUR_SIZES)
def test_binomial_filter(size):
    b = ops.binomial_filter(size)
    assert b.shape == (size,) and b.dtype == np.float64
    np.testing.assert_array_equal(b, ref.binomial_ref(size))
    assert b.sum() == 1.0
    np.testing.assert_array_equal(b, b[::-1])


# --------------------------------------------------------------- ideal low-pass

@pytest.mark.parametrize("shape,cutoff", [((2, 16, 12, 3), 0.25),
                                          ((1, 15, 9, 1), (0.2, 0.4)),
                                          ((1, 1, 16, 2), (0.5, 1 / 6)),
                                          ((1, 8, 8, 1), 0.5)])
def test_ideal_lowpass_zeroes_box_complement(shape, cutoff):
    x = np.random.default_rng(0).normal(size=shape)
    y = np.asarray(LOWPASS(x, cutoff=cutoff))
    cy, cx = ref.pair(cutoff) if not isinstance(cutoff, float) else (cutoff, cutoff)
    fy = np.abs(np.fft.fftfreq(shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(shape[2]))[None, :]
    inside = (fy < cy) & (fx < cx)
    np.testing.assert_array_equal(ops.lowpass_mask(shape[1:3], cutoff), inside)
    sx_ = np.fft.fft2(x, axes=(1, 2))
    sy_ = np.fft.fft2(y, axes=(1, 2))
    np.testing.assert_allclose(np.abs(sy_[:, ~inside]), 0.0, atol=1e-11)
    np.testing.assert_allclose(sy_[:, inside], sx_[:, inside], atol=1e-11)
    # idempotent, and float32 stays float32
    np.testing.assert_allclose(LOWPASS(y, cutoff=cutoff), y, atol=1e-12)
    assert LOWPASS(x.astype(np.float32), cutoff=cutoff).dtype == np.float32


def test_ideal_lowpass_removes_bins_at_the_cutoff():
    u = np.arange(16)
    at = np.cos(2 * np.pi * 4 / 16 * u).reshape(1, 1, 16, 1)     # f = 1/4 exactly
    below = np.cos(2 * np.pi * 3 / 16 * u).reshape(1, 1, 16, 1)
    np.testing.assert_allclose(ops.ideal_lowpass(at + below, cutoff=0.25), below,
                               atol=1e-13)


def test_lowpass_mask_at_nyquist_matches_reference():
    # cutoff 1/(2s) must exclude bin k/n == 1/(2s) exactly, for every n and s
    for n, s in itertools.product(range(1, 65), range(1, 9)):
        np.testing.assert_array_equal(
            ops.lowpass_mask((1, n), (0.5, 1 / (2 * s))),
            ref.nyquist_mask_ref((1, n), (1, s)), err_msg=f"n={n}, s={s}")
    for shape, stride in [((8, 8), 2), ((9, 6), (3, 2)), ((7, 1), 1)]:
        sy, sx = ref.pair(stride)
        np.testing.assert_array_equal(
            ops.lowpass_mask(shape, (1 / (2 * sy), 1 / (2 * sx))),
            ref.nyquist_mask_ref(shape, stride))


def _numpy_max_pool_grad(xp, window, stride, dilation, g):
    """Cotangent of a VALID max pool, by hand: each window's cotangent goes to its
    first maximal tap in row-major order (XLA's select-and-scatter rule)."""
    out = np.zeros_like(xp)
    n, ho, wo, c = g.shape
    for b, p, q, ch in itertools.product(range(n), range(ho), range(wo), range(c)):
        taps = [(p * stride[0] + i * dilation[0], q * stride[1] + j * dilation[1])
                for i in range(window[0]) for j in range(window[1])]
        vals = [xp[b, r, s, ch] for r, s in taps]
        r, s = taps[int(np.argmax(vals))]        # argmax: the first maximum
        out[b, r, s, ch] += g[b, p, q, ch]
    return out


def _vjp_at(f, args, g):
    """(f(*args), f's VJP at the cotangent g) in one compiled call: eager VJPs
    compile every primitive on its own, which makes small tests slow."""
    def run(args, g):
        y, vjp = jax.vjp(f, *args)
        return y, vjp(g)
    return jax.jit(run)(tuple(args), g)


def _vjp_at_random_cotangent(f, args, rng):
    """f(*args), a float32 cotangent g drawn from rng, and f's VJP at g."""
    g = jnp.asarray(rng.normal(size=jax.eval_shape(f, *args).shape), jnp.float32)
    y, grads = _vjp_at(f, args, g)
    return y, g, grads


@pytest.mark.parametrize("window,stride,dilation,padding", [
    ((2, 2), (2, 2), (1, 1), "zero"), ((3, 3), (2, 2), (1, 1), "circular"),
    ((2, 3), (1, 2), (2, 1), "reflect"), ((3, 2), (1, 1), (2, 3), "valid")])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_gradient_matches_first_maximum_rule(window, stride, dilation,
                                                      padding, ties):
    # The custom VJP equals the select-and-scatter rule, with ties (ReLU zeros)
    # and with dilated windows, for which JAX's own max-pool VJP is missing.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8, 2)).astype(np.float32)
    if ties:
        x = np.maximum(np.round(x), 0).astype(np.float32)
    f = lambda x: ops.max_pool(x, window=window, stride=stride,   # noqa: E731
                               dilation=dilation, padding=padding)
    _, g, (got,) = _vjp_at_random_cotangent(f, (jnp.asarray(x),), rng)
    g, got = np.asarray(g), np.asarray(got)
    xp, unpad = jax.vjp(lambda x: ops._pad(x, window, dilation, padding),
                        jnp.asarray(x))
    want_p = _numpy_max_pool_grad(np.asarray(xp), window, stride, dilation, g)
    want = np.asarray(unpad(jnp.asarray(want_p))[0])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if dilation == (1, 1):          # and JAX's own rule where it exists
        ref_f = lambda x: lax.reduce_window(                      # noqa: E731
            ops._pad(x, window, dilation, padding), -jnp.inf, lax.max,
            (1, *window, 1), (1, *stride, 1), "VALID")
        theirs = _vjp_at(ref_f, (jnp.asarray(x),), jnp.asarray(g))[1][0]
        np.testing.assert_allclose(got, np.asarray(theirs), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# The written-out backward passes (sigcnn._op_vjps) against JAX's own transposes
# of the plain lax forward computations.

def _lax_conv_ref(x, k, stride, dilation, padding):
    # plain lax: np.pad-equivalent jnp.pad, then JAX's conv rule
    kh, kw, kin, _ = k.shape
    mode = {"zero": "constant", "circular": "wrap", "reflect": "reflect"}
    if padding != "valid":
        widths = ((0, 0), ops.window_pads(kh, dilation[0]),
                  ops.window_pads(kw, dilation[1]), (0, 0))
        x = jnp.pad(x, widths, mode=mode[padding])
    return lax.conv_general_dilated(
        x, k, stride, "VALID", rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=x.shape[3] // kin, precision=lax.Precision.HIGHEST)


@pytest.mark.parametrize("stride,dilation,padding,groups,kernel", [
    ((1, 1), (1, 1), "zero", 1, (3, 3)), ((2, 2), (1, 1), "circular", 1, (3, 3)),
    ((1, 2), (2, 1), "reflect", 1, (2, 3)), ((3, 1), (1, 3), "valid", 1, (3, 2)),
    ((2, 2), (1, 1), "zero", 2, (3, 3)), ((1, 1), (2, 2), "circular", 4, (3, 1))])
@pytest.mark.parametrize("min_positions", [0, 10**9])   # per-tap matmuls / lax
def test_conv_gradients_match_jax_transposes(stride, dilation, padding, groups,
                                             kernel, min_positions, monkeypatch):
    monkeypatch.setattr(_op_vjps, "MIN_POSITIONS", min_positions)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 9, 11, 4)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(*kernel, 4 // groups, 4)), jnp.float32)
    ours = lambda x, k: ops.conv(x, k, stride=stride, dilation=dilation,  # noqa: E731
                                 padding=padding)
    theirs = lambda x, k: _lax_conv_ref(x, k, stride, dilation, padding)  # noqa: E731
    y, g, grads = _vjp_at_random_cotangent(ours, (x, k), rng)
    y_ref, grads_ref = _vjp_at(theirs, (x, k), g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    for got, want in zip(grads, grads_ref):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_conv_kernel_gradient_equals_naive_correlation_float64(monkeypatch):
    monkeypatch.setattr(_op_vjps, "MIN_POSITIONS", 0)
    # independent oracle:
    # dK[a, b, c, o] = sum_{n,i,j} xp[n, s*i + d*a, s*j + d*b, c] g[n, i, j, o]
    with jax.enable_x64():
        rng = np.random.default_rng(2)
        x = rng.normal(size=(2, 7, 8, 3))
        k = rng.normal(size=(3, 2, 3, 5))
        s, d = (2, 1), (1, 2)
        f = lambda k: ops.conv(jnp.asarray(x), k, stride=s, dilation=d)  # noqa: E731
        y, vjp = jax.vjp(f, jnp.asarray(k))
        g = rng.normal(size=y.shape)
        got = np.asarray(vjp(jnp.asarray(g))[0])
        xp = np.pad(x, ((0, 0), ops.window_pads(3, d[0]), ops.window_pads(2, d[1]),
                        (0, 0)))
        want = np.zeros_like(k)
        for a, b in itertools.product(range(3), range(2)):
            taps = xp[:, d[0] * a::s[0], d[1] * b::s[1]][:, :g.shape[1], :g.shape[2]]
            want[a, b] = np.einsum("nijc,nijo->co", taps, g)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["zero", "circular", "reflect", "valid"])
@pytest.mark.parametrize("size,stride,dilation", [(4, 2, 1), (3, (1, 2), (2, 1)),
                                                  (7, 1, 1)])
def test_blur_pool_gradient_matches_jax_transpose(padding, size, stride, dilation):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 15, 16, 3)), jnp.float32)
    f = lambda x: ops.blur_pool(x, size=size, stride=stride,  # noqa: E731
                                dilation=dilation, padding=padding)
    d2 = ops.as_pair("dilation", dilation)
    k2 = np.outer(ops.binomial_filter(size), ops.binomial_filter(size))
    k = jnp.asarray(np.tile(k2[:, :, None, None], (1, 1, 1, 3)), jnp.float32)
    ref_f = lambda x: _lax_conv_ref(x, k, ops.as_pair("stride", stride), d2,  # noqa: E731
                                    padding)
    y, g, (dx,) = _vjp_at_random_cotangent(f, (x,), rng)
    y_ref, (dx_ref,) = _vjp_at(ref_f, (x,), g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["circular", "reflect"])
@pytest.mark.parametrize("h,window,dilation", [(5, 3, 1), (5, 4, 2), (2, 7, 1),
                                               (1, 3, 3), (6, 2, 1)])
def test_pad_equals_numpy_pad(padding, h, window, dilation):
    lo, hi = ops.window_pads(window, dilation)
    if padding == "reflect" and max(lo, hi) >= h:
        return                               # refused, tested above
    x = np.random.default_rng(4).normal(size=(1, h, 3, 2)).astype(np.float32)
    got = ops.pad(jnp.asarray(x), (window, 1), dilation=(dilation, 1),
                  padding=padding)
    want = np.pad(x, ((0, 0), (lo, hi), (0, 0), (0, 0)),
                  mode="wrap" if padding == "circular" else "reflect")
    np.testing.assert_array_equal(got, want)


def test_second_order_gradient_and_forward_mode(monkeypatch):
    monkeypatch.setattr(_op_vjps, "MIN_POSITIONS", 0)
    # reverse-over-reverse works through the written-out rules; forward mode is
    # refused by JAX with a TypeError (documented in sigcnn._op_vjps)
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(1, 6, 6, 2)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 2, 2)), jnp.float32)

    def loss(k, conv):
        return jnp.sum(jnp.tanh(conv(x, k)) ** 2)

    ours = lambda x, k: ops.blur_pool(ops.conv(x, k, stride=1), size=3)  # noqa: E731
    theirs = lambda x, k: _lax_conv_ref(  # noqa: E731
        _lax_conv_ref(x, k, (1, 1), (1, 1), "zero"),
        jnp.asarray(np.tile(np.outer(ops.binomial_filter(3), ops.binomial_filter(3))
                            [:, :, None, None], (1, 1, 1, 2)), jnp.float32),
        (2, 2), (1, 1), "reflect")
    v = jnp.asarray(rng.normal(size=k.shape), jnp.float32)
    hvp = lambda conv: jax.jit(jax.grad(  # noqa: E731
        lambda k: jnp.vdot(jax.grad(loss)(k, conv), v)))(k)
    np.testing.assert_allclose(hvp(ours), hvp(theirs), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda k: ops.conv(x, k), (k,), (v,))
