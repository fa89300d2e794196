"""Tests for sigcnn.shifts: exact protocol geometry, inpainting, schedules."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sigcnn import shifts


def images(seed=0, shape=(2, 12, 14, 3), dtype=np.float32):
    return np.random.default_rng(seed).random(shape).astype(dtype)


# ---------------------------------------------------------------------------
# Translations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [(0, 0), (1, 2), (-3, 5), (13, -15)])
def test_circular_shift_is_roll(shift):
    x = images()
    np.testing.assert_array_equal(shifts.circular_shift(x, shift),
                                  np.roll(x, shift, axis=(1, 2)))


def test_circular_shift_traced_shift():
    x = images()
    f = jax.jit(lambda v, t: shifts.circular_shift(v, t))
    np.testing.assert_array_equal(f(x, jnp.array([2, -1])),
                                  np.roll(x, (2, -1), axis=(1, 2)))


def test_translate_circular_frames_and_record():
    x = images()
    sched = shifts.sweep_schedule(4, axis="horizontal", start=(1, -1))
    frames, rec = shifts.translate(x, sched.offsets)
    assert frames.shape == (2, 4, 12, 14, 3)
    for t, s in enumerate(sched.offsets):
        np.testing.assert_array_equal(frames[:, t], np.roll(x, tuple(s), axis=(1, 2)))
    assert rec.protocol == "circular"
    assert rec.offsets == ((1, -1), (1, 0), (1, 1), (1, 2))
    assert rec.input_size == rec.output_size == (12, 14)
    json.dumps(rec.to_dict())


def test_translate_per_sample_shifts():
    x = images()
    per = np.array([[[0, 1], [2, 3]], [[-1, 0], [4, 4]]])
    frames, rec = shifts.translate(x, per)
    for n in range(2):
        for t in range(2):
            np.testing.assert_array_equal(
                    frames[n, t], np.roll(x[n], tuple(per[n, t]), axis=(0, 1)))
    assert rec.offsets == (((0, 1), (2, 3)), ((-1, 0), (4, 4)))


def test_translate_fourier_integer_equals_roll_and_halves_compose():
    x = images(shape=(1, 9, 11, 2), dtype=np.float64)  # odd: no Nyquist bin
    frames, rec = shifts.translate(x, [(0, 0), (1, -2), (0.5, 0.0)], method="fourier")
    np.testing.assert_allclose(frames[:, 0], x, atol=1e-12)
    np.testing.assert_allclose(frames[:, 1], np.roll(x, (1, -2), axis=(1, 2)),
                               atol=1e-12)
    twice, _ = shifts.translate(np.asarray(frames[:, 2]), [(0.5, 0.0)],
                                method="fourier")
    np.testing.assert_allclose(twice[:, 0], np.roll(x, (1, 0), axis=(1, 2)),
                               atol=1e-12)
    assert rec.protocol == "fourier"
    assert rec.offsets[2] == (0.5, 0.0)


# ---------------------------------------------------------------------------
# Crop
# ---------------------------------------------------------------------------


def test_crop_equals_numpy_slicing():
    x = images(shape=(3, 15, 13, 2))
    offs = [(0, 0), (1, 1), (5, 3), (7, 5)]
    frames, rec = shifts.crop(x, offs, size=(8, 8))
    assert frames.shape == (3, 4, 8, 8, 2)
    for t, (oy, ox) in enumerate(offs):
        np.testing.assert_array_equal(frames[:, t], x[:, oy:oy + 8, ox:ox + 8])
    assert rec.protocol == "crop"
    assert rec.offsets == tuple(offs)
    assert (rec.input_size, rec.output_size) == ((15, 13), (8, 8))
    assert rec.object_sizes == ((8, 8),) * 4
    assert rec.fill is None and rec.resize_method is None


def test_crop_per_sample_offsets():
    x = images(shape=(3, 10, 10, 1))
    rng = np.random.default_rng(1)
    per = rng.integers(0, 4, size=(3, 2, 2))
    frames, _ = shifts.crop(x, per, size=7)
    for n in range(3):
        for t in range(2):
            oy, ox = per[n, t]
            np.testing.assert_array_equal(frames[n, t], x[n, oy:oy + 7, ox:ox + 7])


def test_crop_diagonal_step_moves_content_by_minus_one():
    x = images(shape=(2, 234 // 9, 234 // 9, 3))
    sched = shifts.diagonal_schedule(26, 16)
    frames, _ = shifts.crop(x, sched.offsets, size=16)
    for a, b in sched.pairs:
        # crop at c + 1 is the crop at c moved up-left by one pixel.
        np.testing.assert_array_equal(frames[:, b, :-1, :-1], frames[:, a, 1:, 1:])


# ---------------------------------------------------------------------------
# Resize, embed, scale
# ---------------------------------------------------------------------------


def test_resize_matches_jax_image_and_keeps_constants():
    x = images(shape=(1, 20, 16, 3))
    for method in ("linear", "lanczos3"):
        got = shifts.resize_images(x, (9, 7), method=method)
        ref = jax.image.resize(x, (1, 9, 7, 3), method=method, antialias=True)
        np.testing.assert_allclose(got, ref, atol=1e-6)
    const = np.full((1, 20, 16, 1), 0.4, np.float32)
    np.testing.assert_allclose(shifts.resize_images(const, 7), 0.4, atol=1e-6)


@pytest.mark.parametrize("fill", [0.0, -0.7, (0.1, 0.2, 0.3)])
def test_embed_geometry_and_canvas_value(fill):
    x = images()
    offs = [(0, 0), (3, 5), (12, 10)]
    frames, rec = shifts.embed(x, offs, canvas_size=(20, 22), object_size=(8, 12),
                               fill=fill, method="lanczos3")
    assert frames.shape == (2, 3, 20, 22, 3)
    obj = np.asarray(shifts.resize_images(x, (8, 12), method="lanczos3"))
    fill_c = np.broadcast_to(np.asarray(fill, np.float32), (3,))
    for t, (oy, ox) in enumerate(offs):
        f = np.asarray(frames[:, t])
        np.testing.assert_array_equal(f[:, oy:oy + 8, ox:ox + 12], obj)
        outside = np.ones((20, 22), bool)
        outside[oy:oy + 8, ox:ox + 12] = False
        np.testing.assert_array_equal(f[:, outside], np.broadcast_to(
                fill_c, f[:, outside].shape))
    assert rec.protocol == "embed"
    assert rec.offsets == tuple(offs)
    assert (rec.input_size, rec.output_size) == ((12, 14), (20, 22))
    assert rec.object_sizes == ((8, 12),) * 3
    assert rec.fill == (fill if isinstance(fill, tuple) else float(fill))
    assert (rec.resize_method, rec.antialias, rec.inpaint) == ("lanczos3", True, None)
    assert json.loads(json.dumps(rec.to_dict()))["fill"] == (
            list(fill) if isinstance(fill, tuple) else fill)


def test_embed_without_resize_pastes_input_exactly():
    x = images()
    frames, rec = shifts.embed(x, [(2, 1)], canvas_size=20, fill=0.5)
    np.testing.assert_array_equal(frames[:, 0, 2:14, 1:15], x)
    assert rec.resize_method is None and rec.antialias is None
    assert rec.object_sizes == ((12, 14),)


def test_embed_diagonal_step_moves_content_by_plus_one():
    x = images()
    sched = shifts.diagonal_schedule(24, 12)
    frames, _ = shifts.embed(x, sched.offsets, canvas_size=24, object_size=12,
                             fill=0.3)
    for a, b in sched.pairs:
        np.testing.assert_array_equal(frames[:, b],
                                      np.roll(frames[:, a], (1, 1), axis=(1, 2)))


@pytest.mark.parametrize("s,w,center", [(1.3, 172, 25), (1.6, 140, 41), (1.9, 117, 53)])
def test_authors_black_protocol_geometry(s, w, center):
    # The image is resized to int(224 / s) and pasted at (c, c), (c+1, c+1) with
    # center = floor((224 - w - 1) / 2), c = center - 4 .. center + 3.
    assert int(224 / s) == w
    sched = shifts.diagonal_schedule(224, w)
    np.testing.assert_array_equal(sched.offsets[:, 0], np.arange(center - 4, center + 5))
    np.testing.assert_array_equal(sched.offsets[:, 0], sched.offsets[:, 1])


def test_scale_grows_object_by_one_pixel():
    x = images(shape=(1, 12, 12, 3))
    sched = shifts.scale_schedule(10, 20, n_pairs=2)
    np.testing.assert_array_equal(sched.sizes, [[10, 10], [11, 11], [12, 12]])
    np.testing.assert_array_equal(sched.offsets, [[5, 5], [4, 4], [4, 4]])
    frames, rec = shifts.scale(x, sched.sizes, sched.offsets, canvas_size=20, fill=0.0)
    for t, ((h, w), (oy, ox)) in enumerate(zip(sched.sizes, sched.offsets)):
        obj = shifts.resize_images(x, (int(h), int(w)))
        f = np.asarray(frames[0, t])
        np.testing.assert_array_equal(f[oy:oy + h, ox:ox + w], obj[0])
        mask = np.ones((20, 20), bool)
        mask[oy:oy + h, ox:ox + w] = False
        assert (f[mask] == 0).all()
    assert rec.protocol == "scale"
    assert rec.object_sizes == ((10, 10), (11, 11), (12, 12))
    assert rec.resize_method == "linear"


# ---------------------------------------------------------------------------
# Inpainting
# ---------------------------------------------------------------------------


def np_inpaint(img, known, max_iter=80, max_unfilled=200):
    """Naive reference: 2-D 12x12 binomial kernel, explicit loops over taps."""
    k = np.array([0.5, 0.5])
    for _ in range(10):
        k = np.convolve(k, [0.5, 0.5])
    k2 = np.outer(k, k)
    im = np.asarray(img, np.float64).copy()
    m = np.asarray(known).copy()
    h, w, _ = im.shape
    it = 0
    while it < max_iter and (~m).sum() > max_unfilled:
        p_im = np.pad(im * m[..., None], ((6, 5), (6, 5), (0, 0)))
        p_m = np.pad(m.astype(np.float64), ((6, 5), (6, 5)))
        num = np.zeros_like(im)
        den = np.zeros((h, w))
        for a in range(12):
            for b in range(12):
                num += k2[a, b] * p_im[a:a + h, b:b + w]
                den += k2[a, b] * p_m[a:a + h, b:b + w]
        new = (den > 0) & ~m
        im[new] = num[new] / den[new][:, None]
        m = m | (den > 0)
        it += 1
    return im, m


def test_inpaint_kernel_is_binomial_12():
    from math import comb
    np.testing.assert_allclose(shifts.INPAINT_KERNEL,
                               [comb(11, j) / 2 ** 11 for j in range(12)], atol=0)


@pytest.mark.parametrize("max_unfilled", [0, 200])
def test_inpaint_matches_naive_reference(max_unfilled):
    rng = np.random.default_rng(0)
    img = rng.random((1, 30, 26, 2))
    known = np.zeros((30, 26), bool)
    known[2:8, 3:9] = True  # needs several iterations to reach the far corner
    img[0, ~known] = 0.0
    got, got_known = shifts.inpaint(img, known, max_unfilled=max_unfilled)
    ref, ref_known = np_inpaint(img[0], known, max_unfilled=max_unfilled)
    np.testing.assert_array_equal(got_known[0], ref_known)
    np.testing.assert_allclose(got[0], ref, atol=1e-12)
    if max_unfilled == 0:
        assert bool(got_known.all())
    else:
        assert (~np.asarray(got_known)).sum() <= 200


@pytest.mark.parametrize("method", ["normalized_conv", "biharmonic"])
def test_inpaint_fills_holes_and_keeps_known_pixels(method):
    rng = np.random.default_rng(1)
    x = rng.random((2, 16, 18, 3)).astype(np.float32)
    known = rng.random((2, 16, 18)) > 0.4
    known[1, 4:12, 5:15] = False  # a large hole
    filled, after = shifts.inpaint(x, known, method=method, max_unfilled=0)
    assert bool(after.all())
    f = np.asarray(filled)
    np.testing.assert_array_equal(f[known], x[known])
    assert np.isfinite(f).all()
    # Filled values are convex-ish combinations of the data: within its range.
    assert f.min() >= -0.1 and f.max() <= 1.1


def test_inpaint_reproduces_constant_and_linear_ramp():
    h, w = 48, 48
    yy, xx = np.mgrid[:h, :w]
    ramp = (0.3 + 0.01 * yy + 0.005 * xx)[None, ..., None]
    known = np.ones((h, w), bool)
    known[18:30, 20:28] = False
    hole = ~known
    # Constant: exact (a normalized weighted average of equal values).
    const = np.full((1, h, w, 1), 0.7)
    out, _ = shifts.inpaint(np.where(known[None, ..., None], const, 0.0), known,
                            max_unfilled=0)
    np.testing.assert_allclose(out, const, atol=1e-12)
    # Linear ramp: biharmonic is exact (a linear function is biharmonic);
    # normalized convolution is a weighted average of the known border, within
    # a few pixels' slope (slope 0.01 per pixel here).
    src = np.where(known[None, ..., None], ramp, 0.0)
    bi, _ = shifts.inpaint(src, known, method="biharmonic")
    np.testing.assert_allclose(bi, ramp, atol=1e-8)
    nc, _ = shifts.inpaint(src, known, max_unfilled=0)
    err = np.abs(np.asarray(nc) - ramp)[0, ..., 0][hole]
    # The ramp varies by 0.15 across the hole; the error stays below 4 pixels'
    # worth of slope.
    assert err.max() < 0.04 and err.mean() < 0.02


def test_inpaint_each_image_stops_on_its_own():
    rng = np.random.default_rng(2)
    x = rng.random((2, 32, 32, 1))
    known = np.ones((2, 32, 32), bool)
    known[0, :20, :20] = False       # 400 unknown pixels: iterates
    known[1, :10, :10] = False       # 100 unknown: no iteration at all
    both, _ = shifts.inpaint(x, known)
    for i in range(2):
        alone, _ = shifts.inpaint(x[i:i + 1], known[i])
        np.testing.assert_allclose(both[i], alone[0], atol=1e-12)
    np.testing.assert_array_equal(both[1], x[1])  # untouched: <= 200 unknown


def test_embed_with_inpainting_keeps_object_and_fills_canvas():
    x = images(shape=(1, 10, 10, 3))
    frames, rec = shifts.embed(x, [(5, 7), (6, 8)], canvas_size=24, fill=0.0,
                               inpaint="normalized_conv", max_unfilled=0)
    f = np.asarray(frames)
    np.testing.assert_array_equal(f[0, 0, 5:15, 7:17], x[0])
    np.testing.assert_array_equal(f[0, 1, 6:16, 8:18], x[0])
    assert (f.reshape(-1, 3) != 0).any(axis=1).all()  # no canvas pixel left black
    assert (rec.inpaint, rec.inpaint_max_iter, rec.inpaint_max_unfilled) == (
            "normalized_conv", 80, 0)
    _, rec_b = shifts.embed(x, [(5, 6)], canvas_size=16, inpaint="biharmonic")
    assert rec_b.inpaint == "biharmonic" and rec_b.inpaint_max_iter is None


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def test_diagonal_schedule_crop_234_to_224():
    # The authors' Crop protocol: center = floor((234 - 224 - 1) / 2) = 4,
    # pairs (c, c) -> (c + 1, c + 1) for c = 0..7.
    sched = shifts.diagonal_schedule(234, 224)
    np.testing.assert_array_equal(sched.offsets, np.stack([np.arange(9)] * 2, 1))
    firsts = sched.offsets[sched.pairs[:, 0], 0]
    np.testing.assert_array_equal(firsts, np.arange(8))
    np.testing.assert_array_equal(sched.pairs[:, 1] - sched.pairs[:, 0], 1)
    assert sched.name == "diagonal"
    json.dumps(sched.to_dict())


def test_diagonal_schedule_anisotropic_and_errors():
    sched = shifts.diagonal_schedule((30, 40), (20, 20), n_pairs=4)
    # centers floor(9 / 2) = 4 and floor(19 / 2) = 9.
    np.testing.assert_array_equal(sched.offsets[:, 0], np.arange(2, 7))
    np.testing.assert_array_equal(sched.offsets[:, 1], np.arange(7, 12))
    with pytest.raises(ValueError, match="too small for `n_pairs`=8"):
        shifts.diagonal_schedule(230, 224)


def test_sweep_grid_random_schedules():
    s = shifts.sweep_schedule(5, axis="vertical", start=(2, 3), step=2)
    np.testing.assert_array_equal(s.offsets, [[2, 3], [4, 3], [6, 3], [8, 3], [10, 3]])
    np.testing.assert_array_equal(s.pairs, [[0, 1], [1, 2], [2, 3], [3, 4]])
    d = shifts.sweep_schedule(3, axis="diagonal", step=0.5)
    np.testing.assert_array_equal(d.offsets, [[0, 0], [0.5, 0.5], [1.0, 1.0]])
    g = shifts.grid_schedule((2, 3))
    np.testing.assert_array_equal(
            g.offsets, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    np.testing.assert_array_equal(g.pairs[:, 0], 0)
    np.testing.assert_array_equal(g.pairs[:, 1], np.arange(1, 6))
    r = shifts.random_pair_schedule(jax.random.key(0), 500)
    assert r.offsets.shape == (500, 2, 2)
    assert r.offsets.min() == 0 and r.offsets.max() == 31
    np.testing.assert_array_equal(r.pairs, [[0, 1]])
    again = shifts.random_pair_schedule(jax.random.key(0), 500)
    np.testing.assert_array_equal(r.offsets, again.offsets)
    sym = shifts.random_pair_schedule(jax.random.key(1), 500, min_offset=-3, max_offset=3)
    assert sym.offsets.min() == -3 and sym.offsets.max() == 2
    assert shifts.center_offset((20, 21), (9, 10)) == (5, 5)


def test_zhang_protocol_end_to_end():
    x = images(shape=(4, 40, 40, 1))
    sched = shifts.random_pair_schedule(jax.random.key(3), 4, max_offset=8)
    frames, rec = shifts.crop(x, sched.offsets, size=32)
    assert frames.shape == (4, 2, 32, 32, 1)
    for n in range(4):
        for t in range(2):
            oy, ox = sched.offsets[n, t]
            np.testing.assert_array_equal(frames[n, t], x[n, oy:oy + 32, ox:ox + 32])
    assert len(rec.offsets) == 4 and len(rec.offsets[0]) == 2


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_errors():
    x = images()
    with pytest.raises(ValueError, match=r"`shift` must be a pair \(ty, tx\) of ints"):
        shifts.circular_shift(x, (1.5, 0))
    with pytest.raises(ValueError, match=r"`x` must have rank 4"):
        shifts.crop(x[0], [(0, 0)], size=4)
    with pytest.raises(TypeError, match="`x` must be a real float array"):
        shifts.crop(x.astype(np.int32), [(0, 0)], size=4)
    with pytest.raises(ValueError, match=r"must place the \(8, 8\) window inside"):
        shifts.crop(x, [(0, 0), (5, 0)], size=8)
    with pytest.raises(ValueError, match="must fit inside the images"):
        shifts.crop(x, [(0, 0)], size=(13, 4))
    with pytest.raises(TypeError, match="`offsets` must hold integer"):
        shifts.crop(x, [(0.5, 0)], size=4)
    with pytest.raises(ValueError, match=r"`offsets` must have shape \[T, 2\]"):
        shifts.crop(x, [(0, 0, 0)], size=4)
    with pytest.raises(ValueError, match=r"per-sample `offsets` .* with N = 2"):
        shifts.crop(x, np.zeros((3, 1, 2), int), size=4)
    with pytest.raises(ValueError, match="`fill` must be a float or a sequence of 3"):
        shifts.embed(x, [(0, 0)], canvas_size=20, fill=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"must fit inside `canvas_size` \(10, 10\)"):
        shifts.embed(x, [(0, 0)], canvas_size=10)
    with pytest.raises(ValueError, match=r"must place the \(12, 14\) object inside"):
        shifts.embed(x, [(9, 0)], canvas_size=20)
    with pytest.raises(ValueError, match="`method` must be one of"):
        shifts.embed(x, [(0, 0)], canvas_size=20, object_size=8, method="bilinear")
    with pytest.raises(ValueError, match="`inpaint` must be one of"):
        shifts.embed(x, [(0, 0)], canvas_size=20, inpaint="telea")
    with pytest.raises(TypeError, match="`antialias` must be a bool"):
        shifts.resize_images(x, 4, antialias=1)
    with pytest.raises(ValueError, match="`offsets` must hold one offset per frame"):
        shifts.scale(x, [(4, 4), (5, 5)], [(0, 0)], canvas_size=20)
    with pytest.raises(ValueError, match=r"`sizes` must be positive int pairs"):
        shifts.scale(x, [(4, 0)], [(0, 0)], canvas_size=20)
    with pytest.raises(ValueError, match="`method` must be one of"):
        shifts.translate(x, [(0, 0)], method="lanczos")
    with pytest.raises(TypeError, match="`known` must be a bool array"):
        shifts.inpaint(x, np.ones((12, 14)))
    with pytest.raises(ValueError, match=r"`known` must have shape \[N, H, W\]"):
        shifts.inpaint(x, np.ones((12, 15), bool))
    with pytest.raises(ValueError, match=r"no known pixel in image\(s\) \[1\]"):
        k = np.ones((2, 12, 14), bool)
        k[1] = False
        shifts.inpaint(x, k)
    with pytest.raises(ValueError, match="`max_unfilled` must be a non-negative int"):
        shifts.inpaint(x, np.ones((12, 14), bool), max_unfilled=-1)
    with pytest.raises(ValueError, match="`step` must be a nonzero number"):
        shifts.sweep_schedule(3, step=0)
    with pytest.raises(ValueError, match="`max_offset` .* must exceed `min_offset`"):
        shifts.random_pair_schedule(jax.random.key(0), 2, max_offset=0)
    with pytest.raises(TypeError, match="`key` must be a JAX PRNG key"):
        shifts.random_pair_schedule(0, 2)
    with pytest.raises(ValueError, match="must fit in `canvas_size`"):
        shifts.scale_schedule(20, 22, n_pairs=3)
    with pytest.raises(ValueError, match="`fill` must be finite"):
        shifts.embed(x, [(0, 0)], canvas_size=20, fill=float("nan"))
    with pytest.raises(ValueError, match=r"`small` \(9, 9\) must not exceed `large`"):
        shifts.center_offset(8, 9)
    with pytest.raises(ValueError, match="`size` must be a positive int or a pair"):
        shifts.resize_images(x, (0, 4))
    with pytest.raises(ValueError, match=r"`axis` must be one of"):
        shifts.sweep_schedule(3, axis="up")
