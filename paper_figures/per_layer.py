"""Where shift invariance is lost, layer by layer (Azulay & Weiss, Sections 3-4).

For the input (stride 1) and the blocks of the baseline and the anti-aliased
``vgg_small`` (taps ``block1`` .. ``block4``, cumulative strides 2 .. 16):
(a) one channel of the strided map r and of the undecimated r2 (strides turned
into dilations, ``sigcnn.models.variant(undecimated=True)``) for a held-out
digit and the digit shifted 1 px diagonally: r(T x) is no shifted copy of r(x),
r2(T x) == T r2(x), r == r2[::S]; checked on a few digits for every model (with
the trained zero padding wherever the receptive field stays inside a 128-px
canvas, and everywhere for the circular-padding twin, where also
r(roll(x, t))[i] == r2(x)[S i - t]);
(b) a linear softmax probe (optax Adam, full batch, seeded) on the global
average pool of each layer's map over the training canvases, and its
P(top-1 change) on held-out canvases under the shift test's ``"black"`` frames
(the canvas resized by 1/1.6 in a zero canvas, the authors' 8 consecutive
diagonal 1-px offsets) and ``"circular"`` 1-px rolls (``sigcnn.shift_test``;
block 1 recomputed by ``run_shift_test``);
(c) the aliasing ratio of r2 (energy at or above 1/(2S)) and the shiftability
error, from ``sigcnn.layer_spectra``.

Usage: ``python paper_figures/per_layer.py [--quick] [--seeds N] [--out DIR]
[--cache DIR]``, or ``--torch MODULE:CALLABLE [--weights FILE] --taps NAMES
--images DIR`` (or ``--keras``) for (b) and (c) on that network's taps, the
probes trained on a seeded half of the folder (stratified by class subfolder or
``--labels``) and tested on the other half. Writes ``per_layer.png`` and
``per_layer.json``; evaluations are cached per (recipe, seed).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import sys

import _common as C
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import sigcnn as sc
from sigcnn import models, ops
from sigcnn.shift_test import ShiftTestOptions, run_shift_test
from sigcnn.shift_test.protocols import PLANS

NAME = "per_layer"
RECIPES = (C.BASELINE, C.ANTIALIASED)
PROTOCOLS = ("black", "circular")
SHIFTS = (0, 1, 2, 3)              # diagonal shifts of the identity checks
BIG = 128                          # canvas of the zero-padding equivariance check
TOL = 1e-5                         # relative tolerance of the "exact" identities


def settings(quick: bool) -> dict:
    """Image counts and the probe's optimiser."""
    return dict(n_shift=48 if quick else 400, n_spectra=4 if quick else 32,
                n_identity=2 if quick else 4, steps=300, learning_rate=0.05, l2=1e-4, chunk=256)


def with_input(taps):
    """``x -> {"input": x, **taps(x)}``: the input as the stride-1 layer."""
    return lambda x: collections.OrderedDict([("input", x), *taps(x).items()])


@functools.cache
def _compiled(graphdef, mode: str):
    def f(state, x, probe):
        out = with_input(nnx.merge(graphdef, state).taps)(x)
        if mode == "taps":
            return out
        pooled = {k: jnp.mean(v, axis=(1, 2)) for k, v in out.items()}
        return pooled if mode == "pool" else probe_logits(probe, pooled[mode])
    return jax.jit(f)


def taps_of(model, *, mode: str = "taps", probe=None):
    """Jitted ``with_input(model.taps)``, its global means (``mode="pool"``) or
    a probe's logits on one of them (``mode`` a tap name); the weights are an
    argument, so each compiles once per architecture, not once per seed."""
    graphdef, state = nnx.split(model)
    f = _compiled(graphdef, mode)
    return lambda x: f(state, x, probe)


