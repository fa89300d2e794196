"""Tests of sigcnn.report, sigcnn.figures and the `sigcnn train`, `shift-test` and
`report` commands."""

import base64
import contextlib
import dataclasses
import html.parser
import io
import json
import os
import re
import shutil

import jax
import numpy as np
import pytest

from sigcnn import cli, data, figures, report, shift_test, train
from sigcnn.report import models as report_models
from sigcnn.report import pipeline
from sigcnn.train import TrainEvent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


class _PageParser(html.parser.HTMLParser):
    """Collects ids, image sources, links and resource-loading tags."""

    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.hrefs, self.loaders = [], [], [], []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "a":
            self.hrefs.append(a.get("href", ""))
        if tag in ("script", "link", "iframe", "object", "embed") or (
                tag in ("audio", "video", "source") and "src" in a):
            self.loaders.append(tag)
        if tag == "table":
            self.tables += 1


def _parse(page: str) -> _PageParser:
    p = _PageParser()
    p.feed(page)
    p.close()
    return p


# --------------------------------------------------------------------------------
# `sigcnn report --quick`: one run shared by the tests, then a cached re-run
# --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    code, stdout, stderr = _run(["report", "--quick", "--out", str(out)])
    record = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text(encoding="utf-8")
    return {"code": code, "out": stdout, "err": stderr, "dir": out,
            "record": record, "page": page}


