"""The ``sigcnn`` command line: parse, call the library, write results.

Subcommands:

* ``sigcnn verify [--json FILE] [--plots DIR] [--seed N]``: runs the
  sampling-theorem verification suite (:mod:`sigcnn.verify`), prints one row per
  check (name, what theory predicts, what was measured, PASS/FAIL) and exits
  with status 1 if any check fails.

* ``sigcnn spectra [--model vgg16] [--width 0.25] [--image astronaut | --images DIR]
  --out DIR``: per-layer aliasing spectra of a zoo model (random weights, or trained
  weights from ``--checkpoint``) on natural images; writes a table, figures and JSON.

* ``sigcnn train [--model vgg_small] [--dataset mnist-canvas] [--epochs 3] --out DIR``:
  trains a zoo model on offline digits with a checkpoint after every epoch (running
  it again resumes or reuses the run); progress on stderr.

* ``sigcnn shift-test --checkpoint DIR [--protocols LIST] [--n-images N] --out DIR2``:
  the paper's shift protocols on held-out images of the model's own dataset; prints
  a Table-1-style table, writes JSON and figures.

* ``sigcnn report [--out DIR] [--cache DIR] [--quick]``: trains (or reuses) a
  baseline and an anti-aliased model and writes one self-contained HTML page with
  the checks, per-layer spectra, shift test and jaggedness figure, plus JSON.

The verify suite runs in float64 (``jax_enable_x64`` is switched on only while it
runs).
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


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _square_resize(img, size: int, channels: int):
    """Centre-crops an [H, W, C] image to a square and resizes it to `size`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    img = img[top:top + m, left:left + m]
    if img.shape[2] != channels:
        img = (np.repeat(img[..., :1], channels, axis=2) if img.shape[2] == 1
               else np.repeat(img.mean(axis=2, keepdims=True), channels, axis=2))
    out = jax.image.resize(jnp.asarray(img), (size, size, channels), "linear",
                           antialias=True)
    return np.asarray(out)


def _load_spectra_images(args, channels: int):
    import numpy as np

    from sigcnn import data

    if args.images:
        imgs = data.load_image_folder(args.images)
        names = list(imgs)
        arrays = [imgs[n] for n in names]
    else:
        names = list(args.image or ["astronaut"])
        arrays = [data.load_natural_image(n) for n in names]
    batch = np.stack([_square_resize(a, args.size, channels) for a in arrays])
    if channels == 3:
        from sigcnn.data.folder import normalize

        batch = normalize(batch, args.normalize)
    return names, batch


def _open_external(args, parser: argparse.ArgumentParser):
    """The --torch / --timm / --keras network; mistakes end in parser.error."""
    from sigcnn import interop
    from sigcnn.interop import networks

    taps = None
    if args.taps is not None:
        taps = [t.strip() for t in args.taps.split(",") if t.strip()]
        if not taps:
            parser.error(f"argument --taps: no names in {args.taps!r}")
    _progress(f"[1/4] loading {args.torch or args.timm or args.keras}"
              + (f" with weights {args.weights}" if args.weights else
                 " (random weights)" if not args.keras else ""))
    try:
        return networks.open_network(torch=args.torch, timm=args.timm,
                                     keras=args.keras, weights=args.weights,
                                     taps=taps, size=args.size)
    except interop.MissingExtraError as e:
        parser.error(str(e))
    except (OSError, ValueError, TypeError) as e:
        msg = str(e).replace("`taps`", "--taps")
        parser.error(msg if msg.startswith("--") else f"argument --torch/--timm/"
                     f"--keras: {msg}")


