"""elens_utils: entropy profiles of language models through the logit lens.

The library behind the Entropy-Lens book (a reproducible companion to arXiv 2502.16570).
"""

from importlib.metadata import PackageNotFoundError, version

from .entropy import dense_entropy, lens_entropy
from .errors import ElensError

try:
    __version__ = version("elens-utils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["ElensError", "dense_entropy", "lens_entropy", "__version__"]
