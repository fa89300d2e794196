"""``sigcnn spectra``: per-layer aliasing spectra of a network on natural images."""

from __future__ import annotations

import argparse
import os
import time

from sigcnn._io import atomic_write_bytes
from sigcnn.cli._common import (
    add_external_args,
    add_preprocessing_args,
    check_external_flags,
    check_out_dir,
    external_given,
    format_table,
    nonnegative_int,
    open_external,
    open_folder,
    say,
    write_json,
)

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Registers ``spectra``."""
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
    p.add_argument("--downsample", default="max",
                   choices=[m for m in DOWNSAMPLE_MODES if m != "aps"],
                   help="subsampling of the zoo model (default max; aps, adaptive "
                        "polyphase sampling, picks its phase from the data and has "
                        "no undecimated response: measure it with `sigcnn "
                        "shift-test`, which runs it by brute force)")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="use the trained model saved by `sigcnn train` in DIR "
                        "(images at its training size unless --size is given)")
    add_external_args(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", action="append", metavar="NAME",
                     help="built-in natural image (repeatable; default "
                          "astronaut)")
    src.add_argument("--images", metavar="DIR",
                     help="a folder of your own PNG/JPEG images")
    add_preprocessing_args(p, size_help=(
        "images are resized to SIZE x SIZE (default 224, or the training size "
        "of --checkpoint): a folder with --torch/--timm/--keras as ImageNet "
        "(shorter side SIZE*256/224, centre crop), otherwise centre-cropped to "
        "a square and resized"))
    p.set_defaults(size=None)
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="N")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing)")
    p.set_defaults(handler=run, subparser=p, image=None)


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


def _open_checkpoint(args, parser):
    """(model, label, channels, size) of the model `sigcnn train` saved."""
    from sigcnn import train

    say(f"[1/4] loading the trained model from {args.checkpoint}")
    model, config = train.load_model(args.checkpoint)
    spec = config.get("model") or {}
    name = spec.get("name") or spec.get("class") or "model"
    shape = config.get("image_shape") or [224, 224, 3]
    options = ", ".join(f"{k} {v}" for k, v in sorted((spec.get("options") or
                                                       {}).items()))
    label = f"{name} ({options})" if options else name
    return model, label, int(shape[-1]), int(shape[0])


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``sigcnn spectra``."""
    if args.width <= 0:
        parser.error(f"argument --width: must be positive; got {args.width}")
    size_given = args.size is not None
    if not size_given:
        args.size = 224
    if args.size < 8:
        parser.error(f"argument --size: must be at least 8; got {args.size}")
    check_out_dir(parser, "--out", args.out)
    check_external_flags(args, parser)
    if args.checkpoint and external_given(args):
        parser.error("argument --checkpoint: not with --torch / --timm / --keras")
    if args.checkpoint:
        from sigcnn import train

        if not os.path.isdir(args.checkpoint):
            parser.error(f"argument --checkpoint: no such folder "
                         f"{args.checkpoint!r}")
        if not train.has_model(args.checkpoint):
            parser.error(f"argument --checkpoint: {args.checkpoint!r} holds no "
                         f"{train.MODEL_FILE}; train one with `sigcnn train --out "
                         f"DIR`")
    if args.images is not None and not os.path.isdir(args.images):
        parser.error(f"argument --images: no such folder {args.images!r}")
    os.makedirs(args.out, exist_ok=True)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sigcnn import figures as plot
    from sigcnn import layerwise as ls
    from sigcnn import models

    start = time.perf_counter()
    external = None
    if external_given(args):
        external = open_external(args, parser)
    if external is not None:
        model, label, channels = None, external.label, 3
    elif args.checkpoint:
        model, label, channels, trained_size = _open_checkpoint(args, parser)
        if not size_given:
            args.size = trained_size
    else:
        say(f"[1/4] building {args.model} (width {args.width}, padding "
            f"{args.padding}, downsample {args.downsample}, seed "
            f"{args.seed}, random weights)")
        model = models.create(args.model, key=args.seed, width=args.width,
                              padding=args.padding, downsample=args.downsample)
        model.eval()
        label = args.model
        channels = 3
    say("[2/4] loading images")
    if external is not None and args.images:
        args.labels = args.classes = None
        folder = open_folder(args, parser)
        names = list(folder.files)
        batch = np.stack([folder.image(i) for i in range(len(folder))])
    else:
        names, batch = _load_spectra_images(args, channels)
    x = jnp.asarray(batch)
    say(f"[3/4] undecimating {label} on {len(names)} image(s) of "
        f"{args.size}x{args.size} and measuring spectra")
    taps_fn = external.taps if external is not None else model.taps
    result = ls.layer_spectra(taps_fn, x)
    jax.block_until_ready(result.layers[-1].spectrum)
    say("[4/4] writing table, figures and JSON")
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
              "width": None if args.checkpoint or external else args.width,
              "padding": None if args.checkpoint or external else args.padding,
              "downsample": None if args.checkpoint or external
              else args.downsample,
              "seed": args.seed, "checkpoint": args.checkpoint,
              "images": names, "size": args.size,
              "normalize": args.normalize, "seconds": round(seconds, 3),
              **result.to_dict()}
    paths = [os.path.join(args.out, n) for n in
             ("spectra.json", "spectra.txt", "layer_spectra.png",
              "aliasing_vs_depth.png")]
    write_json(paths[0], record)
    atomic_write_bytes(paths[1], (table + "\n").encode("utf-8"))
    plot.layer_spectra_figure(result.layers, title=f"{label}: undecimated "
                              "responses, Nyquist box of each stride",
                              path=paths[2])
    plot.aliasing_depth_figure({label: result.layers}, path=paths[3])
    print(f"\n{len(result.layers)} layers in {seconds:.1f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0
