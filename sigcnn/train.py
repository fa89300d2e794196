"""Training of Flax NNX classifiers with optax: seeded, augmented, resumable.

`fit` trains any Flax NNX module that maps images ``[N, H, W, C]`` to logits
``[N, K]`` with a softmax cross-entropy loss, evaluates it on held-out data after
every epoch and, given an output directory, checkpoints after every epoch so that
an interrupted run resumes without redoing finished epochs. `evaluate` and
`predict_logits` run a model in evaluation mode, jit-compiled and in chunks of a
fixed size, so that memory stays bounded and one compiled program serves any
number of images.

Determinism. All randomness derives from the integer ``seed``:
``jax.random.split(jax.random.key(seed))`` gives an initialisation key (used when
`fit` builds the model) and a data key. Epoch ``e`` (0-based) draws its batch
order and its augmentation from ``jax.random.fold_in(data_key, e)``, so the
random stream of an epoch does not depend on the epochs before it, and a resumed
run draws exactly what an uninterrupted run would. The same seed gives the same
weights bit for bit on the same machine and software.

Batching. Every epoch visits a fresh seeded permutation of the training set in
``floor(N / batch_size)`` batches of exactly ``batch_size`` images; the last
``N mod batch_size`` images of each permutation are left out of that epoch (one
compiled step, every image still seen across epochs).

Augmentation. ``augment_shift=r`` translates every training image by its own
integer shift ``t = (ty, tx)`` drawn uniformly from ``[-r, r]^2`` (the paper's
remedy "more data augmentation"; 0 turns it off). ``augment_padding`` says what
fills the pixels that the shift uncovers:

* ``"circular"``: wrap around, ``jnp.roll(x, t, axis=(1, 2))`` exactly, the
  shift that sigcnn's metrics test against;
* ``"zero"``: zeros, i.e. the usual "pad by r and take a random crop of the
  original size" augmentation;
* ``"reflect"``: mirror without repeating the edge, ``1234 -> 32|1234|32``.

Checkpoints. With ``out_dir`` given, `fit` writes after every epoch one file,
``checkpoint.npz``, holding the model state (parameters, batch statistics, RNG
streams), the optimizer state, the number of finished epochs, the data key and
the history, plus a fingerprint of the run's settings and training data. Each
write goes to a temporary file in ``out_dir`` that then replaces the old one
(``os.replace``), so a crash leaves the previous checkpoint intact. A later call
with the same settings and data resumes from it; other settings are refused. At
the end `fit` writes ``model.npz`` (the final model state with the run's config
embedded) and ``config.json`` (the same config, readable: model name and
options, dataset, settings, accuracy, history), from which `load_model` rebuilds
the model.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (remedies: augmentation).
  Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
import numbers
import os
import time
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sigcnn._io import atomic_write
from sigcnn._checks import check_choice, check_nhwc, check_positive_int

__all__ = [
    "AUGMENT_PADDINGS",
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "MODEL_FILE",
    "OPTIMIZERS",
    "EvalResult",
    "FitResult",
    "TrainEvent",
    "augment",
    "evaluate",
    "fit",
    "load_model",
    "predict_logits",
    "random_shifts",
    "shift_images",
]

AUGMENT_PADDINGS = ("circular", "zero", "reflect")
OPTIMIZERS = ("adam", "adamw", "sgd")
CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"
_FORMAT = "sigcnn.train/1"
_META_KEY = "__meta__"

AugmentPadding = Literal["circular", "zero", "reflect"]


# --------------------------------------------------------------------------------
# Results and progress events
# --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """One progress report from `fit`, passed to its ``progress`` callable.

    Attributes:
      kind: ``"start"`` (before the first step; ``epoch`` is the first epoch to
        run), ``"step"`` (after each optimizer step), ``"epoch"`` (after each
        epoch, once its checkpoint is written) or ``"end"``.
      epoch: 1-based number of the current epoch (for ``"end"``: epochs done).
      epochs: total number of epochs asked for.
      step: 1-based step within the epoch (0 for non-step events).
      steps: steps per epoch.
      loss: for ``"step"``, the batch's mean loss as a 0-d JAX array (not synced
        to the host: call ``float(...)`` only if you display it); else None.
      record: for ``"epoch"``, that epoch's history record; else None.
    """

    kind: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: Any = None
    record: dict | None = None


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Accuracy and mean cross-entropy of a model on a labelled set.

    Attributes:
      accuracy: fraction of images whose argmax logit is the label.
      loss: mean softmax cross-entropy (nats).
      n: number of images.
    """

    accuracy: float
    loss: float
    n: int

    def __getitem__(self, name: str):
        """Dict-style access: ``result["accuracy"]``."""
        if name not in ("accuracy", "loss", "n"):
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
      model: the trained module (the same object `fit` was given, if it was given
        a module), left in evaluation mode.
      history: one dict per finished epoch, in order, including epochs restored
        from a checkpoint: ``epoch`` (1-based), ``train_loss`` and
        ``train_accuracy`` (running means over the epoch's batches, in training
        mode), ``test_loss`` and ``test_accuracy`` (None without test data),
        ``train_seconds`` (wall time of the epoch's steps, compilation
        included) and ``seconds`` (the whole epoch: steps, evaluation,
        checkpoint).
      test_accuracy: accuracy of the final model on the test data (None without).
      test_loss: its mean cross-entropy on the test data (None without).
      wall_time: seconds spent in this call.
      epochs_run: epochs trained in this call (the others came from a checkpoint).
      start_epoch: number of epochs already finished when this call started.
      images_per_second: training images per second over this call's epochs
        (optimizer steps only, the first step's compilation included; 0.0 if
        no epoch ran).
      config: the JSON-ready run configuration (also written to ``config.json``).
    """

    model: Any
    history: list
    test_accuracy: float | None
    test_loss: float | None
    wall_time: float
    epochs_run: int
    start_epoch: int
    images_per_second: float
    config: dict

    def to_dict(self) -> dict:
        """JSON-ready summary (everything but the model)."""
        return {
            "history": self.history,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "wall_time": self.wall_time,
            "epochs_run": self.epochs_run,
            "start_epoch": self.start_epoch,
            "images_per_second": self.images_per_second,
            "config": self.config,
        }


# --------------------------------------------------------------------------------
# Augmentation: per-sample integer translations
# --------------------------------------------------------------------------------


def _as_shift_range(name: str, value: Any) -> tuple[int, int]:
    """`value` as a pair (ry, rx) of non-negative ints (an int is used for both)."""
    expected = (f"`{name}` must be a non-negative int or a pair (ry, rx) of them "
                f"(0 = no shift)")

    def ok(v):
        return (not isinstance(v, (bool, np.bool_))
                and isinstance(v, (numbers.Integral, np.integer)) and v >= 0)

    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not all(ok(v) for v in value):
            raise ValueError(f"{expected}; got {value!r}.")
        return int(value[0]), int(value[1])
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Integral, np.integer)):
        raise TypeError(f"{expected}; got {value!r} of type {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"{expected}; got {value!r}.")
    return int(value), int(value)


def random_shifts(key, n: int, *, max_shift) -> jax.Array:
    """Draws one integer translation per image, uniform on a square of shifts.

    Args:
      key: a JAX PRNG key.
      n: number of shifts N (positive int).
      max_shift: non-negative int r, or a pair (ry, rx).

    Returns:
      int32 array [N, 2]: rows ``(ty, tx)`` with ``-ry <= ty <= ry`` and
      ``-rx <= tx <= rx``, each value equally likely, independent across rows.

    Raises:
      TypeError, ValueError: if `n` or `max_shift` is malformed.
    """
    n = check_positive_int("n", n)
    ry, rx = _as_shift_range("max_shift", max_shift)
    return _random_shifts(key, n, (ry, rx))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _random_shifts(key, n, max_shift):
    ry, rx = max_shift
    lo = jnp.array([-ry, -rx], jnp.int32)
    hi = jnp.array([ry + 1, rx + 1], jnp.int32)
    return jax.random.randint(key, (n, 2), lo, hi, dtype=jnp.int32)


def _source_index(i, t, size, padding):
    """Index read by output position `i` of an axis of `size` shifted by `t`."""
    j = i - t
    if padding == "circular":
        return jnp.mod(j, size), None
    if padding == "zero":
        valid = (j >= 0) & (j < size)
        return jnp.clip(j, 0, size - 1), valid
    # reflect (no edge repeat): period 2 (size - 1)
    if size == 1:
        return jnp.zeros_like(j), None
    period = 2 * (size - 1)
    m = jnp.mod(j, period)
    return jnp.minimum(m, period - m), None


def _shift_one(img, t, padding):
    h, w = img.shape[0], img.shape[1]
    sy, vy = _source_index(jnp.arange(h), t[0], h, padding)
    sx, vx = _source_index(jnp.arange(w), t[1], w, padding)
    out = img[sy[:, None], sx[None, :]]
    if padding == "zero":
        mask = (vy[:, None] & vx[None, :])[:, :, None]
        out = jnp.where(mask, out, jnp.zeros((), out.dtype))
    return out


@functools.partial(jax.jit, static_argnums=(2,))
def _shift_images(images, shifts, padding):
    return jax.vmap(_shift_one, in_axes=(0, 0, None))(images, shifts, padding)


def shift_images(images, shifts, *, padding: AugmentPadding = "circular"):
    """Translates each image by its own integer shift.

    Image ``n`` moves by ``shifts[n] = (ty, tx)`` pixels: output pixel ``(i, j)``
    reads input pixel ``(i - ty, j - tx)``. With ``padding="circular"`` this is
    ``jnp.roll(images[n], (ty, tx), axis=(0, 1))`` exactly; ``"zero"`` fills the
    uncovered pixels with 0 (a crop of the zero-padded image); ``"reflect"``
    mirrors without repeating the edge. Works under `jax.jit` with traced shifts.

    Args:
      images: array [N, H, W, C].
      shifts: integer array [N, 2] of ``(ty, tx)``; any size (for ``"zero"``, a
        shift of H or more leaves zeros).
      padding: ``"circular"``, ``"zero"`` or ``"reflect"``.

    Returns:
      array [N, H, W, C] with the dtype of `images`.

    Raises:
      ValueError: if `images` is not NHWC, `shifts` is not [N, 2] or `padding`
        is unknown.
      TypeError: if `shifts` is not an integer array.
    """
    check_nhwc("images", images)
    check_choice("padding", padding, AUGMENT_PADDINGS)
    shifts = jnp.asarray(shifts)
    if not jnp.issubdtype(shifts.dtype, jnp.integer):
        raise TypeError(
            f"`shifts` must be an integer array [N, 2]; got dtype {shifts.dtype}.")
    if shifts.shape != (images.shape[0], 2):
        raise ValueError(
            f"`shifts` must have shape [N, 2] = ({images.shape[0]}, 2) to match "
            f"`images` {tuple(images.shape)}; got {tuple(shifts.shape)}.")
    return _shift_images(jnp.asarray(images), shifts, padding)


def augment(images, key, *, max_shift, padding: AugmentPadding = "circular"):
    """Random per-image translations: `shift_images` with `random_shifts`.

    Args:
      images: array [N, H, W, C].
      key: a JAX PRNG key.
      max_shift: non-negative int r or pair (ry, rx); shifts are uniform on
        ``[-ry, ry] x [-rx, rx]``. 0 returns `images` unchanged.
      padding: ``"circular"``, ``"zero"`` or ``"reflect"`` (see `shift_images`).

    Returns:
      ``(shifted, shifts)``: array [N, H, W, C] and int32 array [N, 2].

    Raises:
      TypeError, ValueError: for malformed arguments (see `shift_images`).
    """
    check_nhwc("images", images)
    r = _as_shift_range("max_shift", max_shift)
    check_choice("padding", padding, AUGMENT_PADDINGS)
    return _augment(jnp.asarray(images), key, r, padding)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _augment(images, key, max_shift, padding):
    shifts = _random_shifts(key, images.shape[0], max_shift)
    return _shift_images(images, shifts, padding), shifts


# --------------------------------------------------------------------------------
# Jitted steps
# --------------------------------------------------------------------------------


def _cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels)


def _train_step_impl(model, optimizer, images, labels, idx, epoch_key, step, *,
                     max_shift, padding):
    x = images[idx]
    y = labels[idx]
    if max_shift != (0, 0):
        key = jax.random.fold_in(epoch_key, step)
        x = _shift_images(x, _random_shifts(key, x.shape[0], max_shift), padding)

    def loss_fn(m):
        logits = m(x)
        return _cross_entropy(logits, y).mean(), logits

    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    correct = jnp.sum(jnp.argmax(logits, axis=-1) == y)
    return loss, correct


_train_step = nnx.jit(_train_step_impl, static_argnames=("max_shift", "padding"))


@nnx.jit
def _logits_step(model, x):
    return model(x)


@nnx.jit
def _eval_step(model, x, y, weight):
    logits = model(x)
    loss = jnp.sum(_cross_entropy(logits, y) * weight)
    correct = jnp.sum((jnp.argmax(logits, axis=-1) == y) * weight)
    return loss, correct


def _eval_view(model):
    """The model with Dropout/BatchNorm in inference mode, without mutating it."""
    return nnx.view(model, deterministic=True, use_running_average=True,
                    raise_if_not_found=False)


def _chunks(n, batch_size):
    b = min(batch_size, n)
    return b, [(s, min(s + b, n)) for s in range(0, n, b)]


def _pad_to(x, b):
    """Host array `x` zero-padded along axis 0 to length `b`."""
    if x.shape[0] == b:
        return x
    pad = [(0, b - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)


# --------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------


def _check_images(name, images):
    if not hasattr(images, "dtype"):
        images = np.asarray(images)
    check_nhwc(name, images)
    dt = np.dtype(images.dtype)
    if not np.issubdtype(dt, np.floating):
        raise TypeError(
            f"`{name}` must be a real float array [N, H, W, C] (e.g. float32 in "
            f"[0, 1]); got dtype {dt.name}. Convert it first, e.g. "
            f"`{name}.astype(np.float32) / 255`.")
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one image; got shape "
                         f"{tuple(images.shape)}.")
    return np.asarray(images, np.float32)


def _check_labels(name, labels, images_name, n):
    labels = np.asarray(labels) if not hasattr(labels, "dtype") else labels
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise TypeError(f"`{name}` must be an integer array [N] of classes; got "
                        f"dtype {np.dtype(labels.dtype).name}.")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"`{images_name}` [N, H, W, C] and `{name}` [N] must have the same "
            f"length N; got {n} images and labels of shape {tuple(labels.shape)}.")
    lab = np.asarray(labels)
    if lab.size and lab.min() < 0:
        raise ValueError(f"`{name}` must be class indices >= 0; got minimum "
                         f"{int(lab.min())}.")
    return lab.astype(np.int32)


def _check_module(name, model):
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`{name}` must be a Flax NNX module (nnx.Module); got "
                        f"{type(model).__name__}.")


def predict_logits(model, images, *, batch_size: int = 256) -> jax.Array:
    """Logits of a model in evaluation mode, jit-compiled, in fixed-size chunks.

    The model runs with ``deterministic=True`` and ``use_running_average=True``
    (Dropout off, BatchNorm on its running statistics) through a view, so the
    module itself is not modified. Every chunk has ``min(batch_size, N)`` images
    (the last one zero-padded and trimmed), so one compiled program serves all.

    Args:
      model: a Flax NNX module mapping [B, H, W, C] to logits [B, K].
      images: float array [N, H, W, C] (cast to float32).
      batch_size: images per chunk (positive int).

    Returns:
      float array [N, K].

    Raises:
      TypeError: if `model` is not an NNX module or `images` is not float.
      ValueError: if `images` is not NHWC or `batch_size` is not positive.
    """
    _check_module("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    x = _check_images("images", images)
    view = _eval_view(model)
    b, spans = _chunks(x.shape[0], batch_size)
    run = nnx.cached_partial(_logits_step, view)
    out = jax.device_get([run(_pad_to(x[s:e], b)) for s, e in spans])
    out = [np.asarray(o)[:e - s] for o, (s, e) in zip(out, spans)]
    return jnp.asarray(out[0] if len(out) == 1 else np.concatenate(out, axis=0))


def _evaluate(view, x, y, batch_size):
    b, spans = _chunks(x.shape[0], batch_size)
    run = nnx.cached_partial(_eval_step, view)
    sums = []
    for s, e in spans:
        w = (np.arange(b) < (e - s)).astype(np.float32)
        sums.append(run(_pad_to(x[s:e], b), _pad_to(y[s:e], b), w))
    loss, correct = np.sum(np.asarray(jax.device_get(sums), np.float64), axis=0)
    n = x.shape[0]
    return EvalResult(accuracy=float(correct) / n, loss=float(loss) / n, n=int(n))


def evaluate(model, images, labels, *, batch_size: int = 256) -> EvalResult:
    """Accuracy and mean cross-entropy of a model in evaluation mode.

    Runs like `predict_logits` (jitted, chunked, module not modified); the
    padding of the last chunk is weighted out.

    Args:
      model: a Flax NNX module mapping [B, H, W, C] to logits [B, K].
      images: float array [N, H, W, C].
      labels: integer array [N] of classes in [0, K).
      batch_size: images per chunk (positive int).

    Returns:
      `EvalResult` with ``accuracy`` (argmax == label rate), ``loss`` (mean
      softmax cross-entropy) and ``n``.

    Raises:
      TypeError: if `model` is not an NNX module, `images` not float or `labels`
        not integer.
      ValueError: if shapes disagree, a label is negative or not below K, or
        `batch_size` is not positive.
    """
    _check_module("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    x = _check_images("images", images)
    y = _check_labels("labels", labels, "images", x.shape[0])
    view = _eval_view(model)
    _check_label_range("labels", y, _num_classes(view, x))
    return _evaluate(view, x, y, batch_size)


def _num_classes(view, x):
    graphdef, state = nnx.split(view)

    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    out = jax.eval_shape(forward, state, jax.ShapeDtypeStruct((1,) + x.shape[1:],
                                                              x.dtype))
    if not hasattr(out, "shape") or len(out.shape) != 2:
        raise ValueError(
            f"`model` must map images [N, H, W, C] to logits [N, K]; for input "
            f"{(1,) + tuple(x.shape[1:])} it returns {getattr(out, 'shape', out)}.")
    return int(out.shape[1])


def _check_label_range(name, y, k):
    top = int(np.max(y))
    if top >= k:
        raise ValueError(f"`{name}` must be class indices in [0, K) = [0, {k}) for "
                         f"a model with K = {k} outputs; got a label {top}.")


# --------------------------------------------------------------------------------
# Serialisation of NNX state
# --------------------------------------------------------------------------------


def _is_key(x):
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _flat_state(obj) -> tuple[list[str], list[np.ndarray]]:
    """Paths and host arrays of every state leaf (PRNG keys as their key data)."""
    leaves = jax.tree_util.tree_flatten_with_path(nnx.state(obj))[0]
    paths, arrays = [], []
    for path, leaf in leaves:
        paths.append(jax.tree_util.keystr(path))
        leaf = jax.random.key_data(leaf) if _is_key(leaf) else leaf
        arrays.append(np.asarray(leaf))
    return paths, arrays


def _restore_state(obj, paths, arrays, *, what, source):
    """Writes `arrays` into `obj`'s state, checking paths, shapes and dtypes."""
    state = nnx.state(obj)
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    have = [jax.tree_util.keystr(p) for p, _ in flat]
    if have != list(paths):
        missing = sorted(set(have) - set(paths))[:3]
        extra = sorted(set(paths) - set(have))[:3]
        raise ValueError(
            f"The {what} saved in {source} does not match the given model: "
            f"{len(paths)} saved arrays vs {len(have)} in the model; missing from "
            f"the file {missing}, unknown to the model {extra}.")
    leaves = []
    for (path, tmpl), arr in zip(flat, arrays):
        if _is_key(tmpl):
            want = jax.random.key_data(tmpl)
            if arr.shape != want.shape:
                raise ValueError(
                    f"The {what} saved in {source} does not match the given model: "
                    f"RNG key {jax.tree_util.keystr(path)} has key data shape "
                    f"{arr.shape}, the model {want.shape}.")
            leaves.append(jax.random.wrap_key_data(
                jnp.asarray(arr, want.dtype), impl=jax.random.key_impl(tmpl)))
            continue
        if arr.shape != tmpl.shape or np.dtype(arr.dtype) != np.dtype(tmpl.dtype):
            raise ValueError(
                f"The {what} saved in {source} does not match the given model: "
                f"array {jax.tree_util.keystr(path)} is "
                f"{arr.dtype}{list(arr.shape)}, the model expects "
                f"{np.dtype(tmpl.dtype)}{list(tmpl.shape)}.")
        leaves.append(jnp.asarray(arr))
    nnx.update(obj, jax.tree_util.tree_unflatten(treedef, leaves))


