"""Errors of the importers."""

from __future__ import annotations

__all__ = ["MissingExtraError", "require"]


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
