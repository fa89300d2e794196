"""all_shifts and layer_spectra on inputs split over a device mesh.

The multi-device cases run in a subprocess with four simulated CPU devices
(``--xla_force_host_platform_device_count=4``), which must be set before JAX
starts; the argument checks run here, on a one-device mesh.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from test_shift_runs import _close

from sigcnn.atrous import all_shifts

_SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import sigcnn as sc
    from sigcnn.atrous import all_shifts
    import sigcnn.models as M

    assert jax.device_count() == 4, jax.devices()
    model = M.create("vgg_tiny", key=0, in_channels=3, padding="circular")
    model.eval()
    f = lambda x: {"logits": model(x), "map": model.taps(x)["block2"]}
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 16, 16, 3)), jnp.float32)
    mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("batch", "shift"))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    picks = [(0, 1), (2, 3), (1, 1), (3, 0), (5, 7), (0, 0), (9, 2), (4, 4)]
    out = {}
    cases = {"atrous": {}, "brute": dict(method="brute"),
             "brute_chunk": dict(method="brute", chunk=4), "check": dict(check=2),
             "shift_axis": dict(shift_axis="shift"),
             "brute_shift_axis": dict(method="brute", shift_axis="shift"),
             "explicit": dict(shifts=picks, shift_axis="shift")}
    for name, kw in cases.items():
        got = all_shifts(f, xs, **kw)
        want = all_shifts(f, x, shifts=picks) if "shifts" in kw else all_shifts(f, x)
        rel = max(float(jnp.abs(got[k] - want[k]).max() / jnp.abs(want[k]).max())
                  for k in want)
        # brute force by hand on one device: the independent oracle
        t = (1, 3) if "shifts" not in kw else picks[4]
        col = (slice(None), 1, 3) if "shifts" not in kw else (slice(None), 4)
        direct = f(jnp.roll(x, t, axis=(1, 2)))
        orc = max(float(jnp.abs(got[k][col] - direct[k]).max()
                        / jnp.abs(direct[k]).max()) for k in direct)
        out[name] = dict(
            specs={k: [a if a is None or isinstance(a, str) else list(a)
                       for a in got[k].sharding.spec] for k in got},
            shards={k: len(got[k].addressable_shards) for k in got},
            shard_shape={k: list(got[k].addressable_shards[0].data.shape) for k in got},
            shape={k: list(got[k].shape) for k in got}, rel=rel, oracle=orc)
    # the work is split, not only the result: XLA's per-device FLOP count of the
    # undecimated pass of this circular network falls with the batch split
    from sigcnn.atrous import api
    def flops(inp):
        api._PROGRAMS.entries.clear()
        all_shifts(f, inp)
        (entry,) = [e for k, e in api._PROGRAMS.entries.items() if k[0] == "shifts"]
        closed = api._trace(f, x)[0]
        cost = entry.run.lower(list(closed.consts), inp).compile().cost_analysis()
        return (cost[0] if isinstance(cost, list) else cost)["flops"]
    x4 = jax.device_put(x, NamedSharding(Mesh(np.array(jax.devices()), ("b",)), P("b")))
    out["flops_ratio"] = flops(x4) / flops(x)
    taps = lambda x: model.taps(x)
    a, b = sc.layer_spectra(taps, xs), sc.layer_spectra(taps, x)
    out["spectra"] = max(
        max(abs(float(p.aliasing_ratio) - float(q.aliasing_ratio)),
            abs(float(p.shiftability_error) - float(q.shiftability_error)))
        for p, q in zip(a.layers, b.layers))
    print("RESULT" + json.dumps(out))
""")


def _four_devices(script=_SCRIPT):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "")
                          + " --xla_force_host_platform_device_count=4").strip())
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


@pytest.mark.slow
def test_on_four_simulated_devices():
    # one subprocess (its JAX starts with 4 CPU devices) for all the cases
    res = _four_devices()
    for case in ("atrous", "brute", "brute_chunk", "check"):
        r = res[case]               # the batch split is kept in every leaf
        for k in ("logits", "map"):
            assert r["specs"][k][0] == "batch", (case, r["specs"])
            assert r["shards"][k] == 4
            assert r["shard_shape"][k][0] == r["shape"][k][0] // 2, case
        assert r["rel"] < 1e-5 and r["oracle"] < 1e-5, (case, r)
    for case in ("shift_axis", "brute_shift_axis", "explicit"):
        r = res[case]               # and shift_axis splits the shifts
        for k in ("logits", "map"):
            assert r["specs"][k][:2] == ["batch", "shift"], (case, r["specs"])
            full, part = r["shape"][k], r["shard_shape"][k]
            assert part[0] == full[0] // 2 and part[1] == full[1] // 2, (case, full, part)
        assert r["rel"] < 1e-5 and r["oracle"] < 1e-5, (case, r)
    # the work is split too: a quarter of the FLOPs per device on 4 devices
    assert 0.2 <= res["flops_ratio"] <= 0.3, res["flops_ratio"]
    # layer_spectra of a split batch equals that of one device
    assert res["spectra"] < 1e-5


def _f(x):
    return jnp.roll(x, 1, axis=1)[:, ::2, ::2]


def test_shift_axis_needs_a_mesh_and_one_of_its_axes():
    x = jnp.ones((2, 8, 8, 1))
    with pytest.raises(ValueError, match="`shift_axis`='s' needs `x` placed on a mesh"):
        all_shifts(_f, x, shift_axis="s")
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
    with pytest.raises(ValueError, match="is not an axis of x's mesh"):
        all_shifts(_f, xs, shift_axis="s")
    with pytest.raises(ValueError, match="already splits x's batch axis"):
        all_shifts(_f, xs, shift_axis="batch")
    with pytest.raises(TypeError, match="`shift_axis` must be None or the name"):
        all_shifts(_f, xs, shift_axis=3)
    # on a one-device mesh the result is that of an unplaced x
    np.testing.assert_array_equal(all_shifts(_f, xs), all_shifts(_f, x))


_RUNNER = textwrap.dedent("""
    import json
    import jax, numpy as np
    from jax.sharding import Mesh
    import sigcnn.models as M
    from sigcnn.shift_test import run_shift_test

    model = M.create("vgg_tiny", key=0, in_channels=1, padding="zero")
    model.eval()
    x = np.random.default_rng(0).uniform(size=(6, 24, 24, 1)).astype(np.float32)
    y = np.arange(6) % 10
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    kw = dict(key=jax.random.key(0), protocols=("crop", "black"), n_pairs=3,
              sweep_images=2, chunk=5)
    a = run_shift_test(model, x, y, mesh=mesh, **kw).to_dict()
    b = run_shift_test(model, x, y, **kw).to_dict()
    print("RESULT" + json.dumps({"mesh": a, "one": b}))
""")


@pytest.mark.slow
def test_shift_test_runner_on_a_mesh_equals_one_device():
    res = _four_devices(_RUNNER)
    a, b = res["mesh"], res["one"]

    def untimed(r):                              # timings differ, of course
        if isinstance(r, dict):
            return {k: untimed(v) for k, v in r.items() if k != "seconds"}
        return [untimed(v) for v in r] if isinstance(r, list) else r
    a, b = untimed(a), untimed(b)
    _close(a, b)
    assert a["protocols"], a.keys()


def test_shift_test_mesh_must_be_a_mesh():
    from sigcnn.shift_test import ShiftTestOptions
    with pytest.raises(TypeError, match="`mesh` must be None or a jax.sharding.Mesh"):
        ShiftTestOptions(mesh="gpus").resolve((2, 16, 16, 1))
