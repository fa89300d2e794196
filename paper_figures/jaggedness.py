"""Jaggedness of p(correct) along dense 1-px sweeps (Azulay & Weiss, Figure 1).

The paper's Figure 1 moves or grows an object one pixel at a time and plots
the probability of the correct class, which jumps between neighbouring frames.
Three sweeps run here on held-out digits, for the baseline (`BASELINE`) and
the anti-aliased net (`ANTIALIASED`, BlurPool with 4 taps), on every seed:

1. translation: the 24 x 24 digit at its native size, in the middle row of
   the black 64 x 64 canvas, moved one column at a time over its whole range
   (columns 0..40; `sigcnn.shifts.embed`);
2. scale: the digit resized to 20, 21, ..., 32 px, centred (`sigcnn.shifts.
   scale`), sizes at which the nets still read most digits (beyond them
   p(correct) drifts, which would count as jaggedness);
3. inpainted translation: the held-out canvas translated one column per frame
   over the range that keeps the digit inside, the uncovered border filled by
   the authors' normalised-convolution inpainting (`sigcnn.shifts.inpaint`).
   On MNIST the fill is black except where strokes reach the uncovered border
   (they are smeared into it).

Per sweep and image: the top-1 flips between consecutive frames
(`sigcnn.metrics.top1_flips`), the mean |p(t+1) - p(t)| (the jaggedness) and
whether the top-1 class flipped at all; averaged over the images, then over
seeds with `across_seeds` intervals. The figure shows, like the paper's, the
frames and p(correct) curves of a few examples (seed 0: the first digits that
both nets classify correctly in the first frame of every sweep, those where
the baseline flips first), and the summary numbers with their intervals.

With ``--torch/--keras ... --images DIR`` the sweeps run on one pretrained
network: the image resized by 1/1.6 and moved across the canvas (the paper's
"black" protocol, canvas 0: mean gray after normalisation), grown from 5/6 to
4/3 of that size, and translated by -M..M px (M = half that margin) with the
border inpainted; the intervals are then over images.

Usage: ``python paper_figures/jaggedness.py [--quick] [--seeds N] [--out DIR]
[--cache DIR]``, or ``... --torch MODULE:CALLABLE [--weights FILE] --images
DIR``. Writes ``jaggedness.png`` and ``jaggedness.json``; the models and each
model's sweeps are cached, so a second run only redraws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys

import _common as C
import numpy as np

NAME = "jaggedness"
SWEEPS = ("translation", "scale", "inpaint")
TITLES = {"translation": "1-px translation", "scale": "1-px scale growth",
          "inpaint": "1-px translation, border inpainted"}
N_IMAGES, QUICK_IMAGES, N_EXAMPLES = 48, 6, 3
GROUP = 8                      # images per batch of frames (fixed: one compilation)
SCALE, SCALE_QUICK = (5 / 6, 4 / 3), (5 / 6, 7 / 6)   # scale sweep, x object size
EMBED_FACTOR = 1.6             # the paper's black protocol
INPAINT = dict(method="normalized_conv", max_iter=80, max_unfilled=0)
STATS = ("flips", "mean_abs_dp", "flipped", "change_rate", "first_correct")


# -- the sweeps --------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    """The images swept and the geometry of the three sweeps.

    Attributes:
      objects, canvases: [N, h0, w0, C] embedded by the translation and scale
        sweeps; [N, H, W, C] translated by the inpainted sweep.
      labels: int [N], or None (each sweep follows its first frame's top-1).
      object_size, row, cols: the translated object's (h, w) (resized if not
        (h0, w0)), row offset and [T] column offsets.
      sizes, size_offsets: [T, 2] sizes and offsets of the scale sweep.
      shifts: [N, T, 2] shifts (row, col) of the inpainted sweep.
      coords, geometry: sweep -> [T] plotted coordinates; a JSON-ready record.
      scale_fn: the scale sweep's `sigcnn.shifts.scale` jitted as one program
        (one compilation, not one per size), made on first use.
    """

    objects: np.ndarray
    canvases: np.ndarray
    labels: np.ndarray | None
    object_size: tuple
    row: int
    cols: np.ndarray
    sizes: np.ndarray
    size_offsets: np.ndarray
    shifts: np.ndarray
    coords: dict
    geometry: dict
    scale_fn: object = dataclasses.field(default=None, repr=False)


def _source(objects, canvases, labels, obj, row, shifts, quick, **geometry):
    """A `Source`: translation over every column, scale from 5/6 to 4/3 of the
    object size (--quick: to 7/6) 1 px per frame, centred, within the canvas."""
    from sigcnn import shifts as sh

    big = canvases.shape[1:3]
    cols = np.arange(big[1] - obj[1] + 1)
    a, b = SCALE_QUICK if quick else SCALE
    lo = (round(obj[0] * a), round(obj[1] * a))
    n_pairs = min(min(big[0], round(obj[0] * b)) - lo[0],
                  min(big[1], round(obj[1] * b)) - lo[1])
    sched = sh.scale_schedule(lo, big, n_pairs=n_pairs, step=1)
    geometry.update(canvas=list(big), object=list(obj), row=row, inpaint=INPAINT,
                    cols=[0, int(cols[-1])], fill=0.0,
                    scale_sizes=[int(sched.sizes[0, 0]), int(sched.sizes[-1, 0])])
    coords = {"translation": cols, "scale": sched.sizes[:, 1],
              "inpaint": cols if geometry["kind"] == "mnist" else shifts[0, :, 1]}
    return Source(objects, canvases, labels, tuple(obj), row, cols, sched.sizes,
                  sched.offsets, shifts, coords, geometry)


def mnist_source(ctx, r: C.Recipe, n: int) -> tuple[Source, dict]:
    """The sweeps of the first `n` held-out digits of recipe `r`, and a check.

    The 24 x 24 digits and their canvas positions come from the test split of
    `sigcnn.data.load_dataset` rebuilt with the same keys; the check says that
    pasting them at those positions gives the held-out canvases exactly.
    """
    import jax

    from sigcnn.data.canvas import canvas_dataset
    from sigcnn.data.mnist import load_mnist, train_test_split

    spec = r.dataset()
    x, y = load_mnist()
    c = spec.crop
    k_split, _, k_test = jax.random.split(jax.random.key(spec.seed), 3)
    _, _, digits, dlab = train_test_split(x[:, c:28 - c, c:28 - c], y, key=k_split,
                                          test_fraction=float(spec.test_fraction))
    pos = np.asarray(canvas_dataset(k_test, digits, dlab, canvas_size=spec.canvas_size,
                                    distribution=spec.positions,
                                    sigma=spec.sigma).positions[:n])
    digits, dlab = np.asarray(digits[:n], np.float32), np.asarray(dlab[:n])
    _, _, canvases, labels = (np.asarray(v[:n]) for v in ctx.data(r))
    big, obj = canvases.shape[1:3], digits.shape[1:3]
    pasted = np.zeros_like(canvases)
    for i, (py, px) in enumerate(pos):
        pasted[i, py:py + obj[0], px:px + obj[1]] = digits[i]
    same = bool(np.array_equal(pasted, canvases) and np.array_equal(labels, dlab))
    shifts = np.zeros((n, big[1] - obj[1] + 1, 2), np.int64)
    shifts[:, :, 1] = np.arange(shifts.shape[1])[None, :] - pos[:, 1:2]  # left edge
    src = _source(digits, canvases, labels, obj, (big[0] - obj[0]) // 2, shifts,
                  ctx.quick, kind="mnist")
    return src, {"the digits pasted at their positions give the held-out canvases":
                 same}


def black_source(images, labels, quick: bool) -> Source:
    """The sweeps of any images: the paper's black protocol (resized by 1/1.6,
    moved over the whole margin), its scale growth, and inpainted translations
    by -M..M px, M = half the margin."""
    from sigcnn.shift_test.protocols import embed_size

    n, big = images.shape[0], images.shape[1:3]
    obj = embed_size(big, EMBED_FACTOR)
    m = max(1, (big[1] - obj[1]) // 2)
    shifts = np.zeros((n, 2 * m + 1, 2), np.int64)
    shifts[:, :, 1] = np.arange(-m, m + 1)[None, :]
    digest = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:12]
    return _source(images, images, labels, obj, (big[0] - obj[0]) // 2, shifts, quick,
                   kind="black", inpaint_shifts=[-m, m], embed_factor=EMBED_FACTOR,
                   images=digest, n=n)


def frames(src: Source, idx, sweep: str, *, with_known: bool = False):
    """Frames [g, T, H, W, C] of the images `idx` (at most `GROUP`) on a sweep.

    The batch is padded to `GROUP` images, so each transform compiles once.
    With `with_known` (inpainted sweep): ``(frames, translated, known)``.
    """
    from sigcnn import shifts

    idx = np.asarray(idx)
    g, big = idx.size, src.canvases.shape[1:3]
    idx = np.concatenate([idx, np.full(GROUP - g, idx[-1])])
    if sweep == "translation":
        offsets = np.stack([np.full_like(src.cols, src.row), src.cols], axis=1)
        same = tuple(src.object_size) == tuple(src.objects.shape[1:3])
        f, _ = shifts.embed(src.objects[idx], offsets, canvas_size=big, fill=0.0,
                            object_size=None if same else src.object_size)
        return np.asarray(f)[:g]
    if sweep == "scale":
        if src.scale_fn is None:
            import jax

            sz, off = src.sizes, src.size_offsets
            src.scale_fn = jax.jit(lambda x: shifts.scale(x, sz, off, canvas_size=big,
                                                          fill=0.0)[0])
        return np.asarray(src.scale_fn(src.objects[idx]))[:g]
    sh = src.shifts[idx]
    moved = np.asarray(shifts.translate(src.canvases[idx], sh, method="circular")[0])
    ty, tx = sh[..., 0, None], sh[..., 1, None]          # wrapped border: unknown
    rows, cols = np.arange(big[0]), np.arange(big[1])
    known = (((rows >= ty) & (rows < big[0] + ty))[..., :, None]
             & ((cols >= tx) & (cols < big[1] + tx))[..., None, :])
    filled, _ = shifts.inpaint(moved.reshape((-1,) + moved.shape[2:]),
                               known.reshape((-1,) + big), **INPAINT)
    filled = np.asarray(filled).reshape(moved.shape)[:g]
    return (filled, moved[:g], known[:g]) if with_known else filled


# -- evaluation --------------------------------------------------------------------


def sweep_model(evaluator, src: Source, sweeps=SWEEPS, progress=None) -> dict:
    """p(reference class), top-1 and flips of each sweep of every image."""
    from sigcnn import metrics

    n = src.objects.shape[0]
    out = {s: {"p": [], "top1": [], "flips": [], "reference": []} for s in sweeps}
    for start in range(0, n, GROUP):
        idx = np.arange(start, min(n, start + GROUP))
        for s in sweeps:
            fr = frames(src, idx, s)
            g, t = fr.shape[:2]
            logits = evaluator(fr.reshape((g * t,) + fr.shape[2:])).reshape(g, t, -1)
            logits = logits.astype(np.float64)
            ref = (np.argmax(logits[:, 0], axis=-1) if src.labels is None
                   else src.labels[idx])
            o = out[s]
            o["p"] += np.asarray(metrics.true_class_probability(logits, ref)).tolist()
            o["top1"] += np.argmax(logits, axis=-1).tolist()
            o["flips"] += np.asarray(metrics.top1_flips(logits, axis=1)).tolist()
            o["reference"] += [int(v) for v in ref]
        if progress is not None:
            progress(int(idx[-1]) + 1, n)
    return out


def model_checks(logits_fn, evaluator, src: Source, raw: dict) -> dict:
    """Oracles for one network: the first translation frame pasted by hand
    (pixels, and the network's p on it), and `run_shift_test`'s jaggedness
    sweep (black protocol) against this script's sweep of the same images."""
    import jax

    from sigcnn import shifts
    from sigcnn.shift_test import run_shift_test

    k, big = min(2, src.objects.shape[0]), src.canvases.shape[1:3]
    obj = src.objects[:k]
    if tuple(src.object_size) != tuple(obj.shape[1:3]):
        obj = np.asarray(shifts.resize_images(obj, src.object_size))
    hand = np.zeros((k,) + big + (obj.shape[-1],), np.float32)
    c0 = int(src.cols[0])
    hand[:, src.row:src.row + obj.shape[1], c0:c0 + obj.shape[2]] = obj
    z = evaluator(hand).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p = p / p.sum(-1, keepdims=True)
    ref = np.asarray(raw["translation"]["reference"][:k])
    labels = None if src.labels is None else src.labels[:k]
    ours = raw["translation"] if src.geometry["kind"] == "black" else sweep_model(
            evaluator, black_source(src.canvases[:k], labels, True),
            sweeps=("translation",))["translation"]
    jag = run_shift_test(logits_fn, src.canvases[:k], labels, key=jax.random.key(0),
                         protocols=(), consistency=None, all_shifts=False,
                         sweep_images=k, sweep_protocol="black",
                         sweep_axis="horizontal", embed_factor=EMBED_FACTOR).jaggedness
    return {"hand_same_pixels": bool(np.array_equal(
                    frames(src, np.arange(k), "translation")[:, 0], hand)),
            "hand_max_abs_dp": float(np.max(np.abs(
                    p[np.arange(k), ref] - np.asarray(raw["translation"]["p"])[:k, 0]))),
            "shift_test_max_abs_dp": float(np.max(np.abs(
                    np.asarray(ours["p"][:k]) - np.asarray(jag.p_correct)))),
            "shift_test_same_flips": list(ours["flips"][:k]) == list(jag.flips)}


def evaluate(ctx, key: dict, logits_fn, src: Source, label: str) -> dict:
    """The sweeps of one network and its checks (cached)."""
    from sigcnn.shift_test.evaluation import Evaluator

    def compute():
        ev = Evaluator(logits_fn, 256 if src.geometry["kind"] == "mnist" else 32, True)
        ctx.say(f"{label}: sweeping {src.objects.shape[0]} images")
        raw = sweep_model(ev, src, progress=lambda d, n: ctx.say(
                f"{label}: {d}/{n} images"))
        raw["checks"] = model_checks(logits_fn, ev, src, raw)
        return raw

    return ctx.cached("jaggedness-sweeps", key, compute)


# -- statistics and claims -----------------------------------------------------------


def per_image(raw: dict, labels) -> dict:
    """sweep -> per-image flips, mean |Δp| per step, flipped at all, per-pair
    change rate, first frame correct; and the top-1 sequences."""
    out = {}
    for s in SWEEPS:
        p, top = np.asarray(raw[s]["p"], np.float64), np.asarray(raw[s]["top1"])
        flips = np.asarray(raw[s]["flips"])
        truth = np.asarray(raw[s]["reference"] if labels is None else labels)
        out[s] = {"flips": flips.tolist(),
                  "mean_abs_dp": np.mean(np.abs(np.diff(p, axis=1)), axis=1).tolist(),
                  "flipped": (flips > 0).astype(float).tolist(),
                  "change_rate": (flips / (p.shape[1] - 1)).tolist(),
                  "first_correct": (top[:, 0] == truth).astype(float).tolist(),
                  "top1": top.tolist()}
    return out


def _fmt(iv):
    return f"{iv['mean']:.3f} [{iv['low']:.3f}, {iv['high']:.3f}]"


def _lower(x, y):
    """Verdict of "y is lower than x" from two intervals."""
    return ("holds" if y["high"] < x["low"] else
            "partly" if y["mean"] < x["mean"] else "does not hold")


def claims(summary: dict, bl: str, aa: str | None) -> list:
    """The paper's claims against the measured numbers (verdicts computed)."""
    rows, b = [], summary[bl]
    row = lambda claim, paper, ours, verdict: rows.append(
            {"claim": claim, "paper": paper, "sigcnn": ours, "verdict": verdict})
    for s in ("translation", "scale"):
        iv, rate = b[s]["flipped"], b[s]["change_rate"]
        row(f"p(correct) is jagged: {TITLES[s]}s flip the top-1 class",
            "Figure 1: p(correct) jumps between adjacent 1-px steps of a "
            "translation and of a scale sweep (Section 3.3); Table 1, Black: "
            "P(top-1 change) 0.18-0.20 (PyTorch ImageNet nets)",
            f"{bl}: fraction of sweeps with a flip {_fmt(iv)}; P(top-1 change) "
            f"per 1-px pair {_fmt(rate)}",
            "holds" if iv["low"] > 0 else "partly" if iv["mean"] > 0 else
            "does not hold")
    if aa is None:
        return rows
    a = summary[aa]
    for s in SWEEPS:
        x, y = b[s]["mean_abs_dp"], a[s]["mean_abs_dp"]
        row(f"anti-aliasing lowers the jaggedness (mean |Δp| per step) under "
            f"{TITLES[s]}",
            "Section 6 and abstract: antialiasing the intermediate representations "
            "helps but is 'only a partial solution at best' (Section 5 (a): much "
            "less under Black than under Crop)",
            f"mean |Δp|: {bl} {_fmt(x)}, {aa} {_fmt(y)}", _lower(x, y))
    x, y = a["translation"]["flipped"], b["translation"]["flipped"]
    row("anti-aliasing is only a partial solution: the anti-aliased net still "
        "flips under 1-px translations",
        "abstract: both remedies are 'only a partial solution at best'",
        f"fraction of translation sweeps with a flip: {aa} {_fmt(x)}, {bl} {_fmt(y)}",
        "holds" if 0 < x["mean"] < y["mean"] else
        "partly" if x["mean"] > 0 else "does not hold")
    return rows


def invariants(rec: dict, raws: list, checks: dict) -> dict:
    """The facts the figure relies on, each True or False."""
    ok = dict(p=True, recount=True, dp=True, px=True, hand=True, st=True)
    for label, i, raw in raws:
        for s in SWEEPS:
            p, top = np.asarray(raw[s]["p"], np.float64), np.asarray(raw[s]["top1"])
            ok["p"] &= bool(np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1)))
            stored = rec["models"][label][i][s]
            again = np.asarray(stored["top1"])
            direct = [sum(int(u != v) for u, v in zip(q[:-1], q[1:])) for q in again]
            ok["recount"] &= direct == list(stored["flips"]) and np.array_equal(
                    top, again)
            dp = [np.mean([abs(v - u) for u, v in zip(q[:-1], q[1:])]) for q in p]
            ok["dp"] &= bool(np.allclose(dp, stored["mean_abs_dp"], rtol=0, atol=1e-12))
        c = raw["checks"]
        ok["px"] &= c["hand_same_pixels"]
        ok["hand"] &= c["hand_max_abs_dp"] < 1e-5
        ok["st"] &= c["shift_test_max_abs_dp"] < 1e-5 and c["shift_test_same_flips"]
    inside = all(iv["low"] - 1e-12 <= iv["mean"] <= iv["high"] + 1e-12
                 for per in rec["summary"].values() for st in per.values()
                 for iv in st.values())
    inv = {"every p(correct) lies in [0, 1]": ok["p"],
           "the top-1 flips equal a direct recount from the stored top-1 sequences":
               bool(ok["recount"]),
           "the mean |Δp| equals a recount from the p(correct) sequences": ok["dp"],
           "the first translation frame equals the object pasted by hand": ok["px"],
           "the network's p on that hand-made frame equals the sweep's first p":
               ok["hand"],
           "a sweep built here equals sigcnn.shift_test's jaggedness sweep (black "
           "protocol, 2 images): p within 1e-5, the same flips": ok["st"],
           "every interval contains its mean": inside, **checks}
    if "main_claim" in rec:
        inv[rec["main_claim"]["text"]] = rec["main_claim"]["holds"]
    return inv


