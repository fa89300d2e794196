"""Tests for sigcnn.shift_test (the `sigcnn shift-test` runner) and its figures.

References are built independently of the runner: frames with jnp.roll, NumPy
slicing and pasting, jax.image.resize and sigcnn.fourier_shift, logits from the
network called directly, and the metrics recomputed with NumPy loops.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sigcnn import fourier_shift, models
from sigcnn.shift_test import (
    DEFAULT_PROTOCOLS,
    PROTOCOLS,
    AllShiftsResult,
    ProtocolResult,
    ShiftTestResult,
    format_table,
    run_shift_test,
)

N, H, W, C = 8, 24, 24, 3
STRIDE = 4          # total stride of vgg_tiny
N_PAIRS = 2
KEY = jax.random.key(0)
# Float tolerance of logits-derived values between differently batched calls:
# float32 rounding on CPU; accelerators may run float32 convolutions in TF32.
TOL = 1e-5 if jax.default_backend() == "cpu" else 1e-2


# ---------------------------------------------------------------------------
# Networks and data
# ---------------------------------------------------------------------------


def _images(n=N, h=H, w=W, seed=1):
    return jax.random.normal(jax.random.key(seed), (n, h, w, C), jnp.float32)


def _standardized(net, x):
    """net's logits, standardized per class on `x` so that top-1 varies.

    Subtracting and dividing by constants keeps every shift property of net.
    A random-weight GAP network otherwise predicts one class for all inputs.
    """
    net.eval()
    logits = net(x)
    mu = jnp.mean(logits, axis=0)
    sd = jnp.std(logits, axis=0) + 1e-3

    def f(z):
        return (net(z) - mu) / sd

    return f


@pytest.fixture(scope="module")
def max_net():
    x = _images()
    net = models.create("vgg_tiny", key=0, padding="circular", downsample="max")
    return _standardized(net, x), x


@pytest.fixture(scope="module")
def full_result(max_net):
    f, x = max_net
    labels = np.asarray(jnp.argmax(f(x[:, ::-1]), axis=-1))   # not all correct
    events = []
    res = run_shift_test(
            f, x, labels, key=KEY, protocols=PROTOCOLS, n_pairs=N_PAIRS,
            chunk=12, sweep_images=3, sweep_protocol="circular",
            progress=lambda *a: events.append(a))
    return res, labels, events


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_pair_stats(logits, pairs, labels):
    """Naive loops: P(top-1 change), MAC (first frame's class), accuracy."""
    change, mac, correct = [], [], []
    for n in range(logits.shape[0]):
        for i, j in pairs:
            a, b = logits[n, i], logits[n, j]
            k = int(np.argmax(a))
            change.append(float(k != int(np.argmax(b))))
            mac.append(abs(np_softmax(a)[k] - np_softmax(b)[k]))
            correct.append(float(k == labels[n]))
    return np.mean(change), np.mean(mac), np.mean(correct)


def _logits(f, frames):
    """Reference logits of frames [N, T, h, w, C], one frame index at a time."""
    run = jax.jit(f)
    return np.stack([np.asarray(run(frames[:, t])) for t in range(frames.shape[1])],
                    axis=1)


def _paste(obj, offsets, canvas, fill=0.0):
    """NumPy reference of the embed protocol: objects [N, h, w, C] per offset."""
    obj = np.asarray(obj)
    n, h, w, c = obj.shape
    out = np.full((n, len(offsets), canvas[0], canvas[1], c), fill, obj.dtype)
    for t, (oy, ox) in enumerate(offsets):
        out[:, t, oy:oy + h, ox:ox + w] = obj
    return out


def _resize(x, size):
    return np.asarray(jax.image.resize(x, (x.shape[0], size[0], size[1], x.shape[3]),
                                       method="linear", antialias=True))


def _check_protocol(res, f, frames, labels):
    logits = _logits(f, jnp.asarray(frames))
    pairs = np.asarray(res.geometry["pairs"])
    p, mac, acc = np_pair_stats(logits, pairs, labels)
    assert res.p_top1_change == p
    assert res.mac == pytest.approx(mac, abs=TOL)
    assert res.accuracy == pytest.approx(acc, abs=1e-12)
    return logits


# ---------------------------------------------------------------------------
# Protocol geometry and metrics against references
# ---------------------------------------------------------------------------


def test_circular_matches_rolls_and_records_diagonal_pairs(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    p = res.protocol("circular")
    offsets = [[k, k] for k in range(N_PAIRS + 1)]
    assert p.geometry["protocol"] == "circular"
    assert p.geometry["offsets"] == offsets
    assert p.geometry["pairs"] == [[k, k + 1] for k in range(N_PAIRS)]
    assert p.geometry["direction"] == "diagonal" and p.geometry["step"] == 1
    frames = np.stack([np.roll(np.asarray(x), o, axis=(1, 2)) for o in offsets], 1)
    logits = _check_protocol(p, f, frames, labels)
    assert p.n_images == N and p.pairs_per_image == N_PAIRS
    assert p.n_pairs == N * N_PAIRS
    # Per-pair rates average to the overall rate.
    assert np.mean(p.p_by_pair) == pytest.approx(p.p_top1_change)
    top = logits.argmax(-1)
    assert list(p.p_by_pair) == pytest.approx(
            [np.mean(top[:, k] != top[:, k + 1]) for k in range(N_PAIRS)])


def test_subpixel_matches_fourier_half_pixel_shifts(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    p = res.protocol("subpixel")
    steps = [0.5 * k for k in range(N_PAIRS + 1)]
    assert p.geometry["protocol"] == "fourier"
    assert p.geometry["offsets"] == [[s, s] for s in steps]
    frames = np.stack([np.asarray(fourier_shift(x, (s, s))) for s in steps], 1)
    _check_protocol(p, f, frames, labels)


def test_crop_resizes_then_takes_windows_at_authors_offsets(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    p = res.protocol("crop")
    margin = 10
    center = (margin - 1) // 2                  # the authors' centring
    first = center - N_PAIRS // 2
    offsets = [[first + k, first + k] for k in range(N_PAIRS + 1)]
    assert p.geometry["offsets"] == offsets
    assert p.geometry["resized_to"] == [H + margin, W + margin]
    assert p.geometry["input_size"] == [H + margin, W + margin]
    assert p.geometry["output_size"] == [H, W]
    assert p.geometry["resize_method"] == "linear"
    big = _resize(x, (H + margin, W + margin))
    frames = np.stack([big[:, oy:oy + H, ox:ox + W] for oy, ox in offsets], 1)
    _check_protocol(p, f, frames, labels)


def test_black_embeds_downscaled_image_in_zero_canvas(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    p = res.protocol("black")
    obj = (int(H / 1.6), int(W / 1.6))
    margin = H - obj[0]
    first = (margin - 1) // 2 - N_PAIRS // 2
    offsets = [(first + k, first + k) for k in range(N_PAIRS + 1)]
    g = p.geometry
    assert g["protocol"] == "embed" and g["fill"] == 0.0
    assert g["offsets"] == [list(o) for o in offsets]
    assert g["object_sizes"] == [list(obj)] * (N_PAIRS + 1)
    assert g["output_size"] == [H, W] and g["inpaint"] is None
    frames = _paste(_resize(x, obj), offsets, (H, W))
    _check_protocol(p, f, frames, labels)


def test_inpaint_records_normalized_convolution(full_result):
    res, _, _ = full_result
    g = res.protocol("inpaint").geometry
    assert g["inpaint"] == "normalized_conv"
    assert g["inpaint_max_iter"] == 80 and g["inpaint_max_unfilled"] == 200
    assert g["offsets"] == res.protocol("black").geometry["offsets"]


def test_scale_grows_centred_object_by_one_pixel(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    p = res.protocol("scale")
    h0 = int(H / 1.6)
    sizes = [h0 + k for k in range(N_PAIRS + 1)]
    assert p.geometry["object_sizes"] == [[s, s] for s in sizes]
    assert p.geometry["offsets"] == [[(H - s) // 2] * 2 for s in sizes]
    frames = np.concatenate([
            _paste(_resize(x, (s, s)), [((H - s) // 2, (H - s) // 2)], (H, W))
            for s in sizes], axis=1)
    _check_protocol(p, f, frames, labels)


def test_confidence_intervals_bracket_estimates(full_result):
    res, _, _ = full_result
    for p in res.protocols:
        for est, ci in ((p.p_top1_change, p.p_top1_change_ci), (p.mac, p.mac_ci),
                        (p.accuracy, p.accuracy_ci)):
            assert 0.0 <= ci[0] <= est <= ci[1] <= 1.0
    c = res.consistency
    assert c.consistency_ci[0] <= c.consistency <= c.consistency_ci[1]
    a = res.all_shifts
    assert a.robust_accuracy_ci[0] <= a.robust_accuracy <= a.robust_accuracy_ci[1]
    assert (a.invariant_fraction_ci[0] <= a.invariant_fraction
            <= a.invariant_fraction_ci[1])


def test_random_weight_max_pool_net_changes_on_one_pixel_shifts(full_result):
    # The standardized random network is far from invariant to 1-px rolls.
    assert full_result[0].protocol("circular").p_top1_change > 0


# ---------------------------------------------------------------------------
# Consistency, all shifts, jaggedness
# ---------------------------------------------------------------------------


def test_consistency_matches_recorded_random_offsets(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    c = res.consistency
    m = round(H * 32 / 224)
    assert c.mode == "circular" and c.max_shift == m
    off = np.asarray(c.offsets)
    assert off.shape == (N, 2, 2)
    assert off.min() >= -m and off.max() < m
    run = jax.jit(f)
    agree, correct = [], []
    for n in range(N):
        tops = [int(np.argmax(run(jnp.roll(x[n:n + 1], tuple(o), axis=(1, 2)))))
                for o in off[n]]
        agree.append(tops[0] == tops[1])
        correct += [t == labels[n] for t in tops]
    assert c.consistency == np.mean(agree)
    assert c.accuracy == pytest.approx(np.mean(correct))


def test_consistency_is_reproducible_from_the_key(max_net):
    f, x = max_net
    kw = dict(protocols=(), all_shifts=False, sweep_images=0)
    r1 = run_shift_test(f, x, np.zeros(N, int), key=jax.random.key(5), **kw)
    r2 = run_shift_test(f, x, np.zeros(N, int), key=jax.random.key(5), **kw)
    r3 = run_shift_test(f, x, np.zeros(N, int), key=jax.random.key(6), **kw)
    assert r1.consistency.offsets == r2.consistency.offsets
    assert r1.consistency.offsets != r3.consistency.offsets


def test_crop_consistency_black_sweep_and_bootstrap_p(max_net):
    f, x = max_net
    labels = np.arange(N) % 3
    res = run_shift_test(f, x, labels, key=KEY, protocols=("circular",),
                         n_pairs=N_PAIRS, p_ci="bootstrap",
                         consistency="crop", consistency_max_shift=5,
                         all_shifts=False, sweep_images=[5, 2],
                         sweep_protocol="black")
    p = res.protocol("circular")
    assert p.p_ci_method == "bootstrap"
    assert p.p_top1_change_ci[0] <= p.p_top1_change <= p.p_top1_change_ci[1]
    # Zhang's protocol: windows of the image resized to (H + m, W + m).
    c = res.consistency
    off = np.asarray(c.offsets)
    assert c.mode == "crop" and off.min() >= 0 and off.max() < 5
    assert c.geometry["resized_to"] == [H + 5, W + 5]
    big = _resize(x, (H + 5, W + 5))
    run = jax.jit(f)
    tops = np.array([[np.argmax(run(jnp.asarray(big[n:n + 1, oy:oy + H, ox:ox + W])))
                      for oy, ox in off[n]] for n in range(N)])
    assert c.consistency == np.mean(tops[:, 0] == tops[:, 1])
    # The paper's Figure 1 sweep: the embedded object moves across the canvas.
    j = res.jaggedness
    obj = int(H / 1.6)
    margin = H - obj
    assert j.protocol == "black" and j.indices == (5, 2) and j.labels == (2, 2)
    assert j.shifts == tuple(range(margin + 1))
    assert j.offsets == tuple((margin // 2, t) for t in range(margin + 1))
    frames = _paste(_resize(x[np.array([5, 2])], (obj, obj)), j.offsets, (H, W))
    logits = _logits(f, jnp.asarray(frames))
    np.testing.assert_allclose(j.p_correct, np_softmax(logits)[..., 2], atol=TOL)


def test_all_shifts_matches_brute_rolls(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    a = res.all_shifts
    assert a.method == "atrous" and a.fallback_reason is None
    assert a.extent == (STRIDE, STRIDE)
    run = jax.jit(f)
    tops = np.stack([[np.argmax(run(jnp.roll(x, (ty, tx), axis=(1, 2))), axis=-1)
                      for tx in range(STRIDE)] for ty in range(STRIDE)])  # [S,S,N]
    correct = tops == labels[None, None]
    assert a.robust_accuracy == np.mean(correct.all(axis=(0, 1)))
    assert a.invariant_fraction == np.mean((tops == tops[:1, :1]).all(axis=(0, 1)))
    assert a.accuracy == np.mean(correct[0, 0])
    np.testing.assert_allclose(a.accuracy_by_shift, correct.mean(axis=2))


def test_jaggedness_sweep_matches_reference(full_result, max_net):
    res, labels, _ = full_result
    f, x = max_net
    j = res.jaggedness
    assert j.protocol == "circular" and j.axis == "horizontal"
    assert j.indices == (0, 1, 2) and j.shifts == tuple(range(W))
    run = jax.jit(f)
    for e, i in enumerate(j.indices):
        logits = np.stack([np.asarray(run(jnp.roll(x[i:i + 1], t, axis=2)))[0]
                           for t in range(W)])
        p = np_softmax(logits)[:, labels[i]]
        np.testing.assert_allclose(j.p_correct[e], p, atol=TOL)
        top = logits.argmax(-1)
        assert list(j.top1[e]) == top.tolist()
        assert j.flips[e] == int(np.sum(top[1:] != top[:-1]))


def test_progress_reports_every_stage_up_to_its_total(full_result):
    _, _, events = full_result
    names = [e[0] for e in events]
    for name in list(PROTOCOLS) + ["consistency", "all_shifts", "jaggedness"]:
        assert name in names
        done = [e[1] for e in events if e[0] == name]
        total = {e[2] for e in events if e[0] == name}
        assert len(total) == 1 and done[-1] == total.pop()
        assert done == sorted(done)
    # chunk=12 frames, 3 frames per image: groups of 4 images -> 2 reports.
    assert [e[1:] for e in events if e[0] == "circular"] == [(4, N), (8, N)]


# ---------------------------------------------------------------------------
# Exact invariances
# ---------------------------------------------------------------------------


def test_shifts_by_multiples_of_total_stride_never_change_top1(max_net):
    f, x = max_net
    labels = np.zeros(N, int)
    res = run_shift_test(f, x, labels, key=KEY, protocols=("circular",),
                         n_pairs=3, step=STRIDE, consistency=None,
                         all_shifts=False, sweep_images=0)
    p = res.protocol("circular")
    assert p.geometry["offsets"] == [[STRIDE * k] * 2 for k in range(4)]
    assert p.p_top1_change == 0.0
    assert p.mac < 1e-5
    horizontal = run_shift_test(f, x, labels, key=KEY, protocols=("circular",),
                                n_pairs=3, step=2 * STRIDE, direction="horizontal",
                                consistency=None, all_shifts=False, sweep_images=0)
    h = horizontal.protocol("circular")
    assert h.geometry["offsets"] == [[0, 2 * STRIDE * k] for k in range(4)]
    assert h.p_top1_change == 0.0


def test_nnx_module_without_downsampling_is_exactly_invariant():
    x = _images()
    net = models.create("vgg_tiny", key=3, padding="circular", downsample="none")
    res = run_shift_test(net, x, np.zeros(N, int), key=KEY, protocols=("circular",),
                         n_pairs=N_PAIRS, consistency="circular",
                         all_shifts_extent=3, sweep_images=0)
    p = res.protocol("circular")
    assert p.p_top1_change == 0.0
    assert p.mac < 1e-6
    assert res.consistency.consistency == 1.0
    assert res.all_shifts.extent == (3, 3)
    assert res.all_shifts.invariant_fraction == 1.0
    # The module is evaluated as is: same logits as calling it.
    net.eval()
    top = np.argmax(np.asarray(net(x)), axis=-1)
    assert p.accuracy == np.mean(top == 0)


def test_aps_network_runs_atrous_exactly_and_is_invariant():
    # Data-dependent sampling has no undecimated form; all_shifts evaluates it
    # phase by phase from there on (certified against brute force by the runner).
    x = _images()
    net = models.create("vgg_tiny", key=0, padding="circular", downsample="aps")
    f = _standardized(net, x)
    res = run_shift_test(f, x, np.zeros(N, int), key=KEY, protocols=(),
                         consistency=None, sweep_images=0)
    a = res.all_shifts
    assert a.method == "atrous" and a.fallback_reason is None
    assert a.extent == (STRIDE, STRIDE)
    # APS with circular padding: the output is invariant to circular shifts.
    assert a.invariant_fraction == 1.0
    brute = run_shift_test(f, x, np.zeros(N, int), key=KEY, protocols=(),
                           consistency=None, sweep_images=0,
                           all_shifts_method="brute").all_shifts
    assert brute.invariant_fraction == 1.0
    assert brute.robust_accuracy == a.robust_accuracy


def test_chunk_size_does_not_change_results(max_net, full_result):
    f, x = max_net
    res, labels, _ = full_result
    small = run_shift_test(f, x, labels, key=KEY, protocols=("circular",),
                           n_pairs=N_PAIRS, chunk=7, consistency=None,
                           all_shifts=False, sweep_images=0)
    ref = res.protocol("circular")
    got = small.protocol("circular")
    assert got.p_top1_change == ref.p_top1_change
    assert got.p_by_pair == pytest.approx(ref.p_by_pair)
    assert got.mac == pytest.approx(ref.mac, abs=TOL)


def test_crop_without_resize_uses_smaller_windows(max_net):
    f = max_net[0]
    x = _images(h=20, w=20)
    res = run_shift_test(f, x, np.zeros(N, int), key=KEY, protocols=("crop",),
                         crop_resize=False, crop_margin=9, n_pairs=N_PAIRS,
                         consistency=None, all_shifts=False, sweep_images=0)
    g = res.protocol("crop").geometry
    assert g["resized_to"] is None
    assert g["output_size"] == [11, 11] and g["input_size"] == [20, 20]
    first = (9 - 1) // 2 - N_PAIRS // 2
    frames = np.stack([np.asarray(x)[:, first + k:first + k + 11,
                                     first + k:first + k + 11]
                       for k in range(N_PAIRS + 1)], 1)
    _check_protocol(res.protocol("crop"), f, frames, np.zeros(N, int))


# ---------------------------------------------------------------------------
# Results: JSON, table
# ---------------------------------------------------------------------------


def test_results_round_trip_through_json(full_result):
    res, _, _ = full_result
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back == d
    again = ShiftTestResult.from_dict(back)
    assert again == res
    assert again.to_dict() == d
    assert isinstance(again.protocols[0], ProtocolResult)
    assert isinstance(again.all_shifts, AllShiftsResult)
    assert back["settings"]["protocols"] == list(PROTOCOLS)
    assert back["settings"]["n_pairs"] == N_PAIRS


def test_results_are_frozen(full_result):
    res = full_result[0]
    with pytest.raises(Exception, match="cannot assign"):
        res.n_images = 3


def test_table_lists_protocols_with_intervals(full_result):
    res, _, _ = full_result
    text = format_table(res)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["protocol", "P(top-1"]
    for p in res.protocols:
        row = next(line for line in lines if line.startswith(p.name + " "))
        lo, hi = p.p_top1_change_ci
        assert f"{p.p_top1_change:.3f} [{lo:.3f}, {hi:.3f}]" in row
        assert f"{p.mac:.3f} [{p.mac_ci[0]:.3f}, {p.mac_ci[1]:.3f}]" in row
        assert row.split()[-2:] == [str(N), str(N * N_PAIRS)]
    assert "random pairs (circular" in text
    assert f"{1 - res.consistency.consistency:.3f}" in text
    assert "atrous" in text and f"{STRIDE}x{STRIDE}" in text
    assert res.table() == text
    both = format_table({"base": res, "copy": res.to_dict()}, digits=2)
    assert both.splitlines()[0].startswith("model")
    assert sum(line.startswith("copy ") for line in both.splitlines()) == (
            len(PROTOCOLS) + 2)


def test_default_protocols_are_the_papers_four_plus_circular():
    assert DEFAULT_PROTOCOLS == ("circular", "crop", "black", "inpaint", "scale")
    assert set(DEFAULT_PROTOCOLS) < set(PROTOCOLS)


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------


def _linear(x):
    return jnp.mean(x, axis=(1, 2)) @ jnp.ones((C, 4), x.dtype)


@pytest.mark.parametrize("kwargs, exc, match", [
        (dict(protocols=("circular", "rotate")), ValueError,
         r"`protocols` has unknown name\(s\) \['rotate'\]; valid names are "
         r"\['circular', 'subpixel', 'crop', 'black', 'inpaint', 'scale'\]"),
        (dict(protocols=("crop", "crop")), ValueError, r"`protocols` names \['crop'\]"),
        (dict(protocols=3), TypeError, "`protocols` must be a sequence"),
        (dict(n_pairs=0), ValueError, "`n_pairs` must be a positive int"),
        (dict(step=1.5), TypeError, "`step` must be a positive int"),
        (dict(direction="up"), ValueError, "`direction` must be one of"),
        (dict(embed_factor=1.0), ValueError, "`embed_factor` must be a float > 1"),
        (dict(fill=(0.0, 1.0)), ValueError, "`fill` must be a finite float or a "
                                            "sequence of 3 floats"),
        (dict(consistency="zhang"), ValueError, "`consistency` must be one of"),
        (dict(chunk=0), ValueError, "`chunk` must be a positive int"),
        (dict(confidence=1.5), ValueError, r"`confidence` must be a float in \(0, 1\)"),
        (dict(p_ci="exact"), ValueError, "`p_ci` must be one of"),
        (dict(sweep_images=[0, 99]), ValueError,
         r"`sweep_images` must be an int .* indices in \[0, 8\)"),
        (dict(sweep_protocol="scale"), ValueError, "`sweep_protocol` must be one of"),
        (dict(all_shifts_method="fast"), ValueError,
         "`all_shifts_method` must be one of"),
        (dict(all_shifts_extent=(2, 0)), ValueError, "`all_shifts_extent` must be"),
        (dict(progress=3), TypeError, "`progress` must be None or a callable"),
        (dict(key=0), TypeError, r"`key` must be a JAX PRNG key; got 0 of type int: "
                                 r"make one with `jax\.random\.key\(seed\)`"),
        (dict(n_pair=3), TypeError, r"unknown shift-test option\(s\) \['n_pair'\]"),
        (dict(protocols=("black",), n_pairs=10), ValueError,
         r"the 'black' protocol leaves a margin of 9 pixels .* too small for "
         r"`n_pairs`=10"),
])
def test_bad_options_raise_clear_errors(kwargs, exc, match):
    x = _images()
    kw = dict(key=KEY, consistency=None, all_shifts=False, sweep_images=0)
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        run_shift_test(_linear, x, np.zeros(N, int), **kw)


def test_bad_inputs_raise_clear_errors():
    x = _images()
    y = np.zeros(N, int)
    with pytest.raises(ValueError, match=r"`labels` must have shape \[N\] = \(8,\) to "
                                         r"match `images`; got shape \(7,\)"):
        run_shift_test(_linear, x, y[:7], key=KEY)
    with pytest.raises(TypeError, match="`labels` must be an integer array"):
        run_shift_test(_linear, x, y.astype(np.float32), key=KEY)
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, K\) = \[0, 4\)"):
        run_shift_test(_linear, x, y + 4, key=KEY)
    with pytest.raises(TypeError, match="`images` must be a real float array"):
        run_shift_test(_linear, np.zeros((N, H, W, C), np.int32), y, key=KEY)
    with pytest.raises(ValueError,
                       match=r"`images` must have rank 4 .* \[N, H, W, C\]"):
        run_shift_test(_linear, x[0], y, key=KEY)
    with pytest.raises(ValueError, match="`images` must be finite"):
        run_shift_test(_linear, x.at[0, 0, 0, 0].set(jnp.nan), y, key=KEY)
    with pytest.raises(TypeError, match="`logits_fn` must be callable"):
        run_shift_test("vgg", x, y, key=KEY)
    with pytest.raises(ValueError, match=r"`logits_fn` must map float images .* "
                                         r"logits \[N, K\]"):
        run_shift_test(lambda z: z.mean(axis=(1, 2, 3)), x, y, key=KEY)


def test_geometry_errors_come_before_any_evaluation():
    calls = []

    def f(x):
        calls.append(x.shape)
        return _linear(x)

    with pytest.raises(ValueError, match="too small for `n_pairs`"):
        run_shift_test(f, _images(), np.zeros(N, int), key=KEY,
                       protocols=("circular", "black"), n_pairs=10)
    assert calls == []


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def test_jaggedness_figure_plots_p_correct_per_model(full_result):
    from sigcnn.figures import jaggedness_figure

    res = full_result[0]
    fig = jaggedness_figure({"baseline": res, "saved": res.to_dict()},
                            max_examples=2)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    j = res.jaggedness
    for e, ax in enumerate(axes):
        lines = ax.get_lines()
        assert len(lines) == 2
        np.testing.assert_allclose(lines[0].get_ydata(), j.p_correct[e])
        np.testing.assert_allclose(lines[0].get_xdata(), j.shifts)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        plural = "" if j.flips[e] == 1 else "s"
        assert labels[0] == f"baseline: {j.flips[e]} flip{plural}"
        assert ax.get_ylabel() in ("p(correct class)", "")
    assert axes[0].get_ylabel() == "p(correct class)"


def test_table1_figure_bars_match_estimates(full_result, tmp_path):
    from sigcnn.figures import table1_figure

    res = full_result[0]
    path = tmp_path / "table1.png"
    fig = table1_figure({"a": res, "b": res}, path=path)
    assert path.stat().st_size > 0
    ax_p, ax_mac = fig.axes[:2]
    heights = [b.get_height() for b in ax_p.patches]
    want = [p.p_top1_change for p in res.protocols]
    assert heights == pytest.approx(want + want)
    assert [b.get_height() for b in ax_mac.patches] == pytest.approx(
            [p.mac for p in res.protocols] * 2)
    assert [t.get_text() for t in ax_p.get_xticklabels()] == list(PROTOCOLS)


def test_figures_reject_results_without_data(full_result):
    from sigcnn.figures import jaggedness_figure, table1_figure

    res = full_result[0]
    d = res.to_dict()
    d["jaggedness"] = None
    with pytest.raises(ValueError, match="holds no jaggedness sweep"):
        jaggedness_figure(d)
    with pytest.raises(TypeError, match="must be a ShiftTestResult"):
        table1_figure([1, 2])


def test_fixed_input_network_is_only_probed_on_the_frames_it_sees():
    # crop windows without resizing are smaller than the images; a flatten-dense
    # head that only takes the window size must not be probed on the images
    w = jax.random.normal(jax.random.key(0), (16 * 16 * 1, 10))

    def f(x):
        if x.shape[1:3] != (16, 16):
            raise ValueError(f"takes 16x16 inputs only; got {x.shape}")
        return x.reshape(x.shape[0], -1) @ w

    x = jax.random.normal(jax.random.key(1), (3, 26, 26, 1))
    res = run_shift_test(f, x, key=jax.random.key(2), protocols=("crop",),
                         crop_resize=False, crop_margin=10, consistency=None,
                         all_shifts=False, sweep_images=0)
    crop = res.protocol("crop")
    assert crop.n_pairs == 3 * 8
    # consistency rolls the images themselves: then the 26x26 probe must fail
    with pytest.raises(ValueError, match="logits_fn"):
        run_shift_test(f, x, key=jax.random.key(2), protocols=("crop",),
                       crop_resize=False, crop_margin=10, consistency="circular",
                       all_shifts=False, sweep_images=0)
