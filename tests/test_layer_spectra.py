"""layer_spectra against hand-built undecimated stacks and analytic signals."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sigcnn as sc
from sigcnn import layerwise as ls
from sigcnn.data import bandlimited_field


def _kernels():
    k1 = jax.random.normal(jax.random.key(0), (3, 3, 2, 4), jnp.float64)
    k2 = jax.random.normal(jax.random.key(1), (3, 3, 4, 4), jnp.float64)
    return k1, k2


def _net(x, *, dil=(1, 1, 1), strided=True):
    """conv(s2) -> relu -> max_pool(s2) -> conv(s1); strided or undecimated."""
    k1, k2 = _kernels()
    s = 2 if strided else 1
    h = jax.nn.relu(sc.conv(x, k1, stride=s, dilation=dil[0], padding="circular"))
    p = sc.max_pool(h, window=2, stride=s, dilation=dil[1], padding="circular")
    c = sc.conv(p, k2, dilation=dil[2], padding="circular")
    return {"conv1": h, "pool": p, "conv2": c}


@pytest.fixture(scope="module")
def x():
    return jax.random.normal(jax.random.key(2), (2, 16, 16, 2), jnp.float64)


@pytest.fixture(scope="module")
def result(x):
    return ls.layer_spectra(_net, x)


def test_global_measures_match_manual_undecimated_stack(result, x):
    manual = _net(x, dil=(1, 2, 4), strided=False)
    strides = {"conv1": (2, 2), "pool": (4, 4), "conv2": (4, 4)}
    assert [l.name for l in result.layers] == ["conv1", "pool", "conv2"]
    for layer in result.layers:
        r2 = manual[layer.name]
        assert layer.stride == strides[layer.name]
        np.testing.assert_allclose(layer.aliasing_ratio,
                                   float(sc.aliasing_ratio(r2, layer.stride)),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.shiftability_error,
                                   float(sc.shiftability_error(r2, layer.stride)),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.spectrum,
                                   np.asarray(sc.power_spectrum(r2)), rtol=1e-9,
                                   atol=1e-12)


def test_local_measures_are_the_decimated_signals(result, x):
    k1, _ = _kernels()
    # conv1: its stride-1 output on the input grid, decimated by 2.
    pre1 = jax.nn.relu(sc.conv(x, k1, padding="circular"))  # relu commutes
    conv1_pre = sc.conv(x, k1, padding="circular")
    # pool: the stride-1 max pool of the strided conv1 output, decimated by 2.
    h = jax.nn.relu(sc.conv(x, k1, stride=2, padding="circular"))
    pool_pre = sc.max_pool(h, window=2, stride=1, padding="circular")
    points = result.decimations
    assert len(points) == 2
    assert [p.stride for p in points] == [(2, 2), (2, 2)]
    assert [p.input_stride for p in points] == [(1, 1), (2, 2)]
    assert [p.output_stride for p in points] == [(2, 2), (4, 4)]
    np.testing.assert_allclose(points[0].aliasing_ratio,
                               float(sc.aliasing_ratio(conv1_pre, 2)), rtol=1e-9)
    np.testing.assert_allclose(points[1].aliasing_ratio,
                               float(sc.aliasing_ratio(pool_pre, 2)), rtol=1e-9)
    assert pre1.shape == conv1_pre.shape
    assert [p.index for p in result["pool"].local] == [0, 1]
    assert [p.index for p in result["conv1"].local] == [0]
    assert "conv" in points[0].where and ".py:" in points[0].where


def test_bandlimited_input_has_no_aliasing_through_linear_layers():
    """A linear strided filter of a field below Nyquist aliases nothing."""
    x = bandlimited_field(jax.random.key(3), (32, 32), cutoff=0.2, batch=1,
                          channels=1, dtype=jnp.float64)
    k = jnp.ones((3, 3, 1, 1), jnp.float64) / 9

    def f(x):
        return {"blur": sc.conv(x, k, stride=2, padding="circular")}

    res = ls.layer_spectra(f, x)
    assert res["blur"].aliasing_ratio < 1e-20
    assert res["blur"].shiftability_error < 1e-20
    assert res.decimations[0].aliasing_ratio < 1e-20
    # ReLU creates energy above Nyquist: the same field rectified aliases.
    res2 = ls.layer_spectra(lambda x: {"relu": jax.nn.relu(f(x)["blur"])}, x)
    assert res2["relu"].aliasing_ratio > 1e-3


def test_json_round_trip(result):
    d = json.loads(result.to_json())
    assert [l["name"] for l in d["layers"]] == ["conv1", "pool", "conv2"]
    assert d["layers"][1]["stride"] == [4, 4]
    assert "spectrum" not in d["layers"][0]
    d2 = result.to_dict(include_spectrum=True)
    assert np.asarray(d2["layers"][0]["spectrum"]).shape == (16, 16)


def test_errors(x):
    with pytest.raises(TypeError, match="mapping"):
        ls.layer_spectra(lambda x: x, x)
    with pytest.raises(ValueError, match="'gap'"):
        ls.layer_spectra(lambda x: {"gap": jnp.mean(x, axis=(1, 2))}, x)
    with pytest.raises(ValueError, match="rank 4"):
        ls.layer_spectra(_net, x[0])
    with pytest.raises(TypeError, match="float"):
        ls.layer_spectra(_net, jnp.zeros((1, 16, 16, 2), jnp.int32))
    with pytest.raises(KeyError, match="layers"):
        ls.layer_spectra(_net, x)["nope"]


def test_blur_pool_decimation_is_the_blurred_signal(x):
    """BlurPool's subsampling is found, and its signal is the stride-1 blur."""
    def f(x):
        return {"blur": sc.blur_pool(x, size=7, stride=2, padding="circular")}

    res = ls.layer_spectra(f, x)
    (point,) = res.decimations
    assert point.primitive == "slice" and point.stride == (2, 2)
    pre = sc.blur_pool(x, size=7, stride=1, padding="circular")
    np.testing.assert_allclose(point.aliasing_ratio,
                               float(sc.aliasing_ratio(pre, 2)), rtol=1e-9)
    # Bin-7 removes almost all the energy of white noise above Nyquist.
    assert point.aliasing_ratio < 0.05 * float(sc.aliasing_ratio(x, 2))
