"""``sigcnn report``: the whole story as one HTML page.

On built-in defaults it trains (or reuses) a baseline and an anti-aliased small
CNN on offline MNIST canvases; with ``--torch`` / ``--timm`` / ``--keras`` and
``--images`` it reports on your own network and images instead (spectra, shift
test, all shifts; resumable).
"""

from __future__ import annotations

import argparse
import os
import sys

from sigcnn.cli._common import (
    Progress,
    add_external_args,
    add_folder_args,
    check_external_flags,
    check_out_dir,
    external_given,
    nonnegative_int,
    open_external,
    open_folder,
    positive_int,
    say,
)

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Registers ``report``."""
    p = sub.add_parser(
        "report",
        help="the whole story on built-in defaults, as one HTML page",
        description="Train (or reuse from the cache) a baseline and an "
                    "anti-aliased small CNN on offline MNIST canvases, run the "
                    "sampling-theorem checks, per-layer spectra and the shift "
                    "test, and write one self-contained report.html plus "
                    "report.json. With --torch / --timm / --keras and --images: "
                    "the same for your own network on your own images.")
    p.add_argument("--out", default="sigcnn-report", metavar="DIR",
                   help="output folder (default ./sigcnn-report)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder of the trained models (default OUT/cache)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny configuration for smoke tests (about a minute; "
                        "the page is marked as such and its numbers mean "
                        "nothing)")
    p.add_argument("--retrain", action="store_true",
                   help="train both models anew instead of reusing them from "
                        "the cache (e.g. after a corrupt cache entry)")
    add_external_args(p)
    add_folder_args(p)
    p.add_argument("--n-images", type=positive_int, default=None, metavar="N",
                   help="with --images: images of the shift test (default all)")
    p.add_argument("--n-spectra-images", type=positive_int, default=8,
                   metavar="N", help="with --images: images of the spectra "
                                     "(default 8)")
    p.add_argument("--n-pairs", type=positive_int, default=8, metavar="N",
                   help="with --images: consecutive one-pixel pairs per image "
                        "(default 8)")
    p.add_argument("--sweep-images", type=nonnegative_int, default=4,
                   metavar="K", help="with --images: images of the jaggedness "
                                     "sweep (default 4; 0 skips it)")
    p.add_argument("--chunk-images", type=positive_int, default=16, metavar="N",
                   help="with --images: images per resumable chunk (default 16)")
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                   help="with --images: seed of the random pairs and intervals")
    p.set_defaults(handler=run, subparser=p)
    p.flag_names = {"work_dir": "--out", "out_dir": "--out", "cache_dir": "--cache"}


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``sigcnn report``."""
    check_out_dir(parser, "--out", args.out)
    check_out_dir(parser, "--cache", args.cache)
    check_external_flags(args, parser)
    if external_given(args) or args.images:
        return _run_external(args, parser)
    for flag in ("labels", "classes"):
        if getattr(args, flag) is not None:
            parser.error(f"argument --{flag}: only with --images")
    from sigcnn import report

    config = report.QUICK_REPORT if args.quick else report.DEFAULT_REPORT
    try:
        record = report.make_report(args.out, cache_dir=args.cache,
                                    config=config, retrain=args.retrain,
                                    progress=say)
    except report.CachedModelError as e:
        print(f"sigcnn report: error: the cached {e.label} model in {e.path!r} "
              f"cannot be reused ({e.reason}); run the same command with "
              f"--retrain to train it anew", file=sys.stderr)
        return 2
    print(record["shift_table"])
    print()
    print(record["summary"]["verdict"])
    print(f"\nreport written in {record['total_seconds']:.1f} s (CPU "
          f"{record['total_cpu_seconds']:.1f} s)")
    print(f"wrote {record['paths']['html']}")
    print(f"wrote {record['paths']['json']}")
    return 0


def _run_external(args, parser) -> int:
    if not external_given(args):
        parser.error("argument --images: with --torch, --timm or --keras (the "
                     "network to report on)")
    if not args.images:
        parser.error("argument --images: required with --torch / --timm / --keras "
                     "(a folder of PNG/JPEG images)")
    if args.cache is not None or args.quick or args.retrain:
        flag = ("--cache" if args.cache else "--quick" if args.quick
                else "--retrain")
        parser.error(f"argument {flag}: only for the built-in report (nothing "
                     f"is trained for your network)")
    folder = open_folder(args, parser)
    net = open_external(args, parser, step="[0/4]")
    from sigcnn.report import network as network_report

    with Progress() as shift_progress:   # errors: sigcnn.cli.main's boundary
        record = network_report.make_network_report(
            args.out, f=net.f, taps=net.taps, folder=folder, label=net.label,
            source=net.source, tap_names=net.tap_names,
            n_spectra_images=args.n_spectra_images, n_images=args.n_images,
            chunk_images=args.chunk_images, seed=args.seed, progress=say,
            shift_options=dict(n_pairs=args.n_pairs,
                               sweep_images=args.sweep_images or None),
            shift_progress=shift_progress)
    print(record["shift_table"])
    print()
    print(record["summary"]["verdict"])
    print(f"\nreport written in {record['total_seconds']:.1f} s")
    print(f"wrote {os.path.join(args.out, 'report.html')}")
    print(f"wrote {os.path.join(args.out, 'report.json')}")
    return 0
