"""``python -m harness.cli``: the same as the ``convbench`` script."""

import sys

from harness.cli import main

sys.exit(main())