def _save_npz(path: str, meta: dict, groups: dict[str, tuple[list, list]]) -> None:
    arrays = {}
    for group, (paths, values) in groups.items():
        meta.setdefault("paths", {})[group] = paths
        for i, v in enumerate(values):
            arrays[f"{group}/{i:05d}"] = v
    arrays[_META_KEY] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, lambda f: f.write(buf.getvalue()), binary=True)


def _load_npz(path: str):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z[_META_KEY]))
        groups = {}
        for group, paths in meta.get("paths", {}).items():
            groups[group] = (paths, [z[f"{group}/{i:05d}"] for i in range(len(paths))])
    return meta, groups


def _write_json(path: str, obj: dict) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text), binary=False)


# --------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------


def _jsonable(name, value):
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be JSON-serialisable (numbers, strings, "
                        f"lists, dicts) so it can be saved in {CONFIG_FILE}; got "
                        f"{value!r}.") from None


def _create_named(name: str, options: dict, rngs):
    try:
        from sigcnn import models
    except ImportError as e:  # pragma: no cover - depends on the checkout
        raise ImportError(f"Building model {name!r} by name needs `sigcnn.models`."
                          ) from e
    return models.create(name, rngs=rngs, **options)


def _build_model(model, options, rngs):
    """(module, spec) from a module, a model name or a factory ``f(rngs)``."""
    if isinstance(model, nnx.Module):
        if options:
            raise ValueError("`model_options` applies only when `model` is a name or "
                             f"a factory; got a module and {options!r}.")
        spec = {"name": None, "class": _qualname(model), "options": {}}
        return model, spec
    if isinstance(model, str):
        module = _create_named(model, options, rngs)
        spec = {"name": model, "options": options}
    elif callable(model):
        module = model(rngs, **options)
        # A stable description (no memory addresses): it is part of the run
        # fingerprint that a resumed run must match.
        factory = getattr(model, "func", model)      # functools.partial
        spec = {"name": None,
                "factory": getattr(factory, "__qualname__", type(factory).__qualname__),
                "options": options}
    else:
        raise TypeError(
            "`model` must be an nnx.Module, a model name for `sigcnn.models.create` "
            f"or a factory `f(rngs, **model_options) -> nnx.Module`; got "
            f"{type(model).__name__}.")
    if not isinstance(module, nnx.Module):
        raise TypeError(f"`model` built {type(module).__name__}, not an nnx.Module.")
    spec["class"] = _qualname(module)
    return module, spec


