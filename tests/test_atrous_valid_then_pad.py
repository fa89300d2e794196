"""Regression: a VALID strided conv or pool (or a polyphase split) on x, then zero
padding.

A VALID window op on x reads x around its circle, so its undecimated output stays
exactly shift-equivariant; its support, though, is the à trous network's extent
(the window shortens it, as a space-to-depth split does), and the positions of
the circle past that extent hold wrapped values. Zero padding that follows must
put its zeros right after the extent, as the à trous network does. (Found by the
grammar's property test: r2 agreed with f(x) on the sampled positions and
differed from the à trous network at the other phases by O(1).)

References, neither from sigcnn's interpreter:

* the à trous network computed directly in NumPy (float64): strides removed,
  later windows dilated by the stride in front of them, padding scaled alike;
* the polyphase property of zero and VALID padding, which checks that reference
  against f itself: phase (py, px) of the à trous network is f of the input
  cropped by (py, px) at the front, ``r2[:, py::sy, px::sx] == f(x[:, py:, px:])``
  (the whole blocks of it, for the split).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sigcnn as sc

CIN = 2


def _he(rng, shape):
    fan_in = int(np.prod(shape[:-1]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


# --------------------------------------------------------------------------------------
# The à trous network in NumPy: NHWC, VALID windows after explicit padding.
# --------------------------------------------------------------------------------------


def _np_pad(x, pads, value):
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _np_conv(x, w, dil, pads=((0, 0), (0, 0)), groups=1):
    """Cross-correlation with HWIO taps dilated by `dil`, after zero padding."""
    x = _np_pad(x, pads, 0.0)
    kh, kw, cig, cout = w.shape
    ho, wo = x.shape[1] - dil[0] * (kh - 1), x.shape[2] - dil[1] * (kw - 1)
    cog = cout // groups
    out = np.zeros((x.shape[0], ho, wo, cout))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dil[0]:i * dil[0] + ho, j * dil[1]:j * dil[1] + wo]
            for q in range(groups):
                out[..., q * cog:(q + 1) * cog] += (
                    patch[..., q * cig:(q + 1) * cig] @ w[i, j, :, q * cog:(q + 1) * cog])
    return out


def _np_pool(x, kind, window, dil, pads=((0, 0), (0, 0))):
    """Max or average (dividing by the window size) with taps dilated by `dil`."""
    x = _np_pad(x, pads, -np.inf if kind == "max" else 0.0)
    kh, kw = window
    ho, wo = x.shape[1] - dil[0] * (kh - 1), x.shape[2] - dil[1] * (kw - 1)
    taps = [x[:, i * dil[0]:i * dil[0] + ho, j * dil[1]:j * dil[1] + wo]
            for i in range(kh) for j in range(kw)]
    return np.max(taps, axis=0) if kind == "max" else np.mean(taps, axis=0)


# --------------------------------------------------------------------------------------
# The networks: first op VALID at stride s; zero padding by one sample and a 3 x 3
# window at stride 1; tanh; optionally a VALID 1 x 2 conv.
# --------------------------------------------------------------------------------------


def _params(first, k, tail, seed=0):
    rng = np.random.default_rng(seed)
    c1 = {"conv": 3, "s2d": 4 * CIN}.get(first, CIN)
    p = {"w2": _he(rng, (3, 3, c1, 3)), "b2": _he(rng, (3,))}
    if first == "conv":
        p["w1"], p["b1"] = _he(rng, k + (CIN, c1)), _he(rng, (c1,))
    if first == "dwconv":
        p["w1"], p["b1"] = _he(rng, k + (1, CIN)), _he(rng, (CIN,))
    if tail:
        p["w3"] = _he(rng, (1, 2, 3, 2))
    return p


def _space_to_depth(y):
    n, h, w, c = y.shape
    y = y.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h // 2, w // 2, 4 * c)


def _strided(first, k, s, pad, layout, p):
    """f as a user writes it, with every op in `layout` (NCHW: x is transposed in;
    the space-to-depth is NHWC only)."""
    nchw = layout == "NCHW"
    dn = ("NCHW", "OIHW", "NCHW") if nchw else ("NHWC", "HWIO", "NHWC")
    sp = (2, 3) if nchw else (1, 2)

    def conv(y, w, stride, padding, groups=1):
        w = jnp.transpose(w, (3, 2, 0, 1)) if nchw else w
        return lax.conv_general_dilated(y, w, stride, padding, dimension_numbers=dn,
                                        feature_group_count=groups)

    def bias(y, b):
        return y + (b[:, None, None] if nchw else b)

    def reduce(y, kind, window, stride, padding):
        dims, strides = [1] * 4, [1] * 4
        for a, wi, si in zip(sp, window, stride):
            dims[a], strides[a] = wi, si
        if padding != "VALID":
            full = [(0, 0)] * 4
            for a, q in zip(sp, padding):
                full[a] = q
            padding = full
        init, op = (-jnp.inf, lax.max) if kind == "max" else (0.0, lax.add)
        y = lax.reduce_window(y, init, op, dims, strides, padding)
        return y if kind == "max" else y / (window[0] * window[1])

    one = ((1, 1), (1, 1))

    def f(x):
        y = jnp.transpose(x, (0, 3, 1, 2)) if nchw else x
        if first in ("conv", "dwconv"):
            groups = CIN if first == "dwconv" else 1
            y = bias(conv(y, p["w1"], s, "VALID", groups), p["b1"])
        elif first == "s2d":
            y = _space_to_depth(y)
        else:
            y = reduce(y, first, k, s, "VALID")
        if pad == "jnp":
            cfg = [(0, 0)] * 4
            cfg[sp[0]], cfg[sp[1]] = one
            y = bias(conv(jnp.pad(y, cfg), p["w2"], (1, 1), "VALID"), p["b2"])
        elif pad == "lax":
            y = bias(conv(y, p["w2"], (1, 1), one), p["b2"])
        else:  # a max pool with lax pairs (lax pads with -inf)
            y = reduce(y, "max", (3, 3), (1, 1), one)
        y = jnp.tanh(y)
        if "w3" in p:
            y = conv(y, p["w3"], (1, 1), "VALID")
        return jnp.transpose(y, (0, 2, 3, 1)) if nchw else y

    return f


def _atrous(first, k, s, pad, p, x):
    """The à trous network of `_strided` in NumPy (float64, NHWC)."""
    y = np.asarray(x, np.float64)
    if first in ("conv", "dwconv"):
        groups = CIN if first == "dwconv" else 1
        y = _np_conv(y, p["w1"], (1, 1), groups=groups) + p["b1"]
    elif first == "s2d":  # channel (qy, qx, c) at p is x[p + q, c]
        h, w = y.shape[1] - 1, y.shape[2] - 1
        y = np.concatenate([y[:, qy:qy + h, qx:qx + w] for qy in (0, 1)
                            for qx in (0, 1)], axis=3)
    else:
        y = _np_pool(y, first, k, (1, 1))
    d = s  # the cumulative stride from here on
    scaled = ((d[0], d[0]), (d[1], d[1]))
    if pad == "maxpool":
        y = _np_pool(y, "max", (3, 3), d, scaled)
    else:
        y = _np_conv(y, p["w2"], d, scaled) + p["b2"]
    y = np.tanh(y)
    if "w3" in p:
        y = _np_conv(y, p["w3"], d)
    return y


CASES = [
    # first op, its window, its stride, padding after it, layout, (H, W), tail conv
    ("conv", (2, 2), (3, 3), "jnp", "NCHW", (13, 9), False),  # the example found
    ("conv", (2, 2), (3, 3), "lax", "NHWC", (13, 9), True),
    ("conv", (3, 2), (2, 3), "jnp", "NHWC", (12, 11), False),
    ("dwconv", (3, 3), (1, 2), "jnp", "NCHW", (13, 9), True),
    ("dwconv", (3, 3), (1, 2), "lax", "NHWC", (11, 10), False),
    ("max", (2, 2), (2, 2), "jnp", "NHWC", (8, 8), False),  # reads all of x
    ("max", (2, 2), (2, 2), "lax", "NCHW", (11, 9), True),
    ("max", (3, 3), (2, 3), "maxpool", "NHWC", (13, 10), False),
    ("avg", (3, 2), (2, 3), "jnp", "NCHW", (12, 11), False),
    ("avg", (2, 2), (3, 3), "lax", "NHWC", (10, 7), True),
    ("s2d", (2, 2), (2, 2), "jnp", "NHWC", (10, 8), False),  # a polyphase split
    ("s2d", (2, 2), (2, 2), "lax", "NHWC", (8, 12), True),
]


def _close(actual, ref, what):
    """Equal values over ref's extent, then equal shapes (float32 tolerance)."""
    actual, ref = np.asarray(actual, np.float64), np.asarray(ref, np.float64)
    tol = 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    np.testing.assert_allclose(actual[tuple(slice(n) for n in ref.shape)], ref,
                               rtol=0, atol=tol, err_msg=what)
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != {ref.shape}"


