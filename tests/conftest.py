"""Test-session settings: float64 available, deterministic hypothesis profile."""

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


@pytest.fixture(scope="session", autouse=True)
def _fast_compiles_by_default():
    """On CPU the suite compiles with most XLA optimisations off: its programs are
    tiny and many, so compiling dominates (a test module of importers and shift
    tests: 254 s -> 215 s). Compute-heavy tests opt out with
    ``@pytest.mark.optimized``."""
    if jax.default_backend() != "cpu":
        yield
        return
    before = jax.config.read(_FLAG)
    jax.config.update(_FLAG, True)
    yield
    jax.config.update(_FLAG, before)


@pytest.fixture(autouse=True)
def _optimized_when_marked(request):
    if request.node.get_closest_marker("optimized") is None:
        yield
        return
    before = jax.config.read(_FLAG)
    jax.config.update(_FLAG, False)
    yield
    jax.config.update(_FLAG, before)


@pytest.fixture(scope="module")
def fast_compiles():
    """On CPU, most XLA optimisations off for a module: tiny programs, many compiles
    (the numerics are the same to rounding). Use with
    ``pytestmark = pytest.mark.usefixtures("fast_compiles")``."""
    if jax.default_backend() != "cpu":  # GPU compilers need their passes
        yield
        return
    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)
