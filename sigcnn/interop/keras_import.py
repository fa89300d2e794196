"""Keras 3 models (JAX backend) as pure JAX functions."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from sigcnn._checks import check_float_array, check_nhwc
from sigcnn.interop._common import check_taps
from sigcnn.interop.errors import import_keras

__all__ = ["from_keras"]


def from_keras(model, *, taps=None) -> tuple[Callable[[Any, Any], Any], Any]:
    """A Keras 3 model on the JAX backend as a pure JAX function of NHWC images.

    ``apply(params, x)`` is ``model.stateless_call(trainable, non_trainable, x,
    training=False)``: what ``model(x, training=False)`` returns, as JAX arrays.

    Args:
        model: a built ``keras.Model`` (functional, Sequential or subclassed) with
            channels-last image inputs; Keras must run on the JAX backend
            (``KERAS_BACKEND=jax`` set before keras is imported).
        taps: optional list of layer names (``[l.name for l in model.layers]``):
            `apply` then returns ``{name: output of that layer}`` (in this order),
            the input that :func:`sigcnn.layer_spectra` takes. Functional and
            Sequential models get a sub-model; in a subclassed model each tapped
            layer must run exactly once per call.

    Returns:
        ``(apply, params)``: ``apply(params, x)`` with x [N, H, W, C] float, and
        params, a pair (trainable, non-trainable) of lists of JAX arrays in the
        order of ``model.trainable_variables`` / ``model.non_trainable_variables``.

    Raises:
        MissingExtraError: keras is not installed (``pip install "sigcnn[keras]"``).
        RuntimeError: Keras runs on another backend (keras imported before with
            another ``KERAS_BACKEND``; if keras is not imported yet, the JAX backend
            is selected).
        TypeError: `model` is not a built ``keras.Model``, or `taps` is not a list.
        ValueError: a tap names no layer, or the model is channels-first.
    """
    keras = import_keras("importing a Keras network")
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"from_keras needs Keras on the JAX backend; this process runs "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=jax before keras is "
            "first imported.")
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model; got {type(model).__name__}.")
    if not model.built:
        raise TypeError("`model` is not built: call it once on an input (or build "
                        "it) so that its weights exist.")
    if keras.config.image_data_format() == "channels_first":
        raise ValueError("keras.config.image_data_format() is 'channels_first'; "
                         "sigcnn takes NHWC images: use a channels-last model.")
    if taps is not None:
        names = [layer.name for layer in model.layers]
        taps = check_taps(taps, names, "layer")
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs:        # subclassed: record the layers' outputs as they run
            return _recording_apply(model, taps)
        model = keras.Model(inputs, {t: model.get_layer(t).output for t in taps})
    params = _params(model)

    @jax.jit     # one compiled program for eager calls
    def run(params, x):
        return model.stateless_call(params[0], params[1], x, training=False)[0]

    def apply(params, x):
        x = check_nhwc("x", check_float_array("x", x))
        out = run(params, x)
        # JAX's pytree utilities sort dict keys: give the taps back in their order
        return out if taps is None else {t: out[t] for t in taps}

    return apply, params


def _params(model):
    # copies: Keras donates its variables' buffers to its own compiled steps
    # (`predict`, `fit`), which would leave `params` pointing at deleted arrays
    return ([jnp.array(v.value, copy=True) for v in model.trainable_variables],
            [jnp.array(v.value, copy=True) for v in model.non_trainable_variables])


def _recording_apply(model, taps):
    """Taps of a subclassed model: each tapped layer's ``call`` is wrapped, for
    the duration of one `stateless_call`, to keep what it returns."""
    layers = {t: model.get_layer(t) for t in taps}

    @jax.jit
    def run(params, x):
        seen = {t: [] for t in taps}
        patched = []
        try:
            for t, layer in layers.items():
                own = "call" in vars(layer)
                inner = layer.call

                def call(*args, _inner=inner, _t=t, **kwargs):
                    out = _inner(*args, **kwargs)
                    seen[_t].append(out)
                    return out

                object.__setattr__(layer, "call", call)
                patched.append((layer, own, inner))
            model.stateless_call(params[0], params[1], x, training=False)
        finally:
            for layer, own, inner in reversed(patched):
                if own:
                    object.__setattr__(layer, "call", inner)
                else:
                    object.__delattr__(layer, "call")
        bad = {t: len(v) for t, v in seen.items() if len(v) != 1}
        if bad:
            t, k = next(iter(bad.items()))
            raise ValueError(f"`taps`: layer {t!r} ran {k} times in one call of the "
                             f"model; a tap must run exactly once.")
        return {t: seen[t][0] for t in taps}

    def apply(params, x):
        x = check_nhwc("x", check_float_array("x", x))
        out = run(params, x)
        return {t: out[t] for t in taps}

    return apply, _params(model)
