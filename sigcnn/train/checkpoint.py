"""Checkpoints and saved models of `fit`, written with orbax.

Layout of an ``out_dir`` after `fit` (names from `CHECKPOINT_FILE`,
`MODEL_FILE` and `CONFIG_FILE`)::

    out_dir/
      checkpoint/             the state after the last finished epoch
        epoch-00003/
          state/              orbax: {"model": nnx.state(model) (params, batch
                              stats, RNG streams), "optimizer": nnx.state(opt)}
          meta.json           epochs done, data key, history, run settings
      model/                  the final model
        state/                orbax: nnx.state(model)
        meta.json             the run's config (what config.json shows)
      config.json             the same config, readable

The state goes through orbax's synchronous `StandardCheckpointHandler` as the
Flax documentation shows (``nnx.state`` to save; the state of a module of the
same architecture as the restore target). The small metadata is JSON
(`sigcnn._io.atomic_write_json`). Guarantees:

1. *Atomic.* A checkpoint is written into a temporary folder
   ``checkpoint/.tmp-epoch-NNNNN-*`` and renamed to ``epoch-NNNNN`` only when
   complete; the older epoch is deleted after that. A crash or kill at any
   point leaves the previous checkpoint readable, and the next `fit` removes
   the temporary (see `sigcnn.train.outdir`). The final model is written the
   same way and then swapped in.
2. *Checked on reading.* A missing, truncated, garbled or foreign checkpoint
   or model, a state that does not fit the model, and saved weights holding
   NaN or Inf raise a `ValueError` that names the folder and says how to fix
   it, never a raw orbax or tensorstore error.

References:
  Orbax checkpointing, https://orbax.readthedocs.io (StandardCheckpointHandler).
  Flax NNX, "Save and load checkpoints",
  https://flax.readthedocs.io/en/latest/guides/checkpointing.html
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn._checks import check_key
from sigcnn._io import atomic_write_json, to_jsonable
from sigcnn.train import building, outdir
from sigcnn.train.outdir import TMP_PREFIX, fsync_dir

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "MODEL_FILE", "has_model",
           "load_model"]

CHECKPOINT_FILE = "checkpoint"
MODEL_FILE = "model"
CONFIG_FILE = "config.json"
FORMAT = "sigcnn.train/2"
META_FILE = "meta.json"
_STATE = "state"
_EPOCH = re.compile(r"^epoch-(\d{5,})$")
_LEGACY_MODEL = "model.npz"
_RESUME_FIX = "delete it or pass `resume=False` to start over"
_MODEL_FIX = ("train again with `fit(..., out_dir=...)` (it reuses the "
              "checkpoint), or delete it")

_CHECKPOINTER = None


def _checkpointer():
    global _CHECKPOINTER
    if _CHECKPOINTER is None:
        import orbax.checkpoint as ocp

        _CHECKPOINTER = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    return _CHECKPOINTER


_QUIET_LOCK = threading.RLock()


@contextlib.contextmanager
def _quiet():
    """Keeps orbax silent: its absl log lines, and the tracebacks of its pending
    reads when a file is corrupt (this module raises its own clear error).

    One orbax call at a time (the logger level and the hook are global)."""
    with _QUIET_LOCK, _silenced():
        yield


@contextlib.contextmanager
def _silenced():
    logger = logging.getLogger("absl")
    level = logger.level
    hook = sys.unraisablehook

    def drop_orbax(info):
        tb = "".join(traceback.format_tb(info.exc_traceback))
        ours = ("orbax" in repr(getattr(info, "object", "")) or "orbax" in tb
                # a read finishing after orbax closed its event loop
                or (isinstance(info.exc_value, RuntimeError)
                    and "Event loop is closed" in str(info.exc_value)))
        if not ours:
            hook(info)

    logger.setLevel(logging.CRITICAL)
    sys.unraisablehook = drop_orbax
    try:
        yield
    finally:
        sys.unraisablehook = hook
        logger.setLevel(level)


def _try_orbax(call, accept=lambda result: True):
    """``(call(), True)``, or ``(None, False)`` if orbax fails to read (raises,
    or gives a result that `accept` refuses)."""
    with _quiet():
        try:
            result = call()
            if accept(result):
                return result, True
        except Exception:
            pass
        result = None
        # A failed read cancels the reads still in flight when its exception is
        # freed; their callbacks then find orbax's event loop closed. Let them
        # (and their coroutines) finish under the hook.
        gc.collect()
        time.sleep(0.1)
        return None, False


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first[:200]}"


# --------------------------------------------------------------------------------
# NNX state through orbax
# --------------------------------------------------------------------------------


def write_state(path: str, state) -> None:
    """Saves an NNX state (`nnx.state(...)`) to the new folder `path`."""
    import orbax.checkpoint as ocp

    with _quiet():
        _checkpointer().save(os.path.abspath(path),
                             args=ocp.args.StandardSave(state))


def _names(path) -> tuple[str, ...]:
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
        else:  # pragma: no cover
            out.append(str(k))
    return tuple(out)


def _is_key(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _corrupt(folder: str, what: str, why: str, fix: str) -> ValueError:
    return ValueError(f"{folder!r} holds an unreadable or incomplete {what} "
                      f"({why}); {fix}.")


def _metadata_tree(path: str):
    """The tree of array metadata that orbax saved (None if unreadable)."""
    saved = _checkpointer().metadata(path)
    # StepMetadata(item_metadata=TreeMetadata(tree=...)).
    saved = getattr(saved, "item_metadata", saved)
    return getattr(saved, "tree", saved)


def read_state(path: str, template, *, what: str, source: str, fix: str):
    """The NNX state saved in `path`, checked against `template` and for NaN.

    Args:
      path: an orbax folder written by `write_state`.
      template: ``nnx.state(obj)`` of an object of the same architecture.
      what: what the state is, for messages ("model state").
      source: the folder to name in messages.
      fix: what the user can do, for messages.

    Raises:
      ValueError: unreadable, of another architecture, or not finite.
    """
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"{source!r} holds no {what} (missing "
                         f"{os.path.basename(path)}/); {fix}.")
    saved, ok = _try_orbax(lambda: _metadata_tree(path),
                           accept=lambda tree: isinstance(tree, dict))
    if not ok:
        why = (f"orbax cannot read the metadata of {os.path.basename(path)}/: a "
               f"file is missing or corrupt")
        raise _corrupt(source, what, why, fix)
    saved_flat = {_names(p): m for p, m in
                  jax.tree_util.tree_flatten_with_path(saved)[0]}
    flat = jax.tree_util.tree_flatten_with_path(template)[0]
    have = {_names(p): (p, leaf) for p, leaf in flat}
    if set(have) != set(saved_flat):
        missing = sorted(".".join(k) for k in set(have) - set(saved_flat))[:3]
        extra = sorted(".".join(k) for k in set(saved_flat) - set(have))[:3]
        raise ValueError(
            f"The {what} saved in {source!r} does not match the given model: "
            f"{len(saved_flat)} saved arrays vs {len(have)} in the model; missing "
            f"from the file {missing}, unknown to the model {extra}.")
    for names, (p, leaf) in have.items():
        want = jax.random.key_data(leaf) if _is_key(leaf) else leaf
        meta = saved_flat[names]
        shape = tuple(getattr(meta, "shape", ()) or ())
        dtype = np.dtype(getattr(meta, "dtype", want.dtype))
        if shape != tuple(want.shape) or dtype != np.dtype(want.dtype):
            label = "RNG key data" if _is_key(leaf) else "array"
            raise ValueError(
                f"The {what} saved in {source!r} does not match the given model: "
                f"{label} {jax.tree_util.keystr(p)} is {dtype}{list(shape)}, the "
                f"model expects {np.dtype(want.dtype)}{list(want.shape)}.")
    import orbax.checkpoint as ocp

    restored, ok = _try_orbax(lambda: _checkpointer().restore(
        path, args=ocp.args.StandardRestore(template)))
    if not ok:
        why = (f"orbax cannot read the arrays of {os.path.basename(path)}/: a "
               f"file is missing or corrupt")
        raise _corrupt(source, what, why, fix)
    for p, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]:
        if _is_key(leaf) or not jnp.issubdtype(leaf.dtype, jnp.inexact):
            continue
        if not np.isfinite(np.asarray(leaf)).all():
            raise ValueError(
                f"The {what} saved in {source!r} holds NaN or Inf values (in "
                f"{jax.tree_util.keystr(p)}), so it cannot be evaluated or "
                f"trained further; {fix}.")
    return jax.tree.map(_placed_like, template, restored)


def _placed_like(template, restored):
    """`restored` uncommitted where `template` is (orbax commits what it reads,
    and a committed argument would make jit compile the train step anew)."""
    if getattr(template, "committed", True) or not isinstance(restored, jax.Array):
        return restored
    if _is_key(restored):
        data = jax.device_put(np.asarray(jax.random.key_data(restored)))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(restored))
    return jax.device_put(np.asarray(restored))


def read_meta(folder: str, *, kind: str, fix: str) -> dict:
    """The ``meta.json`` of a checkpoint or model folder, checked."""
    path = os.path.join(folder, META_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise _corrupt(folder, kind, f"{META_FILE}: {_short(e)}", fix) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT \
            or meta.get("kind") != kind:
        found = ((meta.get("format"), meta.get("kind")) if isinstance(meta, dict)
                 else (None, None))
        raise ValueError(f"{folder!r} is not a {kind} written by sigcnn.train.fit "
                         f"(its {META_FILE} has format {found[0]!r} and kind "
                         f"{found[1]!r}; expected {FORMAT!r} and {kind!r}); {fix}.")
    return meta


def _write_folder(final: str, prefix: str, fill) -> None:
    """Fills a temporary folder beside `final` with ``fill(tmp)``, renames it."""
    parent = os.path.dirname(final)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        fill(tmp)
        if os.path.lexists(final):
            old = os.path.join(parent, f"{TMP_PREFIX}old-{os.path.basename(final)}-"
                                       f"{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------
# Training checkpoints
# --------------------------------------------------------------------------------


def _training_state(module, optimizer) -> dict:
    return {"model": nnx.state(module), "optimizer": nnx.state(optimizer)}


def checkpoint_dir(out_dir: str) -> str:
    """``out_dir/checkpoint``, the folder of the epoch checkpoints."""
    return os.path.join(out_dir, CHECKPOINT_FILE)


def remove_stale(out_dir: str) -> list[str]:
    """Removes what a killed `fit` left half-written in `out_dir` (temporary
    checkpoint, model and config.json files, orbax temporaries); call it only
    while holding the folder's lock. Returns the names removed."""
    owned = (f"-{CONFIG_FILE}", f"{MODEL_FILE}-", f"{CHECKPOINT_FILE}-", "probe-")
    return (outdir.remove_stale(out_dir, owned=owned)
            + outdir.remove_stale(checkpoint_dir(out_dir)))


