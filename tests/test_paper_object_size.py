"""paper_figures/object_size.py runs with --quick (built-in models and a
pretrained network on an image folder) and its JSON is self-consistent."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures" / "object_size.py"
PNG = b"\x89PNG\r\n\x1a\n"


def _run(args, out, **kw):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out),
                           *args], capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "object_size.png").read_bytes()[:8] == PNG
    rec = json.loads((out / "object_size.json").read_text())
    assert rec["quick"] is True and rec["invariants"]
    assert all(rec["invariants"].values()), rec["invariants"]
    return rec


def _check_intervals(models, n_sizes):
    for m in models.values():
        for metric in ("p_change", "accuracy", "p_change_correct", "mac"):
            assert len(m[metric]) == n_sizes
            for d in m[metric]:
                if d["mean"] is None:
                    continue
                assert 0.0 <= d["mean"] <= 1.0
                assert d["low"] <= d["mean"] <= d["high"]


@pytest.mark.slow
def test_object_size_quick(tmp_path, paper_cache):
    rec = _run(["--cache", str(paper_cache)], tmp_path)
    sizes = rec["sizes"]
    assert sizes == sorted(sizes) and rec["training_size"] in sizes
    assert set(rec["models"]) == {"baseline", "blur-4"}
    _check_intervals(rec["models"], len(sizes))
    for m in rec["models"].values():
        assert len(m["per_seed"]) == len(rec["seeds"])
        for seed in m["per_seed"]:
            assert sorted(seed, key=int) == [str(s) for s in sizes]
            for r in seed.values():
                assert r["pairs"] == rec["n_images"] * rec["n_pairs"]
                assert 0 <= r["changes_correct"] <= min(r["changes"], r["correct"])
                assert r["p_change"] == pytest.approx(r["changes"] / r["pairs"])
                assert r["accuracy"] == pytest.approx(r["correct"] / r["pairs"])
        # the interval is over the seeds' values
        for d, s in zip(m["p_change"], sizes):
            vals = [p[str(s)]["p_change"] for p in m["per_seed"]]
            assert d["mean"] == pytest.approx(float(np.mean(vals)))
    assert rec["train_seconds"] > 0
    assert len(rec["claims"]) == 4 * len(rec["models"])      # 12 and 48 px: x1/2, x2
    assert {c["verdict"] for c in rec["claims"]} <= {"holds", "partly", "does not hold"}


NET = textwrap.dedent('''
    import torch

    def build():
        torch.manual_seed(0)
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(),
                             nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
''')


@pytest.mark.slow
def test_object_size_quick_on_a_pretrained_network(tmp_path):
    pytest.importorskip("torch")
    from PIL import Image

    (tmp_path / "user_sizenet.py").write_text(NET)
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for k in range(2):
            Image.fromarray((rng.uniform(size=(40, 40, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "imgs" / c / f"{k}.png")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    rec = _run(["--torch", "user_sizenet:build", "--images", str(tmp_path / "imgs"),
                "--size", "40"], tmp_path / "out", env=env)
    assert rec["external"] == "user_sizenet:build" and rec["training_size"] is None
    assert rec["n_images"] == 4 and rec["canvas"] == 40
    assert all(40 - s >= rec["n_pairs"] + 1 for s in rec["sizes"])
    _check_intervals(rec["models"], len(rec["sizes"]))
    assert len(rec["claims"]) == 1
