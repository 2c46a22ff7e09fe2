"""ProfileCache: hits never load the model, every key field misses, interrupted runs resume."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elens_utils import load_model
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.generation import generate_profiles
from elens_utils.models.tiny import build_tiny_model
from elens_utils.sweeps import cache as cache_mod
from elens_utils.sweeps.cache import ProfileCache, model_fingerprint

PROMPTS = [
    "the cat sat on the",
    "a dog",
    "once upon a time there was",
    "the bird",
    "the river ran to the sea and the",
    "hello",
    "the tree",
    "she went to the market and",
    "the",
    "one day the dog ran",
]
LABELS = ["a", "b"] * 5
SETTINGS = dict(max_new_tokens=3, do_sample=True, temperature=1.0, seed=5, alphas=(1.0, 2.0), batch_size=3, progress=False)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny llama and gpt2 directories of this module (two, not all ten: faster)."""
    root = tmp_path_factory.mktemp("cache_models")
    return {arch: build_tiny_model(arch, root / arch) for arch in ("llama", "gpt2")}


@pytest.fixture(scope="module")
def llama_dir(model_dirs) -> Path:
    return model_dirs["llama"]


@pytest.fixture(scope="module")
def llama(llama_dir):
    return load_model(llama_dir, dtype="float32")


