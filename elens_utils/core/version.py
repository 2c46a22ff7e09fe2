"""The library's version (the installed distribution's, or ``0+unknown`` in a bare source tree)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("elens-utils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
