"""paper_figures/table1.py: Table 1 and the size sweep, built-in and on ONet."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures"

SIZES = ["0.1", "0.4", "0.7", "1.0", "1.3", "1.6", "1.9"]
PROTOCOLS = ["crop", "black", "inpaint", "scale"]


def _run(args, tmp_path, name="table1", timeout=900):
    proc = subprocess.run([sys.executable, str(ROOT / "table1.py"), *args, "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / f"{name}.json").read_text())
    assert rec["invariants"] and all(rec["invariants"].values()), rec["invariants"]
    return rec


def _check_cells(model, n_images, n_runs):
    assert list(model["table"]) == PROTOCOLS and list(model["sweep"]) == SIZES
    for part in ("table", "sweep"):
        for cell in model[part].values():
            assert cell["n_pairs"] == [8 * n_images] * n_runs
            p, mac = cell["p"], cell["mac"]
            assert 0 <= p["mean"] <= 1 and 0 <= mac["mean"] <= 1
            assert p["low"] <= p["mean"] <= p["high"]
            assert len(cell["within"]) == n_runs
            for w in cell["within"]:
                assert 0 <= w["p_ci"][0] <= w["p"] <= w["p_ci"][1] <= 1
                assert 0 <= w["mac_ci"][0] <= w["mac"] <= w["mac_ci"][1]
    # sizes 1.0 and 1.6 are Table 1's Crop and Black rows
    assert model["sweep"]["1.0"]["p"] == model["table"]["crop"]["p"]
    assert model["sweep"]["1.6"]["mac"] == model["table"]["black"]["mac"]


@pytest.mark.slow
def test_table1_quick_builtin(tmp_path, paper_cache):
    rec = _run(["--quick", "--cache", str(paper_cache)], tmp_path)
    assert rec["quick"] is True and rec["mode"] == "built-in"
    assert rec["sizes"] == SIZES and rec["seeds"] == [0, 1]
    assert list(rec["models"]) == ["baseline", "blur-4", "augment-16"]
    assert rec["models"]["augment-16"]["recipe"]["augment_shift"] == 16
    assert rec["train_seconds"] > 0
    for model in rec["models"].values():
        _check_cells(model, rec["n_images"], 2)
        assert model["circular"] and all(c["p"] == 0.0 for c in model["circular"])
        for cell in model["table"].values():       # across seeds: the mean of the seeds
            assert cell["p"]["mean"] == pytest.approx(np.mean(cell["p"]["values"]))
    for s, b in rec["crop_boxes"].items():
        assert b["inside"] and abs(b["area_fraction"][0] - float(s)) < 0.15 * float(s)
    verdicts = {c["verdict"] for c in rec["claims"]}
    assert len(rec["claims"]) == 7 and verdicts <= {"holds", "partly", "does not hold"}
    assert all(c["paper"] and c["sigcnn"] for c in rec["claims"])


@pytest.mark.slow
def test_table1_on_pretrained_onet(tmp_path):
    for package in ("mtcnn", "keras", "joblib"):       # mtcnn's __init__ needs TensorFlow
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
    faces = tmp_path / "faces"
    subprocess.run([sys.executable, str(ROOT / "make_faces.py"), str(faces)], check=True,
                   capture_output=True, timeout=300)
    for folder in faces.iterdir():                   # 12 images per class suffice here
        for f in sorted(folder.iterdir())[12:]:
            f.unlink()
    out = tmp_path / "out"
    rec = _run(["--keras", "onet:onet", "--output", "2", "--probabilities", "--images",
                str(faces), "--size", "48", "--normalize", "tf"], out, name="table1_external")
    assert rec["mode"] == "external" and rec["n_images"] == 24
    (model,) = rec["models"].values()
    assert model["num_classes"] == 2
    _check_cells(model, 24, 1)
    assert model["table"]["crop"]["accuracy"]["mean"] >= 0.9      # ONet knows faces
    assert len(rec["claims"]) == 4


def test_random_crops_follow_torchvision_and_match_a_resize_of_each_box(monkeypatch):
    # paper_figures/ on the path only for this test: its _nets would shadow tests/_nets
    monkeypatch.syspath_prepend(str(ROOT))
    table1 = importlib.import_module("table1")

    from sigcnn.shifts import resize_images

    rng = np.random.default_rng(0)
    x = rng.random((4, 40, 40, 3)).astype(np.float32)
    for scale in (0.1, 0.7, 1.0):
        boxes = table1.crop_boxes(len(x), 40, 40, scale)
        t, left, h, w = boxes.T
        assert np.all((t >= 0) & (left >= 0) & (t + h <= 40) & (left + w <= 40))
        assert np.allclose(h * w / 1600, scale, rtol=0.15)
        assert np.all((w / h > 0.7) & (w / h < 1.4))
        got = table1.crop_inputs(x, boxes)
        assert got.shape == (4, 50, 50, 3)
        for i, (ti, li, hi, wi) in enumerate(boxes):             # the oracle: one resize
            ref = resize_images(x[i:i + 1, ti:ti + hi, li:li + wi], (50, 50))
            np.testing.assert_allclose(got[i], np.asarray(ref)[0], atol=2e-5)
    assert np.array_equal(table1.crop_boxes(5, 40, 40, 1.0)[:, 2:], [[40, 40]] * 5)
