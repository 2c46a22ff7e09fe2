"""comparison on tiny models: the unembedding rows that set log V."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_profiles

from elens_utils.analysis.comparison import blank_prompt_comparison


def test_vocab_sizes_from_config(tiny_model_dirs):
    from elens_utils import load_model
    from elens_utils.analysis.comparison import unembedding_rows

    for arch in ("qwen3", "gpt2"):  # qwen3's unembedding has more rows than its tokenizer
        assert unembedding_rows(str(tiny_model_dirs[arch])) == load_model(tiny_model_dirs[arch]).parts.vocab_size
    name = str(tiny_model_dirs["qwen3"])
    table = blank_prompt_comparison([make_profiles(np.ones((1, 2, 3, 1)), name)])
    assert table["log V"].iloc[0] == pytest.approx(math.log(unembedding_rows(name)))
