"""Typicality (the photographer's bias): is invariance learned only near the
positions seen in training? (Azulay & Weiss, JMLR 2019, abstract and the
dataset-bias discussion.)

Models are trained on 64 x 64 canvases whose 24 x 24 digits sit at positions
drawn from a centred Gaussian of width sigma (3 and 8 px per axis; the
photographer's bias of ImageNet in miniature), and on uniformly placed digits
as the control (`BASELINE`). Held-out digits are then placed at controlled
distances d = 0, 2, ..., 20 px from the centre of the training positions (for
d > 0 a lattice position with distance in [d - 1, d + 1), drawn at random per
image; the same placements for every model) and moved by 1 px diagonally
(random signs). Per distance we measure the accuracy of the first frame,
P(top-1 change) and P(top-1 change) among correctly classified first frames,
over 3 seeds per recipe.

The claim tested: a network trained on centred objects is invariant near the
centre only, so its P(top-1 change) and its accuracy degrade with the
distance from the typical positions much more than those of the uniform
control (which saw every position). "Near" is d <= 2 px, "far" d >= 16 px.

Usage: ``python paper_figures/typicality.py [--quick] [--seeds N] [--out DIR]
[--cache DIR]``. Writes ``typicality.png`` and ``typicality.json``. It
trains its own models (no ``--torch`` / ``--keras``); ``--quick`` uses only
sigma = 3.
"""

from __future__ import annotations

import sys

import numpy as np
from _common import BASELINE, across_seeds, finish, setup
from object_size import canvas_digits, paste

SIGMAS, QUICK_SIGMAS = (3.0, 8.0), (3.0,)
DISTANCES = tuple(range(0, 21, 2))
QUICK_DISTANCES = (0, 4, 8, 12, 16, 20)
NEAR, FAR = 2, 16                 # claims: near = d <= NEAR, far = d >= FAR
N_IMAGES, QUICK_IMAGES = 400, 48
PLACEMENT_SEED = 1234
GROUP = 200
METRICS = ("p_change", "accuracy", "p_change_correct")


def gaussian(sigma: float):
    """The recipe trained on digits at centred Gaussian positions."""
    return BASELINE.replace(label=f"gauss-{sigma:g}", positions="gaussian",
                            sigma=float(sigma))


# -- placement -----------------------------------------------------------------------


def placements(n: int, d: int, *, margin: int, seed: int = PLACEMENT_SEED):
    """Top-left positions at distance `d` from the centre, and 1-px partners.

    The centre is ``margin // 2`` per axis (where `sigcnn.data.sample_positions`
    centres its Gaussian). For d > 0 each image gets a lattice position with
    distance in [d - 1, d + 1), uniformly among those; d = 0 is the centre.
    Positions keep one pixel from the border so that the partner, moved by
    (+-1, +-1) with random signs, stays inside.

    Returns:
      ``(first [n, 2], second [n, 2], distance [n])`` ints and floats.
    """
    c = margin // 2
    ys, xs = np.mgrid[1:margin, 1:margin]
    dist = np.hypot(ys - c, xs - c)
    mask = dist == 0 if d == 0 else (dist >= d - 1) & (dist < d + 1)
    cand = np.stack([ys[mask], xs[mask]], axis=1)
    rng = np.random.default_rng([seed, d])
    first = cand[rng.integers(0, len(cand), n)]
    second = first + rng.choice([-1, 1], size=(n, 2))
    return first, second, np.hypot(*(first - c).T)


def frames_at(x, first, second, canvas: int):
    """Frames [N, 2, canvas, canvas, C] of the digits at both positions."""
    from sigcnn.shifts import embed

    frames, _ = embed(x, np.stack([first, second], axis=1), canvas_size=canvas)
    return np.asarray(frames)


# -- measurement ---------------------------------------------------------------------


def measure(model, x, labels, distances, canvas: int) -> dict:
    """Per-image changes and correctness at each distance (one model)."""
    from sigcnn.metrics import p_top1_change
    from sigcnn.shift_test.evaluation import Evaluator

    ev = Evaluator(model, chunk=2 * GROUP, jit=True)
    margin = canvas - x.shape[1]
    out = {}
    for d in distances:
        first, second, _ = placements(x.shape[0], d, margin=margin)
        change, correct = [], []
        for s in range(0, x.shape[0], GROUP):
            f = frames_at(x[s:s + GROUP], first[s:s + GROUP], second[s:s + GROUP],
                          canvas)
            z = ev(f.reshape((-1,) + f.shape[2:])).reshape(f.shape[0], 2, -1)
            change += (np.asarray(p_top1_change(z[:, 0], z[:, 1], reduce=False))
                       > 0.5).astype(int).tolist()
            correct += (z[:, 0].argmax(-1) == labels[s:s + GROUP]).astype(int).tolist()
        out[str(d)] = {"change": change, "correct": correct}
    return out