def _qualname(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


@functools.lru_cache(maxsize=64)
def _make_tx(name, learning_rate, weight_decay):
    # Memoised: optax transformations are immutable pairs of pure functions, and
    # reusing the same object for the same settings lets repeated `fit` calls hit
    # the compilation cache of the train step (the optimizer is part of its
    # static graph definition).
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "adamw":
        return optax.adamw(learning_rate, weight_decay=weight_decay)
    return optax.sgd(learning_rate, momentum=0.9)


# --------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------


def _unpack(name, data):
    """(images, labels) from a pair or an object with `images` and `labels`."""
    if hasattr(data, "images") and hasattr(data, "labels"):
        return data.images, data.labels
    if isinstance(data, dict) and {"images", "labels"} <= set(data):
        return data["images"], data["labels"]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(f"`{name}` must be a pair (images [N, H, W, C], labels [N]) or "
                    f"have `images` and `labels`; got {type(data).__name__}"
                    + (f" of length {len(data)}" if isinstance(data, (tuple, list))
                       else "") + ".")


def _check_data(name, data):
    images, labels = _unpack(name, data)
    x = _check_images(f"{name}[0]", images)
    y = _check_labels(f"{name}[1]", labels, f"{name}[0]", x.shape[0])
    return x, y


def _fingerprint(x, y):
    h = hashlib.sha256()
    h.update(np.asarray(x).tobytes())
    h.update(np.asarray(y).tobytes())
    return h.hexdigest()[:16]


def _check_learning_rate(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`learning_rate` must be a positive float; got {value!r} "
                        f"of type {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`learning_rate` must be a positive finite float; got "
                         f"{value!r}.")
    return float(value)


def _check_nonnegative_float(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative finite float; got "
                         f"{value!r}.")
    return float(value)


def _check_seed(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Integral, np.integer)) or not 0 <= value < 2**31:
        # Larger seeds map to different keys with and without jax_enable_x64.
        raise ValueError(f"`seed` must be an int in [0, 2**31); got {value!r}.")
    return int(value)