def train_probe(feats, labels, w_init, *, steps: int, learning_rate: float, l2: float) -> dict:
    """A linear softmax classifier on standardised features `feats` [N, D]
    (full-batch Adam from weights `w_init` [D, K], L2 penalty `l2`).

    Returns:
      ``{"mean", "scale", "w", "b", "loss"}``: the standardisation, weights
      [D, K], bias [K] and the last training loss.
    """
    feats, labels = jnp.asarray(feats, jnp.float32), jnp.asarray(labels, jnp.int32)
    mean, scale = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / scale
    params = {"w": w_init, "b": jnp.zeros((w_init.shape[1],))}
    opt = optax.adam(learning_rate)

    def loss_fn(p):
        ce = optax.softmax_cross_entropy_with_integer_labels(z @ p["w"] + p["b"], labels)
        return ce.mean() + l2 * jnp.sum(p["w"] ** 2)

    def step(carry, _):
        p, state = carry
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, state = opt.update(g, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, steps)
    return {"mean": mean, "scale": scale, "w": params["w"], "b": params["b"],
            "loss": losses[-1]}


_fit = jax.jit(train_probe, static_argnames=("steps",))


@functools.partial(jax.jit, static_argnames=("dims", "num_classes"))
def _inits(seed, dims, num_classes):
    return [0.01 * jax.random.normal(jax.random.key(seed), (d, num_classes)) for d in dims]


def fit_probes(feats: dict, labels, *, num_classes, seed, steps, learning_rate, l2):
    """`train_probe` on each layer's features from a seeded N(0, 0.01²) start.

    The features are padded with zero columns to a common width (one compiled
    program for every layer): a zero column standardises to 0, so its weights
    get no gradient and stay 0, and the probe is the unpadded one's.
    """
    dims = tuple(v.shape[1] for v in feats.values())
    width, out = max(dims), {}
    for (k, v), w0 in zip(feats.items(), _inits(seed, dims, num_classes)):
        d = v.shape[1]
        p = _fit(np.pad(v, ((0, 0), (0, width - d))), labels,
                 np.pad(np.asarray(w0), ((0, width - d), (0, 0))), steps=steps,
                 learning_rate=learning_rate, l2=l2)
        out[k] = {n: np.asarray(a)[:d] if n in ("mean", "scale", "w") else np.asarray(a)
                  for n, a in p.items()}
    return out


def probe_logits(probe: dict, feats):
    return (feats - probe["mean"]) / probe["scale"] @ probe["w"] + probe["b"]


def pooled(poolf, x, *, chunk: int) -> dict:
    """``poolf`` on `x` in chunks of `chunk` images (the last one padded)."""
    out = collections.defaultdict(list)
    for s in range(0, x.shape[0], chunk):
        xs, n = x[s:s + chunk], min(chunk, x.shape[0] - s)
        xs = np.concatenate([xs, np.repeat(xs[-1:], chunk - n, axis=0)])
        for k, v in poolf(jnp.asarray(xs)).items():
            out[k].append(np.asarray(v)[:n])
    return {k: np.concatenate(v) for k, v in out.items()}


