"""The ``sigcnn`` command line: parse, call the library, write results.

Subcommands:

* ``sigcnn verify [--json FILE] [--plots DIR] [--seed N]``: runs the
  sampling-theorem verification suite (:mod:`sigcnn.verify`), prints one row per
  check (name, what theory predicts, what was measured, PASS/FAIL) and exits
  with status 1 if any check fails.

The suite runs in float64 (``jax_enable_x64`` is switched on only while it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

__all__ = ["build_parser", "format_table", "main"]


def format_table(rows: Sequence[Sequence[str]],
                 header: Sequence[str] = ("check", "predicted", "measured",
                                          "result")) -> str:
    """Left-aligned plain-text table with a header rule.

    Args:
      rows: sequence of rows, each a sequence of strings (as many as
        ``header``).
      header: column titles.

    Returns:
      the table as one string, lines joined by newlines.
    """
    table = [list(header)] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule] + [line(r) for r in table[1:]])


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a non-negative integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a non-negative integer; got {text!r}")
    return value


def _check_verify_paths(parser: argparse.ArgumentParser, args) -> None:
    """Rejects unusable output paths before any computation."""
    if args.json is not None:
        if os.path.isdir(args.json):
            example = os.path.join(args.json, "verify.json")
            parser.error(f"argument --json: {args.json!r} is a directory; "
                         f"give a file name, e.g. {example!r}")
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            parser.error(f"argument --json: the folder {parent!r} of "
                         f"{args.json!r} does not exist")
    if args.plots is not None and os.path.exists(args.plots) \
            and not os.path.isdir(args.plots):
        parser.error(f"argument --plots: {args.plots!r} exists and is not a "
                     f"directory")


def _write_plots(checks, directory) -> list[str]:
    import numpy as np

    from sigcnn import plot, verify

    fine = np.linspace(0.0, 0.5, 201)
    response = {str(k): verify.binomial_response(fine, k) for k in range(1, 8)}
    return plot.verify_figures(checks, directory,
                               spectra_2d=verify.relu_tone_spectra_2d(),
                               fine_freqs=fine, fine_response=response)


def _cmd_verify(args, parser: argparse.ArgumentParser) -> int:
    _check_verify_paths(parser, args)
    import jax

    from sigcnn import verify

    start = time.perf_counter()
    with jax.enable_x64(True):
        checks = verify.run_all(key=jax.random.key(args.seed))
        seconds = time.perf_counter() - start
        plots = _write_plots(checks, args.plots) if args.plots else []
    rows = [(c.name, c.predicted, c.measured, "PASS" if c.passed else "FAIL")
            for c in checks]
    n_pass = sum(c.passed for c in checks)
    print(format_table(rows))
    print(f"\n{n_pass}/{len(checks)} checks passed in {seconds:.1f} s "
          f"(float64, seed {args.seed}).")
    if args.json:
        record = {"command": "verify", "passed": n_pass == len(checks),
                  "n_checks": len(checks), "n_passed": n_pass,
                  "seconds": round(seconds, 3), "seed": args.seed,
                  "dtype": "float64", "checks": verify.checks_to_json(checks)}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")
    for path in plots:
        print(f"wrote {path}")
    return 0 if n_pass == len(checks) else 1


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
    p = sub.add_parser(
        "verify",
        help="check the sampling-theorem argument on synthetic signals",
        description="Run the sampling-theorem verification suite: one row per "
                    "check with the predicted and the measured value; exit "
                    "status 1 if any check fails.")
    p.add_argument("--json", metavar="FILE",
                   help="write the rows (with raw numbers) to this JSON file")
    p.add_argument("--plots", metavar="DIR",
                   help="write PNG figures to this folder (created if missing)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, metavar="N",
                   help="seed of the random inputs (default 0)")
    p.set_defaults(handler=_cmd_verify, subparser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sigcnn`` command.

    Args:
      argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
      the exit status: 0 on success, 1 if a check failed, 2 for bad arguments.
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


if __name__ == "__main__":
    sys.exit(main())
