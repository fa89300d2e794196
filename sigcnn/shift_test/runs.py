"""Resumable shift tests over many images, one chunk of images at a time.

`resumable_shift_test` runs `sigcnn.shift_test.run_shift_test` on an image
source (an array [N, H, W, C] or a `sigcnn.data.ImageFolder`, read one chunk at
a time) and keeps every finished chunk's per-image measurements in a folder:

    work_dir/manifest.json            what the run is (settings, images, model)
    work_dir/part-000000.npz (.json)  per-image arrays and meta of images 0..
    work_dir/jaggedness.json          the jaggedness sweep, once done

Each file is written atomically, the ``.json`` of a chunk last, so a chunk
counts as finished only when it is complete. A run that is killed (Ctrl-C, a
lost machine) and called again with the same arguments loads the finished
chunks and computes only the missing ones; the final statistics are computed
from all per-image arrays at once, so they equal those of a single
`run_shift_test` call on all images (same key, same options). A folder that
holds a different run (other settings, images or model) is refused, never
mixed in.

References:
  Azulay & Weiss, JMLR 2019 (the protocols); see `sigcnn.shift_test`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from sigcnn._checks import (
    check_finite,
    check_float_array,
    check_nhwc,
    check_positive_int,
)
from sigcnn._io import atomic_write, atomic_write_json
from sigcnn.shift_test.options import ShiftTestOptions
from sigcnn.shift_test.results import JaggednessResult, ShiftTestResult
from sigcnn.shift_test.runner import Run

__all__ = ["resumable_shift_test"]

_FORMAT = "sigcnn.shift_runs/1"


class _ArraySource:
    def __init__(self, images):
        images = check_nhwc("images", check_float_array("images", images))
        self.images = images
        self.shape = tuple(int(v) for v in images.shape)
        self.dtype = images.dtype
        self.labels = None
        self.names = {"sha1": _digest(np.asarray(images))}

    def read(self, idx) -> np.ndarray:
        return np.asarray(self.images[np.asarray(idx)])


class _FolderSource:
    def __init__(self, folder):
        self.folder = folder
        h, w = folder.size
        self.shape = (len(folder), int(h), int(w), 3)
        self.dtype = np.dtype(np.float32)
        self.labels = folder.labels
        self.names = list(folder.files)

    def read(self, idx) -> np.ndarray:
        return np.stack([self.folder.image(int(i)) for i in idx])


def _source(images):
    if hasattr(images, "image") and hasattr(images, "files"):
        return _FolderSource(images)
    return _ArraySource(images)


def _part_paths(work_dir: str, k: int) -> tuple[str, str]:
    stem = os.path.join(work_dir, f"part-{k:06d}")
    return stem + ".npz", stem + ".json"


def _save_part(work_dir, k, arrays, meta) -> None:
    npz, js = _part_paths(work_dir, k)
    atomic_write(npz, lambda f: np.savez(f, **arrays), binary=True)
    atomic_write_json(js, meta)


def _load_part(work_dir, k):
    npz, js = _part_paths(work_dir, k)
    if not os.path.isfile(js):
        return None
    try:
        with open(js, encoding="utf-8") as fh:
            meta = json.load(fh)
        with np.load(npz, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(
                f"`work_dir`: chunk {k} in {work_dir!r} is unreadable ({e}); delete "
                f"{os.path.basename(npz)} and {os.path.basename(js)} to recompute "
                f"it.") from e
    return arrays, meta


def _check_manifest(work_dir: str, manifest: dict) -> None:
    path = os.path.join(work_dir, "manifest.json")
    if not os.path.isfile(path):
        atomic_write_json(path, manifest)
        return
    try:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError) as e:
        raise ValueError(f"`work_dir`: {path!r} is unreadable ({e}); delete the "
                         f"folder to start again.") from e
    if old.get("format") != _FORMAT:
        raise ValueError(f"`work_dir`: {work_dir!r} holds no shift-test chunks of "
                         f"this version (format {old.get('format')!r}); use another "
                         f"folder.")
    diff = [k for k in sorted(set(old) | set(manifest)) if old.get(k) != manifest.get(k)]
    if diff:
        k = diff[0]
        raise ValueError(
                f"`work_dir`: {work_dir!r} holds the chunks of a different run "
                f"({k}: {_short(old.get(k))} there, {_short(manifest.get(k))} now); "
                f"use another folder, or delete it to start again.")


def _short(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 80 else text[:77] + "..."


def resumable_shift_test(logits_fn: Callable, images, labels=None, *, key,
                         work_dir, chunk_images: int = 64,
                         identity: Mapping[str, Any] | None = None,
                         options: ShiftTestOptions | None = None,
                         progress: Callable[[str, int, int], Any] | None = None,
                         **overrides) -> ShiftTestResult:
    """`run_shift_test` in resumable chunks of images (see the module doc).

    Args:
      logits_fn: as in `sigcnn.shift_test.run_shift_test`.
      images: float array [N, H, W, C], or a `sigcnn.data.ImageFolder` (its
        images are read chunk by chunk, and its labels are used when `labels`
        is None).
      labels: int array [N], None (the folder's labels, or none).
      key: a JAX PRNG key, as in `run_shift_test`.
      work_dir: folder of the finished chunks (created if missing).
      chunk_images: positive int; images per chunk (one chunk is lost at most
        when a run is killed).
      identity: JSON-ready description of the model (and anything else that
        makes two runs different); a folder written with another identity is
        refused.
      progress: None or ``progress(name, done, total)``; ``name`` is a
        protocol, ``"consistency"``, ``"all_shifts"``, ``"jaggedness"``,
        ``"chunks reused"`` (once, the chunks found finished in `work_dir`) or
        ``"chunks"`` (after each chunk computed now; done = its number).
      options: a `ShiftTestOptions` (None: the paper's defaults).
      **overrides: fields of `ShiftTestOptions` by name, as in
        `run_shift_test`.

    Returns:
      the `ShiftTestResult` of all images, equal to `run_shift_test` on them.

    Raises:
      ValueError: bad options or images (as `run_shift_test`), or a `work_dir`
        holding another run or an unreadable chunk.
    """
    t_start = time.perf_counter()
    chunk_images = check_positive_int("chunk_images", chunk_images)
    src = _source(images)
    if labels is None:
        labels = src.labels
    n = src.shape[0]
    if n < 1:
        raise ValueError("`images` holds no image.")
    work_dir = os.fspath(work_dir)
    if os.path.exists(work_dir) and not os.path.isdir(work_dir):
        raise ValueError(f"`work_dir` {work_dir!r} exists and is not a folder.")
    options = ShiftTestOptions.from_kwargs(options, **overrides)
    run = Run(logits_fn, src.shape, src.dtype, labels, key=key, options=options)
    manifest = {"format": _FORMAT, "n_images": n, "input_size": list(src.shape[1:]),
                "chunk_images": chunk_images, "num_classes": run.num_classes,
                "labelled": run.labels is not None,
                "labels_digest": None if run.labels is None
                else _digest(np.asarray(run.labels, np.int64)), "images": src.names,
                "settings": run.settings,
                "identity": json.loads(json.dumps(identity)) if identity else None}
    os.makedirs(work_dir, exist_ok=True)
    _check_manifest(work_dir, manifest)

    starts = list(range(0, n, chunk_images))
    loaded = [_load_part(work_dir, k) for k in range(len(starts))]
    n_reused = sum(p is not None for p in loaded)
    if n_reused and progress is not None:
        progress("chunks reused", n_reused, len(starts))
    for part in loaded:   # an earlier fall-back to brute force holds for the rest
        if part is not None and run.all_shifts and (
                part[1]["all_shifts"]["method"] == "brute"):
            run.alls_method = "brute"
            run.alls_reason = part[1]["all_shifts"]["reason"]
    parts = []
    for k, s in enumerate(starts):
        e = min(s + chunk_images, n)
        part = loaded[k]
        if part is None:
            x = src.read(np.arange(s, e))
            check_finite("images", x)
            arrays, meta = run.evaluate(x, s, progress)
            _save_part(work_dir, k, arrays, meta)
            part = arrays, meta
        parts.append(part)
        if progress is not None and loaded[k] is None:
            progress("chunks", k + 1, len(starts))
    jag = None
    if run.sweep_idx:
        path = os.path.join(work_dir, "jaggedness.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                jag = JaggednessResult.from_dict(json.load(fh))
        else:
            jag = run.sweep_result(src.read(run.sweep_idx), progress)
            atomic_write_json(path, jag.to_dict())
    return run.finish(parts, jag, seconds=time.perf_counter() - t_start)


def _digest(a) -> str:
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
