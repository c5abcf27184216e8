"""``python -m churnmodel`` (and ``spark-submit .../churnmodel/__main__.py``) runs the CLI."""

import sys

from churnmodel.cli import main

sys.exit(main())