@pytest.mark.parametrize("first, k, s, pad, layout, hw, tail", CASES, ids=[
    f"{c[0]}{c[1][0]}x{c[1][1]}-s{c[2][0]}x{c[2][1]}-{c[3]}-{c[4]}-{c[5][0]}x{c[5][1]}"
    + ("-tail" if c[6] else "") for c in CASES])
def test_valid_strided_op_then_zero_padding(first, k, s, pad, layout, hw, tail):
    p = _params(first, k, tail)
    f = jax.jit(_strided(first, k, s, pad, layout, p))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2,) + hw + (CIN,)),
                    jnp.float32)
    ref = _atrous(first, k, s, pad, p, x)
    # The reference is f's, phase by phase; the phases tile its extent.
    counts = [0, 0]
    for py in range(s[0]):
        for px in range(s[1]):
            xc = x[:, py:, px:]
            if first == "s2d":  # whole blocks (the split reads no others)
                xc = xc[:, :xc.shape[1] // 2 * 2, :xc.shape[2] // 2 * 2]
            out = f(xc)
            _close(out, ref[:, py::s[0], px::s[1]], f"f(x[:, {py}:, {px}:])")
            counts[0] += out.shape[1] if px == 0 else 0
            counts[1] += out.shape[2] if py == 0 else 0
    assert tuple(counts) == ref.shape[1:3]
    r2, stride = sc.undecimate(f)(x)
    assert tuple(stride) == s
    _close(r2, ref, "r2 vs the à trous network (every phase, its extent)")


def test_valid_op_output_keeps_extent_or_circle():
    """An output leaf straight after a VALID op on x: the à trous extent, or the
    whole circle when the op reads all of x (then exactly the responses to the
    shifted inputs, r2[S*i - t] == f(roll(x, t))[i])."""
    rng = np.random.default_rng(2)
    w = _he(rng, (2, 2, CIN, 3))
    x = jnp.asarray(rng.standard_normal((1, 12, 9, CIN)), jnp.float32)

    def conv(x):  # reads rows 0..10 and columns 0..7 only
        return lax.conv_general_dilated(x, w, (3, 3), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    r2, stride = sc.undecimate(conv)(x)
    assert tuple(stride) == (3, 3)
    _close(r2, _np_conv(np.asarray(x, np.float64), w, (1, 1)), "VALID conv r2")

    def pool(x):  # reads all of x
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                 "VALID")

    x = x[:, :8, :6]
    r2, stride = sc.undecimate(pool)(x)
    assert tuple(stride) == (2, 2) and r2.shape[1:3] == (8, 6)
    _close(r2[:, :7, :5], _np_pool(np.asarray(x, np.float64), "max", (2, 2), (1, 1)),
           "VALID pool r2 (à trous extent)")
    for t in [(1, 0), (0, 1), (1, 1)]:
        rows, cols = (2 * np.arange(4) - t[0]) % 8, (2 * np.arange(3) - t[1]) % 6
        _close(np.asarray(r2)[:, rows][:, :, cols],
               pool(jnp.roll(x, t, axis=(1, 2))), f"r2 vs f(roll(x, {t}))")


# --------------------------------------------------------------------------------------
# A value whose support covers the circle (a VALID op with a 1-tap window along an
# axis keeps all of x there; a circularly padded layer's output covers it too): its
# support is still the à trous extent, and zero padding after it puts its zeros
# right after that extent, not after wrapped values. (Found by the grammar's
# property test, as above.)
# --------------------------------------------------------------------------------------


def _np_gelu(y):  # jax.nn.gelu's default (tanh) form
    return 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))


