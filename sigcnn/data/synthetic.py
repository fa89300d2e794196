"""Synthetic test signals with known spectra, NHWC.

Frequencies are in cycles/pixel. "On-grid" means ``f * n`` is an integer for an
axis of n samples, so the tone falls exactly on a DFT bin and its spectrum has no
leakage. Random signals come from an explicit ``key``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sigcnn._checks import as_pair, check_positive_int
from sigcnn.ops import lowpass_mask

__all__ = [
    "bandlimited_field",
    "on_grid",
    "rectified_cosine",
    "tone",
    "tone_1d",
    "zone_plate",
]


def on_grid(freq: float, n: int, *, name: str = "freq") -> float:
    """Returns ``freq`` if it lies on the n-point DFT grid, else raises.

    Args:
      freq: frequency in cycles/pixel, in [-0.5, 0.5].
      n: number of samples along the axis.
      name: argument name used in the error message.

    Returns:
      ``round(freq * n) / n`` (a float on the grid).
    """
    k = float(freq) * n
    if not -0.5 * n <= k <= 0.5 * n or abs(k - round(k)) > 1e-9:
        raise ValueError(
            f"`{name}` must be an on-grid frequency k/{n} in [-0.5, 0.5] "
            f"cycles/pixel for an axis of {n} samples; got {freq!r} "
            f"(= {k:g}/{n}).")
    return round(k) / n


def tone(shape, freq, *, phase: float = 0.0, amplitude: float = 1.0,
         dtype=jnp.float32):
    """2-D on-grid cosine ``a cos(2 pi (fy y + fx x) + phase)``.

    Args:
      shape: (H, W).
      freq: (fy, fx) in cycles/pixel, each on its axis' DFT grid.
      phase: phase in radians.
      amplitude: amplitude a.
      dtype: float dtype of the result.

    Returns:
      array, shape [1, H, W, 1].
    """
    h, w = as_pair("shape", shape)
    if not isinstance(freq, (tuple, list)) or len(freq) != 2:
        raise ValueError(f"`freq` must be a pair (fy, fx); got {freq!r}.")
    fy = on_grid(freq[0], h, name="freq[0]")
    fx = on_grid(freq[1], w, name="freq[1]")
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    img = amplitude * np.cos(2 * np.pi * (fy * y + fx * x) + phase)
    return jnp.asarray(img[None, :, :, None], dtype)


def tone_1d(n: int, freq: float, *, phase: float = 0.0, amplitude: float = 1.0,
            dtype=jnp.float32):
    """1-D on-grid cosine as an H = 1 image.

    Args:
      n: number of samples W.
      freq: frequency in cycles/pixel on the n-point grid.
      phase: phase in radians.
      amplitude: amplitude.
      dtype: float dtype.

    Returns:
      array, shape [1, 1, n, 1].
    """
    n = check_positive_int("n", n)
    return tone((1, n), (0.0, freq), phase=phase, amplitude=amplitude,
                dtype=dtype)


def rectified_cosine(n: int, freq: float, *, dtype=jnp.float32):
    """Half-wave rectified cosine ``max(0, cos(2 pi f u))``, shape [1, 1, n, 1].

    Its Fourier series is ``1/pi + cos(θ)/2 + (2/pi) Σ_k (-1)^(k+1) cos(2kθ) /
    (4k² - 1)``: harmonics at 2f, 4f, ... with amplitudes 2/(3 pi) ≈ 0.212,
    2/(15 pi) ≈ 0.042, ...

    Args:
      n: number of samples.
      freq: on-grid frequency f of the cosine.
      dtype: float dtype.

    Returns:
      array, shape [1, 1, n, 1].
    """
    return jax.nn.relu(tone_1d(n, freq, dtype=dtype))


def bandlimited_field(key, shape, *, cutoff, batch: int = 1, channels: int = 1,
                      dtype=jnp.float32):
    """Gaussian random field with no energy at or above a cutoff frequency.

    White Gaussian noise, ideally low-passed to the open box ``|fy| < cy, |fx| <
    cx`` (bins at the cutoff removed too), mean removed, scaled to unit variance
    per image-channel.

    Args:
      key: a ``jax.random`` key.
      shape: (H, W).
      cutoff: c or (cy, cx) in (0, 0.5] cycles/pixel.
      batch: number of images N.
      channels: number of channels C.
      dtype: float dtype.

    Returns:
      array, shape [N, H, W, C].
    """
    h, w = as_pair("shape", shape)
    batch = check_positive_int("batch", batch)
    channels = check_positive_int("channels", channels)
    mask = lowpass_mask((h, w), cutoff)
    mask[0, 0] = False
    if not mask.any():
        raise ValueError(
            f"`cutoff` {cutoff!r} keeps no non-DC frequency on a {h}x{w} grid; "
            f"raise it above 1/{max(h, w)}.")
    noise = jax.random.normal(key, (batch, h, w, channels), jnp.float32)
    # the same draw for every dtype, filtered at (at least) float32 precision
    noise = noise.astype(jnp.promote_types(dtype, jnp.float32))
    spec = jnp.fft.fft2(noise, axes=(1, 2)) * jnp.asarray(mask)[None, :, :, None]
    f = jnp.real(jnp.fft.ifft2(spec, axes=(1, 2)))
    f = f / jnp.std(f, axis=(1, 2), keepdims=True)
    return f.astype(dtype)


def zone_plate(shape, *, fmax: float = 0.5, dtype=jnp.float32):
    """Circular zone plate ``cos(pi fmax r² / R)``: local frequency grows with radius.

    The local frequency at radius r from the centre is ``fmax * r / R`` with R
    the half-size of the shorter side, so the plate sweeps all frequencies from 0
    to ``fmax`` cycles/pixel along each axis.

    Args:
      shape: (H, W).
      fmax: local frequency at radius R, in (0, 1].
      dtype: float dtype.

    Returns:
      array, shape [1, H, W, 1], values in [-1, 1].
    """
    h, w = as_pair("shape", shape)
    if not 0.0 < float(fmax) <= 1.0:
        raise ValueError(f"`fmax` must be in (0, 1] cycles/pixel; got {fmax!r}.")
    y = np.arange(h)[:, None] - (h - 1) / 2
    x = np.arange(w)[None, :] - (w - 1) / 2
    radius = min(h, w) / 2
    img = np.cos(np.pi * fmax * (x ** 2 + y ** 2) / radius)
    return jnp.asarray(img[None, :, :, None], dtype)