def latest_checkpoint(out_dir: str) -> str | None:
    """The newest ``checkpoint/epoch-NNNNN`` folder of `out_dir`, or None.

    Raises:
      ValueError: if ``checkpoint`` exists but sigcnn.train did not write it.
    """
    folder = checkpoint_dir(out_dir)
    if not os.path.lexists(folder):
        return None
    if not os.path.isdir(folder):
        raise ValueError(f"`out_dir` holds {folder!r}, which is not a checkpoint "
                         f"folder of sigcnn.train; move it away or use another "
                         f"`out_dir`.")
    names = [n for n in os.listdir(folder) if not n.startswith(TMP_PREFIX)]
    epochs = sorted(n for n in names if _EPOCH.match(n)
                    and os.path.isdir(os.path.join(folder, n)))
    if not epochs:
        if names:
            raise ValueError(
                f"`out_dir` holds {folder!r}, which sigcnn.train did not write (no "
                f"epoch-NNNNN folder; found {sorted(names)[:3]}); move it away, "
                f"use another `out_dir` or pass `resume=False`.")
        return None
    return os.path.join(folder, max(epochs, key=lambda n: int(n[6:])))


def save_checkpoint(out_dir: str, *, run: dict, epochs_done: int, data_key,
                    history: list, module, optimizer) -> str:
    """Writes the checkpoint after `epochs_done` epochs; returns its folder."""
    folder = checkpoint_dir(out_dir)
    os.makedirs(folder, exist_ok=True)
    name = f"epoch-{epochs_done:05d}"
    meta = {
        "format": FORMAT,
        "kind": "checkpoint",
        "run": run,
        "epochs_done": epochs_done,
        "rng": {"impl": str(jax.random.key_impl(data_key)),
                "key_data": np.asarray(jax.random.key_data(data_key)).tolist()},
        "history": history,
    }

    def fill(tmp):
        write_state(os.path.join(tmp, _STATE), _training_state(module, optimizer))
        atomic_write_json(os.path.join(tmp, META_FILE), meta)

    final = os.path.join(folder, name)
    _write_folder(final, f"{TMP_PREFIX}{name}-", fill)
    for other in os.listdir(folder):
        if other != name and _EPOCH.match(other):
            shutil.rmtree(os.path.join(folder, other), ignore_errors=True)
    return final


