"""ImageNet-val x all 1,024 shifts of VGG16 and ResNet50: measured, then projected.

For VGG16 and ResNet50 (sigcnn's zoo, torchvision layout, width 1, 1000 classes,
random weights, float32, 224 x 224, total stride 32 so 32 x 32 = 1,024 circular
shifts) this script measures on the machine it runs on:

* XLA's FLOP count of ``all_shifts(model, x)`` for one image (à trous, with the
  CPU tiling off so that loop bodies are not counted once), and of one strided
  forward pass (x 1,024 = brute force);
* for circular padding, the steady time of ``all_shifts`` on one image (the
  undecimated pass runs through the whole network);
* for zero padding (what pretrained ImageNet networks use), the à trous pass
  stops being exact at the first padded layer and the rest runs per shift, so
  the cost is that of brute force: the steady time of 8 shifts by brute force,
  scaled to 1,024;
* the float32 matmul peak of the machine, in the same run.

From these it projects the time for ImageNet-val (50,000 images) on this
machine, and on one H200-class GPU from the FLOP counts at 50 % of the GPU's
dense peak (spec-sheet values: FP32 67, TF32 495, BF16 989 TFLOP/s; SXM).
GPU rows are projections, not measurements, unless the GPU table of
benchmarks/README.md says otherwise.

Usage (with sigcnn installed, or ``PYTHONPATH=.`` from the repository root):
  python benchmarks/bench_imagenet_projection.py [--only vgg16|resnet50] [--out F]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

IMAGES = 50_000
SHIFTS = 1024
H200_TFLOPS = {"FP32": 67.0, "TF32": 495.0, "BF16": 989.0}


def _measure(name: str, padding: str, *, log) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import sigcnn
    import sigcnn.models as M

    model = M.create(name, key=0, padding=padding)
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 224, 224, 3)),
                    jnp.float32)
    strided = common.flops(jax.jit(lambda a: model(a)).lower(x))
    row = dict(network=name, padding=padding, strided_gflop=strided / 1e9,
               brute_gflop=SHIFTS * strided / 1e9)
    if padding == "circular":
        atrous = common.untiled_flops(lambda a: sigcnn.all_shifts(model, a), x)
        t0 = time.perf_counter()
        out = jax.block_until_ready(sigcnn.all_shifts(model, x))
        row["first_call_s"] = time.perf_counter() - t0
        assert out.shape == (1, 32, 32, 1000), out.shape
        row["seconds_per_image"] = common.steady(
            lambda: sigcnn.all_shifts(model, x), repeat=2, warmup=False)
        row["atrous_gflop"] = atrous / 1e9
        log(f"{name} {padding}: {atrous / 1e9:.0f} GFLOP atrous, "
            f"{row['seconds_per_image']:.1f} s / image")
    else:
        shifts = np.stack([np.zeros(8, int), np.arange(8)], axis=1)
        run = lambda: sigcnn.all_shifts(model, x, shifts=shifts,   # noqa: E731
                                        method="brute")
        jax.block_until_ready(run())
        per8 = common.steady(run, repeat=2, warmup=False)
        row["seconds_per_image"] = per8 * SHIFTS / len(shifts)
        row["atrous_gflop"] = row["brute_gflop"]      # from the first padded layer
        log(f"{name} {padding}: {strided / 1e9:.1f} GFLOP per shift, "
            f"{row['seconds_per_image']:.0f} s / image (from 8 shifts)")
    return row


def _hours(s: float) -> str:
    return f"{s / 60:.1f} min" if s < 3600 else (
        f"{s / 3600:.1f} h" if s < 86400 * 2 else f"{s / 86400:.1f} days")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("vgg16", "resnet50"), default=None)
    p.add_argument("--out", default=str(common.RESULTS / "imagenet_projection.json"))
    args = p.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)   # noqa: E731
    peak = common.matmul_peak(repeat=10)
    rows = []
    for name in ((args.only,) if args.only else ("vgg16", "resnet50")):
        for padding in ("circular", "zero"):
            rows.append(_measure(name, padding, log=log))
    peak_end = common.matmul_peak(repeat=10)
    best = max(peak["gflops_per_s"], peak_end["gflops_per_s"])
    print(f"matmul peak {best:.0f} GFLOP/s (start {peak['gflops_per_s']:.0f}, "
          f"end {peak_end['gflops_per_s']:.0f})")
    print("| network | padding | GFLOP / image (1,024 shifts) | brute GFLOP | "
          "CPU s / image | CPU % of peak | ImageNet-val on this CPU | "
          "H200 at 50 % FP32 / TF32 / BF16 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = r["atrous_gflop"]
        pct = 100 * g / r["seconds_per_image"] / best
        gpu = " / ".join(_hours(IMAGES * g * 1e9 / (0.5 * t * 1e12))
                         for t in H200_TFLOPS.values())
        r.update(cpu_percent_of_peak=pct,
                 cpu_imagenet_s=IMAGES * r["seconds_per_image"],
                 h200_imagenet_s={k: IMAGES * g * 1e9 / (0.5 * t * 1e12)
                                  for k, t in H200_TFLOPS.items()})
        print(f"| {r['network']} | {r['padding']} | {g:,.0f} | "
              f"{r['brute_gflop']:,.0f} | {r['seconds_per_image']:.1f} | {pct:.0f} | "
              f"{_hours(r['cpu_imagenet_s'])} | {gpu} |")
    common.write_json(Path(args.out), dict(machine=common.machine_info(),
                                           matmul_peak=[peak, peak_end], rows=rows,
                                           images=IMAGES, h200_tflops=H200_TFLOPS))


if __name__ == "__main__":
    main()
