"""All-shift evaluation of small VGG and ResNet models, three ways in one run.

For each model (circular padding, eval mode, global-average-pool head) and input
batch x [N, H, W, 3] with total stride S, the logits at all S x S circular input
shifts are computed by

* ``atrous``: ``sigcnn.atrous.all_shifts(f, x, method="atrous")``, one undecimated
  pass of the trunk, the S^2 polyphase components batched through the head;
* ``brute``: ``all_shifts(f, x, method="brute", chunk=C)``, f vmapped over rolled
  inputs, C shifts at a time (``lax.map``);
* ``loop``: a Python loop over the S^2 shifts calling one jitted single-shift
  function ``f(jnp.roll(x, t))`` with the shift t a traced argument (compiled once).

The model's parameters are passed to every compiled function as arguments (not baked
in as constants). Reported for each: XLA's FLOP count (``cost_analysis()["flops"]``;
XLA counts a loop body once, so the brute count is the chunk body times the number
of chunks, and the loop count is one call times S^2), compile time (trace + lower +
compile) and steady-state time (``min(timeit.repeat(...))`` with
``block_until_ready``) separately, the speed-ups brute/atrous and loop/atrous, the
FLOP ratio brute/atrous (the method's limit), achieved FLOP/s as a fraction of a
float32 2048 x 2048 matmul measured in the same run, and max |atrous - brute|.

Targets (sigcnn issue 3): measured speed-up >= 2/3 of the FLOP ratio for every
model, and >= 8x at S = 16 for the VGG-style models.

Usage (from the repository root, with sigcnn importable):
  python benchmarks/bench_all_shifts.py            # full run, a few minutes
  python benchmarks/bench_all_shifts.py --quick    # smoke test, tiny models
Writes benchmarks/results/all_shifts.json (or all_shifts_quick.json) and the
markdown table all_shifts.md.
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

from sigcnn.atrous import all_shifts  # noqa: E402
from sigcnn.models.resnet import ResNet  # noqa: E402
from sigcnn.models.vgg import VGG, VGG_STAGES  # noqa: E402

PADDING = "circular"
NUM_CLASSES = 10


# --------------------------------------------------------------------------------
# Models. Each entry: name, family, builder(rngs) -> model, batch N, size H, chunk.
# --------------------------------------------------------------------------------

def _vgg(stages, **kw):
    def build(rngs):
        return VGG(stages, head="gap", num_classes=NUM_CLASSES, padding=PADDING,
                   rngs=rngs, **kw)
    return build


def _resnet(depths, widths, *, stem_stride, stem_channels=16):
    def build(rngs):
        return ResNet("basic", depths, widths=widths, stem_channels=stem_channels,
                      stem_kernel=3, stem_stride=stem_stride, stem_pool=True,
                      num_classes=NUM_CLASSES, padding=PADDING, rngs=rngs)
    return build


def _doubling(c0, n):
    """Stages of one conv each, channels doubling: equal FLOPs per strided stage."""
    return tuple((c0 * 2 ** i,) for i in range(n))


FULL = [
    # VGG-style, one 3x3 conv per stage, channels doubling (equal-cost stages).
    dict(name="vgg-eq3", family="vgg", build=_vgg(_doubling(16, 3)), n=4, size=64,
         chunk=4, desc="VGG, 3 stages 16-32-64 (1 conv each)"),
    dict(name="vgg-eq4", family="vgg", build=_vgg(_doubling(16, 4)), n=2, size=64,
         chunk=4, desc="VGG, 4 stages 16-...-128 (1 conv each)"),
    dict(name="vgg-eq5", family="vgg", build=_vgg(_doubling(16, 5)), n=1, size=128,
         chunk=4, desc="VGG, 5 stages 16-...-256 (1 conv each)"),
    # The VGG16 layout (2-2-3-3-3 convs, channels capped) at width 1/8.
    dict(name="vgg16-w0.125", family="vgg",
         build=_vgg(VGG_STAGES["vgg16"], width=0.125), n=1, size=64, chunk=4,
         desc="VGG16 layout, width 1/8 (8-16-32-64-64)"),
    # ResNet18 topology (basic blocks), 3x3 stem + 3x3/2 max pool.
    dict(name="resnet-s8", family="resnet",
         build=_resnet((2, 2, 2), (16, 32, 64), stem_stride=1), n=4, size=64,
         chunk=16, desc="ResNet, basic (2,2,2), 16-32-64, stem s1 + pool"),
    dict(name="resnet-s16", family="resnet",
         build=_resnet((2, 2, 2, 2), (16, 32, 64, 128), stem_stride=1), n=2,
         size=64, chunk=16, desc="ResNet18 topology 16-...-128, stem s1 + pool "
         "(= resnet_small)"),
    dict(name="resnet-s32", family="resnet",
         build=_resnet((2, 2, 2, 2), (16, 32, 64, 128), stem_stride=2), n=1,
         size=128, chunk=16, desc="ResNet18 topology 16-...-128, stem s2 + pool "
         "(torchvision stem)"),
]

QUICK = [
    dict(name="vgg-eq3", family="vgg", build=_vgg(_doubling(4, 3)), n=1, size=16,
         chunk=4, desc="tiny VGG, 3 stages 4-8-16"),
    dict(name="resnet-s8", family="resnet",
         build=_resnet((1, 1, 1), (4, 8, 16), stem_stride=1, stem_channels=4),
         n=1, size=16, chunk=8, desc="tiny ResNet, (1,1,1), 4-8-16"),
]


# --------------------------------------------------------------------------------
# One model, three ways.
# --------------------------------------------------------------------------------

def _steady(call, *, repeat, budget_s):
    """min wall and min process CPU seconds over repeats (>= 2; fewer when long).

    The CPU time (all threads of this process) is less sensitive than the wall
    time to other processes sharing the cores.
    """
    t0 = time.perf_counter()
    first = jax.block_until_ready(call())
    warm = time.perf_counter() - t0
    reps = max(2, min(repeat, int(budget_s / max(warm, 1e-6))))
    times, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(times), min(cpu), reps, first


def run_model(cfg, *, repeat, budget_s, log, profile=True):
    model = cfg["build"](nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    stride = int(model.total_stride)
    n, size = cfg["n"], cfg["size"]
    if size % stride:
        raise SystemExit(f"{cfg['name']}: S={stride} does not divide H={size}")
    x = jax.random.normal(jax.random.key(1), (n, size, size, 3), jnp.float32)
    num_shifts = stride * stride
    chunk = min(cfg["chunk"], num_shifts)
    if num_shifts % chunk:
        raise SystemExit(f"{cfg['name']}: chunk {chunk} must divide S^2")
    params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state))

    def atrous(st, xx):
        net = nnx.merge(graphdef, st)
        return all_shifts(lambda y: net(y), xx, method="atrous")

    def brute(st, xx):
        net = nnx.merge(graphdef, st)
        return all_shifts(lambda y: net(y), xx, method="brute", chunk=chunk)

    def single(st, xx, t):
        net = nnx.merge(graphdef, st)
        return net(jnp.roll(xx, (t[0], t[1]), axis=(1, 2)))

    shifts = [jnp.asarray([ty, tx], jnp.int32)
              for ty in range(stride) for tx in range(stride)]
    row = dict(name=cfg["name"], family=cfg["family"], desc=cfg["desc"],
               stride=stride, shape=[n, size, size, 3], num_shifts=num_shifts,
               chunk=chunk, params=params, padding=PADDING)
    outs = {}

    log(f"[{cfg['name']}] S={stride} x={tuple(x.shape)} params={params:,} "
        f"load={common.load_average():.1f}")
    # atrous
    ta = common.compile_fn(atrous, state, x)
    log(f"  atrous compiled in {ta.compile_s:.1f} s, {ta.flops / 1e9:.2f} GFLOP")
    sec, cpu, reps, outs["atrous"] = _steady(lambda: ta(state, x), repeat=repeat,
                                        budget_s=budget_s)
    row["atrous"] = dict(flops=ta.flops, compile_s=ta.compile_s, seconds=sec,
                         cpu_seconds=cpu, repeats=reps)
    log(f"  atrous  {sec:8.3f} s, cpu {cpu:8.3f} s  (min of {reps})")
    if profile:
        prof = common.profile_breakdown(ta, state, x)
        row["atrous"]["profile"] = prof
        if "per_run_ms" in prof:
            parts = ", ".join(f"{k} {v:.1f} ms" for k, v in prof["per_run_ms"].items()
                              if v >= 0.05)
            log(f"  atrous profile per call: {parts}")
            for t in prof["top"][:3]:
                log(f"    {t['ms']:8.1f} ms  {t['op']} -> {t['shape']}")
    # brute
    tb = common.compile_fn(brute, state, x)
    bflops = tb.flops * (num_shifts // chunk)
    log(f"  brute compiled in {tb.compile_s:.1f} s, {bflops / 1e9:.2f} GFLOP")
    sec, cpu, reps, outs["brute"] = _steady(lambda: tb(state, x), repeat=repeat,
                                       budget_s=budget_s)
    row["brute"] = dict(flops=bflops, flops_xla_raw=tb.flops, compile_s=tb.compile_s,
                        seconds=sec, cpu_seconds=cpu, repeats=reps)
    log(f"  brute   {sec:8.3f} s, cpu {cpu:8.3f} s  (min of {reps})")
    # Python loop over a jitted single-shift call
    tl = common.compile_fn(single, state, x, shifts[0])
    lflops = tl.flops * num_shifts

    def loop():
        return [tl(state, x, t) for t in shifts]

    log(f"  loop compiled in {tl.compile_s:.1f} s, {lflops / 1e9:.2f} GFLOP")
    sec, cpu, reps, res = _steady(loop, repeat=repeat, budget_s=budget_s)
    outs["loop"] = jnp.stack(res, axis=1).reshape(
        (n, stride, stride) + res[0].shape[1:])
    row["loop"] = dict(flops=lflops, flops_per_call=tl.flops, compile_s=tl.compile_s,
                       seconds=sec, cpu_seconds=cpu, repeats=reps)
    log(f"  loop    {sec:8.3f} s, cpu {cpu:8.3f} s  (min of {reps})")

    ref = np.asarray(outs["brute"], np.float64)
    row["logit_rms"] = float(np.sqrt(np.mean(ref ** 2)))
    row["max_abs_diff_atrous_brute"] = float(
        np.max(np.abs(np.asarray(outs["atrous"], np.float64) - ref)))
    row["max_abs_diff_loop_brute"] = float(
        np.max(np.abs(np.asarray(outs["loop"], np.float64) - ref)))
    a = row["atrous"]
    row["flop_ratio"] = row["brute"]["flops"] / a["flops"]
    row["speedup_brute"] = row["brute"]["seconds"] / a["seconds"]
    row["speedup_loop"] = row["loop"]["seconds"] / a["seconds"]
    row["cpu_speedup_brute"] = row["brute"]["cpu_seconds"] / a["cpu_seconds"]
    row["cpu_speedup_loop"] = row["loop"]["cpu_seconds"] / a["cpu_seconds"]
    row["target_speedup"] = 2.0 / 3.0 * row["flop_ratio"]
    if cfg["family"] == "vgg" and stride == 16:
        row["target_speedup"] = max(row["target_speedup"], 8.0)
    row["target_met"] = bool(row["speedup_brute"] >= row["target_speedup"])
    row["target_met_vs_loop"] = bool(row["speedup_loop"] >= row["target_speedup"])
    row["load_average_1min"] = common.load_average()
    log(f"  FLOP ratio {row['flop_ratio']:.1f}x, speed-up brute/atrous "
        f"{row['speedup_brute']:.1f}x, loop/atrous {row['speedup_loop']:.1f}x, "
        f"max|atrous-brute| {row['max_abs_diff_atrous_brute']:.2e}")
    return row


def _fraction(row, method, peak):
    r = row[method]
    return r["flops"] / r["seconds"] / (peak * 1e9)


def _g(v):
    """Compact number: 3 significant digits."""
    return f"{v:.3g}"


def table(rows, peak) -> str:
    """Markdown table of the rows (times in seconds, FLOPs in GFLOP)."""
    cols = ["model", "S", "x (N,H,W,C)", "GFLOP atrous / brute", "FLOP ratio",
            "time s atrous / brute / loop", "speed-up brute/atrous",
            "speed-up loop/atrous", "target", "met vs brute / loop",
            "CPU-time speed-up brute / loop", "% of peak atrous / brute / loop",
            "compile s atrous / brute / loop", "max abs diff"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        n, h, w, c = r["shape"]
        pct = " / ".join(f"{100 * _fraction(r, m, peak):.0f}"
                         for m in ("atrous", "brute", "loop"))
        comp = " / ".join(f"{r[m]['compile_s']:.1f}"
                          for m in ("atrous", "brute", "loop"))
        secs = " / ".join(_g(r[m]["seconds"]) for m in ("atrous", "brute", "loop"))
        cells = [
            r["name"], str(r["stride"]), f"{n},{h},{w},{c}",
            f"{_g(r['atrous']['flops'] / 1e9)} / {_g(r['brute']['flops'] / 1e9)}",
            f"{r['flop_ratio']:.1f}", secs, f"{r['speedup_brute']:.1f}x",
            f"{r['speedup_loop']:.1f}x", f"{r['target_speedup']:.1f}x",
            " / ".join("yes" if r[k] else "**no**"
                       for k in ("target_met", "target_met_vs_loop")),
            f"{r['cpu_speedup_brute']:.1f}x / {r['cpu_speedup_loop']:.1f}x",
            pct, comp, f"{r['max_abs_diff_atrous_brute']:.1e}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test sizes (seconds)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timing repeats (fewer for runs longer than --budget)")
    parser.add_argument("--budget", type=float, default=12.0,
                        help="seconds of timing per method and model (>= 2 runs)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="names of the models to run (default: all)")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the per-operation profile of the atrous call")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    configs = QUICK if args.quick else FULL
    if args.only:
        configs = [c for c in configs if c["name"] in args.only]
    out = args.out or common.RESULTS / ("all_shifts_quick.json" if args.quick
                                        else "all_shifts.json")

    def log(msg):
        print(msg, flush=True)

    info = common.machine_info()
    log(f"all-shift benchmark on {info['cpu']} ({info['cpu_count']} cores), "
        f"jax {info['jax']}, load {info['load_average_1min']:.1f}")
    peak = common.matmul_peak(repeat=10)
    log(f"matmul peak (f32 2048^2): {peak['gflops_per_s']:.1f} GFLOP/s")
    rows = []
    t0 = time.perf_counter()
    for cfg in configs:
        rows.append(run_model(cfg, repeat=args.repeat, budget_s=args.budget,
                              log=log, profile=not args.no_profile))
    peak_end = common.matmul_peak(repeat=10)
    log(f"matmul peak at the end: {peak_end['gflops_per_s']:.1f} GFLOP/s")
    best_peak = max(peak["gflops_per_s"], peak_end["gflops_per_s"])
    for r in rows:
        for m in ("atrous", "brute", "loop"):
            r[m]["gflops_per_s"] = r[m]["flops"] / r[m]["seconds"] / 1e9
            r[m]["fraction_of_peak"] = r[m]["gflops_per_s"] / best_peak
    md = table(rows, best_peak)
    log("")
    log(md)
    result = dict(benchmark="all_shifts", quick=args.quick, machine=info,
                  matmul_peak=[peak, peak_end], peak_gflops_per_s=best_peak,
                  total_seconds=time.perf_counter() - t0,
                  load_average_end=common.load_average(), rows=rows)
    common.write_json(out, result)
    legend = (
        "\nTimes are steady-state seconds (min over repeats) for all S^2 shifts of "
        "the batch; FLOPs from XLA's cost analysis; FLOP ratio = brute / atrous; "
        "target = 2/3 of the FLOP ratio (at least 8x for VGG-style models at "
        "S = 16); CPU-time speed-ups use process CPU seconds; % of peak = "
        "achieved FLOP/s over the float32 2048^2 matmul measured in the same run; "
        "max abs diff = max |atrous - brute| over all logits (circular padding).\n")
    note = legend + (f"\nCPU: {info['cpu']}, {info['cpu_count']} cores; jax {info['jax']}; "
            f"{info['date']}; matmul peak {best_peak:.0f} GFLOP/s; load average "
            f"{info['load_average_1min']:.1f} at start, "
            f"{result['load_average_end']:.1f} at end.\n")
    md_path = out.with_suffix(".md")
    md_path.write_text(md + "\n" + note, encoding="utf-8")
    log(f"wrote {out} and {md_path}")


if __name__ == "__main__":
    main()
