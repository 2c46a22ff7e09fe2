"""Entropy profiles: streaming Shannon and Rényi entropies of the lens (CPU, bf16, Triton), precision choice, the Profiles container.

The names of the former module ``elens_utils.entropy`` are re-exported from
:mod:`elens_utils.entropy.streaming`, so code written against it keeps working.
"""

from elens_utils.entropy.streaming import (  # noqa: F401
    ENTROPY_RANGE_TOL,
    entropy_outside_range,
    BF16_EXACT_TOP,
    normalize_alphas,
    power_alphas,
    logit_stats,
    merge_stats,
    finalize_stats,
    lens_entropy,
    dense_entropy,
)
