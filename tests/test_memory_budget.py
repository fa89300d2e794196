"""all_shifts(..., max_bytes=): batch chunks whose compiled calls fit a budget."""

import jax.numpy as jnp
import numpy as np
import pytest

import sigcnn.models as M
from sigcnn.atrous import all_shifts
from sigcnn.atrous import every_shift as es

_MODEL = M.create("vgg_tiny", key=0, in_channels=3, padding="zero")
_MODEL.eval()


def _f(x):
    return {"logits": _MODEL(x), "map": _MODEL.taps(x)["block1"]}


_X = jnp.asarray(np.random.default_rng(0).normal(size=(5, 16, 16, 3)), jnp.float32)


@pytest.mark.parametrize("method", ["atrous", "brute"])
def test_chunks_fit_the_budget_and_equal_one_call(method):
    plan = (method, np.array([[0, 0], [1, 2], [3, 1]]), None, None, es.Tiling(), None)
    one, two = (es._peak_bytes(_f, _X[:m], plan, None)[0] for m in (1, 2))
    budget = one + (two - one) + (two - one) // 2      # room for 2 images, not 3
    leaves, first, _ = es._by_budget(_f, _X, plan, budget, None)
    b = first.shape[0]
    assert b == 2
    assert (es._peak_bytes(_f, _X[:b], plan, None)[0] <= budget
            < es._peak_bytes(_f, _X[:3], plan, None)[0])
    got = all_shifts(_f, _X, method=method, shifts=plan[1], max_bytes=budget)
    want = all_shifts(_f, _X, method=method, shifts=plan[1])
    for k in want:                       # 3 chunks (2 + 2 + 1 padded) == one call
        assert got[k].shape == want[k].shape
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)
    # and against brute force by hand (the independent oracle)
    direct = _f(jnp.roll(_X, (1, 2), axis=(1, 2)))
    np.testing.assert_allclose(got["logits"][:, 1], direct["logits"], rtol=1e-5,
                               atol=1e-5)


def test_a_large_budget_is_one_call_and_check_still_runs():
    got = all_shifts(_f, _X, max_bytes=10**10, check=2)
    want = all_shifts(_f, _X)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_budget_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`max_bytes`=1000 is below the \d+ bytes"):
        all_shifts(_f, _X, max_bytes=1000)
    with pytest.raises(ValueError, match="`max_bytes` must be a positive int"):
        all_shifts(_f, _X, max_bytes=0)
    one = es._peak_bytes(_f, _X[:1], ("atrous", np.array([[0, 0]]), None, None,
                                      es.Tiling(), None), None)[0]
    with pytest.raises(ValueError, match="needs every leaf of f"):
        all_shifts(lambda x: _MODEL(x).mean(), _X, shifts=[[0, 0]],
                   max_bytes=one + 1)
