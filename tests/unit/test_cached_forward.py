"""cached_forward: one KV-cached step, whichever name the model's forward gives its cache."""

from __future__ import annotations

from elens_utils.core.hf_compat import cached_forward


class _Recorder:
    """A stand-in causal LM that records its arguments and returns a new cache."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return {"logits": len(self.calls), self.field: f"cache {len(self.calls)}"}


class _OldModel(_Recorder):
    field = "past_key_values"

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None):
        pass


class _NewModel(_Recorder):
    field = "cache"

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, use_cache=None, **kwargs):
        pass


def test_cached_forward_passes_the_cache_by_its_name_and_returns_the_new_one():
    for model in (_OldModel(), _NewModel()):
        out, cache = cached_forward(model, "ids", "mask", "positions", None)
        assert out == {"logits": 1, model.field: "cache 1"} and cache == "cache 1"
        out, cache = cached_forward(model, "next", "mask2", "positions2", cache, logits_to_keep=1)
        assert cache == "cache 2"
        assert model.calls == [
            {"input_ids": "ids", "attention_mask": "mask", "position_ids": "positions", model.field: None,
             "use_cache": True},
            {"input_ids": "next", "attention_mask": "mask2", "position_ids": "positions2", model.field: "cache 1",
             "use_cache": True, "logits_to_keep": 1},
        ]  # fmt: skip