class Counter:
    """Wraps generate_profiles: records each shard computed (its index_offset and size)."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[tuple[int, int]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, lm, prompts, **kw):
        self.calls.append((kw.get("index_offset", 0), len(prompts)))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("simulated interruption")
        return generate_profiles(lm, prompts, **kw)


@pytest.fixture
def counter(monkeypatch):
    c = Counter()
    monkeypatch.setattr(cache_mod, "generate_profiles", c)
    return c


def assert_same(a: Profiles, b: Profiles) -> None:
    assert a.alphas == b.alphas
    np.testing.assert_array_equal(a.entropy, b.entropy)  # bit-exact
    pd.testing.assert_frame_equal(a.meta, b.meta)


def test_miss_then_hit_without_loading(tmp_path, llama_dir, counter, monkeypatch):
    cache = ProfileCache(tmp_path, shard_size=4)
    first = cache.profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    assert counter.calls == [(0, 4), (4, 4), (8, 2)]
    assert first.n == len(PROMPTS) and list(first.meta["label"]) == LABELS
    assert list(first.meta["prompt"]) == PROMPTS

    def no_loading(*a, **k):
        raise AssertionError("a cache hit loaded the model")

    monkeypatch.setattr(cache_mod, "load_model", no_loading)
    again = cache.profiles(os.fspath(llama_dir), PROMPTS, LABELS, **SETTINGS)
    assert len(counter.calls) == 3  # nothing computed
    assert_same(first, again)
    # batch_size and progress are not part of the key; neither is a new default shard size.
    assert_same(first, ProfileCache(tmp_path, shard_size=7).profiles(llama_dir, PROMPTS, LABELS, **{**SETTINGS, "batch_size": 1}))
    assert len(counter.calls) == 3


def test_hit_for_a_model_that_cannot_be_loaded(tmp_path, llama):
    """An entry made under a Hub-style name is served offline although loading it would fail."""
    name = "no-such-org/no-such-model-elens"
    lm = dataclasses.replace(llama, name=name)
    cache = ProfileCache(tmp_path, shard_size=4)
    made = cache.profiles(lm, PROMPTS[:5], **SETTINGS)
    assert set(made.meta["model"]) == {name}
    hit = cache.profiles(name, PROMPTS[:5], **SETTINGS)  # by name: loading would need the Hub
    assert_same(made, hit)
    with pytest.raises(ElensError, match="no-such-model-elens"):  # a miss must load: fails offline
        cache.profiles(name, PROMPTS[:5], **{**SETTINGS, "seed": 6})


def _rewrite_one_weight(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 0.5
    save_file(tensors, path, metadata={"format": "pt"})


def test_every_key_field_misses(tmp_path, llama_dir, counter):
    cache = ProfileCache(tmp_path / "cache", shard_size=8)
    prompts, labels = PROMPTS[:2], LABELS[:2]
    base = {**SETTINGS, "max_new_tokens": 2}
    cache.profiles(llama_dir, prompts, labels, **base)
    assert len(counter.calls) == 1
    cache.profiles(llama_dir, prompts, labels, **base)
    assert len(counter.calls) == 1  # the same call hits

    changed_dir = tmp_path / "llama-retrained"
    shutil.copytree(llama_dir, changed_dir)
    copied = cache.profiles(changed_dir, prompts, labels, **base)  # a copy is another name
    assert len(counter.calls) == 2 and set(copied.meta["model"]) == {os.fspath(changed_dir)}
    _rewrite_one_weight(changed_dir)
    variations = [
        ("weights", dict(model=changed_dir)),
        ("prompt text", dict(prompts=[prompts[0] + " ", *prompts[1:]])),
        ("prompt order", dict(prompts=prompts[::-1], labels=labels[::-1])),
        ("prompt as ids", dict(prompts=[[1, 5, 7], *prompts[1:]])),
        ("labels", dict(labels=["z", *labels[1:]])),
        ("no labels", dict(labels=None)),
        ("max_new_tokens", dict(max_new_tokens=3)),
        ("do_sample", dict(do_sample=False)),
        ("temperature", dict(temperature=0.7)),
        ("top_k", dict(top_k=5)),
        ("top_p", dict(top_p=0.9)),
        ("seed", dict(seed=6)),
        ("alphas", dict(alphas=(1.0,))),
        ("alpha order", dict(alphas=(2.0, 1.0))),
        ("dtype", dict(dtype="float64")),
        ("tag", dict(tag="something else")),
        ("support_threshold", dict(support_threshold=1e-20)),
        ("library version", dict(version="9.9.9")),
    ]
    for what, change in variations:
        kw = {**base, **{k: v for k, v in change.items() if k not in ("model", "prompts", "labels", "version")}}
        before = len(counter.calls)
        if "version" in change:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(cache_mod, "_library_version", lambda: change["version"])
                cache.profiles(llama_dir, prompts, labels, **kw)
        else:
            cache.profiles(
                change.get("model", llama_dir), change.get("prompts", prompts), change.get("labels", labels), **kw
            )
        assert len(counter.calls) == before + 1, f"changing {what} did not miss"
    # ... and each of them is now a hit.
    assert len(cache.entries()) == 2 + len(variations)
    cache.profiles(changed_dir, prompts, labels, **base)
    assert len(counter.calls) == 2 + len(variations)


def test_interrupted_run_resumes_and_equals_one_shot(tmp_path, llama_dir, monkeypatch):
    cache = ProfileCache(tmp_path / "resumed", shard_size=4)
    failing = Counter(fail_on_call=2)  # shard 1 is written, shard 2 fails
    monkeypatch.setattr(cache_mod, "generate_profiles", failing)
    with pytest.raises(RuntimeError, match="simulated interruption"):
        cache.profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    (entry,) = [p for p in (tmp_path / "resumed").iterdir() if p.is_dir()]
    assert sorted(p.name for p in entry.glob("*.parquet")) == ["prompts-000000-000004.parquet"]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["n_shards"] == 3
    row = cache.entries().iloc[0]
    assert (row.shards_done, row.n_shards, bool(row.complete)) == (1, 3, False)

    resuming = Counter()
    monkeypatch.setattr(cache_mod, "generate_profiles", resuming)
    resumed = cache.profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    assert resuming.calls == [(4, 4), (8, 2)]  # only the missing shards, at their global offsets
    assert json.loads((entry / "manifest.json").read_text())["complete"] is True

    one_shot = ProfileCache(tmp_path / "one-shot", shard_size=4).profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    assert_same(resumed, one_shot)
    # Sampling streams follow the global prompt index: the same tokens as one call over all.
    direct = generate_profiles(load_model(llama_dir), PROMPTS, labels=LABELS, **SETTINGS)
    assert list(resumed.meta["generated_ids"]) == list(direct.meta["generated_ids"])
    assert list(resumed.meta["seed"]) == list(direct.meta["seed"])
    np.testing.assert_allclose(resumed.entropy, direct.entropy, atol=1e-5, rtol=0)


def test_sharded_equals_single_call_bitwise_with_batch_size_one(tmp_path, llama):
    kw = {**SETTINGS, "batch_size": 1}
    prompts, labels = PROMPTS[:5], LABELS[:5]
    sharded = ProfileCache(tmp_path, shard_size=2).profiles(llama, prompts, labels, **kw)
    direct = generate_profiles(llama, prompts, labels=labels, **kw)
    np.testing.assert_array_equal(sharded.entropy, direct.entropy)
    for column in ("prompt", "label", "text", "generated_ids", "seed", "settings"):
        assert list(sharded.meta[column]) == list(direct.meta[column]), column


def test_stray_temp_files_and_damaged_shards(tmp_path, llama_dir, counter):
    cache = ProfileCache(tmp_path, shard_size=4)
    first = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    assert len(counter.calls) == 3
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # The leftover of a killed atomic write, and other junk, are ignored.
    (entry / ".prompts-000004-000008.parquet.x1y2.tmp").write_bytes(b"half a parquet file")
    (entry / "prompts-000099-000100.parquet").write_bytes(b"not an expected shard")
    assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert len(counter.calls) == 3
    # A truncated shard is computed again (with a warning), and only that one.
    shard = entry / "prompts-000004-000008.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cannot be read"):
        repaired = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    assert counter.calls[3:] == [(4, 4)]
    assert_same(first, repaired)
    # A shard holding other rows (here: another shard's) is computed again too.
    shutil.copyfile(entry / "prompts-000008-000010.parquet", entry / "prompts-000000-000004.parquet")
    with pytest.warns(UserWarning, match="prompts 8-10 of its entry, not 0-4"):
        assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert counter.calls[4:] == [(0, 4)]
    # A lost or corrupted manifest is rewritten; the shards are kept.
    (entry / "manifest.json").write_text("{not json")
    assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert len(counter.calls) == 5
    assert json.loads((entry / "manifest.json").read_text())["complete"] is True


def _entry_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_corrupted_shard_is_never_used(tmp_path, llama_dir, counter):
    """Bytes flipped in a shard, or its values rewritten in a readable file: found, recomputed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache = ProfileCache(tmp_path, shard_size=4)
    first = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    (entry,) = _entry_dirs(tmp_path)
    shard = entry / "prompts-000004-000008.parquet"
    # 40 bytes flipped in the middle of the entropy column's pages
    col = pq.ParquetFile(shard).metadata.row_group(0).column(pq.read_schema(shard).names.index("entropy"))
    start = col.dictionary_page_offset or col.data_page_offset
    mid = start + col.total_compressed_size // 2 - 20
    data = bytearray(shard.read_bytes())
    data[mid : mid + 40] = bytes(b ^ 0xFF for b in data[mid : mid + 40])
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="computing it again"):
        assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert counter.calls[3:] == [(4, 4)]
    # A file that reads well but whose values changed (its stamp kept): the checksum catches it.
    table = pq.read_table(shard)
    col = table.column("entropy").combine_chunks()
    scaled = pa.FixedSizeListArray.from_arrays(pa.array(col.flatten().to_numpy() * 1e20, pa.float32()), col.type.list_size)
    bad = table.set_column(table.column_names.index("entropy"), table.schema.field("entropy"), scaled)
    pq.write_table(bad.replace_schema_metadata(table.schema.metadata), shard)
    with pytest.warns(UserWarning, match="do not match its checksum"):
        again = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    assert_same(first, again)
    assert float(again.entropy.max()) < 10 and counter.calls[4:] == [(4, 4)]


