"""The three forms of an undecimated convolution (sigcnn.atrous.conv_forms).

Each form is checked against oracles that share none of its code: one
``lax.conv_general_dilated`` call with the rhs dilation, the dilated form, f itself
at stride S (``f(x) == r2[:, ::S, ::S]``), and brute force over every shift
(``all_shifts(..., method="brute")``). Shapes are odd or not multiples of the
dilation, kernels have strides and dilations of their own, and the layouts,
groups and padding modes vary.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sigcnn as sc
from sigcnn.atrous import Tiling, all_shifts, conv_forms, undecimate
from sigcnn.atrous.tiling import tiled_conv

FORMS = ("dilated", "polyphase", "matmul")
TOL = dict(rtol=1e-5, atol=1e-5)


def _rand(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape),
                       jnp.float32)


def _conv_eqn(x, w, **kw):
    """The conv_general_dilated equation lax builds for these arguments."""
    jaxpr = jax.make_jaxpr(lambda a, b: lax.conv_general_dilated(a, b, **kw))(x, w)
    (eqn,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    return eqn.primitive, dict(eqn.params)


# (name, layout, input shape, kernel HW, groups, rhs dilation, padding)
_CONVS = [
    ("nhwc_odd", ("NHWC", "HWIO", "NHWC"), (2, 13, 11, 4), (3, 3), 1, (3, 2),
     ((3, 3), (2, 2))),
    ("nhwc_groups", ("NHWC", "HWIO", "NHWC"), (1, 15, 9, 6), (3, 2), 3, (4, 2),
     ((4, 5), (0, 3))),
    ("nchw_valid", ("NCHW", "OIHW", "NCHW"), (2, 4, 17, 10), (2, 3), 2, (5, 3),
     ((0, 0), (0, 0))),
    ("nhwc_crop", ("NHWC", "HWIO", "NHWC"), (1, 16, 14, 3), (3, 3), 1, (2, 4),
     ((-1, 2), (4, -2))),
    ("hcnw", ("HCNW", "IHOW", "WNHC"), (12, 5, 2, 11), (3, 1), 1, (3, 3),
     ((3, 3), (0, 0))),
]


@pytest.mark.parametrize("positions", [0, 7], ids=["one_call", "tiles"])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name, dn, shape, hw, groups, rdil, pad", _CONVS,
                         ids=[c[0] for c in _CONVS])
def test_each_form_equals_one_dilated_call(name, dn, shape, hw, groups, rdil, pad,
                                           form, positions):
    cin = shape[dn[0].index("C")]
    k = _rand((*hw, cin // groups, 6), 1)
    k = jnp.transpose(k, ["HWIO".index(c) for c in dn[1]])
    x = _rand(shape, 2)
    kw = dict(window_strides=(1, 1), padding=pad, rhs_dilation=rdil,
              dimension_numbers=dn, feature_group_count=groups)
    want = lax.conv_general_dilated(x, k, **kw)
    prim, params = _conv_eqn(x, k, **kw)
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    axes = [(lhs_spec[2 + j], out_spec[2 + j],
             rdil[j] * (k.shape[rhs_spec[2 + j]] - 1)) for j in range(2)]
    tiling = Tiling(positions=positions, unrolled=2, form=form)
    got = jax.jit(lambda a, b: tiled_conv(prim, a, b, params, axes, tiling))(x, k)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, **TOL)


def test_the_forms_emit_what_they_say():
    x, k = _rand((1, 12, 12, 4), 3), _rand((3, 3, 4, 5), 4)
    kw = dict(window_strides=(1, 1), padding=((2, 2), (2, 2)), rhs_dilation=(2, 2),
              dimension_numbers=("NHWC", "HWIO", "NHWC"))
    prim, params = _conv_eqn(x, k, **kw)
    axes = [(1, 1, 4), (2, 2, 4)]

    def text(form):
        tiling = Tiling(positions=0, form=form)
        return str(jax.make_jaxpr(
            lambda a, b: tiled_conv(prim, a, b, params, axes, tiling))(x, k))

    assert "rhs_dilation=(2, 2)" in text("dilated")
    poly = text("polyphase")
    assert "conv_general_dilated" in poly and "rhs_dilation=(1, 1)" in poly
    mm = text("matmul")
    assert "conv_general_dilated" not in mm and "dot_general" in mm


def test_the_choice_per_backend():
    dn = lax.conv_dimension_numbers((1, 8, 8, 256), (3, 3, 256, 256),
                                    ("NHWC", "HWIO", "NHWC"))
    p = dict(window_strides=(1, 1), padding=((0, 0), (0, 0)), lhs_dilation=(1, 1),
             rhs_dilation=(2, 2), dimension_numbers=dn, feature_group_count=1,
             batch_group_count=1)
    axes = [(1, 1, 4), (2, 2, 4)]
    big, small = (3, 3, 256, 256), (3, 3, 64, 64)

    def choose(form, backend="cpu", rhs=big, dtype="float32", **kw):
        return conv_forms.choose(form, backend, (1, 12, 12, rhs[2]), rhs, dtype,
                                 dict(p, **kw), axes)

    # auto: matmul for large convolutions on the CPU only.
    assert choose("auto") == "matmul"
    assert choose("auto", rhs=small) == "dilated"
    assert choose("auto", "gpu") == choose("auto", "tpu") == "dilated"
    # Grouped: the channels per group count.
    assert choose("auto", rhs=(3, 3, 64, 256), feature_group_count=4) == "dilated"
    # Explicit forms apply on every backend, where they can.
    assert choose("polyphase", "gpu") == "polyphase"
    assert choose("matmul", "gpu", rhs=small) == "matmul"
    assert choose("dilated") == "dilated"
    # Where a form does not apply, the dilated form runs.
    assert choose("matmul", rhs=(1, 1, 256, 256)) == "dilated"      # one tap
    assert choose("matmul", dtype="int32") == "dilated"
    assert choose("matmul", batch_group_count=2) == "dilated"
    assert choose("polyphase", batch_group_count=2) == "dilated"
    assert choose("polyphase", rhs_dilation=(1, 1)) == "dilated"


def test_form_setting_is_validated(monkeypatch):
    with pytest.raises(ValueError, match="`form` must be one of"):
        Tiling(form="winograd")
    monkeypatch.setenv("SIGCNN_CONV_FORM", "polyphase")
    assert Tiling().form == "polyphase"
    assert Tiling(form="matmul").form == "matmul"


# --------------------------------------------------------------------------------------
# Whole networks: undecimate and all_shifts in each form.
# --------------------------------------------------------------------------------------

def _net(padding, seed=5):
    """Strided, dilated and grouped convolutions in sigcnn's padding `padding`."""
    rng = np.random.default_rng(seed)
    ks = [jnp.asarray(rng.standard_normal(s) / np.sqrt(np.prod(s[:3])), jnp.float32)
          for s in [(3, 3, 3, 4), (3, 2, 2, 6), (2, 3, 6, 4), (3, 3, 4, 4)]]

    def f(x):
        y = jax.nn.relu(sc.conv(x, ks[0], stride=2, padding=padding))
        y = jax.nn.relu(sc.conv(y, ks[1], dilation=(2, 1), padding=padding))  # groups 2
        y = sc.max_pool(y, window=2, stride=(1, 2), padding=padding)
        y = jax.nn.relu(sc.conv(y, ks[2], stride=(2, 1), padding=padding))
        return {"a": y, "b": sc.conv(y, ks[3], dilation=2, padding=padding)}

    return f


