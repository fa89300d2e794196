"""The tutorials in docs/ run as written: every ```python block (in one namespace)
and every ```bash block, in order, in a fresh folder. ```text blocks are not run.

In a bash block each ``sigcnn ...`` command runs in this process through
`sigcnn.cli.main` (what the console script calls; tests/test_cli.py runs the
command itself), so that it shares compiled programs with the other blocks; every
other line runs in bash."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import shlex
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


def commands(code):
    """The logical lines of a bash block (backslash continuations joined)."""
    return [" ".join(line.split()) for line in code.replace("\\\n", " ").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_commands_join_continuations():
    assert commands("a \\\n  b\n# note\nc\n") == ["a b", "c"]


def run_command(line, env, where):
    words = shlex.split(line)
    if words[0] == "sigcnn":
        from sigcnn.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(words[1:])
        assert rc == 0, f"{where}: {line}\n{err.getvalue()[-3000:]}"
        assert "Traceback" not in err.getvalue()
    else:
        run = subprocess.run(["bash", "-e", "-c", line], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{where}: {line}\n{run.stderr[-3000:]}"


@pytest.mark.slow       # about 80 s: CI runs it after the suite (.ci/run)
@pytest.mark.optimized  # the all-shift evaluation of ResNet-18 is compute-bound
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
            for line in commands(code):
                run_command(line, env, f"own_network.md block {i}")
    report = (tmp_path / "results" / "report.html").read_text()
    assert "resnet18" in report
