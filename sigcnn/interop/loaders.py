"""Building trained networks from files on disk, without downloads.

* :func:`load_torch`: ``"package.module:callable"`` (any importable function or
  class that builds a ``torch.nn.Module``, e.g. ``torchvision.models:resnet50``)
  plus an optional state-dict file;
* :func:`load_timm`: a timm architecture name plus a state-dict file;
* :func:`load_keras`: a ``.keras`` (or ``.h5``) model file.

Nothing is fetched: the architecture is built with random weights and the weights
come from the file. Errors name the argument (the CLI flag) and what was expected.
"""

from __future__ import annotations

import importlib
import os

from sigcnn.interop._torch_env import import_torch, import_torchvision
from sigcnn.interop.errors import import_keras, require

__all__ = ["load_keras", "load_state_dict", "load_timm", "load_torch"]


def _existing(name: str, path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such file {path!r}.")
    return path


def load_state_dict(module, path, *, name: str = "weights"):
    """Loads a state-dict file into `module` (strictly), in place; returns it.

    The file is read with ``torch.load(..., map_location="cpu",
    weights_only=True)``; a checkpoint dict holding the weights under
    ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` is unwrapped and a
    ``"module."`` prefix (DataParallel) removed.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a state dict, or its keys or shapes do not
            match the architecture (the first mismatches are named).
    """
    torch, _ = import_torch()
    path = _existing(name, path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{name}: {path!r} is not a PyTorch weights file that "
                         f"torch.load reads ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}).") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"{name}: {path!r} holds a {type(sd).__name__}, not a "
                         "state dict (a mapping of parameter names to tensors).")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (first: {shapes[:2]})")
        raise ValueError(f"{name}: the state dict in {path!r} does not match the "
                         f"architecture {type(module).__name__}: "
                         + "; ".join(parts) + ".")
    module.load_state_dict(sd, strict=True)
    return module


def load_torch(spec: str, weights=None, *, name: str = "--torch",
               weights_name: str = "--weights"):
    """Builds ``module:callable`` (no arguments) and loads `weights` into it.

    Args:
        spec: ``"package.module:callable"``, e.g. ``"torchvision.models:resnet18"``;
            the callable is called without arguments (torchvision builders then
            use ``weights=None``: no download).
        weights: optional path of a state-dict file (see :func:`load_state_dict`);
            without it the network keeps its random initial weights.
        name, weights_name: how errors name the two arguments (CLI flags).

    Returns:
        the ``torch.nn.Module``, in eval mode.
    """
    torch, _ = import_torch()
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"{name} must be 'package.module:callable', e.g. "
                         f"'torchvision.models:resnet50'; got {spec!r}.")
    mod_name, attr = spec.split(":")
    if weights is not None:
        _existing(weights_name, weights)
    if mod_name.split(".")[0] == "torchvision":
        import_torchvision()
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as err:
        raise ValueError(f"{name}: cannot import {mod_name!r} ({err}).") from None
    builder = getattr(mod, attr, None)
    if not callable(builder):
        raise ValueError(f"{name}: {mod_name!r} has no callable {attr!r}.")
    module = builder()
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"{name}: {spec} returned a {type(module).__name__}, not a "
                         "torch.nn.Module.")
    if weights is not None:
        load_state_dict(module, weights, name=weights_name)
    return module.eval()


def load_timm(arch: str, weights=None, *, name: str = "--timm",
              weights_name: str = "--weights"):
    """A timm architecture (``timm.create_model(arch, pretrained=False)``) with the
    weights of a state-dict file, in eval mode."""
    import_torch()
    timm = require("timm", "torch", "building a timm network")
    if weights is not None:
        _existing(weights_name, weights)
    if arch not in timm.list_models():
        raise ValueError(f"{name}: timm has no architecture {arch!r} (see "
                         "timm.list_models()).")
    module = timm.create_model(arch, pretrained=False)
    if weights is not None:
        load_state_dict(module, weights, name=weights_name)
    return module.eval()


def load_keras(path, *, name: str = "--keras"):
    """A Keras 3 model from a ``.keras`` / ``.h5`` file (Keras on the JAX backend)."""
    path = _existing(name, path)
    keras = import_keras("loading a Keras network")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as err:
        raise ValueError(f"{name}: Keras cannot load {path!r} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}).") from None
