"""Streaming shift tests over image folders: grain read-ahead, bounded memory,
resumption, several processes sharing one folder, and the progress rates.

Oracle everywhere: one uninterrupted, single-process, sequentially read run of
`resumable_shift_test` with the same chunks; its final result must be equal
exactly (every field but the timings). The slow cases run the ``sigcnn
shift-test`` command on 2,000 images and kill it (SIGKILL, SIGINT).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from test_shift_runs import _strip

import sigcnn as sc
from sigcnn import data
from sigcnn._progress import Progress
from sigcnn.shift_test import resumable_shift_test
from sigcnn.shift_test import runner as _runner

OPTS = dict(protocols=("crop", "circular"), n_pairs=3, sweep_images=2, chunk=24,
            n_resamples=50, consistency="crop")




def tiny_logits(x):
    """Two stride-2 convolutions and a dense layer on the flattened map: 5
    logits that move with small shifts (a flatten keeps the positions)."""
    rng = np.random.default_rng(0)
    w1 = jnp.asarray(rng.standard_normal((3, 3, 3, 4)) * 0.5, jnp.float32)
    w2 = jnp.asarray(rng.standard_normal((3, 3, 4, 4)) * 0.3, jnp.float32)
    h = jax.nn.relu(sc.conv(x, w1, stride=2, padding="circular"))
    h = jax.nn.relu(sc.conv(h, w2, stride=2, padding="circular"))
    flat = h.reshape(h.shape[0], -1)
    w3 = jnp.asarray(rng.standard_normal((flat.shape[1], 5)) * 0.3, jnp.float32)
    return flat @ w3


def write_pngs(root, n, size=16, *, classes=("a", "b"), seed=0):
    """n random RGB PNGs in class folders (image k in class k % len)."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        d = os.path.join(root, classes[k % len(classes)])
        os.makedirs(d, exist_ok=True)
        pixels = (rng.uniform(size=(size, size, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(d, f"{k:05d}.png"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    write_pngs(root, 44)
    return data.image_folder(root, size=16, preprocess="none")


@pytest.fixture(scope="module")
def oracle(folder, tmp_path_factory):
    """One uninterrupted, single-process run reading in the calling thread."""
    work = tmp_path_factory.mktemp("oracle")
    res = resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                               work_dir=work, chunk_images=4, read_threads=0,
                               **OPTS)
    return _strip(res.to_dict())


def test_the_oracle_sees_shift_changes(oracle):
    # the comparisons below would be weak on a network that never changes
    assert oracle["labelled"] and oracle["n_images"] == 44
    assert any(p["p_top1_change"] > 0 for p in oracle["protocols"])


def test_reading_ahead_equals_reading_in_turn(folder, oracle, tmp_path):
    res = resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                               work_dir=tmp_path, chunk_images=4, read_threads=3,
                               prefetch=6, **OPTS)
    assert _strip(res.to_dict()) == oracle


def test_reading_ahead_is_bounded_and_overlaps_the_evaluation(folder, tmp_path,
                                                              monkeypatch):
    """The reader is instrumented: every image read is counted when its read
    starts; at the end of each chunk's evaluation, the images started beyond
    that chunk are those read ahead: at least one (the reading overlaps the
    evaluation), at most `prefetch` (bounded, whatever the folder's size)."""
    lock = threading.Lock()
    started, ahead, sizes = [0], [], []
    real_image, real_evaluate = data.ImageFolder.image, _runner.Run.evaluate

    def image(self, i):
        with lock:
            started[0] += 1
        return real_image(self, i)

    def evaluate(self, images, start=0, progress=None):
        out = real_evaluate(self, images, start, progress)
        end = start + images.shape[0]
        deadline = time.monotonic() + 5.0    # the threads read while we wait
        while end < self.n and started[0] <= end and time.monotonic() < deadline:
            time.sleep(0.01)
        with lock:
            ahead.append(started[0] - end)
        sizes.append(images.shape[0])
        return out

    monkeypatch.setattr(data.ImageFolder, "image", image)
    monkeypatch.setattr(_runner.Run, "evaluate", evaluate)
    resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                         work_dir=tmp_path, chunk_images=4, read_threads=2,
                         prefetch=5, **OPTS)
    assert sizes == [4] * 11
    # the sweep reads its 2 images after the last chunk, on its own
    assert all(1 <= a <= 5 for a in ahead[:-1]), ahead
    assert ahead[-1] == 0
    assert started[0] == 44 + 2


def test_a_killed_run_resumes_and_recomputes_only_missing_chunks(folder, oracle,
                                                                 tmp_path):
    work = tmp_path / "w"

    def kill(name, done, total):
        if name == "chunks" and done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                             work_dir=work, chunk_images=4, progress=kill, **OPTS)
    kept = sorted(f for f in os.listdir(work) if f.startswith("part-"))
    assert kept == [f"part-{k:06d}.{e}" for k in range(4) for e in ("json", "npz")]
    stamps = {f: os.stat(work / f).st_mtime_ns for f in kept}
    events = []
    res = resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                               work_dir=work, chunk_images=4,
                               progress=lambda *a: events.append(a), **OPTS)
    assert _strip(res.to_dict()) == oracle
    assert {f: os.stat(work / f).st_mtime_ns for f in kept} == stamps
    assert events[0] == ("chunks reused", 4, 11)
    # evaluated again: images 16..43 only, 4 at a time
    assert [e[1] for e in events if e[0] == "crop"] == list(range(20, 45, 4))
    images = [e[1:] for e in events if e[0] == "images"]
    assert images == [(16, 44)] + [(min(16 + 4 * k, 44), 44) for k in range(1, 8)]
    assert ("shifts per image", 26, 26) in events   # 4 + 4 + 2 + 4 x 4


