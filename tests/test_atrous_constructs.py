"""Regression tests of undecimate / all_shifts on constructs that users write.

One named test per construct. Each checks, where it applies:

* the identity ``f(x) == r2[:, ::sy, ::sx]`` (tests/_grammar.undecimate_checked);
* the other phases of r2: against f on rolled inputs for circular networks whose
  sizes the strides divide, ``f(roll(x, t))[:, i] == r2[:, S*i - t]`` (with the
  sign reversed along a flipped axis, and the axes exchanged after a transpose),
  and against the naive à trous network (sigcnn.ops at stride 1, dilated) for zero
  padding at odd sizes;
* ``all_shifts(f, x) == all_shifts(f, x, method="brute")`` (sigcnn's brute path is
  itself checked against f on one shift).

Where a construct has no undecimated form (upsampling back to a finer grid,
transposed convolutions, data-dependent predicates, gating) undecimate may raise
NotImplementedError naming the primitive or line; all_shifts must still be exact.
References never come from sigcnn's interpreter; test_phase_reference_* checks the
phase check itself on hand-built undecimated maps.
"""

import _grammar as G
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sigcnn as sc
from sigcnn import models

NHWC = ("NHWC", "HWIO", "NHWC")
FLIPPED_H = ((0, -1), (1, 1))
LAYOUT = r"NHWC|NCHW|[Ll]ayout|channels?[- ]first"


# --------------------------------------------------------------------------------------
# Building blocks.
# --------------------------------------------------------------------------------------