def _cmd_spectra(args, parser: argparse.ArgumentParser) -> int:
    if args.width <= 0:
        parser.error(f"argument --width: must be positive; got {args.width}")
    if args.size < 8:
        parser.error(f"argument --size: must be at least 8; got {args.size}")
    os.makedirs(args.out, exist_ok=True)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sigcnn import layerwise as ls
    from sigcnn import models, plot

    start = time.perf_counter()
    external = None
    for flag, value in (("--weights", args.weights), ("--taps", args.taps)):
        if value is not None and not (args.torch or args.timm or args.keras):
            parser.error(f"argument {flag}: only with --torch, --timm or --keras; "
                         f"got {flag} {value}")
    if args.torch or args.timm or args.keras:
        if args.checkpoint:
            parser.error("argument --checkpoint: not with --torch / --timm / --keras")
        external = _open_external(args, parser)
    if external is not None:
        model, label, channels = None, external.label, 3
    elif args.checkpoint:
        from sigcnn import train

        _progress(f"[1/4] loading the trained model from {args.checkpoint}")
        model, config = train.load_model(args.checkpoint)
        label = config.get("model", "model")
        channels = int(config.get("model_options", {}).get("in_channels", 3))
    else:
        _progress(f"[1/4] building {args.model} (width {args.width}, padding "
                  f"{args.padding}, downsample {args.downsample}, seed "
                  f"{args.seed}, random weights)")
        model = models.create(args.model, key=args.seed, width=args.width,
                              padding=args.padding, downsample=args.downsample)
        model.eval()
        label = args.model
        channels = 3
    _progress("[2/4] loading images")
    if external is not None and args.images:
        from sigcnn import data

        try:
            folder = data.image_folder(args.images, size=args.size,
                                       preprocess=args.normalize)
        except (OSError, ValueError) as e:
            parser.error(f"argument --images: {e}")
        names = list(folder.files)
        batch = np.stack([folder.image(i) for i in range(len(folder))])
    else:
        names, batch = _load_spectra_images(args, channels)
    x = jnp.asarray(batch)
    _progress(f"[3/4] undecimating {label} on {len(names)} image(s) of "
              f"{args.size}x{args.size} and measuring spectra")
    taps_fn = external.taps if external is not None else model.taps
    try:
        result = ls.layer_spectra(taps_fn, x)
    except (NotImplementedError, ValueError) as e:
        print(f"sigcnn spectra: {label}: {e}", file=sys.stderr)
        return 1
    jax.block_until_ready(result.layers[-1].spectrum)
    _progress("[4/4] writing table, figures and JSON")
    rows = []
    for layer in result.layers:
        local = ", ".join(f"{p.aliasing_ratio:.3f}" for p in layer.local
                          if p.output_stride == layer.stride) or "-"
        err = ("-" if layer.shiftability_error is None
               else f"{layer.shiftability_error:.3f}")
        rows.append((layer.name, f"{layer.stride[0]}x{layer.stride[1]}",
                     f"{layer.aliasing_ratio:.3f}", err, local))
    table = format_table(rows, header=("layer", "stride", "aliasing ratio",
                                       "shiftability error",
                                       "local ratio (last decimation)"))
    print(table)
    seconds = time.perf_counter() - start
    record = {"command": "spectra", "model": label,
              "source": external.source if external is not None else None,
              "width": args.width,
              "padding": args.padding, "downsample": args.downsample,
              "seed": args.seed, "checkpoint": args.checkpoint,
              "images": names, "size": args.size,
              "normalize": args.normalize, "seconds": round(seconds, 3),
              **result.to_dict()}
    paths = [os.path.join(args.out, n) for n in
             ("spectra.json", "spectra.txt", "layer_spectra.png",
              "aliasing_vs_depth.png")]
    with open(paths[0], "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    with open(paths[1], "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    plot.layer_spectra_figure(result.layers, title=f"{label}: undecimated "
                              "responses, Nyquist box of each stride",
                              path=paths[2])
    plot.aliasing_depth_figure({label: result.layers}, path=paths[3])
    print(f"\n{len(result.layers)} layers in {seconds:.1f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer; got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number; got {text!r}")
    return value


def _check_out_dir(parser: argparse.ArgumentParser, option: str, path) -> None:
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        parser.error(f"argument {option}: {path!r} exists and is not a directory")


def _dataset_from_args(args, parser: argparse.ArgumentParser):
    from sigcnn import report

    if args.sigma is not None and args.positions != "gaussian":
        parser.error(f"argument --sigma: only used with --positions gaussian; got "
                     f"--positions {args.positions}")
    if args.sigma is not None and args.sigma < 0:
        parser.error(f"argument --sigma: must be non-negative; got {args.sigma}")
    try:
        return report.DatasetSpec(
            name=args.dataset, canvas_size=args.canvas_size,
            positions=args.positions, sigma=args.sigma, crop=args.crop,
            n_train=args.n_train, seed=args.data_seed)
    except (TypeError, ValueError) as e:
        parser.error(str(e))


def _write_json(path: str, record) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")


def _cmd_train(args, parser: argparse.ArgumentParser) -> int:
    _check_out_dir(parser, "--out", args.out)
    spec = _dataset_from_args(args, parser)
    from sigcnn import report, train

    _progress(f"training {args.model} (width {args.width}, downsample "
              f"{args.downsample}, padding {args.padding}, seed {args.seed}) on "
              f"{spec.describe()}")
    progress = report.TrainProgress(_progress, label=args.model,
                                    batch_size=args.batch_size)
    try:
        res = report.train_model(
            spec, out_dir=args.out, model=args.model, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
            width=args.width, padding=args.padding, downsample=args.downsample,
            blur_size=args.blur_size, augment_shift=args.augment_shift,
            augment_padding=args.augment_padding, progress=progress,
            resume=not args.restart)
    except ValueError as e:   # bad settings, or a checkpoint of another run
        print(f"sigcnn train: error: {e}", file=sys.stderr)
        return 2
    rows = [(str(h["epoch"]), f"{h['train_loss']:.4f}",
             f"{h['train_accuracy']:.4f}", f"{h['test_loss']:.4f}",
             f"{h['test_accuracy']:.4f}", f"{h['seconds']:.1f}")
            for h in res.history]
    print(format_table(rows, header=("epoch", "train loss", "train accuracy",
                                     "test loss", "test accuracy", "seconds")))
    note = (f"{res.epochs_run} epoch(s) trained now, {res.start_epoch} restored"
            if res.start_epoch else f"{res.epochs_run} epoch(s) trained now")
    print(f"\nheld-out accuracy {res.test_accuracy:.4f} on {res.config['n_test']} "
          f"images ({note}; {res.wall_time:.1f} s)")
    for name in (train.MODEL_FILE, train.CONFIG_FILE, train.CHECKPOINT_FILE):
        print(f"wrote {os.path.join(args.out, name)}")
    return 0


def _split_protocols(parser: argparse.ArgumentParser, text: str):
    from sigcnn.shift_test import PROTOCOLS

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in PROTOCOLS]
    if not names or bad:
        parser.error(f"argument --protocols: expected a comma-separated list of "
                     f"{', '.join(PROTOCOLS)}; got {text!r}")
    return names