def test_two_processes_share_one_folder_and_process_0_merges(folder, oracle,
                                                             tmp_path, monkeypatch):
    """Process 1 runs in a thread; chunk k is evaluated by process k % 2."""
    owners, real = {}, _runner.Run.evaluate

    def evaluate(self, images, start=0, progress=None):
        owners[start // 4] = threading.current_thread().name
        return real(self, images, start, progress)

    monkeypatch.setattr(_runner.Run, "evaluate", evaluate)
    out = {}

    def process(index):
        out[index] = resumable_shift_test(
                tiny_logits, folder, key=jax.random.key(5), work_dir=tmp_path,
                chunk_images=4, process_index=index, process_count=2,
                wait_timeout=60, **OPTS)

    other = threading.Thread(target=process, args=(1,), name="p1")
    other.start()
    process(0)
    other.join()
    assert out[1] is None
    assert _strip(out[0].to_dict()) == oracle
    assert owners == {k: "p1" if k % 2 else threading.main_thread().name
                      for k in range(11)}
    beats = {f: json.loads((tmp_path / f).read_text()) for f in
             ("alive-0.json", "alive-1.json")}
    assert [b["processes"] for b in beats.values()] == [2, 2]
    # any number of processes resumes it: one process reuses every chunk
    events = []
    again = resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                                 work_dir=tmp_path, chunk_images=4,
                                 progress=lambda *a: events.append(a), **OPTS)
    assert _strip(again.to_dict()) == oracle
    assert events[0] == ("chunks reused", 11, 11)


