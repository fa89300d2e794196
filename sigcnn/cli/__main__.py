"""``python -m sigcnn.cli``: the ``sigcnn`` command."""

import sys

from sigcnn.cli import main

sys.exit(main())