def _nhwc_conv(y, w, stride, padding, groups=1):
    return lax.conv_general_dilated(y, w, stride, padding, feature_group_count=groups,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _grammar_example(p):
    """The network found: an NCHW conv with a 1 x 3 dilated window (1 tap along H,
    so VALID there: it keeps all of H, the circle) after jnp zero padding along W;
    a flax VALID max pool; a grouped 1 x 1 conv; an average pool with lax zero
    pairs."""
    import flax.linen as nn

    def f(x):
        y = jnp.pad(jnp.transpose(x, (0, 3, 1, 2)), ((0, 0), (0, 0), (0, 0), (2, 2)))
        y = lax.conv_general_dilated(y, jnp.transpose(p["w1"], (3, 2, 0, 1)), (2, 3),
                                     "VALID", rhs_dilation=(1, 2),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        y = jax.nn.relu(jnp.transpose(y, (0, 2, 3, 1)) + p["b1"])
        y = nn.max_pool(y, (3, 3), strides=(1, 1), padding="VALID")
        y = jax.nn.gelu(_nhwc_conv(y, p["w2"], (1, 1), "VALID", groups=2) + p["b2"])
        y = lax.reduce_window(y, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1),
                              ((0, 0), (0, 1), (0, 1), (0, 0)))
        return y / 4

    def ref(x):
        y = _np_conv(x, p["w1"], (1, 2), ((0, 0), (2, 2))) + p["b1"]
        y = _np_pool(np.maximum(y, 0), "max", (3, 3), (2, 3))
        y = _np_gelu(_np_conv(y, p["w2"], (1, 1), groups=2) + p["b2"])
        return _np_pool(y, "avg", (2, 2), (2, 3), ((0, 2), (0, 3)))

    return f, ref, (4, 6)


def _one_tap_valid(p):
    """A 1 x 1 VALID conv at stride 2 (its support: all of x), then a 3 x 3 conv
    with lax zero pairs."""
    def f(x):
        y = jnp.tanh(_nhwc_conv(x, p["w1"], (2, 2), "VALID") + p["b1"])
        return _nhwc_conv(y, p["w2"], (1, 1), ((1, 1), (1, 1)))

    def ref(x):
        y = np.tanh(_np_conv(x, p["w1"], (1, 1)) + p["b1"])
        return _np_conv(y, p["w2"], (2, 2), ((2, 2), (2, 2)))

    return f, ref, (2, 2)


def _wrap_then_zero(p, pool=False):
    """Circular padding (jnp.pad wrap) and a 3 x 3 conv at stride 2, optionally a
    VALID 2 x 2 average pool, then a 3 x 3 conv after jnp zero padding."""
    def f(x):
        y = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
        y = jnp.tanh(_nhwc_conv(y, p["w1"], (2, 2), "VALID") + p["b1"])
        if pool:
            y = lax.reduce_window(y, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1),
                                  "VALID") / 4
        y = jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return _nhwc_conv(y, p["w2"], (1, 1), "VALID")

    def ref(x):
        y = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
        y = np.tanh(_np_conv(y, p["w1"], (1, 1)) + p["b1"])
        if pool:
            y = _np_pool(y, "avg", (2, 2), (2, 2))
        return _np_conv(y, p["w2"], (2, 2), ((2, 2), (2, 2)))

    return f, ref, (2, 2)