def test_foreign_and_unstamped_shards_are_never_used(tmp_path, llama_dir, counter):
    """A shard proves it belongs to its entry and range before it is read."""
    cache = ProfileCache(tmp_path, shard_size=4)
    mine = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    other = cache.profiles(llama_dir, PROMPTS, **{**SETTINGS, "seed": 6})  # same shapes, other rows
    assert not np.array_equal(mine.entropy, other.entropy)
    entry = next(p for p in _entry_dirs(tmp_path) if json.loads((p / "manifest.json").read_text())["settings"]["seed"] == 5)
    foreign = next(p for p in _entry_dirs(tmp_path) if p != entry)
    shutil.copyfile(foreign / "prompts-000000-000004.parquet", entry / "prompts-000000-000004.parquet")
    n = len(counter.calls)
    with pytest.warns(UserWarning, match="another cache entry"):
        assert_same(mine, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert counter.calls[n:] == [(0, 4)]
    # A profiles file written by hand (no stamp) in a shard's place is not trusted either.
    rows = Profiles(mine.entropy[4:8], mine.alphas, mine.meta.iloc[4:8].reset_index(drop=True))
    rows.to_parquet(entry / "prompts-000004-000008.parquet")
    with pytest.warns(UserWarning, match="no valid stamp"):
        assert_same(mine, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
    assert counter.calls[n + 1 :] == [(4, 4)]


def test_shard_sha256_ignores_chunking_and_sees_every_value(tmp_path, llama):
    import pyarrow as pa

    prof = generate_profiles(llama, PROMPTS[:4], max_new_tokens=2, alphas=(1.0,))
    table = prof.to_arrow()
    digest = cache_mod.shard_sha256(table)
    assert digest == cache_mod.shard_sha256(pa.concat_tables([table.slice(0, 1), table.slice(1)]))
    assert digest == cache_mod.shard_sha256(Profiles.from_parquet(prof.to_parquet(tmp_path / "p.parquet")).to_arrow())
    flat = table.column("entropy").combine_chunks().flatten().to_numpy().copy()
    flat[5] = np.nextafter(flat[5], np.float32(np.inf))  # one float one ulp off
    col = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), table.column("entropy").type.list_size)
    assert cache_mod.shard_sha256(table.set_column(table.column_names.index("entropy"), "entropy", col)) != digest
    meta = prof.meta.copy()
    meta.loc[0, "prompt"] = "another prompt"
    assert cache_mod.shard_sha256(Profiles(prof.entropy, prof.alphas, meta).to_arrow()) != digest


