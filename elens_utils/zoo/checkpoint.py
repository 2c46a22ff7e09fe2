"""A zoo model's directory: its metadata file, the library versions recorded in it
(:func:`~elens_utils.core.provenance.model_versions`), and the atomic write of a checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elens_utils.core.atomic import atomic_file
from elens_utils.core.provenance import model_versions as versions  # noqa: F401 (the zoo's name for it)
from elens_utils.data.synthetic import build_tokenizer

METADATA_FILE = "zoo_model.json"


def save_atomically(model, out_dir: Path, meta: Mapping[str, Any]) -> None:
    """Write ``model``, the zoo's tokenizer and ``meta`` (:data:`METADATA_FILE`) to ``out_dir``: into a
    temporary directory beside it, then renamed into place (an existing ``out_dir`` is replaced)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    old = None
    try:
        model.save_pretrained(tmp)
        build_tokenizer().save_pretrained(tmp)
        write_meta(tmp, meta)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """Write ``meta`` as the metadata of the zoo model in directory ``path`` (:data:`METADATA_FILE`,
    atomically)."""
    with atomic_file(path / METADATA_FILE) as fh:
        fh.write(json.dumps(meta, indent=1) + "\n")


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of the zoo model in directory ``path`` (:data:`METADATA_FILE`), or ``{}``."""
    f = path / METADATA_FILE
    return json.loads(f.read_text()) if f.exists() else {}
