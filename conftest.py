"""Doctests of sigcnn's modules run in float32, as users see them.

tests/conftest.py switches jax_enable_x64 on for the test modules; under xdist a
worker may run doctests after it, so each doctest turns it off while it runs.
"""

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctests_in_float32(request):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)
