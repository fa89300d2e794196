"""The tutorials in docs/ run as written: every ```python block (in one namespace)
and every ```bash block (with this environment's `sigcnn`), in order, in a fresh
folder. ```text blocks are not run."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path):
    return [(lang, code) for lang, code in FENCE.findall(path.read_text())]


def test_tutorial_has_runnable_blocks():
    langs = [lang for lang, _ in blocks(DOCS / "own_network.md")]
    assert langs.count("python") >= 2 and langs.count("bash") >= 3
    assert set(langs) <= {"python", "bash", "text"}


def test_own_network_tutorial_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    namespace: dict = {"__name__": "__tutorial__"}
    for i, (lang, code) in enumerate(blocks(DOCS / "own_network.md")):
        if lang == "python":
            exec(compile(code, f"own_network.md block {i}", "exec"), namespace)
        elif lang == "bash":
            run = subprocess.run(["bash", "-e", "-c", code], env=env,
                                 capture_output=True, text=True, timeout=900)
            assert run.returncode == 0, f"block {i}:\n{code}\n{run.stderr[-3000:]}"
            assert "Traceback" not in run.stderr
    report = (tmp_path / "results" / "report.html").read_text()
    assert "resnet18" in report
