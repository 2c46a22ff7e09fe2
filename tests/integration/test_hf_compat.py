"""The KV-cache argument across transformers releases: the right name, and no deprecation warning."""

import inspect
import warnings

import pytest

from elens_utils import generate_profiles
from elens_utils.bench.suite import plain_generation
from elens_utils.core.hf_compat import cache_kwargs, returned_cache
from elens_utils.models.tiny import ARCHS


class _OldForward:
    def forward(self, input_ids=None, past_key_values=None, use_cache=None):  # transformers < 5.24
        pass


class _NewForward:
    def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs):  # transformers >= 5.24
        pass


def test_cache_argument_follows_the_forward_signature():
    marker = object()
    assert cache_kwargs(_OldForward(), marker) == {"past_key_values": marker}
    assert cache_kwargs(_NewForward(), marker) == {"cache": marker}


def test_returned_cache_reads_either_field():
    marker = object()
    assert returned_cache({"logits": 0, "cache": marker}) is marker
    assert returned_cache({"logits": 0, "past_key_values": marker}) is marker
    assert returned_cache({"logits": 0}) is None


@pytest.mark.parametrize("arch", ARCHS)
def test_installed_models_take_the_chosen_name(lens_model, arch):
    model = lens_model(arch).model
    (name,) = cache_kwargs(model, None)
    assert name in inspect.signature(type(model).forward).parameters


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_generation_loops_raise_no_cache_deprecation(lens_model, arch):
    lm = lens_model(arch)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*(past_key_values|cache_params).*deprecated", category=FutureWarning)
        warnings.filterwarnings("error", message=".*(past_key_values|cache_params).*deprecated")
        prof = generate_profiles(lm, [[1, 2, 3], [4, 5]], max_new_tokens=4, progress=False)
        ids = plain_generation(lm, [[1, 2, 3], [4, 5]], 4)
    assert prof.entropy.shape[:2] == (2, 4)
    assert (ids == [row for row in prof.meta["generated_ids"]]).all()
