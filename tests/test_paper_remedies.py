"""paper_figures/remedies.py and its networks (paper_figures/_nets.py)."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures"

PROTOCOLS = ["crop", "black", "circular"]


def _nets():
    """paper_figures/_nets.py by path (tests/ has a _nets module of its own)."""
    spec = importlib.util.spec_from_file_location("paper_figures_nets", ROOT / "_nets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
VERDICTS = {"holds", "partly", "does not hold"}


def _interval(d):
    assert d["low"] <= d["mean"] <= d["high"]
    assert d["mean"] == pytest.approx(np.mean(d["values"]))


@pytest.mark.slow
def test_remedies_quick(tmp_path, paper_cache):
    proc = subprocess.run([sys.executable, str(ROOT / "remedies.py"), "--quick", "--out",
                           str(tmp_path), "--cache", str(paper_cache)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "remedies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / "remedies.json").read_text())
    assert rec["quick"] is True and rec["seeds"] == [0, 1]
    assert rec["invariants"] and all(rec["invariants"].values()), rec["invariants"]
    models = rec["models"]
    trained = [n for n, m in models.items() if m["trained"]]
    assert trained == ["baseline", "blur-4", "aps"]
    assert [n for n in models if n not in trained] == ["reduced-2", "reduced-1", "reduced-0"]
    assert rec["train_seconds"] > 0
    for name in trained:
        m = models[name]
        assert len(m["seeds"]) == 2
        for d in (m["accuracy"], m["robust_accuracy"], *m["p"].values()):
            _interval(d)
        for e in m["seeds"]:
            assert 0 <= e["accuracy"] <= 1
            for p in PROTOCOLS:
                w = e["protocols"][p]
                assert 0 <= w["p_ci"][0] <= w["p"] <= w["p_ci"][1] <= 1
            a = e["all_shifts"]
            assert 0 <= a["robust_accuracy"] <= min(a["accuracy"], a["invariant"] + 1e-12)
            assert e["circular_twin"]["p"] == 0.0
            assert 0 <= e["local_aliasing"] <= 1
            if m["mode"] == "aps":          # no undecimated form
                assert e["global_aliasing"] is None and e["circular_twin"]["step"] == 1
            else:
                assert 0 <= e["global_aliasing"] <= 1 and e["circular_twin"]["step"] == 8
    # the ideal low-pass leaves nothing to alias; BlurPool keeps some
    assert max(e["ideal_twin_local_aliasing"] for e in models["baseline"]["seeds"]) < 1e-6
    assert min(models["blur-4"]["local_aliasing"]["values"]) > 1e-4
    # analytic FLOPs: 2 x 9 x (1*8*32² + 8*16*16² + 16*32*8²) + 2 x 32 x 10
    cost = {n: m["cost"] for n, m in models.items()}
    assert cost["baseline"]["analytic_flops"] == 1327744
    assert cost["reduced-0"]["analytic_flops"] == 2 * 9 * (8 * 1024 + 128 * 1024
                                                           + 512 * 1024) + 640
    assert cost["baseline"]["flops_ratio"] == cost["baseline"]["time_ratio"] == 1
    assert all(c["xla_flops"] > 0 and c["us_per_image"] > 0 for c in cost.values())
    assert len(rec["table"]) == len(models)
    assert rec["claims"] and all(c["verdict"] in VERDICTS and c["paper"] and c["sigcnn"]
                                 for c in rec["claims"])


def test_fast_filters_equal_the_reference_ops():
    import jax
    import jax.numpy as jnp

    import sigcnn as sc

    nets = _nets()
    blur_matrix, lowpass_matrix = nets.blur_matrix, nets.lowpass_matrix
    separable, tiled_lowpass = nets.separable, nets.tiled_lowpass

    x = jax.random.normal(jax.random.key(0), (2, 12, 8, 3))
    for size in (2, 4, 7):
        for pad in ("zero", "circular"):
            ref = sc.blur_pool(x, size=size, stride=2, padding=pad)
            got = separable(x, blur_matrix(12, size, padding=pad),
                            blur_matrix(8, size, padding=pad))
            np.testing.assert_allclose(got, ref, atol=1e-6)
    np.testing.assert_allclose(tiled_lowpass(x), sc.ideal_lowpass(x, cutoff=0.25),
                               atol=1e-6)
    y = tiled_lowpass(x, dilation=2)           # each polyphase component on its own
    for py in range(2):
        for px in range(2):
            np.testing.assert_allclose(
                y[:, py::2, px::2], sc.ideal_lowpass(x[:, py::2, px::2], cutoff=0.25),
                atol=1e-6)
    m = lowpass_matrix(12)
    assert np.allclose(m, m.T) and np.allclose(m @ m, m)       # a projection
    assert float(sc.aliasing_ratio(jnp.asarray(tiled_lowpass(x)), 2)) < 1e-10


@pytest.mark.slow
def test_remedy_vgg_twins_and_shifts():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from sigcnn.models import VGG, variant

    nets = _nets()
    vgg3, analytic_flops, jitted = nets.vgg3, nets.analytic_flops, nets.jitted

    x = jax.random.uniform(jax.random.key(1), (3, 32, 32, 1))
    base = vgg3(nnx.Rngs(0), width=0.25)
    zoo = VGG(((32,), (64,), (128,)), width=0.25, head="gap", in_channels=1,
              num_classes=10, downsample="blur", blur_size=5, rngs=nnx.Rngs(0))
    blur = variant(base, downsample="blur", blur_size=5)
    nnx.update(zoo, nnx.state(blur))
    np.testing.assert_allclose(jitted(blur)(x), jitted(zoo)(x), atol=1e-5)   # the zoo's
    for mode in ("max", "blur", "ideal"):
        m = variant(base, downsample=mode)
        r2 = jitted(variant(m, undecimated=True), "taps")(x)["block3"]
        np.testing.assert_allclose(r2[:, ::8, ::8], jitted(m, "taps")(x)["block3"],
                                   atol=1e-5)
    for k in (0, 1, 2):                         # strides removed after stage k
        red = vgg3(nnx.Rngs(1), width=0.25, keep_strides=k)
        nnx.update(red, nnx.state(base))
        s = 2 ** (3 - k)
        assert red.total_stride == 2 ** k
        np.testing.assert_allclose(jitted(red, "taps")(x)["block3"][:, ::s, ::s],
                                   jitted(base, "taps")(x)["block3"], atol=1e-6)
        assert analytic_flops(red, 32) > analytic_flops(base, 32) or k == 2
    aps = variant(base, downsample="aps", padding="circular")
    f = jitted(aps)
    np.testing.assert_allclose(f(jnp.roll(x, (1, 3), (1, 2))), f(x), atol=1e-5)
    with pytest.raises(ValueError, match="undecimated"):
        variant(aps, undecimated=True)
    f = jitted(base)
    tops = nets.all_shift_tops(f, np.asarray(x), extent=3, chunk=4)
    ref = [[int(jnp.argmax(f(jnp.roll(x, (ty, tx), (1, 2)))[i]))
            for ty in range(3) for tx in range(3)] for i in range(3)]
    assert tops.tolist() == ref
