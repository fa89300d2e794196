"""What every script of paper_figures/ shares.

* `parser`: the common flags (``--quick``, ``--out``, ``--cache``, ``--seeds``,
  and, for scripts that accept a pretrained network, ``--torch`` / ``--keras``
  with ``--weights`` and an image folder ``--images``);
* `Recipe` and `Context.train`: trained models cached under
  ``paper_figures/results/cache/models/`` (``sigcnn.train.fit`` with an
  ``out_dir``: a killed run resumes from its last epoch, a finished one is
  reused);
* `Context.cached`: evaluations cached as JSON under ``cache/evals/``, keyed by
  what they depend on, so that a second run only redraws;
* `across_seeds`: mean and Student-t interval over training seeds;
* `Context.external`: a pretrained network and an image folder through
  ``sigcnn.interop`` and ``sigcnn.data.image_folder``;
* `finish`: the PNG and the JSON, with the invariants the figure relies on
  (status 1 if one fails).

The built-in experiments share one recipe (`BASELINE`): ``vgg_small`` at width
0.25 (total stride 16) on 64 x 64 MNIST canvases with uniformly placed digits,
trained 5 epochs; `ANTIALIASED` is the same net with BlurPool (4 taps).
``--quick`` trains 2 epochs on 1,024 images: a smoke test whose numbers mean
nothing, but whose invariants must still hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import io
import json
import os
import sys
import time
from typing import Any, Callable, Mapping

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
if HERE not in sys.path:          # scripts import _common and _nets as siblings
    sys.path.insert(0, HERE)

__all__ = ["ANTIALIASED", "BASELINE", "Context", "External", "Recipe",
           "across_seeds", "finish", "parser", "setup"]


# -- recipes and the model cache ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A trained model: architecture, data and training settings.

    Attributes:
      label: short name used in tables, legends and cache folders.
      model: a `sigcnn.models` zoo name, or ``"module:function"`` of a factory
        ``f(rngs, **options)`` importable from paper_figures/ (e.g.
        ``"_nets:reduced_vgg"``).
      options: model options as sorted ``(name, value)`` pairs.
      canvas_size: side of the MNIST canvas.
      positions: ``"uniform"``, ``"center"`` or ``"gaussian"`` placement of the
        training and test digits.
      sigma: width of ``"gaussian"`` placement in pixels.
      epochs, batch_size, learning_rate: Adam training.
      augment_shift: random translations of up to this many pixels (0: none).
      n_train: training images (None: all 4,000).
    """

    label: str
    model: str = "vgg_small"
    options: tuple = (("downsample", "max"), ("in_channels", 1), ("width", 0.25))
    canvas_size: int = 64
    positions: str = "uniform"
    sigma: float | None = None
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 3e-3
    augment_shift: int = 0
    n_train: int | None = None

    def with_options(self, label: str, **options) -> "Recipe":
        """The same recipe with model options replaced or added."""
        opts = dict(self.options)
        opts.update(options)
        return dataclasses.replace(self, label=label,
                                   options=tuple(sorted(opts.items())))

    def replace(self, **fields) -> "Recipe":
        return dataclasses.replace(self, **fields)

    def quick(self) -> "Recipe":
        """The smoke-test version: 2 epochs on 1,024 images."""
        return dataclasses.replace(self, epochs=2, n_train=1024)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["options"] = dict(self.options)
        return d

    def digest(self) -> str:
        d = self.to_dict()
        d.pop("label")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def dataset(self):
        from sigcnn.data import DatasetSpec

        return DatasetSpec(name="mnist-canvas", canvas_size=self.canvas_size,
                           positions=self.positions, sigma=self.sigma,
                           n_train=self.n_train)


BASELINE = Recipe("baseline")
ANTIALIASED = BASELINE.with_options("blur-4", downsample="blur", blur_size=4)


def _factory(model: str):
    if ":" not in model:
        return model
    mod, fn = model.split(":")
    return getattr(importlib.import_module(mod), fn)


def across_seeds(values, *, confidence: float = 0.95) -> dict:
    """Mean and Student-t interval of one number measured on several seeds.

    Args:
      values: one float per seed (None entries are dropped).
      confidence: the interval's level.

    Returns:
      ``{"mean", "low", "high", "values", "n"}`` (``low == high == mean`` for
      one seed, all None for none).
    """
    from scipy import stats

    vals = [float(v) for v in values if v is not None]
    n = len(vals)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "values": [], "n": 0}
    mean = float(np.mean(vals))
    if n == 1 or np.std(vals) == 0:
        return {"mean": mean, "low": mean, "high": mean, "values": vals, "n": n}
    sem = float(np.std(vals, ddof=1) / np.sqrt(n))
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return {"mean": mean, "low": float(low), "high": float(high), "values": vals,
            "n": n}


# -- pretrained networks -----------------------------------------------------


