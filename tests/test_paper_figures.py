"""Each script of paper_figures/ runs with --quick, writes its PNG and JSON, and
its JSON satisfies the invariants its figure relies on."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "paper_figures"


@pytest.mark.parametrize("name", ["sampling_theorem"])
def test_script_runs_quick_and_its_invariants_hold(name, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / f"{name}.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / f"{name}.json").read_text())
    assert rec["quick"] is True and rec["invariants"]
    assert all(rec["invariants"].values()), rec["invariants"]
    if name == "sampling_theorem":
        sw = rec["shiftability"]
        for s, d in sw["strides"].items():        # the step sits at 1/(2S)
            below = [e for c, e in zip(sw["cutoffs"], d["error"]) if c < 1 / (2 * int(s))]
            above = [e for c, e in zip(sw["cutoffs"], d["error"]) if c > 1 / (2 * int(s))]
            assert below and above and max(below) < 1e-9 < 1e-3 < min(above)
