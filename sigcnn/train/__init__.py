"""Training of Flax NNX classifiers with optax: seeded, augmented, resumable.

`fit` trains any Flax NNX module that maps images ``[N, H, W, C]`` to logits
``[N, K]``, evaluates it after every epoch and, given an ``out_dir``,
checkpoints with orbax after every epoch so that an interrupted run resumes
without redoing finished epochs; `load_model` rebuilds the final model.
`evaluate` and `predict_logits` run a model in evaluation mode, jitted and in
fixed-size chunks. `augment`, `shift_images` and `random_shifts` are the
per-image translations that `fit` uses for augmentation.

Guarantees (each kept by a test in ``tests/test_train.py``):

1. *Determinism*: the integer ``seed`` is the only source of randomness, and
   epoch ``e`` draws from ``fold_in(data_key, e)``, so the same seed gives the
   same weights bit for bit, with or without interruptions (`loop`).
2. *Batching*: every epoch visits a fresh seeded permutation in
   ``floor(N / batch_size)`` batches of exactly ``batch_size`` images (`loop`).
3. *Augmentation*: ``augment_shift=r`` shifts each image by its own integer
   shift, uniform on ``[-r, r]^2``, with circular, zero or reflect fill
   (`augmentation`).
4. *Checkpoints*: written atomically with orbax after every epoch; crashes and
   kills leave the previous checkpoint readable; unreadable, foreign or
   non-finite checkpoints and models are refused with the path and the fix
   (`checkpoint`).
5. *Output folder*: checked writable and locked against a second run before
   the first epoch; temporaries of killed runs are removed (`outdir`).

Modules: `augmentation` (translations), `evaluation` (logits, accuracy), `building`
(models by name, optimizers), `loop` (`fit`), `checkpoint` (orbax files,
`load_model`), `outdir` (locking and cleaning), `results` (returned records).

References:
  Azulay & Weiss, "Why do deep convolutional networks generalize so poorly to
  small image transformations?", JMLR 20(184), 2019 (remedies: augmentation).
  Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
"""

from sigcnn.train.augmentation import (
    AUGMENT_PADDINGS,
    augment,
    random_shifts,
    shift_images,
)
from sigcnn.train.building import OPTIMIZERS
from sigcnn.train.checkpoint import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    has_model,
    load_model,
)
from sigcnn.train.evaluation import (
    evaluate,
    predict_logits,
)
from sigcnn.train.loop import fit
from sigcnn.train.results import (
    EvalResult,
    FitResult,
    TrainEvent,
)

__all__ = [
    "AUGMENT_PADDINGS",
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "MODEL_FILE",
    "OPTIMIZERS",
    "EvalResult",
    "FitResult",
    "TrainEvent",
    "augment",
    "evaluate",
    "fit",
    "has_model",
    "load_model",
    "predict_logits",
    "random_shifts",
    "shift_images",
]
