"""Where an equation comes from: the user's source line, for messages.

An equation's traceback is walked from the innermost frame out, past framework
code (JAX, Flax, Equinox, Keras, torchax, PyTorch and sigcnn's own), to the first
frame of the user's module, with the innermost public layer method below it when
there is one.
"""

from __future__ import annotations

import os

try:  # user source lines for messages (private, but stable since jax 0.4)
    from jax._src import source_info_util as _source_info
except ImportError:  # pragma: no cover
    _source_info = None

__all__ = ["source_line"]

# Frames in these packages are framework code; messages point at the innermost
# frame outside them (the user's module).
_FRAMEWORK = tuple(os.sep + p + os.sep for p in (
    "jax", "jaxlib", "flax", "equinox", "torchax", "torch", "optax", "haiku",
    os.path.join("keras", "src", "backend"), os.path.join("keras", "src", "ops"),
    os.path.join("keras", "src", "layers"), os.path.join("keras", "src", "models"),
    os.path.join("keras", "src", "utils"),
    os.path.join("sigcnn", "atrous"))) + tuple(os.sep + f for f in (
        os.path.join("sigcnn", "ops.py"), "functools.py", "contextlib.py"))
# Layer implementations inside the frameworks above.
_LAYERS = tuple(os.sep + p + os.sep for p in (
    os.path.join("keras", "src", "layers"), os.path.join("flax", "linen"),
    os.path.join("flax", "nnx"), os.path.join("equinox", "nn"),
    os.path.join("torch", "nn", "modules"))) + (
        os.sep + os.path.join("sigcnn", "ops.py"),)


def _short_path(name: str) -> str:
    """An installed module's path from its package; else relative to the working
    directory when under it."""
    for marker in ("site-packages", "dist-packages"):
        i = name.rfind(os.sep + marker + os.sep)
        if i >= 0:
            return name[i + len(marker) + 2:]
    try:
        rel = os.path.relpath(name)
    except ValueError:  # another drive
        return name
    return name if rel.startswith(os.pardir) else rel


def _frame_line(frames) -> str:
    """`file:line (function)` of the innermost frame outside framework code, with
    the innermost public layer method below it (`Multiply.call`) when there is one:
    the user's line of a Keras functional model is the model's call, and the layer
    names the block."""
    layer = ""
    for fr in frames:
        name = fr.file_name
        if not any(p in name for p in _FRAMEWORK):
            line = f"{_short_path(name)}:{fr.line_num} ({fr.function_name})"
            return line + (f", in `{layer}`" if layer else "")
        last = fr.function_name.rsplit(".", 1)[-1]
        if not layer and any(p in name for p in _LAYERS) and \
                "<" not in fr.function_name and not last.startswith("_"):
            layer = fr.function_name
    return ""


def source_line(eqn) -> str:
    """The innermost frame of the equation's traceback outside framework code.

    Empty when every frame is framework code (an equation inside a library's
    jitted function: the caller's line is used then).
    """
    try:
        tb = eqn.source_info.traceback
        return _frame_line(tb.frames) if tb is not None else ""
    except Exception:  # pragma: no cover - best effort
        return ""
