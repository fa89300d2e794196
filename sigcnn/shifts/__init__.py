"""Shift protocols and shift schedules, with their exact geometry.

Images are NHWC float arrays [N, H, W, C] with no empty axis and finite values
(the protocols raise ``ValueError`` otherwise). Conventions:

* A shift by t = (ty, tx) means ``jnp.roll(x, (ty, tx), axis=(1, 2))``: content
  moves down by ty rows and right by tx columns.
* An offset (oy, ox) is the top-left corner (row, column) of a crop window in
  the image, or of the embedded object in the canvas. Moving the offset by +1
  moves the content of a crop by -1 pixel and the content of an embed by +1.
* Frames come out as [N, T, h, w, C], one per offset; offsets are either shared
  by the batch, shape [T, 2], or per sample, shape [N, T, 2].

Protocols (Azulay & Weiss 2019, Section 2): `translate` (circular or
band-limited sub-pixel shift), `crop` (a window translated inside a larger
image), `embed` (the image resized and pasted into a canvas of a given value,
optionally with the background inpainted), `scale` (the embedded image grows).
Each returns ``(frames, record)``; the `ShiftRecord` holds the geometry
(offsets, sizes, canvas value, resize kernel, inpainting) for results files.

Schedules return a `Schedule` of offsets and the frame pairs to compare: the
authors' 8 diagonal one-pixel pairs (`diagonal_schedule`), sweeps along an axis
(`sweep_schedule`), Zhang's two random offsets per image
(`random_pair_schedule`), every shift of an S×S grid (`grid_schedule`) and a
growing object (`scale_schedule`). To compare frames of model outputs
``logits`` [N, T, K]: ``logits[:, s.pairs[:, 0]]`` against
``logits[:, s.pairs[:, 1]]``.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (protocols; authors' code
  ``CheckTranslationInvariance.py`` and ``InpaintingFunction.py``).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
"""

from sigcnn.shifts.cropping import crop
from sigcnn.shifts.embedding import embed, scale
from sigcnn.shifts.inpainting import INPAINT_KERNEL, inpaint
from sigcnn.shifts.records import Schedule, ShiftRecord
from sigcnn.shifts.resizing import RESIZE_METHODS, resize_images
from sigcnn.shifts.schedules import (
    center_offset,
    diagonal_schedule,
    grid_schedule,
    random_pair_schedule,
    scale_schedule,
    sweep_schedule,
)
from sigcnn.shifts.translation import circular_shift, translate
from sigcnn.spectra import fourier_shift

__all__ = [
        "INPAINT_KERNEL",
        "RESIZE_METHODS",
        "Schedule",
        "ShiftRecord",
        "center_offset",
        "circular_shift",
        "crop",
        "diagonal_schedule",
        "embed",
        "fourier_shift",
        "grid_schedule",
        "inpaint",
        "random_pair_schedule",
        "resize_images",
        "scale",
        "scale_schedule",
        "sweep_schedule",
        "translate",
]
