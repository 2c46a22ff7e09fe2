"""Training tooling of the embedded model zoo, and the model cards (zoo and real models).

The former module ``elens_utils.zoo`` is now :mod:`elens_utils.zoo.training`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.zoo import training as _former
from elens_utils.zoo.training import *  # noqa: F403 (its __all__)


def __getattr__(name: str):
    """Any other name of the former module ``elens_utils.zoo``, from :mod:`elens_utils.zoo.training`."""
    try:
        return getattr(_former, name)
    except AttributeError:
        raise AttributeError(f"module 'elens_utils.zoo' has no attribute {name!r}") from None