def test_report_exit_status_and_files(quick):
    assert quick["code"] == 0, quick["err"][-3000:]
    assert (quick["dir"] / "report.html").is_file()
    assert (quick["dir"] / "report.json").is_file()
    assert quick["record"]["paths"]["html"] == str(quick["dir"] / "report.html")
    for path in quick["record"]["paths"]["figures"]:
        with open(path, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
    assert not any(n.endswith(".tmp") for n in os.listdir(quick["dir"]))


def test_report_progress_lines_on_stderr(quick):
    err = quick["err"]
    for step in range(1, 6):
        assert f"[{step}/5]" in err
    assert "baseline: training epochs 1-1" in err
    assert "anti-aliased: epoch 1/1 step 4/4 loss" in err   # 256 images / 64
    assert "img/s" in err
    assert quick["out"].splitlines()[0].split()[:2] == ["model", "protocol"]
    assert "[1/5]" not in quick["out"]


def test_report_json_content(quick):
    rec = quick["record"]
    assert rec["command"] == "report"
    assert rec["config"] == report.QUICK_REPORT.to_dict()
    assert set(rec["models"]) == {"baseline", "anti-aliased"}
    assert rec["models"]["baseline"]["downsample"] == "max"
    assert rec["models"]["anti-aliased"]["downsample"] == "blur"
    for m in rec["models"].values():
        assert m["trained_now"] is True and m["epochs_run"] == 1
        assert m["start_epoch"] == 0
        assert m["n_train"] == 256 and m["n_test"] == 1000
        assert 0.0 <= m["test_accuracy"] <= 1.0
        assert m["total_stride"] == 4               # vgg_tiny
        assert m["cache"].startswith(str(quick["dir"] / "cache"))
    # Both models saw the same data with the same seed: only the mode differs.
    specs = [m["model_spec"] for m in rec["models"].values()]
    a, b = (dict(s["options"]) for s in specs)
    assert a.pop("downsample") == "max" and b.pop("downsample") == "blur"
    assert a == b
    verify = rec["verify"]
    assert verify["mode"] == "subset"
    assert verify["n_checks"] == len(verify["checks"]) == 4
    assert verify["n_passed"] == 4
    for label in ("baseline", "anti-aliased"):
        layers = rec["spectra"][label]["layers"]
        assert [tuple(l["stride"]) for l in layers] == [(2, 2), (4, 4)]
        assert all(0.0 <= l["aliasing_ratio"] <= 1.0 for l in layers)
        st = rec["shift_test"][label]
        assert [p["name"] for p in st["protocols"]] == ["circular", "black"]
        assert st["n_images"] == 16 and st["all_shifts"] is None
        for p in st["protocols"]:
            lo, hi = p["p_top1_change_ci"]
            assert 0.0 <= lo <= p["p_top1_change"] <= hi <= 1.0
            assert p["n_pairs"] == 16 * 8
        assert len(st["jaggedness"]["indices"]) == 8     # 4 x sweep_images
    stages = [t["stage"] for t in rec["timings"]]
    assert stages == ["verify", "data", "train baseline", "train anti-aliased",
                      "spectra baseline", "spectra anti-aliased",
                      "shift test baseline", "shift test anti-aliased",
                      "figures and page"]
    assert sum(t["wall_seconds"] for t in rec["timings"]) <= rec["total_seconds"]
    assert rec["total_cpu_seconds"] > 0
    assert [c["name"] for c in verify["checks"]] == [
        "strided_vs_undecimated/circular", "tone_sweep", "relu_aliasing",
        "blurpool_response"]


def test_report_summary_matches_numbers(quick):
    rec = quick["record"]
    circ = {k: next(p for p in v["protocols"] if p["name"] == "circular")
            for k, v in rec["shift_test"].items()}
    s = rec["summary"]
    for k, p in circ.items():
        assert s["p_top1_change_circular"][k]["value"] == p["p_top1_change"]
        assert f"{p['p_top1_change']:.3f}" in s["verdict"]
    separated = (circ["baseline"]["p_top1_change_ci"][0]
                 > circ["anti-aliased"]["p_top1_change_ci"][1])
    assert s["separated"] is separated


def test_report_html_is_self_contained(quick):
    page = quick["page"]
    parsed = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.loaders == []                # no script, link, iframe ...
    assert "http://" not in page and "https://" not in page
    assert all(h.startswith("#") for h in parsed.hrefs)
    assert len(parsed.imgs) >= 6
    for src in parsed.imgs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        png = base64.b64decode(src[len(prefix):], validate=True)
        assert png[:8] == PNG_MAGIC


def test_report_html_sections_and_tables(quick):
    page, rec = quick["page"], quick["record"]
    parsed = _parse(page)
    for section in ("verify", "training", "spectra", "shift-test", "jaggedness",
                    "timings", "settings"):
        assert section in parsed.ids
    assert all(f'href="#{i}"' in page for i in parsed.ids)
    for check in rec["verify"]["checks"]:
        assert f"<td>{check['name']}</td>" in page
    for label, st in rec["shift_test"].items():
        for p in st["protocols"]:
            lo, hi = p["p_top1_change_ci"]
            assert f"{p['p_top1_change']:.3f} [{lo:.3f}, {hi:.3f}]" in page
    for label, sp in rec["spectra"].items():
        for layer in sp["layers"]:
            if not figures.coarse_map(layer["shape"][1:3]):
                assert f"{layer['aliasing_ratio']:.3f}" in page
    assert page.count("<p") >= 8                       # explanations
    assert "P(top-1 change)" in page and "MAC" in page


def test_render_html_reproduces_the_page_from_the_json(quick):
    rec = quick["record"]
    fig_dir = quick["dir"] / "figures"
    figures = {p.stem: p.read_bytes() for p in fig_dir.glob("*.png")}
    assert report.render_html(rec, figures) == quick["page"]


def test_report_rerun_reuses_the_cache(quick, tmp_path):
    # Same training settings (so the same cache entries), nothing else re-run
    # that is not needed: verification and extras off.
    cfg = dataclasses.replace(report.QUICK_REPORT, verify="none", sweep_images=0,
                              protocols=("circular",))
    lines = []
    rec = report.make_report(tmp_path / "again", cache_dir=quick["dir"] / "cache",
                             config=cfg, progress=lines.append)
    for label, m in rec["models"].items():
        first = quick["record"]["models"][label]
        assert m["trained_now"] is False and m["epochs_run"] == 0
        assert m["start_epoch"] == 1 and m["cache"] == first["cache"]
        assert m["test_accuracy"] == first["test_accuracy"]   # same weights
        assert m["history"] == first["history"]
    assert any("already done; reusing the saved run" in ln for ln in lines)
    assert not any(" step " in ln for ln in lines)
    assert rec["verify"]["checks"] == []
    page = (tmp_path / "again" / "report.html").read_text()
    assert "reused from cache" in page and "jaggedness" not in _parse(page).ids


# --------------------------------------------------------------------------------
# Verdict logic, rendering details, progress lines
# --------------------------------------------------------------------------------


def _fake_record(pb, ci_b, pa, ci_a):
    def proto(p, ci):
        return {"name": "circular", "p_top1_change": p, "p_top1_change_ci": ci}

    return {"models": {"baseline": {"test_accuracy": 0.9},
                       "anti-aliased": {"test_accuracy": 0.91}},
            "shift_test": {"baseline": {"protocols": [proto(pb, ci_b)]},
                           "anti-aliased": {"protocols": [proto(pa, ci_a)]}}}


@pytest.mark.parametrize("pb,ci_b,pa,ci_a,separated,phrase", [
    (0.13, [0.12, 0.14], 0.05, [0.04, 0.06], True, "do not overlap"),
    (0.07, [0.05, 0.09], 0.06, [0.04, 0.08], False, "intervals overlap"),
    (0.05, [0.04, 0.06], 0.07, [0.06, 0.08], False, "not lower"),
])
def test_summary_verdict(pb, ci_b, pa, ci_a, separated, phrase):
    s = pipeline._summary(_fake_record(pb, ci_b, pa, ci_a))
    assert s["separated"] is separated
    assert phrase in s["verdict"]
    assert f"{pb:.3f} [{ci_b[0]:.3f}, {ci_b[1]:.3f}]" in s["verdict"]
    if separated:
        assert f"({pb / pa:.1f} times fewer top-1 changes)" in s["verdict"]


def test_render_html_escapes_text(quick):
    rec = json.loads(json.dumps(quick["record"]))
    rec["verify"]["checks"][0]["name"] = "<script>alert(1)</script>"
    rec["verify"]["checks"][0]["passed"] = False
    page = report.render_html(rec, {})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<tr class="fail">' in page
    assert _parse(page).imgs == []            # figures left out when missing


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(f'id="{start}"'):page.index(f'id="{end}"')]


