"""``sigcnn train``: a zoo model on offline digits, checkpointed per epoch."""

from __future__ import annotations

import argparse
import os

from sigcnn.cli._common import (
    check_out_dir,
    error_message,
    format_table,
    nonnegative_int,
    positive_float,
    positive_int,
    say,
)

__all__ = ["add_parser", "run"]


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: ...)`` to every option that has a default (options
    whose default is None say in their help what that means)."""

    def _get_help_string(self, action):
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


def add_parser(sub) -> None:
    """Registers ``train``; its defaults are the report's baseline model
    (`sigcnn.data.BASELINE_TRAINING` on `sigcnn.data.DatasetSpec()`)."""
    from sigcnn.data import BASELINE_TRAINING as B
    from sigcnn.data import DATASET_POSITIONS, DATASETS, DatasetSpec
    from sigcnn.models import DOWNSAMPLE_MODES, MODEL_NAMES, MODEL_PADDINGS

    d = DatasetSpec()
    p = sub.add_parser(
        "train",
        help="train a zoo model on offline digits (resumable)",
        formatter_class=_DefaultsHelp,
        description="Train a zoo model with Adam on an offline dataset, with a "
                    "checkpoint after every epoch: run it again with the same "
                    "--out to resume an interrupted run (or reuse a finished "
                    "one). The defaults train the baseline model of `sigcnn "
                    "report`. Progress goes to stderr.")
    p.add_argument("--model", default=B["model"], choices=MODEL_NAMES,
                   help="zoo model")
    p.add_argument("--dataset", default=d.name, choices=DATASETS,
                   help="mnist: 28x28 digits; mnist-canvas: digits placed in a "
                        "larger canvas; digits: scikit-learn 8x8")
    p.add_argument("--canvas-size", type=positive_int, default=d.canvas_size,
                   metavar="N", help="canvas side for mnist-canvas")
    p.add_argument("--positions", default=d.positions, choices=DATASET_POSITIONS,
                   help="digit positions in the canvas")
    p.add_argument("--sigma", type=float, default=None, metavar="PX",
                   help="std of gaussian positions in pixels (default: 4 with "
                        "--positions gaussian)")
    p.add_argument("--crop", type=nonnegative_int, default=d.crop, metavar="PX",
                   help="pixels cut from each border of the 28x28 digits")
    p.add_argument("--n-train", type=positive_int, default=None, metavar="N",
                   help="keep only the first N training images (default: all)")
    p.add_argument("--data-seed", type=nonnegative_int, default=d.seed,
                   metavar="N",
                   help="seed of the train/test split and canvas positions")
    p.add_argument("--epochs", type=positive_int, default=B["epochs"],
                   metavar="N", help="training epochs")
    p.add_argument("--batch-size", type=positive_int, default=B["batch_size"],
                   metavar="N", help="images per step")
    p.add_argument("--lr", type=positive_float, default=B["learning_rate"],
                   help="Adam learning rate")
    p.add_argument("--width", type=positive_float, default=B["width"],
                   help="channel width multiplier")
    p.add_argument("--padding", default=B["padding"], choices=MODEL_PADDINGS,
                   help="padding of the convolutions and pools")
    p.add_argument("--downsample", default=B["downsample"],
                   choices=DOWNSAMPLE_MODES,
                   help="max (baseline), blur (anti-aliased), ...")
    p.add_argument("--blur-size", type=positive_int, default=B["blur_size"],
                   metavar="K", help="binomial taps for --downsample blur")
    p.add_argument("--augment-shift", type=nonnegative_int,
                   default=B["augment_shift"], metavar="N",
                   help="random translations of up to N pixels (0: none)")
    p.add_argument("--augment-padding", default=B["augment_padding"],
                   choices=("zero", "circular", "reflect"),
                   help="what fills the pixels a translation uncovers")
    p.add_argument("--seed", type=nonnegative_int, default=B["seed"], metavar="N",
                   help="training seed (initialisation, batches, augmentation)")
    p.add_argument("--restart", action="store_true",
                   help="ignore a checkpoint in --out and start over")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    p.set_defaults(handler=run, subparser=p)
    p.flag_names = {"out_dir": "--out", "learning_rate": "--lr",
                    "resume": "--restart"}


def _dataset(args, parser: argparse.ArgumentParser):
    from sigcnn.data import DatasetSpec

    if args.sigma is not None and args.positions != "gaussian":
        parser.error(f"argument --sigma: only used with --positions gaussian; got "
                     f"--positions {args.positions}")
    if args.sigma is not None and args.sigma < 0:
        parser.error(f"argument --sigma: must be non-negative; got {args.sigma}")
    try:
        return DatasetSpec(
            name=args.dataset, canvas_size=args.canvas_size,
            positions=args.positions, sigma=args.sigma, crop=args.crop,
            n_train=args.n_train, seed=args.data_seed)
    except (TypeError, ValueError) as e:
        parser.error(error_message(e, {"canvas_size": "--canvas-size",
                                       "n_train": "--n-train", "seed": "--data-seed",
                                       "crop": "--crop", "sigma": "--sigma"}))


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``sigcnn train``."""
    check_out_dir(parser, "--out", args.out)
    spec = _dataset(args, parser)
    from sigcnn import train
    from sigcnn.report import models as report

    say(f"training {args.model} (width {args.width}, downsample "
              f"{args.downsample}, padding {args.padding}, seed {args.seed}) on "
              f"{spec.describe()}")
    progress = report.TrainProgress(say, label=args.model,
                                    batch_size=args.batch_size)
    res = report.train_model(
        spec, out_dir=args.out, model=args.model, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
        width=args.width, padding=args.padding, downsample=args.downsample,
        blur_size=args.blur_size, augment_shift=args.augment_shift,
        augment_padding=args.augment_padding, progress=progress,
        resume=not args.restart)
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
