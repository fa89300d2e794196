"""Shared helpers of the benchmark scripts: timing, XLA FLOP counts, machine info.

Timing follows one protocol everywhere: a function is jitted and compiled ahead of
time (``jax.jit(fn).lower(*args).compile()``, the compile time), called once to warm
up, then timed in steady state as ``min(timeit.repeat(..., number=1, repeat=R))``
with ``jax.block_until_ready`` on the whole output pytree. FLOPs are XLA's own count
(``compiled.cost_analysis()["flops"]``); note that XLA counts the body of a loop
(``lax.map``, ``lax.scan``, ``while``) once, whatever its trip count.

This module is not part of the sigcnn package; the scripts beside it import it.
"""

from __future__ import annotations

import collections
import datetime
import glob
import gzip
import json
import os
import platform
import re
import resource
import tempfile
import time
import timeit
from pathlib import Path

import jax
import jax.numpy as jnp

__all__ = [
    "RESULTS",
    "Timed",
    "compile_fn",
    "flops",
    "load_average",
    "machine_info",
    "matmul_peak",
    "peak_rss_mib",
    "profile_breakdown",
    "steady",
    "write_json",
]

RESULTS = Path(__file__).resolve().parent / "results"


def load_average() -> float:
    """The 1-minute load average of the machine (other processes included)."""
    return float(os.getloadavg()[0])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, core count, JAX version and backend, date, load average."""
    dev = jax.devices()[0]
    return dict(
        cpu=_cpu_model(), cpu_count=os.cpu_count(),
        affinity=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        machine=platform.machine(), python=platform.python_version(),
        jax=jax.__version__, backend=dev.platform, device=str(dev.device_kind),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        load_average_1min=load_average())


class Timed:
    """A compiled function with its compile time and XLA FLOP count."""

    def __init__(self, compiled, compile_s: float):
        self.compiled = compiled
        self.compile_s = compile_s
        self.flops = flops(compiled)

    def __call__(self, *args):
        return self.compiled(*args)


def flops(compiled) -> float:
    """XLA's FLOP count of a compiled (or lowered) function (NaN when unavailable)."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def compile_fn(fn, *args) -> Timed:
    """Jits, traces, lowers and compiles `fn` for `args`; times all of it.

    The FLOP count is taken from a second lowering with sigcnn's CPU tiling of
    undecimated convolutions switched off: tiles in a loop would otherwise be
    counted once (the arithmetic is the same either way).
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    timed = Timed(compiled, time.perf_counter() - t0)
    timed.flops = untiled_flops(fn, *args)
    return timed


def untiled_flops(fn, *args) -> float:
    """XLA's FLOP count of `fn` lowered with every convolution in one call, in the
    dilated form."""
    import os

    # The default Tiling() reads these: one call per convolution, as a
    # convolution (not as matrix products), so every form counts alike.
    env = {"SIGCNN_TILE_POSITIONS": "0", "SIGCNN_CONV_FORM": "dilated"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # A fresh wrapper: jax.jit caches traces per function object.
        return flops(jax.jit(lambda *a: fn(*a)).lower(*args))
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def steady(call, *, repeat: int, warmup: bool = True) -> float:
    """Steady-state seconds of `call()` (min over `repeat` runs, after a warm-up)."""
    if warmup:
        jax.block_until_ready(call())
    return min(timeit.repeat(lambda: jax.block_until_ready(call()), number=1,
                             repeat=repeat))


def matmul_peak(*, n: int = 2048, repeat: int = 10) -> dict:
    """Measured float32 [n, n] @ [n, n] throughput, the machine's reference peak."""
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_a, (n, n), jnp.float32)
    b = jax.random.normal(key_b, (n, n), jnp.float32)
    timed = compile_fn(lambda p, q: p @ q, a, b)
    cpu0 = time.process_time()
    seconds = steady(lambda: timed(a, b), repeat=repeat)
    cpu_s = (time.process_time() - cpu0) / (repeat + 1)  # the warm-up counts too
    return dict(n=n, seconds=seconds, flops=2.0 * n ** 3,
                gflops_per_s=2.0 * n ** 3 / seconds / 1e9,
                cpu_seconds_per_call=cpu_s,
                load_average_1min=load_average())


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (ru_maxrss, Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_json(path: Path, obj) -> Path:
    """Writes `obj` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    return path


def _category(name: str, hlo_line: str) -> str:
    """Kind of an XLA thunk, from its HLO line (op and source op name)."""
    m = re.search(r'op_name="([^"]*)"', hlo_line)
    src = m.group(1).rsplit("/", 1)[-1] if m else ""
    text = f"{name} {src} {hlo_line.split(', metadata', 1)[0]}"
    if "conv_general_dilated" in text or "convolution(" in text:
        return "conv"
    if "dot_general" in text or " dot(" in text:
        return "dot"
    if "reduce-window" in text or "reduce_window" in text:
        return "reduce-window (pooling)"
    if "gather" in text:
        return "gather"
    if any(k in text for k in ("concatenate", "slice", "pad")):
        return "slice/concat/pad (padding)"
    return "other (elementwise, reductions)"


def profile_breakdown(timed: Timed, *args, runs: int = 2, top: int = 8) -> dict:
    """Per-operation time of one compiled call, from the JAX profiler's trace.

    Runs `timed(*args)` `runs` times under ``jax.profiler``, reads the Perfetto
    trace, and sums the duration of each XLA CPU thunk (fusion or op), grouped by
    kind (convolutions and dots, pooling, padding copies, gathers, other).

    Returns:
      dict with ``per_run_ms`` (kind -> ms per call), ``top`` (the `top` slowest
      thunks: name, ms per call, HLO output shape and source op) and
      ``thunk_total_ms``; ``{"error": ...}`` if the trace cannot be read.
    """
    hlo = timed.compiled.as_text()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            jax.profiler.start_trace(tmp, create_perfetto_trace=True)
            for _ in range(runs):
                jax.block_until_ready(timed(*args))
        finally:
            jax.profiler.stop_trace()
        files = glob.glob(os.path.join(tmp, "**", "perfetto_trace.json.gz"),
                          recursive=True)
        if not files:
            return {"error": "no perfetto trace written"}
        with gzip.open(files[0], "rt", encoding="utf-8") as fh:
            trace = json.load(fh)
    names = set(re.findall(r"^\s*(?:ROOT )?%([\w.\-]+) = ", hlo, flags=re.M))
    per = collections.Counter()
    for ev in trace.get("traceEvents", []):
        if ev.get("ph") == "X" and ev.get("name") in names:
            per[ev["name"]] += ev.get("dur", 0) / 1e3 / runs
    if not per:
        return {"error": "no XLA thunks found in the trace"}
    lines = {}
    for name in per:
        m = re.search(r"^\s*(?:ROOT )?%" + re.escape(name) + r" = (.*)$", hlo,
                      flags=re.M)
        lines[name] = m.group(1) if m else ""
    kinds = collections.Counter()
    for name, ms in per.items():
        kinds[_category(name, lines[name])] += ms
    top_rows = []
    for name, ms in per.most_common(top):
        line = lines[name]
        shape = line.split(" ", 1)[0]
        op = re.search(r'op_name="([^"]*)"', line)
        top_rows.append(dict(name=name, ms=ms, shape=shape,
                             op=op.group(1).rsplit("/", 1)[-1] if op else ""))
    return dict(per_run_ms=dict(kinds.most_common()), top=top_rows,
                thunk_total_ms=sum(per.values()), runs=runs)