def protocol_features(poolf, x, protocol: str, *, chunk: int):
    """Pooled features [N, T, C] of the shift test's frames, and its pairs."""
    opts = ShiftTestOptions(protocols=(protocol,)).resolve(x.shape)
    plan = PLANS[protocol].plan(protocol, tuple(x.shape[1:3]), opts)
    t, out = plan.offsets.shape[0], collections.defaultdict(list)
    g = max(1, chunk // t)
    for s in range(0, x.shape[0], g):                   # groups padded to g images
        n = min(g, x.shape[0] - s)
        xs = np.concatenate([x[s:s + n], np.repeat(x[s + n - 1:s + n], g - n, axis=0)])
        frames, _ = PLANS[protocol].frames(plan, jnp.asarray(xs), opts)
        flat = np.asarray(frames[:n]).reshape((-1,) + frames.shape[2:])
        for k, v in pooled(poolf, flat, chunk=chunk).items():
            out[k].append(v.reshape(n, t, -1))
    return {k: np.concatenate(v) for k, v in out.items()}, plan.pairs


def probe_study(poolf, logits_of, xtr, ytr, xte, yte, *, num_classes, seed, st, say) -> dict:
    """Per layer: the probe's accuracy and P(top-1 change) under each protocol.

    `poolf` maps images to the pooled features of every layer; the first
    block's P(change) is recomputed by `run_shift_test` on the jitted function
    ``logits_of(name, probe)`` (images -> that probe's logits).
    """
    say(f"  probes on the features of {xtr.shape[0]} training images")
    ftr, fte = (pooled(poolf, v, chunk=st["chunk"]) for v in (xtr, xte))
    probes = fit_probes(ftr, ytr, num_classes=num_classes, seed=seed, steps=st["steps"],
                        learning_rate=st["learning_rate"], l2=st["l2"])
    layers = {k: {"train_loss": float(p["loss"]), "features": int(ftr[k].shape[1]),
                  "accuracy": float(np.mean(np.argmax(probe_logits(p, fte[k]), -1)
                                            == yte))} for k, p in probes.items()}
    xs, first, check = xte[:st["n_shift"]], [k for k in probes if k != "input"][0], {}
    for proto in PROTOCOLS:
        say(f"  {proto} frames of {xs.shape[0]} held-out images")
        feats, pairs = protocol_features(poolf, xs, proto, chunk=st["chunk"])
        for k, p in probes.items():
            top = np.argmax(np.asarray(probe_logits(p, feats[k])), -1)    # [N, T]
            flips = top[:, pairs[:, 0]] != top[:, pairs[:, 1]]
            layers[k][proto] = {"p_change": float(flips.mean()),
                                "changes": int(flips.sum()), "pairs": int(flips.size)}
            if k == first:
                check[proto] = {"per_layer": float(flips.mean())}

    res = run_shift_test(logits_of(first, probes[first]), xs, yte[:xs.shape[0]],
                         key=jax.random.key(seed), protocols=PROTOCOLS, jit=False,
                         consistency=None, all_shifts=False, sweep_images=0)
    for p in PROTOCOLS:
        check[p].update(run_shift_test=res.protocol(p).p_top1_change,
                        pairs=res.protocol(p).n_pairs)
    return {"layers": layers, "check_layer": first, "check": check,
            "n_train": int(xtr.shape[0]), "n_test": int(xte.shape[0]),
            "n_shift": int(xs.shape[0])}


def spectra_study(tapf, x) -> dict:
    res = sc.layer_spectra(tapf, jnp.asarray(x))
    return {l.name: {"stride": list(l.stride), "aliasing_ratio": l.aliasing_ratio,
                     "shiftability_error": l.shiftability_error,
                     "local": [p.aliasing_ratio for p in l.local]} for l in res.layers}


def footprint(model) -> dict:
    """Per tap of a zoo VGG: the input pixels (before, after) an r2 value reads."""
    samp, out, lo, hi, k = model.sampling, {"input": (0, 0)}, 0, 0, 0
    for i, st in enumerate(model.stages):
        windows = [model.convs[k + j].kernel_size[0] for j in range(len(st))] + [2]
        windows += [samp.blur_size] if samp.layout == "blur" else []
        k += len(st)
        for w in windows:                 # dilation 2**i in the undecimated twin
            a, b = ops.window_pads(w, 2 ** i)
            lo, hi = lo + a, hi + b
        out[f"block{i + 1}"] = (lo, hi)
    return out


def _roll(x, t):
    return np.roll(x, (t, t), axis=(1, 2))


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _interior(a, b, t, lo, hi):
    """a[u] vs b[u - t] over the u whose receptive field (and u - t's) is inside."""
    i, j = lo + t, a.shape[1] - hi
    return None if i >= j else _rel(a[:, i:j, i:j], b[:, i - t:j - t, i - t:j - t])


def identities(model, x) -> dict:
    """The identities of (a) on images x (the first is the demo digit)."""
    twin = models.variant(model, undecimated=True)
    circ = models.variant(model, padding="circular")
    f, f2 = taps_of(model), taps_of(twin)
    fc, fc2 = taps_of(circ), taps_of(models.variant(circ, undecimated=True))
    strides, fp = {"input": 1, **model.tap_strides()}, footprint(model)
    m = (BIG - x.shape[1]) // 2
    xb = np.pad(x, ((0, 0), (m, BIG - x.shape[1] - m), (m, BIG - x.shape[2] - m), (0, 0)))
    r, r2, rb, rc, rc2 = ([jax.tree.map(np.asarray, g(_roll(v, t))) for t in SHIFTS]
                          for g, v in ((f, x), (f2, x), (f2, xb), (fc, x), (fc2, x)))
    out = {}
    for k, s in strides.items():
        lo, hi = fp[k]
        zero = [_interior(rb[t][k], rb[0][k], t, lo, hi) for t in SHIFTS]
        ref = np.asarray(r[0][k][0], np.float64)
        norm = np.linalg.norm(ref - ref.mean())
        near = [min(np.linalg.norm(r[t][k][0] - np.roll(ref, (a, b), (0, 1)))
                    for a in range(ref.shape[0]) for b in range(ref.shape[1])) / norm
                for t in SHIFTS]
        c = int(np.argmax(np.std(r2[0][k][0], axis=(0, 1))))
        out[k] = {
            "stride": s, "footprint": [lo, hi],
            "decimation": max(_rel(r[t][k], r2[t][k][:, ::s, ::s]) for t in SHIFTS),
            "equivariance_zero": None if None in zero else max(zero),
            "equivariance_circular": max(_rel(rc2[t][k], _roll(rc2[0][k], t))
                                         for t in SHIFTS),
            "polyphase_circular": max(_rel(rc[t][k], _roll(rc2[0][k], t)[:, ::s, ::s])
                                      for t in SHIFTS),
            "demo": {"channel": c, "r_nearest_shift": [float(v) for v in near],
                     "r2_equivariance": [_interior(r2[t][k][:1], r2[0][k][:1], t, lo, hi)
                                         for t in SHIFTS],
                     "display": quantise({f"{n}_t{t}": v[t][k][0, ..., c]
                                          for n, v in (("r", r), ("r2", r2))
                                          for t in (0, 1)})}}
    return out


def demo_digit(x) -> int:
    """The image whose digit is best centred, at least 4 px from every border
    (so that shifts of up to 3 px are translations, not wrap-arounds)."""
    scores = []
    for im in x:
        ys, xs = np.nonzero(im[..., 0] > 0.05)
        inside = ys.size and min(ys.min(), xs.min()) >= 4 and max(ys.max(), xs.max()) < \
            im.shape[0] - 4
        scores.append(abs(ys.min() + ys.max() - im.shape[0] + 1) / 2 + abs(
            xs.min() + xs.max() - im.shape[1] + 1) / 2 if inside else np.inf)
    return int(np.argmin(scores))


def quantise(maps) -> dict:
    """Display copies of 2-D maps sharing one range: 8-bit rows as hex strings."""
    lo, hi = (float(f([f(m) for m in maps.values()])) for f in (np.min, np.max))
    q = {k: np.round(255 * (m - lo) / max(hi - lo, 1e-12)).astype(np.uint8)
         for k, m in maps.items()}
    return {"vmin": lo, "vmax": hi, **{k: [r.tobytes().hex() for r in v] for k, v in q.items()}}


def dequantise(q: dict, key: str) -> np.ndarray:
    rows = np.stack([np.frombuffer(bytes.fromhex(r), np.uint8) for r in q[key]])
    return q["vmin"] + rows / 255.0 * (q["vmax"] - q["vmin"])


def builtin(ctx) -> dict:
    st = settings(ctx.quick)
    runs, train_seconds, maps = {}, 0.0, None
    for recipe in RECIPES:
        r = ctx.recipe(recipe)
        xtr, ytr, xte, yte = ctx.data(r)
        demo = demo_digit(xte)
        ident_x = xte[[demo] + [i for i in range(st["n_identity"]) if i != demo]]
        runs[r.label] = []
        for seed in ctx.seeds:
            model, fit = ctx.train(recipe, seed)
            model.eval()
            train_seconds += sum(float(h.get("seconds", 0.0)) for h in fit.history)
            key = {"recipe": r.to_dict(), "digest": r.digest(), "seed": seed,
                   "settings": st, "demo": demo}
            ctx.say(f"{r.label} seed {seed}")
            probe = ctx.cached("per_layer_probe", key, lambda: probe_study(
                taps_of(model, mode="pool"),
                lambda name, p: taps_of(model, mode=name, probe=p), xtr, ytr, xte, yte,
                num_classes=model.num_classes, seed=seed, st=st, say=ctx.say))
            ctx.say("  spectra and identities")
            spec = ctx.cached("per_layer_spectra", key, lambda: spectra_study(
                with_input(model.taps), xte[:st["n_spectra"]]))
            ident = ctx.cached("per_layer_identities", key, lambda: identities(model, ident_x))
            if maps is None:
                maps = {"recipe": r.label, "seed": seed, "image": demo, "label": int(yte[demo]),
                        "layers": {k: dict(v["demo"], stride=v["stride"])
                                   for k, v in ident.items()}}
            ident = {k: {n: v for n, v in d.items() if n != "demo"} for k, d in ident.items()}
            runs[r.label].append({"seed": seed, "test_accuracy": fit.test_accuracy,
                                  "probe": probe, "spectra": spec,
                                  "identities": ident})
    return {"runs": runs, "maps": maps, "train_seconds": train_seconds,
            "settings": st, "summary": summarise(runs)}


def summarise(runs: dict) -> dict:
    """Per recipe and layer: across-seed intervals of every plotted number."""
    out = {}
    for label, seeds in runs.items():
        out[label] = {}
        for k in seeds[0]["spectra"]:
            pr = [s["probe"]["layers"][k] for s in seeds]
            sp = [s["spectra"][k] for s in seeds]
            out[label][k] = {
                "stride": sp[0]["stride"][0],
                "accuracy": C.across_seeds([p["accuracy"] for p in pr]),
                **{f"p_change_{p}": C.across_seeds([q[p]["p_change"] for q in pr])
                   for p in PROTOCOLS},
                **{f: C.across_seeds([s[f] for s in sp])
                   for f in ("aliasing_ratio", "shiftability_error")}}
    return out


def external(ctx, ap) -> dict:
    """(b) and (c) on the network of --torch / --keras and the --images folder."""
    from sigcnn.data import train_test_split

    ext = ctx.ext
    if ext.taps is None:
        ap.error("argument --taps: name the layers of the --torch/--keras network "
                 "whose maps the per-layer figure analyses")
    if ext.labels is None:
        ap.error("argument --images: the per-layer probes of the --torch/--keras "
                 "network need labelled images: one subfolder per class, or --labels")
    _, labels = np.unique(ext.labels, return_inverse=True)
    try:
        xtr, ytr, xte, yte = train_test_split(ext.images, labels.astype(np.int32),
                                              key=jax.random.key(0), test_fraction=0.5)
    except ValueError as e:
        ap.error(f"argument --images: cannot split the folder into the probes' "
                 f"training and test halves: {e}")
    st = dict(settings(ctx.quick), n_shift=int(xte.shape[0]), chunk=32,
              n_spectra=min(2 if ctx.quick else 4, int(xte.shape[0])))
    tapf = with_input(ext.taps)
    digest = hashlib.sha1(np.ascontiguousarray(ext.images).tobytes()).hexdigest()[:12]
    key = {"external": ext.label, "weights": ctx.args.weights, "taps": ctx.args.taps,
           "images": digest, "settings": st}
    poolf = jax.jit(lambda v: {k: jnp.mean(m, axis=(1, 2)) for k, m in tapf(v).items()})

    def logits_of(name, p):
        return jax.jit(lambda x: probe_logits(p, jnp.mean(tapf(x)[name], axis=(1, 2))))

    probe = ctx.cached("per_layer_ext_probe", key, lambda: probe_study(
        poolf, logits_of, xtr, ytr, xte, yte, num_classes=int(labels.max()) + 1,
        seed=0, st=st, say=ctx.say))
    spec = ctx.cached("per_layer_ext_spectra", key,
                      lambda: spectra_study(tapf, xte[:st["n_spectra"]]))

    def decimation(x):
        r2, strides = sc.undecimate(ext.taps)(x)
        return {k: {"decimation": _rel(v, r2[k][:, ::strides[k][0], ::strides[k][1]])}
                for k, v in ext.taps(x).items()}

    ident = ctx.cached("per_layer_ext_identities", key,
                       lambda: decimation(jnp.asarray(xte[:1])))
    runs = {ext.label: [{"seed": None, "probe": probe, "spectra": spec, "identities": ident}]}
    summ = summarise(runs)
    for k, row in summ[ext.label].items():      # one network: binomial intervals
        pr, n = probe["layers"][k], probe["n_test"]
        for f, (hits, total) in [("accuracy", (round(pr["accuracy"] * n), n))] + [
                (f"p_change_{p}", (pr[p]["changes"], pr[p]["pairs"])) for p in PROTOCOLS]:
            ci = sc.binomial_ci(int(hits), int(total))
            row[f].update(low=float(ci.low), high=float(ci.high))
    return {"runs": runs, "maps": None, "train_seconds": 0.0, "settings": st,
            "summary": summ, "split": "probes trained on a stratified half of the "
            "folder (key 0), tested on the other half; intervals: Wilson"}


def invariants(rec: dict) -> dict:
    """The facts the figure relies on, each True or False."""
    runs = [s for seeds in rec["runs"].values() for s in seeds]
    ids = [i for s in runs for k, i in s["identities"].items() if k != "input"]
    inv = {"r == r2[::S] exactly at every block": all(i["decimation"] <= TOL for i in ids)}
    if rec["maps"] is not None:
        inv["zero padding: r2(T x) == T r2(x) wherever the receptive field stays in "
            "the image (shifts 1-3 px, 128-px canvas)"] = all(
                i["equivariance_zero"] is not None and i["equivariance_zero"] <= TOL
                for i in ids)
        inv["circular padding: r2(roll x) == roll r2(x) and r(roll(x, t))[i] == "
            "r2(x)[S i - t] at every block"] = all(
                max(i["equivariance_circular"], i["polyphase_circular"]) <= TOL
                for i in ids)
    inv["probe P(change) of block 1 from the per-layer frames == run_shift_test's "
        "(to one pair)"] = all(abs(c["per_layer"] - c["run_shift_test"]) * c["pairs"]
                               <= 1 for s in runs for c in s["probe"]["check"].values())
    inv["the probe on the input's global mean never changes under circular shifts"] = all(
        s["probe"]["layers"]["input"]["circular"]["changes"] == 0 for s in runs)
    inv["aliasing ratio in [0, 1] at every layer"] = all(
        0.0 <= l["aliasing_ratio"] <= 1.0 for s in runs for l in s["spectra"].values())
    inv["shiftability error of the stride-1 input ~ 0"] = all(
        s["spectra"]["input"]["shiftability_error"] < 1e-6 for s in runs)
    return inv


def _spearman(a, b) -> float:
    from scipy import stats

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def _fmt(d, digits=3) -> str:
    return f"{d['mean']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def _trend(rows: dict, field: str) -> tuple[str, str]:
    """Verdict and numbers of 'field grows with the cumulative stride' over the
    strided layers (the input, stride 1, is trivially invariant: not counted)."""
    rows = {k: r for k, r in rows.items() if r["stride"] > 1}
    rho = _spearman([r["stride"] for r in rows.values()],
                    [r[field]["mean"] for r in rows.values()])
    first, last = (rows[k][field] for k in (list(rows)[0], list(rows)[-1]))
    verdict = ("holds" if rho >= 0.9 and last["low"] > first["high"] else "partly"
               if rho > 0 and last["mean"] > first["mean"] else "does not hold")
    text = "; ".join(f"S={r['stride']}: {_fmt(r[field])}" for r in rows.values())
    return verdict, f"{text} (Spearman rho vs stride {rho:.2f})"


def claims(rec: dict) -> list:
    """The paper's claims with our numbers and verdicts computed from them."""
    summ = rec["summary"]
    labels = list(summ)
    base, sec5 = summ[labels[0]], "paper.md §5, per-layer experiment (VGG16) [U]"
    out = []

    def row(claim, paper, sigcnn, verdict):
        out.append({"claim": claim, "paper": paper, "sigcnn": sigcnn, "verdict": verdict})

    for field, what, paper in (
            ("p_change_black", "the probe's P(top-1 change) (Black protocol)", f"{sec5}: "
             "invariance degrades with depth as the cumulative stride grows (1 ... 32)"),
            ("p_change_circular", "the probe's P(top-1 change) under 1-px rolls", sec5),
            ("aliasing_ratio", "the aliasing ratio of r2", "Sections 3-4 (paper.md "
             "§2.3-2.4): ReLUs create energy above 1/(2S), and S grows with depth"),
            ("shiftability_error", "the shiftability error", "Section 3 (paper.md "
             "§2.2-2.3): r is shiftable iff r2 has no energy at or above 1/(2S)")):
        verdict, text = _trend(base, field)
        row(f"{labels[0]}: {what} grows with the cumulative stride", paper, text, verdict)
    pts = [(r["p_change_black"]["mean"], r["aliasing_ratio"]["mean"])
           for rows in summ.values() for r in rows.values() if r["stride"] > 1]
    rho = _spearman(*zip(*pts))
    row("the probe's P(change) and the aliasing ratio rise together across the strided "
        "layers (and models)", "Sections 3-4: the failures follow from aliasing",
        f"Spearman rho {rho:.2f} over {len(pts)} (layer, model) points",
        "holds" if rho >= 0.8 else "partly" if rho > 0.3 else "does not hold")
    if len(labels) > 1:
        aa, last = summ[labels[1]], list(base)[-1]
        for field, what in (("aliasing_ratio", "the aliasing ratio of the last block"),
                            ("p_change_black", "the last block's probe P(change), "
                             "without removing it")):
            b, a = base[last][field], aa[last][field]
            row(f"anti-aliasing ({labels[1]}) lowers {what}", "paper.md §5, remedies "
                "(a) [U]: anti-aliasing (Zhang 2019) is only a partial solution",
                f"{labels[0]} {_fmt(b)} vs {labels[1]} {_fmt(a)}",
                "holds" if a["high"] < b["low"] and (field == "aliasing_ratio"
                                                     or a["low"] > 0)
                else "partly" if a["mean"] < b["mean"] else "does not hold")
    if rec["maps"] is not None:
        lay = [v for k, v in rec["maps"]["layers"].items() if k != "input"]
        near = [v["r_nearest_shift"][1] for v in lay]
        eq = max(v["r2_equivariance"][1] or 0.0 for v in lay)
        row("after a 1-px shift of the input, the strided map r is no shifted copy of r, "
            "while r2 shifts exactly", "Section 3; paper.md §8 (Simoncelli et al. 1992: "
            "a one-sample shift changes critically sampled coefficients) [S]",
            "relative distance of r(T x) to the nearest shift of r(x), blocks 1-4: "
            + ", ".join(f"{v:.3f}" for v in near)
            + f"; max |r2(T x) - T r2(x)| / max |r2| = {eq:.1e}",
            "holds" if min(near) > 0.01 and eq <= TOL else "does not hold")
    return out


def figure(rec: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 14 if rec["maps"] else 4.2), layout="constrained")
    bottom = fig
    if rec["maps"]:
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.5, 1])
        _maps(top, rec["maps"])
    panels = (("accuracy", "probe accuracy (held out)"),
              ("p_change", "probe P(top-1 change), 1-px shifts"),
              ("aliasing_ratio", "aliasing ratio of r2 (energy >= 1/(2S))"),
              ("shiftability_error", "shiftability error of r = r2[::S]"))
    for ax, (field, title) in zip(bottom.subplots(1, 4), panels):
        for color, (label, rows) in zip(("tab:blue", "tab:orange"), rec["summary"].items()):
            x = np.log2([r["stride"] for r in rows.values()])
            lines = [(f"p_change_{p}", f"{label}, {p}", ls) for p, ls in
                     zip(PROTOCOLS, ("-", "--"))] if field == "p_change" else \
                [(field, label, "-")]
            top_ = 2.0 if field == "shiftability_error" else 1.0
            for f, lab, ls in lines:
                ax.plot(x, [r[f]["mean"] for r in rows.values()], ls, marker="o",
                        color=color, label=lab)
                ax.fill_between(x, *(np.clip([r[f][b] for r in rows.values()], 0, top_)
                                     for b in ("low", "high")), color=color, alpha=0.2)
        ax.set_xlabel("log2 cumulative stride")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    return fig