def test_process_0_fails_clearly_when_another_goes_silent(folder, tmp_path):
    # process 1 was never started (or died): no heartbeat, its chunks missing
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"process 1 of 2 sent no heartbeat for "
                                           r"1 s while its chunks \[1, 3, 5, 7, 9\]"
                                           r" are missing"):
        resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                             work_dir=tmp_path, chunk_images=4, process_index=0,
                             process_count=2, wait_timeout=1, **OPTS)
    assert time.monotonic() - t0 < 60
    # and process 1 without process 0 (no manifest, no heartbeat)
    with pytest.raises(TimeoutError, match="process 0 of 2 .* the manifest.json"):
        resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                             work_dir=tmp_path / "empty", chunk_images=4,
                             process_index=1, process_count=2, wait_timeout=1,
                             **OPTS)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"read_threads": -1}, ValueError, "`read_threads` must be a non-negative int"),
    ({"prefetch": 2.5}, TypeError, "`prefetch` must be a non-negative int; got 2.5"),
    ({"process_index": 2, "process_count": 2}, ValueError,
     r"`process_index` must lie in \[0, process_count\) = \[0, 2\); got 2"),
    ({"process_count": 0}, ValueError, "`process_count` must be a positive int"),
    ({"wait_timeout": 0}, ValueError, "`wait_timeout` must be a positive number"),
])
def test_bad_streaming_and_process_arguments(folder, tmp_path, kwargs, error,
                                             message):
    with pytest.raises(error, match=message):
        resumable_shift_test(tiny_logits, folder, key=jax.random.key(5),
                             work_dir=tmp_path, **kwargs)
    assert not os.listdir(tmp_path)          # refused before any work


def test_stream_reads_in_order_and_refuses_bad_indices(folder):
    want = np.stack([folder.image(i) for i in (5, 0, 7)])
    for threads, ahead in ((0, 0), (3, 2)):
        it = folder.stream([5, 0, 7], num_threads=threads, prefetch=ahead)
        np.testing.assert_array_equal(np.stack(list(it)), want)
    with pytest.raises(ValueError, match=r"`indices` must lie in \[0, 44\); got 44"):
        folder.stream([0, 44])
    with pytest.raises(ValueError, match="`prefetch` must be a non-negative int"):
        folder.stream(prefetch=-2)


