"""`undecimate` of VGG16 (width 1.0) in each convolution form, against the matmul peak.

Builds VGG16 in torchvision's layout (138,357,544 parameters, random weights,
circular padding by default) and compiles ``sigcnn.atrous.undecimate`` of its five
block outputs on one 224 x 224 image once per form of the undecimated
convolutions (``Tiling(form=...)``: "dilated", "polyphase", "matmul", and "auto",
the library's default; :mod:`sigcnn.atrous.conv_forms`). Then, in each of
``--rounds`` rounds, it measures the float32 matmul peak, times every form once
(``block_until_ready``, with the process's user and system CPU seconds and minor
page faults), and measures the peak again: the machine is shared, so each form's
share of the peak is taken against the peaks of its own round. Reported per form:
compile time, best steady time, GFLOP/s (XLA's FLOP count of the untiled dilated
program), % of the peak, CPU seconds, page faults, max |r2 - r2(dilated)| and max
|f(x) - r2[::S]| over the taps. ``--profile`` adds the per-operation breakdown
(`common.profile_breakdown`) of each form.

Usage (from the repository root, with sigcnn importable):
  python benchmarks/bench_undecimate_vgg16.py [--forms dilated,polyphase,matmul,auto]
      [--rounds 2] [--padding circular] [--profile] [--quick]
Writes benchmarks/results/undecimate_vgg16_<padding>.json.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmark helper beside this script)
from bench_layer_spectra_vgg16 import load_input  # noqa: E402

from sigcnn import models  # noqa: E402
from sigcnn.atrous import Tiling, undecimate  # noqa: E402


def _usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return np.array([r.ru_utime, r.ru_stime, r.ru_minflt], np.float64)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", default="dilated,polyphase,matmul,auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--padding", choices=("circular", "zero"),
                        default="circular")
    parser.add_argument("--image", default="astronaut")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="width 1/8 and a 64 x 64 input (smoke test)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    forms = args.forms.split(",")
    width, size = (0.125, 64) if args.quick else (1.0, 224)
    tag = f"{args.padding}{'_quick' if args.quick else ''}"
    out = args.out or common.RESULTS / f"undecimate_vgg16_{tag}.json"

    def log(msg):
        print(msg, flush=True)

    info = common.machine_info()
    log(f"VGG16 width {width} undecimate per form on {info['cpu']} "
        f"({info['cpu_count']} cores), jax {info['jax']}, backend "
        f"{info['backend']}, load {info['load_average_1min']:.1f}")
    model = models.create("vgg16", key=0, width=width, padding=args.padding)
    model.eval()
    graphdef, state = nnx.split(model)
    x = jnp.asarray(load_input(args.image, size)[0])

    def program(tiling):
        def und(st, xx):
            net = nnx.merge(graphdef, st)
            return undecimate(lambda y: dict(net.taps(y)), tiling=tiling)(xx)[0]
        return und

    def taps(st, xx):
        return dict(nnx.merge(graphdef, st).taps(xx))

    flops = common.flops(jax.jit(program(Tiling(positions=0, form="dilated")))
                         .lower(state, x))
    log(f"{flops / 1e9:.1f} GFLOP (XLA's count of the untiled dilated program)")
    ref = jax.jit(taps)(state, x)
    strides = model.tap_strides()

    compiled, rows = {}, {}
    for form in forms:
        t0 = time.perf_counter()
        c = jax.jit(program(Tiling(form=form))).lower(state, x).compile()
        compile_s = time.perf_counter() - t0
        u0 = _usage()
        t0 = time.perf_counter()
        r2 = jax.block_until_ready(c(state, x))
        first_s = time.perf_counter() - t0
        u1 = _usage()
        if form == forms[0]:
            base = r2
        exact = max(float(jnp.max(jnp.abs(r2[k][:, ::strides[k], ::strides[k]]
                                          - ref[k]))) for k in ref)
        diff = max(float(jnp.max(jnp.abs(r2[k] - base[k]))) for k in ref)
        scale = max(float(jnp.max(jnp.abs(base[k]))) for k in ref)
        del r2
        compiled[form] = c
        rows[form] = dict(compile_s=compile_s, first_call_s=first_s,
                          first_call_user_s=u1[0] - u0[0],
                          first_call_system_s=u1[1] - u0[1],
                          first_call_minor_faults=int(u1[2] - u0[2]),
                          max_abs_diff_vs_first_form=diff,
                          max_abs_r2=scale, max_abs_diff_strided=exact,
                          seconds=[], user_s=[], system_s=[], minor_faults=[],
                          peaks=[], loads=[])
        log(f"{form:9s} compile {compile_s:5.1f} s, first call {first_s:6.2f} s; "
            f"max |r2 - r2({forms[0]})| {diff:.1e} (max |r2| {scale:.1e}), "
            f"max |f(x) - r2[::S]| {exact:.1e}")

    rounds = []
    for k in range(args.rounds):
        before = common.matmul_peak(repeat=5)
        times = {}
        for form in forms:
            u0 = _usage()
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[form](state, x))
            times[form] = time.perf_counter() - t0
            u1 = _usage()
            row = rows[form]
            row["seconds"].append(times[form])
            row["user_s"].append(u1[0] - u0[0])
            row["system_s"].append(u1[1] - u0[1])
            row["minor_faults"].append(int(u1[2] - u0[2]))
            row["loads"].append(common.load_average())
        after = common.matmul_peak(repeat=5)
        peak = statistics.mean([before["gflops_per_s"], after["gflops_per_s"]])
        for form in forms:
            rows[form]["peaks"].append(peak)
        rounds.append(dict(peak_before=before, peak_after=after, seconds=times))
        log(f"round {k + 1}: peak {before['gflops_per_s']:.0f} / "
            f"{after['gflops_per_s']:.0f} GFLOP/s (load "
            f"{before['load_average_1min']:.1f} / {after['load_average_1min']:.1f}); "
            + ", ".join(f"{f} {t:.2f} s ({flops / t / 1e9 / peak:.0%})"
                        for f, t in times.items()))

    log("form       compile s  steady s  GFLOP/s  % of peak  user s  sys s  "
        "faults")
    for form in forms:
        row = rows[form]
        best = int(np.argmin(row["seconds"]))
        row["best_seconds"] = row["seconds"][best]
        row["gflops_per_s"] = flops / row["best_seconds"] / 1e9
        row["peak_gflops_per_s"] = row["peaks"][best]
        row["percent_of_peak"] = 100 * row["gflops_per_s"] / row["peaks"][best]
        log(f"{form:9s} {row['compile_s']:9.1f} {row['best_seconds']:9.2f} "
            f"{row['gflops_per_s']:8.1f} {row['percent_of_peak']:9.0f}% "
            f"{row['user_s'][best]:7.1f} {row['system_s'][best]:6.1f} "
            f"{row['minor_faults'][best]:8d}")
        if args.profile:
            timed = common.Timed(compiled[form], row["compile_s"])
            row["profile"] = common.profile_breakdown(timed, state, x, runs=1)
            log(f"  profile: {row['profile'].get('per_run_ms')}")

    common.write_json(out, dict(
        benchmark="undecimate_vgg16", machine=info, padding=args.padding,
        width=width, input=list(x.shape), flops=flops, forms=rows, rounds=rounds,
        load_average_end=common.load_average()))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
