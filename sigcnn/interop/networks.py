"""An external network named on the command line, ready for sigcnn's transforms."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

__all__ = ["ExternalNetwork", "default_torch_taps", "open_network"]


@dataclasses.dataclass(frozen=True)
class ExternalNetwork:
    """A loaded network as two pure JAX functions of NHWC images.

    Attributes:
        label: how results name it (the ``--torch`` / ``--timm`` / ``--keras``
            argument).
        f: x -> the network's output (logits).
        taps: x -> {name: NHWC map}, for :func:`sigcnn.layer_spectra`.
        tap_names: the names in `taps`' output, in order.
        source: {"framework": ..., "spec": ..., "weights": ...} for the results.
    """

    label: str
    f: Callable[[Any], Any]
    taps: Callable[[Any], Any]
    tap_names: tuple[str, ...]
    source: dict


def default_torch_taps(module) -> list[str]:
    """The top-level submodules (children of top-level containers such as
    ``nn.Sequential``), in order: ``conv1 ... layer4`` of a ResNet,
    ``features.0 ...`` of a VGG."""
    import torch

    containers = (torch.nn.Sequential, torch.nn.ModuleList)
    names = []
    for name, child in module.named_children():
        if isinstance(child, containers):
            names += [f"{name}.{n}" for n, _ in child.named_children()]
        else:
            names.append(name)
    return names


def _spatial_taps(apply, params, names, size):
    """The names whose outputs are rank-4 maps larger than 1 x 1 (a global
    average pool's [N, 1, 1, C] is not a map) for a [1, size, size, 3] input."""
    import jax
    import jax.numpy as jnp

    shapes = jax.eval_shape(functools.partial(apply, params),
                            jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    return [n for n in names if len(shapes[n].shape) == 4
            and shapes[n].shape[1] * shapes[n].shape[2] > 1]


def open_network(*, torch: str | None = None, timm: str | None = None,
                 keras: str | None = None, weights=None, taps=None,
                 size: int = 224) -> ExternalNetwork:
    """Loads the network one of `torch` / `timm` / `keras` names (see
    :mod:`sigcnn.interop.loaders`) and imports it.

    Args:
        torch: ``"package.module:callable"``; timm: an architecture name; keras: a
            model file. Exactly one.
        weights: state-dict file for `torch` / `timm`.
        taps: submodule / layer names for the spectra; default: a PyTorch network's
            top-level submodules with spatial outputs at `size`; Keras needs them.
        size: input size used to find spatial default taps.

    Raises:
        ValueError / FileNotFoundError / MissingExtraError: with the flag named.
    """
    from sigcnn.interop import keras_import, loaders, torch_import

    given = [(k, v) for k, v in (("--torch", torch), ("--timm", timm),
                                 ("--keras", keras)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --torch, --timm, --keras; got "
                         f"{[k for k, _ in given] or 'none'}.")
    flag, spec = given[0]
    if flag == "--keras":
        if weights is not None:
            raise ValueError("--weights: a Keras model file holds its weights; drop "
                             "--weights with --keras.")
        model = loaders.load_keras(spec)
        if not taps:
            raise ValueError("--taps: name the Keras layers whose outputs to analyse "
                             "(comma-separated layer names, e.g. block1_pool,"
                             "block2_pool).")
        apply, params = keras_import.from_keras(model)
        tapply, tparams = keras_import.from_keras(model, taps=list(taps))
        names = tuple(taps)
        framework = "keras"
    else:
        module = (loaders.load_torch(spec, weights) if flag == "--torch"
                  else loaders.load_timm(spec, weights))
        apply, params = torch_import.from_torch(module)
        if taps:
            tapply, tparams = torch_import.from_torch(module, taps=list(taps))
            names = tuple(taps)
        else:
            cand = default_torch_taps(module)
            every, tparams = torch_import.from_torch(module, taps=cand)
            names = tuple(_spatial_taps(every, tparams, cand, size))
            if not names:
                raise ValueError(f"--taps: {spec} has no top-level submodule with a "
                                 "spatial (rank-4) output; name the submodules.")

            def tapply(params, x):
                out = every(params, x)
                return {n: out[n] for n in names}
        framework = "torch" if flag == "--torch" else "timm"
    return ExternalNetwork(
        label=spec, f=functools.partial(apply, params),
        taps=functools.partial(tapply, tparams), tap_names=names,
        source={"framework": framework, "spec": str(spec),
                "weights": None if weights is None else str(weights)})
