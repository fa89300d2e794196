"""Per-layer aliasing spectra of any JAX CNN.

For each named feature map of a network, :func:`layer_spectra` reports

* the *global* measure of Azulay & Weiss (2019): the map's cumulative stride S, and
  the aliasing ratio and shiftability error of its undecimated response r2 at that
  stride (energy of r2 at or above the Nyquist rate 1/(2S), and how far the strided
  map is from determining its response to every shift);
* the *local* measure of Ribeiro & Schön (2021) at every subsampling operation in
  front of it: the energy of the operation's own stride-1 output (the signal just
  before it is decimated) at or above the Nyquist rate of that operation's stride;
* the mean 2-D power spectrum of r2 and its radial and per-axis profiles.

Every measure is computed on exact undecimated responses obtained with
:func:`sigcnn.undecimate`, so no layer surgery or hooks are needed.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
  Ribeiro & Schön, "How convolutional neural networks deal with aliasing", ICASSP
  2021.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Callable, Mapping

import jax
import numpy as np

from sigcnn import atrous, spectra
from sigcnn._checks import (
    check_bool,
    check_finite,
    check_float_array,
    check_nhwc,
    check_nonempty,
    check_positive_int,
)

__all__ = [
    "DecimationPoint",
    "LayerSpectra",
    "LayerSpectrum",
    "layer_spectra",
]


@dataclasses.dataclass(frozen=True)
class DecimationPoint:
    """A subsampling operation and the aliasing of the signal it decimates.

    Attributes:
      index: order of the operation in the traced program (0-based).
      primitive: the JAX primitive (e.g. ``conv_general_dilated``,
        ``reduce_window_max``, ``slice``).
      where: the user's source line that created it.
      input_stride: cumulative stride (sy, sx) of the operation's input.
      stride: the operation's own stride (sy, sx).
      output_stride: ``input_stride * stride``.
      aliasing_ratio: energy fraction of the operation's stride-1 output (on its
        input's grid) at or above the Nyquist rate ``1/(2 stride)``.
    """

    index: int
    primitive: str
    where: str
    input_stride: tuple[int, int]
    stride: tuple[int, int]
    output_stride: tuple[int, int]
    aliasing_ratio: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LayerSpectrum:
    """Aliasing measures of one named feature map.

    Attributes:
      name: the map's key in f's output dict.
      shape: shape of the strided map f(x)[name], [N, h, w, C].
      stride: cumulative stride (sy, sx).
      aliasing_ratio: global measure: energy fraction of r2 outside the open
        Nyquist box of the stride (0: band-limited; 1: all aliased).
      shiftability_error: ``||r2 - B(r2[::S])||² / ||r2 - mean||²``, or None when
        the stride does not divide r2's size.
      local: the decimation points in front of the map (those whose output stride
        divides the map's stride), with their local aliasing ratios.
      spectrum: mean power spectrum of r2 over N and C, [H, W], fftfreq order.
      radial: (radii, mean power per ring).
      axis_y, axis_x: (frequencies, energy) along fy and fx.
    """

    name: str
    shape: tuple[int, ...]
    stride: tuple[int, int]
    aliasing_ratio: float
    shiftability_error: float | None
    local: tuple[DecimationPoint, ...]
    spectrum: np.ndarray = dataclasses.field(repr=False)
    radial: tuple[np.ndarray, np.ndarray] = dataclasses.field(repr=False)
    axis_y: tuple[np.ndarray, np.ndarray] = dataclasses.field(repr=False)
    axis_x: tuple[np.ndarray, np.ndarray] = dataclasses.field(repr=False)

    def to_dict(self, *, include_spectrum: bool = False) -> dict:
        """JSON-serialisable dict; the 2-D spectrum only if asked for."""
        include_spectrum = check_bool("include_spectrum", include_spectrum)
        d = {
            "name": self.name,
            "shape": list(self.shape),
            "stride": list(self.stride),
            "aliasing_ratio": self.aliasing_ratio,
            "shiftability_error": self.shiftability_error,
            "local": [p.to_dict() for p in self.local],
            "radial": {"freq": _floats(self.radial[0]),
                       "power": _floats(self.radial[1])},
            "axis_y": {"freq": _floats(self.axis_y[0]),
                       "energy": _floats(self.axis_y[1])},
            "axis_x": {"freq": _floats(self.axis_x[0]),
                       "energy": _floats(self.axis_x[1])},
        }
        if include_spectrum:
            d["spectrum"] = [_floats(row) for row in self.spectrum]
        return d


@dataclasses.dataclass(frozen=True)
class LayerSpectra:
    """Per-layer spectra of a network on an input batch.

    Attributes:
      input_shape: shape of x.
      layers: one :class:`LayerSpectrum` per named map, in f's order.
      decimations: every subsampling operation of the traced program.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerSpectrum, ...]
    decimations: tuple[DecimationPoint, ...]

    def __getitem__(self, name: str) -> LayerSpectrum:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(
            f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def to_dict(self, *, include_spectrum: bool = False) -> dict:
        include_spectrum = check_bool("include_spectrum", include_spectrum)
        return {
            "input_shape": list(self.input_shape),
            "layers": [l.to_dict(include_spectrum=include_spectrum)
                       for l in self.layers],
            "decimations": [p.to_dict() for p in self.decimations],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(**kwargs), indent=2)


def _floats(a) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a)]


