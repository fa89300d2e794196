"""Property tests of undecimate / all_shifts on networks drawn from a grammar.

The networks (tests/_grammar.py) are data: convolutions (strides 1-3, anisotropic,
dilations, feature groups, depthwise; jnp.pad zero / wrap / reflect / edge /
symmetric + VALID, lax "SAME" / "VALID", explicit pairs; NHWC and NCHW dimension
numbers), max / avg pools (lax.reduce_window and flax.linen), sigcnn.blur_pool,
residual blocks with strided 1x1 projections, two branches at different strides
joined by concatenation or addition after alignment (repeat or slice), jnp.flip,
H <-> W transposes, crops, jnp.pad of a map, nearest / linear upsampling
(jnp.repeat, broadcast + reshape, jax.image.resize), downsampling
jax.image.resize, space-to-depth, squeeze-and-excitation, lax.scan over blocks,
lax.cond / lax.switch; ending in a spatial map, global pooling + dense logits, or
both. Properties (docs/architecture.md, and the interpreter's contract):

1. ``f(x) == r2[:, ::sy, ::sx]`` for every leaf, any padding and size, or a
   NotImplementedError naming the primitive or the source line;
2. r2 equals the naive à trous network (strides removed, later windows dilated by
   the cumulative stride, padding scaled by it), every phase, for zero / VALID
   padding at odd sizes and circular padding at sizes the strides divide; where the
   naive network itself breaks property 1 (circular padding at other sizes,
   reflect unless the strides divide H - 1) undecimate must refuse, naming the
   size or stride;
3. ``all_shifts(f, x) == all_shifts(f, x, method="brute")`` for every network, with
   circular and with zero padding, on the stride grid and on explicit shifts.

Only NotImplementedError may come out of sigcnn. The naive twin and the phase
check are themselves verified against f on rolled inputs (no sigcnn involved).
"""

import os

import _grammar as G
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

# No shrinking unless asked for (SIGCNN_SHRINK=1): shrinking a failing network costs
# minutes of compiles, and the unshrunk network already prints as readable data.
PHASES = (tuple(Phase) if os.environ.get("SIGCNN_SHRINK") else
          (Phase.explicit, Phase.reuse, Phase.generate))

ODD = st.sampled_from([9, 11, 13, 15])
NAIVE_ZERO = ("zero", "zero_jnp", "valid")


def _divisible(s):
    """Sizes in [8, 16] that are multiples of s (s itself if it is larger)."""
    sizes = [v for v in range(8, 17) if v % s == 0]
    return st.sampled_from(sizes or [s])


# --------------------------------------------------------------------------------------
# The references themselves (no sigcnn): the naive twin and the phase check.
# --------------------------------------------------------------------------------------


@settings(max_examples=8, phases=PHASES)
@given(net=G.networks(kinds=G.NAIVE_KINDS, pads=NAIVE_ZERO, heads=("spatial",)),
       data=st.data())
def test_naive_twin_sampled_is_f_for_zero_and_valid_padding(net, data):
    # sigcnn.ops: the stack identity is exact for zero and valid padding at any size.
    x = data.draw(G.inputs(net.cin, sizes=ODD)).array
    _, _, _, _, _, ok = G.naive_twin(net, 0, x)
    assert ok


@settings(max_examples=7, phases=PHASES)
@given(net=G.networks(kinds=G.NAIVE_KINDS, pads=("circular",), max_total=(4, 4),
                      heads=("spatial",)),
       data=st.data())
def test_naive_twin_phases_are_the_shifted_responses(net, data):
    # Circular padding, sizes divisible by the strides: r2[S*i - t] == f(roll(x, t))[i]
    # for the naive twin; and the check rejects an r2 off by one pixel.
    sy, sx = G.total_stride(net)
    x = G.x_of((1, data.draw(_divisible(sy)), data.draw(_divisible(sx)), net.cin),
               data.draw(st.integers(0, 99)))
    f, jf, _, naive, d, ok = G.naive_twin(net, 0, x)
    assert ok
    G.check_phases(f, x, naive, d, jf=jf)
    if max(d) > 1 and float(np.std(np.asarray(naive))) > 1e-3:
        with pytest.raises(AssertionError):
            G.check_phases(f, x, np.roll(np.asarray(naive), 1, axis=(1, 2)), d, jf=jf)


# --------------------------------------------------------------------------------------
# Property 1: the identity, on every network of the grammar.
# --------------------------------------------------------------------------------------


@settings(max_examples=15, phases=PHASES)
@given(net=G.networks(), data=st.data())
def test_identity_on_any_network(net, data):
    x = data.draw(G.inputs(net.cin)).array
    G.undecimate_checked(G.build(net, 1), x)


@pytest.mark.slow
@settings(max_examples=12, phases=PHASES)
@given(net=G.networks(kinds=G.ALL_KINDS, pads=("same", "valid", "zero"),
                      min_layers=2),
       data=st.data())
def test_identity_with_lax_padding_strings(net, data):
    # lax "SAME" pads depending on the stride (a phase offset on even sizes).
    x = data.draw(G.inputs(net.cin)).array
    G.undecimate_checked(G.build(net, 2), x)


# --------------------------------------------------------------------------------------
# Property 3: all_shifts == brute, circular and zero padding, any size.
# --------------------------------------------------------------------------------------


