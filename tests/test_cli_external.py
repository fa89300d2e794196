"""`sigcnn spectra` on a network the user brings: --torch / --weights / --taps."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from sigcnn import cli

torch = pytest.importorskip("torch")

NET = textwrap.dedent('''
    import torch

    def build():
        torch.manual_seed(0)
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(),
                             nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
''')


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    (tmp_path / "user_tinynet.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    net = importlib.import_module("user_tinynet").build()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for k in range(2):
        Image.fromarray((rng.uniform(size=(20, 24, 3)) * 255).astype(np.uint8)).save(
            tmp_path / "imgs" / f"{k}.png")
    return tmp_path


def test_spectra_of_a_torch_network_on_an_image_folder(user_files, capsys):
    out = user_files / "out"
    rc = cli.main(["spectra", "--torch", "user_tinynet:build", "--weights",
                   str(user_files / "w.pt"), "--images", str(user_files / "imgs"),
                   "--size", "16", "--out", str(out)])
    assert rc == 0
    record = json.loads((out / "spectra.json").read_text())
    assert record["source"] == {"framework": "torch", "spec": "user_tinynet:build",
                                "weights": str(user_files / "w.pt")}
    # default taps: the top-level submodules with spatial outputs, in order
    assert [l["name"] for l in record["layers"]] == ["0", "1", "2", "3"]
    assert [tuple(l["stride"]) for l in record["layers"]] == [(2, 2), (2, 2), (4, 4),
                                                              (4, 4)]
    assert record["images"] == ["0.png", "1.png"]


@pytest.mark.parametrize("argv, message", [
    (["--torch", "user_tinynet.build"], "--torch must be 'package.module:callable'"),
    (["--torch", "user_tinynet:nothing"], "has no callable 'nothing'"),
    (["--torch", "user_tinynet:build", "--weights", "missing.pt"],
     "--weights: no such file"),
    (["--torch", "user_tinynet:build", "--taps", "7"], "--taps: the network has no "
     "submodule '7'"),
    (["--torch", "user_tinynet:build", "--checkpoint", "x"], "--checkpoint: not with"),
    (["--keras", "missing.keras"], "--keras: no such file"),
    (["--weights", "w.pt"], "--weights: only with --torch, --timm or --keras"),
    (["--taps", "0,2"], "--taps: only with --torch, --timm or --keras"),
])
def test_spectra_flag_mistakes_end_in_one_line(user_files, capsys, argv, message):
    rc = cli.main(["spectra", *argv, "--size", "16", "--out", str(user_files / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _shift_argv(user_files, out, *extra):
    return ["shift-test", "--torch", "user_tinynet:build", "--weights",
            str(user_files / "w.pt"), "--images", str(user_files / "imgs"),
            "--size", "24", "--protocols", "crop,black,circular", "--n-pairs", "4",
            "--sweep-images", "1", "--chunk-images", "1", "--out", str(out),
            *extra]


def test_shift_test_of_a_torch_network_on_unlabelled_images(user_files, capsys,
                                                            monkeypatch):
    out = user_files / "st"
    from sigcnn.shift_test import runs as shift_runs

    saved = []
    real = shift_runs._save_part

    def interrupt_second(*a):        # Ctrl-C while the second chunk is saved
        if len(saved) == 1:
            raise KeyboardInterrupt
        saved.append(a[1])
        real(*a)

    monkeypatch.setattr(shift_runs, "_save_part", interrupt_second)
    assert cli.main(_shift_argv(user_files, out)) == 130
    err = capsys.readouterr().err
    assert "interrupted; finished work is kept" in err and "Traceback" not in err
    monkeypatch.setattr(shift_runs, "_save_part", real)
    assert cli.main(_shift_argv(user_files, out)) == 0
    cap = capsys.readouterr()
    assert "1/2 chunks reused" in cap.err
    assert "accuracy needs labels" in cap.out
    record = json.loads((out / "shift_test.json").read_text())
    assert record["labelled"] is False and record["images"]["labelled"] is False
    assert record["images"]["preprocessing"]["name"] == "imagenet"
    assert [p["name"] for p in record["protocols"]] == ["crop", "black", "circular"]
    assert all(p["accuracy"] is None for p in record["protocols"])
    assert record["consistency"]["mode"] == "crop"   # Zhang's random crops
    assert record["all_shifts"]["extent"] == [4, 4]
    assert record["all_shifts"]["method"] == "atrous"
    for name in ("shift_test.txt", "table1.png", "jaggedness.png"):
        assert (out / name).stat().st_size > 0
    # a different preprocessing is another run: refused, not mixed in
    rc = cli.main(_shift_argv(user_files, out, "--normalize", "none"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "holds the chunks of a different run" in err and "--out" in err


def test_report_of_a_torch_network_on_labelled_class_folders(user_files, capsys):
    imgs = user_files / "classes"
    rng = np.random.default_rng(1)
    for cls in ("cat", "dog"):
        (imgs / cls).mkdir(parents=True)
        Image.fromarray((rng.uniform(size=(30, 26, 3)) * 255).astype(np.uint8)).save(
            imgs / cls / "a.png")
    (user_files / "classes.txt").write_text("dog\ncat\nbird\n")
    out = user_files / "rep"
    rc = cli.main(["report", "--torch", "user_tinynet:build", "--images", str(imgs),
                   "--classes", str(user_files / "classes.txt"), "--size", "24",
                   "--n-spectra-images", "1", "--n-pairs", "2", "--sweep-images",
                   "0", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    record = json.loads((out / "report.json").read_text())
    assert record["images"]["labelled"] and record["images"]["classes"] == [
        "dog", "cat", "bird"]
    assert record["shift_test"]["labelled"] is True
    acc = [p["accuracy"] for p in record["shift_test"]["protocols"]]
    assert all(a is not None and 0.0 <= a <= 1.0 for a in acc)
    assert [l["name"] for l in record["spectra"]["layers"]] == ["0", "1", "2", "3"]
    page = (out / "report.html").read_text()
    assert "user_tinynet:build" in page and "data:image/png;base64," in page
    assert "Traceback" not in page and "{{" not in page
    assert len(record["verify"]["checks"]) == 4


@pytest.mark.parametrize("argv, message", [
    (["shift-test", "--torch", "user_tinynet:build", "--out", "o"],
     "--images: required with --torch"),
    (["shift-test", "--out", "o"], "one of --checkpoint, --torch"),
    (["shift-test", "--torch", "user_tinynet:build", "--images", "nowhere",
      "--out", "o"], "--images: no such folder"),
    (["shift-test", "--checkpoint", "c", "--images", "imgs", "--out", "o"],
     "--images: not with --checkpoint"),
    (["report", "--images", "imgs"], "--images: with --torch, --timm or --keras"),
    (["report", "--torch", "user_tinynet:build", "--images", "imgs", "--quick"],
     "--quick: only for the built-in report"),
    (["report", "--torch", "user_tinynet:build", "--images", "imgs", "--classes",
      "missing.txt"], "--classes: no such file"),
])
def test_shift_test_and_report_flag_mistakes(user_files, capsys, monkeypatch, argv,
                                             message):
    monkeypatch.chdir(user_files)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