def frame_checks(src: Source) -> dict:
    """Model-free facts about the frames of the first two images."""
    idx = np.arange(min(2, src.objects.shape[0]))
    filled, moved, known = frames(src, idx, "inpaint", with_known=True)
    lo, hi = moved[known].min(), moved[known].max()
    out = {"inpainting keeps every pixel the translation kept":
               bool(np.array_equal(filled[known], moved[known])),
           "the inpainted pixels lie within the range of the known ones":
               bool(np.all((filled >= lo - 1e-6) & (filled <= hi + 1e-6)))}
    j = np.flatnonzero(src.sizes[:, 0] == src.objects.shape[1])
    if j.size and tuple(src.object_size) == tuple(src.objects.shape[1:3]):
        (oy, ox), (h, w) = src.size_offsets[j[0]], src.object_size
        hand = np.zeros((idx.size,) + filled.shape[2:], np.float32)
        hand[:, oy:oy + h, ox:ox + w] = src.objects[idx]
        out["the scale frame at the native size equals the digit pasted by hand"] = (
                bool(np.array_equal(frames(src, idx, "scale")[:, j[0]], hand)))
    return out


# -- the figure ----------------------------------------------------------------------


def pick_examples(first: dict, k: int = N_EXAMPLES) -> tuple[list, str]:
    """`k` images from the per-image stats of each net's first seed: correct in
    the first frame of every sweep for every net, those where the first net
    flips first. Returns the indices and the rule in words."""
    nets = list(first.values())
    n = len(nets[0]["translation"]["flips"])
    ok = [i for i in range(n)
          if all(v[s]["first_correct"][i] == 1 for v in nets for s in SWEEPS)]
    flip = [i for i in ok if any(nets[0][s]["flips"][i] > 0 for s in SWEEPS)]
    pick = (flip + [i for i in ok if i not in flip])[:k]
    rule = ("the first held-out images that every net classifies correctly in the "
            "first frame of every sweep, those where the first net flips first"
            + ("; completed with the first others (too few qualified)"
               if len(pick) < k else ""))
    return pick + [i for i in range(n) if i not in pick][:k - len(pick)], rule