def rates(counts: dict) -> dict:
    """Counts and rates of one model at one distance from its per-image records."""
    ch, ok = np.asarray(counts["change"]), np.asarray(counts["correct"])
    return {"pairs": int(ch.size), "changes": int(ch.sum()), "correct": int(ok.sum()),
            "changes_correct": int((ch & ok).sum()), "p_change": float(ch.mean()),
            "accuracy": float(ok.mean()),
            "p_change_correct": float((ch & ok).sum() / ok.sum()) if ok.sum() else None}


def oracle(model, x, labels, d: int, canvas: int, counts: dict, k: int = 16) -> bool:
    """Recounts the first `k` images at distance `d` by hand and direct calls."""
    import jax.numpy as jnp

    first, second, _ = placements(x.shape[0], d, margin=canvas - x.shape[1])
    a = np.asarray(model(jnp.asarray(paste(x[:k], first[:k], canvas))))
    b = np.asarray(model(jnp.asarray(paste(x[:k], second[:k], canvas))))
    tie = np.zeros(k, bool)
    for z in (a, b):
        srt = np.sort(z, -1)
        tie |= srt[:, -1] - srt[:, -2] < 1e-4
    change = (a.argmax(-1) != b.argmax(-1)).astype(int)
    correct = (a.argmax(-1) == labels[:k]).astype(int)
    ok = tie | ((change == counts["change"][:k]) & (correct == counts["correct"][:k]))
    return bool(np.all(ok) and tie.sum() <= k // 4)


# -- the experiment ------------------------------------------------------------------


def training_distances(ctx, recipe) -> dict:
    """Distances of the training positions from the centre, recounted."""
    r = ctx.recipe(recipe)
    spec = r.dataset()
    digits, _, pos = canvas_digits(spec, "train")
    xtr = ctx.data(r)[0]
    same = bool(np.array_equal(paste(digits[:200], pos[:200], spec.canvas_size),
                               xtr[:200]))
    margin = spec.canvas_size - digits.shape[1]
    off = pos - margin // 2
    return {"positions_match_canvases": same, "distance": np.hypot(*off.T),
            "std": [float(np.std(off[:, 0])), float(np.std(off[:, 1]))]}


def run(ctx) -> dict:
    """Trains (or reuses) every recipe and seed and measures them at each distance."""
    sigmas = QUICK_SIGMAS if ctx.quick else SIGMAS
    distances = QUICK_DISTANCES if ctx.quick else DISTANCES
    n = QUICK_IMAGES if ctx.quick else N_IMAGES
    recipes = [BASELINE] + [gaussian(s) for s in sigmas]
    spec = ctx.recipe(BASELINE).dataset()
    digits, labels, _ = canvas_digits(spec)
    x, y = digits[:n], labels[:n]
    canvas, margin = spec.canvas_size, spec.canvas_size - digits.shape[1]
    hist_edges = np.arange(0, 30, 1.0)
    rec = {"sigmas": list(sigmas), "distances": list(distances), "n_images": int(n),
           "canvas": canvas, "object": int(digits.shape[1]), "near": NEAR, "far": FAR,
           "histogram_edges": hist_edges.tolist(), "models": {},
           "train_seconds": 0.0}
    checks = {"test_labels_equal_every_recipe's_test_set": True,
              "training_positions_recounted_from_canvases": True,
              "gaussian_training_std_within_20%_of_sigma": True,
              "recount_by_direct_model_calls": True}
    for recipe in recipes:
        r = ctx.recipe(recipe)
        checks["test_labels_equal_every_recipe's_test_set"] &= bool(
            np.array_equal(ctx.data(r)[3], labels))
        td = training_distances(ctx, recipe)
        checks["training_positions_recounted_from_canvases"] &= td["positions_match_canvases"]
        if recipe.sigma is not None:
            checks["gaussian_training_std_within_20%_of_sigma"] &= all(
                abs(s - recipe.sigma) <= 0.2 * recipe.sigma for s in td["std"])
        hist, _ = np.histogram(td["distance"], bins=hist_edges, density=True)
        per_seed = []
        for seed in ctx.seeds:
            model, fit = ctx.train(recipe, seed)
            rec["train_seconds"] += sum(h.get("seconds", 0.0) for h in fit.history)
            ctx.say(f"{r.label} seed {seed}: accuracy and P(change) at distances "
                    f"{list(distances)}")
            counts = ctx.cached(
                "typicality", {"recipe": r.to_dict(), "seed": seed, "n_images": n,
                               "distances": list(distances), "placement": PLACEMENT_SEED},
                lambda: measure(model, x, y, distances, canvas))
            if seed == ctx.seeds[0]:
                for d in (distances[0], distances[-1]):
                    checks["recount_by_direct_model_calls"] &= oracle(
                        model, x, y, d, canvas, counts[str(d)])
            per_seed.append({d: rates(c) for d, c in counts.items()})
        m = {"sigma": recipe.sigma, "positions": recipe.positions,
             "training_std": td["std"], "training_histogram": hist.tolist(),
             "training_within_far": float(np.mean(td["distance"] < FAR)),
             "per_seed": per_seed}
        for k in METRICS:
            m[k] = [across_seeds([p[str(d)][k] for p in per_seed]) for d in distances]
        rec["models"][r.label] = m
    rec["checks"] = {**checks, **placement_checks(x, distances, canvas, margin)}
    return rec


def placement_checks(x, distances, canvas: int, margin: int) -> dict:
    """The test placements, checked against their stated distances and frames."""
    import jax

    from sigcnn.data.canvas import sample_positions

    centre = sample_positions(jax.random.key(0), 1, canvas_size=canvas,
                              object_size=x.shape[1:3], distribution="center")[0]
    at_distance, partners, in_frames = True, True, True
    for d in distances:
        first, second, _ = placements(x.shape[0], d, margin=margin)
        dist = np.sqrt(((first - centre) ** 2).sum(1))
        ok = dist == 0 if d == 0 else (dist >= d - 1) & (dist < d + 1)
        at_distance &= bool(np.all(ok))
        partners &= bool(np.all(np.abs(second - first) == 1)
                         and first.min() >= 1 and first.max() <= margin - 1)
        k = min(16, x.shape[0])
        f = frames_at(x[:k], first[:k], second[:k], canvas)
        for t, p in enumerate((first, second)):
            in_frames &= bool(np.array_equal(f[:, t], paste(x[:k], p[:k], canvas)))
    return {"test_placements_at_their_stated_distance_from_the_training_centre":
            at_distance,
            "pair_partners_are_1px_diagonal_neighbours_inside_the_canvas": partners,
            "frames_hold_the_digit_exactly_at_its_placement": in_frames}


# -- claims, invariants, figure --------------------------------------------------------


def growth(m: dict, metric: str, distances) -> list:
    """Per seed: the metric's mean over the far distances minus that over the
    near ones (None where a rate is undefined)."""
    out = []
    for p in m["per_seed"]:
        far = [p[str(d)][metric] for d in distances if d >= FAR]
        near = [p[str(d)][metric] for d in distances if d <= NEAR]
        out.append(None if None in far + near else float(np.mean(far) - np.mean(near)))
    return out


def _minus(a: list, b: list) -> list:
    """Element-wise a - b of two per-seed lists (None stays None)."""
    return [None if u is None or v is None else u - v for u, v in zip(a, b)]


def _verdict(d: dict, sign: float = 1.0) -> str:
    """"holds" if the interval lies on the `sign` side of 0, "partly" if only the
    mean does, else "does not hold"."""
    mean, lo, hi = d["mean"], d["low"], d["high"]
    if mean is None:
        return "does not hold"
    if sign * mean > 0 and (lo > 0 if sign > 0 else hi < 0):
        return "holds"
    return "partly" if sign * mean > 0 else "does not hold"


def _fmt(d: dict) -> str:
    """Mean [interval] of an across_seeds record."""
    if d["mean"] is None:
        return "undefined (no correctly classified first frame)"
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] ({d['n']} seeds)"


