"""Entropy profiles cached on disk, per (model, prompts, settings), computed in resumable shards.

The book re-runs its chapters. :class:`ProfileCache` makes that cheap and safe: adding one model
to a chapter computes only that model, and an interrupted run loses nothing it finished::

    cache = ProfileCache("~/.cache/elens/profiles")
    prof = cache.profiles("tiny/llama-4L", prompts, labels, max_new_tokens=8, do_sample=True,
                          temperature=1.0, seed=0, alphas=(1.0, 0.5))   # loads the model on a miss only
    cache.entries()                                                     # a DataFrame, one row per entry
    cache.clear(model="tiny/llama-4L")

The key
-------
An entry is identified by the SHA-256 of the canonical JSON of these fields (all recorded, readable,
in the entry's ``manifest.json``):

* ``model``: the name as given (Hub id, directory, or embedded ``tiny/...`` name; it is what the
  profiles record in ``meta.model``, so two spellings of one directory are two entries), and the
  Hub ``revision`` when one is given;
* ``weights``: for a local directory (an embedded name is resolved to its directory), a
  fingerprint of the files that decide the model's outputs: ``config.json``, the weights
  (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth``, ``*.index.json``), the tokenizer files
  (``tokenizer*``, ``vocab*``, ``merges.txt``, ``special_tokens_map.json``,
  ``added_tokens.json``, ``*.model``) and remote code (``*.py``). Each file counts with its
  name, size and a SHA-256: of the whole file up to 8 MiB; for a larger file, of its first
  64 KiB, the whole safetensors header (names, dtypes, shapes, offsets) and 32 blocks of 64 KiB
  spread evenly over the file. No modification time is used, so a copied directory still hits,
  and a retrained model saved over the old one misses (its sampled blocks differ). A change
  confined to unsampled bytes of a large file is not seen: pass ``tag=`` in that case. Other
  files (README, ``generation_config.json``, training logs) do not count. A Hub id has no
  fingerprint: pin ``revision=`` to a commit for an exact key;
* ``dtype``: the resolved compute dtype (``"auto"`` is resolved first: float32 on CPU,
  bfloat16 on GPU, so ``"auto"`` on CPU and ``"float32"`` share entries). The device is
  recorded in the manifest but is not part of the key;
* ``prompts`` (SHA-256 of the exact list, strings and token-id lists distinguished) and
  ``labels`` (the same, or null);
* the generation settings (:class:`~elens_utils.lens.generation.GenerationSettings`: max_new_tokens,
  do_sample, temperature, top_k, top_p, seed), the Renyi orders ``alphas`` and the lens options
  (``chunk_size``, ``backend``, ``support_threshold``, ``precision``);
* ``tag`` (free text for anything the cache cannot see, e.g. blocks skipped by hooks), the
  library's ``__version__`` and the cache format.

``batch_size`` and ``progress`` are not in the key: they change no value beyond float rounding
(see below).

Shards and resuming
-------------------
Prompts are computed in shards of ``shard_size`` consecutive prompts (64 by default; the size of
an entry is fixed by its first run and kept in its manifest). Shard ``[a, b)`` is computed by
:func:`~elens_utils.lens.generation.generate_profiles` with ``index_offset=a``, so prompt ``i``
samples from the stream ``row_seed(seed, i)`` whichever shard it is in, and is written
atomically (:meth:`Profiles.to_parquet`) to ``prompts-AAAAAA-BBBBBB.parquet`` as soon as it is
done. A run that stops (an exception, Ctrl-C, a killed job) leaves only finished shards; the
next call loads them and computes the missing ones. The result is the concatenation of the shards
in prompt order.

A cached result is bit-identical whether it was computed in one go or resumed after an
interruption (the batches of a shard do not depend on the other shards). Against a single
:func:`generate_profiles` call over the whole list it is bit-identical with ``batch_size=1``;
with larger batches the batch composition differs (prompts are sorted by length within a
shard), which changes entropies by float rounding only (about 1e-6 nats in float32).

Files that are not the expected shard names (for instance the ``.*.tmp`` file of a write that
was killed) are ignored.

Verified before use
-------------------
Every shard carries a stamp in its Parquet schema metadata (key ``elens_cache_shard``): the key
of its entry, its prompt range ``[a, b)`` and a SHA-256 of its values (:func:`shard_sha256`:
every column's name, type and values; the entropies' float32 bytes). A shard is used only if it
can be read, its stamp names this entry and this range, its values hash to the stamp's digest,
and it holds the expected rows (prompts, tokens, orders). Anything else (a truncated or
corrupted file, a shard copied from another entry or another range, a file without a stamp) is
reported with a warning and computed again; nothing unverified reaches a result. The entropies
themselves are range-checked where they are made (:func:`~elens_utils.lens.generation.generate_profiles`:
finite, within ``[0, log V]``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError
from elens_utils.core.paths import cache_dir
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.generation import GenerationSettings, generate_profiles
from elens_utils.lens.loading import LensModel, load_model, resolve_device, resolve_dtype
from elens_utils.models.registry import resolve_model

__all__ = ["ProfileCache", "CACHE_FORMAT", "DEFAULT_SHARD_SIZE", "model_fingerprint", "shard_sha256"]

#: Version of the cache layout (part of every key).
# 2: load_model's contiguous unembedding input rounds CPU logits differently; 3: stamped shards;
# 4: the stamp's digest covers the schema metadata
CACHE_FORMAT = 4
#: Prompts per shard of a new entry.
DEFAULT_SHARD_SIZE = 64

_MANIFEST = "manifest.json"
_STAMP = b"elens_cache_shard"  # schema metadata key of a shard's stamp
_SHARD = re.compile(r"^prompts-(\d{6})-(\d{6})\.parquet$")
_ENTRY_DIR = re.compile(r"^[A-Za-z0-9._-]*-[0-9a-f]{20}$")  # _slug(name)-key[:20]
_LENS_KWARGS = ("chunk_size", "backend", "support_threshold", "precision")

_FULL_HASH_LIMIT = 8 << 20  # files up to 8 MiB are hashed whole
_BLOCK = 64 << 10
_N_BLOCKS = 32
_KEY_FILE = re.compile(
    r"^(config\.json|.*\.safetensors|.*\.bin|.*\.pt|.*\.pth|.*\.index\.json|tokenizer.*|vocab.*"
    r"|merges\.txt|special_tokens_map\.json|added_tokens\.json|.*\.model|.*\.py)$"
)


@dataclasses.dataclass
class _Entry:
    """One cache entry being read or filled: where, what, and how to load its model."""

    path: Path
    manifest: dict[str, Any]
    prompts: list
    labels: list | None
    settings: GenerationSettings
    alphas: tuple[float, ...]
    ranges: list[tuple[int, int]]
    name: str
    lm: LensModel | None
    load: dict[str, Any]
    lens_kwargs: dict[str, Any]


_ENTRY_DEFAULTS: dict[str, Any] = {
    "device": "auto", "dtype": "auto", "trust_remote_code": False, "revision": None, "lens_spec": None,
    "tag": None, **{f.name: f.default for f in dataclasses.fields(GenerationSettings)},
    "alphas": (1.0,), "shard_size": None,
}  # fmt: skip


def _entry_args(settings: dict[str, Any]) -> dict[str, Any]:
    """:meth:`ProfileCache.profiles`' keyword arguments as ``_prepare`` takes them (``batch_size``
    and ``progress`` dropped: they are not part of an entry)."""
    rest = {k: v for k, v in settings.items() if k not in ("batch_size", "progress")}
    args = {k: rest.pop(k, default) for k, default in _ENTRY_DEFAULTS.items()}
    return {**args, "lens_kwargs": rest}


# --------------------------------------------------------------------------------------------
# fingerprints and keys


def _file_digest(path: Path) -> tuple[str, str]:
    """(sha256, "full" | "sampled") of a file, see the module docstring."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            return h.hexdigest(), "full"
        head = fh.read(_BLOCK)
        h.update(head)
        if path.suffix == ".safetensors" and len(head) >= 8:
            n = int.from_bytes(head[:8], "little")
            if 0 < n <= min(size - 8, 1 << 30):  # the JSON header: names, dtypes, shapes, offsets
                fh.seek(8)
                h.update(fh.read(n))
        for k in range(_N_BLOCKS):
            fh.seek((size - _BLOCK) * k // (_N_BLOCKS - 1))
            h.update(fh.read(_BLOCK))
    return h.hexdigest(), "sampled"


def model_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Fingerprint of a ``save_pretrained`` directory (None for a Hub id).

    ``{"files": {name: {"size": bytes, "sha256": hex, "hashed": "full" | "sampled"}}}`` over the
    files that decide the model's outputs (see the module docstring).
    """
    p = Path(path)
    if not p.is_dir():
        return None
    files = {}
    for f in sorted(p.iterdir()):
        if f.is_file() and not f.name.startswith(".") and _KEY_FILE.match(f.name):
            digest, how = _file_digest(f)
            files[f.name] = {"size": f.stat().st_size, "sha256": digest, "hashed": how}
    if "config.json" not in files:
        raise ElensError(
            f"Directory '{path}' has no config.json, so it is not a saved transformers model. "
            "Save one there with model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)."
        )
    return {"files": files}


def _prompt_record(prompt: Any, i: int) -> list:
    if isinstance(prompt, str):
        return ["text", prompt]
    if isinstance(prompt, bytes) or not isinstance(prompt, Sequence):
        raise ElensError(f"Prompt {i} is a {type(prompt).__name__}: give a string or a list of token ids.")
    try:
        return ["ids", [int(t) for t in prompt]]
    except (TypeError, ValueError) as err:
        raise ElensError(f"Prompt {i} is neither a string nor a list of token ids.") from err


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _library_version() -> str:
    from elens_utils.core.version import __version__

    return __version__


def _json_value(v: Any) -> Any:
    """A JSON-safe, exact rendering of a lens option (floats by repr: inf, 1e-20...)."""
    if isinstance(v, float):
        return repr(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return repr(v)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, obj: Any) -> None:
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")


def _read_manifest(entry: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((entry / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _slug(name: str) -> str:
    tail = name.rstrip("/\\").replace("\\", "/").split("/")[-1] or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tail)[:40].lstrip(".") or "model"


def _has_hooks(lm: LensModel) -> bool:
    """Whether hooks other than the loader's own (which change no value) are attached."""
    from elens_utils.lens.loading import loader_hook

    return any(
        any(not loader_hook(h) for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))
        for m in lm.model.modules()
    )


