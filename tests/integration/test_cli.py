"""The command line: ``python -m elens_utils profile ...``.

Most tests call :func:`elens_utils.cli.main` in-process (fast); the ones about exit status and
tracebacks run it as users do, in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from elens_utils import load_model
from elens_utils.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "elens_utils", *args], capture_output=True, text=True, env=env, timeout=300
    )


def run_main(capsys, *args: str) -> subprocess.CompletedProcess:
    """``main(args)`` in-process, with the outcome shaped like a subprocess result."""
    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse errors
        code = stop.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_json_output_matches_the_library(tiny_model_dirs, capsys):
    d = str(tiny_model_dirs["llama"])
    res = run_main(capsys, "profile", d, "--prompt", "the cat sat on the", "--max-new-tokens", "4", "--alpha", "2",
                  "--alpha", "inf", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    lm = load_model(d)
    prof = lm.profile(["the cat sat on the"], max_new_tokens=4, alphas=(1.0, 2.0, math.inf), progress=False)
    assert out["n_layers"] == lm.n_layers == 3
    assert out["generated_ids"] == prof.meta["generated_ids"][0]
    assert out["text"] == prof.meta["text"][0]
    assert np.array(out["entropy"]).shape == (4, 3)
    np.testing.assert_allclose(out["entropy"], prof.select(1.0)[0], atol=1e-5)
    np.testing.assert_allclose(out["renyi"]["inf"], prof.select(math.inf)[0], atol=1e-5)
    np.testing.assert_allclose(out["renyi"]["2"], prof.select(2.0)[0], atol=1e-5)


def test_sampling_flags_are_deterministic(tiny_model_dirs, capsys):
    d = str(tiny_model_dirs["gpt2"])
    args = ("profile", d, "--prompt", "the dog", "--max-new-tokens", "6", "--temperature", "1.2", "--top-p", "0.9",
            "--json")
    a = json.loads(run_main(capsys, *args, "--seed", "1").stdout)
    b = json.loads(run_main(capsys, *args, "--seed", "1").stdout)
    c = json.loads(run_main(capsys, *args, "--seed", "2").stdout)
    assert a == b
    assert a["generated_ids"] != c["generated_ids"]


def test_table_output(tiny_model_dirs, capsys):
    res = run_main(capsys, "profile", str(tiny_model_dirs["gemma2"]), "--prompt", "the cat", "--max-new-tokens", "3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if line.startswith("token"))
    assert header.split()[1:] == ["L1", "L2", "L3"]
    assert "\033[" not in res.stdout  # no colour codes when not a terminal
    rows = lines[lines.index(header) + 1 :]
    assert len(rows) == 3 and all(len(r.split()) >= 4 for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-new-tokens", "0"), "must be >= 1"),
        (("--alpha", "-1"), "alpha must be >= 0"),
        (("--top-k", "5"), "only apply when sampling"),
    ],
)
def test_bad_arguments_exit_2_without_traceback(tiny_model_dirs, args, message, capsys):
    res = run_main(capsys, "profile", str(tiny_model_dirs["gpt2"]), "--prompt", "the cat", *args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_model_exits_2_without_traceback():
    res = run_cli("profile", "no-such-org/nothing-here", "--prompt", "hi")
    assert res.returncode == 2
    assert "error: 'no-such-org/nothing-here' is not a local directory" in res.stderr
    assert "Traceback" not in res.stderr


def test_empty_prompt_exits_2(tiny_model_dirs):
    res = run_cli("profile", str(tiny_model_dirs["qwen3"]), "--prompt", "")
    assert res.returncode == 2 and "is empty" in res.stderr and "Traceback" not in res.stderr
