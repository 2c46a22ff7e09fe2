"""``python -m elens_utils.zoo``: see :func:`elens_utils.zoo.training.main`."""

import sys

from elens_utils.zoo.training import main

sys.exit(main())