def remove_checkpoint(out_dir: str) -> None:
    """Deletes the checkpoint folder (renamed away first, so never half there)."""
    folder = checkpoint_dir(out_dir)
    if not os.path.lexists(folder):
        return
    latest_checkpoint(out_dir)      # refuses to delete a folder it did not write
    gone = os.path.join(out_dir, f"{TMP_PREFIX}old-{CHECKPOINT_FILE}-"
                                 f"{uuid.uuid4().hex[:8]}")
    os.rename(folder, gone)
    shutil.rmtree(gone, ignore_errors=True)


def resume(path: str, run: dict, epochs: int, module, optimizer):
    """Loads checkpoint `path` into `module` and `optimizer`.

    Returns:
      ``(epochs_done, history, data_key)``.

    Raises:
      ValueError: unreadable checkpoint, other settings, more than `epochs`
        epochs, or non-finite saved state.
    """
    meta = read_meta(path, kind="checkpoint", fix=_RESUME_FIX)
    saved = meta.get("run", {})
    run = to_jsonable(run)
    diff = [k for k in sorted(set(saved) | set(run)) if saved.get(k) != run.get(k)]
    if diff:
        raise ValueError(
            f"`out_dir` holds a checkpoint of a different run (settings differ in "
            f"{diff}); use another `out_dir` or pass `resume=False` to start over.")
    try:
        done = int(meta["epochs_done"])
        history = list(meta["history"])
        rng = meta["rng"]
        key = jax.random.wrap_key_data(jnp.asarray(rng["key_data"], jnp.uint32),
                                       impl=rng["impl"])
        check_key("checkpoint data key", key)
    except (KeyError, TypeError, ValueError) as e:
        raise _corrupt(path, "checkpoint", f"{META_FILE}: {_short(e)}",
                       _RESUME_FIX) from None
    if done > epochs:
        raise ValueError(f"`out_dir` holds a checkpoint after {done} epochs, more "
                         f"than `epochs`={epochs}; use another `out_dir`, "
                         f"`epochs` >= {done} or `resume=False`.")
    state = read_state(os.path.join(path, _STATE),
                       _training_state(module, optimizer), what="training state",
                       source=path, fix=_RESUME_FIX)
    nnx.update(module, state["model"])
    nnx.update(optimizer, state["optimizer"])
    return done, history, key