def test_manifest_is_readable(tmp_path, llama_dir, counter):
    cache = ProfileCache(tmp_path, shard_size=4)
    cache.profiles(llama_dir, PROMPTS, LABELS, tag="demo", **SETTINGS)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    m = json.loads((entry / "manifest.json").read_text())
    assert m["model"] == os.fspath(llama_dir) and m["dtype"] == "float32" and m["tag"] == "demo"
    assert m["settings"] == {"max_new_tokens": 3, "do_sample": True, "temperature": 1.0, "top_k": None, "top_p": None, "seed": 5}
    assert m["alphas"] == ["1.0", "2.0"] and m["n_prompts"] == 10 and m["shard_size"] == 4
    assert set(m["weights"]["files"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert "tiny_model.json" not in m["weights"]["files"] and m["complete"] is True
    assert entry.name.startswith("llama-") and m["key"].startswith(entry.name.split("-")[-1])


def test_entries_and_clear(tmp_path, model_dirs, llama_dir, counter):
    cache = ProfileCache(tmp_path / "c", shard_size=4)
    assert cache.entries().empty and cache.clear() == 0
    gpt2 = model_dirs["gpt2"]
    cache.profiles(llama_dir, PROMPTS[:6], **SETTINGS)
    cache.profiles(gpt2, PROMPTS[:6], **SETTINGS)
    cache.profiles(gpt2, PROMPTS[:6], **{**SETTINGS, "seed": 1})
    e = cache.entries()
    assert sorted(e["model"].value_counts().items()) == sorted({os.fspath(llama_dir): 1, os.fspath(gpt2): 2}.items())
    assert e["complete"].all() and (e["shards_done"] == 2).all() and (e["n_prompts"] == 6).all()
    assert set(e["seed"]) == {5, 1} and (e["bytes"] > 0).all()
    assert cache.clear(model=gpt2) == 2
    assert list(cache.entries()["model"]) == [os.fspath(llama_dir)]
    (tmp_path / "c" / "llama-0123456789abcdef0123").mkdir()  # an entry whose manifest was lost
    (tmp_path / "c" / "photos").mkdir()  # not an entry: never deleted
    with pytest.warns(UserWarning, match="photos is not a profile cache entry"):
        assert cache.clear() == 2 and cache.entries().empty
    assert (tmp_path / "c" / "photos").is_dir()


def test_damaged_manifest_fields_are_rewritten_and_listing_survives(tmp_path, llama_dir, counter):
    cache = ProfileCache(tmp_path, shard_size=4)
    first = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    (entry,) = _entry_dirs(tmp_path)
    for bad in (0, "abc", None):
        m = json.loads((entry / "manifest.json").read_text())
        m["shard_size"] = bad
        (entry / "manifest.json").write_text(json.dumps(m))
        with pytest.warns(UserWarning, match="damaged manifest"):
            cache.entries()
        with pytest.warns(UserWarning, match=r"damaged manifest \(shard_size"):
            assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))
        assert json.loads((entry / "manifest.json").read_text())["shard_size"] == 4
    assert len(counter.calls) == 3  # the shards proved themselves: nothing recomputed


