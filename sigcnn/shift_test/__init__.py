"""The shift-test protocol runner: the paper's Table 1 for any classifier.

`run_shift_test` measures how a classifier's output changes under small image
transformations, with the geometry of Azulay & Weiss (2019), and returns a
frozen `ShiftTestResult` that serialises to JSON (`ShiftTestResult.to_dict`)
and prints as a Table-1-like text table (`format_table`).

Protocols. Each builds, for every image, T = n_pairs + 1 frames with
`sigcnn.shifts` (jitted, vmapped over images and frames) and compares the
logits of consecutive frames (the authors' consecutive pairs). With the
defaults ``n_pairs=8``, ``step=1``, ``direction="diagonal"`` a pair moves the
content by one pixel in both x and y, as in the authors' code:

* ``"circular"``: ``jnp.roll`` by (k·step, k·step), k = 0..n_pairs.
* ``"subpixel"``: band-limited Fourier shift (`sigcnn.fourier_shift`) by
  (k·subpixel_step, k·subpixel_step), half a pixel per pair by default.
* ``"crop"``: the image is first resized (antialiased, `resize_method`) from
  (H, W) to (H + crop_margin, W + crop_margin), as the authors'
  ``RandomResizedCrop(234)`` does for their 224 crops (margin 10, the whole
  image, no random aspect ratio); then (H, W) windows are taken at the
  offsets c = center - n_pairs // 2 .. with center = (margin - 1) // 2 (for
  224/234: c = 0..8). With ``crop_resize=False`` the image is not resized and
  the windows are (H - crop_margin, W - crop_margin) instead (the model then
  sees smaller inputs, so it needs a global-pool head). Moving the window by +1
  moves the content by -1 pixel.
* ``"black"``: the image is resized to (int(H / embed_factor),
  int(W / embed_factor)) (the authors' w = int(224 / s) with s = 1.3, 1.6,
  1.9) and pasted into an (H, W) canvas of value `fill` at the same centred
  diagonal offsets. The authors paste after mean/std normalisation, so their
  "black" is 0 in normalised units (mean gray); `fill` defaults to 0.
* ``"inpaint"``: as ``"black"``, with the background filled by the authors'
  iterated normalized convolution (`sigcnn.shifts.inpaint`).
* ``"scale"``: the embedded object of the first frame grows by `step` pixels
  per pair, centred in the canvas (`sigcnn.shifts.scale_schedule`).

Per protocol (`ProtocolResult`): P(top-1 change) over all N·n_pairs pairs with
a binomial (Wilson) interval, or a cluster bootstrap over images with
``p_ci="bootstrap"`` (the pairs of one image are correlated, so the binomial
interval is optimistic); MAC (the first frame's top class, the authors'
definition) with a bootstrap interval over images; top-1 accuracy on the first
frames of the pairs with a bootstrap interval over images; and the geometry
(the `sigcnn.shifts.ShiftRecord` dict plus the pairs and preprocessing).

Extras:

* Consistency (`ConsistencyResult`, Zhang 2019): two random offsets per image
  from an explicit key; ``"circular"`` rolls by offsets in [-m, m)² (Chaman &
  Dokmanić's circular consistency) or ``"crop"`` takes (H, W) windows at
  offsets in [0, m)² of the image resized to (H + m, W + m) (Zhang's 224 crops
  of a 256 image: m = 32). The default m is round(H · 32 / 224), at least 1.
* All shifts (`AllShiftsResult`, Michaeli et al. 2023): the logits of every
  circular shift in [0, Sy) × [0, Sx) (S the model's total stride, or
  `all_shifts_extent`) from `sigcnn.all_shifts`, with ``method="atrous"``
  (one undecimated pass) when the network can be undecimated and
  ``method="brute"`` otherwise (data-dependent downsampling such as APS); the
  method that ran is recorded. Robust accuracy counts an image only if every
  shift, the unshifted image included, is classified correctly; the invariant
  fraction counts images whose top-1 class is the same for every shift.
* Jaggedness (`JaggednessResult`, the paper's Figure 1): p(true class) and the
  top-1 class along a dense one-pixel sweep for a few example images, and the
  number of top-1 flips between neighbouring shifts.

Batching. The logits function is jit-compiled once (a Flax NNX module is
evaluated in inference mode through ``nnx.view``, without modifying it) and
called on fixed-size chunks of `chunk` frames (the last one padded), so
memory stays bounded and each frame size compiles once. Images are processed
in groups of max(1, chunk // T) images (T frames per image), and in groups of
max(1, chunk // max(Sy, Sx)) images for all shifts (an undecimated pass holds
deep feature maps at full resolution; ``"brute"`` evaluates chunk // group
shifts at once); `progress` (name, done, total) is called after each group
with the number of images done.

Layout. `options` (`ShiftTestOptions`: every option, its default and its
check), `protocols` (each protocol's geometry and frames, one table entry per
protocol), `evaluation` (the chunked, jitted logits function), `runner` (the
validated run: per-chunk measurements and statistics), `api`
(`run_shift_test`), `results` (the frozen result types and the text table)
`runs` (`resumable_shift_test`: the same run over an image folder in
resumable chunks, streamed with read-ahead threads, shared by several
processes) and `processes` (the heartbeats and waits of processes that share
one work folder).

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (protocols, Table 1,
  Figure 1; ``CheckTranslationInvariance.py``).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (consistency).
  Chaman & Dokmanić, "Truly shift-invariant convolutional neural networks",
  CVPR 2021 (circular consistency).
  Michaeli, Michaeli & Soudry, "Alias-Free Convnets", CVPR 2023 (accuracy
  under all shifts).
"""


from sigcnn.shift_test.api import run_shift_test
from sigcnn.shift_test.options import DEFAULT_PROTOCOLS, PROTOCOLS, ShiftTestOptions
from sigcnn.shift_test.results import (
                                       AllShiftsResult,
                                       ConsistencyResult,
                                       JaggednessResult,
                                       ProtocolResult,
                                       ShiftTestResult,
                                       format_table,
)
from sigcnn.shift_test.runs import resumable_shift_test

__all__ = [
        "AllShiftsResult",
        "ConsistencyResult",
        "DEFAULT_PROTOCOLS",
        "JaggednessResult",
        "PROTOCOLS",
        "ProtocolResult",
        "ShiftTestOptions",
        "ShiftTestResult",
        "format_table",
        "resumable_shift_test",
        "run_shift_test",
]
