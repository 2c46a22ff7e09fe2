"""Names of the models the project embeds, resolved to directories that ``load_model`` reads.

``tiny/ARCH`` or ``tiny/ARCH-NL`` (e.g. ``tiny/llama-4L``) is a tiny random-weight model of a real
architecture (:mod:`elens_utils.models.tiny`), built on first use into the cache directory
(``$ELENS_CACHE``, default ``~/.cache/elens``) and reused afterwards.

``zoo/FAMILY-NL`` (e.g. ``zoo/llama-8L``) is a model of the embedded zoo: small models of four real
architectures trained by the project (:mod:`elens_utils.zoo.training`), shipped in the repository's
``zoo/`` directory (``$ELENS_ZOO`` points elsewhere).

``untrained/FAMILY-NL`` (e.g. ``untrained/llama-4L``) is the zoo's architecture and tokenizer with
random weights (:func:`elens_utils.models.tiny.build_untrained_model`), built on first use into
the cache directory like the tiny models: a stand-in for ``zoo/FAMILY-NL`` that reads the story
world's prompts (which the tiny models' vocabularies do not cover) but has learned nothing.

``real/NAME`` (``real/smollm2-135m-instruct``, ``real/gemma3-270m``) is a real pretrained model
that installs from the package registry as a GGUF file (:mod:`elens_utils.models.real_models`), and any
path ending in ``.gguf`` is a GGUF file (llama.cpp, Ollama): both are converted once into a
``save_pretrained`` directory in the cache directory, keyed by the file's SHA-256
(:mod:`elens_utils.models.gguf_convert`).

Any other name is passed through unchanged: a Hub id or a local directory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from elens_utils.core.errors import ElensError
from elens_utils.core.paths import cache_dir  # re-exported: its old home

__all__ = ["cache_dir", "check_model_name", "resolve_model", "zoo_dir"]

_TINY = re.compile(r"^tiny/(?P<arch>[a-z0-9_]+?)(?:-(?P<layers>\d+)L)?$")
_ZOO = re.compile(r"^zoo/(?P<name>[a-z0-9]+-\d+L)$")
_UNTRAINED = re.compile(r"^untrained/(?P<family>[a-z0-9]+)-(?P<layers>\d+)L$")


def zoo_dir() -> Path:
    """The embedded zoo's directory: ``$ELENS_ZOO``, or ``zoo/`` at the root of this checkout."""
    return Path(os.environ.get("ELENS_ZOO", Path(__file__).resolve().parents[2] / "zoo"))


def resolve_zoo(name: str) -> str | None:
    """The directory of the zoo model ``zoo/NAME`` (under :func:`zoo_dir`), or None when ``name`` is not a zoo name."""
    match = _ZOO.match(name)
    if not match:
        return None
    target = zoo_dir() / match["name"]
    if not (target / "config.json").exists():
        have = sorted(p.parent.name for p in zoo_dir().glob("*/config.json"))
        raise ElensError(
            f"No zoo model '{name}' in {zoo_dir()} (it has: {', '.join(have) or 'none'}). The zoo "
            "ships with the repository: run from a clone, set ELENS_ZOO to its zoo/ directory, or "
            "train it with `make zoo`."
        )
    return str(target)


def resolve_model(name: str) -> str:
    """A Hub id or directory for ``name``; embedded names are built on first use.

    Raises:
        ElensError: for a ``tiny/...`` name of an unknown architecture, an ``untrained/...``
            name of an unknown family, a ``zoo/...`` model that is not in the zoo directory, a
            ``real/...`` model whose package is not installed, or a ``.gguf`` path that is not a
            GGUF file transformers can read.
    """
    zoo = resolve_zoo(name)
    if zoo is not None:
        return zoo
    if name.startswith("real/"):
        from elens_utils.models.real_models import resolve_real_model

        return resolve_real_model(name)
    if name.lower().endswith(".gguf"):
        from elens_utils.models.gguf_convert import convert_gguf

        return str(convert_gguf(name))
    untrained = _UNTRAINED.match(name)
    if untrained:
        from elens_utils.models.tiny import build_untrained_model

        family, layers = untrained["family"], int(untrained["layers"])
        _check_untrained(name, family, layers)
        return _build_once(cache_dir() / "untrained" / f"{family}-{layers}L", lambda d: build_untrained_model(family, d, n_layers=layers))
    match = _TINY.match(name)
    if not match:
        return name
    from elens_utils.models.tiny import build_tiny_model

    arch, layers = match["arch"], int(match["layers"] or 3)
    _check_tiny(name, arch, layers)
    return _build_once(cache_dir() / "tiny" / f"{arch}-{layers}L", lambda d: build_tiny_model(arch, d, n_layers=layers))


def check_model_name(name: str) -> None:
    """Check an embedded model name without building or loading anything (cheap, for checks
    before a run): ``zoo/NAME`` must be in the zoo, ``tiny/ARCH[-NL]`` and ``untrained/FAMILY-NL``
    must name a known architecture or family and 1..64 layers; other names pass.

    Raises:
        ElensError: for an empty name or one of the cases above.
    """
    if not isinstance(name, str) or not name.strip():
        raise ElensError("An empty model name: give a Hub id, a directory, a .gguf file or an embedded name.")
    resolve_zoo(name)
    if name.startswith("zoo/") and not _ZOO.match(name):
        raise ElensError(f"Unknown zoo model '{name}': use zoo/FAMILY-NL (zoo/CARD.md lists them).")
    untrained, tiny = _UNTRAINED.match(name), _TINY.match(name)
    if name.startswith("untrained/") and not untrained:
        raise ElensError(f"Unknown untrained model '{name}': use untrained/FAMILY-NL.")
    if untrained:
        _check_untrained(name, untrained["family"], int(untrained["layers"]))
    if name.startswith("tiny/") and not tiny:
        raise ElensError(f"Unknown tiny model '{name}': use tiny/ARCH or tiny/ARCH-NL.")
    if tiny:
        _check_tiny(name, tiny["arch"], int(tiny["layers"] or 3))


def _check_untrained(name: str, family: str, layers: int) -> None:
    from elens_utils.models.zoo_arch import ZOO_FAMILIES

    if family not in ZOO_FAMILIES:
        raise ElensError(f"Unknown untrained model '{name}': use untrained/FAMILY-NL with FAMILY one of {', '.join(ZOO_FAMILIES)}.")
    if not 1 <= layers <= 64:
        raise ElensError(f"Untrained model '{name}': the number of layers must lie in 1..64.")


def _check_tiny(name: str, arch: str, layers: int) -> None:
    from elens_utils.models.tiny import ARCHS

    if arch not in ARCHS:
        raise ElensError(f"Unknown tiny model '{name}': use tiny/ARCH or tiny/ARCH-NL with ARCH one of {', '.join(ARCHS)}.")
    if not 1 <= layers <= 64:
        raise ElensError(f"Tiny model '{name}': the number of layers must lie in 1..64.")


def _build_once(target: Path, build) -> str:
    """``target`` as a string, built by ``build(directory)`` first if it holds no model yet."""
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target and rename, so an interrupted build never leaves half a model.
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(tmp)
            try:
                tmp.rename(target)
            except OSError:  # built concurrently by another process: keep theirs
                if not (target / "config.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
