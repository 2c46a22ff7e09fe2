"""ProfileCache's entry settings: its generation defaults are GenerationSettings', which are
generate_profiles' own, so a setting left out means the same in the cache and without it."""

from __future__ import annotations

import dataclasses
import inspect

from elens_utils.lens.generation import GenerationSettings, generate_profiles
from elens_utils.sweeps.cache import _entry_args


def test_entry_defaults_are_the_generation_defaults():
    args = _entry_args({})
    fields = dataclasses.fields(GenerationSettings)
    params = inspect.signature(generate_profiles).parameters
    for f in fields:
        assert args[f.name] == f.default == params[f.name].default, f.name
    assert args["alphas"] == params["alphas"].default
    assert args["lens_kwargs"] == {}


def test_entry_args_split_settings_from_lens_options():
    args = _entry_args({"max_new_tokens": 8, "seed": 3, "chunk_size": 64, "batch_size": 2, "progress": False})
    assert (args["max_new_tokens"], args["seed"], args["do_sample"]) == (8, 3, False)
    assert args["lens_kwargs"] == {"chunk_size": 64}  # batch_size and progress are not entry settings
    assert GenerationSettings(**{f.name: args[f.name] for f in dataclasses.fields(GenerationSettings)}) == GenerationSettings(
        max_new_tokens=8, seed=3
    )