def test_render_html_autoescapes_a_model_name(quick):
    rec = json.loads(json.dumps(quick["record"]))
    rec["config"]["model"] = "<script>alert('model')</script>"
    rec["models"]["baseline"]["cache"] = "<b>cache</b>"
    page = report.render_html(rec, {})
    assert "<script>" not in page and "<b>cache</b>" not in page
    assert "&lt;script&gt;alert(&#39;model&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;cache&lt;/b&gt;" in page


def test_report_page_shows_the_verify_figures_in_the_verify_section(quick):
    section = _section(quick["page"], "verify", "training")
    imgs = _parse(section).imgs
    assert len(imgs) == 3          # tone sweep, ReLU harmonics, BlurPool
    for name in ("shiftability_sweep", "relu_spectrum", "blurpool_response"):
        assert (quick["dir"] / "figures" / f"{name}.png").is_file()
    assert "Nyquist step" in section and "ReLU creates harmonics" in section


def test_report_page_shows_one_frame_per_protocol(quick):
    captions = quick["record"]["frame_captions"]
    assert set(captions) == {"circular", "crop", "black", "inpaint", "scale"}
    assert captions["circular"] == "rolled by (8, 8)"
    assert "(not run here)" in captions["crop"]          # --quick runs two
    assert "(not run here)" not in captions["black"]
    section = _section(quick["page"], "shift-test", "jaggedness")
    assert 'alt="One frame of each protocol' in section
    for name, caption in captions.items():
        assert f"{name}: {caption}" in section.replace("&times;", "\u00d7")
    assert (quick["dir"] / "figures" / "protocol_frames.png").is_file()


def test_protocol_frames_are_the_shift_tests_frames():
    from sigcnn.report.frames import protocol_frames

    x = np.arange(32 * 32, dtype=np.float32).reshape(32, 32, 1) / 1024
    frames = protocol_frames(x, ("circular", "crop", "black", "scale"))
    circ, caption = frames["circular"]
    np.testing.assert_array_equal(circ, np.roll(x, (8, 8), axis=(0, 1)))
    assert caption == "rolled by (8, 8)"
    for name in ("crop", "black", "scale"):
        assert frames[name][0].shape == (32, 32, 1)
    black = frames["black"][0]
    assert (black == 0).mean() > 0.5         # a 20x20 object in a 32x32 canvas
    with pytest.raises(ValueError, match=r"`image` must have shape \[H, W, C\]"):
        protocol_frames(x[None], ("circular",))


def test_quick_page_carries_a_smoke_test_banner(quick):
    page = quick["page"]
    assert 'class="banner"' in page and "not meaningful" in page
    assert page.index('class="banner"') < page.index('class="verdict"')
    rec = json.loads(json.dumps(quick["record"]))
    rec["config"]["quick"] = False
    assert 'class="banner"' not in report.render_html(rec, {})
    assert report.QUICK_REPORT.quick and not report.DEFAULT_REPORT.quick


def test_coarse_maps_are_marked_not_shown_as_spectra(quick):
    rec = json.loads(json.dumps(quick["record"]))
    for sp in rec["spectra"].values():
        sp["layers"][-1]["shape"][1:3] = [2, 2]     # as block4 of a 32 canvas
    page = report.render_html(rec, {})
    section = _section(page, "spectra", "shift-test")
    assert "2&times;2 map: too coarse for a spectrum" in section
    assert "is too coarse for a spectrum: its Nyquist box holds only the zero " \
           "frequency" in " ".join(section.split())
    assert "too coarse" not in _section(quick["page"], "spectra", "shift-test") \
        .split("</table>")[0]                # quick maps are 16x16 and 8x8

    class Layer:
        name, stride, aliasing_ratio = "block4", (16, 16), 1.0
        shape = (1, 2, 2, 8)
        shiftability_error = 2.0
        spectrum = np.ones((32, 32))

    fig = figures.layer_spectra_figure([Layer()])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "2\u00d72 map:\ntoo coarse\nfor a spectrum" in texts
    assert not fig.axes[0].get_images()      # no spectrum drawn


def test_shiftability_caption_explains_values_above_2(quick):
    text = " ".join(_section(quick["page"], "spectra", "shift-test").split())
    assert "2: a single on-grid tone above Nyquist" in text
    assert "Values above 2 are possible, up to Sy&middot;Sx" in text


