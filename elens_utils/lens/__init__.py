"""The logit lens on a model: locating final norm and unembedding, loading with the parity check, capture, KV-cached generation.

The names of the former module ``elens_utils.lens`` are re-exported from
:mod:`elens_utils.lens.capture`, so code written against it keeps working.
"""

from elens_utils.lens.capture import (  # noqa: F401
    BlockCapture,
    PromptLens,
    prompt_lens,
)
