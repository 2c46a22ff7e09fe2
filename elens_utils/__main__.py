"""``python -m elens_utils``: see :mod:`elens_utils.cli`."""

import sys

from elens_utils.cli import main

sys.exit(main())