def claims(rec: dict) -> list:
    """The typicality claims, each with a verdict computed from the seeds."""
    dist = rec["distances"]
    uni = rec["models"][BASELINE.label]
    paper = ("JMLR abstract: CNNs 'learn to be invariant to transformations only "
             "for images that are very similar to typical images from the "
             "training set' (photographer's bias of ImageNet positions); no "
             "number, and how typicality was quantified is not known")
    metrics = (("p_change", 1.0, "P(top-1 change) grows", True),
               ("accuracy", -1.0, "accuracy falls", True),
               ("p_change_correct", 1.0,
                "P(top-1 change | first frame correct) grows", False))
    g_u = {k: growth(uni, k, dist) for k, *_ in metrics}
    out = []
    for label, m in rec["models"].items():
        if m["sigma"] is None:
            continue
        s = f"{m['sigma']:g}"
        for metric, sign, words, alone in metrics:
            g = growth(m, metric, dist)
            if alone:
                dg = across_seeds(g)
                out.append({
                    "claim": f"{label}: {words} away from the typical positions (far "
                             f"d >= {FAR} px minus near d <= {NEAR} px; sigma = {s})",
                    "paper": paper, "sigcnn": _fmt(dg), "verdict": _verdict(dg, sign)})
            dd = across_seeds(_minus(g, g_u[metric]))
            out.append({
                "claim": f"{label}: {words} with distance more than for the uniform "
                         f"control (far-minus-near of {label} minus that of "
                         f"{BASELINE.label})",
                "paper": paper, "sigcnn": f"{_fmt(dd)}; uniform's own far-minus-near "
                         f"{_fmt(across_seeds(g_u[metric]))}",
                "verdict": _verdict(dd, sign)})
    return out


