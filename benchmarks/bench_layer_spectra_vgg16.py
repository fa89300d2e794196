"""Undecimated VGG16 (width 1.0) on one 224 x 224 image: time, memory, layer spectra.

Builds VGG16 in torchvision's layout (138,357,544 parameters, random weights) with
circular or zero padding, and times ``sigcnn.atrous.undecimate`` of its five block
outputs (``model.taps``) on one 224 x 224 x 3 natural image: compile time (trace +
lower + compile of the jitted undecimated trunk, parameters passed as arguments)
separately from the steady state (``min(timeit.repeat(...))`` with
``block_until_ready``). Then, for each block output r2 with its cumulative stride S,
the paper's global measures ``aliasing_ratio(r2, S)`` and
``shiftability_error(r2, S)``, and ``sigcnn.layer_spectra`` (global and local
measures; each call runs one undecimated pass), timed once by default. Peak
memory is the process's ``ru_maxrss`` after each step (and JAX's device memory
statistics where the backend reports them).

Usage (from the repository root, with sigcnn importable):
  python benchmarks/bench_layer_spectra_vgg16.py [--padding circular|zero]
      [--repeat 2] [--image astronaut] [--layer-spectra-calls 1] [--quick]
Writes benchmarks/results/layer_spectra_vgg16_<padding>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmark helper beside this script)

import sigcnn  # noqa: E402
from sigcnn import models  # noqa: E402
from sigcnn.atrous import undecimate  # noqa: E402
from sigcnn.spectra import aliasing_ratio, shiftability_error  # noqa: E402

SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_input(name: str, size: int) -> tuple[np.ndarray, str]:
    """One natural image [1, size, size, 3], ImageNet-normalised (or noise)."""
    try:
        from sigcnn.data.natural import load_natural_image
        img = load_natural_image(name)
        source = f"natural image {name!r}"
    except Exception as exc:  # no offline image available: fall back to noise
        rng = np.random.default_rng(0)
        img = rng.random((size, size, 3), dtype=np.float32)
        source = f"uniform noise ({type(exc).__name__}: {exc})"
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    h, w = img.shape[:2]
    f = max(1, min(h, w) // size)                 # integer box downsampling
    c = size * f
    top, left = (h - c) // 2, (w - c) // 2
    if top < 0 or left < 0:
        raise SystemExit(f"image {name!r} of shape {img.shape} is smaller than "
                         f"{size}x{size}")
    crop = img[top:top + c, left:left + c, :3]
    small = crop.reshape(size, f, size, f, 3).mean(axis=(1, 3))
    x = (small - IMAGENET_MEAN) / IMAGENET_STD
    return x[None].astype(np.float32), source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--padding", choices=("circular", "zero"),
                        default="circular")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--image", default="astronaut")
    parser.add_argument("--quick", action="store_true",
                        help="width 1/8 and a 64 x 64 input (smoke test)")
    parser.add_argument("--layer-spectra-calls", type=int, default=1,
                        help="calls of sigcnn.layer_spectra to time (each runs "
                        "one undecimated pass; 0 to skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    width, size = (0.125, 64) if args.quick else (1.0, SIZE)
    tag = f"{args.padding}{'_quick' if args.quick else ''}"
    out = args.out or common.RESULTS / f"layer_spectra_vgg16_{tag}.json"

    def log(msg):
        print(msg, flush=True)

    info = common.machine_info()
    log(f"VGG16 width {width} undecimate + layer spectra on {info['cpu']} "
        f"({info['cpu_count']} cores), jax {info['jax']}, load "
        f"{info['load_average_1min']:.1f}")
    mem = {"start": common.peak_rss_mib()}

    t0 = time.perf_counter()
    model = models.create("vgg16", key=0, width=width, padding=args.padding)
    model.eval()
    build_s = time.perf_counter() - t0
    n_params = models.count_params(model)
    strides = model.tap_strides()
    graphdef, state = nnx.split(model)
    mem["after_build"] = common.peak_rss_mib()
    log(f"built VGG16 ({n_params:,} parameters) in {build_s:.1f} s; tap strides "
        f"{strides}")

    x_np, source = load_input(args.image, size)
    x = jnp.asarray(x_np)
    log(f"input {tuple(x.shape)} from {source}")

    def taps(st, xx):
        net = nnx.merge(graphdef, st)
        return dict(net.taps(xx))

    def und(st, xx):
        net = nnx.merge(graphdef, st)
        r2, _ = undecimate(lambda y: dict(net.taps(y)))(xx)
        return r2

    # The undecimated strides, from one abstract evaluation (nothing compiled).
    stride_tree = {}

    def probe(st, xx):
        net = nnx.merge(graphdef, st)
        r2, s = undecimate(lambda y: dict(net.taps(y)))(xx)
        stride_tree.update(s)
        return r2

    jax.eval_shape(probe, state, x)

    strided = common.compile_fn(taps, state, x)
    strided_s = common.steady(lambda: strided(state, x), repeat=args.repeat)
    log(f"strided taps: compile {strided.compile_s:.1f} s, steady "
        f"{strided_s:.3f} s, {strided.flops / 1e9:.1f} GFLOP")

    timed = common.compile_fn(und, state, x)
    mem["after_compile"] = common.peak_rss_mib()
    log(f"undecimate: compile {timed.compile_s:.1f} s, {timed.flops / 1e9:.1f} "
        f"GFLOP; timing (repeat {args.repeat}) ...")
    t0 = time.perf_counter()
    r2 = jax.block_until_ready(timed(state, x))
    first_s = time.perf_counter() - t0
    log(f"undecimate: first call {first_s:.2f} s")
    steady_s = common.steady(lambda: timed(state, x), repeat=args.repeat,
                             warmup=False)
    mem["after_undecimate"] = common.peak_rss_mib()
    log(f"undecimate: first call {first_s:.2f} s, steady {steady_s:.2f} s "
        f"({timed.flops / steady_s / 1e9:.1f} GFLOP/s)")

    # Identity check f(x) == r2[::S] for every tap.
    ref = strided(state, x)
    exact = {}
    for name, v in ref.items():
        sy, sx = stride_tree[name]
        exact[name] = float(jnp.max(jnp.abs(r2[name][:, ::sy, ::sx] - v)))

    layers = []
    t_spec = time.perf_counter()
    for name, u in r2.items():
        s = strides[name]
        t1 = time.perf_counter()
        ar = float(aliasing_ratio(u, s))
        t2 = time.perf_counter()
        se = float(shiftability_error(u, s))
        t3 = time.perf_counter()
        # Second evaluation: the eager ops are compiled (cached) by now.
        ar_s = common.steady(lambda: aliasing_ratio(u, s), repeat=args.repeat)
        se_s = common.steady(lambda: shiftability_error(u, s), repeat=args.repeat)
        layers.append(dict(
            name=name, stride=s, undecimated_stride=list(stride_tree[name]),
            r2_shape=list(u.shape), aliasing_ratio=ar, shiftability_error=se,
            aliasing_ratio_first_s=t2 - t1, shiftability_error_first_s=t3 - t2,
            aliasing_ratio_s=ar_s, shiftability_error_s=se_s,
            max_abs_diff_strided=exact[name]))
        log(f"  {name}: S={s:2d} r2 {tuple(u.shape)} aliasing ratio {ar:.4f}, "
            f"shiftability error {se:.4f} (first {t3 - t1:.2f} s, steady "
            f"{ar_s + se_s:.2f} s), max|f(x) - r2[::S]| {exact[name]:.1e}")
    spectra_s = time.perf_counter() - t_spec
    mem["after_spectra"] = common.peak_rss_mib()

    result = dict(
        benchmark="layer_spectra_vgg16", machine=info, padding=args.padding,
        width=width, params=n_params, input=list(x.shape), input_source=source,
        repeat=args.repeat, build_s=build_s,
        strided_taps=dict(compile_s=strided.compile_s, seconds=strided_s,
                          flops=strided.flops),
        undecimate=dict(compile_s=timed.compile_s, first_call_s=first_s,
                        seconds=steady_s, flops=timed.flops,
                        gflops_per_s=timed.flops / steady_s / 1e9,
                        r2_mib=sum(int(np.prod(u.shape)) * 4
                                   for u in r2.values()) / 2 ** 20),
        spectra_seconds_total=spectra_s,
        spectra_steady_seconds=sum(r["aliasing_ratio_s"] + r["shiftability_error_s"]
                                   for r in layers),
        layers=layers)

    layer_spectra = getattr(sigcnn, "layer_spectra", None)
    if layer_spectra is not None and args.layer_spectra_calls > 0:
        net = nnx.merge(graphdef, state)
        calls = []
        for _ in range(args.layer_spectra_calls):
            t0 = time.perf_counter()
            recs = layer_spectra(lambda y: dict(net.taps(y)), x)
            calls.append(time.perf_counter() - t0)
            log(f"sigcnn.layer_spectra: call {len(calls)} took {calls[-1]:.1f} s")
        mem["after_layer_spectra"] = common.peak_rss_mib()
        result["layer_spectra"] = dict(call_seconds=calls,
                                       result=recs.to_dict())
        for rec in recs.layers:
            local = ", ".join(f"{p.primitive}@{p.input_stride[0]}: "
                              f"{p.aliasing_ratio:.3f}" for p in rec.local[-2:])
            log(f"  {rec.name}: S={rec.stride[0]:2d} aliasing ratio "
                f"{rec.aliasing_ratio:.4f}, shiftability error "
                f"{rec.shiftability_error:.4f}; last local ratios: {local}")
    else:
        result["layer_spectra"] = None
        log("sigcnn.layer_spectra not run (not available, or "
            "--layer-spectra-calls 0)")

    stats = jax.devices()[0].memory_stats()
    result["memory"] = dict(peak_rss_mib=mem, device_memory_stats=stats)
    result["load_average_end"] = common.load_average()
    log(f"peak RSS {max(mem.values()):.0f} MiB (after build "
        f"{mem['after_build']:.0f}, after compile {mem['after_compile']:.0f}, after "
        f"undecimate {mem['after_undecimate']:.0f}); device memory stats: {stats}")
    common.write_json(out, result)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