def test_spectra_figures_have_a_db_colour_bar(quick):
    class Layer:
        name, stride, aliasing_ratio = "block1", (2, 2), 0.1
        shape = (1, 16, 16, 8)
        shiftability_error = 0.2
        spectrum = np.random.default_rng(0).uniform(size=(32, 32))

    fig = figures.layer_spectra_figure([Layer(), Layer()])
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "power (dB re peak)" in labels    # the colour bar's axis


def test_accuracy_columns_say_where_they_are_measured(quick):
    page = quick["page"]
    heads = re.findall(r"<th>([^<]*accuracy[^<]*)</th>", page)
    assert heads
    for h in heads:
        assert "(" in h or h.startswith(("robust accuracy", "mean accuracy")), h
    assert "accuracy (first frames)" in heads


def test_jaggedness_panels_show_images_classified_correctly_first(quick):
    rec = quick["record"]
    ex = rec["jaggedness_examples"]
    assert ex["n_candidates"] == 8 and len(ex["positions"]) <= 2
    if ex["all_correct_at_first"]:
        for st in rec["shift_test"].values():
            j = st["jaggedness"]
            for e in ex["positions"]:
                assert j["top1"][e][0] == j["labels"][e]
    assert ex["indices"] == [rec["shift_test"]["baseline"]["jaggedness"][
        "indices"][e] for e in ex["positions"]]


