"""Training tooling of the embedded model zoo, and the model cards (zoo and real models).

The former module ``elens_utils.zoo`` is now :mod:`elens_utils.zoo.training`: its public
names are imported here, and any other name is looked up there, so code that used the old
module's public names keeps working; most of its private helpers were renamed when it was
split (:mod:`elens_utils.zoo.training` says which kept their names).
"""

from elens_utils.core.compat import forward_names
from elens_utils.zoo import training as _former
from elens_utils.zoo.training import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