def test_schema_metadata_is_under_the_checksum(tmp_path, llama_dir, counter):
    import pyarrow.parquet as pq

    cache = ProfileCache(tmp_path, shard_size=4)
    first = cache.profiles(llama_dir, PROMPTS, **SETTINGS)
    (entry,) = _entry_dirs(tmp_path)
    shard = entry / "prompts-000000-000004.parquet"
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    meta[b"pandas"] = meta[b"pandas"].replace(b'"eos', b'"fos', 1) if b'"eos' in meta[b"pandas"] else meta[b"pandas"] + b" "
    pq.write_table(table.replace_schema_metadata(meta), shard)
    with pytest.warns(UserWarning, match="do not match its checksum"):
        assert_same(first, cache.profiles(llama_dir, PROMPTS, **SETTINGS))


def test_model_with_hooks_needs_a_tag(tmp_path, llama, counter):
    cache = ProfileCache(tmp_path, shard_size=4)
    plain = cache.profiles(llama, PROMPTS[:4], **SETTINGS)
    handle = llama.parts.blocks[0].register_forward_hook(lambda module, inputs, output: output * 0)
    try:
        with pytest.raises(ElensError, match="tag="):
            cache.profiles(llama, PROMPTS[:4], **SETTINGS)
        hooked = cache.profiles(llama, PROMPTS[:4], tag="block 1 zeroed", **SETTINGS)
    finally:
        handle.remove()
    assert len(counter.calls) == 2  # an entry of its own
    assert not np.array_equal(plain.entropy, hooked.entropy)


def test_bad_arguments(tmp_path, llama, llama_dir):
    cache = ProfileCache(tmp_path)
    with pytest.raises(ElensError, match="Unknown argument"):
        cache.profiles(llama_dir, PROMPTS, max_tokens=3)
    with pytest.raises(ElensError, match="already loaded"):
        cache.profiles(llama, PROMPTS, dtype="float64")
    with pytest.raises(ElensError, match="non-empty"):
        cache.profiles(llama_dir, [])
    with pytest.raises(ElensError, match="not a single string"):
        cache.profiles(llama_dir, "the cat")
    with pytest.raises(ElensError, match="labels"):
        cache.profiles(llama_dir, PROMPTS, ["a"])
    with pytest.raises(ElensError, match="shard_size"):
        ProfileCache(tmp_path, shard_size=0)
    with pytest.raises(ElensError, match="max_new_tokens"):
        cache.profiles(llama_dir, PROMPTS, max_new_tokens=0)
    with pytest.raises(ElensError, match="config.json"):
        cache.profiles(tmp_path, PROMPTS)  # a directory that is not a model
    assert not any(p.is_dir() for p in tmp_path.iterdir())  # nothing was written