def test_jaggedness_figure_thumbnails_and_chosen_examples(quick):
    st = quick["record"]["shift_test"]
    thumbs = [np.zeros((32, 32, 1)), np.ones((32, 32, 1))]
    fig = figures.jaggedness_figure(st, examples=[3, 5], thumbnails=thumbs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    j = st["baseline"]["jaggedness"]
    assert f"image {j['indices'][3]} (class {j['labels'][3]})" in titles
    assert titles.count("held-out image") == 2
    with pytest.raises(ValueError, match="`examples` must be positions"):
        figures.jaggedness_figure(st, examples=[99])


def _inside(fig) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        b = ax.get_tightbbox(renderer)
        if b.x0 < box.x0 - 1 or b.y0 < box.y0 - 1 or b.x1 > box.x1 + 1 \
                or b.y1 > box.y1 + 1:
            return False
    return True


def test_report_figures_keep_their_labels_inside(quick):
    st = quick["record"]["shift_test"]

    class Layer:
        def __init__(self, name, s, h):
            self.name, self.stride, self.shape = name, (s, s), (1, h, h, 4)
            self.aliasing_ratio, self.shiftability_error = 0.3, 0.5
            self.spectrum = np.random.default_rng(s).uniform(size=(32, 32))

    layers = [Layer(f"block{i + 1}", 2 ** (i + 1), 32 >> (i + 1)) for i in range(4)]
    hist = quick["record"]["models"]["baseline"]["history"]
    frame = np.zeros((32, 32, 1))
    made = [figures.training_figure({"baseline": hist, "anti-aliased": hist}),
            figures.table1_figure(st),
            figures.jaggedness_figure(st, examples=[0, 1],
                                      thumbnails=[frame, frame]),
            figures.aliasing_depth_figure({"a": layers, "b": layers}),
            figures.layer_spectra_figure(layers, title="baseline"),
            figures.protocol_frames_figure(
                {k: frame for k in ("crop", "black", "inpaint", "scale",
                                    "circular")},
                labels={k: "window at (8, 8) of 42x42 (not run here)"
                        for k in ("crop", "black", "inpaint", "scale",
                                  "circular")})]
    for fig in made:
        assert _inside(fig), fig.axes[0].get_title()
        assert fig.get_figwidth() <= 10.0    # readable when shown at 900 px
    assert [t.get_text() for t in made[0].axes[0].get_xticklabels()] == [
        str(e) for e in range(1, len(hist) + 1)]


def test_report_package_keeps_every_public_name():
    names = {"DATASETS", "DEFAULT_REPORT", "QUICK_REPORT", "REPORT_MODELS",
             "VERIFY_MODES", "DatasetSpec", "ReportConfig", "TrainProgress",
             "load_dataset", "make_report", "render_html", "shift_test_checkpoint",
             "train_model", "NETWORK_SHIFT_OPTIONS", "make_network_report",
             "render_network_html"}
    assert names <= set(report.__all__)
    assert all(hasattr(report, n) for n in report.__all__)
    assert report.NETWORK_SHIFT_OPTIONS["protocols"] == (
        "crop", "black", "inpaint", "scale", "circular")


def test_train_progress_lines():
    lines = []
    prog = report.TrainProgress(lines.append, label="m", batch_size=8,
                                interval=1e9)
    prog(TrainEvent("start", epoch=1, epochs=2, steps=3))
    for s in (1, 2, 3):
        prog(TrainEvent("step", epoch=1, epochs=2, step=s, steps=3,
                        loss=np.float32(0.5 * s)))
    prog(TrainEvent("epoch", epoch=1, epochs=2, steps=3,
                    record={"seconds": 1.25, "train_loss": 0.75,
                            "test_accuracy": 0.5}))
    assert lines[0] == "m: training epochs 1-2, 3 steps of 8 images each"
    assert len(lines) == 3                     # start, last step, epoch
    assert lines[1].startswith("m: epoch 1/2 step 3/3 loss 1.5000 ")
    assert lines[1].endswith(" img/s")
    assert lines[2] == ("m: epoch 1/2 done in 1.2 s: train loss 0.7500, test "
                        "accuracy 0.5000")
    lines.clear()
    prog(TrainEvent("start", epoch=2, epochs=2, steps=3))
    prog(TrainEvent("start", epoch=3, epochs=2, steps=3))
    assert lines == ["m: training epochs 2-2, 3 steps of 8 images each (epochs "
                     "1-1 restored from the checkpoint)",
                     "m: 2 of 2 epochs already done; reusing the saved run"]
    with pytest.raises(TypeError, match="`emit` must be callable"):
        report.TrainProgress(None)


# --------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


def test_mnist_canvas_geometry(mnist):
    spec = report.DatasetSpec(name="mnist-canvas", canvas_size=32, crop=2,
                              n_train=64, seed=3)
    xtr, ytr, xte, yte = report.load_dataset(spec)
    assert xtr.shape == (64, 32, 32, 1) and xte.shape == (1000, 32, 32, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32
    assert np.bincount(yte, minlength=10).tolist() == [100] * 10
    # The same split as sigcnn.data with the first subkey; the canvases hold
    # exactly the cropped digits (nothing else, nothing lost).
    k_split, _, _ = jax.random.split(jax.random.key(3), 3)
    x, y = mnist
    dtr, ltr, dte, lte = data.train_test_split(x[:, 2:26, 2:26], y, key=k_split)
    np.testing.assert_array_equal(yte, lte)
    np.testing.assert_array_equal(ytr, ltr[:64])
    np.testing.assert_allclose(xte.sum(axis=(1, 2, 3)), dte.sum(axis=(1, 2, 3)),
                               rtol=1e-5)
    # Same spec, same arrays; another seed, other positions.
    again = report.load_dataset(spec)
    for a, b in zip((xtr, ytr, xte, yte), again):
        np.testing.assert_array_equal(a, b)
    other = report.load_dataset(dataclasses.replace(spec, seed=4))
    assert not np.array_equal(other[2], xte)


def test_plain_datasets():
    xtr, ytr, xte, yte = report.load_dataset(report.DatasetSpec(name="digits"))
    assert xtr.shape[1:] == (8, 8, 1) and xtr.shape[0] + xte.shape[0] == 1797
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    spec = report.DatasetSpec(name="mnist", crop=1, n_train=10)
    assert spec.image_size == 26
    xtr, _, xte, _ = report.load_dataset(spec)
    assert xtr.shape == (10, 26, 26, 1) and xte.shape == (1000, 26, 26, 1)


def test_dataset_spec_round_trip_and_defaults():
    assert report.DatasetSpec is data.DatasetSpec
    assert report.load_dataset is data.load_dataset
    spec = report.DatasetSpec(positions="gaussian")
    assert spec.sigma == 4.0 and spec.image_size == 32
    assert report.DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) \
        == spec
    assert "gaussian (sigma 4 px)" in spec.describe()


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(name="cifar"), ValueError, "`name`"),
    (dict(positions="edge"), ValueError, "`positions`"),
    (dict(sigma=2.0), ValueError, "`sigma` is only used with positions='gaussian'"),
    (dict(positions="gaussian", sigma=-1.0), ValueError,
     "`sigma` must be a non-negative number"),
    (dict(crop=11), ValueError, r"`crop` must be an int in \[0, 10\]"),
    (dict(canvas_size=20), ValueError, "`canvas_size` must be at least the digit "
                                       "size 24"),
    (dict(canvas_size=0), ValueError, "`canvas_size` must be a positive int"),
    (dict(test_fraction=1.0), ValueError, r"`test_fraction` must be a float in"),
    (dict(n_train=0), ValueError, "`n_train` must be a positive int"),
    (dict(seed=-1), ValueError, r"`seed` must be an int in \[0, 2\*\*31\)"),
])
def test_dataset_spec_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        report.DatasetSpec(**kwargs)


