"""Atomic file writes and JSON conversion shared by the experiment and
command-line layers.

A result file is written to a temporary file in the same folder, flushed to
disk and renamed over the target, so a reader (or a resumed run) sees either
the old complete file or the new complete one, never a truncated file. Files
get the usual permissions (0666 minus the umask), not the 0600 of a bare
temporary file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import numbers
import os
import tempfile
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json",
           "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """`value` as plain JSON types, the one conversion every result file uses.

    Mappings become dicts with string keys, tuples / lists / arrays become
    lists, NumPy and JAX scalars become Python numbers, dataclasses their
    fields. Non-finite floats (NaN, ±inf) become ``None`` (JSON ``null``):
    JSON has no NaN, and a reader should never parse a number that is not
    one. Anything else (a string, ``None``) is returned as it is.

    Examples:
      >>> to_jsonable({"a": np.float32(0.5), "b": (1, np.nan), 3: np.arange(2)})
      {'a': 0.5, 'b': [1, None], '3': [0, 1]}
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable({f.name: getattr(value, f.name)
                            for f in dataclasses.fields(value)})
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if hasattr(value, "__array__") and hasattr(value, "shape"):
        return to_jsonable(np.asarray(value).tolist())
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[Any], None], *, binary: bool) -> None:
    """Calls ``write(file)`` on a temporary file, then renames it to `path`.

    Args:
      path: the target file (its folder must exist).
      write: writes the content to the open file object it is given.
      binary: open the temporary file in binary (True) or text mode (False,
        UTF-8).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path),
                               dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        mode = "wb" if binary else "w"
        kwargs = {} if binary else {"encoding": "utf-8"}
        with os.fdopen(fd, mode, **kwargs) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes `data` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda f: f.write(data), binary=True)


def atomic_write_json(path, record) -> None:
    """Writes `record` (converted by `to_jsonable`) to `path` atomically,
    indented, with a newline; NaN never reaches the file."""
    text = json.dumps(to_jsonable(record), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text), binary=False)
