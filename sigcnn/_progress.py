"""Progress of long jobs: rich progress bars on a terminal, plain lines otherwise.

Long jobs (the shift test over an image folder, the report) report progress
through one callable, ``progress(name, done, total)``: ``name`` is a stage (a
protocol, ``"all_shifts"``, ``"chunks"``...), ``done`` of ``total`` units are
finished. `Progress` draws one bar per stage with `rich` when its stream is a
terminal, and otherwise (a log file, CI) prints a plain line when a stage
finishes and at most every `every` seconds, so logs stay short and readable.

Special names: ``"chunks reused"`` (once, the number of chunks found finished
by an earlier run) and ``"chunks"`` (after each chunk computed now), for which
the plain lines give the elapsed time and an estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["Progress"]


class Progress:
    """``progress(name, done, total)`` as bars on a terminal, lines otherwise.

    Use it as a context manager so that the bars are closed when the job ends
    or is interrupted (finished bars stay on the screen).

    Args:
      prefix: text in front of every plain line.
      every: seconds between two plain lines of the same unfinished stage.
      stream: where to write (default: ``sys.stderr``).
      bars: True / False to force bars / lines; None: bars when `stream` is a
        terminal.

    Examples:
      >>> import io
      >>> out = io.StringIO()
      >>> with Progress(stream=out) as progress:
      ...     progress("circular", 4, 4)
      >>> out.getvalue()
      '  circular: 4/4 images\\n'
    """

    def __init__(self, prefix: str = "  ", every: float = 5.0, *,
                 stream: IO[str] | None = None, bars: bool | None = None):
        self.prefix, self.every = prefix, float(every)
        self.stream = sys.stderr if stream is None else stream
        if bars is None:
            isatty = getattr(self.stream, "isatty", None)
            bars = bool(isatty and isatty())
        self.bars = bars
        self.start = self.last = time.perf_counter()
        self.first_chunk: int | None = None
        self._rich = None
        self._tasks: dict[str, int] = {}

    # -- plain lines -------------------------------------------------------

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _chunk_line(self, done: int, total: int, now: float) -> str:
        if self.first_chunk is None:
            self.first_chunk = done - 1
        new = done - self.first_chunk
        elapsed = now - self.start
        left = elapsed / new * (total - done) if new > 0 else 0.0
        return (f"{self.prefix}chunk {done}/{total} done ({elapsed:.0f} s, about "
                f"{left:.0f} s left)")

    def _line(self, name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if name == "chunks reused":
            self.first_chunk = done
            self._say(f"{self.prefix}{done}/{total} chunks reused from an earlier "
                      f"run")
        elif name == "chunks":
            self._say(self._chunk_line(done, total, now))
        elif done == total or now - self.last >= self.every:
            self._say(f"{self.prefix}{name}: {done}/{total} images")
        else:
            return
        self.last = now

    # -- bars --------------------------------------------------------------

    def _bar(self, name: str, done: int, total: int) -> None:
        if self._rich is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                    TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(file=self.stream))
            self._rich.start()
        if name == "chunks reused":
            self.first_chunk = done
            self._rich.console.print(f"{self.prefix}{done}/{total} chunks reused "
                                     f"from an earlier run")
            return
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = self._rich.add_task(
                    f"{self.prefix}{name}", total=total)
        self._rich.update(task, completed=done, total=total)

    # -- the callable --------------------------------------------------------

    def __call__(self, name: str, done: int, total: int) -> None:
        if self.bars:
            self._bar(name, int(done), int(total))
        else:
            self._line(name, int(done), int(total))

    def close(self) -> None:
        """Stops the bars (they stay on the screen); lines need nothing."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
