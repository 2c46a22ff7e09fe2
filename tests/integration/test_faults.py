"""Bad input and faults: each ends in one ``error: ...`` line (status 2) or is handled, and
nothing wrong is ever used.

Corrupted, foreign and unstamped cache shards are in ``test_cache.py``
(``test_corrupted_shard_is_never_used``, ``test_foreign_and_unstamped_shards_are_never_used``),
a rank killed by SIGKILL mid-sweep in ``test_dist_sweep.py``; this module holds the rest: damaged
model directories, chapter parameters checked before a kernel starts, devices, cache and output
paths, a full or read-only disk, a dead kernel, a closed pipe, hostile YAML, file modes and two
runs filling one cache entry at once.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import write_mini_book

from elens_utils import load_model
from elens_utils.book import chapter_files, chapters, parameters
from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError, run_command
from elens_utils.lens.generation import GenerationSettings
from elens_utils.lens.loading import resolve_device
from elens_utils.sweeps import cache as cache_mod
from elens_utils.sweeps.cache import ProfileCache

PROMPTS = ["the cat sat on the", "a dog", "the bird", "one day the dog ran", "the tree", "hello"]


def run_cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "elens_utils", *args], capture_output=True, text=True, env=full, timeout=300, **kw
    )


def assert_one_error_line(res: subprocess.CompletedProcess, match: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and match in errors[0], res.stderr[-2000:]


# ---- damaged model directories ------------------------------------------------------------


@pytest.fixture
def llama_copy(tiny_model_dirs, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_model_dirs["llama"], tmp_path / "llama"))


def test_invalid_config_json_is_named(llama_copy):
    (llama_copy / "config.json").write_text("{not json")
    with pytest.raises(ElensError, match=r"config\.json cannot be read: .*Repair the file"):
        load_model(llama_copy)


def test_missing_directory_is_not_sent_to_the_hub(tmp_path):
    for name in (str(tmp_path / "no" / "such"), "./no-such-model", "a/b/c"):
        with pytest.raises(ElensError, match=r"No directory '.*': check the path"):
            load_model(name)


def test_truncated_weights_are_named(llama_copy):
    weights = llama_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:3000])
    with pytest.raises(ElensError, match=r"weights in '.*' cannot be read \(SafetensorError.*truncated or damaged"):
        load_model(llama_copy)


def test_non_finite_weights_are_named_not_blamed_on_the_adapter(llama_copy):
    from safetensors.torch import load_file, save_file

    weights = llama_copy / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if "q_proj" in k)
    tensors[name][0, :3] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ElensError, match=rf"hold NaN or inf \(3 of \d+ values of '.*{name.split('.', 1)[1]}'\)"):
        load_model(llama_copy)


# ---- arguments that torch or numpy would reject deep inside --------------------------------


def test_negative_seed_and_unusable_devices():
    with pytest.raises(ElensError, match="seed must be an integer >= 0"):
        GenerationSettings(4, True, 1.0, None, None, -1)
    with pytest.raises(ElensError, match="Device 'meta' holds no data"):
        resolve_device("meta")
    with pytest.raises(ElensError, match=r"Device 'xla' cannot be used here \(.{1,170}\) Use 'auto'"):
        resolve_device("xla")


def test_cache_root_that_is_a_file(tmp_path, monkeypatch):
    from elens_utils.core.paths import cache_dir

    (tmp_path / "f").write_text("")
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path / "f"))
    with pytest.raises(ElensError, match=r"\(ELENS_CACHE\) is a file"):
        cache_dir()


def test_prompts_the_tokenizer_cannot_read(tiny_model_dirs, tmp_path):
    """A chapter's profiles (through the cache) refuse data the model's tokenizer reads as <unk>,
    before any work; the model's own words are fine."""
    cache = ProfileCache(tmp_path)
    with pytest.raises(ElensError, match=r"reads \d+% of these prompts' tokens as <unk>"):
        cache.profiles(tiny_model_dirs["llama"], ["Zorblax quibbled vehemently; xylophones!"] * 2, max_new_tokens=1)
    assert not list(tmp_path.rglob("prompts-*.parquet"))
    cache.profiles(tiny_model_dirs["llama"], PROMPTS[:2], max_new_tokens=1, progress=False)
    lm = load_model(tiny_model_dirs["llama"])
    lm.check_coverage(lm.encode(["the cat zorblax"]))  # one word in three unknown: allowed


