"""Profile sweeps over several processes: ``torchrun`` or ``accelerate launch``, one rank per device.

:func:`sweep` profiles the same prompts under each model and writes ``OUT/<model>.parquet``
(:meth:`Profiles.from_parquet` reads it). Run in one process it is :func:`profile_models` plus the
files. Started by ``torchrun --nproc_per_node=K`` (or ``accelerate launch --num_processes K``),
which set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables, it joins the
process group (``gloo``, on GPUs too: the ranks only meet at barriers) and splits the work:

1. every rank keys the same :class:`~elens_utils.sweeps.cache.ProfileCache` entry and its shards
   (consecutive prompts, ``shard_size`` each);
2. the shards are dealt to the ranks by their cost, largest first to the least loaded rank
   (:func:`assign_shards`; a shard's cost is its prompts' length plus the tokens generated), so
   the ranks finish together;
3. each rank computes its own shards through the cache (atomic files, resumable), on its own
   device (``cuda:LOCAL_RANK`` where CUDA is available and ``device="auto"``);
4. after a barrier, rank 0 reads the whole entry, which is now complete, and writes the file.

The result equals the one-process run bit for bit on the same hardware and thread count (the
command line runs small models on one thread, as torchrun's workers run): a shard is computed
the same way whichever rank computes it (prompt ``i`` samples from its own stream, seeded by
``(seed, i)``), and the file's rows are in prompt order. A killed run (one rank or all) leaves
every finished shard on disk; running the same command again computes only the missing ones.

Multi-node: the same command under ``torchrun --nnodes=N --node_rank=R --rdzv_endpoint=HOST:PORT``
with a cache directory every node sees (``--cache`` on a shared file system).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elens_utils.core.errors import ElensError, run_command

__all__ = ["assign_shards", "dist_context", "profile_processes", "read_prompt_file", "run_processes", "sweep", "sweep_file_name"]

#: Processes that :func:`~elens_utils.sweeps.sweep.profile_models` profiles on (set by the chapter
#: runner from a parameter set's ``processes``); 1 or unset: in the calling process.
PROCESSES_ENV = "ELENS_PROFILE_PROCESSES"

#: Fault injection for the tests: ``"RANK:N"`` makes rank RANK kill itself (SIGKILL) once it has
#: written N shards, as a crashed or pre-empted worker would.
FAULT_ENV = "ELENS_FAULT_KILL_AFTER_SHARDS"


def dist_context() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher's environment (``(0, 1, 0)`` alone)."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise ElensError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({err}); start with torchrun.") from err
    if world < 1 or not 0 <= rank < world:
        raise ElensError(f"RANK={rank} does not fit WORLD_SIZE={world}: start the sweep with torchrun or accelerate launch.")
    return rank, world, local


def assign_shards(costs: Sequence[float], world: int) -> list[list[int]]:
    """Deal shards to ``world`` ranks so that their summed costs come out even.

    Longest processing time first: shards by decreasing cost (ties: lower index first), each to
    the rank with the smallest total so far (ties: lower rank). Deterministic, so every rank
    computes the same deal without talking to the others. Returns each rank's shard indices,
    ascending.
    """
    if world < 1:
        raise ElensError(f"world size must be >= 1; got {world}.")
    loads = [0.0] * world
    out: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(costs)), key=lambda j: (-float(costs[j]), j)):
        r = min(range(world), key=lambda q: (loads[q], q))
        out[r].append(i)
        loads[r] += float(costs[i])
    return [sorted(x) for x in out]


def _prompt_cost(prompt: str | Sequence[int], max_new_tokens: int) -> float:
    # Characters of a text prompt stand in for its tokens (no tokenizer is loaded to plan).
    return float(len(prompt) if isinstance(prompt, str) else len(list(prompt))) + max_new_tokens


def read_prompt_file(path: str | os.PathLike[str]) -> tuple[list[str | list[int]], list[str | None] | None]:
    """Prompts (and labels) from a file.

    * ``.txt``: one prompt per line (empty lines skipped; no labels).
    * ``.json``: a list of prompts (strings, or lists of token ids) or of objects
      ``{"prompt": ..., "label": ...}``.
    * ``.jsonl``: one such value per line.

    Returns ``(prompts, labels)``; labels is None when no object has one.
    """
    p = Path(path)
    if not p.is_file():
        raise ElensError(f"No prompt file at {p}: give a .txt (one prompt per line), .json or .jsonl file.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ElensError(
            f"Prompt file {p} is not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}): save it as UTF-8."
        ) from err
    if p.suffix == ".txt":
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ElensError(f"Prompt file {p} holds no prompt (no line with text): one prompt per line.")
        return lines, None
    if p.suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise ElensError(f"Prompt file {p} is not valid JSON ({err}).") from err
    elif p.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ElensError(f"Prompt file {p}, line {number}: not valid JSON ({err.msg}, column {err.colno}).") from err
    else:
        raise ElensError(f"Prompt file {p}: use a .txt, .json or .jsonl file, not {p.suffix or 'no suffix'}.")
    if not isinstance(items, list) or not items:
        raise ElensError(f"Prompt file {p} must hold a non-empty list of prompts.")
    prompts: list[str | list[int]] = []
    labels: list[str | None] = []
    for k, item in enumerate(items):
        label = None
        if isinstance(item, dict):
            if "prompt" not in item:
                raise ElensError(f"Prompt file {p}, item {k}: an object needs a 'prompt' field.")
            item, label = item["prompt"], item.get("label")
        if isinstance(item, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in item) and item:
            prompts.append(item)
        elif isinstance(item, str):
            prompts.append(item)
        else:
            raise ElensError(f"Prompt file {p}, item {k}: a prompt is a string or a list of token ids; got {item!r:.60}.")
        labels.append(None if label is None else str(label))
    return prompts, (labels if any(v is not None for v in labels) else None)


def sweep_file_name(model: str) -> str:
    """``<model>.parquet`` with the characters a file name cannot hold replaced (``/`` -> ``--``)."""
    name = os.fspath(model).rstrip("/\\").replace("\\", "/")
    if os.path.isabs(name) or name.startswith("."):
        name = Path(name).name  # a local directory: its own name
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name.replace("/", "--")) + ".parquet"


def _fault_hook(rank: int):
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    who, _, count = spec.partition(":")
    if not (who.strip().isdigit() and count.strip().isdigit()):
        raise ElensError(f"{FAULT_ENV}={spec!r} must be RANK:N (a test's fault injection); unset it for a normal run.")
    if int(who) != rank:
        return None
    written = []

    def hook(_i: int) -> None:
        written.append(_i)
        if len(written) >= int(count):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def sweep(
    models: Sequence[str | os.PathLike[str]],
    prompts: Sequence[str | Sequence[int]],
    labels: Sequence[str | None] | None = None,
    *,
    out: str | os.PathLike[str] | None,
    cache: str | os.PathLike[str] | None = None,
    shard_size: int = 16,
    device: str = "auto",
    progress: bool | None = None,
    **settings: Any,
) -> dict[str, Path]:
    """Profile ``prompts`` under each model over the launcher's ranks; write ``OUT/<model>.parquet``.

    Args:
        models: names, directories, ``.gguf`` files or embedded names.
        prompts, labels: as for :func:`~elens_utils.lens.generation.generate_profiles`.
        out: the output directory (created); None fills the cache only.
        cache: the profile cache's root (default ``$ELENS_CACHE/profiles``); every rank (every
            node) must see the same directory.
        shard_size: prompts per shard of a new cache entry: the unit dealt to the ranks.
        device: ``"auto"`` gives each rank ``cuda:LOCAL_RANK`` where CUDA is available, else
            the CPU; anything else is used as it is.
        progress: progress bars (rank 0 only).
        **settings: :meth:`ProfileCache.profiles`' settings (``max_new_tokens``, ``do_sample``,
            ``temperature``, ``top_k``, ``top_p``, ``seed``, ``alphas``, ``dtype``,
            ``precision``, ``batch_size``...).

    Returns:
        ``{model: path written}`` on rank 0; ``{}`` on the other ranks.
    """
    import torch
    import torch.distributed as dist

    from elens_utils.lens.generation import GenerationSettings
    from elens_utils.lens.loading import resolve_device
    from elens_utils.sweeps.cache import ProfileCache

    rank, world, local = dist_context()
    names = [os.fspath(m) for m in models]
    if not names:
        raise ElensError("No models given: pass one or more model names.")
    if len(set(names)) != len(names):
        raise ElensError(f"Models listed more than once: {sorted({m for m in names if names.count(m) > 1})}.")
    files = [sweep_file_name(m) for m in names]
    if len(set(files)) != len(files):
        raise ElensError(f"Two models would write the same file ({files}): rename one of the directories.")
    if device == "auto" and world > 1 and torch.cuda.is_available():
        device = f"cuda:{local % torch.cuda.device_count()}"
    store = ProfileCache(cache, shard_size=shard_size)
    started_group = False
    if world > 1 and not dist.is_initialized():
        # gloo on GPUs too: the ranks only meet at barriers and exchange a few numbers, and an
        # nccl barrier needs each rank's device bound first or it meets on cuda:0. A long model
        # on one rank keeps the others waiting at the barrier: a day, not 30 minutes.
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:
            raise ElensError(
                f"WORLD_SIZE={world} is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
                "start the ranks with torchrun (or accelerate launch), or unset WORLD_SIZE and RANK for one process."
            )
        if "TORCHELASTIC_RUN_ID" not in os.environ:  # started by hand: say what it waits for
            print(
                f"rank {rank} of {world}: waiting for the other ranks at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} (torchrun starts them all: torchrun --nproc_per_node={world} ...)",
                file=sys.stderr, flush=True,
            )  # fmt: skip
        dist.init_process_group(backend="gloo", timeout=_dt.timedelta(hours=24))
        started_group = True
    written: dict[str, Path] = {}
    try:
        out_dir = None if out is None else Path(out)
        if rank == 0 and out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        if world > 1:
            # Rank 0 first builds what a name stands for (an embedded model's directory, a GGUF
            # file's conversion: minutes, and once), the others wait and then find it.
            from elens_utils.models.registry import resolve_model

            if rank == 0:
                for name in names:
                    resolve_model(name)
            dist.barrier()
            if local == 0 and rank != 0:  # another node, whose cache may be its own
                for name in names:
                    resolve_model(name)
            dist.barrier()
        hook = _fault_hook(rank)
        for name, file in zip(names, files):
            kw = dict(settings, device=device)
            if world > 1:
                ranges = store.shard_ranges(name, prompts, labels, **kw)
                steps = int(settings.get("max_new_tokens", GenerationSettings.max_new_tokens))
                costs = [sum(_prompt_cost(p, steps) for p in prompts[a:b]) for a, b in ranges]
                mine = assign_shards(costs, world)[rank]
                started = time.perf_counter()
                done = store.compute_shards(
                    name, prompts, labels, shards=mine, after_shard=hook,
                    progress=progress if rank == 0 else False, **kw,
                )  # fmt: skip
                mine_stats = {"seconds": time.perf_counter() - started if done else 0.0, "device": str(resolve_device(device)) if done else None}
                stats: list[Any] = [None] * world
                dist.all_gather_object(stats, mine_stats)  # also the barrier: every rank is done
                if rank == 0:
                    store.note_compute(
                        name, prompts, labels, seconds=sum(x["seconds"] for x in stats),
                        devices=[x["device"] for x in stats if x["device"]], **kw,
                    )  # fmt: skip
            if rank == 0 and (out_dir is not None or world == 1):
                prof = store.profiles(name, prompts, labels, progress=progress, **kw)
                if out_dir is not None:
                    written[name] = prof.to_parquet(out_dir / file)
        if world > 1:
            dist.barrier()
    finally:
        if started_group:
            dist.destroy_process_group()
    return written


def profile_processes() -> int:
    """The processes :func:`~elens_utils.sweeps.sweep.profile_models` uses (:data:`PROCESSES_ENV`)."""
    text = os.environ.get(PROCESSES_ENV, "1")
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ElensError(f"{PROCESSES_ENV}={text!r}: give an integer >= 1 (processes that profile).")
    return value


def run_processes(
    model: str,
    prompts: Sequence[str | Sequence[int]],
    labels: Sequence[str | None] | None,
    *,
    cache: str | os.PathLike[str],
    shard_size: int,
    processes: int,
    settings: dict[str, Any],
) -> None:
    """Fill the cache entry of (``model``, ``prompts``, ``settings``) with ``processes`` torchrun
    workers on this machine (``torchrun --standalone``); the caller then reads it as a hit.
    ``shard_size`` is the cache's own, for a new entry; a ``shard_size`` among ``settings`` wins,
    as it does in :meth:`ProfileCache.profiles`.

    Raises:
        ElensError: a worker failed (the message ends with its last lines of output); the
            shards it finished stay in the cache for the next run.
    """
    import subprocess
    import sys
    import tempfile

    spec = {
        "models": [os.fspath(model)], "prompts": [p if isinstance(p, str) else [int(t) for t in p] for p in prompts],
        "labels": None if labels is None else [None if v is None else str(v) for v in labels],
        "cache": os.fspath(cache), "shard_size": int(settings.get("shard_size") or shard_size),
        "settings": {k: v for k, v in settings.items() if k not in ("progress", "shard_size")},
    }  # fmt: skip
    try:
        text = json.dumps(spec)
    except TypeError as err:
        raise ElensError(
            f"Profiling on {processes} processes passes the settings to its workers as JSON, and one of them "
            f"is not plain data ({err}): give numbers, strings and lists, or use processes: 1."
        ) from err
    with tempfile.TemporaryDirectory(prefix="elens-sweep-") as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(text)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "elens_utils.sweeps.dist_sweep", "--spec", str(path)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr + "\n" + done.stdout).strip().splitlines()
        # the workers' own words (an "error: ..." line, an exception), not torchrun's banner
        said = [ln for ln in lines if ln.lstrip("[]rank0123456789: ").startswith("error:") or "Error" in ln.split(":")[0]]
        tail = "\n".join(said[-4:] or lines[-8:])
        raise ElensError(
            f"Profiling {model} on {processes} processes failed (exit {done.returncode}); finished shards "
            f"are kept, so running again resumes. Last output:\n{tail}"
        )


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m elens_utils.sweeps.dist_sweep --spec FILE``: the workers of :func:`run_processes`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m elens_utils.sweeps.dist_sweep")
    parser.add_argument("--spec", required=True, help="JSON written by run_processes")
    args = parser.parse_args(argv)

    def body() -> None:
        spec = json.loads(Path(args.spec).read_text())
        sweep(
            spec["models"], spec["prompts"], spec["labels"], out=None, cache=spec["cache"],
            shard_size=spec["shard_size"], progress=False, **spec["settings"],
        )  # fmt: skip

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(_main())
