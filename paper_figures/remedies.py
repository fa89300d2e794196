"""Remedies are partial (Azulay & Weiss, Section 5 / JMLR Section 6).

One table and one figure over the remedies for the shift sensitivity of a CNN,
each trained over the seeds: the baseline (max pooling); BlurPool with binomial
filters of 2 to 7 taps (Zhang 2019); an ideal low-pass (an exact DFT box
keeping the frequencies below 1/4 cycle per pixel of the map, i.e. 1/(2S) of
the stride S = 2 that follows, before each subsampling); adaptive polyphase
sampling (APS, Chaman & Dokmanić 2021) with zero and with circular padding;
reduced subsampling (the pools after stage k keep stride 1 and the later
layers are dilated, à trous, so the last map is r2 at stride 2**k); training
with random translations of growing range (4 and 8 px, zero fill); and two
combinations (BlurPool-4 and APS, each with translations of 8 px).

Columns, per model and seed (then mean and Student-t interval over seeds):
test accuracy (1,000 canvases); P(top-1 change) under the Crop, Black and
Circular protocols of `sigcnn.shift_test.run_shift_test` (the authors'
geometry: 8 consecutive diagonal 1-px pairs per image, crop margin 10, black
shrink 1.6); the all-shift robust accuracy (correct at every one of the 8 x 8
circular shifts, by brute force); the aliasing at the last stage, local (the
energy of the signal that the last subsampling decimates at or above its
Nyquist rate 1/4; Ribeiro & Schön) and global (the energy of the undecimated
last map r2 at or above 1/(2S), S its cumulative stride; Azulay & Weiss), r2
from the undecimated twin with the same weights (none for APS, which picks its
phase from the data); FLOPs of one forward pass (XLA's cost analysis of the
compiled pass, and the analytic count of the convs and the classifier); the
inference time per image relative to the baseline, measured in this process;
and the training time per epoch. Each claim of the paper gets a verdict from
these numbers (paired across seeds where two models are compared).

Scale: to train 16 models x 3 seeds within the time budget this script uses
32 x 32 MNIST canvases and a three-stage VGG (one conv per stage, width 0.25:
8, 16, 32 channels, global-average-pooled head) of total stride 8, whose last
map is 4 x 4 as the shared stride-16 network's at 64 x 64; 5 epochs of Adam
(batch 64, learning rate 0.01). ``--quick`` trains the baseline, BlurPool-4
and APS for 2 epochs on 1,024 images (the ideal low-pass is then only checked on
the baseline's weights).

Usage: ``python paper_figures/remedies.py [--quick] [--seeds N] [--out DIR]
[--cache DIR]``; writes ``remedies.png`` and ``remedies.json``. Models and the
evaluation of each model and seed are cached; a second run only redraws.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _common import Recipe, across_seeds, finish, setup
from _nets import all_shift_tops, jitted, measure_costs

VERSION = 2
PROTOCOLS = ("crop", "black", "circular")
N_EVAL, N_ALL, N_SPEC, N_CHECK = 200, 100, 64, 100      # test images per measure
QUICK_N = (48, 24, 16, 24)
BASE = Recipe("rem-baseline", model="_nets:vgg3", options=(("width", 0.25),),
              canvas_size=32, epochs=5, batch_size=64, learning_rate=1e-2)


def _variant(name, *, aug=0, **options) -> dict:
    r = BASE.with_options(f"rem-{name}", **options).replace(augment_shift=aug)
    d = dict(options)
    return {"name": name, "recipe": r, "mode": d.get("downsample", "max"),
            "blur_size": d.get("blur_size"), "augment": aug,
            "padding": d.get("padding", "zero"), "keep": d.get("keep_strides")}


VARIANTS = ([_variant("baseline")]
            + [_variant(f"blur-{k}", downsample="blur", blur_size=k) for k in range(2, 8)]
            + [_variant("ideal-lpf", downsample="ideal"),
               _variant("aps", downsample="aps"),
               _variant("aps-circ", downsample="aps", padding="circular"),
               _variant("reduced-2", keep_strides=2),
               _variant("reduced-1", keep_strides=1),
               _variant("aug-4", aug=4), _variant("aug-8", aug=8),
               _variant("blur-4+aug-8", aug=8, downsample="blur", blur_size=4),
               _variant("aps+aug-8", aug=8, downsample="aps")])
COST_ONLY = [_variant("reduced-0", keep_strides=0)]     # r == r2: FLOPs and time only
QUICK = ("baseline", "blur-4", "aps")
QUICK_COST_ONLY = [_variant(f"reduced-{k}", keep_strides=k) for k in (2, 1, 0)]


def total_stride(v: dict) -> int:
    return 2 ** (3 if v["keep"] is None else v["keep"])


def evaluate(ctx, v: dict, seed: int, sizes) -> dict:
    """Every per-model number of the table for one variant and seed."""
    import jax

    import sigcnn as sc
    from sigcnn.models import variant
    from sigcnn.shift_test import run_shift_test

    n_eval, n_all, n_spec, n_check = sizes
    model, res = ctx.train(v["recipe"], seed)
    hist = res.history
    x, y = ctx.test_images(v["recipe"], max(n_eval, n_all, n_spec, n_check))
    key = jax.random.key(0)
    clock = [time.perf_counter()]

    def lap(name):
        clock.append(time.perf_counter())
        out["seconds"][name] = clock[-1] - clock[-2]

    out = {"accuracy": res.test_accuracy, "seconds": {},
           "train_seconds": float(sum(h["seconds"] for h in hist)),
           "epoch_seconds": float(np.mean([h["train_seconds"] for h in hist[1:]]
                                          or [hist[0]["train_seconds"]]))}
    st = run_shift_test(model, x[:n_eval], y[:n_eval], key=key, protocols=PROTOCOLS,
                        consistency=None, all_shifts=False, sweep_images=0,
                        n_pairs=8, step=1, direction="diagonal")
    out["protocols"] = {p.name: {"p": p.p_top1_change, "p_ci": list(p.p_top1_change_ci),
                                 "mac": p.mac, "accuracy": p.accuracy}
                        for p in st.protocols}
    lap("protocols")
    tops = all_shift_tops(jitted(model), x[:n_all])
    correct = tops == y[:n_all, None]
    out["all_shifts"] = {"robust_accuracy": float(np.mean(correct.all(axis=1))),
                         "accuracy": float(np.mean(correct[:, 0])),
                         "invariant": float(np.mean((tops == tops[:, :1]).all(axis=1))),
                         "n_images": int(n_all)}
    lap("all_shifts")
    xs = x[:n_spec]
    taps = jitted(model, "taps", pre=True)(xs)
    last = f"block{len(model.stages)}"
    out["local_aliasing"] = (float(sc.aliasing_ratio(taps["pre3"], 2))
                             if v["keep"] is None else None)
    out["global_aliasing"] = out["twin_error"] = None
    s = total_stride(v)
    if v["mode"] != "aps":
        r2 = jitted(variant(model, undecimated=True), "taps")(xs)[last]
        out["global_aliasing"] = float(sc.aliasing_ratio(r2, s))
        ref = np.asarray(taps[last])
        out["twin_error"] = float(np.max(np.abs(np.asarray(r2)[:, ::s, ::s] - ref))
                                  / max(float(np.max(np.abs(ref))), 1e-30))
    if v["name"] == "baseline":     # these weights with ideal low-pass pooling
        pre = jitted(variant(model, downsample="ideal"), "taps", pre=True)(xs)["pre3"]
        out["ideal_twin_local_aliasing"] = float(sc.aliasing_ratio(pre, 2))
    lap("aliasing")
    # Exact facts of the circularly padded twin (same weights): no top-1 change
    # under circular shifts by the total stride (by 1 px for APS; consecutive
    # 1-px pairs without a change imply none at the stride either).
    circ = variant(model, padding="circular")
    step = 1 if v["mode"] == "aps" else s
    p = run_shift_test(circ, x[:n_check], y[:n_check], key=key, protocols=("circular",),
                       consistency=None, all_shifts=False, sweep_images=0, n_pairs=8,
                       step=step).protocol("circular").p_top1_change
    out["circular_twin"] = {"step": step, "p": p}
    lap("circular_twin")
    return out


def summarise(evals: dict) -> dict:
    """Across-seed intervals of every number of the table."""
    def col(f):
        return across_seeds([f(e) for e in evals])

    def opt(f):
        vals = [f(e) for e in evals]
        return None if any(v is None for v in vals) else across_seeds(vals)

    return {"accuracy": col(lambda e: e["accuracy"]),
            "p": {p: col(lambda e, p=p: e["protocols"][p]["p"]) for p in PROTOCOLS},
            "mac": {p: col(lambda e, p=p: e["protocols"][p]["mac"]) for p in PROTOCOLS},
            "robust_accuracy": col(lambda e: e["all_shifts"]["robust_accuracy"]),
            "local_aliasing": opt(lambda e: e["local_aliasing"]),
            "global_aliasing": opt(lambda e: e["global_aliasing"]),
            "epoch_seconds": col(lambda e: e["epoch_seconds"])}


def run(ctx) -> dict:
    variants = [v for v in VARIANTS if not ctx.quick or v["name"] in QUICK]
    cost_only = QUICK_COST_ONLY if ctx.quick else COST_ONLY
    sizes = QUICK_N if ctx.quick else (N_EVAL, N_ALL, N_SPEC, N_CHECK)
    models, train_seconds = {}, 0.0
    for v in variants:
        evals = []
        for seed in ctx.seeds:
            r = ctx.recipe(v["recipe"])
            key = {"recipe": r.to_dict(), "digest": r.digest(), "seed": seed,
                   "sizes": list(sizes), "version": VERSION}
            ctx.say(f"{v['name']} seed {seed}")
            e = ctx.cached("remedies", key,
                           lambda v=v, seed=seed: evaluate(ctx, v, seed, sizes))
            ctx.say(f"  acc {e['accuracy']:.3f}, P(change) " + ", ".join(
                f"{p} {e['protocols'][p]['p']:.3f}" for p in PROTOCOLS)
                + f", robust {e['all_shifts']['robust_accuracy']:.3f}")
            train_seconds += e["train_seconds"]
            evals.append(e)
        models[v["name"]] = {"label": v["recipe"].label, "mode": v["mode"],
                             "blur_size": v["blur_size"], "augment": v["augment"],
                             "padding": v["padding"], "keep_strides": v["keep"],
                             "total_stride": total_stride(v), "trained": True,
                             "seeds": evals, **summarise(evals)}
    for v in cost_only:
        models[v["name"]] = {"label": v["recipe"].label, "mode": v["mode"],
                             "keep_strides": v["keep"], "total_stride": total_stride(v),
                             "trained": False}
    ctx.say("FLOPs and inference time")
    names = [v["name"] for v in variants + cost_only]
    archs = {v["name"]: dict(v["recipe"].options) for v in variants + cost_only}
    sizes_t = dict(batch=64, reps=2, rounds=1) if ctx.quick else {}
    costs = ctx.cached("remedies-cost", {"models": names, "version": VERSION},
                       lambda: measure_costs(archs, **sizes_t))
    for name, m in models.items():
        m["cost"] = costs["models"][name]
    return {"models": models, "train_seconds": train_seconds, "cost_batch": costs["batch"],
            "sizes": dict(zip(("n_eval", "n_all_shifts", "n_spectra", "n_check"), sizes))}


# -- the table, the invariants and the claims ----------------------------------


def _ci(d, digits=3) -> str:
    if d is None:
        return "n/a"
    if d["low"] == d["high"]:
        return f"{d['mean']:.{digits}f}"
    return f"{d['mean']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def table_rows(rec: dict) -> list[dict]:
    """One row per model: every column of the table as text."""
    rows = []
    for name, m in rec["models"].items():
        c = m["cost"]
        row = {"model": name, "stride": m["total_stride"]}
        if m["trained"]:
            row.update({"accuracy": _ci(m["accuracy"]),
                        **{f"P {p}": _ci(m["p"][p]) for p in PROTOCOLS},
                        "robust acc": _ci(m["robust_accuracy"]),
                        "local alias": _ci(m["local_aliasing"]),
                        "global alias": _ci(m["global_aliasing"]),
                        "s/epoch": f"{m['epoch_seconds']['mean']:.1f}"})
        else:
            row.update({k: "not trained" for k in (
                "accuracy", *(f"P {p}" for p in PROTOCOLS), "robust acc",
                "local alias", "global alias", "s/epoch")})
        row.update({"MFLOPs": f"{c['analytic_flops'] / 1e6:.2f}",
                    "FLOPs x": f"{c['flops_ratio']:.2f}",
                    "XLA MFLOPs": f"{c['xla_flops'] / 1e6:.2f}",
                    "time x": f"{c['time_ratio']:.2f}"})
        rows.append(row)
    return rows


def _seeds(m, get):
    return [get(e) for e in m["seeds"]]


def _p(proto):
    return lambda e: e["protocols"][proto]["p"]


def invariants(rec: dict) -> dict:
    """The exact facts the figure relies on, each True or False."""
    models = rec["models"]
    trained = {n: m for n, m in models.items() if m["trained"]}
    seeds = [e for m in trained.values() for e in m["seeds"]]
    aps = [e for m in trained.values() if m["mode"] == "aps" for e in m["seeds"]]
    aps_circ = [e for m in trained.values() if m["mode"] == "aps"
                and m["padding"] == "circular" for e in m["seeds"]]
    ideal = [e for m in trained.values() if m["mode"] == "ideal" for e in m["seeds"]]
    twins = [e["twin_error"] for e in seeds if e["twin_error"] is not None]
    red = [models[n]["cost"] for n in ("baseline", "reduced-2", "reduced-1", "reduced-0")
           if n in models]
    grows = all(b["xla_flops"] > a["xla_flops"] and b["analytic_flops"] >= a["analytic_flops"]
                for a, b in zip(red, red[1:])) and len(red) == 4 and \
        red[3]["analytic_flops"] > red[2]["analytic_flops"] > red[1]["analytic_flops"]
    return {
        "circularly padded twins never change top-1 under circular shifts by "
        "their total stride": all(e["circular_twin"]["p"] == 0 for e in seeds),
        "APS with circular padding never changes top-1 under circular 1-px "
        "shifts": bool(aps) and all(e["circular_twin"]["step"] == 1
                                  and e["circular_twin"]["p"] == 0 for e in aps)
        and all(e["protocols"]["circular"]["p"] == 0 for e in aps_circ),
        "ideal low-pass (trained, and the baseline's weights with it): local "
        "aliasing at the last subsampling < 1e-6":
            all(e["local_aliasing"] < 1e-6 for e in ideal)
            and all(e["ideal_twin_local_aliasing"] < 1e-6
                    for e in models["baseline"]["seeds"]),
        "strided last map == undecimated twin sampled at the total stride "
        "(relative error < 1e-4)": bool(twins) and max(twins) < 1e-4,
        "all-shift robust accuracy <= accuracy on the same unshifted images":
            all(e["all_shifts"]["robust_accuracy"] <= e["all_shifts"]["accuracy"]
                for e in seeds),
        "FLOPs grow as strides are removed (XLA: baseline < reduced-2 < reduced-1 < "
        "reduced-0; analytic convs: baseline <= reduced-2 < reduced-1 < reduced-0)": grows,
    }


def _verdict(full: bool, some: bool) -> str:
    return "holds" if full else ("partly" if some else "does not hold")


def _paired(models, a, b, get) -> dict:
    """Across-seed interval of get(b) - get(a), seed by seed."""
    return across_seeds([y - x for x, y in zip(_seeds(models[a], get),
                                               _seeds(models[b], get))])


def _partial(models, base, remedy, *, claim, paper) -> dict:
    """"`remedy` lowers P(change) but never to 0": holds if the paired change is
    negative (interval below 0) in every protocol, partly in some, else not."""
    diffs = {p: _paired(models, base, remedy, _p(p)) for p in PROTOCOLS}
    nonzero = all(v > 0 for p in PROTOCOLS for v in _seeds(models[remedy], _p(p)))
    lower = [p for p, d in diffs.items() if d["high"] < 0]
    text = "; ".join(f"{p}: {models[base]['p'][p]['mean']:.3f} -> "
                     f"{_ci(models[remedy]['p'][p])} (paired change "
                     f"{diffs[p]['mean']:+.3f} [{diffs[p]['low']:+.3f}, "
                     f"{diffs[p]['high']:+.3f}])" for p in PROTOCOLS)
    text += (f"; significantly lower in: {', '.join(lower) or 'none'}"
             f"; P(change) > 0 for every seed and protocol: {nonzero}")
    return {"claim": claim, "paper": paper, "sigcnn": f"{base} -> {remedy}, {text}",
            "verdict": _verdict(nonzero and len(lower) == len(PROTOCOLS),
                                nonzero and bool(lower))}


def _spearman(a, b) -> float:
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def claims(rec: dict) -> list[dict]:
    """The paper's statements against our numbers (verdicts from the numbers)."""
    models = rec["models"]
    mean = {n: {p: m["p"][p]["mean"] for p in PROTOCOLS} for n, m in models.items()
            if m["trained"]}
    out = [_partial(models, "baseline", "blur-4",
                    claim="anti-aliasing (BlurPool, 4 taps) reduces P(top-1 change) but "
                          "does not eliminate it",
                    paper="JMLR abstract: antialiasing is 'only a partial solution at "
                          "best' (paper.md Section 1)")]
    rel = {p: 1 - mean["blur-4"][p] / mean["baseline"][p] if mean["baseline"][p] else 0.0
           for p in PROTOCOLS}
    out.append({"claim": "anti-aliasing helps in Crop much more than in Black",
                "paper": "JMLR Section 6(a), paper.md Section 5 (a) [U]",
                "sigcnn": f"relative reduction of P(change) by blur-4: crop {rel['crop']:.2f}, "
                          f"black {rel['black']:.2f}, circular {rel['circular']:.2f}",
                "verdict": _verdict(rel["crop"] > 2 * rel["black"] and rel["crop"] > 0,
                                    rel["crop"] > max(rel["black"], 0))})
    blur = sorted((m["blur_size"], n) for n, m in models.items()
                  if m["mode"] == "blur" and not m.get("augment"))
    if len(blur) >= 3:
        sizes = [k for k, _ in blur]
        rho = {p: _spearman(sizes, [mean[n][p] for _, n in blur]) for p in PROTOCOLS}
        rho_acc = _spearman(sizes, [models[n]["accuracy"]["mean"] for _, n in blur])
        out.append({"claim": "larger blur filters give more invariance",
                    "paper": "Zhang 2019 (paper.md 7.1): ResNet50 consistency 89.96 "
                             "(Rect-2) < 90.91 (Tri-3) < 91.31 (Bin-5)",
                    "sigcnn": "Spearman rho of filter size (2-7) with P(change): " + ", ".join(
                        f"{p} {r:+.2f}" for p, r in rho.items())
                        + f"; with accuracy {rho_acc:+.2f}",
                    "verdict": _verdict(all(r <= -0.6 for r in rho.values()),
                                        any(r < 0 for r in rho.values()))})
    if "ideal-lpf" in models:
        ide = models["ideal-lpf"]
        loc = max(_seeds(ide, lambda e: e["local_aliasing"]))
        pos = {p: min(_seeds(ide, _p(p))) > 0 for p in PROTOCOLS}
        out.append({"claim": "an ideal low-pass before every subsampling removes its aliasing "
                             "but not the shift sensitivity (nonlinearities after it alias "
                             "again)",
                    "paper": "Section 3 / paper.md 2.4 (ReLU creates frequencies above "
                             "Nyquist); JMLR abstract: antialiasing is partial",
                    "sigcnn": f"local aliasing at the last subsampling <= {loc:.1e}; P(change) "
                              + ", ".join(f"{p} {_ci(ide['p'][p])}" for p in PROTOCOLS),
                    "verdict": _verdict(loc < 1e-6 and all(pos.values()),
                                        loc < 1e-6 and any(pos.values()))})
    aps_name = "aps-circ" if "aps-circ" in models else "aps"
    aps = models[aps_name]
    circ = (_seeds(aps, _p("circular")) if aps_name == "aps-circ" else
            _seeds(aps, lambda e: e["circular_twin"]["p"]))
    real = all(v > 0 for p in ("crop", "black") for v in _seeds(aps, _p(p)))
    black0 = max(_seeds(aps, _p("black"))) == 0
    out.append({"claim": "APS gives exact invariance to circular shifts (circular "
                         "padding) but not to crop or black-canvas shifts",
                "paper": "Chaman & Dokmanic 2021 (paper.md 7.2): 100% circular "
                         "consistency; A&W's protocols are not circular",
                "sigcnn": f"{aps_name}: circular P(change) per seed {circ}; crop "
                          f"{_ci(aps['p']['crop'])}, black {_ci(aps['p']['black'])}; "
                          "APS with zero padding, circular: "
                          f"{_ci(models['aps']['p']['circular'])}" + (
                              "; Black is exact too: its frames (the shrunk image on a "
                              "canvas of 0, with 0 borders) are circular shifts of each "
                              "other" if black0 else ""),
                "verdict": _verdict(max(circ) == 0 and real, max(circ) == 0)})
    if "aug-8" in models:
        out.append(_partial(models, "baseline", "aug-8",
                            claim="augmentation (random translations up to 8 px) improves "
                                  "invariance only partially",
                            paper="JMLR abstract: increasing data augmentation is 'only a "
                                  "partial solution at best'"))
        seq = ["baseline", "aug-4", "aug-8"]
        mono = {p: all(mean[b][p] < mean[a][p] for a, b in zip(seq, seq[1:]))
                for p in PROTOCOLS}
        out.append({"claim": "a larger translation range gives more invariance",
                    "paper": "JMLR abstract, remedy (2): increasing data augmentation",
                    "sigcnn": "P(change) for 0 / 4 / 8 px: " + "; ".join(
                        f"{p} " + " / ".join(f"{mean[n][p]:.3f}" for n in seq)
                        for p in PROTOCOLS),
                    "verdict": _verdict(all(mono.values()),
                                        any(mean["aug-8"][p] < mean["baseline"][p]
                                            for p in PROTOCOLS))})
    red = [n for n in ("reduced-2", "reduced-1", "reduced-0") if n in models]
    cost = {n: models[n]["cost"] for n in red}
    s2 = {n: (8 / models[n]["total_stride"]) ** 2 for n in red}
    out.append({"claim": "reducing subsampling costs compute, about s^2 more for a "
                         "stride s removed",
                "paper": "JMLR Section 6(c), paper.md Section 5 (c) [U]",
                "sigcnn": "; ".join(
                    f"{n}: FLOPs x{c['flops_ratio']:.2f} (convs; XLA x"
                    f"{c['xla_flops_ratio']:.2f}; s^2 = {s2[n]:.0f}), time "
                    f"x{c['time_ratio']:.2f}" for n, c in cost.items()),
                "verdict": _verdict(all(c["flops_ratio"] >= 0.5 * s2[n]
                                        for n, c in cost.items()),
                                    all(c["xla_flops_ratio"] > 1 for c in cost.values()))})
    if "reduced-1" in mean:
        out.append(_partial(models, "baseline", "reduced-1",
                            claim="reducing subsampling (total stride 8 -> 2) reduces "
                                  "P(top-1 change), but not to 0",
                            paper="JMLR Section 6(c), paper.md Section 5 (c) [U]: r = r2 is "
                                  "shiftable"))
    if "blur-4+aug-8" in mean:
        combo = {p: mean["blur-4+aug-8"][p] < min(mean["blur-4"][p], mean["aug-8"][p])
                 for p in PROTOCOLS}
        nonzero = all(mean["blur-4+aug-8"][p] > 0 for p in PROTOCOLS)
        out.append({"claim": "combining anti-aliasing and augmentation beats either alone, "
                             "yet stays partial",
                    "paper": "JMLR abstract: both remedies partial",
                    "sigcnn": "P(change) blur-4 / aug-8 / both: " + "; ".join(
                        f"{p} {mean['blur-4'][p]:.3f} / {mean['aug-8'][p]:.3f} / "
                        f"{mean['blur-4+aug-8'][p]:.3f}" for p in PROTOCOLS),
                    "verdict": _verdict(all(combo.values()) and nonzero,
                                        any(combo.values()) and nonzero)})
    base = models["baseline"]
    lower = [(models[n]["local_aliasing"]["mean"] < base["local_aliasing"]["mean"],
              models[n]["global_aliasing"]["mean"] < base["global_aliasing"]["mean"])
             for _, n in blur]
    out.append({"claim": "BlurPool lowers the aliasing at the last stage",
                "paper": "Section 3 (anti-aliasing removes energy above the Nyquist rate); "
                         "Zhang 2019",
                "sigcnn": f"baseline local {_ci(base['local_aliasing'])}, global "
                          f"{_ci(base['global_aliasing'])}; " + "; ".join(
                              f"{n} {_ci(models[n]['local_aliasing'])} / "
                              f"{_ci(models[n]['global_aliasing'])}" for _, n in blur),
                "verdict": _verdict(all(a and b for a, b in lower),
                                    any(a or b for a, b in lower))})
    pts = [(m["local_aliasing"]["mean"], m["p"]["circular"]["mean"])
           for m in models.values() if m["trained"] and m["local_aliasing"] is not None]
    rho = _spearman(*zip(*pts)) if len(pts) >= 3 else float("nan")
    out.append({"claim": "across remedies, less aliasing at the last subsampling goes with "
                         "fewer top-1 changes under circular shifts",
                "paper": "Section 3: invariance of global pooling needs a shiftable "
                         "(alias-free) last map",
                "sigcnn": f"Spearman rho = {rho:+.2f} over {len(pts)} models",
                "verdict": _verdict(rho >= 0.6, rho > 0)})
    d = _paired(models, "baseline", "blur-4", lambda e: e["accuracy"])
    out.append({"claim": "anti-aliasing also improves accuracy",
                "paper": "Zhang 2019 (paper.md 7.1): ResNet50 76.16 -> 77.04 (Bin-5), "
                         "VGG16 71.59 -> 72.33",
                "sigcnn": f"blur-4 - baseline accuracy: {d['mean']:+.3f} "
                          f"[{d['low']:+.3f}, {d['high']:+.3f}]",
                "verdict": _verdict(d["low"] > 0, d["high"] >= 0)})
    return out


