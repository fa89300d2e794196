"""Evaluation of a logits function on fixed-size chunks of frames.

`Evaluator` jit-compiles the logits function once (a Flax NNX module is
evaluated in inference mode through ``nnx.view``, without modifying it) and
calls it on chunks of `chunk` frames, the last one padded, so memory stays
bounded and each frame size compiles once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["Evaluator", "first_line", "groups", "pad_images"]


class Evaluator:
    """A jitted logits function called on fixed-size chunks of frames."""

    def __init__(self, logits_fn, chunk: int, jit: bool, mesh=None):
        # on a mesh, each call's frames are split over all its devices: the chunk
        # is rounded up to a multiple of the device count
        self.sharding = None if mesh is None else NamedSharding(
            mesh, PartitionSpec(tuple(mesh.axis_names)))
        if mesh is not None:
            chunk = -(-chunk // mesh.size) * mesh.size
        self.chunk = chunk
        if isinstance(logits_fn, nnx.Module):
            module = nnx.view(logits_fn, deterministic=True,
                              use_running_average=True, raise_if_not_found=False)
            graphdef, state = nnx.split(module)

            def run(st, x):
                return nnx.merge(graphdef, st)(x)

            run = jax.jit(run) if jit else run
            self.fn = functools.partial(run, state)
            self.traceable = module
        else:
            self.fn = jax.jit(logits_fn) if jit else logits_fn
            self.traceable = logits_fn

    def place(self, x):
        """x on the mesh, batch split over its devices (unchanged without one)."""
        return x if self.sharding is None else jax.device_put(x, self.sharding)

    def probe(self, shape, dtype):
        """K for frames of the given shape [h, w, C], or raises."""
        spec = jax.ShapeDtypeStruct((1,) + tuple(shape), dtype)
        try:
            out = jax.eval_shape(self.fn, spec)
        except Exception as e:
            raise ValueError(
                    f"`logits_fn` failed on a batch of shape {spec.shape} (the frames "
                    f"of the protocols asked for): {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}") from e
        ok = hasattr(out, "shape") and len(out.shape) == 2 and out.shape[0] == 1 and (
                jnp.issubdtype(out.dtype, jnp.floating))
        if not ok:
            raise ValueError(
                    f"`logits_fn` must map float images [N, H, W, C] to float logits "
                    f"[N, K]; on input {spec.shape} it returned "
                    f"{jax.tree.map(lambda a: (a.shape, str(a.dtype)), out)}.")
        return int(out.shape[1])

    def __call__(self, frames) -> np.ndarray:
        """Logits of frames [M, h, w, C] as a NumPy array [M, K]."""
        m = frames.shape[0]
        out = []
        for s in range(0, m, self.chunk):
            piece = frames[s:s + self.chunk]
            k = piece.shape[0]
            if k < self.chunk:
                piece = np.asarray(piece)
                pad = [(0, self.chunk - k)] + [(0, 0)] * (piece.ndim - 1)
                piece = np.pad(piece, pad, mode="edge")
            out.append(np.asarray(self.fn(self.place(piece)))[:k])
        return np.concatenate(out, axis=0)


def groups(n, size):
    """[(start, end), ...] of consecutive groups of `size` out of `n`."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def pad_images(x, size):
    """x [g, ...] padded along axis 0 to `size` by repeating its last image."""
    g = x.shape[0]
    if g == size:
        return x
    x = np.asarray(x)
    return np.concatenate([x, np.repeat(x[-1:], size - g, axis=0)], axis=0)


# ---------------------------------------------------------------------------
# Protocol plans (geometry, built before any evaluation)
# ---------------------------------------------------------------------------


def first_line(e: BaseException) -> str:
    """``Type: first line of the message`` of an exception (at most 400 chars)."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]
