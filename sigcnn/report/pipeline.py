"""`make_report`: the whole story on built-in defaults, as one page and one JSON.

Steps: (1) the sampling-theorem checks of ``sigcnn verify``; (2) a baseline
(``downsample="max"``) and an anti-aliased model (``downsample="blur"``)
trained on the same data with the same seed, each cached in a folder named by
a hash of its settings; (3) per-layer spectra of both models on held-out
images; (4) the shift test of both on the same held-out images with the same
key; (5) the figures (`sigcnn.figures`) and the page (`sigcnn.report.html`).

Unlike the numerical modules, `make_report` writes files (into the folders it
is given) and draws figures; progress goes to the ``progress`` callable it is
given, never to stdout.

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019.
  Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019
  (BlurPool, the anti-aliased variant).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from sigcnn._io import atomic_write_bytes, atomic_write_json, to_jsonable
from sigcnn.data.datasets import load_dataset
from sigcnn.report import _common
from sigcnn.report.config import DEFAULT_REPORT, REPORT_MODELS, ReportConfig, cache_name
from sigcnn.report.models import TrainProgress, train_model

__all__ = ["CachedModelError", "RECORD_FORMAT", "make_report"]

RECORD_FORMAT = "sigcnn.report/1"
"""The ``format`` field of ``report.json``."""

_FRAME_PROTOCOLS = ("crop", "black", "inpaint", "scale", "circular")


class CachedModelError(ValueError):
    """A cached model of `make_report` cannot be reused (e.g. a corrupt file).

    Attributes:
      label: the model (``"baseline"`` or ``"anti-aliased"``).
      path: its cache folder.
      reason: the first line of the error that reading it raised.
    """

    def __init__(self, label: str, path: str, reason: str):
        self.label, self.path, self.reason = label, path, reason
        super().__init__(
            f"the cached {label} model in {path!r} cannot be reused ({reason}); "
            f"pass retrain=True to train it anew")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def _train(label, mode, cfg, run_dir, arrays, say, retrain):
    had_files = os.path.isdir(run_dir) and bool(os.listdir(run_dir))
    progress = TrainProgress(say, label=f"  {label}", batch_size=cfg.batch_size)
    try:
        return train_model(cfg.dataset, out_dir=run_dir, arrays=arrays,
                           progress=progress, resume=not retrain,
                           **cfg.train_options(mode))
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:
        if had_files and not retrain:
            raise CachedModelError(label, os.path.abspath(run_dir),
                                   _first_line(e)) from e
        raise


def _pick_sweep_examples(shifts: Mapping, k: int) -> dict:
    """Sweep positions whose first frame every model classifies correctly."""
    sweeps = [r.jaggedness for r in shifts.values()]
    n = min(len(j.indices) for j in sweeps)
    good = [e for e in range(n)
            if all(int(j.top1[e][0]) == int(j.labels[e]) for j in sweeps)]
    chosen = good[:k]
    return {"positions": chosen if chosen else list(range(min(k, n))),
            "all_correct_at_first": bool(chosen),
            "n_candidates": n, "n_correct_at_first": len(good)}


def make_report(out_dir, *, cache_dir=None, config: ReportConfig = DEFAULT_REPORT,
                retrain: bool = False,
                progress: Callable[[str], Any] | None = None) -> dict:
    """Trains (or reuses) two models and writes ``report.html`` and ``report.json``.

    Args:
      out_dir: output folder (created if missing); receives ``report.html``,
        ``report.json`` and ``figures/*.png``.
      cache_dir: folder of the trained models (default ``out_dir/cache``).
        A second call reuses finished runs and resumes interrupted ones.
      config: a `ReportConfig` (`DEFAULT_REPORT`, `QUICK_REPORT` or your own).
      retrain: train both models anew even if `cache_dir` holds them (the way
        out of a corrupt cache entry).
      progress: None or a callable receiving one line of text per step.

    Returns:
      the JSON record written to ``report.json`` (a dict); ``record["paths"]``
      names the files written.

    Raises:
      TypeError: if `config` is not a `ReportConfig`.
      ValueError: if `out_dir` exists and is not a folder.
      CachedModelError: if a cached model cannot be read (``retrain=True``
        trains it anew).
    """
    if not isinstance(config, ReportConfig):
        raise TypeError(f"`config` must be a ReportConfig; got "
                        f"{type(config).__name__}.")
    if not isinstance(retrain, (bool, np.bool_)):
        raise TypeError(f"`retrain` must be a bool; got {retrain!r}.")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"`out_dir` {out_dir!r} exists and is not a folder.")
    cache_dir = os.path.join(out_dir, "cache") if cache_dir is None \
        else os.fspath(cache_dir)
    if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
        raise ValueError(f"`cache_dir` {cache_dir!r} exists and is not a folder.")
    say = progress if progress is not None else (lambda line: None)
    cfg = config
    t_start, c_start = time.perf_counter(), _common.cpu_seconds()
    stage = _common.Stages()
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(cache_dir, exist_ok=True)

    import jax
    import jax.numpy as jnp

    from sigcnn import models, shift_test, verify
    from sigcnn.layerwise import layer_spectra

    n_steps = 5
    record: dict = {"format": RECORD_FORMAT, "command": "report",
                    "config": cfg.to_dict(), "cache_dir": os.path.abspath(cache_dir)}

    # 1. verify
    checks, spectra_2d = [], None
    if cfg.verify != "none":
        say(f"[1/{n_steps}] sampling-theorem checks ({cfg.verify}, float64)")
        with stage("verify"):
            checks = _common.run_verify(cfg.verify)
            with jax.enable_x64(True):
                spectra_2d = verify.relu_tone_spectra_2d()
        say(f"[1/{n_steps}] {sum(c.passed for c in checks)}/{len(checks)} "
            f"checks passed")
    else:
        say(f"[1/{n_steps}] sampling-theorem checks skipped")
    record["verify"] = {"mode": cfg.verify, "n_checks": len(checks),
                        "n_passed": sum(c.passed for c in checks),
                        "checks": verify.checks_to_json(checks)}

    # 2. training
    say(f"[2/{n_steps}] training (or reusing) {len(REPORT_MODELS)} models on "
        f"{cfg.dataset.describe()}")
    with stage("data"):
        arrays = load_dataset(cfg.dataset)
    fits = {}
    record["models"] = {}
    for label, mode in REPORT_MODELS:
        run_dir = os.path.join(cache_dir, cache_name(label, cfg, mode))
        with stage(f"train {label}"):
            fit = _train(label, mode, cfg, run_dir, arrays, say, retrain)
        fits[label] = fit
        c = fit.config
        record["models"][label] = {
            "downsample": mode, "cache": os.path.abspath(run_dir),
            "trained_now": fit.epochs_run > 0, "epochs_run": fit.epochs_run,
            "start_epoch": fit.start_epoch, "test_accuracy": fit.test_accuracy,
            "test_loss": fit.test_loss,
            "train_seconds": float(sum(h.get("train_seconds", 0.0)
                                       for h in fit.history)),
            "images_per_second": fit.images_per_second if fit.epochs_run
            else None,
            "n_train": c.get("n_train"), "n_test": c.get("n_test"),
            "total_stride": int(fit.model.total_stride),
            "n_params": int(models.count_params(fit.model)),
            "history": fit.history, "model_spec": c.get("model")}
        say(f"  {label}: held-out accuracy {fit.test_accuracy:.4f}"
            + ("" if fit.epochs_run else " (reused from the cache)"))
    _, _, x_test, y_test = arrays

    # 3. per-layer spectra
    n_spec = min(cfg.n_spectra_images, x_test.shape[0])
    say(f"[3/{n_steps}] per-layer spectra of both models on {n_spec} held-out "
        f"images")
    spectra = {}
    xs = jnp.asarray(x_test[:n_spec])
    for label, fit in fits.items():
        with stage(f"spectra {label}"):
            spectra[label] = layer_spectra(fit.model.taps, xs)
    record["spectra"] = {k: v.to_dict() for k, v in spectra.items()}

    # 4. shift test; the sweep runs on 4x the examples shown, so that the page
    # can show images every model classifies correctly at the first position.
    n_shift = min(cfg.n_shift_images, x_test.shape[0])
    n_sweep = min(4 * cfg.sweep_images, n_shift)
    say(f"[4/{n_steps}] shift test of both models on {n_shift} held-out images "
        f"({', '.join(cfg.protocols)})")
    shifts = {}
    for label, fit in fits.items():
        last = [time.perf_counter()]

        def report_progress(name, done, total, _label=label, _last=last):
            now = time.perf_counter()
            if done == total:
                say(f"  {_label}: {name} done ({total} images)")
            elif now - _last[0] >= 5.0:
                say(f"  {_label}: {name} {done}/{total} images")
            else:
                return
            _last[0] = now

        with stage(f"shift test {label}"):
            shifts[label] = shift_test.run_shift_test(
                fit.model, x_test[:n_shift], y_test[:n_shift],
                key=jax.random.key(cfg.seed + 1), protocols=cfg.protocols,
                all_shifts=cfg.all_shifts, sweep_images=n_sweep or None,
                progress=report_progress)
    record["shift_test"] = {k: v.to_dict() for k, v in shifts.items()}
    record["shift_table"] = shift_test.format_table(shifts)
    sweep = None
    if cfg.sweep_images and all(r.jaggedness is not None
                                for r in shifts.values()):
        sweep = _pick_sweep_examples(shifts, cfg.sweep_images)
        first = next(iter(shifts.values())).jaggedness
        sweep["indices"] = [int(first.indices[e]) for e in sweep["positions"]]
    record["jaggedness_examples"] = sweep

    # 5. figures and page
    say(f"[5/{n_steps}] figures and page")
    with stage("figures and page"):
        figures, record["frame_captions"] = _figures(
            cfg, checks, spectra_2d, fits, spectra, shifts, sweep, x_test)
        fig_paths = _common.write_figures(out_dir, figures)

    record["timings"] = _common.round_timings(stage.rows)
    record["total_seconds"] = round(time.perf_counter() - t_start, 3)
    record["total_cpu_seconds"] = round(_common.cpu_seconds() - c_start, 3)
    record["environment"] = _common.environment()
    record["summary"] = _summary(record)
    html_path = os.path.join(out_dir, "report.html")
    json_path = os.path.join(out_dir, "report.json")
    record["paths"] = {"html": os.path.abspath(html_path),
                       "json": os.path.abspath(json_path), "figures": fig_paths}
    record = to_jsonable(record)
    from sigcnn.report.html import render_html

    atomic_write_bytes(html_path, render_html(record, figures).encode("utf-8"))
    atomic_write_json(json_path, record)
    say(f"wrote {html_path} and {json_path} in {record['total_seconds']:.0f} s "
        f"(CPU {record['total_cpu_seconds']:.0f} s)")
    return record


def _figures(cfg, checks, spectra_2d, fits, spectra, shifts, sweep, x_test):
    """(figure name -> PNG bytes, protocol -> caption of its example frame)."""
    from sigcnn import figures as F
    from sigcnn import verify
    from sigcnn.report.frames import protocol_frames

    png = _common.png_bytes
    out: dict = {}
    fine = np.linspace(0.0, 0.5, 201)
    response = {str(k): verify.binomial_response(fine, k) for k in range(1, 8)}
    for name, fig in F.verify_figure_set(checks, spectra_2d=spectra_2d,
                                         fine_freqs=fine,
                                         fine_response=response).items():
        out[name] = png(fig)
    out["training"] = png(F.training_figure({k: f.history
                                             for k, f in fits.items()}))
    out["aliasing_depth"] = png(F.aliasing_depth_figure(
        {k: v.layers for k, v in spectra.items()}))
    for label, res in spectra.items():
        out[f"spectra_{label}"] = png(F.layer_spectra_figure(res.layers,
                                                             title=label))
    names = list(cfg.protocols) + [p for p in _FRAME_PROTOCOLS
                                   if p not in cfg.protocols]
    frames = protocol_frames(x_test[0], names)
    captions = {k: c + ("" if k in cfg.protocols else " (not run here)")
                for k, (_, c) in frames.items()}
    out["protocol_frames"] = png(F.protocol_frames_figure(
        {k: f for k, (f, _) in frames.items()}, labels=captions))
    out["table1"] = png(F.table1_figure(shifts))
    if sweep is not None:
        out["jaggedness"] = png(F.jaggedness_figure(
            shifts, examples=sweep["positions"],
            max_examples=max(1, cfg.sweep_images),
            thumbnails=[x_test[i] for i in sweep["indices"]]))
    return out, captions


def _circular(record: Mapping, label: str):
    for p in record["shift_test"][label]["protocols"]:
        if p["name"] == "circular":
            return p
    return None


def _summary(record: Mapping) -> dict:
    """Headline numbers and a verdict sentence for the page and the JSON."""
    labels = [lbl for lbl, _ in REPORT_MODELS]
    out = {"accuracy": {k: record["models"][k]["test_accuracy"] for k in labels}}
    base, aa = (_circular(record, k) for k in labels)
    if base is None or aa is None:
        out["verdict"] = ("The circular protocol was not run, so there is no "
                          "one-pixel comparison.")
        return out
    out["p_top1_change_circular"] = {
        k: {"value": p["p_top1_change"], "ci": p["p_top1_change_ci"]}
        for k, p in zip(labels, (base, aa))}
    pb, pa = base["p_top1_change"], aa["p_top1_change"]
    lo_b, hi_a = base["p_top1_change_ci"][0], aa["p_top1_change_ci"][1]
    if lo_b > hi_a:
        how = ("lower than the baseline's, and the 95% intervals do not "
               "overlap")
        out["separated"] = True
    elif pa < pb:
        how = "lower than the baseline's, but the 95% intervals overlap"
        out["separated"] = False
    else:
        how = "not lower than the baseline's in this run"
        out["separated"] = False
    ratio = (f" ({pb / pa:.1f} times fewer top-1 changes)"
             if pa > 0 and pb > pa else "")
    out["verdict"] = (
        f"Under one-pixel diagonal circular shifts the baseline changes its top-1 "
        f"class with probability {pb:.3f} [{base['p_top1_change_ci'][0]:.3f}, "
        f"{base['p_top1_change_ci'][1]:.3f}]; the anti-aliased model with "
        f"probability {pa:.3f} [{aa['p_top1_change_ci'][0]:.3f}, "
        f"{aa['p_top1_change_ci'][1]:.3f}], which is {how}{ratio}.")
    return out
