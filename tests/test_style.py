"""What a reviewer checks first: ruff's lint rules and import order (configured
in pyproject.toml) hold on the package, the tests and the benchmarks."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(
        pathlib.Path(sys.executable).parent))
    assert ruff, "ruff is part of the test extra: pip install '.[test]'"
    targets = [p for p in ("sigcnn", "tests", "benchmarks", "paper_figures")
               if (ROOT / p).exists()]
    proc = subprocess.run([ruff, "check", "--no-cache", *targets], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
