"""Real torchvision architectures (random weights) through `from_torch`, and a
Keras application through `from_keras`: the logits the framework computes, the
exact identity f(x) == r2[::S] on a tapped stage, and a shift test end to end on
an image folder the test writes (read, preprocessed and run in resumable
chunks)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import sigcnn as sc
from sigcnn import data
from sigcnn.interop import from_keras, from_torch
from sigcnn.interop._torch_env import import_torch, import_torchvision
from sigcnn.interop.errors import import_keras
from sigcnn.shift_test import resumable_shift_test

pytest.importorskip("torch")

SIZE = 32
# (architecture, tapped stage, its stride, shift test: None, or with all shifts)
NETS = [pytest.param("resnet18", "layer2", 8, False, id="resnet18"),
        # all 32 x 32 shifts of a zero-padded network: a brute-force pass each
        pytest.param("resnet18", "layer2", 8, True, id="resnet18-all-shifts",
                     marks=(pytest.mark.optimized, pytest.mark.slow)),
        pytest.param("vgg11", "features.10", 8, None, id="vgg11"),
        pytest.param("mobilenet_v2", "features.6", 8, None, id="mobilenet_v2"),
        pytest.param("densenet121", "features.denseblock2", 8, None,
                     id="densenet121", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for k in range(3):      # smooth random images of odd sizes (not square)
        low = rng.uniform(0, 255, size=(5, 6, 3))
        img = Image.fromarray(low.astype(np.uint8)).resize((41 + k, 37),
                                                           Image.BICUBIC)
        img.save(root / f"img{k}.jpg" if k else root / f"img{k}.png")
    return data.image_folder(root, size=SIZE)


def _torch_net(arch):
    torch, _ = import_torch()
    tv = import_torchvision()
    torch.manual_seed(0)
    net = getattr(tv.models, arch)(weights=None, num_classes=7)
    if arch == "vgg11":      # the 25088 x 4096 classifier is not what is tested
        net.classifier = torch.nn.Linear(512 * 7 * 7, 7)
    return torch, net.eval()


@pytest.mark.parametrize("arch, tap, stride, alls", NETS)
def test_torchvision_network_through_from_torch(arch, tap, stride, alls, folder,
                                                tmp_path):
    torch, net = _torch_net(arch)
    x = np.stack([folder.image(i) for i in range(2)])
    with torch.no_grad():
        ref = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    apply, params = from_torch(net)
    logits = np.asarray(jax.jit(apply)(params, jnp.asarray(x)))
    np.testing.assert_allclose(logits, ref, rtol=1e-4,
                               atol=1e-4 * np.abs(ref).max())
    tapply, tparams = from_torch(net, taps=[tap])
    f = functools.partial(tapply, tparams)
    r2, strides = sc.undecimate(f)(jnp.asarray(x))
    assert tuple(strides[tap]) == (stride, stride)
    want = np.asarray(f(jnp.asarray(x))[tap])
    got = np.asarray(r2[tap])[:, ::stride, ::stride]
    assert got.shape == want.shape      # valid pools crop r2 below SIZE
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    if alls is None:      # the suite's time goes to two end-to-end runs
        return
    if alls:      # all 32 x 32 shifts cost a brute-force pass each here: 1 image
        folder = dataclasses.replace(folder, files=folder.files[:1])
    res = resumable_shift_test(
        functools.partial(apply, params), folder, key=jax.random.key(0),
        work_dir=tmp_path, chunk_images=2, protocols=("crop", "black"), n_pairs=2,
        sweep_images=0, consistency="crop", all_shifts=alls, chunk=16,
        n_resamples=50)
    assert res.n_images == len(folder) and not res.labelled
    assert [p.name for p in res.protocols] == ["crop", "black"]
    assert res.protocol("crop").geometry["resized_to"] == [SIZE + 10, SIZE + 10]
    if alls:
        assert res.all_shifts.extent == (32, 32) and res.all_shifts.method == "atrous"


def test_keras_model_through_from_keras(folder, tmp_path):
    keras = import_keras("the test")
    L = keras.layers
    z = dict(kernel_initializer="zeros")    # Keras' random initializers compile
    model = keras.Sequential([                # slowly; weights are drawn below
        keras.Input((SIZE, SIZE, 3)), L.Conv2D(8, 3, strides=2, padding="same", **z),
        L.BatchNormalization(), L.ReLU(name="r1"), L.MaxPooling2D(2),
        L.DepthwiseConv2D(3, padding="same", depthwise_initializer="zeros",
                          name="dw"), L.ReLU(),
        L.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="c2",
                 **z),
        L.GlobalAveragePooling2D(), L.Dense(5, name="logits", **z)])
    rng = np.random.default_rng(0)
    model.set_weights([(rng.uniform(0.5, 1.5, w.shape) if w.ndim == 1 and
                        ("variance" in v.path or "gamma" in v.path)
                        else rng.normal(0, 0.5, w.shape)).astype(w.dtype)
                       for v, w in zip(model.weights, model.get_weights())])
    x = np.stack([folder.image(i) for i in range(2)])
    ref = np.asarray(model(x, training=False))
    apply, params = from_keras(model, taps=["c2", "logits"])
    f = functools.partial(apply, params)
    out = f(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(out["logits"]), ref, rtol=1e-4,
                               atol=1e-4 * np.abs(ref).max())
    r2, strides = sc.undecimate(f)(jnp.asarray(x))
    assert tuple(strides["c2"]) == (8, 8)
    want = np.asarray(out["c2"])
    np.testing.assert_allclose(np.asarray(r2["c2"])[:, ::8, ::8], want, rtol=0,
                               atol=1e-4 * np.abs(want).max())
    logits_fn, lparams = from_keras(model)
    res = resumable_shift_test(
        functools.partial(logits_fn, lparams), folder, key=jax.random.key(0),
        work_dir=tmp_path, chunk_images=3, protocols=("crop",), n_pairs=2,
        sweep_images=1, consistency=None, all_shifts=True, chunk=16,
        n_resamples=50)
    assert res.jaggedness.reference == "top1" and res.protocol("crop").n_pairs == 6
    assert res.all_shifts.extent == (8, 8) and res.all_shifts.method == "atrous"
