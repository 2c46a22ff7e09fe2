"""``python -m elens_utils.bench``: see :func:`elens_utils.bench.suite.main`."""

import sys

from elens_utils.bench.suite import main

sys.exit(main())
