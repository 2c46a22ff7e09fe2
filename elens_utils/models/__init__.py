"""Model names to directories: the registry, the tiny and zoo architectures, GGUF conversion, the real models.

The names of the former module ``elens_utils.models`` are re-exported from
:mod:`elens_utils.models.registry`, so code written against it keeps working.
"""

from elens_utils.models.registry import (  # noqa: F401
    cache_dir,
    check_model_name,
    resolve_model,
    zoo_dir,
)