def _divides(a, b) -> bool:
    return b[0] % a[0] == 0 and b[1] % a[1] == 0


# One compiled program per map shape (eager evaluation would compile every
# FFT and reduction of every map on its own).
@functools.partial(jax.jit, static_argnames=("stride", "shiftable"))
def _measures(r2, *, stride, shiftable):
    ratio = spectra.aliasing_ratio(r2, stride)
    err = spectra.shiftability_error(r2, stride) if shiftable else ratio
    return ratio, err, spectra.power_spectrum(r2)


@functools.partial(jax.jit, static_argnames=("stride",))
def _ratio(signal, *, stride):
    return spectra.aliasing_ratio(signal, stride)


def layer_spectra(f: Callable[[jax.Array], Mapping[str, Any]], x,
                  *, bins: int | None = None) -> LayerSpectra:
    """Per-layer global and local aliasing measures and spectra of a network.

    Args:
      f: callable x [N, H, W, C] -> dict (or other mapping) of named NHWC feature
        maps, e.g. ``model.taps`` of a :mod:`sigcnn.models` network or the user's
        own function returning each block's output.
      x: float array, shape [N, H, W, C] with no empty axis and finite values:
        the input batch (natural images, say). float16 / bfloat16 maps are
        measured in float32 (see :mod:`sigcnn.spectra`).
      bins: None or a positive int; number of rings of the radial profiles
        (default: half the map size).

    Returns:
      :class:`LayerSpectra`: one :class:`LayerSpectrum` per named map, in f's
      order, and the list of :class:`DecimationPoint`.

    Raises:
      TypeError: if f's output is not a mapping of arrays, or x is not float.
      ValueError: if x is not rank 4, has an empty axis or holds NaN/Inf,
        `bins` is not a positive int, or a named map is not spatial (it has no
        undecimated form, e.g. logits after global pooling) or is empty.
      NotImplementedError: from :func:`sigcnn.undecimate` for networks that cannot
        be undecimated (data-dependent downsampling, resampling such as
        ``jax.image.resize``): the same error, naming the primitive and the
        source line, as ``sigcnn.undecimate(f)(x)`` raises. ``sigcnn.all_shifts``
        evaluates such networks exactly.

    Examples:
      >>> import jax, jax.numpy as jnp, sigcnn as sc
      >>> k = jax.random.normal(jax.random.key(0), (3, 3, 1, 4))
      >>> def f(x):
      ...     h = jax.nn.relu(sc.conv(x, k, stride=2, padding="circular"))
      ...     return {"conv": h, "pool": sc.max_pool(h, window=2, stride=2,
      ...                                           padding="circular")}
      >>> res = sc.layer_spectra(f, jax.random.normal(jax.random.key(1), (1, 16, 16, 1)))
      >>> [(l.name, l.stride) for l in res.layers]
      [('conv', (2, 2)), ('pool', (4, 4))]
    """
    x = check_float_array("x", x)
    x = check_nhwc("x", x)
    check_nonempty("x", x, (0, 1, 2, 3),
                   what=" (the measures average over samples and channels)")
    if bins is not None:
        bins = check_positive_int("bins", bins)
    check_finite("x", x)
    names = []

    def keep_order(x):  # pytrees sort dict keys; keep f's own order
        out = f(x)
        if isinstance(out, Mapping):
            names.extend(out.keys())
        return out

    out_shapes = jax.eval_shape(keep_order, x)
    if not isinstance(out_shapes, Mapping):
        raise TypeError(
            f"`f` must return a mapping of named NHWC feature maps (e.g. "
            f"model.taps); got {type(out_shapes).__name__}.")
    for name in names:
        shape = getattr(out_shapes[name], "shape", None)
        if shape is None or len(shape) != 4:
            raise ValueError(
                f"`f` output {name!r} must be an NHWC feature map [N, h, w, C]; "
                f"got shape {shape}.")
    r2s, strides, raw_points = atrous.undecimate_with_points(f, x)
    for name in names:
        if getattr(r2s[name], "size", 1) == 0:
            raise ValueError(
                f"`f` output {name!r} is empty (undecimated shape "
                f"{tuple(r2s[name].shape)}); its spectra are undefined.")
    for p in raw_points:
        if p["signal"].size == 0:
            raise ValueError(
                f"`f` decimates an empty map ({p['primitive']} at {p['where']}, "
                f"signal shape {tuple(p['signal'].shape)}); its spectra are "
                f"undefined.")
    points = tuple(
        DecimationPoint(index=i, primitive=p["primitive"], where=p["where"],
                        input_stride=p["input_stride"], stride=p["stride"],
                        output_stride=p["output_stride"],
                        aliasing_ratio=float(_ratio(p["signal"],
                                                    stride=tuple(p["stride"]))))
        for i, p in enumerate(raw_points))
    layers = []
    for name in names:
        r2, stride = r2s[name], tuple(int(s) for s in strides[name])
        # A stride-1 map may be smaller than x (valid convolutions crop it),
        # but a 1x1 map of a larger input has lost its spatial axes (pooled).
        if r2.ndim != 4 or stride == (1, 1) and min(r2.shape[1:3]) < 2 <= min(
                x.shape[1:3]):
            raise ValueError(
                f"`f` output {name!r} has no undecimated spatial form (shape "
                f"{tuple(r2.shape)}); layer_spectra needs NHWC feature maps.")
        check_finite(f"the undecimated map {name!r}", r2)
        h, w = r2.shape[1], r2.shape[2]
        shiftable = h % stride[0] == 0 and w % stride[1] == 0
        ratio, err, spec = _measures(r2, stride=stride, shiftable=shiftable)
        ratio, spec = float(ratio), np.asarray(spec)
        err = float(err) if shiftable else None
        layers.append(LayerSpectrum(
            name=name, shape=tuple(out_shapes[name].shape), stride=stride,
            aliasing_ratio=ratio, shiftability_error=err,
            local=tuple(p for p in points if _divides(p.output_stride, stride)),
            spectrum=spec, radial=spectra.radial_profile(spec, bins=bins),
            axis_y=spectra.axis_profile(spec, 0),
            axis_x=spectra.axis_profile(spec, 1)))
    return LayerSpectra(input_shape=tuple(x.shape), layers=tuple(layers),
                        decimations=points)
