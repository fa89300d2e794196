"""Test-session settings: float64 available, deterministic hypothesis profile."""

import jax
import matplotlib

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
