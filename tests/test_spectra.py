"""Tests of sigcnn.spectra against explicit DFT references and analytic tones."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref

from sigcnn import ops, spectra

# FFT paths: float32 relative error ~1e-6 of the total energy, float64 ~1e-14.
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}
SCALAR_TOL = {np.float32: 1e-5, np.float64: 1e-12}

# Shared jitted functions (stride and flags static, arrays traced).
PS = jax.jit(spectra.power_spectrum, static_argnames=("remove_mean", "reduce"))
AR = jax.jit(spectra.aliasing_ratio, static_argnums=(1,))
SE = jax.jit(spectra.shiftability_error, static_argnums=(1,))
UP = jax.jit(spectra.fourier_upsample, static_argnums=(1,))
FS = jax.jit(spectra.fourier_shift)
LOWPASS = jax.jit(ops.ideal_lowpass, static_argnames=("cutoff",))

SHAPES = [(2, 8, 6, 3), (1, 7, 9, 2), (1, 1, 16, 1), (1, 5, 5, 1), (1, 12, 12, 2)]


def _tone(h, w, ky, kx, *, phase=0.0, amp=1.0, dtype=np.float64):
    """amp * cos(2 pi (ky y / h + kx x / w) + phase) as a [1, h, w, 1] array."""
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    img = amp * np.cos(2 * np.pi * (ky * y / h + kx * x / w) + phase)
    return img[None, :, :, None].astype(dtype)


def _bandlimited(shape, stride, seed, dtype=np.float64):
    """Random signal with every bin at or above 1/(2s) removed (explicit mask)."""
    x = np.random.default_rng(seed).normal(size=shape)
    m = ref.nyquist_mask_ref(shape[1:3], stride)
    spec = np.fft.fft2(x, axes=(1, 2)) * m[None, :, :, None]
    return np.real(np.fft.ifft2(spec, axes=(1, 2))).astype(dtype)


def _random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# --------------------------------------------------------------- power spectrum

FLAGS = list(itertools.product([True, False], [True, False]))
# all four (remove_mean, reduce) variants in one program: one compile per shape
PS_ALL = jax.jit(lambda x: [spectra.power_spectrum(x, remove_mean=m, reduce=r)
                            for m, r in FLAGS])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_spectrum_matches_reference(shape, dtype):
    x = _random(shape, 0, dtype) + 0.7      # a mean, so remove_mean matters
    for (remove_mean, reduce), got in zip(FLAGS, PS_ALL(x)):
        want = ref.power_spectrum_ref(x, remove_mean=remove_mean, reduce=reduce)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("h,w,ky,kx,amp,phase", [
    (16, 16, 3, 5, 1.0, 0.0), (9, 12, 2, -4, 0.5, 1.1), (1, 32, 0, 7, 2.0, -0.4),
    (10, 7, 4, 0, 1.5, 2.5), (8, 8, 1, 3, 1.0, np.pi / 2)])
def test_on_grid_tone_sits_in_its_two_bins(h, w, ky, kx, amp, phase):
    # cos = (e^{i theta} + e^{-i theta}) / 2: |X| = amp H W / 2 at (ky, kx) and at
    # (-ky, -kx), so P = |X|^2 / (H W) = amp^2 H W / 4 in each of the two bins.
    x = _tone(h, w, ky, kx, amp=amp, phase=phase)
    p = np.asarray(PS(x, remove_mean=False, reduce=True))
    want = np.zeros((h, w))
    want[ky % h, kx % w] += amp ** 2 * h * w / 4
    want[-ky % h, -kx % w] += amp ** 2 * h * w / 4
    np.testing.assert_allclose(p, want, atol=1e-10 * h * w)


@pytest.mark.parametrize("phase", [0.0, 0.3, 1.2])
def test_tone_at_grid_nyquist_is_one_bin(phase):
    # cos(pi x + phase) = cos(phase) (-1)^x: all energy amp^2 cos^2 H W in bin W/2.
    h, w = 4, 8
    x = _tone(h, w, 0, w // 2, phase=phase)
    p = np.asarray(PS(x, remove_mean=False, reduce=True))
    want = np.zeros((h, w))
    want[0, w // 2] = np.cos(phase) ** 2 * h * w
    np.testing.assert_allclose(p, want, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_parseval(shape):
    x = _random(shape, 1) + 0.3
    p = np.asarray(PS(x, remove_mean=False, reduce=False))
    np.testing.assert_allclose(p.sum(axis=(1, 2)), (x ** 2).sum(axis=(1, 2)),
                               rtol=1e-12)
    pc = np.asarray(PS(x, remove_mean=True, reduce=False))
    xc = x - x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(pc.sum(axis=(1, 2)), (xc ** 2).sum(axis=(1, 2)),
                               rtol=1e-12)
    np.testing.assert_allclose(pc[:, 0, 0], 0.0, atol=1e-12)      # DC removed
    np.testing.assert_allclose(PS(x, remove_mean=False, reduce=True),
                               p.mean(axis=(0, 3)), rtol=1e-13)


# ------------------------------------------------------------------ Nyquist box

@pytest.mark.parametrize("shape", [(8, 8), (9, 6), (1, 12), (7, 1), (6, 10)])
@pytest.mark.parametrize("stride", [1, 2, 3, (1, 2), (2, 3)])
def test_nyquist_mask_matches_reference(shape, stride):
    want = ref.nyquist_mask_ref(shape, stride)
    np.testing.assert_array_equal(spectra.nyquist_mask(shape, stride), want)
    np.testing.assert_array_equal(spectra.nyquist_mask((2, *shape, 3), stride), want)


def test_nyquist_bins_are_outside():
    m = spectra.nyquist_mask((16, 12), (2, 3))
    f16 = spectra.frequencies(16)
    f12 = spectra.frequencies(12)
    np.testing.assert_array_equal(f16, np.fft.fftfreq(16))
    assert not m[np.isclose(np.abs(f16), 0.25)].any()      # |fy| = 1/(2*2)
    assert not m[:, np.isclose(np.abs(f12), 1 / 6)].any()  # |fx| = 1/(2*3)
    assert m[np.abs(f16) < 0.25][:, np.abs(f12) < 1 / 6].all()


# ---------------------------------------------------------------- aliasing ratio

STRIDES = [1, 2, 3, (1, 2), (2, 3), (4, 1)]
AR_ALL = jax.jit(lambda x: [spectra.aliasing_ratio(x, s) for s in STRIDES])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aliasing_ratio_matches_reference(shape, dtype):
    x = _random(shape, 2, dtype) + 0.5
    for stride, got in zip(STRIDES, AR_ALL(x)):
        assert got.shape == ()
        np.testing.assert_allclose(got, ref.aliasing_ratio_ref(x, stride),
                                   rtol=SCALAR_TOL[dtype], atol=SCALAR_TOL[dtype],
                                   err_msg=f"stride={stride}")


@pytest.mark.parametrize("shape,stride", [((2, 16, 16, 3), 2), ((1, 15, 12, 2), 3),
                                          ((1, 1, 24, 1), (1, 4)),
                                          ((1, 12, 18, 2), (2, 3))])
def test_aliasing_ratio_zero_for_bandlimited(shape, stride):
    x = _bandlimited(shape, stride, 3) + 2.0      # the mean does not count
    assert float(AR(x, stride)) < 1e-25
    sy, sx = ref.pair(stride)
    y = LOWPASS(_random(shape, 4), cutoff=(1 / (2 * sy), 1 / (2 * sx)))
    assert float(AR(y, stride)) < 1e-25


@pytest.mark.parametrize("h,w,ky,kx,stride", [
    (16, 16, 5, 0, 2), (16, 16, 4, 1, 2),      # fy = 1/4: at Nyquist, outside
    (16, 16, 0, -4, 2), (12, 18, 1, 3, 3),     # fx = 1/6 at Nyquist of s = 3
    (1, 24, 0, 11, (1, 2)), (9, 10, 4, 1, (3, 1)), (8, 8, 4, 4, 1)])
def test_aliasing_ratio_one_above_or_at_nyquist(h, w, ky, kx, stride):
    for phase in (0.0, 0.7):
        x = _tone(h, w, ky, kx, phase=phase)
        if np.abs(x - x.mean()).max() < 1e-9:
            continue                    # cos(pi x + pi/2) sampled is zero
        np.testing.assert_allclose(AR(x, stride), 1.0, rtol=1e-12)


def test_aliasing_ratio_mixture_and_constant():
    h, w = 16, 16
    below = _tone(h, w, 3, 2, amp=2.0)                   # inside the s = 2 box
    above = _tone(h, w, 1, 6, amp=1.0, phase=0.4)        # fx = 6/16 > 1/4
    # tones at different bins are orthogonal: ratio = 1 / (4 + 1)
    np.testing.assert_allclose(AR(below + above, 2), 1 / 5, rtol=1e-12)
    np.testing.assert_allclose(AR(below, 2), 0.0, atol=1e-25)
    assert float(AR(np.full((1, 4, 4, 1), 3.0), 2)) == 0.0


# ----------------------------------------------------------- shiftability error

@pytest.mark.parametrize("shape,stride", [((2, 8, 6, 3), 2), ((1, 9, 12, 1), 3),
                                          ((1, 1, 16, 2), (1, 2)),
                                          ((1, 6, 6, 1), (2, 3)),
                                          ((1, 12, 10, 1), (3, 2)),
                                          ((1, 5, 7, 1), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shiftability_error_matches_reference(shape, stride, dtype):
    x = _random(shape, 5, dtype) + 0.2
    got = SE(x, stride)
    assert got.shape == ()
    np.testing.assert_allclose(got, ref.shiftability_error_ref(x, stride),
                               rtol=SCALAR_TOL[dtype] * 10, atol=SCALAR_TOL[dtype])


@pytest.mark.parametrize("shape,stride", [((2, 16, 16, 3), 2), ((1, 15, 12, 2), 3),
                                          ((1, 1, 24, 1), (1, 4)),
                                          ((1, 12, 18, 2), (2, 3))])
def test_shiftability_error_zero_for_bandlimited(shape, stride):
    x = _bandlimited(shape, stride, 6) - 1.0
    assert float(SE(x, stride)) < 1e-24


@pytest.mark.parametrize("h,w,ky,kx,stride", [
    (16, 16, 5, 0, 2), (16, 16, 3, 7, 2), (12, 18, 1, 4, 3), (1, 24, 0, 11, (1, 2)),
    (1, 30, 0, 9, (1, 3)), (12, 10, 5, 1, (3, 1)), (20, 20, -6, 9, 4)])
@pytest.mark.parametrize("phase", [0.0, 0.5, 2.0])
def test_shiftability_error_two_for_tone_above_nyquist(h, w, ky, kx, stride, phase):
    # The samples of a tone above 1/(2s) interpolate to its alias, a tone of equal
    # energy at another bin: ||c - alias||^2 = 2 ||c||^2.
    x = _tone(h, w, ky, kx, phase=phase, amp=1.3)
    np.testing.assert_allclose(SE(x, stride), 2.0, rtol=1e-10)


@pytest.mark.parametrize("phase", [0.0, 0.4, np.pi / 2, 2.5])
def test_shiftability_error_of_tone_at_nyquist(phase):
    # f = 1/(2s) exactly: the samples cos(phase) (-1)^m interpolate (Nyquist bin
    # split) to cos(phase) cos(pi u / s); the error is sin(phase)^2.
    x = _tone(1, 32, 0, 8, phase=phase)                  # f = 1/4, s = 2
    np.testing.assert_allclose(SE(x, (1, 2)), np.sin(phase) ** 2, atol=1e-12)


def test_shiftability_error_is_twice_ratio_for_bandlimited_plus_tone():
    # c = b + a, b inside the box, a one tone outside: c - B(c[::s]) = a - alias(a)
    # with alias(a) orthogonal to a and of equal energy, so error = 2 * ratio.
    for seed, (ky, kx), amp in [(0, (5, 1), 0.3), (1, (2, 6), 1.0), (2, (7, 7), 3.0)]:
        b = _bandlimited((1, 16, 16, 1), 2, seed)
        x = b + _tone(16, 16, ky, kx, amp=amp, phase=seed)
        ratio = float(AR(x, 2))
        assert 0.0 < ratio < 1.0
        np.testing.assert_allclose(SE(x, 2), 2 * ratio, rtol=1e-10)


# ------------------------------------------------------------ Fourier upsample

@pytest.mark.parametrize("shape,stride", [((2, 4, 3, 2), 2), ((1, 3, 5, 1), 3),
                                          ((1, 1, 6, 1), (1, 4)),
                                          ((1, 4, 4, 1), (2, 3)), ((1, 2, 2, 1), 1)])
def test_fourier_upsample_matches_reference_and_interpolates(shape, stride):
    r = _random(shape, 7)
    up = np.asarray(UP(r, stride))
    sy, sx = ref.pair(stride)
    assert up.shape == (shape[0], sy * shape[1], sx * shape[2], shape[3])
    np.testing.assert_allclose(up, ref.fourier_upsample_ref(r, stride), atol=1e-12)
    np.testing.assert_allclose(up[:, ::sy, ::sx], r, atol=1e-12)


@pytest.mark.parametrize("shape,stride", [((2, 16, 16, 3), 2), ((1, 15, 12, 2), 3),
                                          ((1, 1, 24, 1), (1, 4)),
                                          ((1, 12, 18, 2), (2, 3))])
def test_fourier_upsample_recovers_bandlimited(shape, stride):
    r2 = _bandlimited(shape, stride, 8)
    sy, sx = ref.pair(stride)
    np.testing.assert_allclose(UP(r2[:, ::sy, ::sx], stride), r2, atol=1e-12)
    r2f = r2.astype(np.float32)
    out = UP(r2f[:, ::sy, ::sx], stride)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, r2, atol=1e-5)


# ---------------------------------------------------------------- Fourier shift

@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (1, 7, 9, 1), (1, 1, 10, 2)])
def test_fourier_shift_integer_is_roll(shape):
    for dtype in (np.float32, np.float64):
        x = _random(shape, 9, dtype)
        for t in [(0, 0), (1, 2), (-3, 5), (11, -13), (0, 1)]:
            got = FS(x, jnp.asarray(t, dtype))
            assert got.dtype == dtype
            np.testing.assert_allclose(got, np.roll(x, t, axis=(1, 2)),
                                       **TOL[dtype])
    # a plain tuple of Python numbers works eagerly too
    np.testing.assert_allclose(spectra.fourier_shift(x, (2, -1)),
                               np.roll(x, (2, -1), axis=(1, 2)), **TOL[dtype])


@pytest.mark.parametrize("h,w,ky,kx", [(16, 16, 3, 5), (9, 12, 2, -4),
                                       (1, 20, 0, 7), (11, 7, 5, 3)])
def test_fourier_shift_of_tone_is_analytic(h, w, ky, kx):
    x = _tone(h, w, ky, kx, phase=0.3, amp=1.5)
    for d in [(0.25, -0.5), (1.7, 0.3), (-2.2, 3.9)]:
        dy = d[0] if h > 1 else 0.0
        got = FS(x, jnp.asarray((dy, d[1])))
        # x(u - d): shifting by +d moves content to larger indices, as jnp.roll
        want = _tone(h, w, ky, kx, amp=1.5,
                     phase=0.3 - 2 * np.pi * (ky * dy / h + kx * d[1] / w))
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 7, 9, 2), (1, 8, 6, 1), (1, 1, 12, 1)])
def test_fourier_shift_matches_reference(shape):
    x = _random(shape, 10)
    for d in [(0.5, 0.5), (0.3, -1.25), (2.6, 0.1)]:
        np.testing.assert_allclose(FS(x, jnp.asarray(d)),
                                   ref.fourier_shift_ref(x, d), atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 8, 6, 1), (2, 7, 10, 2), (1, 4, 4, 1)])
def test_fourier_shift_is_separable(shape):
    # A 2-D band-limited shift is a vertical shift then a horizontal one, also on
    # the Nyquist bins of even axes (each split symmetrically, per axis).
    x = _random(shape, 13)
    for dy, dx in [(0.5, 0.5), (0.3, -1.7), (1.25, 0.75)]:
        two_step = FS(FS(x, jnp.asarray((dy, 0.0))), jnp.asarray((0.0, dx)))
        np.testing.assert_allclose(FS(x, jnp.asarray((dy, dx))), two_step,
                                   atol=1e-12)


def test_fourier_shift_composes_without_nyquist_content():
    a, b = jnp.asarray((0.3, -0.45)), jnp.asarray((0.55, 1.2))
    odd = _random((2, 7, 9, 2), 11)                     # odd sizes: no Nyquist bin
    even = LOWPASS(_random((1, 8, 10, 1), 12), cutoff=0.5)   # Nyquist bins removed
    for x in (odd, even):
        np.testing.assert_allclose(FS(FS(x, a), b), FS(x, a + b), atol=1e-12)
        np.testing.assert_allclose(FS(FS(x, a), -a), x, atol=1e-12)


def test_fourier_shift_scales_nyquist_bin_by_cos():
    # Symmetric split of the Nyquist bin: (-1)^u is the samples of cos(pi u), so its
    # shift by d is cos(pi (u - d)) = cos(pi d) (-1)^u at the integers. Hence
    # shifts do not compose on that bin: cos(pi a) cos(pi b) != cos(pi (a + b)).
    x = _tone(1, 8, 0, 4)
    for d in (0.5, 0.25, 1.0, 1.3):
        np.testing.assert_allclose(FS(x, jnp.asarray((0.0, d))),
                                   np.cos(np.pi * d) * x, atol=1e-12)
    half = FS(FS(x, jnp.asarray((0.0, 0.5))), jnp.asarray((0.0, 0.5)))
    np.testing.assert_allclose(half, 0.0, atol=1e-12)      # not roll(x, 1) = -x


# ------------------------------------------------------------------- profiles

def test_axis_profile_and_radial_profile():
    h, w = 16, 12
    p = np.asarray(PS(_tone(h, w, 3, -2), reduce=True))
    f, e = spectra.axis_profile(p, 1)
    assert np.all(np.diff(f) > 0)
    np.testing.assert_allclose(e.sum(), p.sum())
    np.testing.assert_allclose(e[np.isclose(np.abs(f), 2 / 12)].sum(), p.sum())
    f0, e0 = spectra.axis_profile(p, 0)
    np.testing.assert_allclose(e0[np.isclose(np.abs(f0), 3 / 16)].sum(), p.sum())
    radii, prof = spectra.radial_profile(p, bins=8)
    assert radii.shape == prof.shape == (8,)
    rad = np.hypot(3 / 16, 2 / 12)
    peak = np.nanargmax(prof)
    edges = np.linspace(0, 0.5 * np.sqrt(2), 9)
    assert edges[peak] <= rad < edges[peak + 1]