@dataclasses.dataclass
class External:
    """A pretrained network and the images of ``--images``.

    Attributes:
      label: what was loaded (the ``--torch`` / ``--keras`` spec).
      logits: jittable function images [B, H, W, C] -> logits [B, K].
      images: float32 [N, H, W, C], preprocessed.
      labels: int32 [N] or None.
      taps: jittable function images -> {name: map [B, h, w, c]}, or None.
    """

    label: str
    logits: Callable
    images: np.ndarray
    labels: np.ndarray | None
    taps: Callable | None = None


def _load_keras_callable(spec: str):
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)()


def _external(args, ap: argparse.ArgumentParser) -> External | None:
    if not (args.torch or args.keras):
        for flag in ("weights", "images", "taps", "output"):
            if getattr(args, flag) is not None:
                ap.error(f"argument --{flag}: only with --torch or --keras; got "
                         f"--{flag} {getattr(args, flag)}")
        if args.probabilities:
            ap.error("argument --probabilities: only with --torch or --keras")
        return None
    if args.torch and args.keras:
        ap.error(f"argument --keras: give --torch or --keras, not both; got --torch "
                 f"{args.torch} and --keras {args.keras}")
    if args.images is None:
        ap.error("argument --images: a folder of images is needed with --torch / "
                 "--keras")
    import jax.numpy as jnp

    from sigcnn import interop
    from sigcnn.cli import _common as cli

    if args.keras and ":" in args.keras and not os.path.isfile(args.keras):
        if args.weights is not None:
            ap.error("argument --weights: a Keras callable builds its own weights; "
                     f"drop --weights {args.weights}")
        try:
            model = _load_keras_callable(args.keras)
        except (ImportError, AttributeError, ValueError) as e:
            ap.error(f"argument --keras: cannot build {args.keras!r}: {e}")
        from sigcnn.interop.keras_import import from_keras

        apply, params = from_keras(model)
        taps = None
        if args.taps:
            names = [t.strip() for t in args.taps.split(",") if t.strip()]
            tapply, tparams = from_keras(model, taps=names)
            taps = lambda x: tapply(tparams, x)      # noqa: E731
        f = lambda x: apply(params, x)               # noqa: E731
        label = args.keras
    else:
        args.timm = None
        cli.check_external_flags(args, ap)
        net = cli.open_external(args, ap, step="[model]")
        f, taps, label = net.f, net.taps, net.label
    out = args.output

    def logits(x):
        y = f(x)
        if isinstance(y, (list, tuple)):
            if out is None:
                raise ValueError(
                    f"--output: the network has {len(y)} outputs; name the "
                    f"classifier's index with --output")
            y = y[out]
        return jnp.log(y + 1e-30) if args.probabilities else y

    folder = cli.open_folder(args, ap)
    images = np.stack([folder.image(i) for i in range(len(folder))]).astype(np.float32)
    labels = None if folder.labels is None else np.asarray(folder.labels, np.int32)
    del interop
    return External(label=label, logits=logits, images=images, labels=labels,
                    taps=taps)


# -- the run context ---------------------------------------------------------