# Circular padding needs sizes that are multiples of the total stride (4, 4),
# reflect padding sizes minus one; none is a multiple of the last layer's dilation
# (8, 8).
_SIZES = {"circular": (20, 12), "reflect": (21, 13), "valid": (45, 46),
          "zero": (19, 14)}


@functools.lru_cache(maxsize=None)
def _dilated(padding):
    """(f, x, f(x), r2 and strides of the dilated form) for one padding mode."""
    f = _net(padding)
    x = _rand((2, *_SIZES[padding], 3), 6)
    r2, stride = undecimate(f, tiling=Tiling(form="dilated", positions=0))(x)
    return f, x, jax.jit(f)(x), r2, stride


@pytest.mark.parametrize("form", FORMS[1:])
@pytest.mark.parametrize("padding", sorted(_SIZES))
def test_undecimate_is_the_same_in_every_form(padding, form):
    f, x, ref, base, stride = _dilated(padding)
    r2, s = undecimate(f, tiling=Tiling(form=form, positions=23))(x)
    assert s == stride
    for name in ref:
        sy, sx = s[name]
        assert r2[name].shape == base[name].shape
        np.testing.assert_allclose(r2[name], base[name], **TOL)
        np.testing.assert_allclose(r2[name][:, ::sy, ::sx], ref[name], **TOL)


@pytest.mark.parametrize("form", FORMS[1:])
def test_all_shifts_in_each_form_equal_brute_force(form):
    f = _net("circular", seed=7)
    x = _rand((1, 16, 12, 3), 8)
    brute = all_shifts(f, x, method="brute")
    got = all_shifts(f, x, tiling=Tiling(form=form, positions=31))
    for name in brute:
        np.testing.assert_allclose(got[name], brute[name], **TOL)


@pytest.mark.parametrize("contraction", [1, 5, 10**6], ids=["per_tap", "pairs", "all"])
@pytest.mark.parametrize("groups", [1, 2])
def test_matmul_tap_groups(contraction, groups, monkeypatch):
    # The taps are split into products of ceil(contraction / C) taps each (one, two
    # with a shorter last group, or all nine).
    monkeypatch.setattr(conv_forms, "_MIN_CONTRACTION", contraction)
    x, k = _rand((2, 11, 9, 4), 9), _rand((3, 3, 4 // groups, 6), 10)
    kw = dict(window_strides=(1, 1), padding=((2, 1), (0, 3)), rhs_dilation=(2, 3),
              dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
    _, params = _conv_eqn(x, k, **kw)
    got = conv_forms.matmul_conv(x, k, params)
    np.testing.assert_allclose(got, lax.conv_general_dilated(x, k, **kw), **TOL)


def test_matmul_keeps_the_dtype_and_sums_in_float32():
    x, k = _rand((1, 9, 9, 8), 11), _rand((3, 3, 8, 4), 12)
    kw = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), rhs_dilation=(2, 2),
              dimension_numbers=("NHWC", "HWIO", "NHWC"))
    xb, kb = x.astype(jnp.bfloat16), k.astype(jnp.bfloat16)
    _, params = _conv_eqn(xb, kb, **kw)
    got = conv_forms.matmul_conv(xb, kb, params)
    assert got.dtype == jnp.bfloat16
    want = lax.conv_general_dilated(xb.astype(jnp.float32), kb.astype(jnp.float32),
                                    **kw)
    np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=1e-2, atol=1e-2)


def test_matmul_tiles_run_one_per_loop_step():
    assert Tiling().loop_width("matmul") == 1
    assert Tiling(width=3).loop_width("matmul") == 3
    assert Tiling().loop_width("dilated") >= 1
