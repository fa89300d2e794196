"""`all_shifts`: f at every circular shift of x, and its check against brute force.

References:
    Azulay and Weiss, "Why do deep convolutional networks generalize so poorly to
    small image transformations?", JMLR 20(184), 2019.
    Vaidyanathan, Multirate Systems and Filter Banks, Prentice Hall, 1993
    (polyphase decomposition).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore
from jax.sharding import NamedSharding, PartitionSpec

from sigcnn._checks import check_choice, check_positive_int
from sigcnn.atrous import values as V
from sigcnn.atrous.api import (
    _PROGRAMS,
    _check_f,
    _check_tiling,
    _check_x,
    _Entry,
    _input,
    _key,
    _trace,
)
from sigcnn.atrous.interpreter import Interpreter
from sigcnn.atrous.policy import AllShifts, Probe
from sigcnn.atrous.precision import check_precision, check_tolerance
from sigcnn.atrous.tiling import Tiling

__all__ = ["CHECK_NOISE_FACTOR", "CHECK_TOLERANCE", "CPU_TEMP_FACTOR", "CertificationError",
           "all_shifts"]


class CertificationError(AssertionError):
    """`all_shifts(..., check=k)` found a shift where atrous and brute disagree."""


def _shift_leaf(v, shifts):
    """[P, *shape] for the requested shifts."""
    if isinstance(v, V.Spatial):
        return V.shifted(v, shifts)
    if isinstance(v, V.Phased):
        if v.classes is not None and v.exact:
            per = v.period
            idx = (shifts[:, 0] % per[0]) * per[1] + shifts[:, 1] % per[1]
            return jnp.take(v.classes.value, jnp.asarray(idx, jnp.int32), axis=0)
        return v.explicit.value
    arr = jnp.asarray(v.arr)
    return jnp.broadcast_to(arr, (len(shifts),) + arr.shape)


def _arrange(arr, grid):
    """[P, *leaf] -> [N, Sy, Sx, ...] (grid) or [N, P, ...] (explicit shifts)."""
    if grid is not None:
        arr = arr.reshape(tuple(grid) + arr.shape[1:])
        return jnp.moveaxis(arr, (0, 1), (1, 2)) if arr.ndim > 2 else arr
    return jnp.moveaxis(arr, 0, 1) if arr.ndim > 1 else arr


def _total_stride(closed, x, tiling) -> tuple[int, int]:
    def build():
        interp = Interpreter(Probe(), (x.shape[1], x.shape[2]), tiling)

        def probe(consts, xx):
            outs = interp.run(closed.jaxpr, consts, [_input(xx)])
            for v in outs:  # force lazy values so their lattices are seen
                if isinstance(v, V.Phased):
                    v.explicit.value
            return ()

        jax.eval_shape(probe, list(closed.consts), x)
        return tuple(interp.strides)

    return _PROGRAMS.get(_key("probe", closed, x, tiling), build)


def _placement(x, shift_axis):
    """(mesh, batch spec entry, shift_axis) for a NamedSharding-placed x, else None."""
    sharding = None if isinstance(x, jax.core.Tracer) else getattr(x, "sharding", None)
    named = isinstance(sharding, NamedSharding)
    if shift_axis is not None:
        if not isinstance(shift_axis, str):
            raise TypeError(f"`shift_axis` must be None or the name of a mesh axis "
                            f"(str); got {shift_axis!r}.")
        if not named:
            raise ValueError(
                f"`shift_axis`={shift_axis!r} needs `x` placed on a mesh: pass x = "
                f"jax.device_put(x, NamedSharding(mesh, PartitionSpec(...))); got x "
                f"with sharding {sharding!r}.")
        if shift_axis not in sharding.mesh.axis_names:
            raise ValueError(
                f"`shift_axis`={shift_axis!r} is not an axis of x's mesh, whose axes "
                f"are {tuple(sharding.mesh.axis_names)}.")
    if not named:
        return None
    spec = tuple(sharding.spec) + (None,) * (4 - len(sharding.spec))
    if shift_axis is not None and shift_axis in jax.tree.leaves(spec[0]):
        raise ValueError(f"`shift_axis`={shift_axis!r} already splits x's batch axis "
                         f"(x's PartitionSpec is {sharding.spec}); use another mesh "
                         "axis for the shifts.")
    if spec[0] is None and shift_axis is None:
        return None
    return sharding.mesh, spec[0], shift_axis


def _constrain(leaves, placement, n, n_shift_axes):
    if placement is None:
        return leaves
    mesh, batch, shift_axis = placement
    out = []
    for a in leaves:
        if a.ndim >= 1 + n_shift_axes and a.shape[0] == n:
            spec = PartitionSpec(batch, shift_axis)
        elif a.ndim >= n_shift_axes and n_shift_axes and shift_axis is not None:
            spec = PartitionSpec(shift_axis)      # no batch axis: [Sy, Sx, ...]
        else:
            out.append(a)
            continue
        out.append(lax.with_sharding_constraint(a, NamedSharding(mesh, spec)))
    return out


def _split_brute(one, ts, placement):
    """[P, *leaf] outputs of `one` over the shifts `ts`, for an x placed on a mesh.

    vmap would merge the shifts into f's batch axis, shifts major, which leaves
    the split batch axis minor in the merged one: XLA then replicates the work.
    Instead each step of a `lax.map` calls f on the whole split batch; with a
    shift axis of size A, the shifts are cut into A equal groups (the last shift
    repeated to fill them) and the groups vmapped over that mesh axis.
    """
    mesh, _, shift_axis = placement
    if shift_axis is None:
        return lax.map(one, ts)
    groups = mesh.shape[shift_axis]
    p = ts.shape[0]
    per = -(-p // groups)
    padded = jnp.concatenate([ts, jnp.broadcast_to(ts[-1:], (groups * per - p, 2))])
    outs = jax.vmap(lambda tt: lax.map(one, tt), spmd_axis_name=shift_axis)(
        padded.reshape(groups, per, 2))
    return [o.reshape((groups * per,) + o.shape[2:])[:p] for o in jax.tree.leaves(outs)]


def _build_shifts(closed, method, shifts, grid, chunk, sizes, tiling, placement):
    entry = _Entry()
    jaxpr = closed.jaxpr
    n_axes = 1 if grid is None else 2

    if method == "atrous":
        def run(consts, x):
            interp = Interpreter(AllShifts(shifts), sizes, tiling)
            outs = interp.run(jaxpr, consts, [_input(x)])
            return _constrain([_arrange(_shift_leaf(v, shifts), grid) for v in outs],
                              placement, x.shape[0], n_axes)
    else:
        def run(consts, x):
            def one(t):
                xs = jnp.roll(x, (t[0], t[1]), axis=(1, 2))
                return jcore.jaxpr_as_fun(jcore.ClosedJaxpr(jaxpr, consts))(xs)

            ts = jnp.asarray(shifts, jnp.int32)
            if placement is not None:
                outs = _split_brute(one, ts, placement)
            elif chunk is None or chunk >= len(shifts):
                outs = jax.vmap(one)(ts)
            else:
                outs = lax.map(one, ts, batch_size=chunk)
            return _constrain([_arrange(o, grid) for o in outs], placement,
                              x.shape[0], n_axes)

    entry.run = jax.jit(run)
    return entry


def _check_shifts(shifts):
    try:
        arr = np.asarray(shifts)
    except Exception as exc:  # traced values cannot be converted
        raise TypeError(
            "`shifts` must be a concrete sequence of (ty, tx) integer pairs, "
            f"shape [P, 2]; got {type(shifts).__name__} ({exc}).") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer)
                                   or arr.size == 0):
        raise TypeError(
            "`shifts` must be a sequence of (ty, tx) integer pairs, shape "
            f"[P, 2]; got dtype {arr.dtype}: {shifts!r}.")
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(
            "`shifts` must be a non-empty sequence of (ty, tx) integer pairs, "
            f"shape [P, 2]; got shape {arr.shape}: {shifts!r}. For one shift "
            "use [(ty, tx)].")
    return arr.astype(np.int64)


def _check_check(check):
    if isinstance(check, (bool, np.bool_)) or not isinstance(check, (int, np.integer)) \
            or check < 0:
        raise ValueError(f"`check` must be a non-negative int (the number of shifts "
                         f"recomputed by brute force); got {check!r}.")
    return int(check)


#: Largest relative difference max|atrous - brute| / max|brute| accepted by
#: `all_shifts(..., check=k)`, per dtype, for a well-conditioned f (see
#: `CHECK_NOISE_FACTOR` for the others).
CHECK_TOLERANCE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4,
                   np.dtype(np.float16): 2e-2, np.dtype(jnp.bfloat16): 5e-2}

#: `all_shifts(..., check=k)` also accepts a difference up to this factor times f's
#: rounding noise at the checked shifts, measured as the largest change of the brute
#: result when the input moves by one unit in the last place (two seeded draws).
CHECK_NOISE_FACTOR = 4.0


def _rounding_noise(entry, consts, x, brute, draws=2):
    """Per leaf, max |f(x + d) - f(x)| over `draws` seeded |d| ~ eps * rms(x)."""
    rng = np.random.default_rng(1)
    xn = np.asarray(x)
    scale = np.finfo(xn.dtype).eps * float(np.sqrt(np.mean(np.square(xn)))) or \
        np.finfo(xn.dtype).tiny
    noise = [0.0] * len(brute)
    for _ in range(draws):
        d = (scale * rng.standard_normal(xn.shape)).astype(xn.dtype)
        for i, (b, p) in enumerate(zip(brute, entry.run(consts, x + d))):
            if np.size(b):
                noise[i] = max(noise[i], float(np.max(np.abs(np.asarray(p) - b))))
    return noise


def _certify(closed, out_tree, x, leaves, shifts, grid, check, tiling, precision):
    """Recomputes `check` seeded shifts by brute force and compares.

    The accepted difference per leaf is the larger of ``CHECK_TOLERANCE[dtype] *
    max|brute|`` and ``CHECK_NOISE_FACTOR`` times f's measured rounding noise at
    those shifts (`_rounding_noise`, evaluated only when the first bound fails): an
    ill-conditioned network (random-weight EfficientNet-B0 in float32 moves its
    logits by ~1e-3 relative under a one-ulp change of x) differs from itself by
    that much, and no evaluation order can be certified more closely.
    """
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(shifts), size=min(check, len(shifts)),
                              replace=False))
    sub = shifts[pick]
    entry = _program(closed, x, ("brute", sub, None, None, tiling, None))
    consts = list(closed.consts)
    brute = [np.asarray(b) for b in entry.run(consts, x)]
    noise = None
    for i, (a, b) in enumerate(zip(leaves, brute)):
        a = np.asarray(a)
        scalar = a.ndim == (2 if grid is not None else 1)
        if scalar:
            a = a.reshape(-1)[pick]
        else:
            a = a.reshape((a.shape[0], len(shifts)) + a.shape[(3 if grid else 2):])
            a = a[:, pick]
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        err = float(np.max(np.abs(a - b))) if b.size else 0.0
        tol = check_tolerance(precision, CHECK_TOLERANCE.get(np.dtype(b.dtype), 1e-4))
        if np.isfinite(err) and err <= tol * max(scale, 1e-30):
            continue
        if noise is None and np.isfinite(err):
            noise = _rounding_noise(entry, consts, x, brute)
        own = noise[i] if noise is not None else float("nan")
        if np.isfinite(err) and err <= CHECK_NOISE_FACTOR * own:
            continue
        raise CertificationError(
            f"all_shifts: the atrous result of output leaf {i} differs from brute "
            f"force by {err:.3g} (relative {err / max(scale, 1e-30):.3g} > "
            f"tolerance {tol:g} for {b.dtype} at precision "
            f"{'of f' if precision is None else precision.name.lower()}; f's own "
            f"rounding noise there is "
            f"{own:.3g}) at the shifts "
            f"{[tuple(int(v) for v in t) for t in sub]}; please report this "
            "network (use method=\"brute\" meanwhile).")


def _program(closed, x, plan):
    method, shifts, grid, chunk, tiling, placement = plan
    key = _key("shifts", closed, x, method, shifts.tobytes(), shifts.shape, grid,
               chunk if method == "brute" else None, tiling, placement)
    return _PROGRAMS.get(key, lambda: _build_shifts(
        closed, method, shifts, grid, chunk, (x.shape[1], x.shape[2]), tiling,
        placement))


#: XLA:CPU's convolution kernels allocate working memory outside XLA's buffer
#: assignment: the resident memory of an undecimated pass was measured at 3.3-3.6
#: times its temporaries (benchmarks/bench_memory_budget.py). `max_bytes` counts
#: the temporaries this many times on the CPU backend.
CPU_TEMP_FACTOR = 4.0


def _peak_bytes(f, x, plan, precision):
    """Peak memory of one call on x: arguments + temporaries + outputs, from XLA's
    memory analysis (temporaries times `CPU_TEMP_FACTOR` on the CPU).

    Returns (bytes, call, closed): call(x) runs the executable that was measured,
    closed is f traced on x."""
    closed, _ = _trace(f, x, precision)
    consts = list(closed.consts)
    compiled = _program(closed, x, plan).run.lower(consts, x).compile()
    m = compiled.memory_analysis()
    if m is None:
        raise ValueError("`max_bytes` needs XLA's memory analysis, which this "
                         f"backend ({jax.default_backend()}) does not provide.")
    temp = m.temp_size_in_bytes * (CPU_TEMP_FACTOR if jax.default_backend() == "cpu"
                                   else 1.0)
    need = int(m.argument_size_in_bytes + temp + m.output_size_in_bytes
               - m.alias_size_in_bytes)
    return need, lambda xc: compiled(consts, xc), closed


def _by_budget(f, x, plan, max_bytes, precision):
    """Leaves of all_shifts over batch chunks whose calls fit in `max_bytes`.

    The peak of one call is about affine in its batch size b (the parameters and
    the compiled constants, plus b images' activations): it is measured at b = 1
    and 2, the largest b whose affine estimate fits is taken, and b is lowered
    until the peak measured at b itself fits. The last chunk is padded
    with copies of its last image, so one program serves every chunk. Returns
    (leaves, first chunk, f traced on it).
    """
    n = x.shape[0]
    measured = {}           # batch size -> (its measured executable, f traced)

    def peak(b):
        need, *measured[b] = _peak_bytes(f, x[:b], plan, precision)
        return need

    one = peak(1)
    if one > max_bytes:
        hint = (" or a smaller `chunk` (fewer shifts at once)" if plan[0] == "brute"
                else " or method=\"brute\" with a small `chunk`")
        raise ValueError(
            f"`max_bytes`={max_bytes} is below the {one} bytes that one image needs "
            f"(XLA's estimate for x of shape {(1,) + tuple(x.shape[1:])}): give a "
            f"larger budget{hint}.")
    slope = max(peak(2) - one, 1) if n > 1 else 1
    b = int(min(n, 1 + (max_bytes - one) // slope))
    while b > 2:       # the peak need not stay affine (CPU tiles change with b)
        need = peak(b)
        if need <= max_bytes:
            break
        b = max(2, min(b - 1, int(b * max_bytes / need)))
    run, closed = measured[b]        # every b the search can end on was measured
    if b >= n:
        return run(x), x, closed
    for m in (b, b + 1):        # chunks concatenate only along a batch axis
        spec = jax.ShapeDtypeStruct((m,) + tuple(x.shape[1:]), x.dtype)
        bad = [leaf.shape for leaf in jax.tree.leaves(jax.eval_shape(f, spec))
               if not leaf.shape or leaf.shape[0] != m]
        if bad:
            raise ValueError(
                f"`max_bytes` splits the batch into chunks of {b} images, which "
                f"needs every leaf of f(x) to have x's batch axis first; f of "
                f"{m} images gives leaves of shapes {bad}. Pass max_bytes=None.")
    parts = []
    for i in range(0, n, b):
        xc = x[i:i + b]
        if xc.shape[0] < b:
            xc = jnp.concatenate([xc, jnp.repeat(xc[-1:], b - xc.shape[0], axis=0)])
        outs = run(xc)
        parts.append([a[:min(b, n - i)] for a in outs])
    return [jnp.concatenate(p) for p in zip(*parts)], x[:b], closed


def all_shifts(f: Callable[[jax.Array], Any], x, *, method: str = "atrous",
               shifts=None, chunk: int | None = None, check: int = 0,
               tiling: Tiling | None = None, shift_axis: str | None = None,
               max_bytes: int | None = None, precision=None):
    """f evaluated on every circular shift of x: leaves [N, Sy, Sx, ...].

    For each leaf of f(x) with shape [N, ...] the result has shape [N, Sy, Sx, ...]
    and ``out[:, ty, tx] == f(jnp.roll(x, (ty, tx), axis=(1, 2)))`` for
    0 <= ty < Sy, 0 <= tx < Sx, where (Sy, Sx) is the total stride of f (the largest
    cumulative stride of any of its feature maps, found by tracing f). This holds
    for spatial outputs (feature maps) and non-spatial ones (logits) alike, for any
    padding and size. The leading axis of every leaf is taken as its batch axis; a
    scalar leaf gives [Sy, Sx], and a leaf that does not depend on x is broadcast.

    method="atrous" evaluates f undecimated for as long as its undecimated values
    are exactly shift-equivariant: then the strided responses to the shifted inputs
    are the polyphase components of one undecimated response,
    r(roll(x, t))[i] == r2(x)[S*i - t], and one dense-resolution pass replaces
    Sy*Sx strided ones. This holds through circularly padded (or unpadded)
    convolutions and pooling, crops, flips, polyphase splits, circular
    concatenations and rolls, and squeeze-and-excitation gates (known per shift
    class). Where it stops holding (zero, reflect or edge padding, a flipped map
    added to an unflipped one, upsampling, data-dependent sampling, global pooling
    or flatten), the values are split into the strided values for each shift and
    the rest of f runs on that batch. The result is therefore exact to float
    rounding for every network; the speed-up is largest for circularly padded
    networks (about Sy*Sx / 3 for VGG-like ones, see benchmarks/README.md), and a
    zero-padded network costs about what method="brute" does from its first padded
    layer on.

    method="brute" evaluates f on each rolled input with `vmap`, in chunks of
    `chunk` shifts (`lax.map`) to bound memory.

    Args:
        f: callable x [N, H, W, C] -> pytree of arrays; each leaf with a leading
            batch axis N (or a scalar).
        x: real float array [N, H, W, C] (NHWC).
        method: "atrous" (default) or "brute".
        shifts: optional explicit shifts, an integer array-like of shape [P, 2] of
            (ty, tx) pairs (any integers; rolls are circular, so they are reduced
            modulo (H, W) in int64 first and huge shifts are exact). The leaves then
            have shape [N, P, ...] with ``out[:, p] == f(jnp.roll(x, shifts[p], axis=(1,
            2)))``, and f's total stride is not needed.
        chunk: for method="brute", the number of shifts evaluated at once (default:
            all). Ignored by method="atrous".
        check: number of shifts (drawn with a fixed seed from the evaluated ones)
            recomputed by brute force and compared with the result; a relative
            difference above `CHECK_TOLERANCE` for the dtype (1e-4 for float32)
            and above `CHECK_NOISE_FACTOR` times f's own rounding noise at those
            shifts (its change under a one-ulp perturbation of x) raises
            `CertificationError`. Costs `check` strided evaluations of f (one
            vmapped call) and a compilation of it, plus two more such calls when
            the first bound fails; 0 (default) skips it.
        tiling: optional :class:`sigcnn.atrous.Tiling` for method="atrous".
        shift_axis: optional name of an axis of the mesh `x` is placed on (a
            :class:`jax.sharding.NamedSharding`) to split the shifts over: the Sy
            axis of the leaves (or P, with explicit `shifts`) is then sharded over
            it. Default None: the shifts are not split.
        max_bytes: optional memory budget in bytes for one compiled call. The
            batch is then evaluated in chunks of the largest size whose peak
            (XLA's estimate of arguments, temporaries and outputs of the call,
            measured for 1 and 2 images; on the CPU the temporaries count
            `CPU_TEMP_FACTOR` times, for the convolution kernels' own working
            memory) fits; the returned leaves for all N images come on top. f
            must treat images independently (evaluation mode). ValueError if
            one image does not fit.
        precision: None (f's own precisions, as JAX runs f) or the precision of
            every convolution and matrix product of f, in the atrous, brute and
            check passes alike: a `jax.lax.Precision` or "highest" / "high" /
            "default" (:mod:`sigcnn.atrous.precision`). On GPUs and TPUs only
            "highest" gives results exact to float32 rounding; at lower
            precisions atrous and brute differ by up to about 1e-2 relative, and
            `check` accepts that much (`PRECISION_TOLERANCE`). On the CPU every
            precision computes in float32.

    Returns:
        Pytree with f(x)'s structure; leaves [N, Sy, Sx, ...] (or [N, P, ...] with
        explicit `shifts`).

    Sharding: when `x` is a concrete array placed with a
    :class:`jax.sharding.NamedSharding` whose batch axis is split over a mesh axis
    (``PartitionSpec("batch")``), every leaf whose leading axis has x's batch size
    keeps that split (and `shift_axis` adds the split of the shifts), and nothing
    is gathered to one device. method="brute" splits all of its work: each device
    evaluates f on its images (and its share of the shifts). method="atrous"
    splits the undecimated pass; where it has to split values into a batch per
    shift (zero or reflect padding, flatten, see above), XLA currently runs the
    rest of f on every device of the batch axis, so for such networks on many
    devices method="brute" can be faster. The numbers
    equal those of one device to float rounding (XLA may pick other kernels for
    the smaller per-device batches). `check` compares a few shifts on copies
    gathered for that purpose; the returned leaves stay split.

    Raises:
        TypeError: if `f` is not callable, `x` is not a real float array, `chunk` is
            not an int or `shifts` is not an integer array.
        ValueError: if `x` is not rank 4, has H = 0 or W = 0 or holds NaN/Inf
            (checked for concrete x only), `method` is unknown, `chunk` < 1,
            `check` < 0, `shifts` does not have shape [P, 2], `precision` is not
            one of the values above, or f uses an axis of x that NHWC calls
            spatial as a channel axis. An empty batch (N = 0) gives empty leaves.
        CertificationError: if `check` > 0 and a recomputed shift disagrees.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> def f(x):  # circular 2x2 mean pool with stride 2, then global max
        ...     y = (x + jnp.roll(x, -1, 1) + jnp.roll(x, -1, 2)
        ...          + jnp.roll(x, (-1, -1), (1, 2)))[:, ::2, ::2] / 4
        ...     return {"map": y, "logit": y.max(axis=(1, 2))}
        >>> x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
        >>> out = all_shifts(f, x, check=2)
        >>> out["map"].shape, out["logit"].shape
        ((2, 2, 2, 4, 4, 3), (2, 2, 2, 3))
        >>> ref = f(jnp.roll(x, (1, 0), axis=(1, 2)))["logit"]
        >>> bool(jnp.allclose(out["logit"][:, 1, 0], ref, atol=1e-6))
        True

    References:
        Azulay and Weiss, "Why do deep convolutional networks generalize so poorly
        to small image transformations?", JMLR 20(184), 2019.
        Vaidyanathan, Multirate Systems and Filter Banks, Prentice Hall, 1993
        (polyphase decomposition).
    """
    _check_f(f)
    method = check_choice("method", method, ("atrous", "brute"))
    if chunk is not None:
        chunk = check_positive_int("chunk", chunk)
    check = _check_check(check)
    tiling = _check_tiling(tiling)
    precision = check_precision(precision)
    if shifts is not None:
        shifts = _check_shifts(shifts)
    x = _check_x(x)
    placement = _placement(x, shift_axis)
    if shifts is not None:  # rolls are periodic: reduce before any int32 cast
        shifts = np.mod(shifts, np.array([x.shape[1], x.shape[2]], np.int64))
    if max_bytes is not None:
        max_bytes = check_positive_int("max_bytes", max_bytes)
        if placement is not None:
            raise ValueError(
                "`max_bytes` bounds one device's memory and cannot be combined with "
                "an x placed on a mesh (each device then holds only its share of "
                "the batch); place fewer images per device instead.")
    closed, out_tree = _trace(f, x, precision)
    grid = None
    if shifts is None:
        grid = _total_stride(closed, x, tiling)
        ty, tx = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
        shifts = np.stack([ty.ravel(), tx.ravel()], axis=1).astype(np.int64)
    plan = (method, shifts, grid, chunk, tiling, placement)
    if max_bytes is None:
        leaves = _program(closed, x, plan).run(list(closed.consts), x)
        done = x
    else:
        leaves, done, closed = _by_budget(f, x, plan, max_bytes, precision)
    if check and method == "atrous":
        if any(isinstance(a, jax.core.Tracer) for a in leaves):
            raise ValueError("`check` needs concrete results: call all_shifts(..., "
                             f"check={check}) outside jax.jit / jax.eval_shape (or "
                             "pass check=0 there).")
        first = leaves if done is x else [a[:done.shape[0]] for a in leaves]
        _certify(closed, out_tree, done, first, shifts, grid, check, tiling, precision)
    return jax.tree.unflatten(out_tree, leaves)
