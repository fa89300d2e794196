"""undecimate / all_shifts on real CNN architectures written outside sigcnn.

For every network of ``tests/_real_nets.py`` (torchvision through torchax, Keras 3
applications, Equinox, Flax linen, Flax NNX) and each of its variants (zero padding as
written; circular padding where the framework allows it) this measures:

* the identity error max |f(x) - r2[:, ::sy, ::sx]| over the outputs of f (a spatial
  tap at stride ~8 and the logits; for logits r2 == f(x)), relative to max |f(x)|;
* max |all_shifts(f, x) - all_shifts(f, x, method="brute")| (exact, to rounding, only
  where f pads circularly everywhere), relative to max |brute|;
* compile time and steady-state time of both methods (``jax.jit(...).lower(x)
  .compile()``; then min over repeats of ``block_until_ready``);
* any NotImplementedError (the construct and source line sigcnn names) or other error,
  recorded per stage without stopping the run.

Usage::

    python benchmarks/bench_real_architectures.py [--quick] [--only SUBSTR ...]
        [--variants zero circular] [--json PATH]

``--quick``: one timed run per method, no warm-up run (the first call after the
ahead-of-time compile). Results go to ``benchmarks/results/real_architectures.json``;
a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import _real_nets  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, load_average, machine_info, peak_rss_mib, write_json  # noqa: E402

import sigcnn as sc  # noqa: E402


def _err(e: BaseException) -> str:
    kind = "refused" if isinstance(e, NotImplementedError) else "error"
    msg = " ".join(str(e).split())
    return f"{kind}: {type(e).__name__}: {msg}"


def _leaves(tree, like):
    """`tree` flattened up to the structure of `like` (stride tuples stay whole)."""
    return jax.tree_util.tree_structure(like).flatten_up_to(tree)


def identity_error(y, r2, stride, x_shape):
    """max |y - r2 sampled at its stride| over leaves, max |y|, and notes on r2 leaves
    that are not at the input resolution (the contract says they should be)."""
    err = scale = 0.0
    notes = []
    for yl, rl, s in zip(jax.tree.leaves(y), _leaves(r2, y), _leaves(stride, y)):
        rl = jnp.asarray(rl)
        s = tuple(int(v) for v in (s if isinstance(s, (tuple, list)) else (s, s)))
        if rl.ndim >= 3 and rl.shape != yl.shape:
            if rl.shape[1:3] != tuple(x_shape[1:3]):
                notes.append(f"r2 leaf {tuple(rl.shape)} not at input resolution "
                             f"{tuple(x_shape[1:3])}")
            rl = rl[:, ::s[0], ::s[1]]
        if rl.shape != yl.shape:
            raise ValueError(f"r2 leaf sampled at {s} has shape {tuple(rl.shape)}, "
                             f"f(x) leaf {tuple(yl.shape)}")
        err = max(err, float(jnp.max(jnp.abs(rl - yl))))
        scale = max(scale, float(jnp.max(jnp.abs(yl))))
    return err, scale, notes


def max_diff(a, b):
    d = m = 0.0
    for al, bl in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        d = max(d, float(jnp.max(jnp.abs(al - bl))))
        m = max(m, float(jnp.max(jnp.abs(bl))))
    return d, m


def _timed_method(f, x, method, *, repeat, warmup):
    t0 = time.perf_counter()
    compiled = jax.jit(lambda x: sc.all_shifts(f, x, method=method)).lower(x).compile()
    compile_s = time.perf_counter() - t0
    if warmup:
        out = jax.block_until_ready(compiled(x))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(x))
        times.append(time.perf_counter() - t0)
    return out, compile_s, min(times)


def measure(key: str, variant: str, *, repeat: int, warmup: bool) -> dict:
    spec = _real_nets.REGISTRY[key]
    row = dict(framework=spec.framework, network=key.split("/", 1)[1], variant=variant,
               key=key, slow=spec.slow)
    reason = _real_nets.available(key)
    if reason:
        row["skipped"] = reason
        return row
    t0 = time.perf_counter()
    try:
        net = _real_nets.build(key, variant)
    except Exception as e:  # noqa: BLE001 - record and go on
        row["build_error"] = _err(e)
        return row
    row.update(name=net.name, input_shape=list(net.x_shape), notes=net.notes,
               build_s=time.perf_counter() - t0)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(net.x_shape), jnp.float32)
    y = jax.jit(net.f)(x)
    row["out_shapes"] = {jax.tree_util.keystr(p): list(v.shape)
                         for p, v in jax.tree_util.tree_leaves_with_path(y)}

    # (a) identity
    t0 = time.perf_counter()
    try:
        r2, stride = sc.undecimate(net.f)(x)
        row["undecimate_s"] = time.perf_counter() - t0
        row["strides"] = {jax.tree_util.keystr(p): [int(v) for v in s]
                          for p, s in zip([p for p, _ in
                                           jax.tree_util.tree_leaves_with_path(y)],
                                          _leaves(stride, y))}
        err, scale, notes = identity_error(y, r2, stride, net.x_shape)
        row.update(identity_err=err, out_max=scale, identity_rel=err / max(1.0, scale))
        if notes:
            row["r2_shape_note"] = "; ".join(notes)
        del r2
    except Exception as e:  # noqa: BLE001
        row["undecimate_error"] = _err(e)
        row["undecimate_traceback"] = traceback.format_exc(limit=-4)

    # (b, c) all shifts, both methods
    outs = {}
    for method in ("atrous", "brute"):
        try:
            out, comp, steady = _timed_method(net.f, x, method, repeat=repeat,
                                              warmup=warmup)
            outs[method] = out
            row[f"{method}_compile_s"] = comp
            row[f"{method}_s"] = steady
        except Exception as e:  # noqa: BLE001
            row[f"{method}_error"] = _err(e)
            row[f"{method}_traceback"] = traceback.format_exc(limit=-4)
    if "brute" in outs:
        leaf = jax.tree.leaves(outs["brute"])[0]
        row["total_stride"] = [int(leaf.shape[1]), int(leaf.shape[2])]
    if len(outs) == 2:
        d, m = max_diff(outs["atrous"], outs["brute"])
        row.update(shifts_diff=d, brute_max=m, shifts_rel=d / max(1.0, m),
                   speedup=row["brute_s"] / row["atrous_s"])
    row["peak_rss_mib"] = peak_rss_mib()
    row["load_average_1min"] = load_average()
    return row


def _fmt(v, spec=".1e"):
    return "" if v is None else format(v, spec)


def markdown(rows) -> str:
    head = ("| framework | network | input | variant | S | identity err (rel) | "
            "max abs atrous-brute (rel) | atrous s | brute s | speed-up | "
            "refusal / error |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        problem = (r.get("skipped") or r.get("build_error") or r.get("undecimate_error")
                   or r.get("atrous_error") or r.get("brute_error") or "")
        if r.get("atrous_error") and r.get("undecimate_error") != r.get("atrous_error") \
                and r.get("undecimate_error"):
            problem = f"undecimate: {r['undecimate_error']}; all_shifts: {r['atrous_error']}"
        if r.get("r2_shape_note"):
            problem = (problem + "; " if problem else "") + r["r2_shape_note"]
        problem = problem.replace("|", "\\|")
        if len(problem) > 260:
            problem = problem[:257] + "..."
        ident = ("" if "identity_err" not in r else
                 f"{r['identity_err']:.1e} ({r['identity_rel']:.1e})")
        diff = ("" if "shifts_diff" not in r else
                f"{r['shifts_diff']:.1e} ({r['shifts_rel']:.1e})")
        s = r.get("total_stride")
        shape = "x".join(str(v) for v in r.get("input_shape", [])[1:3])
        lines.append(
            f"| {r['framework']} | {r['network']} | {shape} | {r['variant']} | "
            f"{'' if not s else f'{s[0]}x{s[1]}'} | {ident} | {diff} | "
            f"{_fmt(r.get('atrous_s'), '.3f')} | {_fmt(r.get('brute_s'), '.3f')} | "
            f"{_fmt(r.get('speedup'), '.1f')} | {problem} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true",
                    help="one timed run per method, no warm-up")
    ap.add_argument("--only", nargs="*", default=None,
                    help="substrings of registry keys to keep (e.g. resnet18 keras/)")
    ap.add_argument("--skip-slow", action="store_true", help="leave out slow networks")
    ap.add_argument("--variants", nargs="*", default=["zero", "circular"])
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "real_architectures.json")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    warmup = not args.quick

    keys = [k for k in _real_nets.REGISTRY
            if (args.only is None or any(s in k for s in args.only))
            and not (args.skip_slow and _real_nets.REGISTRY[k].slow)]
    rows = []
    meta = dict(machine=machine_info(), quick=args.quick, repeat=repeat, warmup=warmup)
    for key in keys:
        for variant in _real_nets.REGISTRY[key].variants:
            if variant not in args.variants:
                continue
            t0 = time.perf_counter()
            row = measure(key, variant, repeat=repeat, warmup=warmup)
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            brief = {k: row.get(k) for k in ("identity_err", "shifts_diff", "atrous_s",
                                             "brute_s")}
            problem = next((row[k] for k in ("skipped", "build_error", "undecimate_error",
                                             "atrous_error", "brute_error") if k in row),
                           "")
            print(f"[{row['wall_s']:6.1f}s] {key}[{variant}] {brief} {problem[:200]}",
                  flush=True)
            write_json(args.json, dict(meta=meta, rows=rows))  # partial results survive
            jax.clear_caches()
    meta["versions"] = _versions()
    write_json(args.json, dict(meta=meta, rows=rows))
    print()
    print(markdown(rows))
    print(f"\nwritten: {args.json}")


def _versions() -> dict:
    from importlib import metadata
    out = {}
    for dist in ("jax", "jaxlib", "flax", "equinox", "keras", "torch", "torchvision",
                 "torchax"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


if __name__ == "__main__":
    main()
