"""sigcnn.data.image_folder: layouts, labels, class mapping and preprocessing.

Oracles: a NumPy re-implementation of the ImageNet transform's arithmetic on an
image whose resize is the identity, and PIL-written files whose pixel values are
known.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from sigcnn.data import ImageFolder, image_folder, preprocess_image
from sigcnn.data.folder import IMAGENET_MEAN, IMAGENET_STD


def _png(path, rgb=(10, 200, 30), size=(40, 30)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def test_preprocessings_on_a_constant_image():
    rgb = np.array([10, 200, 30], np.float32) / 255
    img = np.broadcast_to(rgb, (300, 260, 3)).astype(np.float32)
    x = preprocess_image(img, size=224)
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[100, 50], (rgb - IMAGENET_MEAN) / IMAGENET_STD,
                               rtol=1e-5)
    np.testing.assert_allclose(preprocess_image(img, size=32, preprocess="tf")[3, 3],
                               rgb * 2 - 1, rtol=1e-5)
    caffe = preprocess_image(img, size=32, preprocess="caffe")[0, 0]
    np.testing.assert_allclose(caffe, rgb[::-1] * 255 - [103.939, 116.779, 123.68],
                               rtol=1e-4)
    gray = preprocess_image(img[..., :1], size=(16, 20), preprocess="none")
    assert gray.shape == (16, 20, 3)
    np.testing.assert_allclose(gray[5, 5], [rgb[0]] * 3, rtol=1e-5)
    with pytest.raises(ValueError, match="`preprocess`"):
        preprocess_image(img, size=32, preprocess="vgg")


def test_resize_shorter_side_and_centre_crop_geometry():
    # 256 x 512 ramp: shorter side 256 stays (no resampling), crop is the centre
    ramp = np.tile(np.linspace(0, 1, 512, dtype=np.float32), (256, 1))[..., None]
    x = preprocess_image(ramp, size=224, preprocess="none")
    left = (512 - 224) // 2
    np.testing.assert_allclose(x[10, :, 0], ramp[0, left:left + 224, 0], atol=1e-6)


def test_class_folders_with_and_without_a_classes_file(tmp_path):
    for c, rgb in (("dog", (0, 0, 255)), ("cat", (255, 0, 0))):
        for k in range(2):
            _png(tmp_path / "data" / c / f"{k}.png", rgb)
    data = image_folder(tmp_path / "data", size=16)
    assert isinstance(data, ImageFolder) and len(data) == 4
    assert data.classes == ("cat", "dog")
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.preprocessing["mean"] == list(IMAGENET_MEAN)
    np.testing.assert_allclose(data.image(0)[0, 0],
                               (np.array([1.0, 0, 0]) - IMAGENET_MEAN) / IMAGENET_STD,
                               rtol=1e-5)
    (tmp_path / "classes.txt").write_text("bird\ndog\ncat\n")
    mapped = image_folder(tmp_path / "data", size=16, classes=tmp_path / "classes.txt")
    assert mapped.labels.tolist() == [2, 2, 1, 1]
    (tmp_path / "few.txt").write_text("dog\n")
    with pytest.raises(ValueError, match=r"\['cat'\] .* are not in `classes`"):
        image_folder(tmp_path / "data", size=16, classes=tmp_path / "few.txt")
    batches = data.batches(3)
    assert len(batches) == 2
    b = batches[1]
    assert b["image"].shape == (1, 16, 16, 3) and b["label"].tolist() == [1]
    assert b["index"].tolist() == [3]


def test_flat_folder_with_csv_labels_or_none(tmp_path):
    for name in ("b.jpg", "a.png"):
        _png(tmp_path / "flat" / name)
    data = image_folder(tmp_path / "flat", size=8)
    assert data.files == ("a.png", "b.jpg") and data.labels is None
    assert data.dataset()[0]["label"] == -1
    (tmp_path / "labels.csv").write_text("file,label\nb.jpg,3\na.png,7\n")
    lab = image_folder(tmp_path / "flat", size=8, labels=tmp_path / "labels.csv")
    assert lab.labels.tolist() == [7, 3]
    (tmp_path / "names.csv").write_text("a.png,dog\nb.jpg,cat\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    named = image_folder(tmp_path / "flat", size=8, labels=tmp_path / "names.csv",
                         classes=tmp_path / "classes.txt")
    assert named.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="need a `classes` file"):
        image_folder(tmp_path / "flat", size=8, labels=tmp_path / "names.csv")
    (tmp_path / "part.csv").write_text("a.png,1\n")
    with pytest.raises(ValueError, match=r"no label for \['b.jpg'\]"):
        image_folder(tmp_path / "flat", size=8, labels=tmp_path / "part.csv")


def test_errors_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="`path`: no such folder"):
        image_folder(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image file"):
        image_folder(tmp_path / "empty")
    _png(tmp_path / "cls" / "a" / "x.png")
    with pytest.raises(ValueError, match="`labels`: a CSV of labels is for a flat"):
        image_folder(tmp_path / "cls", labels=tmp_path / "l.csv")
    with pytest.raises(FileNotFoundError, match="`classes`: no such file"):
        image_folder(tmp_path / "cls", classes=tmp_path / "c.txt")
    with pytest.raises(ValueError, match="`size`"):
        image_folder(tmp_path / "cls", size=0)
