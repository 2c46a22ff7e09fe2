"""The one exception users see: a problem with their input, and what to do about it."""

from __future__ import annotations

__all__ = ["ElensError"]


class ElensError(ValueError):
    """A user-facing error: the message names the problem and the fix.

    The command line prints the message alone (no traceback) and exits with status 2.
    Subclasses ``ValueError`` so generic callers that catch bad values still catch it.
    """
