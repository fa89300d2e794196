"""Real images from a folder, preprocessed as a trained network expects.

:func:`image_folder` indexes a folder in one of two layouts and returns an
:class:`ImageFolder`, which reads and preprocesses the images lazily (a
``grain.MapDataset``: random access by index, so a long job can resume at any
batch):

* *class folders* (torchvision's ``ImageFolder``): ``root/<class>/<image>``; the
  label of an image is its folder's class;
* *flat*: images directly in ``root``, with optional labels from a CSV file of
  ``file,label`` rows (a header row is allowed).

Labels are indices into the model's classes. The mapping from class names (folder
names, or names in the CSV) to indices is explicit: a ``classes`` file lists the
model's classes, one name per line, in the order of its logits. Without one, class
folders are numbered in sorted order (torchvision's convention) and CSV labels must
be integers. Without labels only label-free measures apply.

Preprocessing (``preprocess``), recorded in :attr:`ImageFolder.preprocessing`:

* ``"imagenet"``: resize the shorter side to ``round(size * 256 / 224)`` (256 for
  224), centre-crop ``size`` x ``size``, scale to [0, 1], subtract the ImageNet mean
  (0.485, 0.456, 0.406) and divide by the std (0.229, 0.224, 0.225) per channel:
  torchvision's and timm's standard evaluation transform;
* ``"caffe"``: the same resize and crop; RGB -> BGR, [0, 255], minus (103.939,
  116.779, 123.68) (Keras VGG16 / ResNet50 ``preprocess_input``);
* ``"tf"``: the same resize and crop; [-1, 1] (Keras MobileNet, EfficientNet-style);
* ``"none"``: the same resize and crop; [0, 1].

Gray images are repeated to three channels; alpha is composited over white.
This module does file I/O by design (a data loader, not a numerical module).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any

import numpy as np

from sigcnn._checks import as_pair, check_choice
from sigcnn.data.natural import IMAGE_EXTENSIONS, _read_file, normalized_extensions

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PREPROCESSINGS", "ImageFolder",
           "image_folder", "normalize", "preprocess_image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSINGS = ("imagenet", "caffe", "tf", "none")


def _resize_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shorter side to round(max(size) * 256 / 224), then a centre crop."""
    from PIL import Image

    h, w = img.shape[:2]
    short = int(round(max(size) * 256 / 224))
    scale = short / min(h, w)
    nh, nw = max(size[0], int(round(h * scale))), max(size[1], int(round(w * scale)))
    chans = [Image.fromarray(img[..., c], mode="F").resize((nw, nh), Image.BILINEAR)
             for c in range(img.shape[-1])]
    out = np.stack([np.asarray(c) for c in chans], axis=-1)
    top, left = (nh - size[0]) // 2, (nw - size[1]) // 2
    return out[top:top + size[0], left:left + size[1]]


def preprocess_image(img: np.ndarray, *, size, preprocess: str = "imagenet"
                     ) -> np.ndarray:
    """One float image [H, W, C] in [0, 1] -> float32 [size, size, 3], preprocessed.

    Args:
        img: float array [H, W, C], C in {1, 3}, values in [0, 1].
        size: int or (h, w): the crop.
        preprocess: one of `PREPROCESSINGS` (see the module docstring).

    Returns:
        float32 array [h, w, 3].

    Examples:
        >>> img = np.random.default_rng(0).uniform(size=(300, 400, 3))
        >>> preprocess_image(img.astype(np.float32), size=224).shape
        (224, 224, 3)
    """
    size = as_pair("size", size)
    preprocess = check_choice("preprocess", preprocess, PREPROCESSINGS)
    img = np.asarray(img, np.float32)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return normalize(np.clip(_resize_crop(img, size), 0.0, 1.0), preprocess)


