"""Resumable, chunked shift tests (`sigcnn.shift_test.runs`) and label-free results."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from sigcnn import models
from sigcnn.shift_test import (
    ShiftTestResult,
    format_table,
    resumable_shift_test,
    run_shift_test,
)

OPTS = dict(protocols=("circular", "crop", "black"), n_pairs=4, sweep_images=2,
            chunk=48, n_resamples=100, consistency="crop")


@pytest.fixture(scope="module")
def setup():
    net = models.create("vgg_tiny", key=0, width=0.5, padding="zero")
    net.eval()
    x = np.asarray(jax.random.normal(jax.random.key(1), (7, 24, 24, 3)), np.float32)
    y = np.arange(7) % 10
    return net, x, y


def _strip(v):
    if isinstance(v, dict):
        return {k: _strip(u) for k, u in v.items() if k != "seconds"}
    if isinstance(v, list):
        return [_strip(u) for u in v]
    return v


def _close(a, b, path=""):
    """Equal structure; floats equal to float32 rounding (batch composition)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6), path
    else:
        assert a == b, path


def test_chunked_run_equals_one_call_and_resumes_identically(setup, tmp_path):
    net, x, y = setup
    key = jax.random.key(3)
    one = run_shift_test(net, x, y, key=key, **OPTS).to_dict()
    work = tmp_path / "w"
    calls = []

    def kill(name, done, total):
        calls.append(name)
        if name == "chunks" and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resumable_shift_test(net, x, y, key=key, work_dir=work, chunk_images=3,
                             progress=kill, **OPTS)
    assert sorted(os.listdir(work)) == ["manifest.json", "part-000000.json",
                                        "part-000000.npz", "part-000001.json",
                                        "part-000001.npz"]
    seen = []
    resumed = resumable_shift_test(net, x, y, key=key, work_dir=work,
                                   chunk_images=3,
                                   progress=lambda *a: seen.append(a), **OPTS)
    assert ("chunks reused", 2, 3) in seen and ("chunks", 3, 3) in seen
    # only the last chunk (images 6..6) was evaluated again
    assert {a[1] for a in seen if a[0] == "crop"} == {7}
    fresh = resumable_shift_test(net, x, y, key=key, work_dir=tmp_path / "f",
                                 chunk_images=3, **OPTS)
    assert _strip(resumed.to_dict()) == _strip(fresh.to_dict())
    _close(_strip(one), _strip(resumed.to_dict()))
    assert resumed.n_images == 7 and resumed.all_shifts.n_images == 7


def test_without_labels_accuracy_is_none_and_the_rest_is_kept(setup, tmp_path):
    net, x, y = setup
    key = jax.random.key(3)
    lab = run_shift_test(net, x, y, key=key, **OPTS)
    free = resumable_shift_test(net, x, None, key=key, work_dir=tmp_path,
                                chunk_images=4, **OPTS)
    assert not free.labelled
    for p, q in zip(free.protocols, lab.protocols):
        assert p.accuracy is None and p.accuracy_ci is None
        assert p.p_top1_change == q.p_top1_change
        assert p.mac == pytest.approx(q.mac, rel=1e-5)
    assert free.consistency.accuracy is None
    assert free.consistency.consistency == lab.consistency.consistency
    a = free.all_shifts
    assert a.robust_accuracy is None and a.accuracy_by_shift is None
    assert a.invariant_fraction == lab.all_shifts.invariant_fraction
    j = free.jaggedness
    assert j.reference == "top1"
    # the followed class is the top-1 of the first frame, so its p is the max there
    assert all(t[0] == c for t, c in zip(j.top1, j.labels))
    text = format_table(free)
    assert "accuracy needs labels" in text
    back = ShiftTestResult.from_dict(json.loads(json.dumps(free.to_dict())))
    assert back == free


def test_a_folder_of_another_run_is_refused(setup, tmp_path):
    net, x, y = setup
    key = jax.random.key(3)
    resumable_shift_test(net, x[:2], y[:2], key=key, work_dir=tmp_path,
                         chunk_images=2, **OPTS)
    with pytest.raises(ValueError, match="holds the chunks of a different run "
                                         r"\(settings"):
        resumable_shift_test(net, x[:2], y[:2], key=key, work_dir=tmp_path,
                             chunk_images=2, **{**OPTS, "n_pairs": 3})
    with pytest.raises(ValueError, match=r"different run \(images"):
        resumable_shift_test(net, x[2:4], y[:2], key=key, work_dir=tmp_path,
                             chunk_images=2, **OPTS)
    (tmp_path / "part-000000.npz").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="chunk 0 .* is unreadable"):
        resumable_shift_test(net, x[:2], y[:2], key=key, work_dir=tmp_path,
                             chunk_images=2, **OPTS)
    with pytest.raises(TypeError, match=r"unknown shift-test option\(s\) \[.n_pair.\]"):
        resumable_shift_test(net, x, y, key=key, work_dir=tmp_path, n_pair=3)
