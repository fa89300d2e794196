"""Training on CPU: sigcnn's written-out backward passes vs JAX's own transposes.

`sigcnn.ops` differentiates its convolution, max pooling, BlurPool and
circular / reflect padding with the rules of ``sigcnn._op_vjps`` (plus a pad
written as one concatenate per axis). This script times, in one process, the
gradient of each op and one whole training step (loss + gradient) of
`vgg_small` (width 0.25, 64x64x1 input, batch 64; ``downsample`` "max", "blur"
and "aps"), once with those rules and once with the plain lax forward
computations, whose gradients are JAX's default transposes (the baseline).
The baseline is installed by swapping the four helpers of `sigcnn.ops` for
plain-lax versions while tracing; both variants compute the same numbers
(max |difference| / max |plain| reported).

Usage (from the repository root, with sigcnn importable):
  python benchmarks/bench_train_step.py [--quick]
Writes benchmarks/results/train_step.json (train_step_quick.json).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmark helper beside this script)

import sigcnn.models as models  # noqa: E402
from sigcnn import ops  # noqa: E402

_HI = lax.Precision.HIGHEST


def _plain_conv(xp, kernel, strides, dilation, groups):
    return lax.conv_general_dilated(
        xp, kernel, strides, "VALID", rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
        precision=_HI)


def _plain_max(xp, dims, strides, wdil):
    return lax.reduce_window(xp, -jnp.inf, lax.max, dims, strides, "VALID",
                             window_dilation=wdil)


def _plain_taps(x, taps, axis, dilation, n_out):
    return sum(lax.slice_in_dim(x, j * dilation, j * dilation + n_out, 1, axis) * t
               for j, t in enumerate(taps))


def _plain_wrap(x, axis, lo, hi, padding):
    widths = [(0, 0)] * 4
    widths[axis] = (lo, hi)
    return jnp.pad(x, widths, mode="wrap" if padding == "circular" else "reflect")


@contextlib.contextmanager
def plain_lax():
    """Traces `sigcnn.ops` with plain lax ops (JAX's default gradients)."""
    names = {"conv_valid": _plain_conv, "max_window": _plain_max,
             "tap_sum": _plain_taps, "_wrap_axis": _plain_wrap}
    saved = {k: getattr(ops, k) for k in names}
    try:
        for k, v in names.items():
            setattr(ops, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(ops, k, v)


def _both(make, args, repeat):
    """Compiles `make()` with sigcnn's rules and with plain lax; times both."""
    out = {}
    for variant in ("sigcnn", "plain"):
        ctx = plain_lax() if variant == "plain" else contextlib.nullcontext()
        with ctx:
            timed = common.compile_fn(make(), *args)
        value = timed.compiled(*args)
        secs = common.steady(lambda: jax.block_until_ready(timed.compiled(*args)),
                             repeat=repeat)
        out[variant] = dict(seconds=secs, compile_s=timed.compile_s, value=value)
    diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(
        jax.tree.leaves(out["sigcnn"].pop("value")),
        jax.tree.leaves(out["plain"].pop("value"))))
    return dict(out, speedup=out["plain"]["seconds"] / out["sigcnn"]["seconds"],
                max_rel_diff=diff)


def op_cases(n):
    rng = np.random.default_rng(0)
    arr = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)  # noqa: E731
    for h, ci, co in ((64, 1, 8), (32, 8, 16), (16, 16, 32), (8, 32, 64)):
        x, k = arr(n, h, h, ci), arr(3, 3, ci, co)
        yield (f"conv {h}x{h} {ci}->{co} grad(kernel, input)",
               lambda: jax.grad(lambda x, k: jnp.sum(ops.conv(x, k) ** 2),
                                argnums=(0, 1)), (x, k))
    x = arr(n, 64, 64, 8)
    yield ("blur_pool 4 reflect 64x64x8 grad",
           lambda: jax.grad(lambda x: jnp.sum(ops.blur_pool(x, size=4) ** 2)), (x,))
    yield ("max_pool 2/1 64x64x8 grad",
           lambda: jax.grad(lambda x: jnp.sum(
               ops.max_pool(x, window=2, stride=1) ** 2)), (x,))
    yield ("circular pad 3x3 64x64x8 grad",
           lambda: jax.grad(lambda x: jnp.sum(
               ops.pad(x, 3, padding="circular") ** 2)), (x,))


def step_case(downsample, n):
    model = models.create("vgg_small", rngs=nnx.Rngs(0), downsample=downsample,
                          in_channels=1, width=0.25, num_classes=10)
    graphdef, params = nnx.split(model)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(n, 64, 64, 1)),
                    jnp.float32)
    y = jnp.arange(n, dtype=jnp.int32) % 10

    def make():
        def loss(p, x, y):
            logits = nnx.merge(graphdef, p)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return jax.value_and_grad(loss)
    return f"vgg_small {downsample} train step (loss + grad)", make, (params, x, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 8, 3 repeats (smoke test)")
    args = parser.parse_args(argv)
    n, repeat = (8, 3) if args.quick else (64, 10)
    cases = list(op_cases(n)) + [step_case(d, n) for d in ("max", "blur", "aps")]
    rows = []
    for name, make, fargs in cases:
        r = _both(make, fargs, repeat)
        rows.append(dict(case=name, **r))
        print(f"{name:48s} sigcnn {r['sigcnn']['seconds'] * 1e3:7.2f} ms  plain "
              f"{r['plain']['seconds'] * 1e3:7.2f} ms  speed-up {r['speedup']:4.2f}x"
              f"  rel. diff {r['max_rel_diff']:.1e}", flush=True)
    out = Path(__file__).resolve().parent / "results" / (
        "train_step_quick.json" if args.quick else "train_step.json")
    common.write_json(out, dict(machine=common.machine_info(), batch=n, rows=rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
