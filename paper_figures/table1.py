"""Table 1 and the size sweep (Azulay & Weiss, Table 1; ``CheckTranslationInvariance.py``).

How often a one-pixel shift changes a CNN's top-1 class, with the authors'
geometry (`sigcnn.shift_test.run_shift_test`: 8 consecutive pairs per image,
each moving the content one pixel diagonally; P(top-1 change) with a Wilson
interval over the pairs; MAC, the mean absolute change of the first frame's
top-class probability, with a bootstrap interval over images):

1. Table 1 in four protocols: Crop (windows of the image resized by +10 px),
   Black (the image shrunk by 1.6 on a canvas of 0), Inpaint (the same, the
   canvas inpainted) and Scale (the embedded image grows one pixel per pair).
2. The authors' size sweep, ``Sizes = arange(0.1, 2.1, 0.3)``: a size s <= 1 is
   a random crop of area fraction s (torchvision's ``RandomResizedCrop(scale=(s,
   s))``: aspect ratio log-uniform in [3/4, 4/3], random position, one seeded
   draw per image shared by every model) resized to the image size + 10 px and
   cropped as in Crop; s > 1 is Black with the image shrunk by s. Sizes 1.0 and
   1.6 are Table 1's Crop and Black rows.

Built-in models: `BASELINE`, `ANTIALIASED` (BlurPool, 4 taps) and augment-16
(BASELINE trained with random translations up to 16 px, zero fill), over the
seeds (means with across-seed Student-t intervals; the within-run intervals are
kept in the JSON), on the first 500 test canvases. The circularly padded twin
of each (`sigcnn.models.variant`) must never change its top-1 class under
circular shifts by multiples of the total stride 16.

Usage::

    python paper_figures/table1.py [--quick] [--seeds N] [--out DIR] [--cache DIR]
    python paper_figures/table1.py --keras onet:onet --output 2 --probabilities \\
        --images DIR --size 48 --normalize tf

The second form measures a pretrained network on an image folder (no seeds;
intervals over images): MTCNN's ONet (`onet.py`) on the face / non-face folder
of `make_faces.py`. Writes ``table1.png`` and ``table1.json`` (the second form:
``table1_external.png`` and ``.json``); evaluations are cached per model and seed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys

import numpy as np
from _common import ANTIALIASED, BASELINE, across_seeds, finish, setup

PROTOCOLS = ("crop", "black", "inpaint", "scale")
SIZES = tuple(round(float(s), 1) for s in np.arange(0.1, 2.1, 0.3))   # the authors'
EMBED_FACTOR = 1.6                  # Table 1's Black / Inpaint / Scale shrink factor
MARGIN = 10                         # the authors' 234 - 224
N_PAIRS = 8
STRIDE = 16                         # total stride of the built-in models
RATIO = (3 / 4, 4 / 3)              # RandomResizedCrop's aspect-ratio range
AUGMENT = BASELINE.replace(label="augment-16", augment_shift=16)
RECIPES = (BASELINE, ANTIALIASED, AUGMENT)
RUN = dict(consistency=None, all_shifts=False, sweep_images=0, n_pairs=N_PAIRS,
           direction="diagonal", crop_margin=MARGIN)       # and step 1, the default
METRICS = ("p", "mac", "accuracy")
VERSION = 2

# Table 1 of the paper (PyTorch; Keras in parentheses there), paper.md Section 4.
_NETS = ("VGG16", "ResNet50", "DenseNet121", "VGG16 (Keras)", "ResNet50 (Keras)")
PAPER = {m: {p: dict(zip(_NETS, v)) for p, v in rows.items()} for m, rows in {
    "p": {"crop": (0.062, 0.061, 0.068, 0.05, 0.14), "black": (0.18, 0.20, 0.19, 0.11, 0.29)},
    "mac": {"crop": (0.038, 0.04, 0.045, 0.027, 0.058),
            "black": (0.06, 0.086, 0.079, 0.03, 0.093)}}.items()}


# -- the inputs of the size sweep ---------------------------------------------


def random_resized_box(rng: np.random.Generator, height: int, width: int,
                       scale: float) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a crop covering a fraction `scale` of the area.

    torchvision's ``RandomResizedCrop.get_params`` with ``scale=(s, s)``: up to
    10 draws of a log-uniform aspect ratio in [3/4, 4/3], the first box that
    fits placed uniformly at random; else the whole image (centre crop with the
    ratio clamped).
    """
    area = height * width
    lo, hi = math.log(RATIO[0]), math.log(RATIO[1])
    for _ in range(10):
        aspect = math.exp(rng.uniform(lo, hi))
        w = int(round(math.sqrt(area * scale * aspect)))
        h = int(round(math.sqrt(area * scale / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return (int(rng.integers(0, height - h + 1)),
                    int(rng.integers(0, width - w + 1)), h, w)
    r = min(max(width / height, RATIO[0]), RATIO[1])       # no draw fitted: centre crop
    h, w = (height, int(round(height * r))) if width / height > r else (
        int(round(width / r)), width)
    return (height - h) // 2, (width - w) // 2, h, w


def crop_boxes(n: int, height: int, width: int, scale: float) -> np.ndarray:
    """[n, 4] boxes of `random_resized_box`, one seeded stream per size."""
    rng = np.random.default_rng([2019, int(round(scale * 10))])
    return np.asarray([random_resized_box(rng, height, width, scale) for _ in range(n)],
                      np.int64)


def crop_inputs(x: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Each image's box resized to (H + MARGIN, W + MARGIN), as the Crop protocol's
    antialiased linear `sigcnn.shifts.resize_images` would, in one compiled call:
    boxes are edge-padded to (H, W) and enlarged by ``scale_and_translate`` (the
    kernel reaches one pixel past a box at most, where the edge copy gives the
    renormalised weights of a resize of the box alone)."""
    import jax.numpy as jnp

    n, h, w, c = x.shape
    buf = np.empty((n, h, w, c), np.float32)
    for i, (t, left, bh, bw) in enumerate(boxes):
        buf[i] = np.pad(x[i, t:t + bh, left:left + bw], ((0, h - bh), (0, w - bw), (0, 0)),
                        mode="edge")
    out = (h + MARGIN, w + MARGIN)
    scales = np.stack([out[0] / boxes[:, 2], out[1] / boxes[:, 3]], axis=1)
    if np.any(scales < 1):
        raise ValueError("crop_inputs: every box must be enlarged")
    return np.asarray(_resample(out, c)(jnp.asarray(buf), jnp.asarray(scales, jnp.float32)))


@functools.lru_cache(maxsize=None)
def _resample(out, c):
    import jax
    import jax.numpy as jnp

    def one(img, scale):
        return jax.image.scale_and_translate(img, (out[0], out[1], c), (0, 1), scale,
                                             jnp.zeros(2, jnp.float32), "linear",
                                             antialias=True)

    return jax.jit(jax.vmap(one))


def box_stats(boxes: np.ndarray, height: int, width: int) -> dict:
    """Area fraction, aspect ratio and placement of the crop boxes."""
    t, left, h, w = boxes.T
    return {"area_fraction": [float((h * w).min() / (height * width)),
                              float((h * w).max() / (height * width))],
            "aspect": [float((w / h).min()), float((w / h).max())],
            "inside": bool(np.all((t >= 0) & (left >= 0) & (t + h <= height)
                                  & (left + w <= width))),
            "distinct_positions": int(len({(int(a), int(b)) for a, b in zip(t, left)}))}


# -- one model ------------------------------------------------------------------


def _summary(p) -> dict:
    d = p.to_dict()
    return {"p": d["p_top1_change"], "p_ci": d["p_top1_change_ci"], "mac": d["mac"],
            "mac_ci": d["mac_ci"], "accuracy": d["accuracy"], "accuracy_ci": d["accuracy_ci"],
            "n_images": d["n_images"], "n_pairs": d["n_pairs"], "seconds": d["seconds"]}


def evaluate(f, x, y, *, say, circular=None, n_circular: int = 256,
             n_check: int = 32) -> dict:
    """Table 1 and the size sweep of one classifier.

    Args:
      f: logits function or NNX module, images [B, H, W, C] -> [B, K].
      x, y: images [N, H, W, C] and labels [N] (or None).
      say: progress printer.
      circular: None, or the circularly padded twin of `f` (stride-16 check).
      n_circular: images of the stride-16 check.
      n_check: images on which the sweep's crop path at size 1.0 is rerun
        against the Crop protocol (0: skip).
    """
    import jax

    from sigcnn.shift_test import run_shift_test

    key = jax.random.key(0)
    n, h, w, _ = x.shape
    res = run_shift_test(f, x, y, key=key, protocols=PROTOCOLS, embed_factor=EMBED_FACTOR,
                         **RUN)
    table = {name: _summary(res.protocol(name)) for name in PROTOCOLS}
    say("  table: " + ", ".join(f"{k} {v['p']:.3f}" for k, v in table.items()))
    sweep = {}
    for s in SIZES:
        if s == 1.0:
            sweep[str(s)] = dict(table["crop"], source="table crop")
        elif abs(s - EMBED_FACTOR) < 1e-9:
            sweep[str(s)] = dict(table["black"], source="table black")
        elif s < 1.0:
            sweep[str(s)] = dict(_summary(_crop_run(f, x, y, s, key)), source="random crop")
        else:
            r = run_shift_test(f, x, y, key=key, protocols=("black",), embed_factor=s,
                               **RUN)
            sweep[str(s)] = dict(_summary(r.protocol("black")), source="black")
    say("  sweep: " + ", ".join(f"{k} {v['p']:.3f}" for k, v in sweep.items()))
    out = {"table": table, "sweep": sweep, "num_classes": res.num_classes}
    k = min(n, n_check)
    if k:
        yk = None if y is None else y[:k]
        a = run_shift_test(f, x[:k], yk, key=key, protocols=("crop",), **RUN).protocol("crop")
        b = _crop_run(f, x[:k], yk, 1.0, key)
        out["check_size_1"] = {"n_images": k, "crop_protocol": [a.p_top1_change, a.mac],
                               "sweep_path": [b.p_top1_change, b.mac]}
    if circular is not None:
        out["circular"] = circular_check(circular, x[:n_circular])
    return out


def _crop_run(f, x, y, scale, key):
    """The Crop protocol on random crops of area fraction `scale`."""
    from sigcnn.shift_test import run_shift_test

    n, h, w, _ = x.shape
    return run_shift_test(f, crop_inputs(x, crop_boxes(n, h, w, scale)),
                          y, key=key, protocols=("crop",), crop_resize=False,
                          **RUN).protocol("crop")


def circular_check(model, x) -> dict:
    """The circular twin under circular shifts by multiples of the total stride."""
    import jax
    import jax.numpy as jnp

    from sigcnn.shift_test import run_shift_test

    r = run_shift_test(model, x, None, key=jax.random.key(0), protocols=("circular",),
                       step=STRIDE, **RUN)
    p = r.protocol("circular")
    xs = jnp.asarray(x[:64])
    base = np.asarray(model(xs))
    change = max(float(np.abs(np.asarray(model(jnp.roll(xs, (t, t), axis=(1, 2))))
                              - base).max()) for t in (STRIDE, 2 * STRIDE))
    return {"step": STRIDE, "p": p.p_top1_change, "n_pairs": p.n_pairs,
            "max_logit_change": change, "logit_scale": float(np.abs(base).max())}


# -- across seeds ------------------------------------------------------------------


def _within(v, ci) -> dict:
    """A single run's number with its interval over images."""
    return {"mean": v, "low": None if ci is None else ci[0],
            "high": None if ci is None else ci[1], "values": [v], "n": 1,
            "interval": "within run (over images)"}


def aggregate(runs: list[dict], *, external: bool) -> dict:
    """Per protocol and size: each metric over the runs (seeds)."""
    out = {}
    for part in ("table", "sweep"):
        out[part] = {}
        for name in runs[0][part]:
            rows = [r[part][name] for r in runs]
            cell = {"n_pairs": [r["n_pairs"] for r in rows],
                    "n_images": [r["n_images"] for r in rows],
                    "source": rows[0].get("source"),
                    "within": [{m: r[m] for m in ("p", "p_ci", "mac", "mac_ci",
                                                  "accuracy", "accuracy_ci")}
                               for r in rows]}
            for m in METRICS:
                if external:
                    cell[m] = _within(rows[0][m], rows[0][f"{m}_ci"])
                elif rows[0][m] is None:
                    cell[m] = across_seeds([])
                else:
                    cell[m] = dict(across_seeds([r[m] for r in rows]),
                                   interval="across seeds (Student t, 95 %)")
            out[part][name] = cell
    return out


def run_builtin(ctx) -> tuple[dict, float]:
    """Every recipe and seed: evaluations (cached per model) and aggregates."""
    from sigcnn.models import variant

    n = 32 if ctx.quick else 500
    models, train_seconds = {}, 0.0
    for recipe in RECIPES:
        r = ctx.recipe(recipe)
        runs = []
        for seed in ctx.seeds:
            def compute(r=r, seed=seed):
                ctx.say(f"{r.label} seed {seed}: training (or loading)")
                model, fit = ctx.train(recipe, seed)
                x, y = ctx.test_images(recipe, n)
                ctx.say(f"{r.label} seed {seed}: shift tests on {len(y)} images")
                first = seed == ctx.seeds[0]     # --quick: checks on the first seed only
                twin = variant(model, padding="circular") if first or not ctx.quick else None
                ev = evaluate(model, x, y, say=ctx.say, circular=twin,
                              n_circular=64 if ctx.quick else 256, n_check=32 if first else 0)
                ev["train_seconds"] = float(sum(e["seconds"] for e in fit.history))
                ev["test_accuracy"] = fit.test_accuracy
                return ev

            runs.append(ctx.cached("table1", {"recipe": r.to_dict(), "digest": r.digest(),
                                              "seed": seed, "n_images": n,
                                              "sizes": SIZES, "version": VERSION}, compute))
            train_seconds += runs[-1]["train_seconds"]
        models[r.label] = dict(aggregate(runs, external=False), recipe=r.to_dict(),
                               seeds=list(ctx.seeds),
                               test_accuracy=across_seeds([e["test_accuracy"]
                                                           for e in runs]),
                               num_classes=runs[0]["num_classes"],
                               circular=[e["circular"] for e in runs if "circular" in e],
                               check_size_1=[e["check_size_1"] for e in runs
                                             if "check_size_1" in e])
    return {"models": models, "n_images": n}, train_seconds


def run_external(ctx) -> dict:
    """The pretrained network of ``--torch`` / ``--keras`` on ``--images``."""
    ext = ctx.ext
    x, y = ext.images, ext.labels
    digest = hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
    if y is not None:
        digest += hashlib.sha1(np.asarray(y).tobytes()).hexdigest()[:8]
    ctx.say(f"{ext.label}: shift tests on {len(x)} images {x.shape[1:]}")
    ev = ctx.cached("table1-external", {"model": ext.label, "images": digest,
                                        "output": ctx.args.output,
                                        "probabilities": ctx.args.probabilities,
                                        "sizes": SIZES, "version": VERSION},
                    lambda: evaluate(ext.logits, x, y, say=ctx.say))
    model = dict(aggregate([ev], external=True), num_classes=ev["num_classes"],
                 check_size_1=[ev["check_size_1"]], circular=[], test_accuracy=None)
    return {"models": {ext.label: model}, "n_images": int(len(x))}


# -- invariants and claims ----------------------------------------------------------


def invariants(rec: dict) -> dict:
    """The facts the table and the figure rely on, each True or False."""
    in01, contains, pairs = True, True, True
    cells = [c for m in rec["models"].values() for part in ("table", "sweep")
             for c in m[part].values()]
    for cell in cells:
        for st in (cell[m] for m in METRICS if cell[m]["mean"] is not None):
            # Student-t bounds over 2-3 seeds may leave [0, 1]; means and values may not
            in01 &= all(0.0 <= v <= 1.0 for v in [st["mean"]] + list(st["values"]))
            contains &= st["low"] - 1e-12 <= st["mean"] <= st["high"] + 1e-12
        for w in cell["within"]:
            for m in (m for m in METRICS if w[m] is not None):
                lo, hi = w[f"{m}_ci"]
                contains &= lo - 1e-12 <= w[m] <= hi + 1e-12
                in01 &= 0.0 <= lo and hi <= 1.0
        pairs &= all(p == N_PAIRS * k for p, k in zip(cell["n_pairs"], cell["n_images"]))
        pairs &= all(k == rec["n_images"] for k in cell["n_images"])
    same = all(abs(c["crop_protocol"][0] - c["sweep_path"][0]) <= 1 / (N_PAIRS * c["n_images"])
               and abs(c["crop_protocol"][1] - c["sweep_path"][1]) < 1e-5
               for m in rec["models"].values() for c in m["check_size_1"])
    box_ok = all(b["inside"] and RATIO[0] - 0.1 <= b["aspect"][0]
                 and b["aspect"][1] <= RATIO[1] + 0.1
                 and all(abs(f - float(s)) <= 0.15 * float(s) for f in b["area_fraction"])
                 for s, b in rec["crop_boxes"].items())
    inv = {"P(top-1 change), MAC and accuracy lie in [0, 1] (means, per-seed values "
           "and within-run intervals)": bool(in01),
           "every interval (across seeds, and within each run) contains its mean":
               bool(contains),
           f"every protocol and size compares {N_PAIRS} pairs per image, on the same "
           "images": bool(pairs),
           "the sweep's crop path at size 1.0 reproduces the Crop protocol (P to one "
           "pair, MAC to 1e-5, on a subset)": bool(same),
           "random crops lie inside the image, cover the asked area fraction (+-15 %) "
           "with aspect ratio in [3/4, 4/3] (+- rounding)": bool(box_ok)}
    circ = [c for m in rec["models"].values() for c in m["circular"]]
    if circ:
        inv[f"circularly padded twins never change top-1 under circular shifts by "
            f"multiples of {STRIDE} (logits change < 1e-4 of their scale)"] = all(
                c["p"] == 0.0 and c["max_logit_change"] <= 1e-4 * max(1.0, c["logit_scale"])
                for c in circ)
    acc = [(m["table"]["crop"]["accuracy"]["mean"], m["num_classes"])
           for m in rec["models"].values()]
    if not rec["quick"] and all(a is not None for a, _ in acc):
        inv["every model classifies well above chance (Crop accuracy > 1/K + 0.2)"] = all(
            a > 1.0 / k + 0.2 for a, k in acc)
    return inv


def _fmt(st, sign: str = "") -> str:
    m = f"{st['mean']:{sign}.3f}"
    return m if st["low"] is None else f"{m} [{st['low']:{sign}.3f}, {st['high']:{sign}.3f}]"


def _difference(a: dict, b: dict, *, external: bool) -> dict:
    """a - b: paired over seeds (built-in), or interval separation (external)."""
    if external or len(a["values"]) < 2:
        sig = a["low"] is not None and b["high"] is not None and a["low"] > b["high"]
        return {"mean": a["mean"] - b["mean"], "low": None, "high": None,
                "positive": bool(sig), "how": "intervals over images do not overlap"}
    d = across_seeds([u - v for u, v in zip(a["values"], b["values"])])
    return {**d, "positive": d["low"] > 0, "how": "difference per seed, Student t"}


def _claim(claim: str, paper: str, sigcnn: str, full: bool, some: bool) -> dict:
    verdict = "holds" if full else ("partly" if some else "does not hold")
    return {"claim": claim, "paper": paper, "sigcnn": sigcnn, "verdict": verdict}


def _acc(cell) -> str:
    a = cell["accuracy"]["mean"]
    return "n/a" if a is None else f"{a:.2f}"


def claims(rec: dict) -> list[dict]:
    """The paper's statements against our numbers (verdicts from the numbers)."""
    ext = rec["mode"] == "external"
    name = list(rec["models"])[0]
    base = rec["models"][name]
    t = base["table"]
    p_crop, p_black = t["crop"]["p"], t["black"]["p"]
    lo = p_crop["mean"] if p_crop["low"] is None else p_crop["low"]
    d_p = _difference(p_black, p_crop, external=ext)
    d_mac = _difference(t["black"]["mac"], t["crop"]["mac"], external=ext)
    diffs = {lab: _difference(m["sweep"]["1.9"]["p"], m["sweep"]["1.3"]["p"], external=ext)
             for lab, m in rec["models"].items()}
    out = [
        _claim("a 1-pixel diagonal shift (Crop protocol) changes a CNN's top-1 class "
               "with a probability of a few percent",
               "Table 1: P(top-1 change), Crop = 0.062 / 0.061 / 0.068 (VGG16 / "
               "ResNet50 / DenseNet121, PyTorch); 0.05 / 0.14 (Keras)",
               f"{name}: {_fmt(p_crop)}", lo > 0 and 0.025 <= p_crop["mean"] <= 0.28,
               lo > 0),
        _claim("shifting an object embedded in a blank canvas (Black) changes the top-1 "
               "class more often than shifting a crop window",
               "Table 1: P(top-1 change), Black = 0.18 / 0.20 / 0.19 against Crop = "
               "0.062 / 0.061 / 0.068 (PyTorch)",
               f"{name}: Black {_fmt(p_black)} vs Crop {_fmt(p_crop)}; Black - Crop "
               f"{_fmt(d_p, '+')} ({d_p['how']})", d_p["positive"], d_p["mean"] > 0),
        _claim("the top-class probability changes more under Black than under Crop (MAC)",
               "Table 1: MAC, Black = 0.06 / 0.086 / 0.079 against Crop = 0.038 / 0.04 / "
               "0.045 (PyTorch)",
               f"{name}: Black {_fmt(t['black']['mac'])} vs Crop {_fmt(t['crop']['mac'])}; "
               f"Black - Crop {_fmt(d_mac, '+')}", d_mac["positive"], d_mac["mean"] > 0),
        _claim("the smaller the embedded object, the more often a 1-pixel shift changes "
               "the top-1 class",
               "Section 5 (embedding-size experiment; the authors' size sweep, sizes 1.3 "
               "to 1.9): failures rise as the object gets smaller",
               "; ".join(f"{lab}: P(1.9) - P(1.3) = {_fmt(dd, '+')} (accuracy "
                         f"{_acc(rec['models'][lab]['sweep']['1.3'])} -> "
                         f"{_acc(rec['models'][lab]['sweep']['1.9'])})"
                         for lab, dd in diffs.items()),
               all(dd["positive"] for dd in diffs.values()),
               any(dd["mean"] > 0 for dd in diffs.values()))]
    if ext:
        return out
    aa = rec["models"][ANTIALIASED.label]["table"]
    red = {p: _difference(t[p]["p"], aa[p]["p"], external=False) for p in PROTOCOLS}
    nonzero = all(aa[p]["p"]["low"] > 0 for p in PROTOCOLS)
    rel = {p: [1 - v / u if u > 0 else 0.0 for u, v in zip(t[p]["p"]["values"],
                                                           aa[p]["p"]["values"])]
           for p in ("crop", "black")}
    gap = across_seeds([c - k for c, k in zip(rel["crop"], rel["black"])])
    au = rec["models"][AUGMENT.label]["sweep"]
    near = _difference(base["sweep"]["1.0"]["p"], au["1.0"]["p"], external=False)
    far = _difference(base["sweep"]["1.9"]["p"], au["1.9"]["p"], external=False)
    rel_near = near["mean"] / max(base["sweep"]["1.0"]["p"]["mean"], 1e-12)
    rel_far = far["mean"] / max(base["sweep"]["1.9"]["p"]["mean"], 1e-12)
    out += [
        _claim("anti-aliasing (BlurPool) lowers P(top-1 change) but does not remove it",
               "Section 6 (a) remedies, citing Zhang 2019; abstract: anti-aliasing helps "
               "only partially",
               "; ".join(f"{p}: {ANTIALIASED.label} {_fmt(aa[p]['p'])}, reduction "
                         f"{_fmt(red[p], '+')}" for p in PROTOCOLS),
               red["crop"]["positive"] and nonzero, red["crop"]["mean"] > 0),
        _claim("anti-aliasing helps in the Crop protocol, much less in Black",
               "Section 6 (a) [unverified summary in paper.md]",
               f"relative reduction of P: Crop {np.mean(rel['crop']):.2f}, Black "
               f"{np.mean(rel['black']):.2f}; Crop - Black {_fmt(gap, '+')}",
               gap["low"] > 0, gap["mean"] > 0),
        _claim("augmenting with translations lowers failures near the training "
               "distribution (same object size) more than away from it (smaller objects)",
               "abstract and Section 6 (b): learned invariance holds only for images close "
               "to typical training images; augmentation reduces failures only partially",
               f"{AUGMENT.label} vs {name}: reduction of P at size 1.0 (Crop) "
               f"{_fmt(near, '+')} ({rel_near:.0%}), at size 1.9 (Black) {_fmt(far, '+')} "
               f"({rel_far:.0%})", near["positive"] and rel_near > rel_far,
               near["positive"] or (near["mean"] > 0 and rel_near > rel_far))]
    return out


# -- the figure ----------------------------------------------------------------------


def figure(rec: dict):
    from matplotlib.figure import Figure

    labels = list(rec["models"])
    colors = dict(zip(labels, ("tab:red", "tab:blue", "tab:green", "tab:purple")))
    fig = Figure(figsize=(15, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 6)
    bars = [fig.add_subplot(grid[0, 0:3]), fig.add_subplot(grid[0, 3:6])]
    curves = [fig.add_subplot(grid[1, 2 * i:2 * i + 2]) for i in range(3)]
    width = 0.8 / len(labels)
    what = "across seeds" if rec["mode"] == "built-in" else "over images"
    for ax, m, title in zip(bars, ("p", "mac"), ("P(top-1 change)", "MAC")):
        for j, lab in enumerate(labels):
            cells = [rec["models"][lab]["table"][p][m] for p in PROTOCOLS]
            xs = np.arange(len(PROTOCOLS)) + (j - (len(labels) - 1) / 2) * width
            means = np.asarray([c["mean"] for c in cells])
            err = np.asarray([[c["mean"] - max(c["low"], 0.0), min(c["high"], 1.0) - c["mean"]]
                              for c in cells]).T
            ax.bar(xs, means, width, yerr=err, capsize=3, color=colors[lab], label=lab)
        for i, p in enumerate(PROTOCOLS):
            ref = PAPER[m].get(p)
            if ref:
                vals = list(ref.values())
                ax.fill_between([i - 0.45, i + 0.45], min(vals), max(vals), color="gray",
                                alpha=0.2, zorder=0, label="paper's Table 1 (range: VGG16, "
                                "ResNet50, DenseNet121, PyTorch and Keras)" if i == 0 else None)
        ax.set_xticks(range(len(PROTOCOLS)), [p.capitalize() for p in PROTOCOLS])
        ax.set_ylabel(title)
        ax.set_title(f"Table 1: {title} per protocol (95 % interval {what}, clipped to "
                     f"[0, 1])")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    sizes = [float(s) for s in rec["sizes"]]
    for ax, m, title in zip(curves, METRICS, ("P(failure)", "mean absolute change",
                                               "accuracy")):
        for lab in labels:
            cells = [rec["models"][lab]["sweep"][str(s)][m] for s in rec["sizes"]]
            if cells[0]["mean"] is None:
                continue
            mean = np.asarray([c["mean"] for c in cells])
            ax.plot(sizes, mean, "o-", ms=4, color=colors[lab], label=lab)
            ax.fill_between(sizes, np.clip([c["low"] for c in cells], 0, 1),
                            np.clip([c["high"] for c in cells], 0, 1), color=colors[lab],
                            alpha=0.2)
        ax.axvline(1.15, color="gray", ls=":", lw=1)
        if m == "accuracy":
            k = rec["models"][labels[0]]["num_classes"]
            ax.axhline(1 / k, color="k", ls="--", lw=0.8, label=f"chance (1/{k})")
        ax.set_xticks(sizes)
        ax.set_xlabel("size (<= 1: crop area fraction; > 1: shrink factor in a canvas)")
        ax.set_ylabel(title)
        ax.set_title(f"size sweep: {title}")
        ax.legend(fontsize=8)
    seeds = "" if rec["mode"] == "external" else f", {len(rec['seeds'])} seeds"
    fig.suptitle(f"Azulay & Weiss, Table 1 and the size sweep ({rec['n_images']} images"
                 f"{seeds}{', --quick' if rec['quick'] else ''})")
    return fig


def main() -> int:
    ctx = setup("table1", __doc__)
    if ctx.ext is not None:
        part, train_seconds = run_external(ctx), 0.0
        mode = "external"
        h, w = ctx.ext.images.shape[1:3]
    else:
        part, train_seconds = run_builtin(ctx)
        mode = "built-in"
        h = w = ctx.recipe(BASELINE).canvas_size
    n = part["n_images"]
    rec = {"mode": mode, "quick": ctx.quick, "seeds": list(ctx.seeds), **part,
           "protocols": list(PROTOCOLS), "sizes": [str(s) for s in SIZES],
           "geometry": {"n_pairs": N_PAIRS, "step": 1, "direction": "diagonal",
                        "crop_margin": MARGIN, "embed_factor": EMBED_FACTOR, "fill": 0.0,
                        "aspect_ratio": list(RATIO), "image_size": [int(h), int(w)]},
           "crop_boxes": {str(s): box_stats(crop_boxes(n, h, w, s), h, w)
                          for s in SIZES if s < 1.0},
           "paper": PAPER, "train_seconds": train_seconds}
    rec["invariants"] = invariants(rec)
    rec["claims"] = claims(rec)
    for c in rec["claims"]:
        ctx.say(f"[{c['verdict']}] {c['claim']}: {c['sigcnn']}")
    # a pretrained network's results do not overwrite those of the built-in models
    return finish(ctx, rec, figure(rec), name="table1" if mode == "built-in" else
                  "table1_external")


if __name__ == "__main__":
    sys.exit(main())
