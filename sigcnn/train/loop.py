"""The training loop: `fit` trains a Flax NNX classifier with optax.

`fit` trains any Flax NNX module that maps images ``[N, H, W, C]`` to logits
``[N, K]`` with a softmax cross-entropy loss, evaluates it on held-out data
after every epoch and, given an output directory, checkpoints after every
epoch so that an interrupted run resumes without redoing finished epochs.

1. *Determinism.* All randomness derives from the integer ``seed``:
   ``jax.random.split(jax.random.key(seed))`` gives an initialisation key (used
   when `fit` builds the model) and a data key. Epoch ``e`` (0-based) draws its
   batch order and its augmentation from ``jax.random.fold_in(data_key, e)``,
   so the random stream of an epoch does not depend on the epochs before it,
   and a resumed run draws exactly what an uninterrupted run would. The same
   seed gives the same weights bit for bit on the same machine and software,
   with or without interruptions.
2. *Batching.* Every epoch visits a fresh seeded permutation of the training
   set in ``floor(N / batch_size)`` batches of exactly ``batch_size`` images;
   the last ``N mod batch_size`` images of each permutation are left out of
   that epoch (one compiled step, every image still seen across epochs).
3. *Augmentation.* ``augment_shift=r`` translates every training image by its
   own integer shift drawn uniformly from ``[-r, r]^2``, filled as
   ``augment_padding`` says (see `sigcnn.train.augmentation`); step ``s`` of an
   epoch draws its shifts from ``fold_in(augmentation key of the epoch, s)``.
4. *Checkpoints and faults.* With ``out_dir``, the folder is checked and
   locked before the first epoch (`sigcnn.train.outdir`) and a checkpoint is
   written atomically after every epoch (`sigcnn.train.checkpoint`); a later
   call with the same settings and data resumes from it, other settings are
   refused. Non-finite training or test images are refused up front, and a
   loss that turns NaN or Inf stops training after that epoch, before its
   checkpoint is written.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (remedies: augmentation).
  Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import numbers
import os
import time
from typing import Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn._checks import check_bool, check_choice, check_positive_int
from sigcnn._io import atomic_write_json, to_jsonable
from sigcnn.train import checkpoint as ckpt
from sigcnn.train import outdir
from sigcnn.train.augmentation import (
    AUGMENT_PADDINGS,
    AugmentPadding,
    as_shift_range,
    random_shifts_jit,
    shift_images_jit,
)
from sigcnn.train.building import OPTIMIZERS, build_model, check_jsonable, make_tx
from sigcnn.train.evaluation import (
    check_images,
    check_label_range,
    check_labels,
    cross_entropy,
    eval_view,
    evaluate_checked,
    num_classes,
)
from sigcnn.train.results import FitResult, TrainEvent

__all__ = ["fit"]


# --------------------------------------------------------------------------------
# The jitted step
# --------------------------------------------------------------------------------


def _train_step_impl(model, optimizer, images, labels, idx, epoch_key, step, *,
                     max_shift, padding):
    x = images[idx]
    y = labels[idx]
    if max_shift != (0, 0):
        key = jax.random.fold_in(epoch_key, step)
        x = shift_images_jit(x, random_shifts_jit(key, x.shape[0], max_shift),
                             padding)

    def loss_fn(m):
        logits = m(x)
        return cross_entropy(logits, y).mean(), logits

    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    correct = jnp.sum(jnp.argmax(logits, axis=-1) == y)
    return loss, correct


_train_step = nnx.jit(_train_step_impl, static_argnames=("max_shift", "padding"))


def _root_keys(seed):
    init_key, data_key = jax.random.split(jax.random.key(seed))
    return init_key, data_key


@functools.partial(jax.jit, static_argnums=(2,))
def _epoch_plan(data_key, epoch, n):
    """Batch order (a permutation of N) and augmentation key of an epoch."""
    perm_key, aug_key = jax.random.split(jax.random.fold_in(data_key, epoch))
    return jax.random.permutation(perm_key, n), aug_key


# --------------------------------------------------------------------------------
# Argument checks
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
    try:
        x = check_images(f"{name}[0]", images)
    except ValueError as e:
        if "must be finite" not in str(e):
            raise
        raise ValueError(f"{e} Replace or drop those images of `{name}` before "
                         f"training.") from None
    y = check_labels(f"{name}[1]", labels, f"{name}[0]", x.shape[0])
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


def _versions():
    import flax
    import optax
    import orbax.checkpoint as ocp

    try:
        from sigcnn import __version__ as sigcnn_version
    except ImportError:  # pragma: no cover
        sigcnn_version = None
    return {"sigcnn": sigcnn_version, "jax": jax.__version__,
            "flax": flax.__version__, "optax": optax.__version__,
            "orbax-checkpoint": ocp.__version__, "numpy": np.__version__}


# --------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------


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
        ``labels``: finite float images [N, H, W, C] (cast to float32) and
        integer classes [N] in [0, K).
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
      out_dir: a writable folder (created if missing) that this call locks and
        fills with ``checkpoint/``, ``model/`` and ``config.json`` (see
        `sigcnn.train.checkpoint`), or None for no files.
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
      ValueError: for bad values (epochs or batch_size not positive, mismatched,
        non-NHWC or non-finite data, labels outside [0, K)); for an `out_dir`
        that is not a writable folder or that another run is using; for a
        checkpoint in `out_dir` from different settings, with more than
        `epochs` epochs, unreadable or not finite; and when the training loss
        becomes NaN or Inf (the message names the epoch).

    References:
      Azulay & Weiss, JMLR 2019, Section 5 (more augmentation as a remedy).
    """
    t0 = time.perf_counter()
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    eval_batch_size = check_positive_int("eval_batch_size", eval_batch_size)
    learning_rate = _check_learning_rate(learning_rate)
    seed = _check_seed(seed)
    max_shift = as_shift_range("augment_shift", augment_shift)
    check_choice("augment_padding", augment_padding, AUGMENT_PADDINGS)
    if max_shift == (0, 0):
        augment_padding = "circular"   # unused; one compiled step for all "none"
    check_choice("optimizer", optimizer, OPTIMIZERS)
    weight_decay = _check_nonnegative_float("weight_decay", weight_decay)
    resume = check_bool("resume", resume)
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable or None; got {progress!r}.")
    options = check_jsonable("model_options", dict(model_options or {}),
                             ckpt.CONFIG_FILE)
    extra = check_jsonable("extra_config", dict(extra_config or {}),
                           ckpt.CONFIG_FILE)

    x_train, y_train = _check_data("train_data", train_data)
    n = int(x_train.shape[0])
    if batch_size > n:
        raise ValueError(f"`batch_size` must be at most the number of training "
                         f"images N = {n}; got {batch_size}.")
    x_test = y_test = None
    if test_data is not None:
        x_test, y_test = _check_data("test_data", test_data)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(
                f"`test_data` images must have the training images' shape [H, W, C] "
                f"= {tuple(x_train.shape[1:])}; got {tuple(x_test.shape[1:])}.")
    if out_dir is not None:
        out_dir = outdir.prepare_out_dir(out_dir)

    lock = outdir.locked(out_dir) if out_dir is not None else contextlib.nullcontext()
    with lock:
        return _fit_locked(
            model, x_train, y_train, x_test, y_test, t0=t0, epochs=epochs,
            batch_size=batch_size, learning_rate=learning_rate, seed=seed,
            max_shift=max_shift, augment_padding=augment_padding,
            optimizer=optimizer, weight_decay=weight_decay, options=options,
            out_dir=out_dir, resume=resume, progress=progress, dataset=dataset,
            eval_batch_size=eval_batch_size, extra=extra)