def _cmd_shift_test(args, parser: argparse.ArgumentParser) -> int:
    from sigcnn import train

    if not os.path.isfile(os.path.join(args.checkpoint, train.MODEL_FILE)):
        parser.error(f"argument --checkpoint: {args.checkpoint!r} holds no "
                     f"{train.MODEL_FILE}; train one with `sigcnn train --out DIR`")
    protocols = _split_protocols(parser, args.protocols)
    _check_out_dir(parser, "--out", args.out)
    os.makedirs(args.out, exist_ok=True)
    import jax

    from sigcnn import plot_shifts, report, shift_test

    last = [time.perf_counter()]

    def progress(name, done, total):   # a line per protocol, or every 5 s
        if done == total or time.perf_counter() - last[0] >= 5.0:
            _progress(f"  {name}: {done}/{total} images")
            last[0] = time.perf_counter()

    _progress(f"shift test of {args.checkpoint} on {args.n_images} held-out "
              f"images ({', '.join(protocols)})")
    try:
        result, config, spec = report.shift_test_checkpoint(
            args.checkpoint, key=jax.random.key(args.seed),
            n_images=args.n_images, protocols=protocols, n_pairs=args.n_pairs,
            all_shifts=not args.no_all_shifts,
            sweep_images=args.sweep_images or None, progress=progress)
    except ValueError as e:
        print(f"sigcnn shift-test: error: {e}", file=sys.stderr)
        return 2
    table = shift_test.format_table(result)
    print(table)
    paths = [os.path.join(args.out, n) for n in
             ("shift_test.json", "shift_test.txt", "table1.png")]
    record = {"command": "shift-test", "checkpoint": os.path.abspath(args.checkpoint),
              "model": config.get("model"), "dataset": spec.to_dict(),
              "train_test_accuracy": config.get("test_accuracy"),
              "seed": args.seed, "table": table, **result.to_dict()}
    _write_json(paths[0], record)
    with open(paths[1], "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    plot_shifts.table1_figure(result, path=paths[2])
    if result.jaggedness is not None:
        paths.append(os.path.join(args.out, "jaggedness.png"))
        plot_shifts.jaggedness_figure(result, path=paths[-1])
    print(f"\n{result.n_images} images in {result.seconds:.1f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_report(args, parser: argparse.ArgumentParser) -> int:
    _check_out_dir(parser, "--out", args.out)
    _check_out_dir(parser, "--cache", args.cache)
    from sigcnn import report

    config = report.QUICK_REPORT if args.quick else report.DEFAULT_REPORT
    record = report.make_report(args.out, cache_dir=args.cache, config=config,
                                progress=_progress)
    print(record["shift_table"])
    print()
    print(record["summary"]["verdict"])
    print(f"\nreport written in {record['total_seconds']:.1f} s (CPU "
          f"{record['total_cpu_seconds']:.1f} s)")
    print(f"wrote {record['paths']['html']}")
    print(f"wrote {record['paths']['json']}")
    return 0


def _add_train_parser(sub) -> None:
    from sigcnn.models import DOWNSAMPLE_MODES, MODEL_NAMES, MODEL_PADDINGS
    from sigcnn.report import DATASETS

    p = sub.add_parser(
        "train",
        help="train a zoo model on offline digits (resumable)",
        description="Train a zoo model with Adam on an offline dataset, with a "
                    "checkpoint after every epoch: run it again with the same "
                    "--out to resume an interrupted run (or reuse a finished "
                    "one). Progress goes to stderr.")
    p.add_argument("--model", default="vgg_small", choices=MODEL_NAMES,
                   help="zoo model (default vgg_small)")
    p.add_argument("--dataset", default="mnist-canvas", choices=DATASETS,
                   help="mnist: 28x28 digits; mnist-canvas: digits placed in a "
                        "larger canvas; digits: scikit-learn 8x8 (default "
                        "mnist-canvas)")
    p.add_argument("--canvas-size", type=_positive_int, default=56, metavar="N",
                   help="canvas side for mnist-canvas (default 56)")
    p.add_argument("--positions", default="uniform",
                   choices=("center", "gaussian", "uniform"),
                   help="digit positions in the canvas (default uniform)")
    p.add_argument("--sigma", type=float, default=None, metavar="PX",
                   help="std of gaussian positions in pixels (default 4)")
    p.add_argument("--crop", type=_nonnegative_int, default=0, metavar="PX",
                   help="pixels cut from each border of the 28x28 digits "
                        "(default 0)")
    p.add_argument("--n-train", type=_positive_int, default=None, metavar="N",
                   help="keep only the first N training images")
    p.add_argument("--data-seed", type=_nonnegative_int, default=0, metavar="N",
                   help="seed of the train/test split and canvas positions")
    p.add_argument("--epochs", type=_positive_int, default=3, metavar="N")
    p.add_argument("--batch-size", type=_positive_int, default=64, metavar="N")
    p.add_argument("--lr", type=_positive_float, default=2e-3,
                   help="Adam learning rate (default 0.002)")
    p.add_argument("--width", type=_positive_float, default=0.5,
                   help="channel width multiplier (default 0.5)")
    p.add_argument("--padding", default="zero", choices=MODEL_PADDINGS)
    p.add_argument("--downsample", default="max", choices=DOWNSAMPLE_MODES,
                   help="max (baseline), blur (anti-aliased), ... (default max)")
    p.add_argument("--blur-size", type=_positive_int, default=4, metavar="K",
                   help="binomial taps for --downsample blur (default 4)")
    p.add_argument("--augment-shift", type=_nonnegative_int, default=0,
                   metavar="N", help="random translations of up to N pixels")
    p.add_argument("--augment-padding", default="zero",
                   choices=("zero", "circular", "reflect"))
    p.add_argument("--seed", type=_nonnegative_int, default=0, metavar="N",
                   help="training seed (initialisation, batches, augmentation)")
    p.add_argument("--restart", action="store_true",
                   help="ignore a checkpoint in --out and start over")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    p.set_defaults(handler=_cmd_train, subparser=p)


def _add_shift_test_parser(sub) -> None:
    from sigcnn.shift_test import DEFAULT_PROTOCOLS, PROTOCOLS

    p = sub.add_parser(
        "shift-test",
        help="P(top-1 change) and MAC of a trained model under small shifts",
        description="Run the paper's shift protocols on a model saved by "
                    "`sigcnn train`, on held-out images of the dataset it was "
                    "trained on; print a Table-1-style table and write JSON and "
                    "figures.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="folder written by `sigcnn train`")
    p.add_argument("--protocols", default=",".join(DEFAULT_PROTOCOLS),
                   metavar="LIST",
                   help=f"comma-separated, from {', '.join(PROTOCOLS)} (default "
                        f"{','.join(DEFAULT_PROTOCOLS)})")
    p.add_argument("--n-images", type=_positive_int, default=500, metavar="N",
                   help="held-out images (default 500)")
    p.add_argument("--n-pairs", type=_positive_int, default=8, metavar="N",
                   help="consecutive one-pixel pairs per image (default 8)")
    p.add_argument("--sweep-images", type=_nonnegative_int, default=4,
                   metavar="K", help="images of the jaggedness sweep (default 4; "
                                     "0 skips it)")
    p.add_argument("--no-all-shifts", action="store_true",
                   help="skip the accuracy under all S x S circular shifts")
    p.add_argument("--seed", type=_nonnegative_int, default=0, metavar="N",
                   help="seed of the random pairs and bootstrap intervals")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    p.set_defaults(handler=_cmd_shift_test, subparser=p)


def _add_report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="the whole story on built-in defaults, as one HTML page",
        description="Train (or reuse from the cache) a baseline and an "
                    "anti-aliased small CNN on offline MNIST canvases, run the "
                    "sampling-theorem checks, per-layer spectra and the shift "
                    "test, and write one self-contained report.html plus "
                    "report.json.")
    p.add_argument("--out", default="sigcnn-report", metavar="DIR",
                   help="output folder (default ./sigcnn-report)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder of the trained models (default OUT/cache)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny configuration for smoke tests (seconds; the "
                        "numbers mean nothing)")
    p.set_defaults(handler=_cmd_report, subparser=p)


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

    from sigcnn.models import DOWNSAMPLE_MODES, MODEL_NAMES, MODEL_PADDINGS

    p = sub.add_parser(
        "spectra",
        help="per-layer aliasing spectra of a network on natural images",
        description="Undecimate a zoo model on natural images and measure, for "
                    "each block output, its stride, the aliasing ratio and "
                    "shiftability error of its undecimated response, and the "
                    "local aliasing at each subsampling operation.")
    p.add_argument("--model", default="vgg16", choices=MODEL_NAMES,
                   help="zoo model (default vgg16)")
    p.add_argument("--width", type=float, default=0.25,
                   help="channel width multiplier (default 0.25)")
    p.add_argument("--padding", default="zero", choices=MODEL_PADDINGS)
    p.add_argument("--downsample", default="max", choices=DOWNSAMPLE_MODES)
    p.add_argument("--checkpoint", metavar="DIR",
                   help="use the trained model saved by `sigcnn train` in DIR")
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
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", action="append", metavar="NAME",
                     help="built-in natural image (repeatable; default "
                          "astronaut)")
    src.add_argument("--images", metavar="DIR",
                     help="a folder of your own PNG/JPEG images")
    p.add_argument("--size", type=int, default=224,
                   help="images are centre-cropped and resized to SIZE x SIZE "
                        "(default 224)")
    p.add_argument("--normalize", default="imagenet",
                   choices=("imagenet", "caffe", "tf", "none"),
                   help="input preprocessing (default: ImageNet mean/std; caffe "
                        "and tf as Keras applications expect, with --images)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, metavar="N")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    p.set_defaults(handler=_cmd_spectra, subparser=p, image=None)
    _add_train_parser(sub)
    _add_shift_test_parser(sub)
    _add_report_parser(sub)
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
