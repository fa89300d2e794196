"""The sampling theorem on synthetic signals (Azulay & Weiss, Section 3).

Three panels, each a claim of the paper's argument put to a test:

1. Shiftability against the cutoff of a band-limited field, for strides 2, 3
   and 4: a response sampled at stride S is shiftable (its samples determine
   every shift) exactly when it has no energy at or above 1/(2S); the
   shiftability error steps up from 0 there.
2. ReLU creates harmonics: rectifying a cosine of frequency f0 puts energy at
   2 f0, 4 f0, ...; sampled at stride S, those above 1/(2S) fold back to
   |((k f0 + 1/2) mod 1) - 1/2| · S in the strided signal's units. The measured
   amplitudes are checked against the rectified cosine's Fourier series.
3. The global-pooling oracle: global average pooling of r2[::S] is the same for
   every shift of the input exactly when the DFT of r2 vanishes at the bins
   k N / S (k != 0) — a tone at such a bin aliases onto DC and makes the pooled
   value depend on the shift; a tone elsewhere does not.

Usage: ``python paper_figures/sampling_theorem.py [--quick] [--out DIR]``. It
writes ``sampling_theorem.png`` and ``sampling_theorem.json`` to
``paper_figures/results/`` (or ``--out``); the run takes seconds, so nothing
is cached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import sigcnn as sc
from sigcnn._io import atomic_write_bytes, atomic_write_json
from sigcnn.data.synthetic import bandlimited_field, tone_1d
from sigcnn.verify import rectified_cosine_harmonic

HERE = os.path.dirname(os.path.abspath(__file__))
STRIDES = (2, 3, 4)
SIZE = 48                     # divisible by every stride


def shiftability_sweep(*, quick: bool, seed: int = 0) -> dict:
    """Aliasing ratio and shiftability error of band-limited fields."""
    step = 4 if quick else 1
    # between DFT bins, so "below 1/(2S)" is unambiguous: keeps bins 0..j
    cutoffs = [(j + 0.5) / SIZE for j in range(1, SIZE // 2, step)]
    batch = 2 if quick else 8
    key = jax.random.key(seed)
    out = {"size": SIZE, "batch": batch, "cutoffs": cutoffs, "strides": {}}
    for s in STRIDES:
        errors, ratios = [], []
        for j, c in enumerate(cutoffs):
            x = bandlimited_field(jax.random.fold_in(key, j), (SIZE, SIZE),
                                  cutoff=c, batch=batch, dtype=jnp.float64)
            errors.append(float(sc.shiftability_error(x, s)))
            ratios.append(float(sc.aliasing_ratio(x, s)))
        out["strides"][str(s)] = {"nyquist": 1 / (2 * s), "error": errors,
                                  "ratio": ratios}
    return out


def relu_harmonics(*, f0: float = 0.2, n: int = 40, stride: int = 2) -> dict:
    """The harmonics of a rectified cosine and where stride `stride` folds them."""
    u = np.arange(n)
    x = np.cos(2 * np.pi * f0 * u)
    y = np.maximum(x, 0.0)
    amps = 2 * np.abs(np.fft.rfft(y)) / n
    amps[0] /= 2
    freqs = np.fft.rfftfreq(n)
    period = round(1 / f0)
    rows = []
    for k in range(1, n // 2):
        f = k * f0
        b = round(f * n) % n
        b = min(b, n - b)
        if f >= 0.5 or b == 0 or 2 * b == n:
            continue
        predicted = rectified_cosine_harmonic(k, period) if 2 * k != period else None
        folded = abs(((f * stride + 0.5) % 1.0) - 0.5)   # in the strided signal
        rows.append({"harmonic": k, "frequency": f, "measured": float(amps[b]),
                     "predicted": predicted, "above_nyquist": f >= 1 / (2 * stride),
                     "folds_to": folded / stride})
    return {"f0": f0, "n": n, "stride": stride, "freqs": freqs.tolist(),
            "relu_amplitude": amps.tolist(), "input_amplitude":
            (2 * np.abs(np.fft.rfft(x)) / n).tolist(), "harmonics": rows}


def pooling_oracle(*, n: int = 48, stride: int = 4) -> dict:
    """Spread of global average pooling over all shifts, for tones at and off
    the bins k N / S."""
    rows = []
    for b in range(1, n // 2 + 1):
        r2 = tone_1d(n, b / n, phase=0.3)          # [1, 1, n, 1]
        pooled = [float(jnp.mean(jnp.roll(r2, t, axis=2)[:, :, ::stride]))
                  for t in range(stride)]
        rows.append({"bin": b, "at_k_n_over_s": b % (n // stride) == 0,
                     "spread": float(np.ptp(pooled))})
    return {"n": n, "stride": stride, "tones": rows}


def invariants(rec: dict) -> dict:
    """The facts the figure relies on, each True or False."""
    sw = rec["shiftability"]
    ok_below, step_above = [], []
    for s, d in sw["strides"].items():
        c = np.asarray(sw["cutoffs"])
        e = np.asarray(d["error"])
        ok_below.append(bool(np.all(e[c <= d["nyquist"]] < 1e-9)))
        step_above.append(bool(np.all(e[c > d["nyquist"]] > 1e-3)))
    h = rec["relu"]["harmonics"]
    series = all(abs(r["measured"] - r["predicted"]) < 1e-6 for r in h
                 if r["predicted"] is not None)
    aliasing = any(r["above_nyquist"] and r["measured"] > 1e-3 for r in h)
    tones = rec["pooling"]["tones"]
    gap = all((t["spread"] > 1e-3) == t["at_k_n_over_s"] for t in tones)
    return {"shiftable_iff_below_nyquist": all(ok_below) and all(step_above),
            "relu_matches_fourier_series": series,
            "relu_puts_energy_above_nyquist": aliasing,
            "gap_invariant_iff_dft_vanishes_at_kN_over_S": gap}


def claims(rec: dict) -> list:
    """The README's claim rows, with the measured numbers and verdicts."""
    sw = rec["shiftability"]
    below = max(max(e for c, e in zip(sw["cutoffs"], d["error"]) if c <= d["nyquist"])
                for d in sw["strides"].values())
    above = min(min(e for c, e in zip(sw["cutoffs"], d["error"]) if c > d["nyquist"])
                for d in sw["strides"].values())
    h = [r for r in rec["relu"]["harmonics"] if r["predicted"] is not None]
    dev = max(abs(r["measured"] - r["predicted"]) for r in h)
    p = rec["pooling"]
    hits = [t["bin"] for t in p["tones"] if t["spread"] > 1e-3]
    inv = rec["invariants"]
    verdict = lambda ok: "holds" if ok else "does not hold"      # noqa: E731
    strides = ", ".join(sw["strides"])
    return [
        {"claim": "r2 sampled at stride S is shiftable iff it has no energy at or above "
                  "1/(2S)", "paper": "Section 3 (Simoncelli et al. 1992)",
         "sigcnn": f"shiftability error <= {below:.1e} below 1/(2S), >= {above:.1e} "
                   f"above, S = {strides} ({sw['size']}x{sw['size']} fields, "
                   f"{sw['batch']} per cutoff)",
         "verdict": verdict(inv["shiftable_iff_below_nyquist"])},
        {"claim": "ReLU creates harmonics above the Nyquist rate, which alias",
         "paper": "Section 3",
         "sigcnn": f"ReLU(cos 2pi {rec['relu']['f0']} u): harmonics equal the rectified "
                   f"cosine's Fourier series to {dev:.1e}; energy above 1/(2S) at "
                   f"S = {rec['relu']['stride']}",
         "verdict": verdict(inv["relu_matches_fourier_series"]
                            and inv["relu_puts_energy_above_nyquist"])},
        {"claim": "global average pooling of r2[::S] is shift-invariant iff the DFT of r2 "
                  "vanishes at k N / S", "paper": "Section 3 (Poisson summation)",
         "sigcnn": f"of {len(p['tones'])} tone bins (N = {p['n']}, S = {p['stride']}), "
                   f"exactly bins {hits} change the pooled value under shifts",
         "verdict": verdict(inv["gap_invariant_iff_dft_vanishes_at_kN_over_S"])},
    ]


