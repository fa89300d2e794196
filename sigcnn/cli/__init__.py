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

Mistakes in the arguments end with one line ``sigcnn <command>: error: ...`` and
exit status 2, before any model is built.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sigcnn.cli import report, shift_test, spectra, train, verify
from sigcnn.cli._common import format_table

__all__ = ["build_parser", "format_table", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per subcommand.

    Returns:
      an :class:`argparse.ArgumentParser` whose parsed namespace has a
      ``handler(args, parser)`` returning the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="sigcnn",
        description="Shift invariance of CNNs through the sampling theorem.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (verify, spectra, train, shift_test, report):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sigcnn`` command.

    Args:
      argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
      the exit status: 0 on success, 1 if a check failed, 2 for bad arguments,
      130 when interrupted (finished work is kept).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args.handler(args, args.subparser))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                           else 2)
    except KeyboardInterrupt:
        command = getattr(locals().get("args"), "command", None) or ""
        print(f"\nsigcnn {command}: interrupted; finished work is kept, and the "
              f"same command resumes it.".replace("sigcnn :", "sigcnn:"),
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