def figure(rec: dict):
    from matplotlib.figure import Figure

    models = rec["models"]
    trained = [n for n, m in models.items() if m["trained"]]
    fig = Figure(figsize=(16, 9), layout="constrained")
    (a, b, c), (d, e, f) = fig.subplots(2, 3)
    colors = {"crop": "tab:blue", "black": "tab:orange", "circular": "tab:green"}

    def bar(ax, names, get, label, color, dx, width):
        xs = np.arange(len(names)) + dx
        vals = [get(models[n]) for n in names]
        mean = [v["mean"] for v in vals]
        err = np.array([[v["mean"] - v["low"], v["high"] - v["mean"]] for v in vals]).T
        ax.bar(xs, mean, width, yerr=err, color=color, label=label, capsize=2)

    for i, p in enumerate(PROTOCOLS):
        bar(a, trained, lambda m, p=p: m["p"][p], p, colors[p], (i - 1) * 0.27, 0.27)
    a.set_xticks(range(len(trained)), trained, rotation=60, ha="right", fontsize=8)
    a.set_ylabel("P(top-1 change), 1-px diagonal shifts")
    a.set_title("P(top-1 change) per remedy (mean, 95% interval over seeds)")
    a.legend(fontsize=8)
    a.set_ylim(bottom=0)

    blur = [n for n in trained if models[n]["mode"] == "blur" and not models[n]["augment"]]
    sizes = [1] + [models[n]["blur_size"] for n in blur]
    for p in PROTOCOLS:
        vals = [models["baseline"]["p"][p]] + [models[n]["p"][p] for n in blur]
        _band(b, sizes, vals, colors[p], p)
        if "ideal-lpf" in models:
            b.axhline(models["ideal-lpf"]["p"][p]["mean"], color=colors[p], ls=":", lw=1)
    acc = [models["baseline"]["accuracy"]] + [models[n]["accuracy"] for n in blur]
    b2 = b.twinx()
    _band(b2, sizes, acc, "k", "accuracy", ls="--")
    b2.set_ylabel("test accuracy (dashed)")
    b.set_xlabel("blur filter taps (1 = max pooling, the baseline)")
    b.set_ylabel("P(top-1 change)")
    b.set_title("BlurPool filter size (dotted: ideal low-pass)")
    b.legend(fontsize=8, loc="upper right")
    b.set_ylim(bottom=0)

    aug = [n for n in ("baseline", "aug-4", "aug-8") if n in models]
    if len(aug) > 1:
        for p in PROTOCOLS:
            _band(c, [models[n]["augment"] for n in aug], [models[n]["p"][p] for n in aug],
                  colors[p], p)
        _band(c, [models[n]["augment"] for n in aug],
              [models[n]["robust_accuracy"] for n in aug], "k", "robust accuracy", ls="--")
        c.legend(fontsize=8)
        c.set_ylim(bottom=0)
    else:
        c.text(0.5, 0.5, "no augmented models (--quick)", ha="center",
               transform=c.transAxes)
    c.set_xlabel("training translations up to (px)")
    c.set_ylabel("P(top-1 change) / all-shift robust accuracy")
    c.set_title("augmentation of growing range")

    for n in trained:
        m = models[n]
        _cross(d, m["accuracy"], m["p"]["circular"], n)
    d.set_xlabel("test accuracy")
    d.set_ylabel("P(top-1 change), circular shifts")
    d.set_title("invariance vs accuracy")
    d.set_ylim(bottom=-0.01)

    for n in trained:
        m = models[n]
        if m["local_aliasing"] is not None:
            _cross(e, m["local_aliasing"], m["p"]["circular"], n)
    e.set_xlabel("local aliasing ratio at the last subsampling")
    e.set_ylabel("P(top-1 change), circular shifts")
    e.set_title("aliasing at the last stage vs invariance")
    e.set_ylim(bottom=-0.01)

    names = list(models)
    xs = np.arange(len(names))
    f.bar(xs - 0.2, [models[n]["cost"]["flops_ratio"] for n in names], 0.4,
          label="FLOPs (analytic convs + classifier)")
    f.bar(xs + 0.2, [models[n]["cost"]["time_ratio"] for n in names], 0.4,
          label="inference time (measured)")
    f.axhline(1, color="k", lw=0.8)
    f.set_yscale("log")
    f.set_ylim(0.5, None)
    f.set_xticks(xs, names, rotation=60, ha="right", fontsize=8)
    f.set_ylabel("relative to the baseline")
    f.set_title("cost per image")
    f.legend(fontsize=8)
    return fig


