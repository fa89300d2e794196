"""paper_figures/typicality.py runs with --quick and its JSON is
self-consistent: placements at their distances, rates recounted, intervals
over the seeds."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures"


@pytest.mark.slow
def test_typicality_quick(tmp_path, paper_cache):
    proc = subprocess.run([sys.executable, str(ROOT / "typicality.py"), "--quick",
                           "--out", str(tmp_path), "--cache", str(paper_cache)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "typicality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / "typicality.json").read_text())
    assert rec["quick"] is True and rec["invariants"]
    assert all(rec["invariants"].values()), rec["invariants"]
    dist = rec["distances"]
    assert dist == sorted(dist) and dist[0] == 0 and dist[-1] >= rec["far"]
    labels = {f"gauss-{s:g}" for s in rec["sigmas"]} | {"baseline"}
    assert set(rec["models"]) == labels
    for label, m in rec["models"].items():
        assert (m["sigma"] is None) == (label == "baseline")
        for metric in ("p_change", "accuracy", "p_change_correct"):
            assert len(m[metric]) == len(dist)
            for d in m[metric]:
                if d["mean"] is not None:
                    assert 0.0 <= d["mean"] <= 1.0 and d["low"] <= d["mean"] <= d["high"]
                    assert d["n"] == len(rec["seeds"])
        for seed in m["per_seed"]:
            assert sorted(seed, key=int) == [str(d) for d in dist]
            for r in seed.values():
                assert r["pairs"] == rec["n_images"]
                assert r["p_change"] == pytest.approx(r["changes"] / r["pairs"])
        for d, k in zip(m["accuracy"], dist):
            vals = [p[str(k)]["accuracy"] for p in m["per_seed"]]
            assert d["mean"] == pytest.approx(float(np.mean(vals)))
        if m["sigma"] is not None:       # Gaussian training positions: std ~ sigma
            assert all(abs(s - m["sigma"]) < 0.2 * m["sigma"] for s in m["training_std"])
            assert m["training_within_far"] > 0.95 or m["sigma"] > rec["far"] / 3
    # the uniform control saw positions further out than the narrowest Gaussian
    narrow = rec["models"][f"gauss-{min(rec['sigmas']):g}"]
    assert rec["models"]["baseline"]["training_within_far"] < narrow["training_within_far"]
    assert rec["train_seconds"] > 0
    assert len(rec["claims"]) == 5 * len(rec["sigmas"])
    assert {c["verdict"] for c in rec["claims"]} <= {"holds", "partly", "does not hold"}
