"""Entropy profiles: streaming Shannon and Rényi entropies of the lens (CPU, bf16, Triton), precision choice, the Profiles container.

The former module ``elens_utils.entropy`` is now :mod:`elens_utils.entropy.streaming`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.core.compat import forward_names
from elens_utils.entropy import streaming as _former
from elens_utils.entropy.streaming import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