def figure(rec: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    sw = rec["shiftability"]
    for s, d in sw["strides"].items():
        line, = a.plot(sw["cutoffs"], d["error"], "o-", ms=3, label=f"S = {s}")
        a.axvline(d["nyquist"], color=line.get_color(), ls=":", lw=1)
    a.set_xlabel("field cutoff (cycles/px)")
    a.set_ylabel("shiftability error of r2[::S]")
    a.set_title("shiftable iff no energy at or above 1/(2S)")
    a.legend()
    r = rec["relu"]
    b.semilogy(r["freqs"], np.maximum(r["relu_amplitude"], 1e-8), "k.-", lw=1,
               label="ReLU(cos)")
    b.semilogy(r["freqs"], np.maximum(r["input_amplitude"], 1e-8), "c--", lw=1,
               label="cos")
    nyq = 1 / (2 * r["stride"])
    b.axvspan(nyq, 0.5, color="tab:red", alpha=0.1,
              label=f"above Nyquist of S = {r['stride']}")
    for h in r["harmonics"]:
        if h["above_nyquist"] and h["measured"] > 1e-3:
            b.annotate(f"{h['harmonic']}f0 folds to {h['folds_to']:.2f}",
                       (h["frequency"], h["measured"]), fontsize=8,
                       xytext=(-120, -30), textcoords="offset points",
                       arrowprops=dict(arrowstyle="->", lw=0.8))
    b.set_ylim(1e-4, 2)
    b.set_xlabel("frequency (cycles/px)")
    b.set_ylabel("cosine amplitude")
    b.set_title(f"ReLU harmonics of a tone at f0 = {r['f0']}")
    b.legend(fontsize=8, loc="lower left")
    p = rec["pooling"]
    bins = [t["bin"] for t in p["tones"]]
    spread = [max(t["spread"], 1e-12) for t in p["tones"]]
    colors = ["tab:red" if t["at_k_n_over_s"] else "tab:gray" for t in p["tones"]]
    c.bar(bins, spread, color=colors)
    c.set_yscale("log")
    c.set_xlabel(f"tone bin (N = {p['n']}; red: k N / S, S = {p['stride']})")
    c.set_ylabel("spread of GAP over shifts")
    c.set_title("GAP invariant iff DFT vanishes at k N / S")
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer cutoffs and fields (a smoke test, seconds)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), metavar="DIR",
                    help="output folder (default paper_figures/results)")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    rec = {"figure": "sampling_theorem", "quick": args.quick,
           "shiftability": shiftability_sweep(quick=args.quick),
           "relu": relu_harmonics(), "pooling": pooling_oracle()}
    rec["invariants"] = invariants(rec)
    rec["claims"] = claims(rec)
    rec["seconds"] = time.perf_counter() - t0
    import io

    buf = io.BytesIO()
    figure(rec).savefig(buf, format="png", dpi=100)
    atomic_write_bytes(os.path.join(args.out, "sampling_theorem.png"), buf.getvalue())
    atomic_write_json(os.path.join(args.out, "sampling_theorem.json"), rec)
    print(json.dumps(rec["invariants"], indent=2))
    print(f"wrote {args.out}/sampling_theorem.png and .json in {rec['seconds']:.1f} s")
    return 0 if all(rec["invariants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
