"""Tests of the ``sigcnn`` command line (sigcnn.cli)."""

import contextlib
import io
import json
import os
import subprocess
import sys

import jax
import pytest

from sigcnn import cli, verify


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def verify_run(tmp_path_factory):
    """One full `sigcnn verify --json --plots` run shared by the tests."""
    tmp = tmp_path_factory.mktemp("verify")
    json_path = tmp / "rows.json"
    plots = tmp / "figs" / "nested"              # created by the command
    code, out, err = _run(["verify", "--json", str(json_path),
                           "--plots", str(plots)])
    return {"code": code, "out": out, "err": err, "json": json_path,
            "plots": plots}


def test_verify_exits_0_and_prints_one_row_per_check(verify_run):
    assert verify_run["code"] == 0, verify_run["out"] + verify_run["err"]
    lines = verify_run["out"].splitlines()
    assert lines[0].split() == ["check", "predicted", "measured", "result"]
    assert set(lines[1]) <= {"-", " "}
    rows = [ln for ln in lines if ln.endswith(("PASS", "FAIL"))]
    data = json.loads(verify_run["json"].read_text())
    assert len(rows) == data["n_checks"] == len(data["checks"]) >= 16
    for row, check in zip(rows, data["checks"]):
        assert row.startswith(check["name"])
        assert check["predicted"] in row and check["measured"] in row
        assert row.endswith("PASS")
    n = data["n_checks"]
    assert f"{n}/{n} checks passed" in verify_run["out"]
    assert "(float64, seed 0)" in verify_run["out"]


def test_verify_json_content(verify_run):
    data = json.loads(verify_run["json"].read_text())
    assert data["command"] == "verify"
    assert data["passed"] is True and data["n_passed"] == data["n_checks"]
    assert data["seed"] == 0 and data["dtype"] == "float64"
    assert 0 < data["seconds"] < 600
    names = [c["name"] for c in data["checks"]]
    assert "strided_vs_undecimated/circular" in names
    assert "maxpool_zhang_example" in names
    by = {c["name"]: c for c in data["checks"]}
    assert by["tone_above_nyquist"]["detail"]["errors"] == pytest.approx(
        [2.0, 2.0], abs=1e-9)
    assert by["maxpool_zhang_example"]["detail"]["pooled_shifted"] == [1, 1, 1, 1]
    for c in data["checks"]:
        assert set(c) == {"name", "predicted", "measured", "passed", "detail"}
        assert c["passed"] is True
        if "dtype" in c["detail"]:
            assert c["detail"]["dtype"] == "float64"


def test_verify_writes_png_figures(verify_run):
    names = sorted(os.listdir(verify_run["plots"]))
    assert names == ["blurpool_response.png", "relu_spectrum.png",
                     "shiftability_sweep.png"]
    for name in names:
        blob = (verify_run["plots"] / name).read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 20_000
    for name in names:
        assert f"wrote {verify_run['plots'] / name}" in verify_run["out"]


def test_verify_exits_1_when_a_check_fails(monkeypatch, tmp_path):
    def failing(**_):
        return verify.Check("maxpool_zhang_example", "[0,1,0,1]", "[9,9,9,9]",
                            False, {"note": "forced failure"})

    monkeypatch.setattr(verify, "check_maxpool_zhang", failing)
    json_path = tmp_path / "out.json"
    with jax.enable_x64(False):        # the command switches x64 on by itself
        code, out, _ = _run(["verify", "--json", str(json_path)])
        assert not jax.config.jax_enable_x64        # and restores it
    assert code == 1
    row = [ln for ln in out.splitlines()
           if ln.startswith("maxpool_zhang_example")]
    assert row and row[0].endswith("FAIL")
    data = json.loads(json_path.read_text())
    assert data["passed"] is False
    assert data["n_passed"] == data["n_checks"] - 1
    assert {c["detail"].get("dtype") for c in data["checks"]} - {None} == {
        "float64"}


@pytest.fixture
def no_suite(monkeypatch):
    """Bad arguments must be rejected before the suite runs."""
    def boom(**_):
        raise AssertionError("the suite ran despite bad arguments")

    monkeypatch.setattr(verify, "run_all", boom)


@pytest.mark.parametrize("argv,message", [
    (["verify", "--seed", "-1"],
     "argument --seed: must be a non-negative integer; got '-1'"),
    (["verify", "--seed", "abc"],
     "argument --seed: must be a non-negative integer; got 'abc'"),
    (["verify", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments(no_suite, argv, message):
    code, out, err = _run(argv)
    assert code == 2
    # one line, no usage block and no traceback
    (line,) = err.strip().splitlines()
    assert line.startswith("sigcnn") and ": error: " in line and message in line


def test_json_into_missing_folder(no_suite, tmp_path):
    target = tmp_path / "missing" / "out.json"
    code, _, err = _run(["verify", "--json", str(target)])
    assert code == 2
    assert "argument --json: the folder" in err and "does not exist" in err


def test_json_is_a_directory(no_suite, tmp_path):
    code, _, err = _run(["verify", "--json", str(tmp_path)])
    assert code == 2
    assert f"argument --json: {str(tmp_path)!r} is a directory" in err


def test_plots_is_a_file(no_suite, tmp_path):
    target = tmp_path / "figure.png"
    target.write_text("not a folder")
    code, _, err = _run(["verify", "--plots", str(target)])
    assert code == 2
    assert "argument --plots:" in err and "is not a directory" in err


def test_no_command_prints_help(no_suite):
    code, out, err = _run([])
    assert code == 2
    assert "verify" in err and "usage: sigcnn" in err


def test_help_exits_0(no_suite):
    code, out, _ = _run(["verify", "--help"])
    assert code == 0
    assert "--json FILE" in out and "--plots DIR" in out and "--seed N" in out


def test_module_runs_as_a_script():
    # `python -m sigcnn.cli` works; bad arguments fail before the suite runs.
    proc = subprocess.run([sys.executable, "-m", "sigcnn.cli", "verify",
                           "--seed", "x"], capture_output=True, text=True,
                          timeout=120,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 2
    assert "must be a non-negative integer" in proc.stderr


def test_format_table_aligns_columns():
    text = cli.format_table([("a", "bb", "c", "PASS"),
                             ("long name", "x", "yyyy", "FAIL")])
    lines = text.splitlines()
    assert len(lines) == 4
    starts = [lines[0].index(h) for h in ("predicted", "measured", "result")]
    assert lines[2].index("bb") == starts[0]
    assert lines[3].index("yyyy") == starts[1]
    assert lines[3].index("FAIL") == starts[2]
    assert lines[1].split() == ["-" * 9, "-" * 9, "-" * 8, "-" * 6]