def test_library_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="`spec` must be a DatasetSpec"):
        report.load_dataset("mnist")
    with pytest.raises(ValueError, match="`n_train` must be at most the 1438 "
                                         "training images"):
        report.load_dataset(report.DatasetSpec(name="digits", n_train=5000))
    with pytest.raises(TypeError, match="`dataset` must be a DatasetSpec"):
        report.train_model("mnist", out_dir=tmp_path)
    with pytest.raises(ValueError, match="`downsample`"):
        report.train_model(report.DatasetSpec(), out_dir=tmp_path,
                           downsample="avg")
    with pytest.raises(ValueError, match="`width` must be a positive number"):
        report.train_model(report.DatasetSpec(), out_dir=tmp_path, width=0)
    with pytest.raises(TypeError, match="`config` must be a ReportConfig"):
        report.make_report(tmp_path, config={})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="`out_dir` .* exists and is not a folder"):
        report.make_report(tmp_path / "file")
    with pytest.raises(ValueError, match="`verify`"):
        report.ReportConfig(verify="some")
    with pytest.raises(ValueError, match="`sweep_images` must be a non-negative"):
        report.ReportConfig(sweep_images=-1)
    with pytest.raises(ValueError, match="`n_images` must be a positive int"):
        report.shift_test_checkpoint(tmp_path, key=jax.random.key(0), n_images=0)
    with pytest.raises(FileNotFoundError, match="holds no"):
        report.shift_test_checkpoint(tmp_path, key=jax.random.key(0))
    with pytest.raises(ValueError, match="records no dataset"):
        report_models.held_out({"extra": {}}, 5, "DIR")
    with pytest.raises(TypeError, match="`retrain` must be a bool"):
        report.make_report(tmp_path, retrain="yes")


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(model="vgg99"), ValueError, "`model`"),
    (dict(padding="reflect"), ValueError, "`padding`"),
    (dict(width=0.0), ValueError, "`width` must be a positive number; got 0.0"),
    (dict(learning_rate=float("nan")), ValueError,
     "`learning_rate` must be a positive number"),
    (dict(seed=-3), ValueError, "`seed` must be a non-negative int; got -3"),
    (dict(augment_shift=1.5), ValueError, "`augment_shift` must be a non-negative "
                                          "int"),
    (dict(epochs=0), ValueError, "`epochs` must be a positive int"),
    (dict(n_shift_images=2.0), TypeError, "`n_shift_images` must be a positive "
                                          "int"),
    (dict(all_shifts=1), TypeError, "`all_shifts` must be a bool"),
    (dict(protocols=("circular", "rotate")), ValueError,
     r"`protocols` must be a non-empty sequence of names from \('circular'"),
    (dict(protocols=()), ValueError, "`protocols` must be a non-empty"),
    (dict(dataset="mnist"), TypeError, "`dataset` must be a DatasetSpec"),
])
def test_report_config_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        report.ReportConfig(**kwargs)
    assert report.ReportConfig(protocols="crop").protocols == ("crop",)


# --------------------------------------------------------------------------------
# `sigcnn train` and `sigcnn shift-test` on a tiny configuration
# --------------------------------------------------------------------------------

_TINY = ["--model", "vgg_tiny", "--dataset", "mnist-canvas", "--canvas-size", "32",
         "--crop", "2", "--n-train", "128", "--epochs", "1", "--batch-size", "64",
         "--width", "0.5", "--seed", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("train") / "run"
    code, out, err = _run(["train", *_TINY, "--out", str(run)])
    return {"code": code, "out": out, "err": err, "dir": run}


def test_train_cli(trained):
    assert trained["code"] == 0, trained["err"][-3000:]
    run = trained["dir"]
    for name in (train.MODEL_FILE, train.CONFIG_FILE, train.CHECKPOINT_FILE):
        assert (run / name).exists()
        assert f"wrote {run / name}" in trained["out"]
    config = json.loads((run / train.CONFIG_FILE).read_text())
    assert config["dataset"] == "mnist-canvas"
    assert config["extra"]["dataset"] == report.DatasetSpec(
        name="mnist-canvas", canvas_size=32, crop=2, n_train=128).to_dict()
    assert config["model"]["options"]["in_channels"] == 1
    assert config["n_train"] == 128 and config["epochs"] == 1
    lines = trained["out"].splitlines()
    assert lines[0].split() == ["epoch", "train", "loss", "train", "accuracy",
                                "test", "loss", "test", "accuracy", "seconds"]
    assert lines[2].split()[0] == "1"
    assert f"{config['test_accuracy']:.4f}" in lines[2]
    assert "1 epoch(s) trained now" in trained["out"]
    assert "vgg_tiny: epoch 1/1 step 2/2 loss" in trained["err"]


def test_train_cli_reuses_a_finished_run(trained):
    code, out, err = _run(["train", *_TINY, "--out", str(trained["dir"])])
    assert code == 0, err
    assert "1 of 1 epochs already done; reusing the saved run" in err
    assert "0 epoch(s) trained now, 1 restored" in out
    assert " step " not in err


def test_train_cli_refuses_a_checkpoint_of_other_settings(trained):
    argv = ["train", *_TINY, "--out", str(trained["dir"])]
    argv[argv.index("--seed") + 1] = "2"
    code, out, err = _run(argv)
    assert code == 2
    (line,) = err.strip().splitlines()[-1:]
    assert line.startswith("sigcnn train: error: argument --out: holds a checkpoint "
                           "of a different run")


def test_train_defaults_are_the_reports_baseline():
    # `sigcnn train --out DIR` on its defaults trains the report's baseline.
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--out", "X"])
    base = report.DEFAULT_REPORT
    spec = cli.train._dataset(args, args.subparser)
    assert spec == base.dataset
    options = dict(model=args.model, epochs=args.epochs,
                   batch_size=args.batch_size, learning_rate=args.lr,
                   seed=args.seed, width=args.width, padding=args.padding,
                   downsample=args.downsample, blur_size=args.blur_size,
                   augment_shift=args.augment_shift)
    baseline_mode = dict(report.REPORT_MODELS)["baseline"]
    assert options == base.train_options(baseline_mode)
    assert args.augment_padding == data.BASELINE_TRAINING["augment_padding"]
    # The library's own defaults are the same recipe.
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(
        report.train_model).parameters.items()
        if v.default is not inspect.Parameter.empty}
    for k, v in data.BASELINE_TRAINING.items():
        assert defaults[k] == v, k


