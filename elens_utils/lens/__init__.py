"""The logit lens on a model: locating final norm and unembedding, loading with the parity check, capture, KV-cached generation.

The former module ``elens_utils.lens`` is now :mod:`elens_utils.lens.capture`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.core.compat import forward_names
from elens_utils.lens import capture as _former
from elens_utils.lens.capture import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