# --------------------------------------------------------------------------------------------
# the cache


class ProfileCache:
    """Entropy profiles on disk under ``root``, one directory per (model, prompts, settings).

    Args:
        root: the cache directory (created on first write). Default: ``$ELENS_CACHE/profiles``
            (``~/.cache/elens/profiles``).
        shard_size: prompts per shard for new entries (default :data:`DEFAULT_SHARD_SIZE`).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, shard_size: int = DEFAULT_SHARD_SIZE):
        self.root = Path(root).expanduser() if root is not None else cache_dir() / "profiles"
        if self.root.exists() and not self.root.is_dir():
            raise ElensError(f"Profile cache root {self.root} is a file: give a directory.")
        _check_shard_size(shard_size)
        self.shard_size = shard_size

    def __repr__(self) -> str:
        return f"ProfileCache({str(self.root)!r})"

    # ---- the main call -------------------------------------------------------------------------

    def profiles(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None = None,
        *,
        batch_size: int = 16,
        progress: bool | None = None,
        **settings: Any,
    ) -> Profiles:
        """The profiles of ``prompts`` under ``model``: from the cache, computing what is missing.

        Every keyword argument but ``batch_size`` and ``progress`` is a setting of the entry
        (``**settings``), taken as :meth:`shard_ranges`, :meth:`missing_shards`,
        :meth:`compute_shards` and :meth:`note_compute` take it; one left out has the default
        given below.

        Args:
            model: a Hub id, a ``save_pretrained`` directory, an embedded name (``tiny/llama-4L``)
                or an already loaded :class:`LensModel`. A name is loaded (with ``device``,
                ``dtype``, ``trust_remote_code``, ``revision``, ``lens_spec``: defaults
                ``"auto"``, ``"auto"``, False, None, None) only when some shard is missing, so a
                full hit never loads the model.
            prompts, labels: as for :func:`~elens_utils.lens.generation.generate_profiles`.
            tag: free text added to the key, for what the cache cannot see (a model with
                blocks skipped by hooks, weights edited in memory). Required when ``model`` is a
                LensModel with forward hooks attached.
            max_new_tokens, do_sample, temperature, top_k, top_p, seed: the generation settings,
                passed to :func:`generate_profiles` (defaults: those of
                :class:`~elens_utils.lens.generation.GenerationSettings`: 32 tokens, greedy,
                temperature 1.0, no top-k or top-p, seed 0).
            alphas, batch_size: passed to :func:`generate_profiles` (defaults ``(1.0,)``, 16).
            chunk_size, backend, support_threshold, precision: the lens options, passed to
                :func:`generate_profiles` (none by default).
            shard_size: prompts per shard for a new entry (default: the cache's); an existing
                entry keeps the size it was started with.
            progress: progress bars of the generation.

        Returns:
            :class:`Profiles`, rows in prompt order, as :func:`generate_profiles` returns them.

        Raises:
            ElensError: bad arguments, or whatever loading or generation raises.
        """
        e = self._prepare(model, prompts, labels, **_entry_args(settings))
        parts = [self._read_shard(e, i) for i in range(len(e.ranges))]
        missing = [i for i, p in enumerate(parts) if p is None]
        if missing:
            for i, shard in self._compute(e, missing, batch_size, progress):
                parts[i] = shard
        result = Profiles.concat([p for p in parts if p is not None])
        manifest = e.manifest
        if missing or not manifest.get("complete") or not (e.path / _MANIFEST).exists():
            manifest["complete"] = True
            manifest["updated"] = _now()
            e.path.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(e.path / _MANIFEST, manifest)
        return result

    def shard_ranges(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None = None,
        **settings: Any,
    ) -> list[tuple[int, int]]:
        """The ``[a, b)`` prompt ranges of the entry's shards (arguments as for :meth:`profiles`,
        without ``batch_size`` and ``progress``); a data-parallel run splits them among ranks."""
        return self._prepare(model, prompts, labels, **_entry_args(settings)).ranges

    def missing_shards(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None = None,
        **settings: Any,
    ) -> list[int]:
        """Indices of the entry's shards with no file yet; ``[]`` when every one is there. Only
        their presence is checked: :meth:`profiles` verifies each one as it reads it."""
        e = self._prepare(model, prompts, labels, **_entry_args(settings))
        return [i for i, (a, b) in enumerate(e.ranges) if not (e.path / _shard_name(a, b)).is_file()]

    def note_compute(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None = None,
        *,
        seconds: float,
        devices: Sequence[str],
        **settings: Any,
    ) -> None:
        """Add compute time and devices that other processes spent on this entry to its manifest
        (a data-parallel run's rank 0 records its ranks' :meth:`compute_shards` this way)."""
        e = self._prepare(model, prompts, labels, **_entry_args(settings))
        manifest = e.manifest
        manifest["devices"] = sorted(set(manifest.get("devices", [])) | set(devices))
        manifest["compute_seconds"] = round(float(manifest.get("compute_seconds", 0.0)) + float(seconds), 3)
        manifest["updated"] = _now()
        e.path.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(e.path / _MANIFEST, manifest)

    def compute_shards(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None = None,
        *,
        shards: Sequence[int],
        batch_size: int = 16,
        progress: bool | None = None,
        after_shard: Callable[[int], None] | None = None,
        **settings: Any,
    ) -> list[int]:
        """Compute those of the entry's ``shards`` (indices into :meth:`shard_ranges`) that are not
        on disk yet, and return their indices; the model is loaded only if one is missing.

        For one rank of a data-parallel run: each rank computes its own shards, then one rank
        calls :meth:`profiles`, which finds them all. The manifest is written only when the
        entry is new (by whichever rank comes first: the same content), never marked complete
        here. ``after_shard(i)`` is called once shard ``i`` is on disk.
        """
        e = self._prepare(model, prompts, labels, **_entry_args(settings))
        wanted = sorted(set(int(i) for i in shards))
        bad = [i for i in wanted if not 0 <= i < len(e.ranges)]
        if bad:
            raise ElensError(f"Shards {bad} do not exist: this entry has shards 0..{len(e.ranges) - 1}.")
        missing = [i for i in wanted if self._read_shard(e, i) is None]
        done = []
        for i, _shard in self._compute(e, missing, batch_size, progress, mark_incomplete=False):
            done.append(i)
            if after_shard is not None:
                after_shard(i)
        return done

    def _compute(self, e: _Entry, missing: list[int], batch_size: int, progress: bool | None, mark_incomplete: bool = True):
        """Compute the shards ``missing`` of entry ``e`` one by one, writing each atomically as
        soon as it is done; yields ``(index, Profiles read back from disk)``."""
        if not missing:
            return
        manifest = e.manifest
        e.path.mkdir(parents=True, exist_ok=True)
        if mark_incomplete or not (e.path / _MANIFEST).exists():
            manifest["complete"] = False
            manifest["updated"] = _now()
            _write_json_atomic(e.path / _MANIFEST, manifest)
        lm = e.lm if e.lm is not None else load_model(e.name, **e.load)
        # before any work: prompts the tokenizer reads as <unk> would give profiles of nothing
        lm.check_coverage(lm.encode([p for i in missing for p in e.prompts[slice(*e.ranges[i])]]))
        devices = set(manifest.get("devices", []))
        devices.add(str(lm.device))
        manifest["devices"] = sorted(devices)
        started = time.perf_counter()
        for i in missing:
            a, b = e.ranges[i]
            shard = generate_profiles(
                lm,
                e.prompts[a:b],
                **dataclasses.asdict(e.settings),
                alphas=e.alphas,
                labels=None if e.labels is None else e.labels[a:b],
                batch_size=batch_size,
                progress=progress,
                index_offset=a,
                **e.lens_kwargs,
            )
            path = _write_shard(e.path / _shard_name(a, b), shard, e.manifest["key"], (a, b))
            # Read back, so that a computed result and a cached one are the same objects
            # (column dtypes included).
            yield i, Profiles.from_parquet(path)
        manifest["compute_seconds"] = round(
            float(manifest.get("compute_seconds", 0.0)) + time.perf_counter() - started, 3
        )

    def _prepare(
        self,
        model: str | os.PathLike[str] | LensModel,
        prompts: Sequence[str | Sequence[int]],
        labels: Sequence[str | None] | None,
        *,
        device: str,
        dtype: str,
        trust_remote_code: bool,
        revision: str | None,
        lens_spec: Any,
        tag: str | None,
        alphas: float | Sequence[float],
        shard_size: int | None,
        lens_kwargs: dict[str, Any],
        **generation: Any,
    ) -> _Entry:
        """Check the arguments, key the entry and read (or start) its manifest (``generation``:
        the fields of :class:`GenerationSettings`)."""
        if isinstance(prompts, (str, bytes)):
            raise ElensError("Pass a list of prompts, not a single string: profiles(model, ['...']).")
        prompts = list(prompts)
        if not prompts:
            raise ElensError("No prompts given: pass a non-empty list of prompts.")
        if labels is not None:
            if isinstance(labels, (str, bytes)):
                raise ElensError("labels must be a list with one label per prompt, not a string.")
            labels = list(labels)
            if len(labels) != len(prompts):
                raise ElensError(f"Got {len(labels)} labels for {len(prompts)} prompts: pass one label per prompt.")
        bad = sorted(set(lens_kwargs) - set(_LENS_KWARGS))
        if bad:
            raise ElensError(
                f"Unknown argument(s) {bad} for ProfileCache.profiles: its settings are "
                f"{', '.join([*_ENTRY_DEFAULTS, 'batch_size', 'progress'])}; "
                f"lens options are {', '.join(_LENS_KWARGS)}."
            )
        if shard_size is not None:
            _check_shard_size(shard_size)
        settings = GenerationSettings(**generation)
        from elens_utils.entropy.streaming import normalize_alphas

        alphas = normalize_alphas(alphas)
        load = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code,
                "revision": revision, "lens_spec": lens_spec}  # fmt: skip

        lm: LensModel | None = None
        if isinstance(model, LensModel):
            lm = model
            clash = [k for k, v in load.items() if v != _ENTRY_DEFAULTS[k]]
            if clash:
                raise ElensError(
                    f"{clash} apply when loading a model by name; this LensModel is already loaded. "
                    "Pass its name instead, or drop those arguments."
                )
            if _has_hooks(lm) and tag is None:
                raise ElensError(
                    f"The model '{lm.name}' has forward hooks attached (blocks skipped or patched?): "
                    "the cache cannot see what they change. Pass tag='...' describing them, so that "
                    "these profiles get an entry of their own."
                )
            name = lm.name
            dtype_name = str(lm.dtype).removeprefix("torch.")
            fingerprint = model_fingerprint(resolve_model(name))
        else:
            name = os.fspath(model)
            if not name:
                raise ElensError("Empty model name: give a Hub id, a directory or an embedded name.")
            dtype_name = str(resolve_dtype(dtype, resolve_device(device))).removeprefix("torch.")
            fingerprint = model_fingerprint(resolve_model(name))

        if lens_kwargs.get("precision") == "auto":
            # keyed by what "auto" means on this machine, so that a cache moved to a machine
            # that decides otherwise is not read as its own
            from elens_utils.entropy.precision import resolve_precision

            where = lm.device if lm is not None else resolve_device(device)
            key_lens = {**lens_kwargs, "precision": f"auto:{resolve_precision('auto', where)}"}
        else:
            key_lens = lens_kwargs
        fields = {
            "cache_format": CACHE_FORMAT,
            "library_version": _library_version(),
            "model": name,
            "revision": revision,
            "weights": fingerprint,
            "dtype": dtype_name,
            "lens_spec": None if lens_spec is None else repr(lens_spec),
            "tag": tag,
            "n_prompts": len(prompts),
            "prompts_sha256": _sha256_json([_prompt_record(p, i) for i, p in enumerate(prompts)]),
            "labels_sha256": None if labels is None else _sha256_json(
                [None if v is None else str(v) for v in labels]
            ),
            "settings": dataclasses.asdict(settings),
            "alphas": [repr(a) for a in alphas],
            "lens_kwargs": {k: _json_value(v) for k, v in sorted(key_lens.items())},
        }
        key = _sha256_json(fields)
        entry = self.root / f"{_slug(name)}-{key[:20]}"

        if entry.exists() and not entry.is_dir() or (entry / _MANIFEST).is_dir():
            raise ElensError(
                f"Cache entry {entry} is damaged ({'it is a file' if not entry.is_dir() else 'its manifest.json is a folder'}): "
                "delete it and run again."
            )
        manifest = _read_manifest(entry)
        size = manifest.get("shard_size") if manifest is not None else None
        if manifest is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            warnings.warn(f"Cache entry {entry} has a damaged manifest (shard_size {size!r}); writing it again.")
            manifest = None  # as if lost: its shards prove themselves by their stamps
        if manifest is not None and manifest.get("key") != key:
            raise ElensError(
                f"Cache entry {entry} belongs to another key (a corrupted manifest?): delete that "
                "directory and run again."
            )
        if manifest is None:
            size = shard_size or self.shard_size
            # An entry whose manifest was lost keeps its shards only if they match the size.
            manifest = {
                **fields,
                "key": key,
                "shard_size": size,
                "created": _now(),
                "complete": False,
                "first_prompt": _preview(prompts[0]),
            }
        size = int(manifest["shard_size"])
        n = len(prompts)
        ranges = [(a, min(a + size, n)) for a in range(0, n, size)]
        manifest["n_shards"] = len(ranges)
        return _Entry(entry, manifest, prompts, labels, settings, alphas, ranges, name, lm, load, dict(lens_kwargs))

    # ---- shards --------------------------------------------------------------------------------

    def _read_shard(self, e: _Entry, i: int) -> Profiles | None:
        """Shard ``i`` of entry ``e`` from disk, or None when it is missing or not valid."""
        a, b = e.ranges[i]
        path = e.path / _shard_name(a, b)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
            stamp = _read_stamp(table)
            problem = None
            if stamp is None:
                problem = "no valid stamp (written by another program or an older version)"
            elif stamp["key"] != e.manifest["key"]:
                problem = f"the rows of another cache entry (key {str(stamp['key'])[:20]}...)"
            elif stamp["range"] != [a, b]:
                problem = f"prompts {stamp['range'][0]}-{stamp['range'][1]} of its entry, not {a}-{b}"
            elif shard_sha256(table) != stamp["sha256"]:
                problem = "values that do not match its checksum (the file is corrupted)"
            if problem:
                warnings.warn(f"Cache shard {path} holds {problem}; computing it again.")
                return None
            prof = Profiles.from_arrow(table)
        except Exception as err:  # unreadable: truncated, foreign or corrupted file
            warnings.warn(f"Cache shard {path} cannot be read ({type(err).__name__}: {err}); computing it again.")
            return None
        return self._check_rows(path, prof, e.prompts[a:b], e.settings, e.alphas)

    @staticmethod
    def _check_rows(path: Path, prof: Profiles, prompts: list, settings: GenerationSettings, alphas: tuple) -> Profiles | None:
        problem = None
        if prof.n != len(prompts):
            problem = f"{prof.n} rows for {len(prompts)} prompts"
        elif prof.n_tokens != settings.max_new_tokens:
            problem = f"{prof.n_tokens} tokens, not {settings.max_new_tokens}"
        elif prof.alphas != alphas:
            problem = f"alphas {prof.alphas}, not {alphas}"
        elif any(isinstance(p, str) and p != q for p, q in zip(prompts, prof.meta["prompt"])):
            problem = "other prompts"
        if problem:
            warnings.warn(f"Cache shard {path} holds {problem}; computing it again.")
            return None
        return prof

    # ---- inspection and cleaning ---------------------------------------------------------------

    def entries(self) -> pd.DataFrame:
        """One row per cache entry: what it holds, how far it got, its size on disk."""
        columns = [
            "model", "n_prompts", "shards_done", "n_shards", "complete", "dtype", "max_new_tokens",
            "do_sample", "temperature", "top_k", "top_p", "seed", "alphas", "labels", "tag",
            "library_version", "created", "updated", "bytes", "key", "path",
        ]  # fmt: skip
        rows = []
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if not entry.is_dir():
                    continue
                m = _read_manifest(entry)
                if m is None:
                    continue
                try:
                    rows.append(self._entry_row(entry, m))
                except (TypeError, ValueError, AttributeError, KeyError) as err:
                    warnings.warn(f"Cache entry {entry} has a damaged manifest ({type(err).__name__}: {err}); not listed.")
        return pd.DataFrame(rows, columns=columns)

    @staticmethod
    def _entry_row(entry: Path, m: dict[str, Any]) -> dict[str, Any]:
        """One row of :meth:`entries` from an entry's manifest (raises on a damaged one)."""
        size = int(m.get("shard_size", 0))
        if size < 1:
            raise ValueError(f"shard_size {size}")
        n = int(m.get("n_prompts", 0))
        expected = {_shard_name(a, min(a + size, n)) for a in range(0, n, size)}
        done = sum((entry / f).is_file() for f in expected)
        s = m.get("settings") or {}
        return {
            "model": m.get("model"),
            "n_prompts": n,
            "shards_done": done,
            "n_shards": len(expected),
            "complete": done == len(expected) and len(expected) > 0,
            "dtype": m.get("dtype"),
            "max_new_tokens": s.get("max_new_tokens"),
            "do_sample": s.get("do_sample"),
            "temperature": s.get("temperature"),
            "top_k": s.get("top_k"),
            "top_p": s.get("top_p"),
            "seed": s.get("seed"),
            "alphas": tuple(float(a) for a in m.get("alphas", [])),
            "labels": m.get("labels_sha256") is not None,
            "tag": m.get("tag"),
            "library_version": m.get("library_version"),
            "created": m.get("created"),
            "updated": m.get("updated"),
            "bytes": sum(f.stat().st_size for f in entry.iterdir() if f.is_file()),
            "key": m.get("key"),
            "path": str(entry),
        }

    def clear(self, model: str | os.PathLike[str] | LensModel | None = None) -> int:
        """Delete the entries of ``model`` (its name as given), or every entry (``None``).

        With ``model=None`` entry directories without a readable manifest are deleted too; a
        folder that is not an entry (no manifest, and not named as entries are) is left alone
        with a warning. Returns the number of entries deleted.
        """
        if not self.root.is_dir():
            return 0
        name = None
        if model is not None:
            name = model.name if isinstance(model, LensModel) else os.fspath(model)
        removed = 0
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir():
                continue
            m = _read_manifest(entry)
            if name is None and m is None and not _ENTRY_DIR.match(entry.name):
                warnings.warn(f"{entry} is not a profile cache entry (no manifest, not an entry's name): not deleted.")
                continue
            if name is None or (m is not None and m.get("model") == name):
                shutil.rmtree(entry)
                removed += 1
        return removed


