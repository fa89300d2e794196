"""undecimate / all_shifts on real CNNs written outside sigcnn (tests/_real_nets.py).

For each network and padding variant, one test checks:

1. the identity ``f(x) == r2[:, ::sy, ::sx]`` on every output (a spatial tap at
   stride ~8, and the logits, for which r2 == f(x)), with spatial r2 leaves at the
   input resolution;
2. ``all_shifts(f, x)[:, 0, 0] == f(x)`` (any padding);
3. where f pads circularly everywhere, ``all_shifts(f, x)[:, ty, tx] ==
   f(roll(x, (ty, tx)))`` against f on a few rolled inputs (corners and an interior
   shift). Full brute-force comparisons on every shift of the larger networks run in
   benchmarks/bench_real_architectures.py (table in benchmarks/README.md).

A NotImplementedError instead of a result passes if it names the primitive (in
backquotes) and a source line. Tolerance (float32 models): max abs difference
<= 1e-4 * max(1, max |reference|).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _real_nets import REGISTRY, build

import sigcnn as sc

RTOL = 1e-4

FAST = [
    ("torchvision/resnet18", "circular"),
    ("keras/MobileNet", "zero"),
    ("equinox/cnn", "zero"),
    ("equinox/cnn", "circular"),
    ("flax.linen/resnet_small", "zero"),
    ("flax.linen/resnet_small", "circular"),
    ("flax.nnx/cnn", "circular"),
    ("flax.nnx/scan_resnet", "zero"),
    ("flax.nnx/scan_resnet", "circular"),
]
CASES = [pytest.param(k, v, id=f"{k}[{v}]") for k, v in FAST]


def _close(a, ref, what):
    err = float(jnp.max(jnp.abs(jnp.asarray(a) - ref)))
    bound = RTOL * max(1.0, float(jnp.max(jnp.abs(ref))))
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"


def _check_refusal(err: NotImplementedError):
    msg = str(err)
    assert re.search(r"`[\w.\-]+`", msg), f"refusal names no primitive: {msg}"
    assert re.search(r"\S+\.py:\d+", msg), f"refusal names no source line: {msg}"


def _exact_shifts(net, variant) -> bool:
    """all_shifts equals f on rolled inputs only where every padding is circular."""
    return variant == "circular" and "non-circular" not in net.notes


def test_registry_covers_the_brief():
    frameworks = {s.framework for s in REGISTRY.values()}
    assert frameworks == {"torchvision", "keras", "equinox", "flax.linen", "flax.nnx"}
    for key, variant in FAST:
        assert variant in REGISTRY[key].variants


@pytest.mark.parametrize("key, variant", CASES)
def test_real_network(key, variant):
    net = build(key, variant)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(net.x_shape), jnp.float32)
    f = jax.jit(net.f)
    y = f(x)
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(y)]
    treedef = jax.tree.structure(y)

    # 1. identity
    try:
        r2, stride = sc.undecimate(net.f)(x)
    except NotImplementedError as err:
        _check_refusal(err)
    else:
        for name, yl, r, s in zip(names, jax.tree.leaves(y), treedef.flatten_up_to(r2),
                                  treedef.flatten_up_to(stride)):
            r = jnp.asarray(r)
            if yl.ndim == 4:
                # The à trous network's extent: the input's when every layer pads
                # "SAME"-like; unpadded pools and VALID convs shorten it.
                for ax in (1, 2):
                    si, n = int(s[ax - 1]), yl.shape[ax]
                    assert si * (n - 1) < r.shape[ax] <= min(si * n, x.shape[ax]), \
                        f"{name}: r2 {r.shape} does not cover the grid of {yl.shape}"
                r = r[:, ::int(s[0]), ::int(s[1])]
            assert r.shape == yl.shape, f"{name}: {r.shape} != {yl.shape}"
            _close(r, yl, f"identity {name}")

    # 2., 3. all shifts
    try:
        every = sc.all_shifts(net.f, x)
    except NotImplementedError as err:
        _check_refusal(err)
        return
    leaves = treedef.flatten_up_to(every)
    for name, yl, a in zip(names, jax.tree.leaves(y), leaves):
        assert a.shape[:1] + a.shape[3:] == yl.shape, f"{name}: {a.shape} vs {yl.shape}"
        assert bool(jnp.all(jnp.isfinite(a))), name
        _close(a[:, 0, 0], yl, f"shift (0, 0) {name}")
    if not _exact_shifts(net, variant):
        return  # zero / VALID padding: other shifts differ from f(roll(x)) near borders
    sy, sx = leaves[0].shape[1:3]
    for t in sorted({(sy - 1, sx - 1), (1, 0), (0, sx - 1), (sy // 2 + 1, sx // 3)}):
        ref = jax.tree.leaves(f(jnp.roll(x, t, axis=(1, 2))))
        for name, a, b in zip(names, leaves, ref):
            _close(a[:, t[0], t[1]], b, f"shift {t} {name}")