def _band(ax, xs, vals, color, label, ls="-"):
    ax.plot(xs, [v["mean"] for v in vals], "o" + ls, color=color, label=label, ms=4)
    ax.fill_between(xs, [v["low"] for v in vals], [v["high"] for v in vals],
                    color=color, alpha=0.15)


def _cross(ax, xv, yv, label):
    ax.errorbar(xv["mean"], yv["mean"],
                xerr=[[xv["mean"] - xv["low"]], [xv["high"] - xv["mean"]]],
                yerr=[[yv["mean"] - yv["low"]], [yv["high"] - yv["mean"]]],
                fmt="o", ms=4, capsize=2)
    ax.annotate(label, (xv["mean"], yv["mean"]), fontsize=7, xytext=(3, 3),
                textcoords="offset points")


def main() -> int:
    ctx = setup("remedies", __doc__, external=False)
    rec = {"scale": {"canvas_size": 32, "stages": [[8], [16], [32]], "total_stride": 8,
                     "last_map": [4, 4], "head": "gap", "recipe": BASE.to_dict()},
           "protocols": list(PROTOCOLS),
           "geometry": {"n_pairs": 8, "step": 1, "direction": "diagonal",
                        "crop_margin": 10, "embed_factor": 1.6, "all_shifts": [8, 8]},
           **run(ctx)}
    rec["table"] = table_rows(rec)
    rec["invariants"] = invariants(rec)
    rec["claims"] = claims(rec)
    cols = list(rec["table"][0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in rec["table"]:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    for c in rec["claims"]:
        ctx.say(f"[{c['verdict']}] {c['claim']}: {c['sigcnn']}")
    return finish(ctx, rec, figure(rec))


if __name__ == "__main__":
    sys.exit(main())