def _shard_name(a: int, b: int) -> str:
    return f"prompts-{a:06d}-{b:06d}.parquet"


def shard_sha256(table: pa.Table) -> str:
    """SHA-256 (hex) of a profiles table's values, its schema metadata left out.

    Covers the schema metadata but the stamp (the profiles header with T, L and the orders,
    pandas' column types), every column's name and logical type, the ``entropy`` column's float32 values as bytes (C order)
    and every other column's values as JSON: the same rows give the same digest however the
    table is chunked, and after a Parquet round trip (which may rename list fields or read a
    dictionary column back as plain values).
    """
    h = hashlib.sha256()
    h.update(str(table.num_rows).encode())
    # the schema metadata (the profiles header, pandas' column types) rebuilds the rows: covered too
    for key, value in sorted((table.schema.metadata or {}).items()):
        if key != _STAMP:
            h.update(key + b"\0" + value + b"\0")
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        h.update(json.dumps([name, _type_text(col.type)]).encode())
        if pa.types.is_fixed_size_list(col.type):
            for chunk in col.chunks:
                values = chunk.flatten().to_numpy(zero_copy_only=False)
                h.update(np.ascontiguousarray(values).tobytes())
        else:
            h.update(json.dumps(col.to_pylist(), default=str).encode())
    return h.hexdigest()


