"""sigcnn.interop: PyTorch (torchax) and Keras 3 networks as JAX functions.

Oracles are the frameworks themselves: the imported function must return what the
torch module / Keras model returns, to float32 rounding, and sigcnn's transforms of
it must satisfy their identities (r2[::S] == f(x); all_shifts == f(roll(x)) under
circular padding).
"""

from __future__ import annotations

import functools
import os

import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import sigcnn as sc  # noqa: E402
from sigcnn import interop  # noqa: E402
from sigcnn.interop import from_keras, from_torch  # noqa: E402

torch = pytest.importorskip("torch")


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def torch_net():
    interop._torch_env.import_torch()
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, padding_mode="circular"), nn.BatchNorm2d(8),
        nn.ReLU(), nn.Conv2d(8, 6, 3, 2, 1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5)).eval()


def test_from_torch_equals_torch_and_keeps_the_module_usable(torch_net):
    x = _x((2, 16, 12, 3))
    with torch.no_grad():
        ref = torch_net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    apply, params = from_torch(torch_net)
    assert set(params) == set(torch_net.state_dict())
    np.testing.assert_allclose(np.asarray(apply(params, x)), ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the module still runs in torch after the import
        again = torch_net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_array_equal(again, ref)


def test_from_torch_taps_are_nhwc_maps_for_the_transforms(torch_net):
    x = _x((1, 16, 16, 3))
    apply, params = from_torch(torch_net, taps=["2", "4"])
    assert set(params) == set(torch_net.state_dict())
    out = apply(params, x)
    assert list(out) == ["2", "4"]
    with torch.no_grad():
        h = torch_net[:3](torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(np.asarray(out["2"]), h.transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-5)
    f = functools.partial(apply, params)
    r2, stride = sc.undecimate(f)(jnp.asarray(x))
    assert stride == {"2": (2, 2), "4": (4, 4)}
    np.testing.assert_allclose(r2["4"][:, ::4, ::4], out["4"], rtol=1e-5, atol=1e-5)
    spectra = sc.layer_spectra(f, jnp.asarray(x))
    assert [(l.name, l.stride) for l in spectra.layers] == [("2", (2, 2)),
                                                             ("4", (4, 4))]
    # circular padding everywhere: every shift equals the rolled input's output
    apply_out, params_out = from_torch(torch_net)
    g = functools.partial(apply_out, params_out)
    every = sc.all_shifts(g, jnp.asarray(x), check=2)
    assert every.shape == (1, 4, 4, 5)
    for t in [(1, 0), (3, 2)]:
        np.testing.assert_allclose(every[:, t[0], t[1]],
                                   g(np.roll(x, t, axis=(1, 2))), rtol=1e-5,
                                   atol=1e-5)


def test_from_torch_errors_name_the_argument(torch_net):
    with pytest.raises(TypeError, match="`module` must be a torch.nn.Module"):
        from_torch(lambda x: x)
    with pytest.raises(ValueError, match=r"no submodule '9'"):
        from_torch(torch_net, taps=["9"])
    with pytest.raises(ValueError, match=r"did you mean '2'"):
        from_torch(torch_net, taps=["2 "])
    with pytest.raises(TypeError, match="list of submodule names"):
        from_torch(torch_net, taps="2")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)).train()
    with pytest.raises(ValueError, match=r"training mode: call module.eval\(\)"):
        from_torch(net)
    apply, params = from_torch(torch_net)
    with pytest.raises(ValueError, match="rank 4|NHWC"):
        apply(params, _x((16, 16, 3)))


def test_missing_extra_says_what_to_install():
    with pytest.raises(interop.MissingExtraError, match=r'needs sigcnn_no_such_module'
                       r'.*pip install "sigcnn\[torch\]"'):
        interop.errors.require("sigcnn_no_such_module", "torch", "importing")


def test_from_keras_equals_keras_with_taps():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras was imported on another backend")
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 3)), L.Conv2D(4, 3, strides=2, padding="same", name="c1"),
        L.BatchNormalization(name="bn"), L.ReLU(name="r1"),
        L.Conv2D(6, 3, strides=2, padding="same", name="c2"),
        L.GlobalAveragePooling2D(), L.Dense(5)])
    x = _x((2, 16, 16, 3))
    apply, params = from_keras(model)
    np.testing.assert_allclose(np.asarray(apply(params, x)),
                               np.asarray(model(x, training=False)), rtol=1e-5,
                               atol=1e-5)
    before = np.asarray(apply(params, x))
    model.predict(x, verbose=0)       # Keras donates its buffers to its own steps
    np.testing.assert_array_equal(np.asarray(apply(params, x)), before)
    tap, tparams = from_keras(model, taps=["r1", "c2"])
    out = tap(tparams, x)
    assert list(out) == ["r1", "c2"] and out["c2"].shape == (2, 4, 4, 6)
    r2, stride = sc.undecimate(functools.partial(tap, tparams))(jnp.asarray(x))
    assert stride == {"r1": (2, 2), "c2": (4, 4)}
    np.testing.assert_allclose(r2["c2"][:, ::4, ::4], out["c2"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no layer 'c3'"):
        from_keras(model, taps=["c3"])
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        from_keras(object())


def test_load_torch_from_a_state_dict_file(tmp_path):
    from sigcnn.interop import load_torch

    tv = interop._torch_env.import_torchvision()
    torch.manual_seed(1)
    trained = tv.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pt"
    torch.save({"state_dict": trained.state_dict()}, path)
    net = load_torch("torchvision.models:resnet18", path)
    assert not net.training
    x = torch.from_numpy(_x((1, 3, 32, 32)))
    with torch.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), trained(x).numpy())
    # errors name the flag and the first mismatches
    other = tmp_path / "vgg.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).state_dict(), other)
    with pytest.raises(ValueError, match=r"--weights: the state dict .* does not "
                       r"match the architecture ResNet: \d+ missing "
                       r"\(first: \['conv1.weight'"):
        load_torch("torchvision.models:resnet18", other)
    with pytest.raises(FileNotFoundError, match="--weights: no such file"):
        load_torch("torchvision.models:resnet18", tmp_path / "none.pt")
    with pytest.raises(ValueError, match="--torch must be 'package.module:callable'"):
        load_torch("torchvision.models.resnet18")
    with pytest.raises(ValueError, match="has no callable 'resnet99'"):
        load_torch("torchvision.models:resnet99")
    junk = tmp_path / "junk.pt"
    junk.write_text("not weights")
    with pytest.raises(ValueError, match="not a PyTorch weights file"):
        load_torch("torchvision.models:resnet18", junk)


def test_load_keras_from_a_model_file(tmp_path):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras was imported on another backend")
    from sigcnn.interop import load_keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3, strides=2, name="c"),
                              keras.layers.GlobalAveragePooling2D()])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_keras(path)
    x = _x((1, 8, 8, 3))
    apply, params = from_keras(loaded)
    np.testing.assert_allclose(np.asarray(apply(params, x)), np.asarray(model(x)),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="--keras: no such file"):
        load_keras(tmp_path / "none.keras")
