"""Data-parallel sweeps: the deal of shards, prompt files, and torchrun runs on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from elens_utils import ElensError, Profiles
from elens_utils.cli import main
from elens_utils.sweeps.dist_sweep import FAULT_ENV, assign_shards, read_prompt_file, sweep_file_name

PROMPTS = [
    "one day , tom found a white boat .",
    "tom ran to the river",
    "the cat sat",
    "a big dog ran to the house and the",
    "the sun",
    "mia saw a red bird . the bird",
    "the old man",
    "the fish swam to the",
    "red",
]
MODELS = ["tiny/llama-2L", "tiny/gpt2-2L"]


def test_assign_shards_balances_longest_first():
    # By hand: 5 -> r0, 4 -> r1, 3 -> r1 (4 < 5), 2 -> r0 (5 < 7), 1 -> r0 (7 = 7: lower rank).
    assert assign_shards([5, 1, 4, 2, 3], 2) == [[0, 1, 3], [2, 4]]
    assert assign_shards([1, 1, 1], 1) == [[0, 1, 2]]
    assert assign_shards([2, 2], 3) == [[0], [1], []]
    assert assign_shards([], 2) == [[], []]
    with pytest.raises(ElensError):
        assign_shards([1], 0)


def test_read_prompt_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\nsecond one\n")
    assert read_prompt_file(txt) == (["first prompt", "second one"], None)
    js = tmp_path / "p.json"
    js.write_text(json.dumps(["a b", [1, 2, 3], {"prompt": "c", "label": "x"}]))
    assert read_prompt_file(js) == (["a b", [1, 2, 3], "c"], [None, None, "x"])
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "a", "label": 1}\n"b"\n')
    assert read_prompt_file(jl) == (["a", "b"], ["1", None])
    for name, text, match in [
        ("bad.json", "[1, 2", "not valid JSON"),
        ("empty.json", "[]", "non-empty list"),
        ("obj.json", '[{"text": "a"}]', "needs a 'prompt' field"),
        ("num.json", "[3.5]", "a string or a list of token ids"),
        ("p.csv", "a", "use a .txt, .json or .jsonl"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ElensError, match=match):
            read_prompt_file(tmp_path / name)
    with pytest.raises(ElensError, match="No prompt file"):
        read_prompt_file(tmp_path / "absent.txt")


def test_sweep_file_names(tmp_path):
    assert sweep_file_name("tiny/llama-2L") == "tiny--llama-2L.parquet"
    assert sweep_file_name("Qwen/Qwen3-0.6B") == "Qwen--Qwen3-0.6B.parquet"
    assert sweep_file_name(str(tmp_path / "my model")) == "my-model.parquet"


def _args(out, cache, *extra):
    return ["sweep", *MODELS, "--prompts", str(cache.parent / "prompts.txt"), "--max-new-tokens", "5", "--seed", "3",
            "--out", str(out), "--cache", str(cache), "--shard-size", "2", "--no-progress", *extra]  # fmt: skip


@pytest.fixture
def prompt_file(tmp_path):
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    return tmp_path / "prompts.txt"


def _torchrun(tmp_path, out, cache, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ELENS_SMALL_MODEL_THREADS")}
    env = {**env, "ELENS_CACHE": str(tmp_path / "elens"), **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "elens_utils", *_args(out, cache)]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _assert_equal_runs(a_dir, b_dir):
    for m in MODELS:
        a = Profiles.from_parquet(a_dir / sweep_file_name(m))
        b = Profiles.from_parquet(b_dir / sweep_file_name(m))
        np.testing.assert_array_equal(a.entropy, b.entropy)  # the same threads: bit for bit
        pd.testing.assert_frame_equal(a.meta, b.meta)
        assert a.meta["prompt"].tolist() == PROMPTS  # prompt order


def test_one_process_sweep_equals_the_cache(tmp_path, prompt_file, monkeypatch):
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path / "elens"))
    assert main(_args(tmp_path / "one", tmp_path / "cache")) == 0
    from elens_utils import ProfileCache

    direct = ProfileCache(tmp_path / "other", shard_size=2).profiles(
        MODELS[0], PROMPTS, max_new_tokens=5, seed=3, progress=False, precision="fp32"
    )
    got = Profiles.from_parquet(tmp_path / "one" / sweep_file_name(MODELS[0]))
    np.testing.assert_array_equal(got.entropy, direct.entropy)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_and_resume_after_a_killed_rank(tmp_path, prompt_file, monkeypatch):
    # The one-process run as a user starts it: every thread torch has (the sweep puts the tiny
    # models on one, as torchrun's workers are), no OMP_NUM_THREADS.
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path / "elens"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ELENS_SMALL_MODEL_THREADS", raising=False)
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(_args(tmp_path / "one", tmp_path / "cache-one")) == 0
    finally:
        torch.set_num_threads(threads)

    done = _torchrun(tmp_path, tmp_path / "two", tmp_path / "cache-two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(2 processes)" in done.stdout
    _assert_equal_runs(tmp_path / "one", tmp_path / "two")
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "cache-two").glob("*/manifest.json")]
    assert len(manifests) == 2
    for m in manifests:  # the ranks' compute time and devices reach the manifest
        assert m["complete"] and m["devices"] == ["cpu"] and m["compute_seconds"] > 0

    # Rank 1 dies (SIGKILL) after its first shard: the run fails, the finished shards stay,
    # and the same command again completes from them.
    cache = tmp_path / "cache-killed"
    killed = _torchrun(tmp_path, tmp_path / "killed", cache, {FAULT_ENV: "1:1"})
    assert killed.returncode != 0
    shards = {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.glob("*/prompts-*.parquet")}
    assert 0 < len(shards) < 2 * 5  # the shard written before the kill, not all 2 x 5
    assert not (tmp_path / "killed" / sweep_file_name(MODELS[0])).exists()
    again = _torchrun(tmp_path, tmp_path / "killed", cache)
    assert again.returncode == 0, again.stderr[-3000:]
    kept = {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.glob("*/prompts-*.parquet")}
    assert all(kept[name] == t for name, t in shards.items())  # not computed again
    _assert_equal_runs(tmp_path / "one", tmp_path / "killed")


def test_sweep_cli_bad_input(tmp_path, prompt_file, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(_args(tmp_path / "afile", tmp_path / "cache")) == 2
    assert "is a file: give a directory" in capsys.readouterr().err
    args = _args(tmp_path / "out", tmp_path / "cache")
    args[args.index("--prompts") + 1] = str(tmp_path / "absent.txt")
    assert main(args) == 2
    assert "No prompt file" in capsys.readouterr().err
    assert main([*_args(tmp_path / "out", tmp_path / "cache"), "--top-k", "3"]) == 2
    assert "only apply when sampling" in capsys.readouterr().err


@pytest.mark.slow
def test_profile_models_on_two_processes_equals_one(tmp_path, monkeypatch):
    # A parameter set's `processes` reaches profile_models as ELENS_PROFILE_PROCESSES: the
    # missing profiles are computed by torchrun workers into the cache, then read as a hit.
    import torch

    from elens_utils import ProfileCache, profile_models
    from elens_utils.sweeps.dist_sweep import PROCESSES_ENV

    monkeypatch.setenv("ELENS_CACHE", str(tmp_path / "elens"))
    settings = dict(max_new_tokens=4, do_sample=True, temperature=1.0, seed=2, alphas=(1.0, 2.0), progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = profile_models(MODELS, PROMPTS, cache=ProfileCache(tmp_path / "one", shard_size=2), **settings)
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv(PROCESSES_ENV, "2")
    split_cache = ProfileCache(tmp_path / "two", shard_size=64)
    split = profile_models(MODELS, PROMPTS, cache=split_cache, shard_size=2, **settings)  # the entries' own size
    for a, b in zip(alone, split):
        np.testing.assert_array_equal(a.entropy, b.entropy)
        pd.testing.assert_frame_equal(a.meta, b.meta)
    assert split_cache.entries()["complete"].all()
    monkeypatch.setenv(PROCESSES_ENV, "two")
    with pytest.raises(ElensError, match="integer >= 1"):
        profile_models(MODELS, PROMPTS, cache=split_cache, **settings)


def test_parameter_set_processes(tmp_path):
    from elens_utils.book.chapters import load_param_set

    good = tmp_path / "good.yml"
    good.write_text("processes: 2\ndefaults: {}\n")
    assert load_param_set(str(good))["processes"] == 2
    bad = tmp_path / "bad.yml"
    bad.write_text("processes: 0\n")
    with pytest.raises(ElensError, match="'processes' must be an integer >= 1"):
        load_param_set(str(bad))


def test_run_processes_spec_and_failures(tmp_path, monkeypatch):
    # shard_size travels once (as the spec's own field), settings must be plain data, and a
    # failed worker's own error line reaches the message.
    import subprocess as sp

    from elens_utils.sweeps import dist_sweep

    seen = {}

    def fake_run(cmd, **_kw):
        spec = json.loads(open(cmd[-1]).read())
        seen.update(spec)
        return sp.CompletedProcess(cmd, 1, stdout="", stderr="[rank1]: error: the model is gone\nbanner\nmore banner")

    monkeypatch.setattr(sp, "run", fake_run)
    with pytest.raises(ElensError, match="error: the model is gone"):
        dist_sweep.run_processes("m", ["a", [1, 2]], None, cache=tmp_path, shard_size=64, processes=2,
                                 settings={"shard_size": 8, "seed": 1, "progress": False})  # fmt: skip
    assert seen["shard_size"] == 8 and "shard_size" not in seen["settings"] and "progress" not in seen["settings"]
    assert seen["prompts"] == ["a", [1, 2]]
    with pytest.raises(ElensError, match="not plain data"):
        dist_sweep.run_processes("m", ["a"], None, cache=tmp_path, shard_size=8, processes=2, settings={"x": object()})
