"""Tests of sigcnn.data.synthetic: tones, band-limited fields, zone plates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref

from sigcnn.data import synthetic


@pytest.mark.parametrize("shape,freq,phase,amp", [
    ((16, 16), (3 / 16, -5 / 16), 0.0, 1.0), ((9, 12), (2 / 9, 0.25), 0.7, 2.5),
    ((1, 20), (0.0, 0.45), -1.0, 0.5), ((8, 10), (0.5, 0.5), 0.3, 1.0)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_tone_is_the_cosine_on_its_bins(shape, freq, phase, amp, dtype):
    x = synthetic.tone(shape, freq, phase=phase, amplitude=amp, dtype=dtype)
    h, w = shape
    assert x.shape == (1, h, w, 1) and x.dtype == dtype
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    want = amp * np.cos(2 * np.pi * (freq[0] * yy + freq[1] * xx) + phase)
    np.testing.assert_allclose(x[0, :, :, 0], want,
                               atol=1e-6 if dtype == jnp.float32 else 1e-13)
    # on the grid: all energy in the bins +-(fy H, fx W), no leakage
    spec = np.abs(ref.dft2_ref(np.asarray(x, np.float64))[0, :, :, 0])
    ky, kx = round(freq[0] * h), round(freq[1] * w)
    support = np.zeros((h, w), bool)
    support[ky % h, kx % w] = support[-ky % h, -kx % w] = True
    assert spec[~support].max(initial=0.0) < 1e-4 * h * w
    assert spec[support].min() > 0.1 * amp * h * w * abs(np.cos(phase))


def test_tone_1d_and_rectified_cosine():
    x = synthetic.tone_1d(24, 5 / 24, phase=0.2, amplitude=3.0)
    assert x.shape == (1, 1, 24, 1)
    np.testing.assert_allclose(
        x[0, 0, :, 0], 3 * np.cos(2 * np.pi * 5 / 24 * np.arange(24) + 0.2),
        atol=1e-5)
    # Fourier series of max(0, cos): 1/pi + cos/2 + (2/pi) sum (-1)^(k+1)
    # cos(2k theta) / (4k^2 - 1). Sampled at f = 1/n, harmonic h lands on bin h
    # mod n, so DFT bin m carries the sum of the coefficients of h = +-m (mod n).
    def coef(h):
        if h == 0:
            return 1 / np.pi
        if h % 2:
            return 0.5 if h == 1 else 0.0
        k = h // 2
        return (2 / np.pi) * (-1) ** (k + 1) / (4 * k * k - 1)

    n = 128
    r = np.asarray(synthetic.rectified_cosine(n, 1 / n, dtype=jnp.float64))[0, 0, :, 0]
    u = np.arange(n)
    np.testing.assert_array_equal(r, np.maximum(0, np.cos(2 * np.pi * u / n)))
    amps = 2 * np.real(np.fft.rfft(r)) / n
    harmonics = np.arange(200_000)
    for m in range(8):
        hit = (harmonics % n == m) | (harmonics % n == (-m) % n)
        want = sum(coef(h) for h in harmonics[hit])
        # the series truncated at 2e5 harmonics: tail below 1e-7
        np.testing.assert_allclose(amps[m] / (2 if m == 0 else 1), want, atol=2e-7)
    np.testing.assert_allclose(amps[2], 2 / (3 * np.pi), atol=3e-4)   # ~0.212
    assert synthetic.rectified_cosine(16, 0.25).shape == (1, 1, 16, 1)


def test_on_grid():
    assert synthetic.on_grid(0.25, 16) == 0.25
    assert synthetic.on_grid(-3 / 7, 7) == -3 / 7
    assert synthetic.on_grid(0.5, 10) == 0.5
    with pytest.raises(ValueError, match=r"`freq` must be an on-grid frequency "
                                         r"k/16 .* got 0\.3 \(= 4\.8/16\)"):
        synthetic.on_grid(0.3, 16)
    with pytest.raises(ValueError, match=r"`fx` .* got 0\.75"):
        synthetic.on_grid(0.75, 4, name="fx")


@pytest.mark.parametrize("shape,cutoff,batch,channels,dtype", [
    ((16, 16), 0.25, 2, 3, jnp.float32), ((15, 12), (0.2, 0.4), 1, 2, jnp.float64),
    ((1, 32), (0.5, 0.125), 3, 1, jnp.float32), ((8, 8), 0.5, 1, 1, jnp.float64),
    ((10, 9), (0.3, 0.5), 2, 1, jnp.float64)])
def test_bandlimited_field(shape, cutoff, batch, channels, dtype):
    key = jax.random.key(0)
    x = synthetic.bandlimited_field(key, shape, cutoff=cutoff, batch=batch,
                                    channels=channels, dtype=dtype)
    assert x.shape == (batch, *shape, channels) and x.dtype == dtype
    xn = np.asarray(x, np.float64)
    cy, cx = cutoff if isinstance(cutoff, tuple) else (cutoff, cutoff)
    fy = np.abs(np.fft.fftfreq(shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(shape[1]))[None, :]
    inside = (fy < cy) & (fx < cx)
    p = np.abs(np.fft.fft2(xn, axes=(1, 2))) ** 2
    total = p.sum()
    eps = 1e-10 if dtype == jnp.float32 else 1e-24
    assert p[:, ~inside].sum() <= eps * total      # nothing at or above the cutoff
    assert p[:, 0, 0].sum() <= eps * total         # zero mean
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(xn.mean(axis=(1, 2)), 0.0, atol=tol)
    np.testing.assert_allclose(xn.var(axis=(1, 2)), 1.0, rtol=tol)
    # reproducible from the key, different for another key
    again = synthetic.bandlimited_field(key, shape, cutoff=cutoff, batch=batch,
                                        channels=channels, dtype=dtype)
    np.testing.assert_array_equal(x, again)
    other = synthetic.bandlimited_field(jax.random.key(1), shape, cutoff=cutoff,
                                        batch=batch, channels=channels, dtype=dtype)
    assert np.abs(np.asarray(other) - xn).max() > 0.1


def test_bandlimited_field_fills_its_box():
    # white noise filtered: on average every bin inside the box carries energy
    x = synthetic.bandlimited_field(jax.random.key(3), (16, 16), cutoff=0.25,
                                    batch=24, channels=2, dtype=jnp.float64)
    p = (np.abs(np.fft.fft2(np.asarray(x), axes=(1, 2))) ** 2).mean(axis=(0, 3))
    inside = ref.nyquist_mask_ref((16, 16), 2)
    inside[0, 0] = False
    assert p[inside].min() > 0.3 * p[inside].mean()


@pytest.mark.parametrize("shape,fmax", [((32, 32), 0.5), ((17, 24), 0.25),
                                        ((40, 40), 1.0)])
def test_zone_plate(shape, fmax):
    z = np.asarray(synthetic.zone_plate(shape, fmax=fmax, dtype=jnp.float64))
    h, w = shape
    assert z.shape == (1, h, w, 1)
    assert z.min() >= -1.0 and z.max() <= 1.0
    assert z.max() > 0.99 and z.min() < -0.9                   # spans the range
    np.testing.assert_allclose(z, z[:, ::-1, ::-1], atol=1e-12)  # centro-symmetric
    # cos(pi fmax r^2 / R): local frequency d(phase)/dr / (2 pi) = fmax r / R
    yy = np.arange(h)[:, None] - (h - 1) / 2
    xx = np.arange(w)[None, :] - (w - 1) / 2
    radius = min(h, w) / 2
    np.testing.assert_allclose(
        z[0, :, :, 0], np.cos(np.pi * fmax * (xx ** 2 + yy ** 2) / radius), atol=1e-12)
    zf = synthetic.zone_plate(shape, fmax=fmax)
    assert zf.dtype == jnp.float32


def test_bandlimited_field_jit_and_vmap_over_keys():
    def f(key):
        return synthetic.bandlimited_field(key, (12, 10), cutoff=0.3, channels=2)

    keys = jax.random.split(jax.random.key(7), 3)
    eager = np.stack([np.asarray(f(k)) for k in keys])
    np.testing.assert_allclose(jax.jit(f)(keys[0]), eager[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(f))(keys), eager, rtol=1e-5,
                               atol=1e-6)