def test_command_line_errors_are_one_line(tiny_model_dirs, tmp_path):
    d = str(tiny_model_dirs["llama"])
    assert_one_error_line(run_cli("profile", d, "--prompt", "the cat", "--temperature", "1", "--seed", "-1"), "seed must be")
    assert_one_error_line(run_cli("profile", d, "--prompt", "the cat", "--device", "meta"), "Device 'meta'")
    (tmp_path / "file").write_text("")
    res = run_cli("profile", "untrained/llama-2L", "--prompt", "hi", env={"ELENS_CACHE": str(tmp_path / "file")})
    assert_one_error_line(res, "is a file")


def test_output_closed_by_its_reader_is_not_an_error():
    """``elens ... | head -1``: the reader goes away while the command still writes (1 MB here,
    more than a pipe holds, so the writer meets the closed pipe for sure)."""
    script = (
        "import sys\nfrom elens_utils.core.errors import run_command\n"
        "def body():\n    for i in range(100000):\n        print('entropy row', i)\n    return 0\n"
        "sys.exit(run_command(body))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.ENOSPC, "Free some disk space"), (errno.EROFS, "read-only"), (errno.EACCES, "Choose a directory")],
)
def test_disk_faults_in_a_command_are_one_line(capsys, code, fix):
    def body():
        raise OSError(code, os.strerror(code), "/some/cache/prompts-000000-000064.parquet")

    assert run_command(body) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "prompts-000000-000064.parquet" in err and fix in err


# ---- the profile cache under a full disk and concurrent runs --------------------------------


def test_full_disk_keeps_finished_shards_and_resumes(tmp_path, tiny_model_dirs, monkeypatch):
    settings = dict(max_new_tokens=2, do_sample=True, seed=3, batch_size=2, progress=False)
    want = ProfileCache(tmp_path / "ref", shard_size=2).profiles(tiny_model_dirs["llama"], PROMPTS, **settings)
    real_write = cache_mod._write_shard
    calls = []

    def full_on_second(path, *a, **k):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, *a, **k)

    monkeypatch.setattr(cache_mod, "_write_shard", full_on_second)
    cache = ProfileCache(tmp_path / "c", shard_size=2)
    with pytest.raises(OSError, match="No space left"):
        cache.profiles(tiny_model_dirs["llama"], PROMPTS, **settings)
    (entry,) = [p for p in (tmp_path / "c").iterdir() if p.is_dir()]
    assert sorted(p.name for p in entry.iterdir() if not p.name.startswith(".")) == [
        "manifest.json", "prompts-000000-000002.parquet"
    ]  # the finished shard, no half-written file  # fmt: skip
    assert not json.loads((entry / "manifest.json").read_text())["complete"]
    monkeypatch.setattr(cache_mod, "_write_shard", real_write)
    got = cache.profiles(tiny_model_dirs["llama"], PROMPTS, **settings)
    np.testing.assert_array_equal(got.entropy, want.entropy)


