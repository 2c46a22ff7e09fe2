"""Datasets and prompts: the story world, the fact bank and its questions, Hub datasets, prompt rendering per model.

The former module ``elens_utils.data`` is now :mod:`elens_utils.data.prompts`: its public
names are imported here, and any other name of it is looked up there, so code written
against the old module keeps working.
"""

from elens_utils.core.compat import forward_names
from elens_utils.data import prompts as _former
from elens_utils.data.prompts import *  # noqa: F403 (its __all__)

__getattr__ = forward_names(__name__, _former)  # any other name of the former module
