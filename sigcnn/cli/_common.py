"""Helpers shared by the subcommands: argument types, output checks, the
external-network and image-folder flags, and progress lines."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from sigcnn._format import render_table
from sigcnn._io import atomic_write_json
from sigcnn._progress import Progress

__all__ = ["Progress", "error_message", "add_distributed_args", "add_external_args",
           "add_folder_args", "add_preprocessing_args", "check_distributed_flags",
           "check_external_flags", "check_out_dir", "external_given",
           "format_table", "interrupt_between_steps", "join_processes",
           "nonnegative_int", "open_external",
           "open_folder", "positive_float", "positive_int", "say", "write_json"]


@contextlib.contextmanager
def interrupt_between_steps() -> Iterator[Callable[[], None]]:
    """Ctrl-C that stops a long job at its next step, never lost on the way.

    Python raises KeyboardInterrupt wherever the main thread happens to be; when
    that is a garbage-collection callback (JAX registers one) or a C extension that
    clears pending errors, the exception is printed or dropped and the job runs
    on (jax-ml/jax#18246). Inside this block the first SIGINT only sets a flag, and
    the returned ``check()`` raises KeyboardInterrupt where the job calls it
    (between steps: the progress callback). A second SIGINT raises at once.
    Outside the main thread, or where SIGINT does not raise KeyboardInterrupt
    (ignored, as for a command started in the background by a script, or taken
    by an embedding program), the block changes nothing.

    Yields:
      check: a function of no arguments that raises KeyboardInterrupt once a
      SIGINT arrived.
    """
    pending = threading.Event()

    def check() -> None:
        if pending.is_set():
            raise KeyboardInterrupt

    def on_sigint(signum, frame):
        if pending.is_set():
            raise KeyboardInterrupt
        pending.set()
        print("\nstopping at the next step (Ctrl-C again stops at once)",
              file=sys.stderr, flush=True)

    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield check
        return
    before = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, before)


def format_table(rows: Sequence[Sequence[str]],
                 header: Sequence[str] = ("check", "predicted", "measured",
                                          "result")) -> str:
    """The plain-text table of a subcommand (`sigcnn._format.render_table`).

    Args:
      rows: sequence of rows, each a sequence of strings (as many as
        ``header``).
      header: column titles.

    Returns:
      the table as one string, lines joined by newlines.
    """
    return render_table(header, rows)


def error_message(exc: BaseException, flags: dict[str, str]) -> str:
    """The one-line message of `exc`, with library argument names as flags.

    Args:
      exc: the exception a subcommand raised.
      flags: library argument name -> flag (see `_flags`).

    Returns:
      the first line of the message, each `` `name` `` that a flag sets
      replaced by the flag.

    Examples:
      >>> error_message(ValueError("`out_dir` is a file; got 'a.txt'."),
      ...               {"out_dir": "--out"})
      "argument --out: is a file; got 'a.txt'."
    """
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename!r}"
    text = text.splitlines()[0]
    lead = re.match(r"`(\w+)`\s*(.*)", text)
    if lead and lead.group(1) in flags:
        return f"argument {flags[lead.group(1)]}: {lead.group(2).lstrip(': ')}"
    return re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), text)


def say(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)




def _int(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a {what} integer; got "
                                         f"{text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be a {what} integer; got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    return _int(text, 0, "non-negative")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    return _int(text, 1, "positive")


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number; got {text!r}")
    return value


def check_out_dir(parser: argparse.ArgumentParser, option: str, path) -> None:
    """Refuses an output folder that is a file or cannot be written."""
    if path is None:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        parser.error(f"argument {option}: {path!r} exists and is not a directory")
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(os.path.abspath(probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        parser.error(f"argument {option}: {path!r} is not writable")


def write_json(path: str, record) -> None:
    """Writes a JSON record atomically."""
    atomic_write_json(path, record)


# -- external networks -------------------------------------------------------


def add_external_args(p: argparse.ArgumentParser) -> None:
    """--torch / --timm / --keras, --weights, --taps."""
    ext = p.add_mutually_exclusive_group()
    ext.add_argument("--torch", metavar="MODULE:CALLABLE",
                     help="a PyTorch network built by an importable callable, "
                          "e.g. torchvision.models:resnet50 (extra sigcnn[torch])")
    ext.add_argument("--timm", metavar="NAME", help="a timm architecture")
    ext.add_argument("--keras", metavar="FILE",
                     help="a Keras 3 model file (.keras; extra sigcnn[keras])")
    p.add_argument("--weights", metavar="FILE",
                   help="state-dict file for --torch / --timm (nothing is "
                        "downloaded; without it: random weights)")
    p.add_argument("--taps", metavar="NAMES",
                   help="comma-separated submodule (torch) or layer (keras) names "
                        "to analyse (torch default: the top-level submodules)")


def external_given(args) -> bool:
    """Whether --torch, --timm or --keras was given."""
    return bool(args.torch or args.timm or args.keras)


def check_external_flags(args, parser) -> None:
    """--weights / --taps only with an external network."""
    for flag, value in (("--weights", args.weights), ("--taps", args.taps)):
        if value is not None and not external_given(args):
            parser.error(f"argument {flag}: only with --torch, --timm or --keras; "
                         f"got {flag} {value}")
    if args.weights is not None and not os.path.isfile(args.weights):
        parser.error(f"argument --weights: no such file {args.weights!r}")
    if args.keras is not None and not os.path.isfile(args.keras):
        parser.error(f"argument --keras: no such file {args.keras!r}")


def open_external(args, parser: argparse.ArgumentParser, *, step: str = "[1/4]"):
    """The --torch / --timm / --keras network; mistakes end in parser.error."""
    from sigcnn import interop
    from sigcnn.interop import networks

    taps = None
    if args.taps is not None:
        taps = [t.strip() for t in args.taps.split(",") if t.strip()]
        if not taps:
            parser.error(f"argument --taps: no names in {args.taps!r}")
    say(f"{step} loading {args.torch or args.timm or args.keras}"
        + (f" with weights {args.weights}" if args.weights else
           " (random weights)" if not args.keras else ""))
    try:
        return networks.open_network(torch=args.torch, timm=args.timm,
                                     keras=args.keras, weights=args.weights,
                                     taps=taps, size=args.size)
    except interop.MissingExtraError as e:
        parser.error(str(e))
    except (OSError, ValueError, TypeError) as e:
        msg = error_message(e, {"taps": "--taps", "weights": "--weights"})
        parser.error(msg if msg.startswith(("argument ", "--")) else
                     f"argument --torch/--timm/--keras: {msg}")


# -- image folders -----------------------------------------------------------


def add_folder_args(p: argparse.ArgumentParser, *, images: bool = True) -> None:
    """--images, --labels, --classes, --size, --normalize."""
    if images:
        p.add_argument("--images", metavar="DIR",
                       help="a folder of PNG/JPEG images: one subfolder per class "
                            "(the labels), or flat (labels from --labels, or none)")
    p.add_argument("--labels", metavar="CSV",
                   help="labels of a flat --images folder: a CSV of file,label")
    p.add_argument("--classes", metavar="FILE",
                   help="the model's class names, one per line in output order; "
                        "maps class folders (or CSV class names) to outputs")
    add_preprocessing_args(p)


def add_preprocessing_args(p: argparse.ArgumentParser, *,
                           size_help: str | None = None) -> None:
    """--size, --normalize."""
    p.add_argument("--size", type=int, default=224,
                   help=size_help or "images are resized (shorter side "
                        "SIZE*256/224) and centre-cropped to SIZE x SIZE "
                        "(default 224)")
    p.add_argument("--normalize", default="imagenet",
                   choices=("imagenet", "caffe", "tf", "none"),
                   help="input preprocessing (default: ImageNet mean/std; caffe "
                        "and tf as Keras applications expect)")


def open_folder(args, parser: argparse.ArgumentParser):
    """The `sigcnn.data.ImageFolder` of --images; mistakes end in parser.error."""
    from sigcnn import data

    if args.size < 8:
        parser.error(f"argument --size: must be at least 8; got {args.size}")
    for flag, path in (("--images", args.images), ("--labels", args.labels),
                       ("--classes", args.classes)):
        if path is None:
            continue
        ok = os.path.isdir(path) if flag == "--images" else os.path.isfile(path)
        if not ok:
            parser.error(f"argument {flag}: no such "
                         f"{'folder' if flag == '--images' else 'file'} {path!r}")
    try:
        return data.image_folder(args.images, size=args.size,
                                 preprocess=args.normalize, labels=args.labels,
                                 classes=args.classes)
    except (OSError, ValueError) as e:
        msg = error_message(e, {"labels": "--labels", "classes": "--classes"})
        parser.error(msg if msg.startswith("argument ") else
                     f"argument --images: {msg}")


# -- several processes -------------------------------------------------------


def add_distributed_args(p: argparse.ArgumentParser) -> None:
    """--distributed, --coordinator, --num-processes, --process-id,
    --wait-timeout."""
    g = p.add_argument_group(
        "several processes (hosts)",
        "With --distributed, every process runs the same command with the same "
        "--out, a folder on a filesystem that all of them see: they meet "
        "through jax.distributed.initialize (the flags below, or what JAX "
        "detects on a Slurm, Open MPI or TPU cluster), process I computes the "
        "chunks k with k mod N = I and writes them to OUT/chunks, and process 0 "
        "waits for every chunk, merges them and writes the outputs, equal to "
        "those of one process. The same command resumes, with any number of "
        "processes.")
    g.add_argument("--distributed", action="store_true",
                   help="share the run among the processes of jax.distributed")
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0 and a free port on it")
    g.add_argument("--num-processes", type=positive_int, metavar="N",
                   help="the number of processes")
    g.add_argument("--process-id", type=nonnegative_int, metavar="I",
                   help="this process's index, 0 .. N-1")
    g.add_argument("--wait-timeout", type=positive_float, default=120.0,
                   metavar="SECONDS",
                   help="a process waiting for another (at the start, or "
                        "process 0 for the chunks) fails after SECONDS without "
                        "a heartbeat from it; also the time all processes have "
                        "to join (default 120)")


def check_distributed_flags(args, parser: argparse.ArgumentParser) -> None:
    """The process flags only with --distributed; HOST:PORT; I < N."""
    if not args.distributed:
        for flag in ("coordinator", "num_processes", "process_id"):
            value = getattr(args, flag)
            if value is not None:
                name = "--" + flag.replace("_", "-")
                parser.error(f"argument {name}: only with --distributed; got "
                             f"{name} {value}")
        return
    if args.coordinator is not None:
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"argument --coordinator: expected HOST:PORT with a port "
                         f"in 1..65535; got {args.coordinator!r}")
    if (args.process_id is not None and args.num_processes is not None
            and args.process_id >= args.num_processes):
        parser.error(f"argument --process-id: must be below --num-processes "
                     f"{args.num_processes}; got {args.process_id}")


def join_processes(args, parser: argparse.ArgumentParser) -> tuple[int, int]:
    """(index, count) of this process: jax.distributed with --distributed.

    The processes meet through ``jax.distributed.initialize`` (which must come
    before any JAX computation), learn their index and number, and leave its
    service again: the run's data go through the shared output folder, and a
    process that dies later is reported by the others' own timeout (sigcnn's
    heartbeat files), instead of ending them all.
    """
    if not args.distributed:
        return 0, 1
    import jax

    timeout = max(1, int(round(args.wait_timeout)))
    say("joining the processes through jax.distributed"
        + (f" at {args.coordinator}" if args.coordinator else "")
        + f" (waiting at most {timeout} s for all of them)")
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator, num_processes=args.num_processes,
            process_id=args.process_id, initialization_timeout=timeout,
            shutdown_timeout_seconds=timeout)
        index, count = int(jax.process_index()), int(jax.process_count())
        jax.distributed.shutdown()
    except (RuntimeError, ValueError) as e:
        text = (str(e).strip() or type(e).__name__).splitlines()[0]
        parser.error(f"argument --distributed: could not join the other "
                     f"processes ({text}); give --coordinator HOST:PORT "
                     f"--num-processes N --process-id I, or run under a cluster "
                     f"manager that JAX detects")
    say(f"process {index} of {count}")
    return index, count
