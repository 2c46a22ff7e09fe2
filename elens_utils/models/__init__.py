"""Model names to directories: the registry, the tiny and zoo architectures, GGUF conversion, the real models.

The former module ``elens_utils.models`` is now :mod:`elens_utils.models.registry`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.core.compat import forward_names
from elens_utils.models import registry as _former
from elens_utils.models.registry import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
