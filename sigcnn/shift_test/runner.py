"""The shift test's run: validated plans, per-chunk measurements, statistics.

`Run` is what `sigcnn.shift_test.run_shift_test` and the resumable
`sigcnn.shift_test.runs.resumable_shift_test` share: built once from the
options (every check and every plan before any evaluation), it evaluates
chunks of images into per-image arrays and turns all chunks into a
`ShiftTestResult`.

References:
  Azulay & Weiss, JMLR 2019 (protocols, Table 1, Figure 1). Zhang, ICML 2019
  (consistency). Michaeli, Michaeli & Soudry, CVPR 2023 (all shifts).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from sigcnn import metrics
from sigcnn import shifts as _shifts
from sigcnn._checks import check_key
from sigcnn._io import to_jsonable
from sigcnn.shift_test.evaluation import Evaluator, first_line, groups, pad_images
from sigcnn.shift_test.intervals import bootstrap_mean, wilson
from sigcnn.shift_test.options import ShiftTestOptions, check_labels
from sigcnn.shift_test.protocols import PLANS, sweep_frames, sweep_plan
from sigcnn.shift_test.results import (
    AllShiftsResult,
    ConsistencyResult,
    JaggednessResult,
    ProtocolResult,
    ShiftTestResult,
    _nested_tuple,
)

__all__ = ["Run"]


class Run:
    """A validated shift test: its plans, evaluator and keys (see `run_shift_test`).

    A run is split into chunks of images: `evaluate` turns one chunk into
    per-image arrays (top-1 classes, pair changes, MAC values) and a small
    JSON meta dict; `finish` concatenates the chunks in order and computes
    every statistic, so a run split into chunks (`sigcnn.shift_test.runs`)
    gives the same numbers as one call on all images.
    """

    def __init__(self, logits_fn, shape, dtype, labels, *, key,
                 options: ShiftTestOptions):
        if not callable(logits_fn):
            raise TypeError(
                    f"`logits_fn` must be callable (images [B, H, W, C] -> logits "
                    f"[B, K]); got {logits_fn!r} of type {type(logits_fn).__name__}.")
        n, h, w, c = shape
        self.n, self.size, self.channels = int(n), (int(h), int(w)), int(c)
        self.labels = None if labels is None else check_labels(labels, n)
        key = check_key("key", key)
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)     # a legacy uint32[2] key
        self.opts = opts = options.resolve(shape)
        protocols = opts["protocols"]
        self.sweep_idx = opts["sweep_images"]
        self.consistency, self.all_shifts = opts["consistency"], opts["all_shifts"]

        # Geometry first: every plan raises on a bad size before any evaluation.
        self.plans = [PLANS[name].plan(name, self.size, opts) for name in protocols]
        self.sweep = None
        if self.sweep_idx:
            self.sweep = sweep_plan(self.size, opts)
            if self.sweep[0].shape[0] < 2:
                raise ValueError(
                        f"the {opts['sweep_protocol']!r} sweep of the {self.size} "
                        f"images has a single position; use another "
                        f"`sweep_protocol` or larger images.")
        self.evaluator = Evaluator(logits_fn, opts["chunk"], opts["jit"],
                                   opts["mesh"])
        # probe only the sizes that will be evaluated: a network with a fixed input
        # size may accept the frames but not the images themselves
        frame_sizes = {p.frame_size for p in self.plans}
        if self.sweep is not None:
            frame_sizes.add(tuple(self.sweep[2]))
        if self.consistency is not None or self.all_shifts or not frame_sizes:
            frame_sizes.add(self.size)         # rolls, consistency and all shifts
        num_classes, first = None, None
        for fs in sorted(frame_sizes):
            k = self.evaluator.probe((fs[0], fs[1], c), dtype)
            num_classes, first = (k, fs) if num_classes is None else (num_classes, first)
            if k != num_classes:
                raise ValueError(
                        f"`logits_fn` returns {num_classes} logits on {first} "
                        f"frames but {k} on {fs} frames.")
        self.num_classes = int(num_classes)
        if self.labels is not None:
            bad = (self.labels < 0) | (self.labels >= num_classes)
            if bad.any():
                raise ValueError(
                        f"`labels` must lie in [0, K) = [0, {num_classes}) (K from "
                        f"`logits_fn`); got {int(bad.sum())} out-of-range value(s), "
                        f"e.g. {int(self.labels[bad][0])}.")
        self.k_proto, k_cons = jax.random.split(key)
        self.pair_offsets = None
        if self.consistency is not None:
            m = opts["consistency_max_shift"]
            lo = -m if self.consistency == "circular" else 0
            self.pair_offsets = _shifts.random_pair_schedule(
                    k_cons, self.n, min_offset=lo, max_offset=m).offsets   # [N, 2, 2]
        self.alls_method = "brute" if opts["all_shifts_method"] == "brute" else "atrous"
        self.alls_reason = None
        settings = {k: v for k, v in opts.items()
                    if k not in ("jit", "all_shifts_check", "mesh")}
        settings.update(
                protocols=list(protocols),
                consistency_max_shift=opts["consistency_max_shift"]
                if self.consistency else None,
                sweep_images=list(self.sweep_idx),
                key=np.asarray(jax.random.key_data(key)).tolist())
        self.settings = to_jsonable(settings)

    # -- one chunk of images ------------------------------------------------

    def evaluate(self, images, start: int = 0, progress=None):
        """Per-image arrays and meta of images [start, start + g) of the run.

        Args:
          images: float array [g, H, W, C], finite, the run's images
            ``start .. start + g - 1``.
          start: index of the first image in the run.
          progress: None or ``progress(name, done, total)``.

        Returns:
          ``(arrays, meta)``: a dict name -> NumPy array (leading axis g) and a
          JSON-ready dict (geometry records, all-shift method, seconds).
        """
        g = images.shape[0]
        arrays, meta = {}, {"records": {}, "seconds": {}, "start": int(start),
                            "n_images": int(g)}
        for plan in self.plans:
            t0 = time.perf_counter()
            logits, record = self._frames(plan, images, start, progress)
            a = logits[:, plan.pairs[:, 0]]
            b = logits[:, plan.pairs[:, 1]]
            arrays[f"{plan.name}/change"] = np.asarray(
                    metrics.p_top1_change(a, b, reduce=False))            # [g, P]
            arrays[f"{plan.name}/mac"] = np.asarray(
                    metrics.mean_abs_change(a, b, reduce=False))          # [g, P]
            arrays[f"{plan.name}/top"] = np.argmax(a, axis=-1).astype(np.int32)
            meta["records"][plan.name] = record.to_dict()
            meta["seconds"][plan.name] = time.perf_counter() - t0
        if self.consistency is not None:
            t0 = time.perf_counter()
            top, record = self._consistency(images, start, progress)
            arrays["consistency/top"] = top                               # [g, 2]
            meta["records"]["consistency"] = record.to_dict()
            meta["seconds"]["consistency"] = time.perf_counter() - t0
        if self.all_shifts:
            t0 = time.perf_counter()
            top, extent = self._all_shifts(images, start, progress)
            arrays["all_shifts/top"] = top                                # [g, Sy*Sx]
            meta["all_shifts"] = dict(method=self.alls_method,
                                      reason=self.alls_reason,
                                      extent=[int(v) for v in extent])
            meta["seconds"]["all_shifts"] = time.perf_counter() - t0
        return arrays, meta

    def _frames(self, plan, images, start, progress):
        """Logits [g, T, K] of every frame of `plan`, in groups of images."""
        n = images.shape[0]
        t = plan.offsets.shape[0]
        g = min(n, max(1, self.evaluator.chunk // t))
        out, record = [], None
        for s, e in groups(n, g):
            xg = pad_images(images[s:e], g)
            frames, rec = PLANS[plan.name].frames(plan, xg, self.opts)
            record = record or rec
            flat = frames.reshape((g * t,) + frames.shape[2:])
            out.append(self.evaluator(flat).reshape(g, t, -1)[:e - s])
            if progress is not None:
                progress(plan.name, start + e, self.n)
        return np.concatenate(out, axis=0), record

    def _consistency(self, images, start, progress):
        n, h, w = images.shape[:3]
        mode, m = self.opts["consistency"], self.opts["consistency_max_shift"]
        offsets = self.pair_offsets[start:start + n]
        g = min(n, max(1, self.evaluator.chunk // 2))
        out, record = [], None
        for s, e in groups(n, g):
            xg = pad_images(images[s:e], g)
            og = pad_images(offsets[s:e], g)
            if mode == "circular":
                frames, rec = _shifts.translate(xg, og, method="circular")
            else:
                big = _shifts.resize_images(xg, (h + m, w + m),
                                            method=self.opts["resize_method"],
                                            antialias=True)
                frames, rec = _shifts.crop(big, og, size=(h, w))
            record = record or rec
            flat = frames.reshape((g * 2,) + frames.shape[2:])
            logits = self.evaluator(flat).reshape(g, 2, -1)[:e - s]
            out.append(np.argmax(logits, axis=-1).astype(np.int32))
            if progress is not None:
                progress("consistency", start + e, self.n)
        return np.concatenate(out, axis=0), record

    def _all_shifts(self, images, start, progress):
        from sigcnn.atrous import all_shifts

        n = images.shape[0]
        extent = self.opts["all_shifts_extent"]
        explicit = None if extent is None else _shifts.grid_schedule(extent).offsets
        f = self.evaluator.traceable

        def call(x, brute_chunk, check=0):
            method = self.alls_method
            res = all_shifts(f, x, method=method, shifts=explicit,
                             chunk=brute_chunk if method == "brute" else None,
                             check=check if method == "atrous" else 0)
            if explicit is not None:
                res = res.reshape((x.shape[0],) + tuple(extent) + res.shape[2:])
            return res

        def fall_back(err):
            if self.opts["all_shifts_method"] != "auto" or self.alls_method != "atrous":
                raise err
            self.alls_method, self.alls_reason = "brute", first_line(err)

        # The grid (Sy, Sx) from an abstract evaluation: traces, compiles nothing.
        spec = jax.ShapeDtypeStruct((1,) + tuple(images.shape[1:]), images.dtype)
        while True:
            try:
                shape = jax.eval_shape(lambda x: call(x, None), spec).shape
                break
            except (NotImplementedError, ValueError) as err:
                fall_back(err)
        if len(shape) != 4:
            raise ValueError(
                    f"`logits_fn` must return logits [B, K]; `all_shifts` gave shape "
                    f"{shape}.")
        # An undecimated pass over one image holds about max(Sy, Sx) strided
        # passes' worth of activations (deep layers at full resolution), so
        # groups of chunk // max(Sy, Sx) images; "brute" then runs chunk // g
        # shifts at once.
        g = min(n, max(1, self.evaluator.chunk // max(shape[1], shape[2])))
        if self.opts["mesh"] is not None:       # whole groups per device
            g = -(-g // self.opts["mesh"].size) * self.opts["mesh"].size
        brute_chunk = max(1, self.evaluator.chunk // g)
        out, done = [], 0
        while done < n:
            e = min(done + g, n)
            xg = self.evaluator.place(pad_images(images[done:e], g))
            try:
                res = np.asarray(call(xg, brute_chunk, self.opts["all_shifts_check"]))
            except (NotImplementedError, ValueError) as err:
                fall_back(err)
                out, done = [], 0
                continue
            top = np.argmax(res[:e - done], axis=-1)                      # [g, Sy, Sx]
            out.append(top.reshape(e - done, -1).astype(np.int32))
            done = e
            if progress is not None:
                progress("all_shifts", start + done, self.n)
        return np.concatenate(out, axis=0), shape[1:3]

    def sweep_result(self, images, progress=None):
        """The jaggedness sweep of images [k, H, W, C] (the `sweep_idx` images)."""
        opts = self.opts
        offsets, extra, _ = self.sweep
        protocol = opts["sweep_protocol"]
        frames, rec = sweep_frames(images, offsets, extra, self.size, opts)
        k, t = frames.shape[:2]
        logits = self.evaluator(frames.reshape((k * t,) + frames.shape[2:]))
        logits = logits.reshape(k, t, -1)
        idx = np.asarray(self.sweep_idx)
        if self.labels is not None:
            lab, reference = self.labels[idx], "label"
        else:
            lab, reference = np.argmax(logits[:, 0], axis=-1), "top1"
        p = np.asarray(metrics.true_class_probability(logits, lab))
        top = np.argmax(logits, axis=-1)
        flips = (np.asarray(metrics.top1_flips(logits, axis=1)) if t > 1
                 else np.zeros(k))
        if progress is not None:
            progress("jaggedness", k, k)
        geometry = dict(rec.to_dict())
        geometry["offsets"] = "see `offsets`"
        geometry.update(extra)
        axis = opts["sweep_axis"]
        coord = offsets[:, 1] if axis == "horizontal" else offsets[:, 0]
        return JaggednessResult(
                protocol=protocol, axis=axis,
                indices=tuple(int(i) for i in idx),
                labels=tuple(int(v) for v in lab),
                shifts=tuple(int(v) for v in coord),
                offsets=_nested_tuple(offsets.tolist()),
                p_correct=_nested_tuple(p.astype(np.float64).tolist()),
                top1=_nested_tuple(top.astype(np.int64).tolist()),
                flips=tuple(int(v) for v in np.asarray(flips).reshape(k)),
                geometry=to_jsonable(geometry), reference=reference)

    # -- aggregation --------------------------------------------------------

    def finish(self, parts, jaggedness=None, *, seconds: float):
        """The `ShiftTestResult` of the chunks `parts` = [(arrays, meta), ...]."""
        parts = sorted(parts, key=lambda p: p[1]["start"])
        covered = sum(m["n_images"] for _, m in parts)
        if covered != self.n:
            raise ValueError(f"the chunks cover {covered} of {self.n} images.")
        arrays = {k: np.concatenate([a[k] for a, _ in parts], axis=0)
                  for k in parts[0][0]}
        metas = [m for _, m in parts]
        spent = {}
        for m in metas:
            for k, v in m["seconds"].items():
                spent[k] = spent.get(k, 0.0) + float(v)
        records = metas[0]["records"]
        results = tuple(
                self._protocol_result(plan, arrays, records[plan.name],
                                      jax.random.fold_in(self.k_proto, i),
                                      spent[plan.name])
                for i, plan in enumerate(self.plans))
        cons = None
        if self.consistency is not None:
            cons = self._consistency_result(arrays["consistency/top"],
                                            records["consistency"],
                                            spent["consistency"])
        alls = None
        if self.all_shifts:
            alls = self._all_shifts_result(arrays["all_shifts/top"], metas,
                                           spent["all_shifts"])
        return ShiftTestResult(
                protocols=results, consistency=cons, all_shifts=alls,
                jaggedness=jaggedness, n_images=self.n,
                num_classes=self.num_classes, input_size=self.size,
                settings=self.settings, seconds=float(seconds),
                labelled=self.labels is not None)

    def _protocol_result(self, plan, arrays, record, key, seconds):
        opts = self.opts
        change = arrays[f"{plan.name}/change"]
        mac = arrays[f"{plan.name}/mac"]
        conf, nres = opts["confidence"], opts["n_resamples"]
        k_p, k_mac, k_acc = jax.random.split(key, 3)
        if opts["p_ci"] == "binomial":
            p_ci = wilson(int(change.sum()), int(change.size), confidence=conf)
        else:
            _, p_ci = bootstrap_mean(change, key=k_p, n_resamples=nres,
                                     confidence=conf)
        mac_mean, mac_ci = bootstrap_mean(mac, key=k_mac, n_resamples=nres,
                                          confidence=conf)
        acc = acc_ci = None
        if self.labels is not None:
            top = arrays[f"{plan.name}/top"]
            correct = (top == self.labels[:, None]).astype(np.float64)
            acc, acc_ci = bootstrap_mean(correct, key=k_acc, n_resamples=nres,
                                         confidence=conf)
        geometry = dict(record)
        geometry.update(plan.extra)
        geometry["pairs"] = plan.pairs.tolist()
        return ProtocolResult(
                name=plan.name,
                p_top1_change=float(change.mean()),
                p_top1_change_ci=p_ci,
                p_ci_method=opts["p_ci"],
                mac=mac_mean,
                mac_ci=mac_ci,
                accuracy=acc,
                accuracy_ci=acc_ci,
                p_by_pair=tuple(float(v) for v in change.mean(axis=0)),
                n_images=int(change.shape[0]),
                n_pairs=int(change.size),
                pairs_per_image=int(plan.pairs.shape[0]),
                geometry=to_jsonable(geometry),
                seconds=float(seconds))

    def _consistency_result(self, top, record, seconds):
        n, (h, w) = self.n, self.size
        mode, m = self.opts["consistency"], self.opts["consistency_max_shift"]
        agree = top[:, 0] == top[:, 1]
        ci = wilson(int(agree.sum()), int(n), confidence=self.opts["confidence"])
        acc = None
        if self.labels is not None:
            acc = float(np.mean(top == self.labels[:, None]))
        geometry = dict(record)
        geometry["offsets"] = f"per image, see `offsets` ({n} pairs)"
        geometry["input_size"] = [h + m, w + m] if mode == "crop" else [h, w]
        geometry["resized_to"] = [h + m, w + m] if mode == "crop" else None
        if mode == "crop":
            geometry["resize_method"] = self.opts["resize_method"]
            geometry["antialias"] = True
        return ConsistencyResult(
                mode=mode, max_shift=int(m), consistency=float(agree.mean()),
                consistency_ci=ci, accuracy=acc, n_images=int(n),
                offsets=_nested_tuple(self.pair_offsets.tolist()),
                geometry=to_jsonable(geometry), seconds=float(seconds))

    def _all_shifts_result(self, top, metas, seconds):
        n = self.n
        sy, sx = metas[0]["all_shifts"]["extent"]
        methods = [m["all_shifts"]["method"] for m in metas]
        reasons = [m["all_shifts"]["reason"] for m in metas
                   if m["all_shifts"]["reason"]]
        method = methods[0] if len(set(methods)) == 1 else "atrous+brute"
        reason = reasons[0] if reasons else None
        if method == "atrous+brute":
            first = next(m for m, mm in zip(metas, methods) if mm == "brute")
            reason = (f"{reason} (images from {first['start']} on by brute force, "
                      f"earlier ones undecimated and certified)")
        conf = self.opts["confidence"]
        invariant = np.all(top == top[:, :1], axis=1)
        i_ci = wilson(int(invariant.sum()), int(n), confidence=conf)
        robust = robust_ci = acc = mean_acc = by_shift = None
        if self.labels is not None:
            correct = top == self.labels[:, None]                          # [N, P]
            ok = np.all(correct, axis=1)
            robust = float(ok.mean())
            robust_ci = wilson(int(ok.sum()), int(n), confidence=conf)
            acc, mean_acc = float(correct[:, 0].mean()), float(correct.mean())
            by_shift = _nested_tuple(correct.mean(axis=0).reshape(sy, sx).tolist())
        return AllShiftsResult(
                method=method, fallback_reason=reason, extent=(int(sy), int(sx)),
                robust_accuracy=robust, robust_accuracy_ci=robust_ci,
                invariant_fraction=float(invariant.mean()),
                invariant_fraction_ci=i_ci,
                accuracy=acc, mean_accuracy=mean_acc, accuracy_by_shift=by_shift,
                n_images=int(n), seconds=float(seconds))


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------