def _weights(seed, *shapes):
    """He-normal float32 NumPy arrays (no XLA compile to draw them)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        out.append((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in))
                   .astype(np.float32))
    return out


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv(y, w, stride=1, pad="circular", dilation=1):
    """User-style conv: jnp.pad(wrap) + VALID, explicit zero pairs, or VALID."""
    s, dl = _pair(stride), _pair(dilation)
    pads = [G._window_pads(k, d) for k, d in zip(w.shape[:2], dl)]
    if pad == "circular":
        y = jnp.pad(y, ((0, 0), pads[0], pads[1], (0, 0)), mode="wrap")
        padding = "VALID"
    elif pad == "zero":
        padding = pads
    else:
        padding = "VALID"
    return lax.conv_general_dilated(y, w, s, padding, rhs_dilation=dl,
                                    dimension_numbers=NHWC)


def naive_conv(y, w, dilation, pad):
    """The à trous twin of `conv`: stride 1, dilated, padding scaled (sigcnn.ops)."""
    return sc.conv(y, w, stride=1, dilation=dilation,
                   padding={"circular": "circular", "zero": "zero"}.get(pad, "valid"))


def max_pool(y, window=2, stride=2):
    return lax.reduce_window(y, -jnp.inf, lax.max, (1, window, window, 1),
                             (1, stride, stride, 1), "VALID")


def _x(shape, seed=0):
    return G.x_of(shape, seed)


def _select(key):
    return (lambda t: t) if key is None else (lambda t: t[key])


def run_checks(f, x, *, phases=None, naive=None, refusal_ok=False, pattern=None,
               forbid=None, margin=0, shifts=None):
    """Identity, the other phases, and all_shifts == brute.

    phases: {leaf key (None for a single array): follow}, checked against f on
    rolled inputs when undecimate returns (circular networks only).
    naive: {leaf key: (naive twin's map, its stride)}; the twin is first checked
    to be exact (twin[::S] == f(x)), then r2 must equal it at every phase.
    Returns undecimate_checked's result.
    """
    jf = jax.jit(f)
    out = jf(x)
    for key, (nv, d) in (naive or {}).items():
        G.assert_naive_is_exact(nv, d, _select(key)(out), f"naive twin {key}")
    res = G.undecimate_checked(f, x, refusal_ok=refusal_ok, pattern=pattern,
                               forbid=forbid, jf=jf)
    if res is not None:
        r2, stride, _ = res
        for key, follow in (phases or {}).items():
            G.check_phases(f, x, r2, stride, select=_select(key), follow=follow,
                           margin=margin, jf=jf)
        for key, (nv, d) in (naive or {}).items():
            sel = _select(key)
            G.assert_equals_naive(sel(r2), sel(stride), nv, d, sel(out),
                                  f"r2[{key!r}]", size=x.shape[1:3])
    G.all_shifts_checked(f, x, refusal_ok=False, jf=jf)
    if shifts is not None:
        G.all_shifts_checked(f, x, shifts=shifts, refusal_ok=False, jf=jf)
    return res


def spatial_phases(out_shapes, follow=((0, 1), (1, 1))):
    """{key: follow} for every rank >= 3 leaf of a dict output."""
    return {k: follow for k, v in out_shapes.items() if len(v.shape) >= 3}


PADS = pytest.mark.parametrize("pad, hw", [("circular", (16, 12)), ("zero", (15, 13))])


def _construct_checks(f, x, pad, *, follow=((0, 1), (1, 1)), **kw):
    """Circular: phases of every spatial leaf; zero: identity and all_shifts."""
    phases = None
    if pad == "circular":
        phases = spatial_phases(jax.eval_shape(f, x), follow)
    return run_checks(f, x, phases=phases, **kw)


# --------------------------------------------------------------------------------------
# The phase check itself, on hand-built undecimated maps (no sigcnn interpreter).
# --------------------------------------------------------------------------------------


def test_phase_reference_on_flipped_rotated_cropped_and_padded_maps():
    (w,) = _weights(0, (3, 3, 2, 3))
    x = _x((1, 16, 12, 2))
    u = np.asarray(jax.nn.relu(naive_conv(x, w, 1, "circular")))   # stride-1 map
    strided = lambda x: jax.nn.relu(conv(x, w, 2))                 # u[:, ::2, ::2]
    h, wd = 8, 6
    rows = (2 * (h - 1) - np.arange(16)) % 16                      # anchored flip
    flip_r2 = u[:, rows]
    cases = [
        (lambda x: jnp.flip(strided(x), 1), flip_r2, FLIPPED_H, np.flip(u, 1)),
        (lambda x: jnp.rot90(strided(x), 1, axes=(1, 2)),
         np.transpose(u[:, :, (2 * (wd - 1) - np.arange(12)) % 12], (0, 2, 1, 3)),
         ((1, -1), (0, 1)), np.rot90(u, 1, axes=(1, 2))),
        (lambda x: strided(x)[:, 1:], u[:, 2:], ((0, 1), (1, 1)), u[:, 1:-1]),
        (lambda x: jnp.pad(strided(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap"),
         u[:, (np.arange(20) - 2) % 16][:, :, (np.arange(16) - 2) % 12],
         ((0, 1), (1, 1)), np.pad(u, ((0, 0), (2, 2), (2, 2), (0, 0)))),
    ]
    for f, r2, follow, wrong in cases:
        G.check_phases(f, x, r2, (2, 2), follow=follow)
        with pytest.raises(AssertionError):
            G.check_phases(f, x, wrong, (2, 2), follow=follow)


# --------------------------------------------------------------------------------------
# Flips and rotations.
# --------------------------------------------------------------------------------------


@PADS
def test_flip_h_after_strided_layer_then_global_pool(pad, hw):
    w1, w2, dense = _weights(1, (3, 3, 2, 4), (3, 2, 4, 4), (4, 3))

    def f(x):
        y = jnp.flip(jax.nn.relu(conv(x, w1, 2, pad)), axis=1)
        m = jax.nn.relu(conv(y, w2, 1, pad))
        return {"map": m, "logits": jnp.mean(m, axis=(1, 2)) @ dense}

    _construct_checks(f, _x((2,) + hw + (2,)), pad, follow=FLIPPED_H)


@PADS
def test_test_time_flip_averaging(pad, hw):
    w1, w2, dense = _weights(2, (3, 3, 2, 4), (3, 3, 4, 4), (4, 5))

    def net(x):
        y = jax.nn.relu(conv(x, w1, 2, pad))
        return jax.nn.relu(conv(y, w2, 2, pad))

    def f(x):
        xf = jnp.flip(x, axis=2)
        logits = (jnp.mean(net(x), axis=(1, 2)) @ dense
                  + jnp.mean(net(xf), axis=(1, 2)) @ dense) / 2
        return {"logits": logits, "map": net(x) + jnp.flip(net(xf), axis=2)}

    _construct_checks(f, _x((1,) + hw + (2,)), pad)


@PADS
def test_rot90_of_decimated_map(pad, hw):
    w1, w2 = _weights(3, (3, 3, 2, 3), (3, 3, 3, 2))

    def f(x):
        y = jnp.rot90(jax.nn.relu(conv(x, w1, 2, pad)), 1, axes=(1, 2))
        return {"rot": y, "map": conv(y, w2, 1, pad)}

    _construct_checks(f, _x((1,) + hw + (2,)), pad, follow=((1, -1), (0, 1)))


# --------------------------------------------------------------------------------------
# Crops.
# --------------------------------------------------------------------------------------


@PADS
def test_crop_of_decimated_map(pad, hw):
    w1, w2, dense = _weights(4, (3, 3, 2, 3), (3, 3, 3, 4), (4, 2))

    def f(x):
        c = jax.nn.relu(conv(x, w1, 2, pad))[:, 1:]
        m = conv(c, w2, 2, pad)
        return {"crop": c, "map": m, "logits": jnp.mean(m, axis=(1, 2)) @ dense}

    x = _x((2,) + hw + (2,))
    if pad == "circular":
        # Only the crop itself has shifted responses as phases: the conv after it
        # wraps the cropped map at 7 strided rows, which no shift of x reproduces.
        run_checks(f, x, phases={"crop": ((0, 1), (1, 1))})
    else:  # naive twin: the crop drops d = 2 full-resolution rows
        u = jax.nn.relu(naive_conv(x, w1, 1, pad))[:, 2:]
        run_checks(f, x, naive={"crop": (u, (2, 2)),
                                "map": (naive_conv(u, w2, 2, pad), (4, 4))})


@pytest.mark.parametrize("pad", ["circular", "zero"])
def test_centre_crop_of_unet_skip(pad):
    a, b, c, dense, dense_skip = _weights(5, (3, 3, 2, 3), (3, 3, 3, 4), (3, 3, 8, 2),
                                          (2, 3), (4, 3))

    def encoder(x):
        e1 = jax.nn.relu(conv(x, a, 1, pad))           # stride 1
        e2 = jax.nn.relu(conv(max_pool(e1), b, 1, "valid"))  # stride 2, VALID
        return e2, e2[:, 1:-1, 1:-1]                   # centre crop of the skip

    def skip_only(x):
        e2, skip = encoder(x)
        return {"skip": skip, "logits": jnp.mean(skip, axis=(1, 2)) @ dense_skip}

    def unet(x):
        e2, skip = encoder(x)
        e3 = max_pool(e2)                              # stride 4
        up = jnp.repeat(jnp.repeat(e3, 2, axis=1), 2, axis=2)[:, 1:-1, 1:-1]
        d = jax.nn.relu(conv(jnp.concatenate([skip, up], axis=3), c, 1, pad))
        return {"dec": d, "logits": jnp.mean(d, axis=(1, 2)) @ dense}

    x = _x((1, 16, 16, 2))
    run_checks(skip_only, x,
               phases={"skip": ((0, 1), (1, 1))} if pad == "circular" else None)
    # The decoder map is at stride 1 after an upsampling: no shift of x moves it by
    # an odd number of pixels, so only the identity (or a refusal) is asked of it.
    run_checks(unet, x, refusal_ok=True)


# --------------------------------------------------------------------------------------
# A circularly padded map as an output leaf.
# --------------------------------------------------------------------------------------


def test_wrap_padded_map_as_output_leaf_and_its_mean():
    (w,) = _weights(6, (3, 3, 2, 3))

    def f(x):
        y = jax.nn.relu(conv(x, w, 2, "circular"))
        yp = jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
        return {"padded": yp, "mean": jnp.mean(yp, axis=(1, 2))}

    x = _x((2, 16, 16, 2))
    run_checks(f, x, phases={"padded": ((0, 1), (1, 1))}, shifts=[(1, 0)])


# --------------------------------------------------------------------------------------
# Downsampling jax.image.resize.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, factor", [("linear", (2, 2)), ("nearest", (2, 2)),
                                            ("linear", (2, 1))])
@pytest.mark.parametrize("pad", ["circular", "zero"])
def test_downsampling_image_resize(method, factor, pad):
    w1, w2, dense = _weights(7, (3, 3, 2, 3), (3, 3, 3, 3), (3, 2))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 1, pad))
        n, h, w, c = y.shape
        r = jax.image.resize(y, (n, h // factor[0], w // factor[1], c), method)
        m = conv(r, w2, 1, pad)
        return {"map": m, "logits": jnp.mean(m, axis=(1, 2)) @ dense}

    x = _x((1, 16, 16, 2))
    res = G.undecimate_checked(f, x)
    if res is not None:
        # Not "a spatial map of stride (1, 1) and no undecimation".
        assert tuple(res[1]["map"]) == factor, (
            f"resized map came back with stride {res[1]['map']}, not {factor}")
    run_checks(f, x, refusal_ok=True, margin=2,
               phases={"map": ((0, 1), (1, 1))} if pad == "circular" else None)


# --------------------------------------------------------------------------------------
# Channels-first input where NHWC is expected.
# --------------------------------------------------------------------------------------


def test_nchw_input_with_one_channel_is_refused():
    w, dense = _weights(8, (4, 1, 3, 3), (4, 3))   # OIHW

    def f(x):  # x is NCHW [N, 1, H, W]: the network convolves axes 2 and 3
        y = lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        y = jax.nn.relu(y)
        return {"map": y, "logits": jnp.mean(y, axis=(2, 3)) @ dense}

    x = _x((1, 1, 16, 16))
    assert jax.jit(f)(x)["map"].shape == (1, 4, 8, 8)
    with pytest.raises((ValueError, NotImplementedError), match=LAYOUT):
        sc.undecimate(f)(x)
    with pytest.raises((ValueError, NotImplementedError), match=LAYOUT):
        sc.all_shifts(f, x)


# --------------------------------------------------------------------------------------
# Odd sizes: a two-layer zero-padded net and the zoo's vgg_tiny.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", [(15, 13), (15, 15)])
def test_odd_sizes_two_layer_zero_padded_net(hw):
    w1, w2 = _weights(9, (3, 3, 3, 4), (3, 3, 4, 5))

    def f(x):
        c1 = jax.nn.relu(conv(x, w1, 2, "zero"))
        return {"c1": c1, "c2": conv(c1, w2, 2, "zero")}

    x = _x((2,) + hw + (3,))
    n1 = jax.nn.relu(naive_conv(x, w1, 1, "zero"))
    run_checks(f, x, naive={"c1": (n1, (2, 2)),
                            "c2": (naive_conv(n1, w2, 2, "zero"), (4, 4))})


@pytest.mark.slow
@pytest.mark.parametrize("hw", [(15, 13), (15, 15)])
def test_odd_sizes_vgg_tiny_matches_zoo_twin(hw):
    net = models.create("vgg_tiny", key=0, padding="zero")
    net.eval()
    twin = models.variant(net, undecimated=True)
    x = _x((2,) + hw + (3,), seed=10)
    taps = jax.jit(net.taps)(x)
    maps = jax.jit(twin.taps)(x)
    strides = net.tap_strides()
    for name, s in strides.items():   # the twin is a correct reference
        G.assert_naive_is_exact(maps[name], (s, s), taps[name], f"twin {name}")
    r2, stride = sc.undecimate(net.taps)(x)
    for name, s in strides.items():
        G.assert_equals_naive(r2[name], stride[name], maps[name], (s, s), taps[name],
                              name, size=hw)
        G.assert_close(r2[name], maps[name], f"{name}: r2 vs twin (full map)")
    res = sc.layer_spectra(net.taps, x)
    for layer in res.layers:
        want = float(sc.aliasing_ratio(maps[layer.name], layer.stride))
        assert abs(layer.aliasing_ratio - want) <= 1e-4 * max(abs(want), 1e-2), (
            layer.name, layer.aliasing_ratio, want)
    G.all_shifts_checked(net, x, refusal_ok=False)


# --------------------------------------------------------------------------------------
# VALID convolutions and crops, explicit shifts.
# --------------------------------------------------------------------------------------


def test_valid_convs_and_crops_under_explicit_shifts():
    w1, w2, dense = _weights(11, (3, 3, 2, 3), (2, 3, 3, 4), (4, 2))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 2, "valid"))[:, 1:, :-1]
        m = conv(y, w2, 1, "valid")
        return {"map": m, "logits": jnp.mean(m, axis=(1, 2)) @ dense}

    x = _x((2, 15, 14, 2))
    run_checks(f, x, shifts=[(0, 0), (1, 0), (0, 1), (3, -2), (17, 5), (-1, -1)])


# --------------------------------------------------------------------------------------
# Control flow: lax.scan, nnx blocks under lax.scan, cond / switch, fori_loop.
# --------------------------------------------------------------------------------------


def _loop_net(pad, loop, seed):
    """A strided stem, then three conv blocks at stride 1 run by `loop`; its twin."""
    stem, dense = _weights(seed, (3, 3, 2, 4), (4, 3))
    blocks = np.stack(_weights(seed + 1, *[(3, 3, 4, 4)] * 3))

    def block(y, w, d=1):
        return jax.nn.relu(conv(y, w, 1, pad, d) if d == 1
                           else naive_conv(y, w, d, pad))

    def f(x):
        y = loop(jax.nn.relu(conv(x, stem, 2, pad)), blocks, block)
        return {"map": y, "logits": jnp.mean(y, axis=(1, 2)) @ dense}

    def naive(x):
        y = jax.nn.relu(naive_conv(x, stem, 1, pad))
        for w in blocks:
            y = block(y, w, 2)
        return y

    return f, naive


def _scan(y, ws, block):
    return lax.scan(lambda c, w: (block(c, w), None), y, ws)[0]


def _fori(y, ws, block):
    ws = jnp.asarray(ws)
    return lax.fori_loop(0, 3, lambda i, c: block(c, ws[i]), y)


def _cond(y, ws, block):  # constant predicates, both branches traced
    y = lax.cond(np.bool_(True), lambda c: block(c, ws[0]), lambda c: -c, y)
    y = lax.switch(np.int32(1), [lambda c: c, lambda c: block(c, ws[1]),
                                 lambda c: 2 * c], y)
    return block(y, ws[2])


@pytest.mark.parametrize("loop", [_scan, _fori, _cond], ids=["scan", "fori", "cond"])
@PADS
def test_control_flow_blocks(loop, pad, hw):
    f, naive = _loop_net(pad, loop, 12)
    x = _x((1,) + hw + (2,))
    if pad == "zero":
        run_checks(f, x, naive={"map": (jax.jit(naive)(x), (2, 2))})
    else:
        _construct_checks(f, x, pad)


def test_cond_on_a_data_dependent_predicate():
    f, _ = _loop_net("circular", _scan, 13)

    def g(x):  # mean(x) > -10 always holds, but the predicate depends on x
        return lax.cond(jnp.mean(x) > -10.0, f, lambda x: f(-x), x)

    run_checks(g, _x((1, 16, 12, 2)), refusal_ok=True,
               phases={"map": ((0, 1), (1, 1))})


def test_nnx_blocks_under_lax_scan():
    # nnx.scan over a closed-over module cannot be traced by jax.make_jaxpr (flax
    # refuses graph nodes from another trace level), so the stacked nnx state is
    # scanned with lax.scan and merged per step, as flax's docs do for layers.
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 3, (3, 3), padding="CIRCULAR", rngs=rngs)

        def __call__(self, x):
            return jax.nn.relu(self.conv(x))

    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return Block(rngs)

    graphdef, state = nnx.split(make(nnx.Rngs(0)))
    (stem,) = _weights(14, (3, 3, 2, 3))

    def f(x):
        y = jax.nn.relu(conv(x, stem, 2))
        return lax.scan(lambda c, s: (nnx.merge(graphdef, s)(c), None), y, state)[0]

    run_checks(f, _x((1, 16, 12, 2)), phases={None: ((0, 1), (1, 1))})


# --------------------------------------------------------------------------------------
# Upsampling: FPN (nearest / linear + skip add), resize up and down, U-Net decoder.
# --------------------------------------------------------------------------------------


def _upsample(y, kind):
    n, h, w, c = y.shape
    if kind == "repeat":
        return jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)
    if kind == "broadcast":
        y = jnp.broadcast_to(y[:, :, None, :, None, :], (n, h, 2, w, 2, c))
        return y.reshape(n, 2 * h, 2 * w, c)
    return jax.image.resize(y, (n, 2 * h, 2 * w, c), kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["repeat", "broadcast", "nearest", "linear"])
@pytest.mark.parametrize("pad", ["circular", "zero"])
def test_fpn_upsample_and_skip_add(kind, pad):
    a, b, lat1, lat2, dense = _weights(15, (3, 3, 2, 3), (3, 3, 3, 4), (1, 1, 3, 2),
                                       (1, 1, 4, 2), (2, 3))

    def f(x):
        c1 = jax.nn.relu(conv(x, a, 2, pad))                 # stride 2
        c2 = jax.nn.relu(conv(c1, b, 2, pad))                # stride 4
        p2 = conv(c2, lat2, 1, "valid")
        p1 = conv(c1, lat1, 1, "valid") + _upsample(p2, kind)[:, :c1.shape[1],
                                                                :c1.shape[2]]
        return {"p1": p1, "p2": p2, "logits": jnp.mean(p1, axis=(1, 2)) @ dense}

    # p1 mixes the stride-4 lattice upsampled with a stride-2 map: it has no
    # undecimated form; p2 (plain convs) keeps its phases.
    x = _x((1, 16, 16, 2))
    run_checks(f, x, refusal_ok=True,
               phases={"p2": ((0, 1), (1, 1))} if pad == "circular" else None)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_image_resize_down_then_up(method):
    w1, w2 = _weights(16, (3, 3, 2, 3), (3, 3, 3, 3))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 1))
        n, h, w, c = y.shape
        down = jax.image.resize(y, (n, h // 2, w // 2, c), method)
        up = jax.image.resize(conv(down, w2, 1), (n, h, w, c), method)
        return {"down": down, "out": y + up}

    run_checks(f, _x((1, 16, 16, 2)), refusal_ok=True, margin=2,
               phases={"down": ((0, 1), (1, 1))})


@pytest.mark.parametrize("pad", ["circular", "zero"])
def test_transposed_conv_unet_decoder(pad):
    a, b, t, c, dense = _weights(17, (3, 3, 2, 3), (3, 3, 3, 4), (2, 2, 4, 3),
                                 (3, 3, 6, 2), (2, 3))

    def f(x):
        e1 = jax.nn.relu(conv(x, a, 1, pad))
        e2 = jax.nn.relu(conv(e1, b, 2, pad))
        d = lax.conv_transpose(e2, t, (2, 2), "SAME", dimension_numbers=NHWC)
        out = jax.nn.relu(conv(jnp.concatenate([e1, d], axis=3), c, 1, pad))
        return {"out": out, "logits": jnp.mean(out, axis=(1, 2)) @ dense}

    run_checks(f, _x((1, 16, 16, 2)), refusal_ok=True)


# --------------------------------------------------------------------------------------
# Average pooling with count_include_pad=False.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", [(16, 16), (15, 13)])
def test_avg_pool_count_include_pad_false(hw):
    import flax.linen as nn

    w1, dense = _weights(18, (3, 3, 2, 3), (3, 2))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 2, "zero"))
        p = nn.avg_pool(y, (3, 3), strides=(2, 2), padding="SAME",
                        count_include_pad=False)
        return {"pool": p, "logits": jnp.mean(p, axis=(1, 2)) @ dense}

    x = _x((2,) + hw + (2,))
    # Naive twin: the pool's own "SAME" pads (on the strided map) scaled by d = 2;
    # dilated sum over the window / dilated count of the taps inside the map.
    u = jax.nn.relu(naive_conv(x, w1, 1, "zero"))
    n = [-(-v // 2) for v in hw]
    pads = [tuple(2 * p for p in lax.padtype_to_pads((m,), (3,), (2,), "SAME")[0])
            for m in n]
    window = dict(window_dimensions=(1, 3, 3, 1), window_strides=(1, 1, 1, 1),
                  padding=((0, 0),) + tuple(pads) + ((0, 0),),
                  window_dilation=(1, 2, 2, 1))
    total = lax.reduce_window(u, 0.0, lax.add, **window)
    count = lax.reduce_window(jnp.ones_like(u), 0.0, lax.add, **window)
    run_checks(f, x, naive={"pool": (total / count, (4, 4))})


# --------------------------------------------------------------------------------------
# Squeeze-and-excitation.
# --------------------------------------------------------------------------------------


@PADS
def test_squeeze_and_excitation(pad, hw):
    w1, w2, se, dense = _weights(19, (3, 3, 2, 4), (3, 3, 4, 4), (4, 4), (4, 3))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 2, pad))
        gate = jax.nn.sigmoid(jnp.mean(y, axis=(1, 2)) @ se)
        m = conv(y * gate[:, None, None, :], w2, 2, pad)
        return {"map": m, "logits": jnp.mean(m, axis=(1, 2)) @ dense}

    _construct_checks(f, _x((2,) + hw + (2,)), pad, refusal_ok=True,
                      pattern=r"(?i)squeeze|excitation|gat(e|ing)|global")


# --------------------------------------------------------------------------------------
# Identity-like primitives.
# --------------------------------------------------------------------------------------


@PADS
def test_identity_like_primitives(pad, hw):
    w1, w2 = _weights(20, (3, 3, 2, 3), (3, 3, 3, 3))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 2, pad))
        y = lax.stop_gradient(y)
        y = lax.optimization_barrier(y)
        y = jnp.copy(y)
        y = lax.reduce_precision(y, exponent_bits=8, mantissa_bits=23)
        y = jnp.asarray(y).astype(jnp.float32)
        return {"map": conv(y, w2, 2, pad)}

    x = _x((1,) + hw + (2,))
    if pad == "zero":
        naive = naive_conv(jax.nn.relu(naive_conv(x, w1, 1, pad)), w2, 2, pad)
        run_checks(f, x, naive={"map": (naive, (4, 4))})
    else:
        _construct_checks(f, x, pad)


def test_select_and_clamp_with_constants_on_a_one_by_one_map():
    # ConvNeXt's stochastic-depth / layer-scale code reaches select_n on a 1 x 1 map
    # (stride 4 on a 4 x 4 input) with a constant of logical shape [N, 1, 1, C]:
    # select_n and clamp do not broadcast, so the constant must be widened to the
    # undecimated map (once raised a TypeError deep inside the rule).
    (w,) = _weights(23, (3, 3, 2, 3))
    fill = np.full((1, 1, 1, 3), 0.25, np.float32)

    def f(x):
        y = conv(x, w, 4, "circular")                       # [N, 1, 1, 3]
        y = lax.select_n(y > 0, jnp.broadcast_to(fill, y.shape), y)
        y = lax.clamp(jnp.broadcast_to(fill - 1, y.shape), y, np.float32(2))
        return {"map": y, "logits": y.sum(axis=(1, 2))}

    x = _x((1, 4, 4, 2))
    run_checks(f, x, phases={"map": ((0, 1), (1, 1))})


def test_total_stride_through_wrap_pads_at_sizes_the_strides_do_not_divide():
    # AlexNet / Inception-v3 with circular padding at 64 / 75 px: wrap pads of maps
    # whose period the stride does not tile have no undecimated form, and the probe
    # once lost the lattice there, so all_shifts returned 8 x 8 (2 x 2) shifts of a
    # stride-32 network. Here: three stride-2 wrap-padded convs on 14 x 14 (7, 4, 2).
    ws = _weights(24, (3, 3, 2, 3), (3, 3, 3, 3), (3, 3, 3, 3))

    def f(x):
        for w in ws:
            x = jax.nn.relu(conv(x, w, 2, "circular"))
        return x.mean(axis=(1, 2))

    x = _x((1, 14, 14, 2))
    out = sc.all_shifts(f, x)
    assert out.shape == (1, 8, 8, 3)
    jf = jax.jit(f)
    for t in [(0, 0), (7, 7), (5, 2), (1, 6)]:
        np.testing.assert_allclose(out[:, t[0], t[1]],
                                   jf(jnp.roll(x, t, axis=(1, 2))), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("pad", ["circular", "zero"])
def test_flatten_of_a_one_by_one_map(pad):
    # Keras VGG16 at 32 px flattens a 1 x 1 map at stride 32; the reshape was taken
    # for edge padding of a strided map and refused. [N, 1, 1, C] -> [N, C] consumes
    # both axes; -> [N, 1, C] keeps H (W squeezed).
    w1, w2, dense = _weights(25, (3, 3, 2, 3), (3, 3, 3, 4), (4, 5))

    def f(x):
        y = jax.nn.relu(conv(x, w1, 2, pad))
        y = max_pool(conv(y, w2, 2, pad), 2, 2)                # [N, 1, 1, 4]
        return {"logits": y.reshape(y.shape[0], -1) @ dense,
                "row": y.reshape(y.shape[0], 1, -1)}

    x = _x((2, 8, 8, 2))
    res = run_checks(f, x)
    assert res is not None  # undecimated, not refused
    assert res[1]["logits"] == (1, 1)


# --------------------------------------------------------------------------------------
# Edge padding.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("hw", [(16, 16), (13, 13)])
def test_edge_padding(width, hw):
    # Identity and all_shifts == brute; undecimate may refuse, but edge padding is
    # not an upsampling: the refusal must not blame jnp.repeat.
    k = 2 * width + 1
    w1, w2 = _weights(21, (k, k, 2, 3), (k, k, 3, 3))

    def edge(y, p):
        return jnp.pad(y, ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")

    def f(x):
        y = jax.nn.relu(conv(edge(x, width), w1, 2, "valid"))
        return conv(edge(y, width), w2, 2, "valid")

    run_checks(f, _x((1,) + hw + (2,)), refusal_ok=True,
               forbid=r"jnp\.repeat|upsampl|nearest")


# --------------------------------------------------------------------------------------
# Max pooling with its argmax (return-indices pattern).
# --------------------------------------------------------------------------------------


def test_max_pool_with_indices():
    (w,) = _weights(22, (3, 3, 2, 3))

    def f(x):
        y = jax.nn.relu(conv(x, w, 1))
        n, h, wd, c = y.shape
        patches = y.reshape(n, h // 2, 2, wd // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
        patches = patches.reshape(n, h // 2, wd // 2, c, 4)
        return {"pool": jnp.max(patches, axis=-1),
                "index": jnp.argmax(patches, axis=-1)}

    run_checks(f, _x((1, 16, 12, 2)), refusal_ok=True,
               phases={"pool": ((0, 1), (1, 1))})
