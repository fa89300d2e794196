"""Atomic file writes shared by the experiment and command-line layers.

A result file is written to a temporary file in the same folder, flushed to
disk and renamed over the target, so a reader (or a resumed run) sees either
the old complete file or the new complete one, never a truncated file. Files
get the usual permissions (0666 minus the umask), not the 0600 of a bare
temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json"]


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
    """Writes a JSON-ready `record` to `path` atomically, indented, with a newline."""
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text), binary=False)