def invariants(rec: dict) -> dict:
    """The facts the figure relies on, each True or False."""
    inv = {k.replace("_", " "): bool(v) for k, v in rec["checks"].items()}
    bounded, contains = True, True
    for m in rec["models"].values():
        for metric in METRICS:
            for d in m[metric]:
                if d["mean"] is None:
                    continue
                bounded &= all(0.0 <= v <= 1.0 for v in d["values"])
                contains &= d["low"] - 1e-12 <= d["mean"] <= d["high"] + 1e-12
        for p in m["per_seed"]:
            for r in p.values():
                bounded &= 0 <= r["changes_correct"] <= min(r["changes"], r["correct"])
                bounded &= max(r["changes"], r["correct"]) <= r["pairs"]
        bounded &= abs(sum(m["training_histogram"]) - 1.0) < 1e-9
    inv["every rate in [0, 1], counts consistent, histograms normalised"] = bool(bounded)
    inv["every interval contains its mean"] = bool(contains)
    return inv


def figure(rec: dict):
    """Training positions, then accuracy and P(change) against distance."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 3.9), layout="constrained")
    axes = fig.subplots(1, 4)
    dist = np.asarray(rec["distances"])
    edges = np.asarray(rec["histogram_edges"])
    colors = {}
    ax = axes[0]
    for label, m in rec["models"].items():
        name = label if m["sigma"] is not None else f"{label} (uniform)"
        line, = ax.step(edges[:-1], m["training_histogram"], where="post", label=name)
        colors[label] = line.get_color()
    ax.set_xlabel("distance of the training positions from the centre (px)")
    ax.set_ylabel("density")
    ax.set_title("where the training digits were", fontsize=10)
    ax.legend(fontsize=8)
    titles = {"accuracy": "accuracy (first frame)",
              "p_change": "P(top-1 change), 1-px diagonal shift",
              "p_change_correct": "P(top-1 change | first frame correct)"}
    for ax, metric in zip(axes[1:], ("accuracy", "p_change", "p_change_correct")):
        for label, m in rec["models"].items():
            d = m[metric]
            mean = np.array([np.nan if v["mean"] is None else v["mean"] for v in d])
            lo = np.clip([np.nan if v["low"] is None else v["low"] for v in d], 0, 1)
            hi = np.clip([np.nan if v["high"] is None else v["high"] for v in d], 0, 1)
            ax.plot(dist, mean, "o-", ms=4, color=colors[label], label=label)
            ax.fill_between(dist, lo, hi, color=colors[label], alpha=0.2)
            if m["sigma"] is not None:
                ax.axvline(m["sigma"], color=colors[label], ls=":", lw=1)
        ax.set_xlabel("distance of the test digit from the centre (px)")
        ax.set_title(titles[metric], fontsize=10)
        if metric != "accuracy":
            ax.set_ylim(bottom=0)
    axes[1].text(0.02, 0.03, "dotted: sigma of each Gaussian recipe",
                 transform=axes[1].transAxes, fontsize=8)
    fig.suptitle(f"Typicality: digits {rec['object']} px in a {rec['canvas']} px "
                 "canvas, trained at Gaussian (sigma) or uniform positions "
                 "(bands: 95% t interval over seeds)", fontsize=11)
    return fig


def main() -> int:
    """Runs the experiment; the exit status is 1 if an invariant fails."""
    ctx = setup("typicality", __doc__, external=False)
    rec = run(ctx)
    rec["claims"] = claims(rec)
    rec["invariants"] = invariants(rec)
    for c in rec["claims"]:
        ctx.say(f"{c['verdict']}: {c['claim']}: {c['sigcnn']}")
    return finish(ctx, rec, figure(rec))


if __name__ == "__main__":
    sys.exit(main())
