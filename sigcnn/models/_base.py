"""Behaviour shared by the zoo's models: input checks, taps, strides, config."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigcnn._checks import check_float_array, check_nhwc, check_positive_int

__all__ = ["ZooModel", "check_num_classes"]


def check_num_classes(num_classes) -> int:
    """Returns `num_classes`, or raises unless it is a positive int."""
    return check_positive_int("num_classes", num_classes)


def check_dtype(param_dtype):
    """Returns `param_dtype` as a NumPy float dtype, or raises."""
    try:
        dt = np.dtype(param_dtype)
    except TypeError:
        dt = None
    if dt is None or not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"`param_dtype` must be a real float dtype such as jnp.float32; got "
            f"{param_dtype!r}.")
    return dt


def check_bool(name: str, value) -> bool:
    """Returns `value`, or raises unless it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool; got {value!r}.")
    return bool(value)


class ZooModel(nnx.Module):
    """Base of the zoo's models.

    Subclasses set ``self.in_channels``, ``self.sampling``, ``self.config`` (the
    constructor's keyword arguments as a tuple of pairs) and
    ``self._nominal_strides`` (tap name -> cumulative stride of the decimated
    network), and implement ``taps`` and ``__call__``.
    """

    def _check_input(self, x):
        x = check_float_array("x", x)
        x = check_nhwc("x", x)
        if x.shape[3] != self.in_channels:
            raise ValueError(
                f"`x` must have {self.in_channels} channels (NHWC, the model's "
                f"`in_channels`); got shape {tuple(x.shape)}.")
        return x

    def tap_strides(self, *, nominal: bool = False) -> dict[str, int]:
        """Cumulative stride of each tap, in the order of :meth:`taps`.

        Args:
          nominal: if True, the strides of the decimated network even when this
            model is undecimated (``downsample="none"`` or ``undecimated=True``),
            i.e. the stride at which the tap, an undecimated response r2, would
            be sampled by the strided network. Useful for aliasing measures.

        Returns:
          dict tap name -> int S: tap ``k`` of an [N, H, W, C] input has shape
          [N, ceil(H/S), ceil(W/S), C_k] (S = 1 for every tap of an undecimated
          model unless `nominal`).
        """
        if nominal or self.sampling.decimate:
            return dict(self._nominal_strides)
        return {name: 1 for name, _ in self._nominal_strides}

    @property
    def total_stride(self) -> int:
        """Cumulative stride of the last (pre-head) tap of this model."""
        return list(self.tap_strides().values())[-1]

    @property
    def downsample(self) -> str:
        """The downsampling mode."""
        return self.sampling.downsample

    @property
    def padding(self) -> str:
        """The padding mode of every conv and pool."""
        return self.sampling.padding

    @property
    def undecimated(self) -> bool:
        """True when every stride is replaced by dilation."""
        return not self.sampling.decimate
