"""The benchmark: the lens against the hardware limit, on the zoo, the real models and the bf16 forward pass.

The former module ``elens_utils.bench`` is now :mod:`elens_utils.bench.suite`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.core.compat import forward_names
from elens_utils.bench import suite as _former
from elens_utils.bench.suite import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
