"""paper_figures/per_layer.py --quick: maps, probes and spectra per layer."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures" / "per_layer.py"


@pytest.mark.slow
def test_per_layer_quick(tmp_path, paper_cache):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path),
                           "--cache", str(paper_cache)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / "per_layer.json").read_text())
    assert rec["quick"] is True and rec["invariants"]
    assert all(rec["invariants"].values()), rec["invariants"]
    assert rec["train_seconds"] > 0

    layers = ["input", "block1", "block2", "block3", "block4"]
    for label, rows in rec["summary"].items():
        assert list(rows) == layers
        assert [r["stride"] for r in rows.values()] == [1, 2, 4, 8, 16]
        for row in rows.values():
            for field in ("accuracy", "p_change_black", "p_change_circular",
                          "aliasing_ratio"):
                d = row[field]
                assert d["n"] == len(rec["seeds"])
                assert all(0.0 <= v <= 1.0 for v in d["values"])
                assert d["low"] - 1e-12 <= d["mean"] <= d["high"] + 1e-12
        # the input's global mean is shift-invariant and the input is shiftable
        assert rows["input"]["p_change_circular"]["values"] == [0.0] * len(rec["seeds"])
        assert rows["input"]["shiftability_error"]["mean"] < 1e-6

    for seeds in rec["runs"].values():
        for run in seeds:
            probe = run["probe"]
            for layer in probe["layers"].values():
                for p in ("black", "circular"):
                    q = layer[p]
                    assert q["pairs"] == 8 * probe["n_shift"]
                    assert q["p_change"] == pytest.approx(q["changes"] / q["pairs"])
            for k, ident in run["identities"].items():
                # the receptive field grows with depth; r == r2[::S]
                assert ident["decimation"] <= 1e-5
            fps = [run["identities"][k]["footprint"] for k in layers]
            assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(fps, fps[1:]))
            assert run["spectra"]["block4"]["stride"] == [16, 16]

    maps = rec["maps"]
    assert list(maps["layers"]) == layers
    for k, layer in maps["layers"].items():
        assert layer["r_nearest_shift"][0] == pytest.approx(0.0, abs=1e-9)   # t = 0
        if k != "input":     # the strided map of the shifted digit is no shift of r
            assert layer["r_nearest_shift"][1] > 1e-3
        assert len(layer["display"]["r2_t1"]) == 64

    claims = rec["claims"]
    assert len(claims) >= 7
    assert all(c["verdict"] in ("holds", "partly", "does not hold") for c in claims)
    assert all(c["claim"] and c["paper"] and c["sigcnn"] for c in claims)