def parser(doc: str, *, external: bool = True) -> argparse.ArgumentParser:
    """The flags every script shares (see the module docstring)."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: tiny training, few images (its numbers "
                         "mean nothing; its invariants must hold)")
    ap.add_argument("--out", default=RESULTS, metavar="DIR",
                    help="where the PNG and JSON go (default paper_figures/results)")
    ap.add_argument("--cache", default=None, metavar="DIR",
                    help="trained models and evaluations (default OUT/cache)")
    ap.add_argument("--seeds", type=int, default=None, metavar="N",
                    help="training seeds per model (default 3; --quick: 2)")
    if external:
        g = ap.add_argument_group(
            "a pretrained network instead of the built-in MNIST models")
        g.add_argument("--torch", metavar="MODULE:CALLABLE",
                       help="a PyTorch network, e.g. torchvision.models:resnet18")
        g.add_argument("--keras", metavar="FILE|MODULE:CALLABLE",
                       help="a Keras 3 model file, or a callable returning a "
                            "built Keras model")
        g.add_argument("--weights", metavar="FILE", help="state dict for --torch")
        g.add_argument("--taps", metavar="NAMES",
                       help="comma-separated layers whose maps to analyse")
        g.add_argument("--output", type=int, default=None, metavar="INDEX",
                       help="which output is the classifier, for networks with "
                            "several")
        g.add_argument("--probabilities", action="store_true",
                       help="the network outputs probabilities (their log is "
                            "used as logits)")
        from sigcnn.cli import _common as cli

        cli.add_folder_args(g)
    return ap


class Context:
    """One run of a script: its flags, folders, model cache and evaluations."""

    def __init__(self, name: str, args, ap: argparse.ArgumentParser):
        self.name = name
        self.args = args
        self.quick = bool(args.quick)
        self.out = os.path.abspath(args.out)
        self.cache = os.path.abspath(args.cache or os.path.join(self.out, "cache"))
        n = args.seeds if args.seeds is not None else (2 if self.quick else 3)
        if n < 1:
            ap.error(f"argument --seeds: must be at least 1; got {n}")
        self.seeds = tuple(range(n))
        self.t0 = time.perf_counter()
        os.makedirs(self.out, exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        import jax

        jax.config.update("jax_compilation_cache_dir",
                          os.path.join(self.cache, "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        self._data: dict = {}
        self.ext = _external(args, ap) if hasattr(args, "torch") else None

    def say(self, text: str) -> None:
        print(f"[{self.name} {time.perf_counter() - self.t0:6.0f}s] {text}",
              file=sys.stderr, flush=True)

    def recipe(self, r: Recipe) -> Recipe:
        """`r`, or its quick version under ``--quick``."""
        return r.quick() if self.quick else r

    def data(self, r: Recipe):
        """``(x_train, y_train, x_test, y_test)`` of a recipe (loaded once)."""
        from sigcnn.data import load_dataset

        spec = r.dataset()
        if spec not in self._data:
            self._data[spec] = load_dataset(spec)
        return self._data[spec]

    def model_dir(self, r: Recipe, seed: int) -> str:
        return os.path.join(self.cache, "models", f"{r.label}-{r.digest()}-seed{seed}")

    def train(self, r: Recipe, seed: int):
        """The model of recipe `r` trained with `seed` (cached; resumable).

        Returns:
          ``(model, fit_result)``: the NNX module in evaluation mode and the
          `sigcnn.train.FitResult` (``test_accuracy``, ``history``, ...).
        """
        from sigcnn.report.models import TrainProgress
        from sigcnn.train import fit

        r = self.recipe(r)
        xtr, ytr, xte, yte = self.data(r)
        progress = TrainProgress(self.say, label=f"{r.label} seed {seed}",
                                 batch_size=r.batch_size, interval=10.0)
        res = fit(_factory(r.model), (xtr, ytr), (xte, yte), epochs=r.epochs,
                  batch_size=r.batch_size, learning_rate=r.learning_rate,
                  seed=seed, augment_shift=r.augment_shift,
                  augment_padding="zero", model_options=dict(r.options),
                  out_dir=self.model_dir(r, seed), progress=progress,
                  extra_config={"recipe": r.to_dict()})
        return res.model, res

    def cached(self, kind: str, key: Mapping[str, Any], compute: Callable[[], Any]):
        """`compute()`'s JSON-ready result, cached under ``cache/evals/``.

        Args:
          kind: what is computed (part of the file name).
          key: everything the result depends on (JSON-ready); recipes and
            seeds, options, ``quick``.
          compute: returns the result (converted by ``sigcnn._io.to_jsonable``).
        """
        from sigcnn._io import atomic_write_json, to_jsonable

        blob = json.dumps({"kind": kind, "quick": self.quick, **key},
                          sort_keys=True, default=str)
        path = os.path.join(self.cache, "evals",
                            f"{kind}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}.json")
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)["value"]
        value = to_jsonable(compute())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write_json(path, {"key": json.loads(blob), "value": value})
        return value

    def test_images(self, r: Recipe, n: int):
        """The first `n` held-out images and labels of a recipe's dataset."""
        _, _, xte, yte = self.data(self.recipe(r))
        return xte[:n], yte[:n]


def setup(name: str, doc: str, *, external: bool = True,
          extra: Callable[[argparse.ArgumentParser], None] | None = None) -> Context:
    """Parses the command line and returns the run's `Context`."""
    ap = parser(doc, external=external)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    return Context(name, args, ap)


def finish(ctx: Context, rec: dict, fig, *, name: str | None = None) -> int:
    """Writes ``NAME.png`` and ``NAME.json`` and returns the exit status.

    `rec` must hold ``"invariants"``: {description: bool}. The JSON also gets
    the script's name, ``quick``, the seeds and the run time.
    """
    from sigcnn._io import atomic_write_bytes, atomic_write_json

    name = name or ctx.name
    rec = {"figure": name, "quick": ctx.quick, "seeds": list(ctx.seeds),
           "external": None if ctx.ext is None else ctx.ext.label, **rec,
           "seconds": time.perf_counter() - ctx.t0}
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(os.path.join(ctx.out, f"{name}.png"), buf.getvalue())
    atomic_write_json(os.path.join(ctx.out, f"{name}.json"), rec)
    inv = rec["invariants"]
    for k, v in inv.items():
        print(f"  [{'ok' if v else 'FAILED'}] {k}")
    print(f"wrote {ctx.out}/{name}.png and .json in {rec['seconds']:.0f} s")
    return 0 if inv and all(inv.values()) else 1