COVERING = [
    # network, (H, W), the axes along which the polyphase property holds (zero
    # padding after the first stride, VALID ops before it)
    ("grammar_example", (15, 9), "H"),
    ("one_tap_valid", (15, 9), "HW"),
    ("one_tap_valid", (16, 8), "HW"),
    ("wrap_then_zero", (16, 12), ""),
    ("wrap_pool_then_zero", (16, 12), ""),
]


def _covering_params(name, seed=3):
    rng = np.random.default_rng(seed)
    if name == "grammar_example":
        return {"w1": _he(rng, (1, 3, CIN, 4)), "b1": _he(rng, (4,)),
                "w2": _he(rng, (1, 1, 2, 4)), "b2": _he(rng, (4,))}
    k = (1, 1) if name == "one_tap_valid" else (3, 3)
    return {"w1": _he(rng, k + (CIN, 3)), "b1": _he(rng, (3,)),
            "w2": _he(rng, (3, 3, 3, 2))}


@pytest.mark.parametrize("name, hw, polyphase", COVERING,
                         ids=[f"{c[0]}-{c[1][0]}x{c[1][1]}" for c in COVERING])
def test_covering_value_then_zero_padding(name, hw, polyphase):
    p = _covering_params(name)
    build = {"grammar_example": _grammar_example, "one_tap_valid": _one_tap_valid,
             "wrap_then_zero": _wrap_then_zero,
             "wrap_pool_then_zero": lambda p: _wrap_then_zero(p, pool=True)}[name]
    f, atrous, s = build(p)
    f = jax.jit(f)
    x = jnp.asarray(np.random.default_rng(4).standard_normal((2,) + hw + (CIN,)),
                    jnp.float32)
    ref = atrous(np.asarray(x, np.float64))
    _close(f(x), ref[:, ::s[0], ::s[1]], "f(x) vs the à trous network's samples")
    # The reference is f's at every phase along those axes.
    for py in range(s[0] if "H" in polyphase else 1):
        for px in range(s[1] if "W" in polyphase else 1):
            _close(f(x[:, py:, px:]), ref[:, py::s[0], px::s[1]],
                   f"f(x[:, {py}:, {px}:])")
    r2, stride = sc.undecimate(f)(x)
    assert tuple(stride) == s
    _close(r2, ref, "r2 vs the à trous network (every phase, its extent)")