@settings(max_examples=7, phases=PHASES)
@given(net=G.networks(max_layers=3, max_total=(4, 4)), data=st.data())
def test_all_shifts_equals_brute_circular_and_zero(net, data):
    x = data.draw(G.inputs(net.cin)).array
    for mode in ("circular", "zero"):
        f = G.build(G.with_padding(net, mode), 3)
        G.all_shifts_checked(f, x, what=f"{mode} padding: ")


@settings(max_examples=5, phases=PHASES)
@given(net=G.networks(max_layers=3, max_total=(4, 4)), data=st.data(),
       shifts=st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)),
                       min_size=1, max_size=3))
def test_all_shifts_explicit_shifts_equal_brute(net, data, shifts):
    x = data.draw(G.inputs(net.cin)).array
    mode = data.draw(st.sampled_from(["circular", "zero", None]))
    f = G.build(net if mode is None else G.with_padding(net, mode), 4)
    G.all_shifts_checked(f, x, shifts=shifts, what=f"padding {mode or 'as drawn'}: ")


# --------------------------------------------------------------------------------------
# Property 2: r2 equals the naive à trous network (every phase).
# --------------------------------------------------------------------------------------


@settings(max_examples=9, phases=PHASES)
@given(net=G.networks(kinds=G.NAIVE_KINDS, pads=NAIVE_ZERO), data=st.data())
def test_r2_equals_naive_atrous_zero_and_valid_odd_sizes(net, data):
    x = data.draw(G.inputs(net.cin, sizes=ODD)).array
    G.check_against_naive(net, 5, x, refusal="never")


@settings(max_examples=6, phases=PHASES)
@given(net=G.networks(kinds=G.NAIVE_KINDS, pads=("circular",)), data=st.data())
def test_r2_equals_naive_atrous_circular_divisible_sizes(net, data):
    sy, sx = G.total_stride(net)
    x = G.x_of((data.draw(st.integers(1, 2)), data.draw(_divisible(sy)),
                data.draw(_divisible(sx)), net.cin), data.draw(st.integers(0, 99)))
    G.check_against_naive(net, 6, x, refusal="never")


@settings(max_examples=8, phases=PHASES)
@given(first=st.sampled_from([(2, 2), (2, 1), (3, 3)]),
       net=G.networks(kinds=G.NAIVE_KINDS, pads=("circular",), max_layers=2,
                      max_total=(2, 2)),
       data=st.data())
def test_circular_at_sizes_the_strides_do_not_divide_refuses(first, net, data):
    # A first strided conv, then odd sizes (and 16 for stride 3): the naive twin wraps
    # after H pixels, the strided map after ceil(H / S) samples.
    net = G.Net(net.cin, (G.Conv(3, (3, 3), first, pad="circular"),) + net.layers,
                net.head)
    sizes = ODD if first[0] == 2 else st.sampled_from([10, 11, 13, 14, 16])
    x = G.x_of((1, data.draw(sizes), data.draw(sizes), net.cin), 7)
    G.check_against_naive(net, 7, x, refusal="if_broken")


@settings(max_examples=6, phases=PHASES)
@given(net=G.networks(kinds=("conv", "conv", "pool", "residual"), pads=("reflect",)),
       data=st.data())
def test_reflect_refuses_unless_the_strides_divide_size_minus_one(net, data):
    x = data.draw(G.inputs(net.cin, sizes=st.sampled_from([9, 12, 13, 16]))).array
    G.check_against_naive(net, 8, x, refusal="if_broken")


# --------------------------------------------------------------------------------------
# More networks of the three main properties, in the `slow` run: each twin draws
# its own examples (derandomized per test), beside those of the default run.
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=20, phases=PHASES)
@given(net=G.networks(), data=st.data())
def test_identity_on_more_networks(net, data):
    test_identity_on_any_network.hypothesis.inner_test(net, data)


@pytest.mark.slow
@settings(max_examples=12, phases=PHASES)
@given(net=G.networks(max_layers=3, max_total=(4, 4)), data=st.data())
def test_all_shifts_equals_brute_on_more_networks(net, data):
    test_all_shifts_equals_brute_circular_and_zero.hypothesis.inner_test(net, data)


@pytest.mark.slow
@settings(max_examples=12, phases=PHASES)
@given(net=G.networks(kinds=G.NAIVE_KINDS, pads=NAIVE_ZERO), data=st.data())
def test_r2_equals_naive_atrous_on_more_networks(net, data):
    test_r2_equals_naive_atrous_zero_and_valid_odd_sizes.hypothesis.inner_test(net, data)


def test_grammar_covers_every_construct():
    # Every layer kind is drawn by the identity and all_shifts tests.
    assert set(G.LAYERS) == set(G.ALL_KINDS)
    names = {type(v).__name__ for v in [
        G.Conv(1), G.Pool(), G.Blur(), G.Residual(), G.Branch(), G.Flip(),
        G.Transpose(), G.Crop(), G.Pad(), G.Upsample(), G.Resize(),
        G.SpaceToDepth(), G.SE(), G.Scan(), G.Cond()]}
    assert len(names) == 15
    assert set(G.PADS) >= {"zero", "zero_jnp", "circular", "reflect", "edge", "same",
                           "valid"}
