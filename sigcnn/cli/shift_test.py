"""``sigcnn shift-test``: the paper's shift protocols on a trained model.

Either a model saved by ``sigcnn train`` (``--checkpoint``, on held-out images of
its own dataset) or your own network (``--torch`` / ``--timm`` / ``--keras``) on a
folder of images (``--images``), streamed and resumable chunk by chunk, on one
process or shared among several (``--distributed``).
"""

from __future__ import annotations

import argparse
import os

from sigcnn._io import atomic_write_bytes
from sigcnn.cli._common import (
    Progress,
    add_distributed_args,
    add_external_args,
    add_folder_args,
    check_distributed_flags,
    check_external_flags,
    check_out_dir,
    external_given,
    interrupt_between_steps,
    join_processes,
    nonnegative_int,
    open_external,
    open_folder,
    positive_int,
    say,
    write_json,
)

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Registers ``shift-test``."""
    from sigcnn.report.network import NETWORK_SHIFT_OPTIONS
    from sigcnn.shift_test import DEFAULT_PROTOCOLS, PROTOCOLS

    p = sub.add_parser(
        "shift-test",
        help="P(top-1 change) and MAC of a trained model under small shifts",
        description="Run the paper's shift protocols on a model saved by "
                    "`sigcnn train` (on held-out images of its dataset), or on "
                    "your own PyTorch / Keras network and a folder of images; "
                    "print a Table-1-style table and write JSON and figures. "
                    "With --images the images are read ahead in threads "
                    "while the network evaluates (bounded memory whatever the "
                    "folder's size), the finished chunks are kept in "
                    "OUT/chunks, and the same command resumes an interrupted "
                    "run; a progress bar shows images/s, images·shifts/s "
                    "and the time left.")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="folder written by `sigcnn train`")
    add_external_args(p)
    add_folder_args(p)
    p.add_argument("--protocols", default=None, metavar="LIST",
                   help=f"comma-separated, from {', '.join(PROTOCOLS)} (default "
                        f"{','.join(DEFAULT_PROTOCOLS)}; with --images "
                        f"{','.join(NETWORK_SHIFT_OPTIONS['protocols'])}, as "
                        f"`sigcnn report`, which then reuses the chunks)")
    p.add_argument("--n-images", type=positive_int, default=None, metavar="N",
                   help="images to test (default: 500 held-out images of a "
                        "checkpoint; every image of --images)")
    p.add_argument("--n-pairs", type=positive_int, default=8, metavar="N",
                   help="consecutive one-pixel pairs per image (default 8)")
    p.add_argument("--sweep-images", type=nonnegative_int, default=4,
                   metavar="K", help="images of the jaggedness sweep (default 4; "
                                     "0 skips it)")
    p.add_argument("--no-all-shifts", action="store_true",
                   help="skip the accuracy under all S x S circular shifts")
    p.add_argument("--chunk-images", type=positive_int, default=16, metavar="N",
                   help="with --images: images per resumable chunk (default 16)")
    p.add_argument("--batch", type=positive_int, default=32, metavar="N",
                   help="with --images: frames per network call (default 32)")
    p.add_argument("--read-threads", type=nonnegative_int, default=4, metavar="N",
                   help="with --images: threads reading and preprocessing the "
                        "images ahead of the network (default 4; 0 reads each "
                        "chunk when it is needed)")
    p.add_argument("--prefetch", type=nonnegative_int, default=None, metavar="N",
                   help="with --images: images read ahead at most, which bounds "
                        "the memory (default: --chunk-images)")
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                   help="seed of the random pairs and bootstrap intervals")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    add_distributed_args(p)
    p.set_defaults(handler=run, subparser=p)
    p.flag_names = {"work_dir": "--out", "chunk": "--batch",
                    "process_count": "--num-processes",
                    "process_index": "--process-id"}


def _split_protocols(parser: argparse.ArgumentParser, text: str):
    from sigcnn.shift_test import PROTOCOLS

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in PROTOCOLS]
    if not names or bad:
        parser.error(f"argument --protocols: expected a comma-separated list of "
                     f"{', '.join(PROTOCOLS)}; got {text!r}")
    return names


def _write_outputs(args, result, record) -> int:
    from sigcnn import figures as plot_shifts

    paths = [os.path.join(args.out, n) for n in
             ("shift_test.json", "shift_test.txt", "table1.png")]
    write_json(paths[0], record)
    atomic_write_bytes(paths[1], (record["table"] + "\n").encode("utf-8"))
    plot_shifts.table1_figure(result, path=paths[2])
    if result.jaggedness is not None:
        paths.append(os.path.join(args.out, "jaggedness.png"))
        plot_shifts.jaggedness_figure(result, path=paths[-1])
    print(f"\n{result.n_images} images in {result.seconds:.1f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _check_sources(args, parser) -> None:
    check_external_flags(args, parser)
    external = external_given(args)
    if args.checkpoint and external:
        parser.error("argument --checkpoint: not with --torch / --timm / --keras")
    if not args.checkpoint and not external:
        parser.error("one of --checkpoint, --torch, --timm or --keras is required")
    if external and not args.images:
        parser.error("argument --images: required with --torch / --timm / --keras "
                     "(a folder of PNG/JPEG images)")
    if args.checkpoint:
        for flag in ("images", "labels", "classes"):
            if getattr(args, flag) is not None:
                parser.error(f"argument --{flag}: not with --checkpoint (it tests "
                             f"held-out images of the model's own dataset)")
    if args.labels and not args.images:
        parser.error("argument --labels: only with --images")
    if args.distributed and not args.images:
        parser.error("argument --distributed: only with --images (a folder "
                     "shared among the processes)")
    check_distributed_flags(args, parser)


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``sigcnn shift-test``."""
    from sigcnn.report.network import NETWORK_SHIFT_OPTIONS
    from sigcnn.shift_test import DEFAULT_PROTOCOLS

    _check_sources(args, parser)
    check_out_dir(parser, "--out", args.out)
    default = NETWORK_SHIFT_OPTIONS["protocols"] if args.images else DEFAULT_PROTOCOLS
    protocols = _split_protocols(parser, args.protocols or ",".join(default))
    if args.checkpoint:
        return _run_checkpoint(args, parser, protocols)
    return _run_external(args, parser, protocols)


