"""Shared test set-up: offline Hugging Face, the Triton interpreter on CPU, tiny model fixtures,
and a marker per folder of tests:

- ``tests/unit``: no model is loaded and no notebook run; seconds in all
  (``pytest tests/unit`` or ``make test-unit``);
- ``tests/integration``: tiny, untrained, zoo and GGUF models, the kernels, the benchmark, the
  command lines, faults injected into whole runs;
- ``tests/book``: chapters executed with papermill, the book built and its pages checked in Chromium.

``pytest -m unit`` (``integration``, ``book``) selects the same sets by marker."""

import os

# Nothing in the tests may reach the Hugging Face Hub: every model is a local tiny one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

if not torch.cuda.is_available():
    # Without a GPU, Triton kernels run in its interpreter. Triton reads TRITON_INTERPRET when
    # kernels are decorated (@triton.jit runs at import of the kernel module, and of triton
    # itself), so it must be set before any kernel module is imported: conftest.py is loaded
    # before every test module. (`import torch` above does not import triton.)
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from elens_utils.models.tiny import ARCHS, build_all  # noqa: E402  (pytest puts tests/ on sys.path)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{arch: directory}`` of every tiny model in :data:`tiny_models.ARCHS`, built once per
    session (about a second). Treat the directories as read-only: copy one to modify it."""
    return build_all(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(params=ARCHS, ids=ARCHS)
def tiny_model_dir(request: pytest.FixtureRequest, tiny_model_dirs: dict[str, Path]) -> Path:
    """The directory of one tiny model; a test using it runs once per architecture
    (test ids ``[gpt2]``, ``[llama]``, ...). The arch is ``tiny_model_dir.name``."""
    return tiny_model_dirs[request.param]


@pytest.fixture(scope="session")
def lens_model(tiny_model_dirs: dict[str, Path]):
    """Cached loader of the tiny models: ``lens_model(arch, dtype="float32") -> LensModel``."""
    from elens_utils import load_model

    cache = {}

    def get(arch: str, dtype: str = "float32"):
        if (arch, dtype) not in cache:
            cache[arch, dtype] = load_model(tiny_model_dirs[arch], dtype=dtype)
        return cache[arch, dtype]

    return get


_FOLDER_MARKERS = ("unit", "integration", "book")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the folder it lives in (``unit``, ``integration`` or ``book``)."""
    for item in items:
        folder = item.path.parent.name
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