_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from elens_utils.sweeps.cache import ProfileCache
    from elens_utils import load_model
    prompts = {prompts!r}
    lm = load_model({model!r})  # every import and the load done before the start
    here = pathlib.Path(sys.argv[2])
    if here.name != "-":
        (here / f"ready-{{time.time_ns()}}").touch()
        while not (here / "go").exists():
            time.sleep(0.002)
    prof = ProfileCache(sys.argv[1], shard_size={shard_size}).profiles(
        lm, prompts, max_new_tokens={tokens}, do_sample=True, seed=7, batch_size=2, progress=False
    )
    print(float(prof.entropy.sum()))
    """
)


def test_two_runs_filling_one_entry_at_once_agree(tmp_path, tiny_model_dirs):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(prompts=PROMPTS * 2, model=str(tiny_model_dirs["llama"]), shard_size=2, tokens=3))
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "c"), str(gate)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]  # fmt: skip
    deadline = time.time() + 240
    while len(list(gate.glob("ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()  # both loaded: they start filling the entry at the same moment
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    assert outs[0][0] == outs[1][0]
    # neither run met a shard the other was writing (a torn or half-written file)
    assert not any("computing it again" in o[1] for o in outs), [o[1][-1500:] for o in outs]
    # every shard on disk verifies, and a third run computes nothing
    cache = ProfileCache(tmp_path / "c", shard_size=2)
    (entry,) = cache.entries().itertuples()
    assert entry.complete and entry.shards_done == entry.n_shards == 6
    with _no_warnings():
        prof = cache.profiles(str(tiny_model_dirs["llama"]), PROMPTS * 2, max_new_tokens=3, do_sample=True, seed=7,
                              batch_size=2, progress=False)  # fmt: skip
    assert repr(float(prof.entropy.sum())) == outs[0][0].strip()


def test_kill_9_mid_run_loses_nothing_and_resumes_bit_identically(tmp_path, tiny_model_dirs):
    import signal

    prompts = PROMPTS * 6  # 36 prompts, one per shard, 40 tokens each (seconds in all)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(prompts=prompts, model=str(tiny_model_dirs["llama"]), shard_size=1, tokens=40))
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")

    def run(cache: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), str(cache), "-"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip

    reference = run(tmp_path / "ref").communicate(timeout=300)[0]
    victim = run(tmp_path / "c")
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "c").rglob("prompts-*.parquet"))) < 3:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    kept = sorted(p.name for p in (tmp_path / "c").rglob("prompts-*.parquet"))
    assert 3 <= len(kept) < len(prompts), kept  # killed mid-run, finished shards on disk
    resumed = run(tmp_path / "c").communicate(timeout=300)[0]
    assert resumed == reference
    entry = next(p for p in (tmp_path / "c").iterdir() if p.is_dir())
    ref_entry = next(p for p in (tmp_path / "ref").iterdir() if p.is_dir())
    for name in kept:  # the shards written before the kill are the reference's, byte for byte
        assert (entry / name).read_bytes() == (ref_entry / name).read_bytes()


class _no_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


# ---- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_file(tmp_path / "f.json") as fh:
            fh.write("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o666 & ~umask


# ---- the chapter runner ---------------------------------------------------------------------


def _mini_book(root: Path, params_yml: str = "description: test\ndefaults: {}\nchapters: {}\n") -> None:
    cells = [
        nbformat.v4.new_code_cell("n_samples = 4\nmodels = ['tiny/llama-2L']\ntemperature = 0.7\nseed = 0\nlabel = 'x'"),
        nbformat.v4.new_code_cell("print(n_samples * 2)"),
    ]
    write_mini_book(root, cells, params_yml)


@pytest.fixture
def no_kernel(monkeypatch):
    """Any attempt to start a kernel fails the test: the checks must come first."""
    import papermill

    def refuse(*a, **k):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"n_samples": "abc"}, r"n_samples = 'abc' \(from --set n_samples=abc\) must be an integer >= 1"),
        ({"n_samples": "0"}, r"n_samples = 0 .* must be an integer >= 1"),
        ({"seed": "-1"}, r"seed = -1 .* must be an integer >= 0"),
        ({"temperature": "hot"}, r"temperature = 'hot' .* must be a positive number"),
        ({"models": "./no/such/model"}, r"models names './no/such/model' .* which does not exist"),
        ({"models": "1,2"}, r"models = \[1, 2\] .* must be a list of strings"),
        ({"models": "[1"}, r"Override value '\[1' is not valid YAML"),
        ({"temperature": "1e-3", "seed": "x"}, r"seed = 'x' .* must be an integer >= 0"),  # 1e-3 is a number
        ({"models": "zoo/nosuch-2L"}, r"models \(from --set models=zoo/nosuch-2L\): .*zoo"),
        ({"models": "tiny/foo"}, r"Unknown tiny model 'tiny/foo'"),
    ],
)
def test_chapter_parameters_are_checked_before_a_kernel_starts(tmp_path, no_kernel, override, message):
    _mini_book(tmp_path)
    with pytest.raises(ElensError, match=message):
        chapters.run_chapter("mini", "t", override, root=tmp_path, out_dir=tmp_path / "book", progress=False,
                             log=lambda *_: None)  # fmt: skip


def test_yaml_aliases_are_refused_at_once(tmp_path, no_kernel):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefghi", "bcdefghij")
    )  # nine levels of nine aliases: 9**10 strings once expanded
    _mini_book(tmp_path, "description: bomb\ndefaults: {}\nchapters: {}\n" + bomb)
    start = time.perf_counter()
    with pytest.raises(ElensError, match=r"uses an alias \(\*name\): write the value out"):
        chapters.run_chapter("mini", "t", root=tmp_path, out_dir=tmp_path / "book", progress=False, log=lambda *_: None)
    assert time.perf_counter() - start < 30  # expanded, nine levels of nine would never end
    with pytest.raises(ElensError, match="uses an alias"):
        parameters._typed("*a", [1])
    assert parameters._typed("*a", "x") == "*a"  # a text parameter takes its text as it is


def test_out_that_is_a_file(tmp_path, no_kernel):
    _mini_book(tmp_path)
    (tmp_path / "book").write_text("")
    with pytest.raises(ElensError, match=r"--out .* is a file"):
        chapters.run_chapter("mini", "t", root=tmp_path, out_dir=tmp_path / "book", progress=False, log=lambda *_: None)


def test_dead_kernel_is_one_message(tmp_path, monkeypatch):
    import papermill
    from nbclient.exceptions import DeadKernelError

    def dies(*a, **k):
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    _mini_book(tmp_path)
    with pytest.raises(ElensError, match=r"kernel failed to start or stopped before the chapter finished \(DeadKernelError: Kernel died\)"):
        chapters.run_chapter("mini", "t", root=tmp_path, out_dir=tmp_path / "book", progress=False, log=lambda *_: None)


@pytest.mark.slow
def test_full_disk_while_writing_the_executed_notebook(tmp_path, monkeypatch, capsys):
    _mini_book(tmp_path)
    out = tmp_path / "book"
    out.mkdir()
    (out / "01_mini.ipynb").write_text("the old executed copy")

    def full(nb, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(chapters, "_atomic_write_nb", full)
    monkeypatch.setattr(chapter_files, "REPO", tmp_path)
    code = chapters.main(["run", "mini", "--params", "t", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "error: No space left on device:" in err and "Traceback" not in err
    assert (out / "01_mini.ipynb").read_text() == "the old executed copy"  # the old copy is kept


# ---- the second reading's cases ----------------------------------------------------------------


def test_gpt2_style_unknown_token_is_not_an_unknown_word(tiny_model_dirs):
    """GPT-2 names one token bos, eos and unk: its blank prompt is not 100% unknown words."""
    lm = load_model(tiny_model_dirs["llama"])
    tok = lm.tokenizer
    saved = tok.unk_token
    try:
        tok.unk_token = tok.eos_token
        lm.check_coverage([[tok.eos_token_id]] * 4)
    finally:
        tok.unk_token = saved
    with pytest.raises(ElensError, match="as <unk>"):
        lm.check_coverage([[tok.unk_token_id] * 3])


def test_model_parameters_resolve_like_the_kernel_and_refuse_non_names(tmp_path, no_kernel, tiny_model_dirs):
    _mini_book(tmp_path)
    (tmp_path / "zoo").mkdir()
    shutil.copytree(tiny_model_dirs["llama"], tmp_path / "zoo" / "m")
    ch = chapters.find_chapter("mini", tmp_path)
    # the kernel runs in notebooks/: ../zoo/m is there, ./zoo/m is not
    chapters.check_parameters(ch, {"models": ["../zoo/m"]})
    with pytest.raises(ElensError, match=r"names './zoo/m', which does not exist .*read from .*notebooks"):
        chapters.check_parameters(ch, {"models": ["./zoo/m"]})
    ch.parameters["example_model"] = None
    with pytest.raises(ElensError, match=r"example_model = 3 must name models"):
        chapters.check_parameters(ch, {"example_model": 3})
    chapters.check_parameters(ch, {"example_model": None})
    ch.parameters["device"] = "auto"
    import torch

    if torch.cuda.is_available():
        chapters.check_parameters(ch, {"device": 0})  # --set device=0 means cuda:0
    else:
        with pytest.raises(ElensError, match=r"device = 0 is refused: Device 'cuda:0' requested but no CUDA GPU"):
            chapters.check_parameters(ch, {"device": 0})


def test_errors_that_are_not_about_the_files_keep_their_own_words(llama_copy, monkeypatch):
    import transformers

    for exc in (MemoryError("out of memory"), ImportError("No module named 'bitsandbytes'")):
        def boom(*a, _exc=exc, **k):
            raise _exc

        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
        with pytest.raises(type(exc), match=str(exc).split("'")[0]):
            load_model(llama_copy)


def test_a_broken_pipe_to_a_child_is_an_error_not_silence():
    """Only our own stdout closed by its reader is silence; a pipe to a child that died is not."""
    script = (
        "import subprocess, sys\nfrom elens_utils.core.errors import run_command\n"
        "child = subprocess.Popen([sys.executable, '-c', 'pass'], stdin=subprocess.PIPE)\nchild.wait()\n"
        "def body():\n    child.stdin.write(b'x' * 1_000_000)\n    child.stdin.flush()\n"
        "sys.exit(run_command(body))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error: Broken pipe"), res.stderr


def test_cuda_index_is_checked_without_a_gpu_context():
    import torch

    if torch.cuda.is_available():
        with pytest.raises(ElensError, match="does not exist: this machine has"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ElensError, match="no CUDA GPU is visible"):
            resolve_device("cuda:3")


# ---- the fault-injection pass's cases ------------------------------------------------------------


def _edit_config(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def test_a_checkpoint_that_does_not_fill_its_config_is_refused(llama_copy, tmp_path):
    """More blocks in config.json than in the weights, or tensors removed: transformers would
    fill them with random values and the run would go on."""
    from safetensors.torch import load_file, save_file

    more = Path(shutil.copytree(llama_copy, tmp_path / "more"))
    _edit_config(more, num_hidden_layers=5)
    with pytest.raises(ElensError, match=r"lack \d+ tensor\(s\) its config.json asks for \(model\.layers\.3\."):
        load_model(more)
    weights = llama_copy / "model.safetensors"
    tensors = load_file(weights)
    del tensors[next(k for k in tensors if "up_proj" in k)]
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ElensError, match=r"lack 1 tensor\(s\) .*up_proj.*Save the model again"):
        load_model(llama_copy)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"intermediate_size": 7}, r"does not fit its weights or tokenizer \(RuntimeError"),
        ({"vocab_size": 5}, r"does not fit its weights or tokenizer \((AssertionError|RuntimeError)"),
    ],
)
def test_a_config_that_does_not_fit_the_weights_is_named(llama_copy, change, match):
    _edit_config(llama_copy, **change)
    with pytest.raises(ElensError, match=match):
        load_model(llama_copy)


def test_a_config_that_is_not_an_object(llama_copy):
    (llama_copy / "config.json").write_text("null")
    with pytest.raises(ElensError, match=r"config\.json cannot be read: it is not a JSON object"):
        load_model(llama_copy)


def test_damaged_embedded_model_says_delete_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path))
    load_model("tiny/llama-2L")
    weights = tmp_path / "tiny" / "llama-2L" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:3000])
    with pytest.raises(ElensError, match=rf"truncated or damaged\. Delete {tmp_path}/tiny/llama-2L and run again"):
        load_model("tiny/llama-2L")


def test_cli_refuses_a_prompt_of_unknown_words(capsys):
    from elens_utils.cli import main

    assert main(["profile", "zoo/gpt2-2L", "--prompt", "xyzzy plugh"]) == 2
    assert "reads 100% of these prompts' tokens as <unk>" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bad.txt", b"\xff\xfehello\n", r"not UTF-8 text \(byte 0 is 0xff\)"),
        ("bad.jsonl", b'"a"\n{bad\n', r"bad.jsonl, line 2: not valid JSON"),
        ("empty.txt", b"\n  \n", r"holds no prompt"),
    ],
)
def test_prompt_files_that_cannot_be_read(tmp_path, name, content, match):
    from elens_utils.sweeps.dist_sweep import read_prompt_file

    (tmp_path / name).write_bytes(content)
    with pytest.raises(ElensError, match=match):
        read_prompt_file(tmp_path / name)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("5\n", r"must be a mapping with the keys .*it holds int 5"),
        ("hello\n", r"must be a mapping .*it holds str 'hello'"),
        ("description: x\nchapters: {profil: {seed: 5}}\n", r"names chapter 'profil', which does not exist"),
        ("description: x\nchapters: {mini: abc}\n", r"chapters\.mini must be a mapping"),
        ("description: x\ndefaults: {sede: 5}\n", r"no chapter declares the default\(s\) \['sede'\]"),
    ],
)
def test_parameter_set_structure(tmp_path, text, match):
    _mini_book(tmp_path)
    (tmp_path / "params" / "bad.yml").write_text(text)
    with pytest.raises(ElensError, match=match):
        chapters.load_param_set("bad", tmp_path)
    (tmp_path / "params" / "bin.yml").write_bytes(b"\xff\xfe: 1\n")
    with pytest.raises(ElensError, match="is not UTF-8 text"):
        chapters.load_param_set("bin", tmp_path)


def test_override_text_is_taken_as_text_and_numbers_as_numbers():
    assert parameters._typed("Question: what is 2+2", "x") == "Question: what is 2+2"
    assert parameters._typed("yes", "x") == "yes" and parameters._typed("[INST] hi", "x") == "[INST] hi"
    assert parameters._typed("'quoted'", "x") == "quoted"
    assert parameters._typed("1e-3", 0.7) == 0.001 and parameters._typed("0", "auto") == 0


def test_truncated_gguf_files_are_named(tmp_path):
    from elens_utils.models.gguf_convert import convert_gguf

    (tmp_path / "hdr.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ElensError, match=r"'.*hdr\.gguf' is truncated or not a valid GGUF file"):
        convert_gguf(tmp_path / "hdr.gguf")


def test_sweep_started_by_hand_with_a_world_size(tmp_path, monkeypatch):
    from elens_utils.sweeps.dist_sweep import sweep

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ElensError, match="WORLD_SIZE=2 is set but MASTER_ADDR and MASTER_PORT are not: start the ranks with torchrun"):
        sweep(["tiny/llama-2L"], ["the dog"], out=tmp_path / "o", cache=tmp_path / "c", max_new_tokens=1)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("ELENS_FAULT_KILL_AFTER_SHARDS", "abc")
    with pytest.raises(ElensError, match="must be RANK:N"):
        sweep(["tiny/llama-2L"], ["the dog"], out=tmp_path / "o", cache=tmp_path / "c", max_new_tokens=1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"precision": "fp64"}, r"precision = 'fp64' .* must be one of fp32, bf16, auto"),
        ({"device": "gpu"}, r"device = 'gpu' .* is refused: Unknown device"),
        ({"models": "zoo/llama-2L,"}, r"An empty model name"),
    ],
)
def test_known_values_are_checked_before_a_kernel_starts(tmp_path, no_kernel, override, message):
    _mini_book(tmp_path)
    nb = nbformat.read(tmp_path / "notebooks" / "01_mini.ipynb", as_version=4)
    nb.cells[0].source += "\nprecision = 'fp32'\ndevice = 'auto'"
    nbformat.write(nb, tmp_path / "notebooks" / "01_mini.ipynb")
    with pytest.raises(ElensError, match=message):
        chapters.run_chapter("mini", "t", override, root=tmp_path, out_dir=tmp_path / "book", progress=False,
                             log=lambda *_: None)  # fmt: skip


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "ELENS_SMALL_MODEL_THREADS"])
@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_thread_counts_that_are_not_counts(name, value):
    from elens_utils.core.threads import model_threads

    with pytest.raises(ElensError, match=rf"{name}='{value}' must be an integer >= 1"):
        model_threads(64, 384, env={name: value})
    assert model_threads(64, 384, env={"ELENS_SMALL_MODEL_THREADS": "1"}) == 1


def test_a_cache_entry_that_is_a_file_or_holds_a_folder_manifest(tmp_path, tiny_model_dirs):
    cache = ProfileCache(tmp_path, shard_size=2)
    cache.profiles(tiny_model_dirs["llama"], PROMPTS[:2], max_new_tokens=1, progress=False)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (entry / "manifest.json").unlink()
    (entry / "manifest.json").mkdir()
    with pytest.raises(ElensError, match=r"is damaged \(its manifest.json is a folder\): delete it"):
        cache.profiles(tiny_model_dirs["llama"], PROMPTS[:2], max_new_tokens=1, progress=False)
    shutil.rmtree(entry)
    entry.write_text("")
    with pytest.raises(ElensError, match=r"is damaged \(it is a file\): delete it"):
        cache.profiles(tiny_model_dirs["llama"], PROMPTS[:2], max_new_tokens=1, progress=False)


def test_entropy_range_mask_and_the_heat_map_check(lens_model, monkeypatch):
    import math

    import torch

    from elens_utils.entropy.streaming import entropy_outside_range
    from elens_utils.lens.capture import prompt_lens

    v = 100
    h = torch.tensor([0.0, -0.0005, math.log(v), math.log(v) + 0.0005, -0.01, math.log(v) + 0.01, float("nan"), float("inf")])
    assert entropy_outside_range(h, v).tolist() == [False, False, False, False, True, True, True, True]
    lm = lens_model("llama")
    real = lm.parts.entropy

    def broken(resid, alphas, **kw):
        out = real(resid, alphas, **kw)
        out[-1, 0] = -1.0
        return out

    monkeypatch.setattr(lm.parts, "entropy", broken)
    with pytest.raises(ElensError, match=r"Lens entropy -1 nats at position \d+, block 1: outside \[0, log V\]"):
        prompt_lens(lm, "the cat sat")
    monkeypatch.undo()
    assert prompt_lens(lm, "the cat sat").entropy.shape[1] == lm.n_layers
