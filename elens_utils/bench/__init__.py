"""The benchmark: the lens against the hardware limit, on the zoo, the real models and the bf16 forward pass.

The former module ``elens_utils.bench`` is now :mod:`elens_utils.bench.suite`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.bench import suite as _former
from elens_utils.bench.suite import *  # noqa: F403 (its __all__)


def __getattr__(name: str):
    """Any other name of the former module ``elens_utils.bench``, from :mod:`elens_utils.bench.suite`."""
    try:
        return getattr(_former, name)
    except AttributeError:
        raise AttributeError(f"module 'elens_utils.bench' has no attribute {name!r}") from None