def _maps(sub, maps):
    layers = maps["layers"]
    axs = sub.subplots(4, len(layers), squeeze=False)
    for j, (k, l) in enumerate(layers.items()):
        s, q = l["stride"], l["display"]
        for i, key in enumerate(("r_t0", "r_t1", "r2_t0", "r2_t1")):
            im = dequantise(q, key)
            n = im.shape[0] * (s if i < 2 else 1)        # r's pixel i sits at S i
            axs[i, j].imshow(im, cmap="magma", vmin=q["vmin"], vmax=q["vmax"],
                             interpolation="nearest", extent=(-0.5, n - 0.5, n - 0.5, -0.5))
            axs[i, j].set(xticks=[], yticks=[],
                          ylabel=("r(x)", "r(T x)", "r2(x)", "r2(T x)")[i] if j == 0 else "")
        axs[0, j].set_title(f"{k} (S = {s}), channel {l['channel']}", fontsize=10)
        axs[1, j].set_xlabel(f"distance to nearest shift of r(x): "
                             f"{l['r_nearest_shift'][1]:.2f}", fontsize=8)
        eq = l["r2_equivariance"][1]
        axs[3, j].set_xlabel("vs T r2(x) (interior): " + (
            "n/a" if eq is None else f"{eq:.0e}"), fontsize=8)
    sub.suptitle(f"{maps['recipe']} seed {maps['seed']}, held-out digit {maps['label']} "
                 f"shifted by T = 1 px diagonally: r(T x) is no shifted copy of r(x), "
                 f"r2 shifts exactly, r = r2[::S]", fontsize=11)


def main() -> int:
    held = {}
    ctx = C.setup(NAME, __doc__, extra=lambda ap: held.setdefault("ap", ap))
    rec = external(ctx, held["ap"]) if ctx.ext is not None else builtin(ctx)
    rec["invariants"] = invariants(rec)
    rec["claims"] = claims(rec)
    for c in rec["claims"]:
        ctx.say(f"[{c['verdict']}] {c['claim']}: {c['sigcnn']}")
    return C.finish(ctx, rec, figure(rec))


if __name__ == "__main__":
    sys.exit(main())