def _run_checkpoint(args, parser, protocols) -> int:
    from sigcnn import train

    if not train.has_model(args.checkpoint):
        parser.error(f"argument --checkpoint: {args.checkpoint!r} holds no "
                     f"{train.MODEL_FILE}; train one with `sigcnn train --out DIR`")
    n_images = args.n_images or 500
    os.makedirs(args.out, exist_ok=True)
    import jax

    from sigcnn import report, shift_test

    say(f"shift test of {args.checkpoint} on {n_images} held-out images "
        f"({', '.join(protocols)})")
    with Progress() as progress:
        result, config, spec = report.shift_test_checkpoint(
            args.checkpoint, key=jax.random.key(args.seed),
            n_images=n_images, protocols=protocols, n_pairs=args.n_pairs,
            all_shifts=not args.no_all_shifts,
            sweep_images=args.sweep_images or None, progress=progress)
    table = shift_test.format_table(result)
    print(table)
    record = {"command": "shift-test", "checkpoint": os.path.abspath(args.checkpoint),
              "model": config.get("model"), "dataset": spec.to_dict(),
              "train_test_accuracy": config.get("test_accuracy"),
              "seed": args.seed, "table": table, **result.to_dict()}
    return _write_outputs(args, result, record)


def _run_external(args, parser, protocols) -> int:
    import dataclasses

    folder = open_folder(args, parser)
    if args.n_images is not None and args.n_images > len(folder):
        parser.error(f"argument --n-images: must be at most the {len(folder)} "
                     f"images of --images {args.images!r}; got {args.n_images}")
    if args.n_images is not None and args.n_images < len(folder):
        folder = dataclasses.replace(
            folder, files=folder.files[:args.n_images],
            labels=None if folder.labels is None
            else folder.labels[:args.n_images])
    index, count = join_processes(args, parser)    # before any JAX computation
    net = open_external(args, parser, step="[1/2]")
    os.makedirs(args.out, exist_ok=True)
    import jax

    from sigcnn import shift_test
    from sigcnn.report.network import NETWORK_SHIFT_OPTIONS

    work_dir = os.path.join(args.out, "chunks")
    share = (f"; process {index} of {count} computes the chunks k with k mod "
             f"{count} = {index}" if count > 1 else "")
    say(f"[2/2] shift test of {net.label} on {len(folder)} image(s) of "
        f"{args.images} ({', '.join(protocols)}"
        f"{'' if folder.labels is not None else '; no labels: accuracy is left out'}"
        f"); finished chunks are kept in {work_dir}{share}")
    options = dict(NETWORK_SHIFT_OPTIONS, protocols=protocols,
                   n_pairs=args.n_pairs, all_shifts=not args.no_all_shifts,
                   sweep_images=args.sweep_images or None, chunk=args.batch)
    identity = {"label": net.label, "source": net.source,
                "preprocessing": folder.preprocessing}
    with Progress(prefix=f"  [{index}] " if count > 1 else "  ") as progress, \
            interrupt_between_steps() as check:
        def step(*args_):            # Ctrl-C takes effect here, between steps
            check()
            progress(*args_)

        try:
            result = shift_test.resumable_shift_test(
                net.f, folder, key=jax.random.key(args.seed), work_dir=work_dir,
                chunk_images=args.chunk_images, identity=identity,
                progress=step, read_threads=args.read_threads,
                prefetch=args.prefetch, process_index=index, process_count=count,
                wait_timeout=args.wait_timeout, **options)
        except TimeoutError as e:             # another process stopped
            progress.close()
            say(f"sigcnn shift-test: error: {e}")
            return 1
    if result is None:                        # process > 0: its chunks are written
        say(f"process {index} of {count}: its chunks are in {work_dir}; process 0 "
            f"merges them and writes the results")
        return 0
    table = shift_test.format_table(result)
    print(table)
    record = {"command": "shift-test", "model": net.label, "source": net.source,
              "images": {"root": os.path.abspath(folder.root),
                         "files": list(folder.files),
                         "labelled": folder.labels is not None,
                         "preprocessing": folder.preprocessing},
              "seed": args.seed, "table": table, **result.to_dict()}
    return _write_outputs(args, result, record)
