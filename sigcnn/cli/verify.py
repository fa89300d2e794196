"""``sigcnn verify``: the sampling-theorem checks on synthetic signals."""

from __future__ import annotations

import argparse
import os
import time

from sigcnn.cli._common import format_table, nonnegative_int, write_json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Registers ``verify``."""
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
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                   help="seed of the random inputs (default 0)")
    p.set_defaults(handler=run, subparser=p)


def _check_paths(parser: argparse.ArgumentParser, args) -> None:
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

    from sigcnn import figures as plot
    from sigcnn import verify

    fine = np.linspace(0.0, 0.5, 201)
    response = {str(k): verify.binomial_response(fine, k) for k in range(1, 8)}
    return plot.verify_figures(checks, directory,
                               spectra_2d=verify.relu_tone_spectra_2d(),
                               fine_freqs=fine, fine_response=response)


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``sigcnn verify``; exit status 1 if a check fails."""
    _check_paths(parser, args)
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
        write_json(args.json, record)
        print(f"wrote {args.json}")
    for path in plots:
        print(f"wrote {path}")
    return 0 if n_pass == len(checks) else 1