def _strip(fr):
    """Frames [n, H, W, C] side by side, each scaled to [0, 1], 2 px apart."""
    lo, hi = fr.min(axis=(1, 2, 3), keepdims=True), fr.max(axis=(1, 2, 3), keepdims=True)
    fr = np.pad((fr - lo) / np.maximum(hi - lo, 1e-12), ((0, 0), (0, 0), (0, 2), (0, 0)),
                constant_values=1.0)
    img = np.concatenate(list(fr), axis=1)[:, :-2]
    return img[..., 0] if img.shape[-1] == 1 else img


def figure(rec: dict, src: Source):
    """Example frames and curves (top), the summary with intervals (bottom)."""
    from matplotlib.figure import Figure

    labels, ex, unit = list(rec["summary"]), rec["examples"], rec["coord_units"]
    colors = dict(zip(labels, ("tab:blue", "tab:orange")))
    n_ex = len(ex["indices"])
    fig = Figure(figsize=(4.6 * max(n_ex, 3), 15), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.2, 1])
    grid = top.add_gridspec(2 * len(SWEEPS), n_ex, height_ratios=[1, 2] * len(SWEEPS))
    for r, s in enumerate(SWEEPS):
        x = np.asarray(rec["coords"][s])
        fr = frames(src, ex["indices"], s)
        at = np.unique(np.linspace(0, x.size - 1, 6).round().astype(int))
        for e in range(n_ex):
            a = top.add_subplot(grid[2 * r, e])
            a.imshow(_strip(fr[e, at]), cmap="gray", interpolation="nearest")
            a.set_axis_off()
            a.set_title(f"{TITLES[s]}: frames at {unit[s]} "
                        f"{', '.join(str(int(x[i])) for i in at)}", fontsize=8)
            b = top.add_subplot(grid[2 * r + 1, e])
            parts = []
            for j, lab in enumerate(labels):
                top1 = np.asarray(ex["top1"][lab][s][e])
                b.plot(x, ex["p"][lab][s][e], ".-", ms=3, lw=1, color=colors[lab],
                       label=lab)
                w = np.flatnonzero(top1[1:] != top1[:-1])
                b.plot((x[w] + x[w + 1]) / 2, np.full(w.size, -0.06 - 0.05 * j), "|",
                       ms=7, color=colors[lab])
                parts.append(f"{lab} {w.size}")
            b.set_ylim(-0.15, 1.05)
            b.set_xlabel(unit[s], fontsize=8)
            b.set_ylabel("p(correct)" if e == 0 else None)
            b.set_title(f"class {ex['classes'][s][e]} (image #{ex['indices'][e]}); "
                        f"flips: {', '.join(parts)}", fontsize=8)
            if r == 0 and e == 0:
                b.legend(fontsize=7, loc="lower left")
    top.suptitle(f"p(correct) along 1-px sweeps ({ex['who']}; ticks below: top-1 "
                 "flips)", fontsize=10)
    panels = (("flips", "top-1 flips per sweep"),
              ("mean_abs_dp", "mean |Δp(correct)| per 1-px step"),
              ("flipped", "fraction of sweeps with a flip"))
    width = 0.8 / len(labels)
    for a, (stat, title) in zip(bottom.subplots(1, 3), panels):
        for j, lab in enumerate(labels):
            pos = np.arange(len(SWEEPS)) + (j - (len(labels) - 1) / 2) * width
            ivs = [rec["summary"][lab][s][stat] for s in SWEEPS]
            m = np.array([iv["mean"] for iv in ivs])
            err = np.array([[iv["mean"] - iv["low"] for iv in ivs],
                            [iv["high"] - iv["mean"] for iv in ivs]])
            a.bar(pos, m, width, yerr=err, capsize=3, color=colors[lab], alpha=0.8,
                  label=lab)
            if rec["interval_over"] == "seeds":
                for q, iv in zip(pos, ivs):
                    a.plot(np.full(len(iv["values"]), q), iv["values"], "k.", ms=3)
        a.set_ylim(0, 1.05) if stat == "flipped" else a.set_ylim(bottom=0)
        a.set_xticks(np.arange(len(SWEEPS)), SWEEPS, fontsize=8)
        a.set_title(title, fontsize=9)
        a.legend(fontsize=8)
    bottom.suptitle(f"{rec['n_images']} images; bars: mean, 95% interval "
                    f"over {rec['interval_over']}"
                    + (" (dots: seeds)" if rec["interval_over"] == "seeds" else ""),
                    fontsize=9)
    return fig


