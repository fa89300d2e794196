"""Matplotlib figures of the sampling-theorem checks and per-layer spectra.

Every function takes plain data (NumPy arrays, lists, the ``detail`` dicts of
:class:`sigcnn.verify.Check`), builds a :class:`matplotlib.figure.Figure` without
pyplot (no global state, safe with the Agg backend and in threads), saves it when
given a ``path`` and returns it. The numerical modules never import this one.
Labels are in English; frequencies are in cycles/pixel.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sigcnn.figures._style import coarse_map, styled
from sigcnn.figures._style import save as _save

__all__ = [
    "aliasing_depth_figure",
    "blurpool_figure",
    "layer_spectra_figure",
    "relu_spectrum_figure",
    "shiftability_sweep_figure",
    "verify_figure_set",
    "verify_figures",
]

def _shade_band(ax, nyquist: float, label: str | None = None) -> None:
    ax.axvspan(-nyquist, nyquist, color="tab:green", alpha=0.12, lw=0,
               label=label)
    for v in (-nyquist, nyquist):
        ax.axvline(v, color="tab:green", lw=1, ls="--")


def _two_sided(freqs, amps, *, floor: float = 1e-9):
    """Mirror one-sided amplitudes to [-1/2, 1/2]; drop (near-)zero bins."""
    f = np.asarray(freqs, np.float64)
    a = np.asarray(amps, np.float64)
    keep = f > 0
    f2 = np.concatenate([-f[keep][::-1], f])
    a2 = np.concatenate([a[keep][::-1], a])
    nz = a2 > floor * max(a2.max(), 1e-300)
    return f2[nz], a2[nz]


def _stem(ax, f, a, *, fmt: str, marker: str, label: str, offset=0.0):
    markers, _, _ = ax.stem(np.asarray(f) + offset, a, linefmt=fmt + "-",
                            markerfmt=fmt + marker, basefmt=" ", label=label)
    return markers


@styled
def relu_spectrum_figure(freqs, amp_tone, amp_relu, amp_resampled, *,
                         stride: int = 2, alias_freq: float | None = None,
                         spectra_2d: Mapping | None = None,
                         path=None) -> Figure:
    """Spectrum of a tone before and after ReLU, with the Nyquist box of a stride.

    Args:
      freqs: one-sided frequencies, shape [K] (``np.fft.rfftfreq``).
      amp_tone: cosine amplitudes of the tone, shape [K].
      amp_relu: cosine amplitudes of ReLU(tone), shape [K].
      amp_resampled: cosine amplitudes of ReLU(tone) sampled every ``stride``
        pixels and interpolated back (band-limited), shape [K].
      stride: the stride s; the Nyquist box is ``|f| < 1/(2s)``.
      alias_freq: frequency where the harmonic lands after subsampling, marked.
      spectra_2d: optional dict with ``fy`` [H], ``fx`` [W] and ``before``,
        ``after`` [H, W] (fftshifted power spectra of a 2-D tone and its ReLU,
        as from :func:`sigcnn.verify.relu_tone_spectra_2d`); adds a top row of
        2-D spectra with the Nyquist box drawn.
      path: file to save to (PNG by extension), or None.

    Returns:
      the Figure.
    """
    nyq = 1.0 / (2 * stride)
    rows = 2 if spectra_2d is not None else 1
    fig = Figure(figsize=(10, 4.0 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, 2, squeeze=False))
    if spectra_2d is not None:
        fy = np.asarray(spectra_2d["fy"])
        fx = np.asarray(spectra_2d["fx"])
        dy = fy[1] - fy[0] if fy.size > 1 else 1.0
        dx = fx[1] - fx[0] if fx.size > 1 else 1.0
        extent = (fx[0] - dx / 2, fx[-1] + dx / 2, fy[0] - dy / 2,
                  fy[-1] + dy / 2)
        for ax, key, title in ((axes[0, 0], "before", "2-D tone"),
                               (axes[0, 1], "after", "ReLU(2-D tone)")):
            p = np.asarray(spectra_2d[key], np.float64)
            img = np.log10(np.maximum(p / max(p.max(), 1e-300), 1e-8))
            im = ax.imshow(img, origin="lower", extent=extent, cmap="magma",
                           vmin=-8, vmax=0, interpolation="nearest")
            ax.add_patch(Rectangle((-nyq, -nyq), 2 * nyq, 2 * nyq, fill=False,
                                   ec="cyan", lw=1.5, ls="--",
                                   label=f"Nyquist box, s = {stride}"))
            ax.set_title(f"Power spectrum of {title}")
            ax.set_xlabel("fx (cycles/pixel)")
            ax.set_ylabel("fy (cycles/pixel)")
            ax.legend(loc="upper right", fontsize=8)
        fig.colorbar(im, ax=axes[0, 1], label="log10 power (relative)")
    ax_a, ax_b = axes[-1, 0], axes[-1, 1]
    _shade_band(ax_a, nyq, f"|f| < 1/(2s), s = {stride}")
    _stem(ax_a, *_two_sided(freqs, amp_tone), fmt="C0", marker="o",
          label="cos(2 pi f u)")
    _stem(ax_a, *_two_sided(freqs, amp_relu), fmt="C3", marker="s",
          label="ReLU(cos)", offset=0.004)
    ax_a.set_title("1-D tone before and after ReLU")
    ax_a.set_xlabel("frequency (cycles/pixel)")
    ax_a.set_ylabel("cosine amplitude")
    ax_a.set_xlim(-0.5, 0.5)
    ax_a.legend(fontsize=8)
    _shade_band(ax_b, nyq, f"|f| < 1/(2s), s = {stride}")
    _stem(ax_b, *_two_sided(freqs, amp_relu), fmt="C3", marker="s",
          label="ReLU(cos): r2")
    _stem(ax_b, *_two_sided(freqs, amp_resampled), fmt="C2", marker="^",
          label=f"band-limited interpolation of r2[::{stride}]", offset=0.004)
    if alias_freq is not None:
        i = int(np.argmin(np.abs(np.asarray(freqs) - alias_freq)))
        top = float(np.asarray(amp_resampled)[i])
        ax_b.annotate(f"alias of the harmonic\nat {alias_freq:g}",
                      (alias_freq + 0.004, top),
                      xytext=(alias_freq + 0.06, top + 0.12),
                      arrowprops={"arrowstyle": "->"}, fontsize=9)
    ax_b.set_title(f"After subsampling by {stride}: harmonics above Nyquist alias")
    ax_b.set_xlabel("frequency (cycles/pixel)")
    ax_b.set_ylabel("cosine amplitude")
    ax_b.set_xlim(-0.5, 0.5)
    ax_b.legend(fontsize=8)
    return _save(fig, path)


@styled
def shiftability_sweep_figure(tone_freqs, tone_ratio, tone_error,
                              tone_pred_ratio, tone_pred_error, field_ratio=None,
                              field_error=None, field_pred_error=None, *,
                              field_cutoffs: Sequence[float] | None = None,
                              stride: int = 2, path=None) -> Figure:
    """Shiftability error against out-of-band energy, for tones and fields.

    Args:
      tone_freqs: tone frequencies, shape [T].
      tone_ratio: measured aliasing ratios of the tones, shape [T].
      tone_error: measured shiftability errors of the tones, shape [T].
      tone_pred_ratio: predicted ratios, shape [T].
      tone_pred_error: predicted errors, shape [T].
      field_ratio: aliasing ratios of band-limited fields, shape [F], or None
        (tones only).
      field_error: their shiftability errors, shape [F] (or None).
      field_pred_error: their predicted (expected) errors, shape [F] (or None).
      field_cutoffs: the fields' cutoffs, shape [F], used as point labels.
      stride: the stride s.
      path: file to save to, or None.

    Returns:
      the Figure.
    """
    nyq = 1.0 / (2 * stride)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    f = np.asarray(tone_freqs, np.float64)
    ax_a.axvline(nyq, color="tab:green", ls="--", lw=1,
                 label=f"Nyquist 1/(2s), s = {stride}")
    ax_a.step(f, tone_pred_ratio, where="mid", color="C0", lw=1,
              label="predicted aliasing ratio")
    ax_a.plot(f, tone_ratio, "C0o", ms=4, label="measured aliasing ratio")
    ax_a.plot(f, tone_pred_error, color="C3", lw=1, drawstyle="steps-mid",
              label="predicted shiftability error")
    ax_a.plot(f, tone_error, "C3s", ms=4, mfc="none",
              label="measured shiftability error")
    ax_a.set_xlabel("tone frequency (cycles/pixel)")
    ax_a.set_ylabel("ratio / error")
    ax_a.legend(fontsize=8)
    ax_a.set_title("Tone sweep: aliasing ratio and shiftability error")
    r = np.linspace(0, 1, 11)
    ax_b.plot(r, 2 * r, "k--", lw=1,
              label="error = 2 x ratio (random phases, no Nyquist-line energy)")
    ax_b.plot(tone_ratio, tone_error, "C0o", ms=5, label="tones (measured)")
    if field_ratio is not None:
        ax_b.plot(field_ratio, field_pred_error, "C1x", ms=8,
                  label="fields (predicted from spectrum)")
        ax_b.plot(field_ratio, field_error, "C3s", ms=5, mfc="none",
                  label="fields (measured)")
    if field_cutoffs is not None and field_ratio is not None:
        low = [c for c, x in zip(field_cutoffs, field_ratio) if x <= 0.0 + 1e-9]
        for c, x, y in zip(field_cutoffs, field_ratio, field_error):
            if x > 1e-9:
                ax_b.annotate(f"cutoff {c:.3g}", (x, y), xytext=(6, -12),
                              textcoords="offset points", fontsize=8)
        if low:
            ax_b.annotate(f"cutoffs {', '.join(f'{c:.3g}' for c in low)}",
                          (0, 0), xytext=(10, 8), textcoords="offset points",
                          fontsize=8)
    at_nyq = [(x, y) for fr, x, y in zip(f, tone_ratio, tone_error)
              if abs(fr - nyq) < 1e-12]
    for x, y in at_nyq:
        ax_b.annotate("tone exactly at Nyquist", (x, y), xytext=(-110, 0),
                      textcoords="offset points", fontsize=8,
                      arrowprops={"arrowstyle": "->"})
    ax_b.set_xlabel("aliasing ratio (energy fraction at or above Nyquist)")
    ax_b.set_ylabel("shiftability error")
    ax_b.set_title(f"Shiftability error vs out-of-band energy, s = {stride}")
    ax_b.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


@styled
def blurpool_figure(freqs, measured: Mapping, fine_freqs, predicted: Mapping, *,
                    sizes=None, white_measured=None, white_predicted=None,
                    stride: int = 2, path=None) -> Figure:
    """BlurPool's measured frequency response against the binomial prediction.

    Args:
      freqs: frequencies of the measured response, shape [K].
      measured: size -> measured |H| at ``freqs``, shape [K] each.
      fine_freqs: frequencies of the predicted curves, shape [M].
      predicted: size -> ``|cos(pi f)|^(size-1)`` at ``fine_freqs``.
      sizes: filter sizes of the white-noise panel, shape [Z].
      white_measured: aliasing ratio of blurred white noise per size, [Z].
      white_predicted: its prediction from the filter response, [Z].
      stride: the stride s of the aliasing ratio.
      path: file to save to, or None.

    Returns:
      the Figure.
    """
    panels = 2 if white_measured is not None else 1
    fig = Figure(figsize=(5.5 * panels, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, panels))
    ax = axes[0]
    for i, k in enumerate(sorted(measured, key=lambda v: int(v))):
        color = f"C{i % 10}"
        ax.plot(fine_freqs, predicted[k], color=color, lw=1)
        ax.plot(freqs, measured[k], "o", color=color, ms=3.5,
                label=f"k = {k}")
    ax.axvline(1 / (2 * stride), color="tab:green", ls="--", lw=1)
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel("|H(f)|")
    ax.set_title("BlurPool response: measured (dots), |cos(pi f)|^(k-1) (lines)")
    ax.legend(fontsize=8, ncol=2)
    if white_measured is not None:
        ax = axes[1]
        z = np.asarray(sizes)
        ax.plot(z, white_predicted, "k-", lw=1, label="predicted from |H(f)|^2")
        ax.plot(z, white_measured, "C3o", label="measured")
        ax.set_yscale("log")
        ax.set_xlabel("binomial filter size k")
        ax.set_ylabel(f"aliasing ratio at s = {stride}")
        ax.set_title("White noise after the blur")
        ax.legend(fontsize=8)
    return _save(fig, path)


def verify_figure_set(checks, *, spectra_2d: Mapping | None = None,
                      fine_freqs=None, fine_response: Mapping | None = None
                      ) -> dict[str, Figure]:
    """The figures of the ``sigcnn verify`` checks present in `checks`.

    ``"relu_spectrum"`` needs the ``relu_aliasing`` check,
    ``"shiftability_sweep"`` the ``tone_sweep`` check (with ``field_sweep``
    when present), ``"blurpool_response"`` the ``blurpool_response`` check and
    `fine_response`; figures whose checks are missing are left out.

    Args:
      checks: the :class:`sigcnn.verify.Check` list of a run.
      spectra_2d: 2-D spectra for the ReLU figure (see
        :func:`relu_spectrum_figure`).
      fine_freqs: frequencies of the predicted BlurPool curves, shape [M].
      fine_response: size (str) -> predicted response at ``fine_freqs``.

    Returns:
      dict figure name -> Figure, in the order above.
    """
    by_name = {c.name: c.detail for c in checks}
    out = {}
    relu = by_name.get("relu_aliasing")
    if relu is not None:
        out["relu_spectrum"] = relu_spectrum_figure(
            relu["freqs"], relu["amp_tone"], relu["amp_relu"],
            relu["amp_relu_resampled"], stride=relu["stride"],
            alias_freq=relu["alias_freq"], spectra_2d=spectra_2d)
    tones, fields = by_name.get("tone_sweep"), by_name.get("field_sweep")
    if tones is not None:
        fields = fields or {}
        out["shiftability_sweep"] = shiftability_sweep_figure(
            tones["freqs"], tones["ratio"], tones["error"],
            tones["predicted_ratio"], tones["predicted_error"],
            fields.get("ratio"), fields.get("error"),
            fields.get("predicted_error"), field_cutoffs=fields.get("cutoffs"),
            stride=tones["stride"])
    resp = by_name.get("blurpool_response")
    if resp is not None and fine_response is not None:
        white = by_name.get("blurpool_aliasing") or {}
        out["blurpool_response"] = blurpool_figure(
            resp["freqs"], resp["measured_along_fx"], fine_freqs, fine_response,
            sizes=white.get("sizes"), white_measured=white.get("measured"),
            white_predicted=white.get("predicted_flat"),
            stride=white.get("stride", 2))
    return out


def verify_figures(checks, directory, *, spectra_2d: Mapping | None = None,
                   fine_freqs=None, fine_response: Mapping | None = None
                   ) -> list[str]:
    """Writes the figures of the ``sigcnn verify`` suite as PNG files.

    Figures whose checks are missing from ``checks`` are skipped (see
    `verify_figure_set`).

    Args:
      checks: the :class:`sigcnn.verify.Check` list of a run.
      directory: output folder (created if missing).
      spectra_2d: 2-D spectra for the ReLU figure (see
        :func:`relu_spectrum_figure`).
      fine_freqs: frequencies of the predicted BlurPool curves, shape [M].
      fine_response: size (str) -> predicted response at ``fine_freqs``.

    Returns:
      list of the paths written (``relu_spectrum.png``,
      ``shiftability_sweep.png``, ``blurpool_response.png``).
    """
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, fig in verify_figure_set(checks, spectra_2d=spectra_2d,
                                       fine_freqs=fine_freqs,
                                       fine_response=fine_response).items():
        path = os.path.join(directory, f"{name}.png")
        _save(fig, path)
        written.append(path)
    return written


def _map_size(layer):
    shape = layer["shape"] if isinstance(layer, Mapping) else layer.shape
    return tuple(shape[1:3])


def _get(layer, name):
    return layer[name] if isinstance(layer, Mapping) else getattr(layer, name)


@styled
def layer_spectra_figure(layers: Sequence, *, title: str | None = None,
                         path=None) -> Figure:
    """Log power spectrum of each layer's undecimated response, Nyquist box drawn.

    Args:
      layers: :class:`sigcnn.layerwise.LayerSpectrum` records (each with
        ``name``, ``shape``, ``stride``, ``spectrum`` [H, W] in fftfreq order,
        ``aliasing_ratio``).
      title: figure title.
      path: where to save the PNG (optional).

    Returns:
      the Figure: one panel per layer, frequencies in cycles/pixel, the open box
      ``|f| < 1/(2S)`` of the layer's stride S outlined in white, and a colour
      bar in dB relative to each panel's peak. A layer whose strided map has at
      most 2 samples on a side gets a panel saying so instead of a spectrum
      (its Nyquist box holds only the mean; see `sigcnn.figures.coarse_map`).
    """
    n = len(layers)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.2 * cols + 1.0, 2.4 * rows + 0.5),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    im = None
    for ax, layer in zip(axes, layers):
        sy, sx = layer.stride
        size = _map_size(layer)
        if coarse_map(size):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, f"{size[0]}\u00d7{size[1]} map:\ntoo coarse\nfor a "
                    f"spectrum", ha="center", va="center", transform=ax.transAxes,
                    fontsize=10, color="0.3")
            ax.set_title(f"{layer.name}  S={sy}x{sx}")
            continue
        spec = np.fft.fftshift(np.asarray(layer.spectrum, np.float64))
        h, w = spec.shape
        fy = np.fft.fftshift(np.fft.fftfreq(h))
        fx = np.fft.fftshift(np.fft.fftfreq(w))
        peak = max(float(spec.max()), 1e-30)
        img = 10 * np.log10(np.maximum(spec / peak, 1e-8))
        ext = (fx[0] - 0.5 / w, fx[-1] + 0.5 / w, fy[-1] + 0.5 / h,
               fy[0] - 0.5 / h)
        im = ax.imshow(img, extent=ext, cmap="magma", vmin=-60, vmax=0,
                       interpolation="nearest")
        ax.add_patch(Rectangle((-0.5 / sx, -0.5 / sy), 1.0 / sx, 1.0 / sy,
                               fill=False, ec="white", lw=1.2, ls="--"))
        ax.set_title(f"{layer.name}  S={sy}x{sx}\naliasing ratio "
                     f"{layer.aliasing_ratio:.2f}")
        ax.set_xticks([-0.5, 0, 0.5])
        ax.set_yticks([-0.5, 0, 0.5])
        ax.set_xlabel("fx (cycles/px)")
        ax.set_ylabel("fy (cycles/px)")
    for ax in axes[n:]:
        ax.set_visible(False)
    if im is not None:
        fig.colorbar(im, ax=list(axes[:n]), shrink=0.9,
                     label="power (dB re peak)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


@styled
def aliasing_depth_figure(series: Mapping[str, Sequence], *,
                          title: str | None = None, path=None) -> Figure:
    """Global aliasing ratio and shiftability error against depth.

    Args:
      series: label -> sequence of LayerSpectrum records (one curve per model,
        e.g. baseline vs anti-aliased).
      title: figure title.
      path: where to save the PNG (optional).

    Returns:
      the Figure, two panels sharing the layer axis. Layers whose strided map
      has at most 2 samples on a side are left out of the curves (their
      measures hold by construction) and marked "too coarse" on the axis.
    """
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    names = None
    max_err = 0.0
    for label, layers in series.items():
        coarse = [coarse_map(_map_size(l)) for l in layers]
        names = [f"{l.name}\n(S={l.stride[0]})" + ("\ntoo coarse" if c else "")
                 for l, c in zip(layers, coarse)]
        xs = np.arange(len(layers))
        ratio = [np.nan if c else l.aliasing_ratio for l, c in zip(layers, coarse)]
        err = [np.nan if c or l.shiftability_error is None
               else l.shiftability_error for l, c in zip(layers, coarse)]
        ax1.plot(xs, ratio, "o-", label=label)
        ax2.plot(xs, err, "o-", label=label)
        max_err = max([max_err] + [e for e in err if np.isfinite(e)])
    for ax, ylabel in ((ax1, "aliasing ratio of r2"),
                       (ax2, "shiftability error")):
        ax.set_xticks(np.arange(len(names or [])))
        ax.set_xticklabels(names or [], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    ax1.set_ylim(-0.02, 1.02)
    ax2.set_ylim(bottom=-0.02 * max(max_err, 1.0))
    if max_err >= 1.0:
        ax2.axhline(2.0, color="0.5", lw=0.8, ls=":")
        ax2.annotate("2: one tone above Nyquist", (0, 2.0), xytext=(2, 3),
                     textcoords="offset points", fontsize=8, color="0.4")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
