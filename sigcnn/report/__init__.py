"""``sigcnn report``: the whole story as one self-contained HTML page and a JSON.

Modules, one topic each:

* :mod:`sigcnn.report.config`: `ReportConfig`, `DEFAULT_REPORT`,
  `QUICK_REPORT` (the training fields default to the baseline recipe
  `sigcnn.data.BASELINE_TRAINING`, the one ``sigcnn train`` uses);
* :mod:`sigcnn.report.models`: `train_model`, `TrainProgress`,
  `shift_test_checkpoint` (training glue, also behind ``sigcnn train`` and
  ``sigcnn shift-test``);
* :mod:`sigcnn.report.pipeline`: `make_report` on built-in defaults (two
  models, the sampling-theorem checks, per-layer spectra, the shift test);
* :mod:`sigcnn.report.network`: `make_network_report` on the user's own
  network and image folder;
* :mod:`sigcnn.report.frames`: one frame per shift protocol;
* :mod:`sigcnn.report.html`: the pages from the jinja2 templates in
  ``sigcnn/templates`` (figures come from `sigcnn.figures`).

The datasets (`DatasetSpec`, `load_dataset`, `DATASETS`) live in
`sigcnn.data` and are re-exported here.
"""

from sigcnn.data.datasets import (
    DATASETS as DATASETS,
)
from sigcnn.data.datasets import (
    DatasetSpec as DatasetSpec,
)
from sigcnn.data.datasets import (
    load_dataset as load_dataset,
)
from sigcnn.report.config import (
    DEFAULT_REPORT as DEFAULT_REPORT,
)
from sigcnn.report.config import (
    QUICK_REPORT as QUICK_REPORT,
)
from sigcnn.report.config import (
    REPORT_MODELS as REPORT_MODELS,
)
from sigcnn.report.config import (
    VERIFY_MODES as VERIFY_MODES,
)
from sigcnn.report.config import (
    ReportConfig as ReportConfig,
)
from sigcnn.report.html import (
    render_html as render_html,
)
from sigcnn.report.html import (
    render_network_html as render_network_html,
)
from sigcnn.report.models import (
    TrainProgress as TrainProgress,
)
from sigcnn.report.models import (
    shift_test_checkpoint as shift_test_checkpoint,
)
from sigcnn.report.models import (
    train_model as train_model,
)
from sigcnn.report.network import (
    NETWORK_SHIFT_OPTIONS as NETWORK_SHIFT_OPTIONS,
)
from sigcnn.report.network import (
    make_network_report as make_network_report,
)
from sigcnn.report.pipeline import (
    CachedModelError as CachedModelError,
)
from sigcnn.report.pipeline import (
    make_report as make_report,
)

__all__ = [
    "DATASETS",
    "DEFAULT_REPORT",
    "NETWORK_SHIFT_OPTIONS",
    "QUICK_REPORT",
    "REPORT_MODELS",
    "VERIFY_MODES",
    "CachedModelError",
    "DatasetSpec",
    "ReportConfig",
    "TrainProgress",
    "load_dataset",
    "make_network_report",
    "make_report",
    "render_html",
    "render_network_html",
    "shift_test_checkpoint",
    "train_model",
]
