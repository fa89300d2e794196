"""Tests of sigcnn.report and the `sigcnn train`, `shift-test` and `report` commands."""

import base64
import contextlib
import dataclasses
import html.parser
import io
import json
import os

import jax
import numpy as np
import pytest

from sigcnn import cli, data, report, shift_test, train
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
        assert len(st["jaggedness"]["indices"]) == 2
    stages = [t["stage"] for t in rec["timings"]]
    assert stages == ["verify", "data", "train baseline", "train anti-aliased",
                      "spectra baseline", "spectra anti-aliased",
                      "shift test baseline", "shift test anti-aliased",
                      "figures and page"]
    assert sum(t["wall_seconds"] for t in rec["timings"]) <= rec["total_seconds"]
    assert rec["total_cpu_seconds"] > 0


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
    s = report._summary(_fake_record(pb, ci_b, pa, ci_a))
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
    spec = report.DatasetSpec(positions="gaussian")
    assert spec.sigma == 4.0 and spec.image_size == 56
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
                                       "size 28"),
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
    with pytest.raises(FileNotFoundError, match="holds no model.npz"):
        report.shift_test_checkpoint(tmp_path, key=jax.random.key(0))
    with pytest.raises(ValueError, match="records no dataset"):
        report._held_out({"extra": {}}, 5, "DIR")


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
        assert (run / name).is_file()
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
    assert "sigcnn train: error: `out_dir` holds a checkpoint of a different run" \
        in err


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
     "`canvas_size` must be at least the digit size 28"),
    (["train", "--dataset", "cifar", "--out", "X"], "argument --dataset: invalid "
                                                    "choice: 'cifar'"),
    (["train", "--lr", "-1", "--out", "X"], "argument --lr: must be a positive "
                                            "number"),
    (["shift-test", "--out", "X"], "one of --checkpoint, --torch"),
    (["shift-test", "--checkpoint", "NOWHERE", "--out", "X"],
     "argument --checkpoint: 'NOWHERE' holds no model.npz"),
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