def _type_text(t: pa.DataType) -> str:
    """An Arrow type without its list fields' names (Parquet reads ``item`` back as ``element``)."""
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list<{_type_text(t.value_type)}>[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type_text(t.value_type)}>"
    if pa.types.is_dictionary(t):
        return _type_text(t.value_type)
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {_type_text(f.type)}" for f in t) + ">"
    return str(t)


def _write_shard(path: Path, shard: Profiles, key: str, span: tuple[int, int]) -> Path:
    """Write ``shard`` atomically to ``path`` with its stamp (entry key, range, values' digest)."""
    table = shard.to_arrow()
    stamp = {"key": key, "range": [int(span[0]), int(span[1])], "sha256": shard_sha256(table)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _STAMP: json.dumps(stamp).encode()})
    with atomic_file(path, "wb") as fh:
        pq.write_table(table, fh)
    return path


def _read_stamp(table: pa.Table) -> dict[str, Any] | None:
    """A shard's stamp, or None when it has none or it is not well formed."""
    try:
        stamp = json.loads((table.schema.metadata or {})[_STAMP])
    except (KeyError, ValueError):
        return None
    ok = (
        isinstance(stamp, dict)
        and isinstance(stamp.get("key"), str)
        and isinstance(stamp.get("sha256"), str)
        and isinstance(stamp.get("range"), list)
        and len(stamp["range"]) == 2
    )
    return stamp if ok else None


def _check_shard_size(size: Any) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ElensError(f"shard_size must be an integer >= 1; got {size!r}.")


def _preview(prompt: Any, width: int = 80) -> str:
    text = prompt if isinstance(prompt, str) else f"<token ids {list(prompt)[:8]}...>"
    return text if len(text) <= width else text[: width - 3] + "..."

