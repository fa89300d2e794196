"""What `fit` trains and with what: models by name or factory, optimizers.

A model is given to `fit` (and `load_model`) as an ``nnx.Module``, as a name
for ``sigcnn.models.create`` or as a factory ``f(rngs, **options)``. Each
becomes a module plus a JSON-ready *spec* (name, factory, class, options) that
is part of the run's settings fingerprint and of its saved config, so a
resumed run must build the same model and `load_model` can rebuild it.

Optimizers are optax transformations: ``"adam"`` (Kingma & Ba), ``"adamw"``
(decoupled weight decay, Loshchilov & Hutter) and ``"sgd"`` (momentum 0.9).

References:
  Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
  Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
"""

from __future__ import annotations

import functools
import json

import optax
from flax import nnx

from sigcnn._io import to_jsonable

__all__ = ["OPTIMIZERS"]

OPTIMIZERS = ("adam", "adamw", "sgd")


def check_jsonable(name: str, value, where: str):
    """`value` converted by `to_jsonable`; TypeError unless JSON can hold it."""
    converted = to_jsonable(value)
    try:
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be JSON-serialisable (numbers, strings, "
                        f"lists, dicts) so it can be saved in {where}; got "
                        f"{value!r}.") from None
    return converted


def create_named(name: str, options: dict, rngs):
    """``sigcnn.models.create(name, rngs=rngs, **options)``."""
    try:
        from sigcnn import models
    except ImportError as e:  # pragma: no cover - depends on the checkout
        raise ImportError(f"Building model {name!r} by name needs `sigcnn.models`."
                          ) from e
    return models.create(name, rngs=rngs, **options)


def qualname(obj) -> str:
    """``module.QualName`` of the type of `obj` (part of a model's spec)."""
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def build_model(model, options: dict, rngs):
    """(module, spec) from a module, a model name or a factory ``f(rngs)``."""
    if isinstance(model, nnx.Module):
        if options:
            raise ValueError("`model_options` applies only when `model` is a name or "
                             f"a factory; got a module and {options!r}.")
        spec = {"name": None, "class": qualname(model), "options": {}}
        return model, spec
    if isinstance(model, str):
        module = create_named(model, options, rngs)
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
    spec["class"] = qualname(module)
    return module, spec


def rebuild_model(model, spec: dict, rngs, *, source: str):
    """The module `load_model` fills: rebuilt from `spec`, or the given one.

    Args:
      model: None (rebuild by name), a factory called with the saved options, or
        a module of the same architecture.
      spec: the saved model spec (``config["model"]``).
      rngs: ``nnx.Rngs`` for building.
      source: the folder the spec came from, for messages.
    """
    options = dict(spec.get("options") or {})
    if model is None:
        if not spec.get("name"):
            raise ValueError(
                f"The run in `out_dir` {source!r} trained a {spec.get('class')} that "
                f"was not built by name; pass `model=` (a factory or a module of the "
                f"same architecture).")
        return create_named(spec["name"], options, rngs)
    if isinstance(model, nnx.Module):
        return model
    if callable(model):
        module = model(rngs, **options)
        if not isinstance(module, nnx.Module):
            raise TypeError(f"`model` built {type(module).__name__}, not an "
                            f"nnx.Module.")
        return module
    raise TypeError(f"`model` must be None, a factory or an nnx.Module; got "
                    f"{type(model).__name__}.")


@functools.lru_cache(maxsize=64)
def make_tx(name: str, learning_rate: float, weight_decay: float):
    """The optax transformation for an `OPTIMIZERS` name."""
    # Memoised: optax transformations are immutable pairs of pure functions, and
    # reusing the same object for the same settings lets repeated `fit` calls hit
    # the compilation cache of the train step (the optimizer is part of its
    # static graph definition).
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "adamw":
        return optax.adamw(learning_rate, weight_decay=weight_decay)
    return optax.sgd(learning_rate, momentum=0.9)
