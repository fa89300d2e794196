"""Result type and helpers shared by the checks of the suite.

References: see `sigcnn.verify`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import check_key
from sigcnn._io import to_jsonable
from sigcnn.spectra import aliasing_ratio, power_spectrum, shiftability_error

# --------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the verification suite.

    Attributes:
      name: short identifier, e.g. ``"strided_vs_undecimated/circular"``.
      predicted: what theory predicts, for display.
      measured: what was measured, for display.
      passed: whether the measurement matches the prediction within tolerance.
      detail: raw numbers (floats, ints, bools, strings and lists of them),
        including the tolerance used; JSON-serialisable via
        :func:`checks_to_json`.
    """

    name: str
    predicted: str
    measured: str
    passed: bool
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict,
                                                  hash=False)


def checks_to_json(checks: Sequence[Check]) -> list[dict]:
    """Turns checks into JSON-serialisable dicts.

    Args:
      checks: sequence of :class:`Check`.

    Returns:
      list of dicts with keys ``name``, ``predicted``, ``measured``, ``passed``
      (bool) and ``detail`` (plain Python numbers, strings and lists; non-finite
      floats as strings).

    Raises:
      TypeError: if an element is not a :class:`Check`.
    """
    rows = []
    for i, c in enumerate(checks):
        if not isinstance(c, Check):
            raise TypeError(
                f"`checks` must be a sequence of Check; element {i} is "
                f"{type(c).__name__}.")
        rows.append({"name": c.name, "predicted": c.predicted,
                     "measured": c.measured, "passed": bool(c.passed),
                     "detail": to_jsonable(dict(c.detail))})
    return rows


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _dtype():
    """float64 when x64 is enabled, else float32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _is64(dtype) -> bool:
    return np.dtype(dtype) == np.float64


def _tol(dtype, *, f32: float, f64: float) -> float:
    return f64 if _is64(dtype) else f32


def _fmt(v: float) -> str:
    """Compact number for display: 0, 1.2e-16, 0.2122, 2."""
    v = float(v)
    if v == 0.0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.1e}"
    return f"{v:.4g}"


def _rng(key, stream: int = 0) -> np.random.Generator:
    """NumPy generator seeded from a JAX key and a stream number (deterministic).

    Host-side sampling avoids compiling a random-number kernel per shape, which
    dominates the run time of a suite of small experiments on CPU.
    """
    check_key("key", key)
    data = np.asarray(jax.random.key_data(key) if jnp.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key, np.uint32)
    return np.random.default_rng([*data.ravel().tolist(), stream])


_power = jax.jit(power_spectrum, static_argnames=("remove_mean", "reduce"))


@functools.partial(jax.jit, static_argnums=1)
def _metrics(x, stride):
    """(aliasing ratio, shiftability error) of x, jitted per shape and stride."""
    return aliasing_ratio(x, stride), shiftability_error(x, stride)


@functools.partial(jax.jit, static_argnums=1)
def _metrics_each(xs, stride):
    """Both metrics of every image of xs [N, H, W, C] separately: two [N]."""
    return jax.vmap(lambda x: _metrics(x[None], stride))(xs)


def _all_rolls(x, shifts) -> np.ndarray:
    """Stack of roll(x, t) for each t, built on the host: [len(shifts) * N, ...]."""
    x = np.asarray(x)
    return np.concatenate([np.roll(x, t, axis=(1, 2)) for t in shifts])


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def _scale(a) -> float:
    return max(float(np.max(np.abs(np.asarray(a)))), 1e-30)


def _cos_amplitudes(x):
    """One-sided cosine amplitudes of a real 1-D signal [1, 1, n, 1] (NumPy FFT).

    Returns (freqs, amps) over the rfft bins: ``amps[k] = 2 |X_k| / n`` except
    at DC (and at 1/2 for even n), where it is ``|X_k| / n``.
    """
    v = np.asarray(x, np.float64)[0, 0, :, 0]
    n = v.shape[0]
    amps = 2.0 * np.abs(np.fft.rfft(v)) / n
    amps[0] /= 2.0
    if n % 2 == 0:
        amps[-1] /= 2.0
    return np.fft.rfftfreq(n), amps
