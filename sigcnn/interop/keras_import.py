"""Keras 3 models (JAX backend) as pure JAX functions."""

from __future__ import annotations

from typing import Any, Callable

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
        taps: optional list of layer names (``[l.name for l in model.layers]``) of a
            functional or Sequential model: `apply` then returns ``{name: output of
            that layer}`` (in this order), the input that
            :func:`sigcnn.layer_spectra` takes.

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
        ValueError: a tap names no layer, or taps are given for a subclassed model,
            or the model is channels-first.
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
        if not inputs:
            raise ValueError("`taps` needs a functional or Sequential model (one "
                             "with symbolic inputs); this one is subclassed: return "
                             "the maps from its call() instead.")
        model = keras.Model(inputs, {t: model.get_layer(t).output for t in taps})
    params = ([v.value for v in model.trainable_variables],
              [v.value for v in model.non_trainable_variables])

    def apply(params, x):
        x = check_nhwc("x", check_float_array("x", x))
        out, _ = model.stateless_call(params[0], params[1], x, training=False)
        return out if taps is None else {t: out[t] for t in taps}

    return apply, params
