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
