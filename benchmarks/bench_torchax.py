"""`undecimate` of an imported PyTorch network vs the zoo's native model.

The same architecture twice, random weights: torchvision's VGG-11 imported with
``sigcnn.interop.from_torch`` (a jaxpr traced by torchax: NCHW convolutions, the
weights as arguments) and the zoo's ``vgg11`` at width 1 (NHWC Flax NNX). Both
``undecimate(f)`` programs are jitted, compiled and timed in steady state in one
process (see common.py), on one image, with their XLA FLOP counts; the ratio
imported / native is the figure of merit (target: at most 1.5). The imported
program's r2 is checked against its own strided output (r2[::S] == f(x)).

Usage::

    python benchmarks/bench_torchax.py [--size 224] [--repeat 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, compile_fn, load_average, machine_info, steady, write_json  # noqa: E402

import sigcnn as sc  # noqa: E402
from sigcnn import models  # noqa: E402
from sigcnn.interop import from_torch  # noqa: E402
from sigcnn.interop._torch_env import import_torch, import_torchvision  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, default=RESULTS / "torchax_undecimate.json")
    args = ap.parse_args(argv)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(
        (1, args.size, args.size, 3)).astype(np.float32))

    torch, _ = import_torch()
    tv = import_torchvision()
    torch.manual_seed(0)
    net = tv.models.vgg11(weights=None).eval()
    tapply, tparams = from_torch(net, taps=["features"])
    imported = functools.partial(tapply, tparams)

    zoo = models.create("vgg11", key=0, width=1.0)
    zoo.eval()

    rows = {}
    for name, f in (("torchvision vgg11 via from_torch", imported),
                    ("zoo vgg11 (width 1)", zoo.taps if hasattr(zoo, "taps") else zoo)):
        # undecimate() inside the function: compile_fn's FLOP count lowers it
        # again with tiling off (a Tiling is fixed when undecimate() is called).
        timed = compile_fn(lambda z, f=f: sc.undecimate(f)(z)[0], x)
        seconds = steady(lambda: timed(x), repeat=args.repeat)
        rows[name] = dict(compile_s=timed.compile_s, seconds=seconds,
                          gflop=timed.flops / 1e9,
                          gflop_per_s=timed.flops / seconds / 1e9,
                          load_average_1min=load_average())
        print(name, rows[name], flush=True)
    r2 = jax.jit(lambda z: sc.undecimate(imported)(z)[0])(x)["features"]
    ref = jax.jit(imported)(x)["features"]
    s = args.size // ref.shape[1]
    err = float(jnp.max(jnp.abs(r2[:, ::s, ::s] - ref)) / jnp.max(jnp.abs(ref)))
    names = list(rows)
    ratio = rows[names[0]]["seconds"] / rows[names[1]]["seconds"]
    print(f"\nimported / native steady time: {ratio:.2f}x; identity error {err:.1e}")
    print("\n| program | compile s | steady s | GFLOP (XLA) | GFLOP/s |")
    print("|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['compile_s']:.1f} | {r['seconds']:.2f} | {r['gflop']:.0f} "
              f"| {r['gflop_per_s']:.0f} |")
    write_json(args.json, dict(meta=dict(machine=machine_info(), args={
        k: str(v) for k, v in vars(args).items()}), rows=rows, ratio=ratio,
        identity_rel_error=err))
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
