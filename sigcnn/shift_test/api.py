"""`run_shift_test`: the paper's Table 1 for any classifier, in one call."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from sigcnn._checks import check_finite, check_float_array, check_nhwc
from sigcnn.shift_test.options import ShiftTestOptions
from sigcnn.shift_test.results import ShiftTestResult
from sigcnn.shift_test.runner import Run

__all__ = ["run_shift_test"]


def run_shift_test(logits_fn: Callable, images, labels=None, *, key,
                   options: ShiftTestOptions | None = None,
                   progress: Callable[[str, int, int], Any] | None = None,
                   **overrides) -> ShiftTestResult:
    """Runs the paper's shift protocols on a classifier (see the module doc).

    Args:
      logits_fn: a callable mapping float images [B, H, W, C] to logits
        [B, K] (a function, a jitted function, or a Flax NNX module, which is
        evaluated in inference mode without being modified).
      images: float array, shape [N, H, W, C]; finite, in the model's input
        units (e.g. normalised).
      labels: int array, shape [N], classes in [0, K); or None (no labels:
        every accuracy is None, the label-free measures are kept, and the
        jaggedness sweep follows each image's top-1 class on its first frame).
      key: a JAX PRNG key; draws the consistency offsets and the bootstrap
        resamples.
      options: a `ShiftTestOptions` (None: the paper's defaults).
      progress: None, or a callable ``progress(name, done, total)`` called
        after each group of images (``name`` a protocol, ``"consistency"``,
        ``"all_shifts"`` or ``"jaggedness"``; ``done`` images of ``total``).
      **overrides: fields of `ShiftTestOptions` by name (``protocols``,
        ``n_pairs``, ``step``, ``consistency``, ``all_shifts``, ``chunk``, ...),
        replacing those of `options`.

    Returns:
      a `ShiftTestResult`; ``result.to_dict()`` is JSON-serialisable and
      ``format_table(result)`` prints it like the paper's Table 1.

    Raises:
      TypeError: if `logits_fn` is not callable, `images` is not a float
        array, `labels` not integer, `key` not a PRNG key, or an option has
        the wrong type or is not an option.
      ValueError: if `images` is not [N, H, W, C] with N >= 1 or not finite,
        `labels` does not match it or lies outside [0, K), a protocol name is
        unknown, an option is out of range, the images are too small for the
        geometry asked for, or `logits_fn` does not return logits [B, K].
      NotImplementedError: if ``all_shifts_method="atrous"`` and the network
        cannot be undecimated (``"auto"`` falls back to ``"brute"`` instead).

    Examples:
      >>> import jax
      >>> from sigcnn import models
      >>> from sigcnn.shift_test import run_shift_test, format_table
      >>> net = models.create("vgg_tiny", key=0, padding="circular")
      >>> x = jax.random.normal(jax.random.key(1), (8, 32, 32, 3))
      >>> y = jax.numpy.arange(8) % 10
      >>> res = run_shift_test(net, x, y, key=jax.random.key(2),
      ...                      protocols=("circular",), step=4,
      ...                      sweep_images=0, consistency=None)
      >>> res.protocol("circular").p_top1_change      # stride 4: invariant
      0.0

    References:
      Azulay & Weiss, JMLR 2019, Section 2 and Table 1
      (``CheckTranslationInvariance.py``).
      Zhang, ICML 2019 (consistency). Michaeli et al., CVPR 2023 (accuracy
      under all shifts).
    """
    t_start = time.perf_counter()
    if not callable(logits_fn):
        raise TypeError(
                f"`logits_fn` must be callable (images [B, H, W, C] -> logits "
                f"[B, K]); got {logits_fn!r} of type {type(logits_fn).__name__}.")
    images = check_float_array("images", images)
    images = check_nhwc("images", images)
    n, h, w, c = images.shape
    if n < 1 or h < 1 or w < 1 or c < 1:
        raise ValueError(
                f"`images` must hold at least one non-empty image [N, H, W, C]; got "
                f"shape {tuple(images.shape)}.")
    check_finite("images", images)
    options = ShiftTestOptions.from_kwargs(options, **overrides)
    run = Run(logits_fn, images.shape, images.dtype, labels, key=key,
              options=options)
    if progress is not None and not callable(progress):
        raise TypeError(
                f"`progress` must be None or a callable (name, done, total); got "
                f"{progress!r}.")
    part = run.evaluate(images, 0, progress)
    jag = None
    if run.sweep_idx:
        jag = run.sweep_result(images[np.asarray(run.sweep_idx)], progress)
    return run.finish([part], jag, seconds=time.perf_counter() - t_start)
