"""BlurPool on CPU: strided slice sums (sigcnn.ops.blur_pool) vs a depthwise conv.

Times ``sigcnn.blur_pool`` (two separable passes of strided slice sums) against
the textbook implementation, a depthwise ``lax.conv_general_dilated`` with
``feature_group_count=C`` and the outer-product binomial kernel, on the same
reflect-padded input. Both are jitted; steady state is
``min(timeit.repeat(..., number=1, repeat=R))`` with ``block_until_ready``, and
compile time (lower + compile) is measured separately. The two results must agree
to float32 rounding.

Usage (with sigcnn installed, or ``PYTHONPATH=.`` from the repository root):
  python benchmarks/bench_blurpool.py [--repeat 10] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import timeit
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import sigcnn as sc
from sigcnn import ops

SHAPE = (64, 64, 64, 64)          # N, H, W, C (NHWC), float32
STRIDE = 2
SIZES = (3, 4)
PADDING = "reflect"


def depthwise_blur(x, *, size, stride, padding=PADDING):
    """BlurPool as one depthwise convolution (feature_group_count = C)."""
    c = x.shape[3]
    b = sc.binomial_filter(size)
    kernel = np.repeat(np.outer(b, b)[:, :, None, None], c, axis=3)   # [k, k, 1, C]
    xp = ops.pad(x, size, padding=padding)
    return lax.conv_general_dilated(
        xp, jnp.asarray(kernel, x.dtype), window_strides=(stride, stride),
        padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c, precision=lax.Precision.HIGHEST)


def slice_blur(x, *, size, stride, padding=PADDING):
    """sigcnn's BlurPool (separable strided slice sums)."""
    return sc.blur_pool(x, size=size, stride=stride, padding=padding)


def _time(fn, x, repeat):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(x).compile()
    compile_s = time.perf_counter() - t0
    out = compiled(x).block_until_ready()           # warm-up
    steady_s = min(timeit.repeat(lambda: compiled(x).block_until_ready(),
                                 number=1, repeat=repeat))
    return compile_s, steady_s, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "blurpool.json")
    args = parser.parse_args(argv)

    x = jax.random.normal(jax.random.key(0), SHAPE, jnp.float32)
    rows = []
    for size in SIZES:
        res = {}
        for name, fn in (("slices", slice_blur), ("depthwise_conv", depthwise_blur)):
            f = (lambda fn_, s_: lambda a: fn_(a, size=s_, stride=STRIDE))(fn, size)
            res[name] = _time(f, x, args.repeat)
        diff = float(jnp.max(jnp.abs(res["slices"][2] - res["depthwise_conv"][2])))
        scale = float(jnp.max(jnp.abs(res["depthwise_conv"][2])))
        if not diff <= 1e-5 * max(scale, 1.0):
            raise SystemExit(f"size {size}: implementations disagree, max |diff| = "
                             f"{diff:.3g}")
        rows.append(dict(
            size=size, stride=STRIDE, padding=PADDING,
            out_shape=list(res["slices"][2].shape),
            slices_ms=1e3 * res["slices"][1],
            depthwise_conv_ms=1e3 * res["depthwise_conv"][1],
            speedup=res["depthwise_conv"][1] / res["slices"][1],
            slices_compile_s=res["slices"][0],
            depthwise_conv_compile_s=res["depthwise_conv"][0],
            max_abs_diff=diff))

    print(f"BlurPool, x {SHAPE} float32 NHWC, stride {STRIDE}, padding {PADDING!r}, "
          f"{jax.devices()[0].platform}, min of {args.repeat} runs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'size':>4} {'slices ms':>10} {'depthwise ms':>13} {'ratio':>6} "
          f"{'compile s (slices/dw)':>22} {'max|diff|':>10}")
    for r in rows:
        print(f"{r['size']:>4} {r['slices_ms']:>10.2f} {r['depthwise_conv_ms']:>13.2f} "
              f"{r['speedup']:>6.2f} "
              f"{r['slices_compile_s']:>10.3f} / {r['depthwise_conv_compile_s']:<9.3f} "
              f"{r['max_abs_diff']:>10.2e}")

    result = dict(
        benchmark="blurpool", shape=list(SHAPE), dtype="float32", repeat=args.repeat,
        jax=jax.__version__, backend=jax.devices()[0].platform,
        device=str(jax.devices()[0].device_kind), cpu_count=os.cpu_count(),
        machine=platform.machine(), python=platform.python_version(),
        load_average_1min=os.getloadavg()[0], rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
