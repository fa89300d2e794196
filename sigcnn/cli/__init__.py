"""The ``sigcnn`` command line: parse, call the library, write results.

One module per subcommand, each with ``add_parser(sub)`` and
``run(args, parser)``:

* ``sigcnn verify [--json FILE] [--plots DIR] [--seed N]``: the sampling-theorem
  verification suite (:mod:`sigcnn.verify`); exit status 1 if a check fails.
* ``sigcnn spectra [--model vgg16 | --checkpoint DIR | --torch M:F --weights FILE |
  --timm NAME | --keras FILE] [--image NAME | --images DIR] --out DIR``: per-layer
  aliasing spectra; a table, figures and JSON.
* ``sigcnn train [--model vgg_small] [--dataset mnist-canvas] --out DIR``: trains a
  zoo model on offline digits, checkpointed after every epoch (resumable).
* ``sigcnn shift-test (--checkpoint DIR | --torch ... --images DIR) --out DIR``:
  the paper's shift protocols; a Table-1-style table, JSON and figures;
  resumable by chunks with ``--images``.
* ``sigcnn report [--out DIR] [--quick] [--torch ... --images DIR]``: one
  self-contained HTML page plus JSON (built-in models, or your own network).

`main` is the one error boundary: a mistake in the arguments, a path, an image
or a file ends with one line ``sigcnn <command>: error: ...`` naming the flag
(``--out``, never the library's ``out_dir``), exit status 2, and no traceback
(``--debug`` shows it); paths, folders and numbers are checked before any model
is built. Ctrl-C ends with one line saying that finished work is kept and that
the same command resumes it (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

from sigcnn.cli import report, shift_test, spectra, train, verify
from sigcnn.cli._common import error_message, format_table

__all__ = ["build_parser", "error_message", "format_table", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``sigcnn <command>: error:
    ...`` (the usage is one ``--help`` away, not repeated above every error)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per subcommand.

    Returns:
      an :class:`argparse.ArgumentParser` whose parsed namespace has a
      ``handler(args, parser)`` returning the exit status.
    """
    parser = _Parser(
        prog="sigcnn",
        description="Shift invariance of CNNs through the sampling theorem.")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (verify, spectra, train, shift_test, report):
        module.add_parser(sub)
    for p in sub.choices.values():   # either place: sigcnn --debug CMD, CMD --debug
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
    return parser


def _flags(subparser: argparse.ArgumentParser | None) -> dict[str, str]:
    """Library argument name -> the flag that sets it (``out_dir`` -> ``--out``)."""
    names: dict[str, str] = {}
    if subparser is None:
        return names
    for action in subparser._actions:  # noqa: SLF001 (argparse has no public API)
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs:
            names[action.dest] = longs[0]
            names[longs[0][2:].replace("-", "_")] = longs[0]
    names.update(getattr(subparser, "flag_names", {}))
    return names




def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sigcnn`` command.

    Args:
      argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
      the exit status: 0 on success, 1 if a check failed, 2 for bad arguments,
      130 when interrupted (finished work is kept).
    """
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args.handler(args, args.subparser))
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        if args is None or args.debug:
            raise
        prefix = f"sigcnn {args.command}"
        print(f"{prefix}: error: {error_message(exc, _flags(args.subparser))}",
              file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                           else 2)
    except KeyboardInterrupt:
        if args is not None and args.debug:
            traceback.print_exc()
        command = getattr(args, "command", None) or ""
        print(f"\nsigcnn {command}: interrupted; finished work is kept, and the "
              f"same command resumes it.".replace("sigcnn :", "sigcnn:"),
              file=sys.stderr)
        return 130
    except Exception as exc:  # a defect in sigcnn or in the user's network code
        if args is None or args.debug:
            raise
        print(f"sigcnn {args.command}: internal error: {type(exc).__name__}: "
              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
              file=sys.stderr)
        print(f"sigcnn {args.command}: run again with --debug for the traceback",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