def fit(model, train_data, test_data, *, epochs: int, batch_size: int = 128,
        learning_rate: float = 1e-3, seed: int = 0, augment_shift=0,
        augment_padding: AugmentPadding = "circular",
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        weight_decay: float = 1e-4, model_options: dict | None = None,
        out_dir: str | os.PathLike | None = None, resume: bool = True,
        progress: Callable[[TrainEvent], None] | None = None,
        dataset: str | None = None, eval_batch_size: int = 256,
        extra_config: dict | None = None) -> FitResult:
    """Trains a classifier with optax and softmax cross-entropy; resumable.

    See the module docstring for the seeding, batching, augmentation and
    checkpoint rules. The model is trained in training mode (``model.train()``:
    Dropout on, BatchNorm on batch statistics) and evaluated in evaluation mode
    after every epoch; it is left in evaluation mode.

    Args:
      model: what to train: an ``nnx.Module`` (trained in place; its
        initialisation is the caller's), a model name for
        ``sigcnn.models.create(name, rngs=..., **model_options)``, or a factory
        ``f(rngs, **model_options) -> nnx.Module``. Names and factories are
        called with ``nnx.Rngs`` seeded from ``seed``.
      train_data: ``(images, labels)``, or an object with ``images`` and
        ``labels``: float images [N, H, W, C] (cast to float32) and integer
        classes [N] in [0, K).
      test_data: the same for held-out data (images [M, H, W, C]), or None for
        no evaluation.
      epochs: total number of epochs (positive int), counting epochs restored
        from a checkpoint in `out_dir`.
      batch_size: images per step (positive int, at most N).
      learning_rate: optimizer step size (positive float).
      seed: int in [0, 2**31); the only source of randomness.
      augment_shift: non-negative int r or pair (ry, rx): random translations by
        up to r pixels per axis (0: none).
      augment_padding: ``"circular"``, ``"zero"`` or ``"reflect"``.
      optimizer: ``"adam"``, ``"adamw"`` (with `weight_decay`) or ``"sgd"``
        (momentum 0.9).
      weight_decay: decoupled weight decay for ``"adamw"`` (ignored otherwise).
      model_options: keyword options for a model name or factory (JSON-ready).
      out_dir: directory for ``checkpoint.npz``, ``model.npz`` and
        ``config.json`` (created if missing), or None for no files.
      resume: if True and `out_dir` holds a checkpoint of the same run settings,
        continue from it; if False, start over and overwrite it.
      progress: optional callable receiving a `TrainEvent` at the start, after
        every step, after every epoch and at the end. An exception it raises
        stops training; finished epochs stay in the checkpoint.
      dataset: free-form dataset name recorded in ``config.json``.
      eval_batch_size: chunk size for evaluation (positive int).
      extra_config: JSON-ready dict recorded in ``config.json`` under "extra".

    Returns:
      `FitResult` (model, history, final test accuracy and loss, wall time,
      throughput, config).

    Raises:
      TypeError: for arguments of the wrong type (model, data, dtypes).
      ValueError: for bad values (epochs or batch_size not positive, mismatched
        or non-NHWC data, labels outside [0, K), a checkpoint in `out_dir` from
        different settings or with more than `epochs` epochs).

    References:
      Azulay & Weiss, JMLR 2019, Section 5 (more augmentation as a remedy).
    """
    t0 = time.perf_counter()
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    eval_batch_size = check_positive_int("eval_batch_size", eval_batch_size)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    max_shift = _as_shift_range("augment_shift", augment_shift)
    check_choice("augment_padding", augment_padding, AUGMENT_PADDINGS)
    if max_shift == (0, 0):
        augment_padding = "circular"   # unused; one compiled step for all "none"
    check_choice("optimizer", optimizer, OPTIMIZERS)
    weight_decay = _check_nonnegative_float("weight_decay", weight_decay)
    if not isinstance(resume, (bool, np.bool_)):
        raise TypeError(f"`resume` must be a bool; got {resume!r}.")
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable or None; got {progress!r}.")
    options = _jsonable("model_options", dict(model_options or {}))
    extra = _jsonable("extra_config", dict(extra_config or {}))

    x_train, y_train = _check_data("train_data", train_data)
    n = int(x_train.shape[0])
    if batch_size > n:
        raise ValueError(f"`batch_size` must be at most the number of training "
                         f"images N = {n}; got {batch_size}.")
    if test_data is not None:
        x_test, y_test = _check_data("test_data", test_data)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(
                f"`test_data` images must have the training images' shape [H, W, C] "
                f"= {tuple(x_train.shape[1:])}; got {tuple(x_test.shape[1:])}.")

    init_key, data_key = _root_keys(seed)
    module, spec = _build_model(model, options, nnx.Rngs(init_key))
    num_classes = _num_classes(_eval_view(module), x_train)
    _check_label_range("train_data[1]", y_train, num_classes)
    if test_data is not None:
        _check_label_range("test_data[1]", y_test, num_classes)
    opt = nnx.Optimizer(module, _make_tx(optimizer, learning_rate, weight_decay),
                        wrt=nnx.Param)

    run = {
        "model": spec,
        "image_shape": list(x_train.shape[1:]),
        "num_classes": num_classes,
        "n_train": n,
        "train_fingerprint": _fingerprint(x_train, y_train),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "weight_decay": weight_decay if optimizer == "adamw" else None,
        "seed": seed,
        "augmentation": {"max_shift": list(max_shift),
                         "padding": None if max_shift == (0, 0) else augment_padding},
    }

    history: list[dict] = []
    start = 0
    ckpt_path = None
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        ckpt_path = os.path.join(out_dir, CHECKPOINT_FILE)
        if os.path.exists(ckpt_path):
            if resume:
                start, history, data_key = _resume(ckpt_path, run, epochs, module,
                                                   opt)
            else:
                os.remove(ckpt_path)   # a crash must not resume the old run

    steps = n // batch_size
    step_fn = None
    last_eval = None
    train_time = 0.0

    def emit(event):
        if progress is not None:
            progress(event)

    emit(TrainEvent("start", epoch=start + 1, epochs=epochs, steps=steps))
    for epoch in range(start, epochs):
        te = time.perf_counter()
        if step_fn is None:
            module.train()
            step_fn = nnx.cached_partial(_train_step, module, opt)
            x_dev, y_dev = jnp.asarray(x_train), jnp.asarray(y_train)
        order, aug_key = _epoch_plan(data_key, epoch, n)
        order = np.asarray(order)[:steps * batch_size].reshape(steps, batch_size)
        sums = []
        for s in range(steps):
            loss, correct = step_fn(x_dev, y_dev, order[s], aug_key, np.int32(s),
                                    max_shift=max_shift, padding=augment_padding)
            sums.append((loss, correct))
            emit(TrainEvent("step", epoch=epoch + 1, epochs=epochs, step=s + 1,
                            steps=steps, loss=loss))
        loss_sum, correct_sum = np.sum(np.asarray(jax.device_get(sums), np.float64),
                                       axis=0)
        train_seconds = time.perf_counter() - te
        train_time += train_seconds
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / steps,
            "train_accuracy": float(correct_sum) / (steps * batch_size),
            "test_loss": None,
            "test_accuracy": None,
        }
        if test_data is not None:
            last_eval = _evaluate(_eval_view(module), x_test, y_test, eval_batch_size)
            record["test_loss"] = last_eval.loss
            record["test_accuracy"] = last_eval.accuracy
        record["train_seconds"] = train_seconds
        record["seconds"] = time.perf_counter() - te
        history.append(record)
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, run, epoch + 1, data_key, history, module, opt)
        emit(TrainEvent("epoch", epoch=epoch + 1, epochs=epochs, steps=steps,
                        record=record))

    module.eval()
    epochs_run = epochs - start
    if test_data is not None and last_eval is None:
        last_eval = _evaluate(_eval_view(module), x_test, y_test, eval_batch_size)
    wall = time.perf_counter() - t0
    ips = epochs_run * steps * batch_size / train_time if epochs_run else 0.0
    config = {
        "format": _FORMAT,
        **run,
        "dataset": dataset,
        "n_test": int(x_test.shape[0]) if test_data is not None else 0,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "test_accuracy": last_eval.accuracy if last_eval else None,
        "test_loss": last_eval.loss if last_eval else None,
        "history": history,
        "wall_time": wall,
        "images_per_second": ips,
        "versions": _versions(),
        "extra": extra,
    }
    if out_dir is not None:
        # model.npz is self-contained (it embeds the config); config.json is the
        # readable copy.
        _save_npz(os.path.join(out_dir, MODEL_FILE),
                  {"format": _FORMAT, "config": config},
                  {"model": _flat_state(module)})
        _write_json(os.path.join(out_dir, CONFIG_FILE), config)
    emit(TrainEvent("end", epoch=epochs, epochs=epochs, steps=steps))
    return FitResult(
        model=module, history=history,
        test_accuracy=last_eval.accuracy if last_eval else None,
        test_loss=last_eval.loss if last_eval else None,
        wall_time=wall, epochs_run=epochs_run, start_epoch=start,
        images_per_second=ips, config=config)