def test_fingerprint_of_large_files_samples_content(tmp_path):
    """Files over 8 MiB: a sampled hash. Content changes in sampled blocks and header changes
    miss; copies and modification times do not count; small files are hashed whole."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    header = json.dumps({"w": {"dtype": "F32", "shape": [9 << 18], "data_offsets": [0, 9 << 20]}}).encode()
    rng = np.random.default_rng(0)
    payload = bytearray(len(header).to_bytes(8, "little") + header + rng.bytes(9 << 20))
    (model / "model.safetensors").write_bytes(payload)
    (model / "README.md").write_text("notes")
    fp = model_fingerprint(model)
    assert fp["files"]["model.safetensors"]["hashed"] == "sampled"
    assert fp["files"]["config.json"]["hashed"] == "full" and "README.md" not in fp["files"]

    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    (copy / "README.md").write_text("other notes")
    past = time.time() - 10_000
    os.utime(copy / "model.safetensors", (past, past))
    assert model_fingerprint(copy) == fp

    size, block = len(payload), 64 << 10
    unsampled = bytearray(payload)
    unsampled[200_000] ^= 0xFF  # between the first block and the second: not seen (documented)
    (copy / "model.safetensors").write_bytes(unsampled)
    assert model_fingerprint(copy) == fp
    changed = bytearray(payload)
    changed[(size - block) * 15 // 31 + 11] ^= 0xFF  # inside the 16th sampled block
    (copy / "model.safetensors").write_bytes(changed)
    assert model_fingerprint(copy) != fp

    # A safetensors header longer than the first block is hashed whole.
    big_header = json.dumps({f"t{i:05d}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(2000)}).encode()
    assert 100_000 < len(big_header) < 250_000
    payload = bytearray(len(big_header).to_bytes(8, "little") + big_header + rng.bytes(9 << 20))
    (model / "model.safetensors").write_bytes(payload)
    fp = model_fingerprint(model)
    at = payload.index(b"t01900")  # past the first 64 KiB, before the second sampled block
    assert 64 << 10 < at < (len(payload) - block) // 31
    payload[at + 1 : at + 6] = b"x1900"
    (model / "model.safetensors").write_bytes(payload)
    assert model_fingerprint(model) != fp
    (copy / "model.safetensors").write_bytes(payload)
    (copy / "config.json").write_text('{"model_type": "llama", "x": 1}')
    assert model_fingerprint(copy) != fp
    assert model_fingerprint("gpt2") is None  # a Hub id: no local files


def test_compute_shards_then_profiles_assembles(tmp_path, llama_dir, counter):
    # A data-parallel rank computes its own shards only; the assembling call then computes
    # nothing and equals a one-process run.
    cache = ProfileCache(tmp_path / "split", shard_size=4)
    assert cache.shard_ranges(llama_dir, PROMPTS, LABELS, **SETTINGS) == [(0, 4), (4, 8), (8, 10)]
    seen = []
    assert cache.compute_shards(llama_dir, PROMPTS, LABELS, shards=[2, 0], after_shard=seen.append, **SETTINGS) == [0, 2]
    assert seen == [0, 2] and counter.calls == [(0, 4), (8, 2)]
    assert cache.entries()["shards_done"].tolist() == [2]
    assert cache.compute_shards(llama_dir, PROMPTS, LABELS, shards=[0, 1], **SETTINGS) == [1]  # 0 is on disk
    before = len(counter.calls)
    split = cache.profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    assert len(counter.calls) == before  # every shard was there
    whole = ProfileCache(tmp_path / "whole", shard_size=4).profiles(llama_dir, PROMPTS, LABELS, **SETTINGS)
    assert_same(split, whole)
    with pytest.raises(ElensError, match=r"Shards \[3\] do not exist"):
        cache.compute_shards(llama_dir, PROMPTS, LABELS, shards=[3], **SETTINGS)


def test_loader_hook_is_not_a_foreign_hook(tmp_path, llama):
    # load_model's own pre-hook (a contiguous unembedding input) changes no value: a loaded
    # model is cached without a tag; a hook of the user's still needs one.
    cache = ProfileCache(tmp_path, shard_size=4)
    cache.profiles(llama, PROMPTS[:2], **SETTINGS)
    handle = llama.parts.blocks[0].register_forward_hook(lambda *_: None)
    try:
        with pytest.raises(ElensError, match="forward hooks attached"):
            cache.profiles(llama, PROMPTS[:2], **SETTINGS)
    finally:
        handle.remove()
