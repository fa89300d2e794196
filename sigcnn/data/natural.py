"""Natural images that ship offline inside installed packages, and user folders.

Named images come from scikit-image (``skimage.data``), scikit-learn
(``sklearn.datasets.load_sample_image``: "china", "flower") and matplotlib
(``grace_hopper``); all are read from files inside the installed wheels, so
nothing is downloaded. Every image is returned as a float32 NumPy array
[H, W, C] with values in [0, 1]: grayscale images have C = 1, colour images
C = 3, and images with an alpha channel are composited over white.

This module does file I/O by design (it is a data loader, not a numerical
module).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Callable

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_natural_image",
    "natural_image_names",
    "normalized_extensions",
    "to_float_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""File extensions `load_image_folder` reads (case-insensitive)."""

# skimage.data images whose files ship in the scikit-image wheel (no pooch).
_SKIMAGE_NAMES = (
    "astronaut", "brick", "camera", "cat", "cell", "checkerboard", "chelsea",
    "clock", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon",
    "page", "retina", "rocket", "shepp_logan_phantom", "text",
)
_SKLEARN_NAMES = ("china", "flower")
_MATPLOTLIB_NAMES = ("grace_hopper",)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _sources() -> dict[str, Callable[[], np.ndarray]]:
    out: dict[str, Callable[[], np.ndarray]] = {}
    if _has("skimage"):
        def skimage_loader(name):
            def load():
                import skimage.data
                return getattr(skimage.data, name)()
            return load
        for name in _SKIMAGE_NAMES:
            out[name] = skimage_loader(name)
    if _has("sklearn"):
        def sklearn_loader(name):
            def load():
                from sklearn.datasets import load_sample_image
                return load_sample_image(f"{name}.jpg")
            return load
        for name in _SKLEARN_NAMES:
            out[name] = sklearn_loader(name)
    if _has("matplotlib"):
        def grace_hopper():
            import matplotlib.cbook
            import matplotlib.image
            with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
                return matplotlib.image.imread(f, format="jpg")
        out["grace_hopper"] = grace_hopper
    return out


def natural_image_names() -> tuple[str, ...]:
    """Names accepted by `load_natural_image`, sorted.

    Only names whose package (scikit-image, scikit-learn, matplotlib) is
    installed are listed.

    Returns:
      tuple of str.
    """
    return tuple(sorted(_sources()))


def to_float_image(image, *, name: str = "image") -> np.ndarray:
    """Converts an image array to float32 [H, W, C] in [0, 1].

    bool -> {0, 1}; uint8 / 255; uint16 / 65535; float
    data must already lie in [0, 1]. [H, W] becomes [H, W, 1]; 2 channels
    (gray + alpha) and 4 channels (RGBA) are composited over white, giving 1
    and 3 channels.

    Args:
      image: array, shape [H, W] or [H, W, C] with C in {1, 2, 3, 4}.
      name: how to call the image in error messages.

    Returns:
      float32 array, shape [H, W, C'] with C' in {1, 3}, values in [0, 1].

    Raises:
      ValueError: if the shape, dtype or value range is not supported.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4) or 0 in a.shape:
        raise ValueError(
            f"`{name}` must have shape [H, W] or [H, W, C] with C in 1..4; got "
            f"shape {a.shape}.")
    if a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
            raise ValueError(
                f"`{name}` has float values outside [0, 1] (min {float(a.min())}, "
                f"max {float(a.max())}); rescale it first.")
        f = a.astype(np.float32)
    else:
        raise ValueError(
            f"`{name}` has unsupported dtype {a.dtype}; expected bool, uint8, "
            f"uint16 or float in [0, 1].")
    if f.shape[-1] in (2, 4):
        alpha = f[..., -1:]
        f = f[..., :-1] * alpha + (1.0 - alpha)
    return np.ascontiguousarray(f, dtype=np.float32)


def load_natural_image(name: str) -> np.ndarray:
    """Loads a named natural image that ships offline.

    Args:
      name: one of `natural_image_names()`, e.g. ``"astronaut"`` (512×512×3),
        ``"camera"`` (512×512×1), ``"coffee"``, ``"chelsea"``, ``"china"``,
        ``"flower"`` (427×640×3), ``"grace_hopper"``.

    Returns:
      float32 array, shape [H, W, C] (C = 1 for grayscale, else 3), values in
      [0, 1].

    Raises:
      ValueError: if `name` is unknown (the message lists the valid names).
    """
    sources = _sources()
    if not isinstance(name, str) or name not in sources:
        raise ValueError(
            f"`name` must be one of the offline images {sorted(sources)}; got "
            f"{name!r}.")
    return to_float_image(sources[name](), name=name)


def normalized_extensions(extensions) -> tuple[str, ...]:
    """File extensions as lower-case ``".ext"`` strings (a single string allowed)."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    return tuple(e.lower() if e.startswith(".") else "." + e.lower()
                 for e in extensions)


def _read_file(path: str) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif mode == "1":
                img = img.convert("L")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGB")
            elif mode == "PA":
                img = img.convert("RGBA")
            arr = np.asarray(img)
            if mode == "I" and arr.size and 0 <= arr.min() and arr.max() <= 65535:
                arr = arr.astype(np.uint16)  # 16-bit data opened as 32-bit ints
    except (OSError, ValueError) as e:
        raise ValueError(f"could not read image file {path!r}: {e}") from None
    return to_float_image(arr, name=os.path.basename(path))


def load_image_folder(path, *, extensions=IMAGE_EXTENSIONS) -> dict[str, np.ndarray]:
    """Loads every image file directly inside a folder (not recursive).

    Files are read with PIL, in sorted file-name order, and converted with
    `to_float_image` (EXIF orientation applied). Images keep their own sizes;
    resize them (``sigcnn.shifts.resize_images``) to batch them.

    Args:
      path: str or path-like; the folder.
      extensions: file extensions to read, case-insensitive (default PNG and
        JPEG).

    Returns:
      dict mapping file name to float32 array [H, W, C] (C in {1, 3}) in
      [0, 1], in sorted order.

    Raises:
      FileNotFoundError: if the folder does not exist.
      NotADirectoryError: if `path` is not a folder.
      ValueError: if it holds no file with one of `extensions`, or a file cannot
        be decoded.
    """
    folder = os.fspath(path)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"`path` {folder!r} does not exist.")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"`path` {folder!r} is not a folder.")
    exts = normalized_extensions(extensions)
    files = sorted(
        f for f in os.listdir(folder)
        if os.path.isfile(os.path.join(folder, f))
        and os.path.splitext(f)[1].lower() in exts)
    if not files:
        raise ValueError(
            f"`path` {folder!r} holds no image file with an extension in "
            f"{list(exts)}.")
    return {f: _read_file(os.path.join(folder, f)) for f in files}