def test_train_help_shows_every_default():
    code, out, err = _run(["train", "--help"])
    assert code == 0
    text = " ".join(out.split())
    parser = cli.build_parser()
    sub = parser.parse_args(["train", "--out", "X"]).subparser
    for action in sub._actions:
        if not action.option_strings or action.dest in ("help", "out", "debug"):
            continue
        if action.default is None:
            assert "default:" in " ".join(action.help.split()), action.dest
        else:
            assert f"(default: {action.default})" in text, action.dest
    assert "(default: vgg_small)" in text and "(default: 0.003)" in text


def _imported(tree):
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "sigcnn":
                yield from (f"sigcnn.{a.name}" for a in node.names)
            else:
                yield node.module


def test_train_parser_imports_no_report():
    # Building `sigcnn train`'s parser (done for every `sigcnn` command) reads
    # the datasets from sigcnn.data, not from the report; importing the
    # report package loads no matplotlib, jinja2 or figures (those are
    # imported where a page is drawn).
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cli.train.add_parser))
    names = set(_imported(tree))
    assert "sigcnn.data" in names
    assert not any(n.startswith("sigcnn.report") for n in names), names
    root = os.path.dirname(report.__file__)
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(root, name)).read())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for mod in _imported(ast.Module(body=top, type_ignores=[])):
            assert mod.split(".")[0] not in ("matplotlib", "jinja2"), (name, mod)
            assert not mod.startswith("sigcnn.figures"), (name, mod)


def _corrupt(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "wb") as fh:
                fh.write(b"not a checkpoint")


