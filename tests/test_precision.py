"""precision=: one lax.Precision for every convolution and matrix product of f."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend import core as jcore

import sigcnn
import sigcnn.models as M
from sigcnn.atrous import api
from sigcnn.atrous import precision as P

_MODEL = M.create("vgg_tiny", key=0, in_channels=3, padding="circular")
_MODEL.eval()
_X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16, 16, 3)), jnp.float32)
_K = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 3, 4)), jnp.float32)


def _conv(x, k, precision=None):
    return lax.conv_general_dilated(x, k, (2, 2), "SAME", precision=precision,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _nested(x):
    """Products in a nested jit, a scan, a cond and a custom_vjp, with their own
    precisions (DEFAULT, None, HIGH)."""
    y = jax.jit(lambda a: _conv(a, _K, lax.Precision.DEFAULT))(x)

    def body(c, _):
        return jnp.tanh(c @ jnp.eye(4, dtype=c.dtype)), None

    y, _ = lax.scan(body, y, None, length=2)
    y = lax.cond(True, lambda a: jnp.einsum("nhwc,cd->nhwd", a, jnp.eye(4, dtype=a.dtype),
                                            precision=lax.Precision.HIGH),
                 lambda a: a, y)
    return sigcnn.ops.conv(y, jnp.ones((3, 3, 4, 2)), padding="circular")


def _precisions(text):
    """The operand precisions of each convolution and dot of StableHLO text."""
    ops = [line for line in text.splitlines()
           if "stablehlo.convolution" in line or "stablehlo.dot_general" in line]
    found = [re.search(r"precision(?:_config)? = \[([^\]]*)\]", line) for line in ops]
    return ops, [tuple(re.findall(r"HIGHEST|HIGH|DEFAULT", m.group(1))) if m else ()
                 for m in found]


def test_every_product_gets_the_precision_in_the_compiled_program():
    closed = jax.make_jaxpr(_nested)(_X)
    ops, before = _precisions(jax.jit(jcore.jaxpr_as_fun(closed)).lower(_X).as_text())
    assert len(ops) >= 4 and len(set(before)) > 1     # mixed precisions to begin with
    for name, want in (("highest", "HIGHEST"), ("tensorfloat32", "HIGH")):
        out = P.with_precision(closed, P.check_precision(name))
        ops2, after = _precisions(jax.jit(jcore.jaxpr_as_fun(out)).lower(_X).as_text())
        assert len(ops2) == len(ops)
        assert all(a == (want, want) for a in after), after
        np.testing.assert_allclose(jcore.jaxpr_as_fun(out)(_X)[0], _nested(_X),
                                   rtol=1e-5, atol=1e-5)
    assert P.with_precision(closed, None) is closed


def test_precision_names_and_errors():
    assert P.check_precision("HIGHEST") is lax.Precision.HIGHEST
    assert P.check_precision("bfloat16") is lax.Precision.DEFAULT
    assert P.check_precision(lax.Precision.HIGH) is lax.Precision.HIGH
    for bad in ("tf32", 3, "fp32"):
        with pytest.raises(ValueError, match=r"`precision` must be None, .*got"):
            sigcnn.all_shifts(_MODEL, _X, precision=bad)
        with pytest.raises(ValueError, match=r"`precision` must be None"):
            sigcnn.undecimate(_MODEL, precision=bad)


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_all_shifts_and_undecimate_at_a_precision(precision):
    got = sigcnn.all_shifts(_MODEL, _X, precision=precision, check=2)
    sy, sx = got.shape[1:3]
    assert (sy, sx) == (4, 4)
    for t in ((0, 0), (1, 3), (3, 2)):          # the oracle: f on the rolled input
        want = _MODEL(jnp.roll(_X, t, axis=(1, 2)))
        np.testing.assert_allclose(got[:, t[0], t[1]], want, rtol=1e-4, atol=1e-5)
    taps = lambda x: _MODEL.taps(x)["block2"]
    r2, stride = sigcnn.undecimate(taps, precision=precision)(_X)
    np.testing.assert_allclose(r2[:, ::stride[0], ::stride[1]], taps(_X), rtol=1e-5,
                               atol=1e-5)


def test_cpu_computes_float32_at_every_precision():
    # XLA's CPU backend ignores reduced precisions for float32 products; the
    # documentation says so, and the check's tolerance relies on it.
    if jax.default_backend() != "cpu":
        pytest.skip("a statement about the CPU backend")
    hi = sigcnn.all_shifts(_MODEL, _X, precision="highest")
    lo = sigcnn.all_shifts(_MODEL, _X, precision="default")
    np.testing.assert_array_equal(hi, lo)
    before = set(api._PROGRAMS.entries)   # the cache is bounded: compare keys, not sizes
    sigcnn.all_shifts(_MODEL, _X, precision="high")       # programs of its own
    assert set(api._PROGRAMS.entries) - before


def test_check_tolerance_follows_precision_and_backend(monkeypatch):
    assert P.check_tolerance(lax.Precision.DEFAULT, 1e-4) == (
        1e-4 if jax.default_backend() == "cpu" else 5e-2)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert P.check_tolerance(lax.Precision.HIGHEST, 1e-4) == 1e-4
    assert P.check_tolerance(lax.Precision.HIGH, 1e-4) == 2e-2
    assert P.check_tolerance(None, 1e-4) == 5e-2          # the backend's default
    assert P.check_tolerance(lax.Precision.HIGH, 5e-2) == 5e-2   # bfloat16 data