# --------------------------------------------------------------------------------
# The final model
# --------------------------------------------------------------------------------


def check_model_slot(out_dir: str) -> None:
    """Refuses an ``out_dir/model`` entry that `save_model` would overwrite but
    did not write (a file, or a folder without sigcnn's files)."""
    path = os.path.join(out_dir, MODEL_FILE)
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or not {META_FILE, _STATE} & set(os.listdir(path)):
        raise ValueError(f"`out_dir` holds {path!r}, which sigcnn.train did not "
                         f"write and would overwrite with the trained model; move "
                         f"it away or use another `out_dir`.")


def save_model(out_dir: str, module, config: dict) -> str:
    """Writes the final model folder (state and config); returns its path."""
    meta = {"format": FORMAT, "kind": "model", "config": config}

    def fill(tmp):
        write_state(os.path.join(tmp, _STATE), nnx.state(module))
        atomic_write_json(os.path.join(tmp, META_FILE), meta)

    final = os.path.join(out_dir, MODEL_FILE)
    _write_folder(final, f"{TMP_PREFIX}{MODEL_FILE}-", fill)
    return final


def has_model(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` holds a final model that `load_model` can try to read.

    Args:
      out_dir: a folder (need not exist).

    Returns:
      True if ``out_dir/model/meta.json`` exists (the model folder is complete:
      it is renamed into place only once written).

    Examples:
      >>> has_model("/nonexistent")
      False
    """
    return os.path.isfile(os.path.join(os.fspath(out_dir), MODEL_FILE, META_FILE))


def load_model(out_dir: str | os.PathLike, *, model=None):
    """Rebuilds the final model that `fit` saved in `out_dir`, for evaluation.

    Args:
      out_dir: a directory written by `fit`; only its ``model/`` folder is read
        (it embeds the config that ``config.json`` shows).
      model: None to rebuild by name with ``sigcnn.models.create`` (only for runs
        that `fit` built from a name); a factory ``f(rngs, **options)`` called
        with the saved ``model_options``; or a module of the same architecture,
        whose state is overwritten.

    Returns:
      ``(module, config)``: the NNX module in evaluation mode with the saved
      state, and the run's config dict (as in ``config.json``).

    Raises:
      FileNotFoundError: if `out_dir` lacks a ``model/`` folder.
      ValueError: if the model folder is unreadable, truncated or foreign, its
        weights hold NaN or Inf, the saved state does not fit the model, or
        `model` is None and the run was not built from a model name (each
        message names the folder and the fix).
      TypeError: if `model` is not None, a factory or a module.
    """
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, MODEL_FILE)
    if not os.path.lexists(path):
        legacy = os.path.exists(os.path.join(out_dir, _LEGACY_MODEL))
        raise FileNotFoundError(
            f"`out_dir` {out_dir!r} holds no {MODEL_FILE}/ folder"
            + (f" (its {_LEGACY_MODEL} is from an older sigcnn; train again)"
               if legacy else "") + "; train with `fit(..., out_dir=...)` first.")
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a model folder written by "
                         f"sigcnn.train.fit; {_MODEL_FIX}.")
    meta = read_meta(path, kind="model", fix=_MODEL_FIX)
    config = meta.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ValueError(f"{path!r} holds no model config in {META_FILE}; "
                         f"{_MODEL_FIX}.")
    module = building.rebuild_model(model, config["model"], nnx.Rngs(0),
                                    source=out_dir)
    state = read_state(os.path.join(path, _STATE), nnx.state(module),
                       what="model state", source=path, fix=_MODEL_FIX)
    nnx.update(module, state)
    module.eval()
    return module, config
