"""The output folder of a training run: checked, locked, cleaned.

`fit` owns its ``out_dir`` for as long as it runs:

1. *Checked first.* Before the model is built or an epoch runs, the folder is
   created if missing and must be a writable folder: a path that is a file, a
   path below a file and a read-only folder are refused with a `ValueError`
   naming `out_dir`.
2. *Locked.* An exclusive ``fcntl.flock`` on ``out_dir/.lock`` is held for
   the whole call, so a second `fit` (another process or thread) into the same
   folder fails at once with an error saying another run uses it, instead of
   both writing checkpoints over each other. The lock dies with its process;
   the file is removed on a normal exit and reused if a killed run left it.
3. *Cleaned.* Under the lock, temporaries that a killed run left behind
   (sigcnn's ``.tmp-*`` entries and orbax's ``*.orbax-checkpoint-tmp-*``
   folders) are removed before anything is read.

References:
  flock(2), Linux manual page: advisory locks on open file descriptions.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil

__all__: list[str] = []

LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
ORBAX_TMP = ".orbax-checkpoint-tmp"


def prepare_out_dir(out_dir) -> str:
    """`out_dir` as a str, created if missing; ValueError unless writable."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"`out_dir` {out_dir!r} exists and is not a folder; pass "
                         f"a folder (it is created if missing).")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        why = ("a part of the path is a file" if e.errno in (errno.ENOTDIR,
                                                             errno.EEXIST)
               else e.strerror or type(e).__name__)
        raise ValueError(f"`out_dir` {out_dir!r} cannot be created ({why}); pass "
                         f"a writable folder.") from e
    probe = os.path.join(out_dir, f"{TMP_PREFIX}probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"`out_dir` {out_dir!r} is not writable ({e.strerror or e}); "
                         f"pass a folder you can write to.") from e
    return out_dir


@contextlib.contextmanager
def locked(out_dir: str):
    """Holds the exclusive lock of `out_dir` for the body of a ``with``.

    Raises:
      ValueError: if another run holds it (naming `out_dir` and its process).
    """
    path = os.path.join(out_dir, LOCK_FILE)
    fd = _acquire(path, out_dir)
    try:
        yield
    finally:
        # Unlinked while still held: a waiting opener sees a new inode (see
        # `_acquire`), so two runs never hold locks on different files.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: str, out_dir: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ValueError(
                f"`out_dir` {out_dir!r} is in use by another training run"
                f"{holder} (it holds {path!r}); wait for it to finish or pass "
                f"another `out_dir`.") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)      # the holder removed the file as we opened it: retry


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


def remove_stale(folder: str, *, owned: tuple[str, ...] | None = None) -> list[str]:
    """Removes temporaries a killed writer left in `folder`; returns their names.

    Removes orbax's ``*.orbax-checkpoint-tmp-*`` entries and sigcnn's ``.tmp-*``
    ones (with `owned`, only those whose name contains one of its strings).
    Call it only while holding the lock of the run's folder.
    """
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        ours = name.startswith(TMP_PREFIX) and (
            owned is None or any(o in name for o in owned))
        if not (ours or ORBAX_TMP in name):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        removed.append(name)
    return removed


def fsync_dir(folder: str) -> None:
    """Flushes a folder's entries (a rename into it) to disk, where supported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
