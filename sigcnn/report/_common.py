"""Pieces shared by the built-in report and the report on a user's network:
stage timings, the verification subset, the software environment, PNG bytes."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import time

__all__ = ["Stages", "cpu_seconds", "environment", "png_bytes", "run_verify",
           "round_timings"]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads)."""
    t = os.times()
    return float(t.user + t.system)


class Stages:
    """Wall and CPU seconds of named stages (``with stages("name"): ...``)."""

    def __init__(self):
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.rows.append({"stage": name,
                              "wall_seconds": time.perf_counter() - t0,
                              "cpu_seconds": cpu_seconds() - c0})


def round_timings(rows) -> list[dict]:
    """`Stages.rows` with seconds rounded to milliseconds."""
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
            for r in rows]


def run_verify(mode: str):
    """The checks of ``sigcnn verify`` in float64: ``"all"``, or ``"subset"``:
    four fast ones that carry the page's figures (strided == undecimated
    sampled, the tone sweep across Nyquist, ReLU's harmonic aliasing,
    BlurPool's frequency response)."""
    import jax

    from sigcnn import verify

    key = jax.random.key(0)
    with jax.enable_x64(True):
        if mode == "all":
            return verify.run_all(key=key)
        return [verify.check_strided_vs_undecimated(key=key, padding="circular"),
                verify.check_tone_sweep(),
                verify.check_relu_aliasing(),
                verify.check_blurpool_response()]


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("sigcnn", "jax", "jaxlib", "flax", "optax", "numpy",
                 "matplotlib", "jinja2"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    if out["sigcnn"] is None:
        from sigcnn import __version__

        out["sigcnn"] = __version__
    return out


def environment() -> dict:
    """Software versions, Python, platform, CPU count and JAX devices."""
    import jax

    return {**_versions(), "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "devices": [str(d) for d in jax.devices()]}


def png_bytes(fig, *, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_figures(out_dir: str, figures) -> list[str]:
    """Writes each PNG of `figures` (name -> bytes) to ``out_dir/figures/NAME.png``
    atomically; returns their absolute paths."""
    from sigcnn._io import atomic_write_bytes

    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    paths = []
    for name, png in figures.items():
        path = os.path.join(fig_dir, f"{name}.png")
        atomic_write_bytes(path, png)
        paths.append(os.path.abspath(path))
    return paths
