"""paper_figures/jaggedness.py runs with --quick, and its JSON holds together: the
invariants, probabilities in [0, 1], flips recounted from the stored top-1
sequences, intervals around their means, and the sweeps' geometry."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SWEEPS = ("translation", "scale", "inpaint")


@pytest.mark.slow
def test_jaggedness_quick(tmp_path, paper_cache):
    proc = subprocess.run(
            [sys.executable, "paper_figures/jaggedness.py", "--quick", "--out",
             str(tmp_path), "--cache", str(paper_cache)],
            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "jaggedness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / "jaggedness.json").read_text())
    assert rec["quick"] is True and rec["invariants"]
    assert all(rec["invariants"].values()), rec["invariants"]
    assert rec["train_seconds"] > 0

    n, labels = rec["n_images"], ("baseline", "blur-4")
    assert set(rec["models"]) == set(labels) == set(rec["summary"])
    # the translation sweep moves a 24-px digit over the whole 64-px canvas
    assert rec["coords"]["translation"] == list(range(64 - 24 + 1))
    assert rec["coords"]["inpaint"] == rec["coords"]["translation"]
    assert np.all(np.diff(rec["coords"]["scale"]) == 1)          # 1 px per frame
    for label in labels:
        assert len(rec["models"][label]) == len(rec["seeds"])
        for m in rec["models"][label]:
            for s in SWEEPS:
                d = m[s]
                top = np.asarray(d["top1"])
                assert top.shape == (n, len(rec["coords"][s]))
                flips = (top[:, 1:] != top[:, :-1]).sum(axis=1)
                assert flips.tolist() == d["flips"]
                assert d["flipped"] == [float(f > 0) for f in flips]
                assert all(0 <= v <= 1 for v in d["mean_abs_dp"])
        for s in SWEEPS:
            for stat, iv in rec["summary"][label][s].items():
                assert iv["n"] == len(rec["seeds"])
                assert iv["low"] - 1e-12 <= iv["mean"] <= iv["high"] + 1e-12
                means = [np.mean(m[s][stat]) for m in rec["models"][label]]
                assert np.allclose(iv["values"], means)
    ex = rec["examples"]
    assert 1 <= len(ex["indices"]) <= 3
    for label in labels:
        for s in SWEEPS:
            for p, top in zip(ex["p"][label][s], ex["top1"][label][s]):
                assert len(p) == len(top) == len(rec["coords"][s])
                assert all(0.0 <= v <= 1.0 for v in p)
    verdicts = {"holds", "partly", "does not hold"}
    assert rec["claims"] and all(c["verdict"] in verdicts for c in rec["claims"])
    assert all(c["paper"] and c["sigcnn"] for c in rec["claims"])
