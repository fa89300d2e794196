"""Errors of the importers."""

from __future__ import annotations

__all__ = ["MissingExtraError", "import_keras", "require"]


class MissingExtraError(ImportError):
    """An optional framework that an importer needs is not installed."""


def require(module: str, extra: str, what: str):
    """Imports `module`, or raises MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed ({err}); install the "
            f"extra: pip install \"sigcnn[{extra}]\"") from None


def import_keras(what: str):
    """keras, on the JAX backend when keras is imported here first."""
    import os
    import sys

    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    return require("keras", "keras", what)