# -- main ----------------------------------------------------------------------------


def _record(src: Source, n: int, over: str, units) -> dict:
    return {"n_images": n, "geometry": src.geometry, "interval_over": over,
            "coords": {s: [int(v) for v in src.coords[s]] for s in SWEEPS},
            "coord_units": dict(zip(SWEEPS, units))}


def _finish(ctx, rec: dict, raws: list, src: Source, checks: dict, who: str) -> int:
    first = {label: rec["models"][label][0] for label in rec["models"]}
    idx, rule = pick_examples(first)
    seed0 = {label: raw for label, i, raw in raws if i == 0}
    ref = next(iter(seed0.values()))
    rec["examples"] = {
            "indices": idx, "rule": rule, "who": who,
            "classes": {s: [int(ref[s]["reference"][i]) for i in idx] for s in SWEEPS},
            **{k: {lab: {s: [raw[s][k][i] for i in idx] for s in SWEEPS}
                   for lab, raw in seed0.items()} for k in ("p", "top1")}}
    rec["invariants"] = invariants(rec, raws, checks)
    ctx.say("drawing")
    return C.finish(ctx, rec, figure(rec, src))


def run_builtin(ctx) -> int:
    """The baseline and the anti-aliased net on held-out digits, over seeds."""
    n = QUICK_IMAGES if ctx.quick else N_IMAGES
    src, checks = mnist_source(ctx, ctx.recipe(C.BASELINE), n)
    checks.update(frame_checks(src))
    rec = _record(src, n, "seeds", ("digit column", "digit size (px)", "digit column"))
    rec.update(recipes={}, accuracy={}, models={}, summary={})
    raws, train_s = [], 0.0
    for r in (C.BASELINE, C.ANTIALIASED):
        rr = ctx.recipe(r)
        rec["recipes"][r.label], rec["models"][r.label], accs = rr.to_dict(), [], []
        for i, seed in enumerate(ctx.seeds):
            model, res = ctx.train(r, seed)
            train_s += sum(float(h["seconds"]) for h in res.history)
            accs.append(res.test_accuracy)
            key = {"recipe": rr.to_dict(), "digest": rr.digest(), "seed": seed,
                   "geometry": src.geometry, "n": n}
            raw = evaluate(ctx, key, model, src, f"{r.label} seed {seed}")
            raws.append((r.label, i, raw))
            rec["models"][r.label].append(per_image(raw, src.labels))
        rec["accuracy"][r.label] = C.across_seeds(accs)
        rec["summary"][r.label] = {
                s: {k: C.across_seeds([np.mean(m[s][k]) for m in rec["models"][r.label]])
                    for k in STATS} for s in SWEEPS}
    rec["train_seconds"] = train_s
    bl, aa = C.BASELINE.label, C.ANTIALIASED.label
    rec["claims"] = claims(rec["summary"], bl, aa)
    if not ctx.quick:
        t = {k: rec["summary"][k]["translation"]["mean_abs_dp"]["mean"] for k in (bl, aa)}
        rec["main_claim"] = {"text": "anti-aliasing lowers the mean |Δp(correct)| per "
                                     "1-px translation step (mean over seeds)",
                             "holds": bool(t[aa] < t[bl])}
    return _finish(ctx, rec, raws, src, checks, "seed 0 of each net")


def run_external(ctx) -> int:
    """One pretrained network on the images of --images (intervals over images)."""
    ext = ctx.ext
    src = black_source(ext.images, ext.labels, ctx.quick)
    n = src.objects.shape[0]
    raw = evaluate(ctx, {"external": ext.label, "geometry": src.geometry},
                   ext.logits, src, ext.label)
    pi = per_image(raw, src.labels)
    rec = _record(src, n, "images", ("object column", "object width (px)",
                                     "shift (px)"))
    rec.update(network=ext.label, train_seconds=0.0, models={ext.label: [pi]},
               summary={ext.label: {s: {k: C.across_seeds(pi[s][k]) for k in STATS}
                                    for s in SWEEPS}})
    rec["claims"] = claims(rec["summary"], ext.label, None)
    return _finish(ctx, rec, [(ext.label, 0, raw)], src, frame_checks(src), ext.label)


def main() -> int:
    ctx = C.setup(NAME, __doc__)
    return run_builtin(ctx) if ctx.ext is None else run_external(ctx)


if __name__ == "__main__":
    sys.exit(main())
