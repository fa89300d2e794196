"""Test-session settings: float64 available, deterministic hypothesis profile, XLA
optimisations off on CPU except for tests marked `optimized`."""

import contextlib

import jax
import matplotlib
import pytest

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)

try:
    from hypothesis import settings

    # jit compiles break hypothesis' default deadline; derandomize for CI.
    settings.register_profile("sigcnn", deadline=None, derandomize=True,
                              max_examples=20, print_blob=True)
    settings.load_profile("sigcnn")
except ImportError:  # pragma: no cover
    pass


_FLAG = "jax_disable_most_optimizations"


@contextlib.contextmanager
def _most_optimizations_off(value: bool):
    """XLA's optimisations off (value True) or on while the block runs, on CPU only
    (GPU compilers need their passes)."""
    if jax.default_backend() != "cpu":
        yield
        return
    before = jax.config.read(_FLAG)
    jax.config.update(_FLAG, value)
    try:
        yield
    finally:
        jax.config.update(_FLAG, before)


@pytest.fixture(scope="session", autouse=True)
def _fast_compiles_by_default():
    """The suite compiles with most XLA optimisations off: its programs are tiny
    and many, so compiling dominates (the numerics are the same to rounding; the
    importer, shift-test and spectra modules: 254 s -> 215 s). Compute-heavy tests
    opt out with ``@pytest.mark.optimized``."""
    with _most_optimizations_off(True):
        yield


@pytest.fixture(autouse=True)
def _optimized_when_marked(request):
    if request.node.get_closest_marker("optimized") is None:
        yield
        return
    with _most_optimizations_off(False):
        yield
