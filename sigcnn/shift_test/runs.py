"""Resumable shift tests over many images, one chunk of images at a time.

`resumable_shift_test` runs `sigcnn.shift_test.run_shift_test` on an image
source (an array [N, H, W, C] or a `sigcnn.data.ImageFolder`, read one chunk at
a time) and keeps every finished chunk's per-image measurements in a folder:

    work_dir/manifest.json            what the run is (settings, images, model)
    work_dir/part-000000.npz (.json)  per-image arrays and meta of images 0..
    work_dir/jaggedness.json          the jaggedness sweep, once done
    work_dir/alive-<i>.json           heartbeats, with several processes

Streaming. The images of a folder are read by a grain pipeline whose worker
threads keep at most `prefetch` images read ahead (`ImageFolder.stream`), so
decoding the next chunk overlaps the network's evaluation of the current one,
and at most one chunk being evaluated plus `prefetch` images are in memory,
whatever the folder's size. What does grow with N is small: the per-image
result arrays (a few numbers per image) and the file names in the manifest.

Several processes (hosts). With ``process_count=P``, chunk k is computed by
process k mod P (`sigcnn.shift_test.processes`): the chunks are those of a
one-process run, each process writes its own into the shared `work_dir`, and
process 0 waits for all of them, merges them and returns the result (the
others return None). A process that stops (killed, failed) is reported by the
waiting one after `wait_timeout` seconds without its heartbeat, never waited
for forever.

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
from sigcnn.shift_test import processes as _processes
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

    def chunks(self, bounds, *, read_threads, prefetch):
        """The images [s, e) of each (s, e) in `bounds`, in order."""
        for s, e in bounds:
            yield self.read(np.arange(s, e))


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

    def chunks(self, bounds, *, read_threads, prefetch):
        """The images [s, e) of each (s, e) in `bounds`, in order, read ahead
        by `read_threads` threads, at most `prefetch` images ahead."""
        if not bounds:
            return
        if not hasattr(self.folder, "stream"):     # a folder-like object
            for s, e in bounds:
                yield self.read(np.arange(s, e))
            return
        idx = np.concatenate([np.arange(s, e) for s, e in bounds])
        it = self.folder.stream(idx, num_threads=read_threads, prefetch=prefetch)
        try:
            for s, e in bounds:
                yield np.stack([next(it) for _ in range(e - s)])
        finally:         # also when the caller stops early (an error, Ctrl-C)
            it.close()


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
                         read_threads: int = 4, prefetch: int | None = None,
                         process_index: int = 0, process_count: int = 1,
                         wait_timeout: float = 120.0,
                         **overrides) -> ShiftTestResult | None:
    """`run_shift_test` in resumable chunks of images (see the module doc).

    Args:
      logits_fn: as in `sigcnn.shift_test.run_shift_test`.
      images: float array [N, H, W, C], or a `sigcnn.data.ImageFolder` (its
        images are streamed chunk by chunk, and its labels are used when
        `labels` is None).
      labels: int array [N], None (the folder's labels, or none).
      key: a JAX PRNG key, as in `run_shift_test`.
      work_dir: folder of the finished chunks (created if missing); with
        several processes, one folder that all of them see.
      chunk_images: positive int; images per chunk (one chunk is lost at most
        when a run is killed).
      identity: JSON-ready description of the model (and anything else that
        makes two runs different); a folder written with another identity is
        refused.
      progress: None or ``progress(name, done, total)``; ``name`` is a
        protocol, ``"consistency"``, ``"all_shifts"``, ``"jaggedness"``,
        ``"chunks reused"`` (once, this process's chunks found finished in
        `work_dir`), ``"chunks"`` (after each chunk computed now; done =
        this process's chunks finished so far, reused ones included),
        ``"shifts per image"`` (once, done = total = the frames evaluated per
        image, all protocols together), ``"images"`` (before the first chunk
        and after each one: this process's images finished, reused ones
        included) or ``"waiting"`` (process 0: chunks of the other processes
        on disk).
      options: a `ShiftTestOptions` (None: the paper's defaults).
      read_threads: non-negative int; threads reading a folder's images (0:
        read in the calling thread, no overlap).
      prefetch: None (`chunk_images`) or a non-negative int: a folder's
        images read ahead at most (0: none).
      process_index: this process's index in [0, `process_count`).
      process_count: positive int, the number of processes sharing the run
        (e.g. ``jax.process_index()``, ``jax.process_count()`` after
        ``jax.distributed.initialize``).
      wait_timeout: positive float; seconds a waiting process accepts
        without a heartbeat from the process it waits for (process 0 for
        the manifest, any process for its chunks).
      **overrides: fields of `ShiftTestOptions` by name, as in
        `run_shift_test`.

    Returns:
      the `ShiftTestResult` of all images, equal to `run_shift_test` on them
      (on process 0; None on the other processes).

    Raises:
      ValueError: bad options or images (as `run_shift_test`), a `work_dir`
        holding another run or an unreadable chunk, or bad process numbers.
      TimeoutError: a process that this one waits for stopped.
    """
    t_start = time.perf_counter()
    chunk_images = check_positive_int("chunk_images", chunk_images)
    read_threads = _check_count("read_threads", read_threads)
    prefetch = chunk_images if prefetch is None else _check_count("prefetch",
                                                                  prefetch)
    process_count = check_positive_int("process_count", process_count)
    process_index = _check_count("process_index", process_index)
    if process_index >= process_count:
        raise ValueError(f"`process_index` must lie in [0, process_count) = [0, "
                         f"{process_count}); got {process_index}.")
    wait_timeout = _check_timeout(wait_timeout)
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
    if process_count == 1:
        return _run(logits_fn, src, labels, key, work_dir, chunk_images, identity,
                    options, progress, read_threads, prefetch, 0, 1,
                    wait_timeout, t_start)
    beat = min(5.0, wait_timeout / 5)
    os.makedirs(work_dir, exist_ok=True)     # beating while the network is probed
    with _processes.Heartbeat(work_dir, process_index, process_count, period=beat):
        return _run(logits_fn, src, labels, key, work_dir, chunk_images, identity,
                    options, progress, read_threads, prefetch, process_index,
                    process_count, wait_timeout, t_start)


def _run(logits_fn, src, labels, key, work_dir, chunk_images, identity, options,
         progress, read_threads, prefetch, index, count, wait_timeout, t_start):
    n = src.shape[0]
    run = Run(logits_fn, src.shape, src.dtype, labels, key=key, options=options)
    os.makedirs(work_dir, exist_ok=True)     # after every check of the options
    manifest = {"format": _FORMAT, "n_images": n, "input_size": list(src.shape[1:]),
                "chunk_images": chunk_images, "num_classes": run.num_classes,
                "labelled": run.labels is not None,
                "labels_digest": None if run.labels is None
                else _digest(np.asarray(run.labels, np.int64)), "images": src.names,
                "settings": run.settings,
                "identity": json.loads(json.dumps(identity)) if identity else None}
    manifest_path = os.path.join(work_dir, "manifest.json")
    if index > 0:        # process 0 writes it (or finds it from an earlier run)
        _processes.wait_until(
                lambda: set() if os.path.isfile(manifest_path) else {0},
                work_dir=work_dir, count=count, timeout=wait_timeout,
                what=lambda j: "the manifest.json it writes is missing")
    _check_manifest(work_dir, manifest)

    starts = list(range(0, n, chunk_images))
    bounds = [(s, min(s + chunk_images, n)) for s in starts]
    mine = [k for k in range(len(starts)) if _processes.owner(k, count) == index]
    # process 0 merges, so it loads every finished chunk; the others their own
    parts = {}
    for k in (range(len(starts)) if index == 0 else mine):
        part = _load_part(work_dir, k)
        if part is not None:
            parts[k] = _kept(k, part)
    n_reused = sum(k in parts for k in mine)
    if n_reused and progress is not None:
        progress("chunks reused", n_reused, len(mine))
    for part in parts.values():  # an earlier fall-back to brute force holds on
        if run.all_shifts and part[1]["all_shifts"]["method"] == "brute":
            run.alls_method = "brute"
            run.alls_reason = part[1]["all_shifts"]["reason"]
    todo = [k for k in mine if k not in parts]
    total = sum(bounds[k][1] - bounds[k][0] for k in mine)
    done = total - sum(bounds[k][1] - bounds[k][0] for k in todo)
    told = False
    if progress is not None and parts:
        progress("shifts per image", *(2 * [_frames_per_image(
                run, next(iter(parts.values()))[1])]))
        told = True
    if progress is not None and todo:
        progress("images", done, total)
    stream = src.chunks([bounds[k] for k in todo], read_threads=read_threads,
                        prefetch=prefetch)
    try:
        for k, x in zip(todo, stream):
            check_finite("images", x)
            arrays, meta = run.evaluate(x, bounds[k][0], progress)
            _save_part(work_dir, k, arrays, meta)
            parts[k] = _kept(k, (arrays, meta))
            done += x.shape[0]
            if progress is not None:
                if not told:
                    progress("shifts per image", *(2 * [_frames_per_image(run,
                                                                         meta)]))
                    told = True
                progress("images", done, total)
                progress("chunks", sum(j in parts for j in mine), len(mine))
    finally:
        stream.close()
    if index > 0:
        return None
    jag = None
    if run.sweep_idx:
        path = os.path.join(work_dir, "jaggedness.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                jag = JaggednessResult.from_dict(json.load(fh))
        else:
            jag = run.sweep_result(src.read(run.sweep_idx), progress)
            atomic_write_json(path, jag.to_dict())
    if len(parts) < len(starts):
        _collect(work_dir, parts, len(starts), count, wait_timeout, progress)
    return run.finish([parts[k] for k in sorted(parts)], jag,
                      seconds=time.perf_counter() - t_start)


def _collect(work_dir, parts, n_chunks, count, wait_timeout, progress) -> None:
    """Process 0: loads the other processes' chunks as they appear."""
    others = [k for k in range(n_chunks) if k not in parts]
    n_others = len(others)

    def pending():
        for k in [k for k in others if k not in parts]:
            part = _load_part(work_dir, k)
            if part is not None:
                parts[k] = _kept(k, part)
        return {_processes.owner(k, count) for k in others if k not in parts}

    def missing(j):
        ks = [k for k in others if k not in parts and _processes.owner(k, count) == j]
        more = f" and {len(ks) - 5} more" if len(ks) > 5 else ""
        return f"its chunks {ks[:5]}{more} are missing"

    def tell():
        if progress is not None:
            progress("waiting", sum(k in parts for k in others), n_others)

    _processes.wait_until(pending, work_dir=work_dir, count=count,
                          timeout=wait_timeout, what=missing, on_poll=tell)


def _kept(k: int, part):
    """What a run keeps of chunk k in memory: its per-image arrays and the meta
    that `Run.finish` reads (the geometry records only of chunk 0, the same for
    every chunk), so that what grows with the number of chunks stays small."""
    arrays, meta = part
    if k == 0:
        return part
    return arrays, {key: v for key, v in meta.items() if key != "records"}


def _frames_per_image(run: Run, meta) -> int:
    """Frames evaluated per image: every protocol's, consistency, all shifts."""
    frames = sum(int(plan.offsets.shape[0]) for plan in run.plans)
    if run.consistency is not None:
        frames += 2
    if run.all_shifts:
        frames += int(np.prod(meta["all_shifts"]["extent"]))
    return frames


def _check_count(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f"`{name}` must be a non-negative int; got {value!r} of "
                        f"type {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"`{name}` must be a non-negative int; got {value!r}.")
    return int(value)


def _check_timeout(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float)) \
            or not 0 < value < float("inf"):
        raise ValueError(f"`wait_timeout` must be a positive number of seconds; "
                         f"got {value!r}.")
    return float(value)


def _digest(a) -> str:
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