def _fit_locked(model, x_train, y_train, x_test, y_test, *, t0, epochs, batch_size,
                learning_rate, seed, max_shift, augment_padding, optimizer,
                weight_decay, options, out_dir, resume, progress, dataset,
                eval_batch_size, extra):
    """`fit` after its checks, holding the lock of `out_dir` (if any)."""
    if out_dir is not None:
        ckpt.remove_stale(out_dir)
        ckpt.check_model_slot(out_dir)
        latest = ckpt.latest_checkpoint(out_dir)

    init_key, data_key = _root_keys(seed)
    module, spec = build_model(model, options, nnx.Rngs(init_key))
    k = num_classes(eval_view(module), x_train)
    check_label_range("train_data[1]", y_train, k)
    if x_test is not None:
        check_label_range("test_data[1]", y_test, k)
    opt = nnx.Optimizer(module, make_tx(optimizer, learning_rate, weight_decay),
                        wrt=nnx.Param)
    n = int(x_train.shape[0])
    run = {
        "model": spec,
        "image_shape": list(x_train.shape[1:]),
        "num_classes": k,
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
    if out_dir is not None and latest is not None:
        if resume:
            start, history, data_key = ckpt.resume(latest, run, epochs, module, opt)
        else:
            ckpt.remove_checkpoint(out_dir)   # a crash must not resume the old run

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
        sums = np.asarray(jax.device_get(sums), np.float64)
        if not np.all(np.isfinite(sums[:, 0])):
            bad = int(np.argmin(np.isfinite(sums[:, 0]))) + 1
            raise ValueError(
                f"The training loss became {sums[bad - 1, 0]} at step {bad} of "
                f"epoch {epoch + 1} (`learning_rate`={learning_rate}, "
                f"`optimizer`={optimizer!r}); training stopped and epoch "
                f"{epoch + 1} was not saved. Try a lower `learning_rate`.")
        loss_sum, correct_sum = np.sum(sums, axis=0)
        train_seconds = time.perf_counter() - te
        train_time += train_seconds
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / steps,
            "train_accuracy": float(correct_sum) / (steps * batch_size),
            "test_loss": None,
            "test_accuracy": None,
        }
        if x_test is not None:
            last_eval = evaluate_checked(eval_view(module), x_test, y_test,
                                         eval_batch_size)
            record["test_loss"] = last_eval.loss
            record["test_accuracy"] = last_eval.accuracy
        record["train_seconds"] = train_seconds
        record["seconds"] = time.perf_counter() - te
        history.append(record)
        if out_dir is not None:
            ckpt.save_checkpoint(out_dir, run=run, epochs_done=epoch + 1,
                                 data_key=data_key, history=history, module=module,
                                 optimizer=opt)
        emit(TrainEvent("epoch", epoch=epoch + 1, epochs=epochs, steps=steps,
                        record=record))

    module.eval()
    epochs_run = epochs - start
    if x_test is not None and last_eval is None:
        last_eval = evaluate_checked(eval_view(module), x_test, y_test,
                                     eval_batch_size)
    wall = time.perf_counter() - t0
    ips = epochs_run * steps * batch_size / train_time if epochs_run else 0.0
    config = {
        "format": ckpt.FORMAT,
        **run,
        "dataset": dataset,
        "n_test": int(x_test.shape[0]) if x_test is not None else 0,
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
    config = to_jsonable(config)
    if out_dir is not None:
        # model/ is self-contained (it embeds the config); config.json is the
        # readable copy.
        ckpt.save_model(out_dir, module, config)
        atomic_write_json(os.path.join(out_dir, ckpt.CONFIG_FILE), config)
    emit(TrainEvent("end", epoch=epochs, epochs=epochs, steps=steps))
    return FitResult(
        model=module, history=history,
        test_accuracy=last_eval.accuracy if last_eval else None,
        test_loss=last_eval.loss if last_eval else None,
        wall_time=wall, epochs_run=epochs_run, start_epoch=start,
        images_per_second=ips, config=config)
