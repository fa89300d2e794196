"""``sigcnn shift-test --distributed``: processes that meet through
jax.distributed and share one output folder.

Oracle: the same command on one process; the merged result of two processes
must equal it exactly (every field but the timings). Two local processes on
CPU, on 127.0.0.1 and a free port. The flag checks run in this process.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
from test_streaming import _command as _streaming_command
from test_streaming import _env, _strip, net_and_images

from sigcnn import cli


@pytest.mark.parametrize("argv, message", [
    (["--process-id", "1"], "argument --process-id: only with --distributed; got "
                            "--process-id 1"),
    (["--coordinator", "h:1"], "argument --coordinator: only with --distributed"),
    (["--distributed", "--coordinator", "nohost"],
     "argument --coordinator: expected HOST:PORT with a port in 1..65535; got "
     "'nohost'"),
    (["--distributed", "--coordinator", "h:70000"], "expected HOST:PORT"),
    (["--distributed", "--num-processes", "2", "--process-id", "2"],
     "argument --process-id: must be below --num-processes 2; got 2"),
    (["--distributed", "--wait-timeout", "0"],
     "argument --wait-timeout: must be a positive number; got '0'"),
    (["--read-threads", "-1"], "argument --read-threads: must be a non-negative"),
])
def test_process_flag_mistakes_end_in_one_line(tmp_path, capsys, argv, message):
    rc = cli.main(["shift-test", "--torch", "m:build", "--images", str(tmp_path),
                   "--out", str(tmp_path / "o"), *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_distributed_needs_an_image_folder(tmp_path, capsys):
    rc = cli.main(["shift-test", "--checkpoint", str(tmp_path), "--distributed",
                   "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "argument --distributed: only with --images" in capsys.readouterr().err


def test_help_explains_the_processes_and_the_read_ahead(capsys):
    assert cli.main(["shift-test", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--distributed", "jax.distributed.initialize", "k mod N = I",
                  "process 0 waits for every chunk", "--read-threads",
                  "bounds the memory", "images/s"):
        assert words in text, words


# ---------------------------------------------------------------------------
# Two processes (slow: every process imports torch and compiles)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return net_and_images(tmp_path_factory.mktemp("dist"), 240, seed=2)


def _command(root, out, *extra):
    return _streaming_command(root, out, *extra, chunk_images=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root, out, index, port, *extra):
    return subprocess.Popen(
        _command(root, out, "--distributed", "--coordinator",
                 f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
                 str(index), *extra),
        env=_env(root), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _result(out):
    record = json.loads((out / "shift_test.json").read_text())
    return _strip(record)


@pytest.fixture(scope="module")
def oracle(files):
    out = files / "one"
    run = subprocess.run(_command(files, out), env=_env(files), cwd=files,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return _result(out)


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(files, oracle):
    out, port = files / "two", _free_port()
    procs = [_start(files, out, i, port) for i in (0, 1)]
    logs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, logs):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    assert _result(out) == oracle
    assert any(p["p_top1_change"] > 0 for p in oracle["protocols"])
    # each computed its 6 of the 12 chunks; only process 0 wrote the outputs
    assert "[0] chunk 6/6 done" in logs[0][1] and "[1] chunk 6/6 done" in logs[1][1]
    assert "process 1 of 2: its chunks are in" in logs[1][1]
    assert "wrote" in logs[0][0] and "wrote" not in logs[1][0]


@pytest.mark.slow
def test_a_dead_process_is_reported_and_the_run_resumes(files, oracle):
    out, port = files / "dead", _free_port()
    procs = [_start(files, out, i, port, "--wait-timeout", "5") for i in (0, 1)]
    chunk = out / "chunks" / "part-000001.json"          # process 1's first
    deadline = time.monotonic() + 300
    while not chunk.exists() and procs[1].poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].communicate(timeout=60)
    t0 = time.monotonic()
    _, err = procs[0].communicate(timeout=300)
    assert procs[0].returncode == 1, err[-3000:]
    assert "sigcnn shift-test: error: process 1 of 2 sent no heartbeat for 5 s " \
           "while its chunks [" in err
    assert "run the same command again on every process to resume" in err
    assert "Traceback" not in err and time.monotonic() - t0 < 200
    assert not (out / "shift_test.json").exists()
    # resumed by the same two processes: the numbers of one uninterrupted run
    port = _free_port()
    procs = [_start(files, out, i, port) for i in (0, 1)]
    logs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][1][-2000:]
    assert "6/6 chunks reused from an earlier run" in logs[0][1]
    assert _result(out) == oracle
