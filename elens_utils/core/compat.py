"""Names of the library's former flat modules, kept for code written against them."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def forward_names(package: str, former: ModuleType) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``, a subpackage that took the name of a former
    module: any name the package lacks is looked up in ``former``, the module it became."""

    def __getattr__(name: str) -> Any:
        try:
            return getattr(former, name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__