def test_corrupt_cache_is_reported_and_retrain_restarts_it(quick, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(quick["dir"] / "cache", cache)
    entry = next(p for p in cache.iterdir() if p.name.startswith("baseline-"))
    _corrupt(entry)
    cfg = dataclasses.replace(report.QUICK_REPORT, verify="none", sweep_images=0,
                              protocols=("circular",))
    with pytest.raises(report.CachedModelError,
                       match="cached baseline model .* cannot be reused") as e:
        report.make_report(tmp_path / "out", cache_dir=cache, config=cfg)
    assert e.value.label == "baseline" and e.value.path == str(entry)
    assert "retrain=True" in str(e.value)
    rec = report.make_report(tmp_path / "out", cache_dir=cache, config=cfg,
                             retrain=True)
    assert rec["models"]["baseline"]["trained_now"] is True
    assert rec["models"]["baseline"]["start_epoch"] == 0
    assert rec["models"]["anti-aliased"]["trained_now"] is True   # retrain: both
    model, config = train.load_model(entry)                       # repaired
    assert config["epochs"] == cfg.epochs


def test_report_cli_names_the_retrain_flag(monkeypatch, tmp_path):
    calls = []

    def fake(out_dir, **kwargs):
        calls.append(kwargs)
        if not kwargs["retrain"]:
            raise report.CachedModelError("baseline", "/c/baseline-x",
                                          "ValueError: unreadable checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "make_report", fake)
    code, out, err = _run(["report", "--quick", "--out", str(tmp_path / "o")])
    assert code == 2 and out == ""
    assert ("sigcnn report: error: the cached baseline model in '/c/baseline-x' "
            "cannot be reused (ValueError: unreadable checkpoint); run the same "
            "command with --retrain to train it anew") in err
    code, _, _ = _run(["report", "--quick", "--retrain", "--out",
                       str(tmp_path / "o")])
    assert code == 130 and calls[-1]["retrain"] is True
    assert calls[-1]["config"] is report.QUICK_REPORT


def test_spectra_on_a_train_checkpoint(trained, tmp_path):
    out = tmp_path / "spectra"
    code, stdout, err = _run(["spectra", "--checkpoint", str(trained["dir"]),
                              "--out", str(out)])
    assert code == 0, err
    rec = json.loads((out / "spectra.json").read_text())
    # the model by name and options, not a raw dict; at its training size and
    # channel count (one-channel 32 x 32 canvases)
    assert rec["model"].startswith("vgg_tiny (") and "width 0.5" in rec["model"]
    assert rec["size"] == 32 and rec["checkpoint"] == str(trained["dir"])
    assert rec["width"] is None and rec["downsample"] is None
    assert rec["layers"] and all(0.0 <= la["aliasing_ratio"] <= 1.0
                                 for la in rec["layers"])
    for name in ("layer_spectra.png", "aliasing_vs_depth.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert "loading the trained model" in err


def test_shift_test_refuses_more_images_than_held_out(trained, tmp_path):
    out = tmp_path / "st"
    code, stdout, err = _run(["shift-test", "--checkpoint", str(trained["dir"]),
                              "--n-images", "500000", "--out", str(out)])
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert line.startswith("sigcnn shift-test: error: argument --n-images: must be "
                           "at most the ")
    assert "held-out images of the 'mnist-canvas' dataset" in line
    assert line.endswith("got 500000.")
    assert not (out / "shift_test.json").exists()


def test_shift_test_cli(trained, tmp_path):
    out = tmp_path / "st"
    code, stdout, err = _run(["shift-test", "--checkpoint", str(trained["dir"]),
                              "--protocols", "circular,crop", "--n-images", "12",
                              "--no-all-shifts", "--sweep-images", "2",
                              "--seed", "5", "--out", str(out)])
    assert code == 0, err
    rec = json.loads((out / "shift_test.json").read_text())
    assert rec["command"] == "shift-test" and rec["n_images"] == 12
    assert [p["name"] for p in rec["protocols"]] == ["circular", "crop"]
    assert rec["dataset"]["canvas_size"] == 32
    assert stdout.startswith(rec["table"])
    assert (out / "shift_test.txt").read_text() == rec["table"] + "\n"
    for name in ("table1.png", "jaggedness.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert "circular: 12/12 images" in err
    # The images are the first held-out images of the model's own dataset:
    # the library run on them with the same key gives the same numbers.
    model, config = train.load_model(trained["dir"])
    spec = report.DatasetSpec.from_dict(config["extra"]["dataset"])
    _, _, xte, yte = report.load_dataset(spec)
    ref = shift_test.run_shift_test(model, xte[:12], yte[:12],
                                    key=jax.random.key(5),
                                    protocols=("circular", "crop"),
                                    all_shifts=False, sweep_images=2)
    for got, want in zip(rec["protocols"], ref.protocols):
        assert got["p_top1_change"] == want.p_top1_change
        assert got["mac"] == pytest.approx(want.mac, rel=1e-6)
        assert got["accuracy"] == want.accuracy
    assert rec["jaggedness"]["top1"] == [list(t) for t in ref.jaggedness.top1]


# --------------------------------------------------------------------------------
# Argument errors of the three commands (raised before any computation)
# --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,match", [
    (["train", "--epochs", "1"], "the following arguments are required: --out"),
    (["train", "--epochs", "0", "--out", "X"],
     "argument --epochs: must be a positive integer; got '0'"),
    (["train", "--sigma", "2", "--out", "X"],
     "argument --sigma: only used with --positions gaussian"),
    (["train", "--positions", "gaussian", "--sigma", "-1", "--out", "X"],
     "argument --sigma: must be non-negative"),
    (["train", "--canvas-size", "20", "--out", "X"],
     "argument --canvas-size: must be at least the digit size 24"),
    (["train", "--dataset", "cifar", "--out", "X"], "argument --dataset: invalid "
                                                    "choice: 'cifar'"),
    (["train", "--lr", "-1", "--out", "X"], "argument --lr: must be a positive "
                                            "number"),
    (["shift-test", "--out", "X"], "one of --checkpoint, --torch"),
    (["shift-test", "--checkpoint", "NOWHERE", "--out", "X"],
     "argument --checkpoint: 'NOWHERE' holds no"),
    (["shift-test", "--checkpoint", "NOWHERE", "--n-images", "0", "--out", "X"],
     "argument --n-images: must be a positive integer"),
    (["report", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_cli_argument_errors(argv, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv)
    assert code == 2
    assert match in err
    assert out == ""
    assert os.listdir(tmp_path) == []         # nothing created


def test_cli_errors_on_paths_and_protocols(trained, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = _run(["report", "--out", str(f)])
    assert code == 2 and f"argument --out: {str(f)!r} exists and is not a " \
                         f"directory" in err
    code, _, err = _run(["report", "--cache", str(f)])
    assert code == 2 and "argument --cache:" in err
    code, _, err = _run(["train", "--out", str(f)])
    assert code == 2 and "argument --out:" in err
    code, _, err = _run(["shift-test", "--checkpoint", str(trained["dir"]),
                         "--protocols", "circular,bogus", "--out",
                         str(tmp_path / "st")])
    assert code == 2
    assert "argument --protocols: expected a comma-separated list of circular, " \
           "subpixel, crop, black, inpaint, scale; got 'circular,bogus'" in err
    assert not (tmp_path / "st").exists()
