"""The report pages, rendered from jinja2 templates (``sigcnn/templates``).

`render_html` renders a `sigcnn.report.make_report` record with
``report.html``, `render_network_html` a `sigcnn.report.make_network_report`
record with ``network_report.html``; both extend ``base.html`` (the page and
its CSS) and import ``macros.html`` (number formats, figures, tables). The
templates are autoescaped: every string from a record (a model name, a file
name, a check's text) reaches the page as text, never as markup. A page holds
its figures as base64 PNG ``data:`` URIs and loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Mapping

__all__ = ["render_html", "render_network_html"]


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("sigcnn", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _b64(figures) -> dict:
    return {k: base64.b64encode(v).decode("ascii")
            for k, v in (figures or {}).items()}


def _local_last(layer: Mapping):
    vals = [p["aliasing_ratio"] for p in layer["local"]
            if list(p["output_stride"]) == list(layer["stride"])]
    return vals[-1] if vals else None


def _layer_view(layer: Mapping) -> dict:
    from sigcnn.figures._style import coarse_map

    size = list(layer["shape"][1:3])
    return {**layer, "size": size, "coarse": coarse_map(size),
            "local_last": _local_last(layer)}


def _spectra_rows(spectra: Mapping):
    labels = list(spectra)
    by_name: dict[str, dict] = {}
    for label in labels:
        for layer in spectra[label]["layers"]:
            by_name.setdefault(layer["name"], {})[label] = _layer_view(layer)
    rows = []
    for name, entry in by_name.items():
        first = next(iter(entry.values()))
        rows.append({
            "name": name, "stride": first["stride"], "size": first["size"],
            "coarse": first["coarse"],
            "aliasing_ratio": {k: entry[k]["aliasing_ratio"] if k in entry
                               else None for k in labels},
            "shiftability_error": {k: entry[k]["shiftability_error"]
                                   if k in entry else None for k in labels},
            "local": {k: entry[k]["local_last"] if k in entry else None
                      for k in labels}})
    return labels, rows


def _shift_groups(results: Mapping) -> list[dict]:
    names = []
    for r in results.values():
        for p in r["protocols"]:
            if p["name"] not in names:
                names.append(p["name"])
    groups = []
    for name in names:
        rows = [(lbl, p) for lbl, r in results.items() for p in r["protocols"]
                if p["name"] == name]
        groups.append({"name": name, "rows": rows})
    return groups


def render_html(record: Mapping, figures: Mapping[str, bytes] | None = None) -> str:
    """Renders a `make_report` record as one self-contained HTML page.

    Args:
      record: the dict `make_report` returns (or reads back from
        ``report.json``).
      figures: figure name -> PNG bytes (``"shiftability_sweep"``,
        ``"relu_spectrum"``, ``"blurpool_response"``, ``"training"``,
        ``"aliasing_depth"``, ``"spectra_<model>"``, ``"protocol_frames"``,
        ``"table1"``, ``"jaggedness"``); missing figures are left out.

    Returns:
      the page as a string.

    Raises:
      KeyError, jinja2.UndefinedError: if `record` lacks a section (it was not
        made by `make_report`).
    """
    from sigcnn.data.datasets import DatasetSpec

    cfg = record["config"]
    results = record["shift_test"]
    labels = list(results)
    first = results[labels[0]] if labels else {"settings": {}}
    conf = first["settings"].get("confidence", 0.95)
    spectra_labels, spectra_rows = _spectra_rows(record["spectra"])
    shape = (record["spectra"][spectra_labels[0]]["input_shape"]
             if spectra_labels else [0, 0, 0])
    captions = record.get("frame_captions") or {}
    consistency = [(lbl, r["consistency"]) for lbl, r in results.items()
                   if r.get("consistency") is not None]
    all_shifts = [(lbl, r["all_shifts"]) for lbl, r in results.items()
                  if r.get("all_shifts") is not None]
    if len(all_shifts) != len(labels):
        all_shifts = []
    return _environment().get_template("report.html").render(
        quick=bool(cfg.get("quick", False)), cfg=cfg,
        n_shift_images=first.get("n_images", cfg.get("n_shift_images")),
        accuracy_text=", ".join(
            f"{k} {'-' if v is None else format(v, '.3f')}"
            for k, v in record["summary"]["accuracy"].items()),
        summary=record["summary"], verify=record["verify"],
        models=record["models"],
        dataset_text=DatasetSpec.from_dict(cfg["dataset"]).describe(),
        spectra_labels=spectra_labels, spectra_rows=spectra_rows,
        spectra_n=shape[0],
        coarse_layers=[r["name"] for r in spectra_rows if r["coarse"]],
        n_pairs=first["settings"].get("n_pairs", 8), pct=f"{100 * conf:g}%",
        frames_text="; ".join(f"{k}: {v}" for k, v in captions.items()),
        shift_groups=_shift_groups(results), consistency_rows=consistency,
        all_shift_rows=all_shifts, shift_table=record.get("shift_table", ""),
        jag=first.get("jaggedness") or {},
        sweep=record.get("jaggedness_examples") or {},
        timings=record["timings"], total_seconds=record["total_seconds"],
        total_cpu_seconds=record["total_cpu_seconds"],
        environment=record["environment"],
        config_json=json.dumps(cfg, indent=2),
        environment_json=json.dumps(record["environment"], indent=2),
        figures=_b64(figures))


def _preprocessing_text(pre: Mapping) -> str:
    size = pre.get("size", ["?", "?"])
    text = (f"resize (shorter side {pre.get('resize_shorter_side')}, "
            f"{pre.get('interpolation', 'bilinear')}), centre crop "
            f"{size[0]}×{size[1]}")
    name = pre.get("name")
    if name == "imagenet":
        text += f", ImageNet mean {pre['mean']} / std {pre['std']}"
    elif name == "caffe":
        text += ", caffe (BGR, 0..255, mean subtracted)"
    elif name == "tf":
        text += ", scaled to [-1, 1]"
    else:
        text += ", values in [0, 1]"
    return text


def render_network_html(record: Mapping,
                        figures: Mapping[str, bytes] | None = None) -> str:
    """Renders a `make_network_report` record as one self-contained HTML page.

    Args:
      record: the dict `make_network_report` returns (or its ``report.json``).
      figures: figure name -> PNG bytes (``"aliasing_depth"``, ``"spectra"``,
        ``"table1"``, ``"jaggedness"``); missing figures are left out.

    Returns:
      the page (CSS and figures inline; it loads nothing from elsewhere).
    """
    shift = record["shift_test"]
    conf = shift["settings"].get("confidence", 0.95)
    images = dict(record["images"])
    images["preprocessing_text"] = _preprocessing_text(images["preprocessing"])
    layers = [_layer_view(layer) for layer in record["spectra"]["layers"]]
    return _environment().get_template("network_report.html").render(
            net=record["network"], images=images, verify=record["verify"],
            spectra={**record["spectra"], "layers": layers}, shift=shift,
            shift_table=record["shift_table"], summary=record["summary"],
            pct=f"{100 * conf:g}%", timings=record["timings"],
            total_seconds=record["total_seconds"],
            total_cpu_seconds=record["total_cpu_seconds"],
            work_dir=record["work_dir"], environment=record["environment"],
            settings_json=json.dumps(record["settings"], indent=2),
            environment_json=json.dumps(record["environment"], indent=2),
            figures=_b64(figures))
