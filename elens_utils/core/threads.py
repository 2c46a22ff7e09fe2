"""CPU threads per model: small models on a few threads, models with a large unembedding on all.

A parameter set's ``threads`` (``params/*.yml``) caps the CPU threads of a chapter's kernel.
The cap pays off on small models only: there every operation is short, torch's OpenMP threads
spin while they wait for each other, and when anything else runs on the machine two threads
make the zoo's generation 4x slower than one. On the real models every step is a large matrix
product (the lens of one SmolLM2-135M generation step: 30 blocks x 32 prompts x 49,152 x 576
multiply-adds), and one thread of two halves their speed (measured: 25.7 vs 49.9 tokens/s,
fp32, on the project's 2-core machine).

So the chapter runner passes the cap in :data:`SMALL_MODEL_THREADS_ENV`, and
:func:`~elens_utils.lens.loading.load_model` calls :func:`apply_model_threads` on every CPU model it
loads: a model whose lens row costs fewer than :data:`LARGE_LENS_MACS` multiply-adds runs on
the cap, a larger one on every thread torch started with. ``OMP_NUM_THREADS`` in your
environment wins over both.
"""

from __future__ import annotations

import os

import torch

from elens_utils.core.errors import ElensError

__all__ = ["LARGE_LENS_MACS", "SMALL_MODEL_THREADS_ENV", "apply_model_threads", "model_threads"]

#: Environment variable holding the thread cap for small models (set by the chapter runner).
SMALL_MODEL_THREADS_ENV = "ELENS_SMALL_MODEL_THREADS"
#: Multiply-adds of one lens row (d x V) from which a model counts as large. The zoo's models
#: have ~3e4 (d = 64, V ~ 500), SmolLM2-135M 2.8e7, Gemma-3-270M 1.7e8.
LARGE_LENS_MACS = 1 << 22
# torch's own choice at import (its physical cores, or OMP_NUM_THREADS when set)
_ALL_THREADS = torch.get_num_threads()


def model_threads(d_model: int, vocab_size: int, env: os._Environ | dict | None = None) -> int | None:
    """CPU threads for a model of width ``d_model`` and vocabulary ``vocab_size``.

    ``None`` (leave torch's setting alone) when the environment names ``OMP_NUM_THREADS`` or no
    cap is set; else the cap for a small model and all of torch's threads for a large one.

    Raises:
        ElensError: ``OMP_NUM_THREADS`` or the cap set to something other than a count >= 1
            (an empty value counts as unset).
    """
    env = os.environ if env is None else env
    for name in ("OMP_NUM_THREADS", SMALL_MODEL_THREADS_ENV):
        value = env.get(name)
        if value and not (value.strip().isdigit() and int(value) >= 1):  # empty: as if unset
            raise ElensError(f"{name}={value!r} must be an integer >= 1 (CPU threads), or unset.")
    cap = env.get(SMALL_MODEL_THREADS_ENV)
    if "OMP_NUM_THREADS" in env or not cap:
        return None
    small = int(cap)
    return small if d_model * vocab_size < LARGE_LENS_MACS else max(small, _ALL_THREADS)


def apply_model_threads(d_model: int, vocab_size: int) -> int:
    """Set torch's CPU threads for the model about to run (:func:`model_threads`); returns them."""
    n = model_threads(d_model, vocab_size)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()