def normalize(x: np.ndarray, preprocess: str) -> np.ndarray:
    """RGB values in [0, 1], [..., 3] -> the network's input range (the value
    step of `preprocess_image`).

    Examples:
        >>> normalize(np.full((1, 1, 3), 0.5, np.float32), "tf").ravel().tolist()
        [0.0, 0.0, 0.0]
    """
    preprocess = check_choice("preprocess", preprocess, PREPROCESSINGS)
    x = np.asarray(x, np.float32)
    if preprocess == "imagenet":
        x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD,
                                                                     np.float32)
    elif preprocess == "caffe":
        x = x[..., ::-1] * 255.0 - np.asarray(_CAFFE_MEAN_BGR, np.float32)
    elif preprocess == "tf":
        x = x * 2.0 - 1.0
    return np.ascontiguousarray(x, np.float32)


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """An indexed image folder; images are read and preprocessed on access.

    Attributes:
        root: the folder.
        files: image paths relative to `root`, in a fixed (sorted) order.
        labels: int array [len(files)] of class indices into the model's
            classes, or None (no labels).
        classes: the class names, indexed as the labels are (None without).
        size: (h, w) of the preprocessed images.
        preprocess: the preprocessing name (see the module docstring).
    """

    root: str
    files: tuple[str, ...]
    labels: np.ndarray | None
    classes: tuple[str, ...] | None
    size: tuple[int, int]
    preprocess: str

    def __len__(self) -> int:
        return len(self.files)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What was done to the images, for the results' metadata."""
        out: dict[str, Any] = {"name": self.preprocess, "size": list(self.size),
                               "resize_shorter_side": int(round(max(self.size)
                                                                * 256 / 224)),
                               "crop": "centre", "interpolation": "bilinear"}
        if self.preprocess == "imagenet":
            out.update(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
        elif self.preprocess == "caffe":
            out.update(channel_order="BGR", scale=255, mean=list(_CAFFE_MEAN_BGR))
        elif self.preprocess == "tf":
            out.update(range=[-1, 1])
        return out

    def image(self, i: int) -> np.ndarray:
        """Preprocessed image i, float32 [h, w, 3]."""
        path = os.path.join(self.root, self.files[i])
        return preprocess_image(_read_file(path), size=self.size,
                                preprocess=self.preprocess)

    def dataset(self):
        """A ``grain.MapDataset`` of {"image": [h, w, 3], "label": int (-1 without
        labels), "index": int}; ``.batch(n)`` batches it."""
        import grain

        labels = self.labels

        def read(i):
            return {"image": self.image(i), "index": np.int64(i),
                    "label": np.int64(-1 if labels is None else labels[i])}

        return grain.MapDataset.range(len(self)).map(read)

    def batches(self, batch_size: int):
        """``self.dataset().batch(batch_size)``: random access to batch k."""
        return self.dataset().batch(batch_size)

    def stream(self, indices=None, *, num_threads: int = 4, prefetch: int = 16):
        """The preprocessed images of `indices`, in order, read ahead in threads.

        A ``grain.MapDataset`` of the images turned into an iterable dataset
        whose `num_threads` worker threads keep at most `prefetch` images read
        ahead of the consumer, so reading the next images overlaps whatever
        the consumer does with the current ones, and memory stays bounded
        whatever the folder's size. ``num_threads=0`` or ``prefetch=0`` reads
        each image when it is asked for, in the calling thread.

        Args:
            indices: int sequence of image indices (None: every image).
            num_threads: non-negative int, worker threads.
            prefetch: non-negative int, images read ahead at most.

        Returns:
            a ``grain`` iterator of float32 images [h, w, 3]; call its
            ``close()`` to stop the threads early.

        Raises:
            ValueError: a negative `num_threads` or `prefetch`, or an index
                outside [0, len(self)).

        Examples:
            >>> import tempfile, PIL.Image
            >>> root = tempfile.mkdtemp()
            >>> for k in range(3):
            ...     PIL.Image.new("RGB", (9, 9)).save(os.path.join(root, f"{k}.png"))
            >>> it = image_folder(root, size=8).stream([2, 0], num_threads=2)
            >>> [x.shape for x in it]
            [(8, 8, 3), (8, 8, 3)]
        """
        import grain

        for name, value in (("num_threads", num_threads), ("prefetch", prefetch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < 0:
                raise ValueError(f"`{name}` must be a non-negative int; got "
                                 f"{value!r}.")
        idx = (np.arange(len(self)) if indices is None
               else np.asarray(indices, np.int64).reshape(-1))
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise ValueError(f"`indices` must lie in [0, {len(self)}); got "
                             f"{int(bad)}.")
        ds = grain.MapDataset.range(int(idx.size)).map(
                lambda j: self.image(int(idx[j])))
        options = grain.ReadOptions(num_threads=int(num_threads),
                                    prefetch_buffer_size=int(prefetch))
        return iter(ds.to_iter_dataset(options))


def _read_classes(path) -> tuple[str, ...]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`classes`: no such file {path!r}.")
    with open(path, encoding="utf-8") as fh:
        names = tuple(line.strip() for line in fh if line.strip())
    if not names:
        raise ValueError(f"`classes`: {path!r} lists no class names (one per line).")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:3]
        raise ValueError(f"`classes`: {path!r} lists a class twice: {dup}.")
    return names


def _images_in(folder: str, exts) -> list[str]:
    return sorted(f for f in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, f))
                  and os.path.splitext(f)[1].lower() in exts)


