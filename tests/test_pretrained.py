"""A real pretrained CNN from a PyPI wheel (MTCNN's ONet, see tests/_pretrained.py)
through `from_keras`: its outputs, its per-layer spectra and the shift test on
real photographs that ship offline with scikit-image."""

from __future__ import annotations

import functools
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

if importlib.util.find_spec("mtcnn") is None:   # its __init__ needs TensorFlow
    pytest.skip("the mtcnn wheel is not installed", allow_module_level=True)

import _pretrained as P  # noqa: E402

from sigcnn import layer_spectra, undecimate  # noqa: E402
from sigcnn.interop import from_keras  # noqa: E402
from sigcnn.shift_test import resumable_shift_test  # noqa: E402


@pytest.fixture(scope="module")
def onet():
    model = P.onet()
    _, faces = P.crops(P.FACES)
    _, others = P.crops(P.NON_FACES)
    x = P.scale(np.concatenate([faces, others]))
    y = np.array([1] * len(faces) + [0] * len(others))
    return model, x, y


def test_pretrained_onet_through_from_keras_recognises_faces(onet):
    model, x, y = onet
    apply, params = from_keras(model)
    out = jax.jit(apply)(params, jnp.asarray(x))
    ref = model(x, training=False)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                                   atol=1e-6)
    p_face = np.asarray(out[2])[:, 1]
    # trained weights, not random ones: faces and non-faces are told apart
    assert p_face[y == 1].min() > 0.7 and p_face[y == 0].max() < 0.05


def test_pretrained_onet_spectra_and_exact_undecimation(onet):
    model, x, _ = onet
    tapply, tparams = from_keras(model, taps=list(P.ONET_TAPS))
    f = functools.partial(tapply, tparams)
    xs = jnp.asarray(x[:2])
    r2, strides = undecimate(f)(xs)
    ref = jax.jit(f)(xs)
    for name in P.ONET_TAPS:
        sy, sx = strides[name]
        got = np.asarray(r2[name][:, ::sy, ::sx])
        want = np.asarray(ref[name])
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())
    res = layer_spectra(f, xs)
    by = {l.name: l for l in res.layers}
    assert [by[n].stride for n in P.ONET_TAPS] == [(1, 1), (2, 2), (2, 2), (4, 4),
                                                   (4, 4), (8, 8), (8, 8)]
    # aliasing grows with the stride on trained weights, as the paper argues
    ratios = [by[n].aliasing_ratio for n in ("maxpooling1", "maxpooling2",
                                             "maxpooling3")]
    assert by["prelu1"].aliasing_ratio < 0.01
    assert ratios[0] < ratios[1] < ratios[2]


def test_pretrained_onet_shift_test_on_real_photographs(onet, tmp_path):
    model, x, y = onet
    apply, params = from_keras(model)

    def log_p(images):
        return jnp.log(apply(params, images)[2] + 1e-30)

    res = resumable_shift_test(
        log_p, x, y, key=jax.random.key(0), work_dir=tmp_path, chunk_images=4,
        protocols=("crop", "black", "circular"), sweep_images=0,
        consistency="crop", chunk=128, n_resamples=200)
    crop = res.protocol("crop")
    assert crop.n_pairs == 8 * len(y) and crop.accuracy >= 0.9
    assert crop.p_top1_change == pytest.approx(np.mean(crop.p_by_pair))
    a = res.all_shifts
    assert a.extent == (8, 8) and a.method == "atrous"
    assert a.accuracy == 1.0 and a.robust_accuracy <= a.accuracy
    # the paper's point on a trained network: some image changes its answer
    # under a circular shift smaller than the stride; checked by brute force
    assert a.invariant_fraction < 1.0
    rolls = [(ty, tx) for ty in range(8) for tx in range(8)]
    frames = np.stack([np.roll(x, r, axis=(1, 2)) for r in rolls], axis=1)
    top = np.asarray(jnp.argmax(jax.jit(log_p)(jnp.asarray(
        frames.reshape((-1,) + x.shape[1:]))), -1)).reshape(len(x), len(rolls))
    invariant = (top == top[:, :1]).all(axis=1)
    assert a.invariant_fraction == pytest.approx(invariant.mean())
    assert a.mean_accuracy == pytest.approx((top == y[:, None]).mean())