def _root_keys(seed):
    init_key, data_key = jax.random.split(jax.random.key(seed))
    return init_key, data_key


@functools.partial(jax.jit, static_argnums=(2,))
def _epoch_plan(data_key, epoch, n):
    """Batch order (a permutation of N) and augmentation key of an epoch."""
    perm_key, aug_key = jax.random.split(jax.random.fold_in(data_key, epoch))
    return jax.random.permutation(perm_key, n), aug_key


def _versions():
    import flax

    try:
        from sigcnn import __version__ as sigcnn_version
    except ImportError:  # pragma: no cover
        sigcnn_version = None
    return {"sigcnn": sigcnn_version, "jax": jax.__version__,
            "flax": flax.__version__, "optax": optax.__version__,
            "numpy": np.__version__}


def _save_checkpoint(path, run, epochs_done, data_key, history, module, opt):
    meta = {
        "format": _FORMAT,
        "run": run,
        "epochs_done": epochs_done,
        "rng": {"impl": str(jax.random.key_impl(data_key)),
                "key_data": np.asarray(jax.random.key_data(data_key)).tolist()},
        "history": history,
    }
    _save_npz(path, meta, {"model": _flat_state(module), "optimizer": _flat_state(opt)})


def _resume(path, run, epochs, module, opt):
    """Loads a checkpoint into `module` and `opt`; returns (start, history, key)."""
    try:
        meta, groups = _load_npz(path)
    except Exception as e:
        raise ValueError(f"`out_dir` holds an unreadable checkpoint {path!r} "
                         f"({type(e).__name__}: {e}); delete it or pass "
                         f"`resume=False`.") from e
    saved = meta.get("run", {})
    diff = [k for k in sorted(set(saved) | set(run)) if saved.get(k) != run.get(k)]
    if meta.get("format") != _FORMAT or diff:
        raise ValueError(
            f"`out_dir` holds a checkpoint of a different run (settings differ in "
            f"{diff or ['format']}); use another `out_dir` or pass `resume=False` "
            f"to start over.")
    done = int(meta["epochs_done"])
    if done > epochs:
        raise ValueError(f"`out_dir` holds a checkpoint after {done} epochs, more "
                         f"than `epochs`={epochs}; use another `out_dir`, "
                         f"`epochs` >= {done} or `resume=False`.")
    _restore_state(module, *groups["model"], what="model state", source=path)
    _restore_state(opt, *groups["optimizer"], what="optimizer state", source=path)
    rng = meta["rng"]
    key = jax.random.wrap_key_data(jnp.asarray(rng["key_data"], jnp.uint32),
                                   impl=rng["impl"])
    return done, list(meta["history"]), key


