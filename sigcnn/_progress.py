"""Progress of long jobs: rich progress bars on a terminal, plain lines otherwise.

Long jobs (the shift test over an image folder, the report) report progress
through one callable, ``progress(name, done, total)``: ``name`` is a stage (a
protocol, ``"all_shifts"``, ``"chunks"``...), ``done`` of ``total`` units are
finished. `Progress` draws one bar per stage with `rich` when its stream is a
terminal, and otherwise (a log file, CI) prints a plain line when a stage
finishes and at most every `every` seconds, so logs stay short and readable.

Special names: ``"chunks reused"`` (once, the number of chunks found finished
by an earlier run), ``"chunks"`` (after each chunk computed now), for which
the plain lines give the elapsed time and an estimate of the time left,
``"shifts per image"`` (once, the frames evaluated per image) and
``"images"`` (the images finished, reused ones included): on a terminal the
``images`` bar shows images/s, images·shifts/s (images per second times the
shifts per image) and the time left, measured on the images computed now;
off a terminal the chunk lines give the same rates. ``"waiting"`` counts the
chunks of other processes found on disk.
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
        self.shifts_per_image: int | None = None
        self._marks: list[tuple[float, int]] = []  # (time, done): start, chunk 1
        self._images_done = self._images_total = 0
        self._rich = None
        self._tasks: dict[str, int] = {}

    # -- plain lines -------------------------------------------------------

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def rates(self, now: float | None = None) -> tuple[float, float | None] | None:
        """(images/s, images·shifts/s or None) of the images computed now, or
        None before the first chunk is done.

        Measured from the end of the first chunk computed (which also
        compiles the network), or over that chunk until a second one is done.
        """
        if len(self._marks) < 2:
            return None
        (t0, d0), (t1, d1) = self._marks[0], self._marks[1]
        now = time.perf_counter() if now is None else now
        done = self._images_done
        if done > d1 and now > t1:
            per_s = (done - d1) / (now - t1)
        elif d1 > d0 and t1 > t0:
            per_s = (d1 - d0) / (t1 - t0)
        else:
            return None
        spi = self.shifts_per_image
        return per_s, None if spi is None else per_s * spi

    def _images_report(self, done: int, total: int) -> None:
        if len(self._marks) < 2 and (not self._marks or done > self._marks[0][1]):
            self._marks.append((time.perf_counter(), done))
        self._images_done, self._images_total = done, total

    def _chunk_line(self, done: int, total: int, now: float) -> str:
        if self.first_chunk is None:
            self.first_chunk = done - 1
        new = done - self.first_chunk
        elapsed = now - self.start
        left = elapsed / new * (total - done) if new > 0 else 0.0
        rates = self.rates(now)
        speed = ""
        if rates is not None:       # the time left from the images' rate
            left = (self._images_total - self._images_done) / rates[0]
            speed = f", {rates[0]:.1f} images/s"
            if rates[1] is not None:
                speed += f", {rates[1]:,.0f} images·shifts/s"
        return (f"{self.prefix}chunk {done}/{total} done{speed} ({elapsed:.0f} s, "
                f"about {left:.0f} s left)")

    def _line(self, name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if name == "chunks reused":
            self.first_chunk = done
            self._say(f"{self.prefix}{done}/{total} chunks reused from an earlier "
                      f"run")
        elif name == "chunks":
            self._say(self._chunk_line(done, total, now))
        elif name in ("images", "shifts per image"):
            return                      # in the chunk lines
        elif name == "waiting":
            if done < total and now - self.last < self.every:
                return
            self._say(f"{self.prefix}waiting for the other processes: {done}/"
                      f"{total} of their chunks written")
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
                    TextColumn("{task.description}"), BarColumn(bar_width=14),
                    MofNCompleteColumn(), _rate_column(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(file=self.stream))
            self._rich.start()
        if name == "chunks reused":
            self.first_chunk = done
            self._rich.console.print(f"{self.prefix}{done}/{total} chunks reused "
                                     f"from an earlier run")
            return
        if name == "shifts per image":
            if "images" in self._tasks:
                self._rich.update(self._tasks["images"], shifts=done)
            return
        task = self._tasks.get(name)
        if task is None:        # a first count (reused chunks) is no speed sample
            task = self._tasks[name] = self._rich.add_task(
                    f"{self.prefix}{name}", total=total, completed=done,
                    rate=name == "images", shifts=self.shifts_per_image)
        self._rich.update(task, completed=done, total=total)

    # -- the callable --------------------------------------------------------

    def __call__(self, name: str, done: int, total: int) -> None:
        if name == "shifts per image":
            self.shifts_per_image = int(done)
        elif name == "images":
            self._images_report(int(done), int(total))
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


def _rate_column():
    """A rich column: images/s and images·shifts/s of the ``images`` bar."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.speed
            if not task.fields.get("rate") or not speed:
                return Text("")
            text = f"{speed:.1f} images/s"
            if task.fields.get("shifts"):
                text += f"\n{speed * task.fields['shifts']:,.0f} images·shifts/s"
            return Text(text, style="progress.data.speed", no_wrap=True)

    return RateColumn()
