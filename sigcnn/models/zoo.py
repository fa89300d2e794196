"""Registry of the built-in models: create by name, switch modes, count parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sigcnn._checks import check_choice
from sigcnn.models import resnet as _resnet
from sigcnn.models import vgg as _vgg

__all__ = ["MODEL_NAMES", "count_params", "create", "variant"]

_FACTORIES = {
    "vgg11": _vgg.vgg11,
    "vgg13": _vgg.vgg13,
    "vgg16": _vgg.vgg16,
    "vgg11_bn": _vgg.vgg11_bn,
    "vgg13_bn": _vgg.vgg13_bn,
    "vgg16_bn": _vgg.vgg16_bn,
    "vgg_small": _vgg.vgg_small,
    "vgg_tiny": _vgg.vgg_tiny,
    "resnet18": _resnet.resnet18,
    "resnet34": _resnet.resnet34,
    "resnet50": _resnet.resnet50,
    "resnet_small": _resnet.resnet_small,
    "resnet_tiny": _resnet.resnet_tiny,
}

MODEL_NAMES = tuple(_FACTORIES)

# Options that change neither the parameter tree nor its shapes.
_MODE_OPTIONS = ("padding", "downsample", "blur_size", "undecimated")


def _make_rngs(key, rngs):
    if (key is None) == (rngs is None):
        raise ValueError(
            f"pass exactly one of `key` (an int seed or a jax PRNG key) and "
            f"`rngs` (an nnx.Rngs); got key={key!r}, rngs={rngs!r}.")
    if rngs is not None:
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"`rngs` must be an nnx.Rngs; got {rngs!r}.")
        return rngs
    if isinstance(key, bool):
        raise TypeError(f"`key` must be an int seed or a jax PRNG key; got {key!r}.")
    return nnx.Rngs(key)


def create(name: str, *, key=None, rngs=None, width: float = 1.0,
           num_classes: int | None = None, in_channels: int = 3,
           padding: str = "zero", downsample: str = "max", blur_size: int = 4,
           undecimated: bool = False, head: str | None = None,
           batch_norm: bool | None = None, param_dtype=jnp.float32):
    """Builds a model of the zoo by name.

    Args:
      name: one of :data:`MODEL_NAMES`: ``"vgg11"``, ``"vgg13"``, ``"vgg16"``
        (torchvision layout, ``"classifier"`` head, 1000 classes), their
        ``"_bn"`` versions, ``"resnet18"``, ``"resnet34"``, ``"resnet50"``
        (torchvision), ``"vgg_small"``, ``"resnet_small"`` (CPU-sized, total
        stride 16, GAP head, 10 classes), ``"vgg_tiny"``, ``"resnet_tiny"``
        (test-sized, total stride 4 and 8).
      key: int seed or jax PRNG key for the initialisation; or give `rngs`.
      rngs: an :class:`flax.nnx.Rngs` instead of `key`.
      width: channel multiplier.
      num_classes: number of logits (default: 1000 for the full-size models, 10
        for the small and tiny ones).
      in_channels: C of the input.
      padding: ``"zero"`` or ``"circular"``.
      downsample: ``"max"``, ``"stride"``, ``"blur"``, ``"aps"`` or ``"none"``.
      blur_size: binomial filter taps for ``"blur"``, 1 to 7.
      undecimated: replace every stride by dilation of the later ops.
      head: VGG only: ``"classifier"`` or ``"gap"`` (default: the preset's).
      batch_norm: VGG only: batch norm after each conv (default: the preset's;
        ResNets always have it).
      param_dtype: parameter dtype.

    Returns:
      an :class:`flax.nnx.Module` (:class:`~sigcnn.models.VGG` or
      :class:`~sigcnn.models.ResNet`) in training mode (call ``model.eval()``
      for inference: batch norm then uses its running statistics, a per-channel
      affine map); ``model(x)`` maps [N, H, W, C] to logits [N, num_classes],
      ``model.taps(x)`` gives the named block outputs.

    Raises:
      ValueError / TypeError: unknown name or option, naming the valid ones.

    Examples:
      >>> import jax.numpy as jnp
      >>> from sigcnn import models
      >>> net = models.create("vgg_tiny", key=0, padding="circular")
      >>> net(jnp.zeros((2, 16, 16, 3))).shape
      (2, 10)
      >>> net.tap_strides()
      {'block1': 2, 'block2': 4}
    """
    check_choice("name", name, MODEL_NAMES)
    rngs = _make_rngs(key, rngs)
    kwargs = dict(width=width, in_channels=in_channels, padding=padding,
                  downsample=downsample, blur_size=blur_size,
                  undecimated=undecimated, param_dtype=param_dtype)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if name.startswith("vgg"):
        if head is not None:
            kwargs["head"] = head
        if batch_norm is not None:
            kwargs["batch_norm"] = batch_norm
    else:
        if head not in (None, "gap"):
            raise ValueError(
                f"`head` must be None or 'gap' for the ResNet {name!r} (global "
                f"average pool + linear); got {head!r}.")
        if batch_norm not in (None, True):
            raise ValueError(
                f"`batch_norm` must be None or True for the ResNet {name!r} (it "
                f"always has batch norm); got {batch_norm!r}.")
    return _FACTORIES[name](rngs=rngs, **kwargs)


def variant(model, *, padding: str | None = None, downsample: str | None = None,
            blur_size: int | None = None, undecimated: bool | None = None):
    """The same network with other sampling options, sharing `model`'s weights.

    The zoo's parameter tree does not depend on these options, so the new model
    holds the very same parameters and batch statistics (and the same
    train/eval mode). E.g. ``variant(net, downsample="none")`` is the
    undecimated twin of a ``"max"`` network, and
    ``variant(net, undecimated=True)`` that of any layout but ``"aps"``.

    Args:
      model: a model built by :func:`create` (or :class:`VGG` / :class:`ResNet`).
      padding: new padding mode, or None to keep it.
      downsample: new downsampling mode, or None to keep it.
      blur_size: new blur size, or None to keep it.
      undecimated: new undecimated flag, or None to keep it.

    Returns:
      a new model of the same class; `model` is left unchanged.

    Raises:
      TypeError: if `model` is not one of the zoo's models.
      ValueError: bad option values.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, nnx.Module) or not isinstance(config, tuple):
        raise TypeError(
            f"`model` must be a model of sigcnn.models (VGG or ResNet); got "
            f"{type(model).__name__}.")
    kwargs = dict(config)
    for k, v in (("padding", padding), ("downsample", downsample),
                 ("blur_size", blur_size), ("undecimated", undecimated)):
        if v is not None:
            kwargs[k] = v
    cls = type(model)
    # Build abstractly (no arrays allocated), then fill in the weights.
    new = nnx.eval_shape(lambda: cls(**kwargs, rngs=nnx.Rngs(0)))
    nnx.update(new, nnx.state(model))
    for (_, src), (_, dst) in zip(nnx.iter_modules(model), nnx.iter_modules(new)):
        for attr in ("use_running_average", "deterministic"):
            if hasattr(src, attr):
                setattr(dst, attr, getattr(src, attr))
    return new


def count_params(model) -> int:
    """Number of trainable parameters (``nnx.Param`` leaves) of a model.

    Works on abstract models from :func:`flax.nnx.eval_shape` too, so a
    full-size model can be counted without allocating it. Batch-norm running
    statistics are not parameters.

    Args:
      model: an :class:`flax.nnx.Module`.

    Returns:
      int, the total number of parameter entries.
    """
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    total = 0
    for leaf in leaves:
        n = 1
        for dim in leaf.shape:
            n *= int(dim)
        total += n
    return total
