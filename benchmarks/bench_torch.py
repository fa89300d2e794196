"""All circular shifts of a torchvision network: PyTorch brute force vs sigcnn.

What users pick today is PyTorch brute force: roll the input batch by every shift
(ty, tx) in 0..S-1 and run the network on the rolled batches, batched as a user
would write it (``torch.roll`` of a chunk of shifts stacked on the batch axis,
``torch.inference_mode``). sigcnn imports the same module with
``sigcnn.interop.from_torch`` and evaluates ``all_shifts(f, x)`` (atrous, exact for
circular padding) in one process. Both are timed in steady state (min over repeats,
after one warm-up call: PyTorch's is the reference call; sigcnn runs under
``jax.jit`` so that f is traced once, with the first call and an unjitted call,
which traces f again, reported apart), and the largest
difference of the logits is reported relative to their largest magnitude (equal to
rounding with circular padding).

Networks: torchvision ResNet-18 and VGG-11 with random weights, every padded
convolution switched to ``padding_mode="circular"`` and padded max pools replaced by
a circular pad and the unpadded pool, so that every shift is exactly a polyphase
component of one undecimated response.

Usage::

    python benchmarks/bench_torch.py [--size 224] [--images 2] [--nets resnet18 vgg11]
        [--chunk 16] [--repeat 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, load_average, machine_info, write_json  # noqa: E402

import sigcnn as sc  # noqa: E402
from sigcnn.interop import from_torch  # noqa: E402
from sigcnn.interop._torch_env import import_torch, import_torchvision  # noqa: E402


def _circular(torch, model):
    """Circular padding everywhere: convs by padding_mode, padded max pools as a
    circular pad followed by the unpadded pool."""
    F = torch.nn.functional

    class CircularPool(torch.nn.Module):
        def __init__(self, pool):
            super().__init__()
            p = pool.padding if isinstance(pool.padding, tuple) else (pool.padding,) * 2
            self.pad = (p[1], p[1], p[0], p[0])
            self.pool = torch.nn.MaxPool2d(pool.kernel_size, pool.stride, 0,
                                           pool.dilation, ceil_mode=pool.ceil_mode)

        def forward(self, x):
            return self.pool(F.pad(x, self.pad, mode="circular"))

    for name, m in list(model.named_modules()):
        if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in m.padding):
            m.padding_mode = "circular"
        if isinstance(m, torch.nn.MaxPool2d) and m.padding not in (0, (0, 0)):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name \
                else model
            setattr(parent, name.rpartition(".")[2], CircularPool(m))
    return model.eval()


def torch_all_shifts(torch, model, x, stride, chunk):
    """[N, S, S, K] logits of model on every roll of x (NCHW), in chunks of shifts."""
    shifts = [(ty, tx) for ty in range(stride) for tx in range(stride)]
    out = []
    with torch.inference_mode():
        for i in range(0, len(shifts), chunk):
            part = shifts[i:i + chunk]
            batch = torch.cat([torch.roll(x, t, dims=(2, 3)) for t in part])
            out.append(model(batch).reshape(len(part), x.shape[0], -1))
    y = torch.cat(out).permute(1, 0, 2)
    return y.reshape(x.shape[0], stride, stride, -1)


def _best(fn, repeat, *, warmup=True):
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--nets", nargs="+", default=["resnet18", "vgg11"])
    ap.add_argument("--chunk", type=int, default=16, help="shifts per torch batch")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, default=RESULTS / "torch_all_shifts.json")
    args = ap.parse_args(argv)

    torch, _ = import_torch()
    tv = import_torchvision()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.images, args.size, args.size, 3)).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    rows = []
    for name in args.nets:
        torch.manual_seed(0)
        model = _circular(torch, getattr(tv.models, name)(weights=None))
        apply, params = from_torch(model)
        f = functools.partial(apply, params)
        t = time.perf_counter()
        atrous = jax.block_until_ready(sc.all_shifts(f, jnp.asarray(x)))  # + compile
        first = time.perf_counter() - t
        stride = atrous.shape[1]
        # all_shifts traces f on every call (torchax's trace of a torchvision model
        # takes seconds); inside jax.jit the trace happens once.
        per_call = _best(lambda: jax.block_until_ready(
            sc.all_shifts(f, jnp.asarray(x))), args.repeat, warmup=False)
        jitted = jax.jit(lambda z: sc.all_shifts(f, z))
        xj = jnp.asarray(x)
        t = time.perf_counter()
        jax.block_until_ready(jitted(xj))
        jit_first = time.perf_counter() - t
        steady_atrous = _best(lambda: jax.block_until_ready(jitted(xj)), args.repeat,
                              warmup=False)  # the first jitted call warmed it up
        ref = torch_all_shifts(torch, model, xt, stride, args.chunk).numpy()
        steady_torch = _best(lambda: torch_all_shifts(torch, model, xt, stride,
                                                      args.chunk), args.repeat,
                             warmup=False)  # computing `ref` warmed it up
        diff = float(np.max(np.abs(np.asarray(atrous) - ref)))
        row = dict(network=name, size=args.size, images=args.images, stride=stride,
                   shifts=stride * stride, torch_s=steady_torch,
                   sigcnn_s=steady_atrous, sigcnn_first_call_s=first,
                   sigcnn_per_call_s=per_call, sigcnn_jit_first_s=jit_first,
                   speedup=steady_torch / steady_atrous, max_abs_diff=diff,
                   max_abs_logit=float(np.max(np.abs(ref))),
                   load_average_1min=load_average())
        print(row, flush=True)
        rows.append(row)
    print("\n| network | input | images | shifts | PyTorch brute s | sigcnn atrous s "
          "(jitted) | speed-up | sigcnn per call s (traces f) | sigcnn first call s "
          "| max abs diff (rel) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['size']}² | {r['images']} | {r['shifts']} | "
              f"{r['torch_s']:.2f} | {r['sigcnn_s']:.2f} | {r['speedup']:.1f}x | "
              f"{r['sigcnn_per_call_s']:.2f} | {r['sigcnn_first_call_s']:.1f} | "
              f"{r['max_abs_diff']:.1e} "
              f"({r['max_abs_diff'] / max(r['max_abs_logit'], 1e-30):.1e}) |")
    meta = dict(machine=machine_info(), torch=torch.__version__,
                args={k: str(v) for k, v in vars(args).items()})
    write_json(args.json, dict(meta=meta, rows=rows))
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
