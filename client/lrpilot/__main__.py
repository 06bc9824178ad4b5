"""``python -m lrpilot`` is the ``lrpilot`` command."""

import sys

from lrpilot.cli import main

sys.exit(main())
