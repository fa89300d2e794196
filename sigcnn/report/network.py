"""The report of one user network on a folder of images: spectra, shift test, page.

`make_network_report` runs, for any classifier given as ``(f, taps)`` (for
instance a PyTorch or Keras network opened by `sigcnn.interop`) and a
`sigcnn.data.ImageFolder`: (1) a fast subset of the sampling-theorem checks;
(2) the per-layer spectra (`sigcnn.layer_spectra`) of its tapped layers on the
first images; (3) the paper's shift protocols at the folder's geometry (for
224 × 224 images: crops of 224 in 234, black and inpainted embeddings on a
mean-grey canvas, scale, circular, Zhang's random crops of 224 in 256 and all
S × S circular shifts), chunk by chunk and resumable
(`sigcnn.shift_test.resumable_shift_test`); (4) figures, ``report.json`` and a
self-contained ``report.html`` rendered from a jinja2 template
(`sigcnn.report.html.render_network_html`).

Without labels the label-free measures are reported and accuracy is left out
(the page says so).

References:
  Azulay & Weiss, JMLR 2019 (protocols, Table 1, Figure 1).
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from sigcnn._checks import check_choice, check_positive_int
from sigcnn._io import atomic_write_bytes, atomic_write_json, to_jsonable
from sigcnn.report import _common

__all__ = ["NETWORK_SHIFT_OPTIONS", "make_network_report"]

_FORMAT = "sigcnn.network_report/1"

NETWORK_SHIFT_OPTIONS = dict(
        protocols=("crop", "black", "inpaint", "scale", "circular"),
        consistency="crop", all_shifts=True, sweep_images=4, chunk=32)
"""Shift-test options of `make_network_report` (the paper's ImageNet geometry;
``consistency="crop"`` is Zhang's pair of random crops of the image resized by
32 pixels, 224 in 256 at 224)."""


def _summary(shift: Mapping, label: str) -> dict:
    protos = {p["name"]: p for p in shift["protocols"]}
    out: dict[str, Any] = {}
    pick = next((n for n in ("crop", "circular", "black") if n in protos), None)
    parts = []
    if pick is not None:
        p = protos[pick]
        lo, hi = p["p_top1_change_ci"]
        out["p_top1_change"] = {pick: {"value": p["p_top1_change"],
                                       "ci": [lo, hi]}}
        what = {"crop": "a 224-in-234-style crop window moves",
                "circular": "the image is rolled",
                "black": "the shrunk image moves in its canvas"}[pick]
        parts.append(f"When {what} by one pixel, {label} changes its top-1 class "
                     f"with probability {p['p_top1_change']:.3f} [{lo:.3f}, "
                     f"{hi:.3f}] ({p['n_pairs']} pairs of {p['n_images']} "
                     f"images).")
    a = shift.get("all_shifts")
    if a:
        lo, hi = a["invariant_fraction_ci"]
        out["invariant_fraction"] = a["invariant_fraction"]
        parts.append(f"Over all {a['extent'][0]}×{a['extent'][1]} circular shifts, "
                     f"{a['invariant_fraction']:.3f} [{lo:.3f}, {hi:.3f}] of the "
                     f"images keep the same top-1 class at every shift.")
        if a.get("robust_accuracy") is not None:
            parts.append(f"Accuracy {a['accuracy']:.3f} unshifted, "
                         f"{a['robust_accuracy']:.3f} under every shift.")
    if not shift.get("labelled", True):
        parts.append("No labels were given, so no accuracy is reported.")
    out["verdict"] = " ".join(parts) or "No shift protocol was run."
    return out


def make_network_report(out_dir, *, f: Callable, taps: Callable, folder,
                        label: str, source: Mapping | None = None,
                        tap_names=(), n_spectra_images: int = 8,
                        n_images: int | None = None, chunk_images: int = 16,
                        verify: str = "subset", seed: int = 0,
                        shift_options: Mapping | None = None,
                        progress: Callable[[str], Any] | None = None,
                        shift_progress: Callable | None = None) -> dict:
    """Spectra, shift test and an HTML page for one network on an image folder.

    Args:
      out_dir: output folder (created if missing): ``report.html``,
        ``report.json``, ``figures/*.png`` and the resumable chunks in
        ``chunks/``.
      f: images [N, H, W, 3] -> logits [N, K] (e.g. ``ExternalNetwork.f``).
      taps: images -> {name: NHWC map} for the spectra.
      folder: a `sigcnn.data.ImageFolder`.
      label: the network's name in the results.
      source: JSON-ready description of the network (framework, spec,
        weights); a resumed run must have the same.
      tap_names: the names `taps` returns, for the page.
      n_spectra_images: positive int; the first images of the spectra.
      n_images: None (all) or a positive int: the first images of the shift
        test.
      chunk_images: positive int; images per resumable chunk.
      verify: ``"subset"`` (four fast checks) or ``"none"``.
      seed: seed of the random pairs and bootstrap intervals.
      shift_options: overrides of `NETWORK_SHIFT_OPTIONS` (keyword options of
        `sigcnn.shift_test.run_shift_test`).
      progress: None or a callable receiving one line per step.
      shift_progress: None or ``progress(name, done, total)`` of the shift test.

    Returns:
      the record written to ``report.json``; ``record["paths"]`` names the
      files written.

    Raises:
      ValueError: bad options, an `out_dir` that is a file, or chunks of a
        different run in ``out_dir/chunks``.
    """
    import dataclasses

    import jax
    import numpy as np

    from sigcnn import figures as F
    from sigcnn import shift_test
    from sigcnn.layerwise import layer_spectra
    from sigcnn.report.html import render_network_html

    n_spectra_images = check_positive_int("n_spectra_images", n_spectra_images)
    if n_images is not None:
        n_images = check_positive_int("n_images", n_images)
    verify = check_choice("verify", verify, ("subset", "none"))
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"`out_dir` {out_dir!r} exists and is not a folder.")
    say = progress if progress is not None else (lambda line: None)
    options = {**NETWORK_SHIFT_OPTIONS, **dict(shift_options or {})}
    if n_images is not None and n_images < len(folder):
        folder = dataclasses.replace(
                folder, files=folder.files[:n_images],
                labels=None if folder.labels is None else folder.labels[:n_images])
    t_start, c_start = time.perf_counter(), _common.cpu_seconds()
    stage = _common.Stages()
    os.makedirs(out_dir, exist_ok=True)
    n_steps = 4

    checks = []
    if verify != "none":
        say(f"[1/{n_steps}] sampling-theorem checks (subset, float64)")
        with stage("verify"):
            checks = _common.run_verify("subset")
    else:
        say(f"[1/{n_steps}] sampling-theorem checks skipped")
    from sigcnn import verify as _verify

    n_spec = min(n_spectra_images, len(folder))
    say(f"[2/{n_steps}] per-layer spectra of {label} on {n_spec} image(s)")
    with stage("spectra"):
        x = np.stack([folder.image(i) for i in range(n_spec)])
        spectra = layer_spectra(taps, jax.numpy.asarray(x))
        jax.block_until_ready(spectra.layers[-1].spectrum)

    say(f"[3/{n_steps}] shift test on {len(folder)} image(s) "
        f"({', '.join(options['protocols'])}), chunks of {chunk_images} in "
        f"{os.path.join(out_dir, 'chunks')}")
    identity = {"label": label, "source": dict(source or {}),
                "preprocessing": folder.preprocessing}
    with stage("shift test"):
        shift = shift_test.resumable_shift_test(
                f, folder, key=jax.random.key(seed),
                work_dir=os.path.join(out_dir, "chunks"),
                chunk_images=chunk_images, identity=identity,
                progress=shift_progress, **options)
    table = shift_test.format_table(shift)

    say(f"[4/{n_steps}] figures and page")
    figures: dict[str, bytes] = {}
    with stage("figures and page"):
        png = _common.png_bytes
        figures["aliasing_depth"] = png(F.aliasing_depth_figure(
                {label: spectra.layers}))
        figures["spectra"] = png(F.layer_spectra_figure(spectra.layers,
                                                        title=label))
        figures["table1"] = png(F.table1_figure(shift))
        if shift.jaggedness is not None:
            figures["jaggedness"] = png(F.jaggedness_figure(shift))
        fig_paths = _common.write_figures(out_dir, figures)

    shift_d = shift.to_dict()
    record: dict = {
            "format": _FORMAT, "command": "report",
            "network": {"label": label, "source": dict(source or {}),
                        "taps": list(tap_names) or [l.name for l in spectra.layers]},
            "images": {"root": os.path.abspath(folder.root), "n": len(folder),
                       "files": list(folder.files),
                       "labelled": folder.labels is not None,
                       "classes": None if folder.classes is None
                       else list(folder.classes),
                       "preprocessing": folder.preprocessing},
            "verify": {"mode": verify, "n_checks": len(checks),
                       "n_passed": sum(c.passed for c in checks),
                       "checks": _verify.checks_to_json(checks)},
            "spectra": spectra.to_dict(),
            "shift_test": shift_d, "shift_table": table,
            "settings": {"n_spectra_images": n_spec, "n_images": len(folder),
                         "chunk_images": chunk_images, "seed": seed,
                         "shift_options": to_jsonable(options)},
            "work_dir": os.path.abspath(os.path.join(out_dir, "chunks")),
    }
    record["summary"] = _summary(shift_d, label)
    record["timings"] = _common.round_timings(stage.rows)
    record["total_seconds"] = round(time.perf_counter() - t_start, 3)
    record["total_cpu_seconds"] = round(_common.cpu_seconds() - c_start, 3)
    record["environment"] = _common.environment()
    html_path = os.path.join(out_dir, "report.html")
    json_path = os.path.join(out_dir, "report.json")
    record["paths"] = {"html": os.path.abspath(html_path),
                       "json": os.path.abspath(json_path), "figures": fig_paths}
    record = to_jsonable(record)
    atomic_write_bytes(html_path, render_network_html(record, figures)
                       .encode("utf-8"))
    atomic_write_json(json_path, record)
    say(f"wrote {html_path} and {json_path} in {record['total_seconds']:.0f} s")
    return record
