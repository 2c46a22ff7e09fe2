"""One line per chapter for the introduction's table of the paper's claims.

Each chapter's closing cell calls :func:`publish` with a verdict (a few words that come from
the chapter's tested verdict functions: ``"at ceiling"``, ``"no evidence"``, ...) and one
sentence with the numbers behind it. :func:`publish` glues the line into the executed
notebook under the key :data:`HEADLINE_KEY` (MyST-NB's ``glue``, not shown on the chapter's
page), and the introduction pastes it into its table with
``{glue}`01_entropy_profile.ipynb::headline```, so the table shows what this build measured.
"""

from __future__ import annotations

import html

from elens_utils.core.errors import ElensError
from elens_utils.findings.base import tally  # noqa: F401  (a public name here before it moved: users' code imports it)

__all__ = ["HEADLINE_KEY", "headline_html", "publish"]  # tally: documented in findings.base

#: The glue key of a chapter's headline (the introduction's table pastes it).
HEADLINE_KEY = "headline"


def headline_html(verdict: str, detail: str) -> str:
    """``<strong>verdict</strong>: detail`` as escaped HTML (the verdict must not be empty)."""
    verdict, detail = str(verdict).strip(), str(detail).strip()
    if not verdict:
        raise ElensError("headline_html(): the verdict is empty; give the words the chapter's verdict function returned.")
    text = f"<strong>{html.escape(verdict)}</strong>"
    return f"{text}: {html.escape(detail)}" if detail else text


def publish(verdict: str, detail: str, *, key: str = HEADLINE_KEY) -> str:
    """Glue the chapter's headline into the executed notebook (hidden on the chapter's page)
    and return its HTML. Without MyST-NB (a notebook run outside the book) nothing is glued."""
    from IPython.display import HTML

    text = headline_html(verdict, detail)
    try:
        from myst_nb import glue
    except ImportError:  # only the book reads the glue
        return text
    glue(key, HTML(text), display=False)
    return text
