"""Entropy profiles: streaming Shannon and Rényi entropies of the lens (CPU, bf16, Triton), precision choice, the Profiles container.

The names of the former module ``elens_utils.entropy`` are re-exported from
:mod:`elens_utils.entropy.streaming`, so code written against it keeps working.
"""

from elens_utils.entropy.streaming import (  # noqa: F401
    BF16_EXACT_TOP,
    ENTROPY_RANGE_TOL,
    dense_entropy,
    entropy_outside_range,
    finalize_stats,
    lens_entropy,
    logit_stats,
    merge_stats,
    normalize_alphas,
    power_alphas,
)