def _index(names, classes, what: str) -> np.ndarray:
    """Class names -> indices into `classes`; errors list what does not match."""
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({n for n in names if n not in lookup})
    if unknown:
        raise ValueError(f"{what} {unknown[:5]} (of {len(unknown)}) are not in "
                         f"`classes` ({len(classes)} names, e.g. "
                         f"{list(classes[:3])}): the class-index mapping does not "
                         "match the model's classes.")
    return np.asarray([lookup[n] for n in names], np.int64)


def _read_label_csv(path, files, classes):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`labels`: no such file {path!r}.")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows and len(rows[0]) >= 2 and rows[0][0].strip().lower() in ("file", "filename",
                                                                       "image", "path"):
        rows = rows[1:]
    table = {}
    for k, r in enumerate(rows):
        if len(r) < 2:
            raise ValueError(f"`labels`: row {k + 1} of {path!r} is {r!r}; expected "
                             "'file,label'.")
        table[r[0].strip()] = r[1].strip()
    missing = [f for f in files if f not in table]
    if missing:
        raise ValueError(f"`labels`: {path!r} has no label for {missing[:3]} (of "
                         f"{len(missing)} images).")
    values = [table[f] for f in files]
    if classes is not None:
        if all(v.lstrip("-").isdigit() for v in values):
            idx = np.asarray([int(v) for v in values], np.int64)
            bad = idx[(idx < 0) | (idx >= len(classes))]
            if bad.size:
                raise ValueError(f"`labels`: index {int(bad[0])} is outside the "
                                 f"{len(classes)} classes of `classes`.")
            return idx
        return _index(values, classes, "`labels`: the class names")
    if not all(v.lstrip("-").isdigit() and int(v) >= 0 for v in values):
        raise ValueError("`labels`: labels that are class names need a `classes` "
                         "file (the model's classes, one per line) to map them to "
                         "indices.")
    return np.asarray([int(v) for v in values], np.int64)


def image_folder(path, *, size=224, preprocess: str = "imagenet", labels=None,
                 classes=None, extensions=IMAGE_EXTENSIONS) -> ImageFolder:
    """Indexes an image folder (class folders, or flat with optional CSV labels).

    Args:
        path: the folder.
        size: int or (h, w), the size of the preprocessed images (224).
        preprocess: one of "imagenet" (default), "caffe", "tf", "none".
        labels: optional CSV file of ``file,label`` rows for a flat folder (label:
            class index, or class name with `classes`).
        classes: optional text file of the model's class names, one per line in
            logit order; folder names (or CSV names) are mapped through it.
        extensions: image file extensions read (case-insensitive).

    Returns:
        :class:`ImageFolder`.

    Raises:
        FileNotFoundError / NotADirectoryError: `path`, `labels` or `classes` is
            missing or of the wrong kind.
        ValueError: no images; labels for class folders; a class that `classes`
            does not list; a CSV without a label for every image.

    Examples:
        >>> import tempfile, PIL.Image
        >>> root = tempfile.mkdtemp()
        >>> for c in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, c))
        ...     PIL.Image.new("RGB", (40, 30)).save(os.path.join(root, c, "a.png"))
        >>> data = image_folder(root, size=32)
        >>> data.files, data.labels.tolist(), data.classes
        (('cat/a.png', 'dog/a.png'), [0, 1], ('cat', 'dog'))
        >>> data.image(0).shape
        (32, 32, 3)
    """
    root = os.fspath(path)
    if not os.path.exists(root):
        raise FileNotFoundError(f"`path`: no such folder {root!r}.")
    if not os.path.isdir(root):
        raise NotADirectoryError(f"`path`: {root!r} is not a folder.")
    size = as_pair("size", size)
    preprocess = check_choice("preprocess", preprocess, PREPROCESSINGS)
    exts = normalized_extensions(extensions)
    names = _read_classes(classes) if classes is not None else None
    flat = _images_in(root, exts)
    subdirs = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
                     and _images_in(os.path.join(root, d), exts))
    if flat or not subdirs:
        if not flat:
            raise ValueError(f"`path`: {root!r} holds no image file with an extension "
                             f"in {list(exts)}, directly or in class folders.")
        y = _read_label_csv(labels, flat, names) if labels is not None else None
        return ImageFolder(root, tuple(flat), y, names if y is not None else None,
                           size, preprocess)
    if labels is not None:
        raise ValueError("`labels`: a CSV of labels is for a flat folder; "
                         f"{root!r} has class folders, which are the labels.")
    files, folder_of = [], []
    for d in subdirs:
        for f in _images_in(os.path.join(root, d), exts):
            files.append(f"{d}/{f}")
            folder_of.append(d)
    if names is None:
        names = tuple(subdirs)
    y = _index(folder_of, names, "the class folders")
    return ImageFolder(root, tuple(files), y, names, size, preprocess)
