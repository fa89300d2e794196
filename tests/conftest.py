"""Test-session settings: float64 available, deterministic hypothesis profile, XLA
optimisations off on CPU except for tests marked `optimized`, and one compilation
cache shared by the xdist workers of a run."""

import contextlib
import os
import shutil
import tempfile

import matplotlib
import pytest

# XLA:CPU's fusion emitters (its default code generator) compile the suite's many
# tiny programs more slowly than its elemental emitters: tests/test_ops.py with
# tests/test_atrous_constructs.py ran in 122 s with them and 78 s without. XLA reads
# the flag when its CPU backend starts, so it is set before JAX is imported.
_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
if _EMITTERS.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_EMITTERS}".strip()

import jax  # noqa: E402

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


def _cache_dir() -> str:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"solo-{os.getpid()}"
    return os.path.join(tempfile.gettempdir(), f"sigcnn-test-jax-cache-{run}")


def pytest_configure(config):
    """JAX's persistent compilation cache in a folder of this run only: the two
    xdist workers compile many identical programs (the same zoo models, shared
    module fixtures), and each is compiled once instead of once per worker and
    module (the models, layer-spectra and grammar modules: 306 s -> 196 s)."""
    jax.config.update("jax_compilation_cache_dir", _cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):     # the controller, after the workers
        shutil.rmtree(_cache_dir(), ignore_errors=True)


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


@pytest.fixture(scope="session")
def paper_cache(tmp_path_factory):
    """A model and evaluation cache shared by the paper_figures tests of one
    worker (each xdist worker has its own, so no two train into one folder)."""
    return tmp_path_factory.mktemp("paper_cache")