def _default_sigint():
    """For Popen(preexec_fn=...): the child starts with SIGINT's default action,
    so that its Python raises KeyboardInterrupt even when this test runs in a
    process that ignores SIGINT (a background job of a script)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_INTERRUPT = textwrap.dedent("""
    import os, signal, time
    from sigcnn.cli._common import interrupt_between_steps
    with interrupt_between_steps() as check:
        check()                                    # nothing pending: no-op
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)                            # the handler runs: a flag only
        print("ran on")
        try:
            check()
        except KeyboardInterrupt:
            print("check raised")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("second lost")
        except KeyboardInterrupt:
            print("second raised")
    print("restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C ignored stays ignored
    with interrupt_between_steps() as check:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        check()
    print("ignored", signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
""")


def test_ctrl_c_waits_for_the_next_step_and_twice_stops_at_once():
    run = subprocess.run([sys.executable, "-c", _INTERRUPT], capture_output=True,
                         text=True, timeout=120, preexec_fn=_default_sigint)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:5] == ["ran on", "check raised", "second raised",
                                           "restored True", "ignored True"]
    assert run.stderr.count("stopping at the next step (Ctrl-C again stops at "
                            "once)") == 1


def test_progress_shows_images_and_image_shifts_per_second():
    log = io.StringIO()
    with Progress(stream=log) as progress:
        progress("chunks reused", 1, 4)
        progress("images", 10, 40)
        time.sleep(0.05)
        progress("shifts per image", 26, 26)
        progress("images", 20, 40)
        progress("chunks", 2, 4)
        time.sleep(0.05)
        progress("images", 30, 40)
        progress("chunks", 3, 4)
    lines = log.getvalue().splitlines()
    assert lines[0] == "  1/4 chunks reused from an earlier run"
    # the rate of the second line is measured after the first chunk: 10 / ~0.05 s
    for line in lines[1:]:
        assert " images/s, " in line and " images·shifts/s (" in line, line
    rate = float(lines[2].split(", ")[1].split()[0])
    shifts = float(lines[2].split(", ")[2].split()[0].replace(",", ""))
    assert 20 < rate < 400 and shifts == pytest.approx(26 * rate, rel=0.02)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with Progress(stream=tty) as progress:
        progress("shifts per image", 26, 26)
        progress("images", 0, 40)
        time.sleep(0.05)
        progress("images", 20, 40)
        time.sleep(0.05)
        progress("images", 40, 40)
    drawn = tty.getvalue()
    assert "images" in drawn and "40/40" in drawn and "images/s" in drawn
    assert "images·shifts/s" in drawn


# ---------------------------------------------------------------------------
# The command, killed and resumed (slow: three runs of 2,000 images)
# ---------------------------------------------------------------------------

NET = textwrap.dedent('''
    import torch

    def build():
        torch.manual_seed(0)
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                             nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
''')


def net_and_images(root, n, *, seed):
    """`root`/stream_tinynet.py (the torch network NET) and `root`/imgs, n labelled
    PNGs in three classes; returns root. Skips without torch."""
    pytest.importorskip("torch")
    (root / "stream_tinynet.py").write_text(NET)
    write_pngs(root / "imgs", n, classes=("c0", "c1", "c2"), seed=seed)
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return net_and_images(tmp_path_factory.mktemp("big"), 2000, seed=1)


def _command(root, out, *extra, chunk_images=50):
    return [sys.executable, "-m", "sigcnn.cli", "shift-test", "--torch",
            "stream_tinynet:build", "--images", str(root / "imgs"), "--size", "16",
            "--normalize", "none", "--protocols", "crop,circular", "--n-pairs", "3",
            "--sweep-images", "2", "--chunk-images", str(chunk_images), "--batch",
            "64", "--out", str(out), *extra]


def _env(root):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), os.environ.get("PYTHONPATH", "")]), PYTHONUNBUFFERED="1")
    env.pop("XLA_FLAGS", None)
    return env


def _finished(out) -> int:
    chunks = out / "chunks"
    return sum(f.endswith(".json") and f.startswith("part-")
               for f in os.listdir(chunks)) if chunks.is_dir() else 0


def _start_and_stop(root, out, sig, after: int):
    """Starts the command, sends `sig` once `after` chunks are on disk."""
    proc = subprocess.Popen(_command(root, out), env=_env(root), cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 300
    while _finished(out) < after and proc.poll() is None:
        assert time.monotonic() < deadline, "no chunk written in 300 s"
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def _result(out):
    record = json.loads((out / "shift_test.json").read_text())
    return _strip({k: v for k, v in record.items() if k != "table"})


@pytest.mark.slow
def test_the_command_killed_and_interrupted_resumes_to_the_same_numbers(big):
    full = big / "full"
    run = subprocess.run(_command(big, full), env=_env(big), cwd=big,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "images·shifts/s" in run.stderr
    want = _result(full)
    assert want["n_images"] == 2000
    assert any(p["p_top1_change"] > 0 for p in want["protocols"])

    out = big / "killed"
    rc, _, _ = _start_and_stop(big, out, signal.SIGKILL, after=5)
    assert rc == -signal.SIGKILL
    n_killed = _finished(out)
    assert 5 <= n_killed < 40
    rc, _, err = _start_and_stop(big, out, signal.SIGINT, after=n_killed + 3)
    assert rc == 130, err[-3000:]
    assert "interrupted; finished work is kept, and the same command resumes it" \
        in err
    assert "Traceback" not in err
    n_before = _finished(out)
    parts = sorted(f for f in os.listdir(out / "chunks") if f.startswith("part-"))
    stamps = {f: os.stat(out / "chunks" / f).st_mtime_ns for f in parts}
    run = subprocess.run(_command(big, out), env=_env(big), cwd=big,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{n_before}/40 chunks reused from an earlier run" in run.stderr
    # only the missing chunks were computed: the others are untouched
    assert {f: os.stat(out / "chunks" / f).st_mtime_ns for f in parts} == stamps
    assert run.stderr.count(" done, ") == 40 - n_before
    assert _result(out) == want