# --------------------------------------------------------------------------------
# load_model
# --------------------------------------------------------------------------------


def load_model(out_dir: str | os.PathLike, *, model=None):
    """Rebuilds the final model that `fit` saved in `out_dir`, for evaluation.

    Args:
      out_dir: a directory written by `fit`; only ``model.npz`` is read (it embeds
        the config that ``config.json`` shows).
      model: None to rebuild by name with ``sigcnn.models.create`` (only for runs
        that `fit` built from a name); a factory ``f(rngs, **options)`` called
        with the saved ``model_options``; or a module of the same architecture,
        whose state is overwritten.

    Returns:
      ``(module, config)``: the NNX module in evaluation mode with the saved
      state, and the run's config dict (as in ``config.json``).

    Raises:
      FileNotFoundError: if `out_dir` lacks ``model.npz``.
      ValueError: if the saved state does not fit the model, or `model` is None
        and the run was not built from a model name.
      TypeError: if `model` is not None, a factory or a module.
    """
    out_dir = os.fspath(out_dir)
    npz_path = os.path.join(out_dir, MODEL_FILE)
    if not os.path.exists(npz_path):
        raise FileNotFoundError(
            f"`out_dir` {out_dir!r} holds no {MODEL_FILE}; train with "
            f"`fit(..., out_dir=...)` first.")
    meta, groups = _load_npz(npz_path)
    if meta.get("format") != _FORMAT or "config" not in meta:
        raise ValueError(f"{npz_path!r} was not written by sigcnn.train.fit "
                         f"(format {meta.get('format')!r}, expected {_FORMAT!r}).")
    config = meta["config"]
    spec = config.get("model", {})
    options = dict(spec.get("options") or {})
    rngs = nnx.Rngs(0)
    if model is None:
        if not spec.get("name"):
            raise ValueError(
                f"The run in `out_dir` {out_dir!r} trained a {spec.get('class')} that "
                f"was not built by name; pass `model=` (a factory or a module of the "
                f"same architecture).")
        module = _create_named(spec["name"], options, rngs)
    elif isinstance(model, nnx.Module):
        module = model
    elif callable(model):
        module = model(rngs, **options)
        if not isinstance(module, nnx.Module):
            raise TypeError(f"`model` built {type(module).__name__}, not an "
                            f"nnx.Module.")
    else:
        raise TypeError(f"`model` must be None, a factory or an nnx.Module; got "
                        f"{type(model).__name__}.")
    _restore_state(module, *groups["model"], what="model state", source=npz_path)
    module.eval()
    return module, config
