"""Several processes sharing one resumable shift test through its folder.

A resumable shift test (`sigcnn.shift_test.runs`) splits its images into
chunks; with P processes, chunk k belongs to process k mod P, so the chunks
are exactly those of a one-process run and any number of processes can resume
any run. Every process writes its own chunks into the one shared `work_dir`
(a filesystem all of them see); process 0 writes the manifest, then waits for
every chunk and merges them.

A process that waits (process i > 0 for the manifest, process 0 for the
chunks) never waits forever: each process rewrites a small heartbeat file
``work_dir/alive-<i>.json`` every few seconds while it runs, and a waiting
process fails with a `TimeoutError` naming the silent process as soon as the
heartbeat of a process it waits for has not changed for `timeout` seconds
(its own clock: the hosts' clocks need not agree). A process stops beating
only when it returns, fails or is killed; it returns only once its chunks are
written, so a silent process that still owes chunks has died.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Callable

from sigcnn._io import atomic_write_json

__all__ = ["Heartbeat", "owner", "wait_until"]


def owner(k: int, count: int) -> int:
    """The process that computes chunk `k` of a run over `count` processes.

    Examples:
      >>> [owner(k, 3) for k in range(7)]
      [0, 1, 2, 0, 1, 2, 0]
    """
    return int(k) % int(count)


def _alive_path(work_dir: str, index: int) -> str:
    return os.path.join(work_dir, f"alive-{index}.json")


class Heartbeat:
    """Rewrites ``work_dir/alive-<index>.json`` every `period` seconds.

    A context manager: a daemon thread beats from ``__enter__`` to
    ``__exit__``. Each beat holds the process's index, the number of
    processes, a token that is new for every run and a counter, so a reader
    sees a change at every beat.

    Args:
      work_dir: the shared folder (it must exist).
      index: this process's index in [0, count).
      count: the number of processes.
      period: seconds between two beats.
    """

    def __init__(self, work_dir: str, index: int, count: int, *, period: float):
        self.path = _alive_path(work_dir, index)
        self.record = {"process": int(index), "processes": int(count),
                       "token": uuid.uuid4().hex, "beat": 0}
        self.period = float(period)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Writes one beat now."""
        self.record["beat"] += 1
        atomic_write_json(self.path, self.record)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.beat()
            except OSError:      # a full or lost disk: the waiting side reports it
                pass

    def __enter__(self) -> "Heartbeat":
        self.beat()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="sigcnn-heartbeat")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _read_beat(work_dir: str, index: int):
    try:
        with open(_alive_path(work_dir, index), encoding="utf-8") as fh:
            text = fh.read()
        return text, json.loads(text)
    except (OSError, ValueError):
        return None, None


def wait_until(pending: Callable[[], set], *, work_dir: str, count: int,
               timeout: float, what: Callable[[int], str], poll: float = 0.5,
               on_poll: Callable[[], None] | None = None) -> None:
    """Waits until ``pending()`` is empty, failing when a process goes silent.

    Args:
      pending: returns the set of process indices still awaited (empty when
        the wait is over); called about every `poll` seconds.
      work_dir: the shared folder holding the heartbeat files.
      count: the number of processes.
      timeout: seconds without a new heartbeat after which an awaited
        process counts as dead.
      what: ``what(j)`` says what process j still owes, for the error
        message (e.g. "its chunks [3, 5] are missing").
      poll: seconds between two checks.
      on_poll: None or a callable run after each check (progress).

    Raises:
      TimeoutError: an awaited process sent no heartbeat for `timeout`
        seconds.
      ValueError: an awaited process runs with another number of processes.
    """
    start = time.monotonic()
    seen: dict[int, tuple] = {}
    while True:
        waiting = pending()
        if on_poll is not None:
            on_poll()
        if not waiting:
            return
        now = time.monotonic()
        for j in sorted(waiting):
            text, record = _read_beat(work_dir, j)
            last = seen.get(j)
            if last is None or (text is not None and text != last[0]):
                if last is not None and record is not None and (
                        record.get("processes") != count):
                    raise ValueError(
                            f"`process_count`: process {j} runs with "
                            f"{record.get('processes')} processes, this one with "
                            f"{count}; start every process with the same number.")
                seen[j] = (text, now if last is not None else start)
            elif now - last[1] > timeout:
                raise TimeoutError(
                        f"process {j} of {count} sent no heartbeat for "
                        f"{timeout:g} s while {what(j)} in {work_dir!r}: it has "
                        f"stopped (killed, failed or lost; "
                        f"see its output), or it does not see this folder (all "
                        f"processes need one shared folder). Finished chunks are "
                        f"kept: run the same command again on every process to "
                        f"resume.")
        time.sleep(poll)
