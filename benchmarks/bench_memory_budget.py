"""`all_shifts(..., max_bytes=B)`: the measured peak memory against the budget.

For each budget B, a fresh Python process builds a circular `vgg_small` (its
logits at all shifts of its total stride, atrous) and a batch of images, calls
``all_shifts(f, x, max_bytes=B)`` once to compile, then once more while a thread
samples the process's resident memory (``/proc/self/statm``) every millisecond.
The measured peak is the largest resident size during that second call minus the
size just before it. glibc's allocator is told to map every buffer of 128 KiB or
more on its own (``MALLOC_MMAP_THRESHOLD_``), so that freed buffers leave the
resident size at once and it tracks the live buffers.

The budget bounds one compiled call; the leaves returned for all N images come
on top (they are allocated chunk by chunk, then concatenated); logits keep them
small. The table gives the chunk chosen, XLA's estimate for one call of that
chunk, the measured peak and the measured peak minus the returned leaves (twice:
the chunks' pieces and their concatenation are both alive at the end), which is
what the budget bounds.

Usage (with sigcnn installed, or ``PYTHONPATH=.`` from the repository root):
  python benchmarks/bench_memory_budget.py [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE


class _Sampler:
    def __init__(self):
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _child(n: int, size: int, budget: int | None) -> dict:
    import gc

    import jax
    import jax.numpy as jnp
    import numpy as np

    import sigcnn.models as M
    from sigcnn.atrous import every_shift as es

    model = M.create("vgg_small", key=0, in_channels=3, padding="circular")
    model.eval()
    f = model                                   # logits: the outputs are small
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n, size, size, 3)),
                    jnp.float32)
    out = es.all_shifts(f, x, max_bytes=budget)
    jax.block_until_ready(out)
    out_bytes = int(out.nbytes)
    del out
    gc.collect()
    time.sleep(0.2)
    before = _rss()
    t0 = time.perf_counter()
    with _Sampler() as s:
        out = jax.block_until_ready(es.all_shifts(f, x, max_bytes=budget))
    seconds = time.perf_counter() - t0
    plan = ("atrous", np.stack(np.meshgrid(np.arange(out.shape[1]),
                                           np.arange(out.shape[2]), indexing="ij"),
                               -1).reshape(-1, 2).astype(np.int64),
            tuple(out.shape[1:3]), None, es.Tiling(), None)
    one = es._peak_bytes(f, x[:1], plan, None)[0]
    chunk = n
    if budget is not None:     # the chunk all_shifts chose
        chunk = es._by_budget(f, x, plan, budget, None)[1].shape[0]
    return dict(budget=budget, chunk=chunk, grid=list(out.shape[1:3]), one=one,
                calls=-(-n // chunk),
                estimate=es._peak_bytes(f, x[:chunk], plan, None)[0],
                measured=s.peak - before, outputs=out_bytes, seconds=seconds)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="16 images at 32x32")
    p.add_argument("--out", default=str(common.RESULTS / "memory_budget.json"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        n, size, budget = args.child
        print(json.dumps(_child(int(n), int(size), None if budget == "none"
                                else int(budget))))
        return
    n, size = (16, 32) if args.quick else (32, 64)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")

    def run(budget):
        cmd = [sys.executable, __file__, "--child", str(n), str(size),
               "none" if budget is None else str(budget)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    rows = [run(None)]
    full, one = rows[0]["estimate"], rows[0]["one"]
    for frac in (0.5, 0.25, 0.05):      # between one image and the whole batch
        rows.append(run(int(one + frac * (full - one))))
    mib = 2 ** 20
    gy, gx = rows[0]["grid"]
    print(f"vgg_small circular, logits at all {gy}x{gx} shifts, atrous, "
          f"x = ({n}, {size}, {size}, 3)")
    print("| budget MiB | chunk | calls | estimate MiB | measured peak MiB | "
          "peak - 2 x outputs MiB | within budget | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = "none" if r["budget"] is None else f"{r['budget'] / mib:.1f}"
        net = r["measured"] - 2 * r["outputs"]
        ok = "–" if r["budget"] is None else ("yes" if net <= r["budget"] else "no")
        print(f"| {b} | {r['chunk']} | {r['calls']} | {r['estimate'] / mib:.1f} | "
              f"{r['measured'] / mib:.1f} | {net / mib:.1f} | {ok} | "
              f"{r['seconds']:.2f} |")
    common.write_json(Path(args.out), dict(machine=common.machine_info(),
                                           n=n, size=size, rows=rows))


if __name__ == "__main__":
    main()
