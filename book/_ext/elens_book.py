"""Sphinx extension of the Entropy-Lens book: local chart library and MathJax, page by page.

* Pages that hold a chart (an element of class ``elens-chart``, emitted by
  ``elens_utils.viz.charts.to_html``) get the book's single local Vega bundle
  (``_static/elens/vega-bundle.js``), loaded once with ``defer``; other pages load nothing.
* The build fails early, with the command that fixes it, when a local asset the pages refer to
  (the Vega bundle, the MathJax file of ``mathjax_path``) is missing from ``html_static_path``:
  the book never falls back to a CDN.
* Thebe (live code through Binder, which this book does not use) is taken out of every page:
  sphinx-thebe, always loaded by jupyter-book, adds an inline script naming its CDN bundle
  (twice, so the page logs "THEBE_JS_URL has already been declared"), its loader, and a
  Binder configuration block.
* A small stylesheet for the parameters table.

Kept free of ``elens_utils`` imports (torch), so the build stays light.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

CHART_CLASS = "elens-chart"  # = elens_utils.viz.charts.CHART_CLASS
VEGA_BUNDLE = "elens/vega-bundle.js"  # = elens_utils.viz.charts.VEGA_BUNDLE
_HERE = Path(__file__).parent


def _add_own_static(app: Sphinx, config) -> None:
    config.html_static_path.append(str(_HERE / "static"))


def _check_assets(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    roots = [Path(app.confdir, p) for p in app.config.html_static_path]
    wanted = [VEGA_BUNDLE]
    mathjax = app.config.mathjax_path or ""
    if "://" in mathjax or mathjax.startswith("//"):
        raise ExtensionError(
            f"mathjax_path is a URL ({mathjax}): the book serves MathJax from a local copy. "
            "Set it to a path inside html_static_path (see _config.yml) and run `make assets`."
        )
    if mathjax:
        wanted.append(mathjax)
    for rel in wanted:
        if not any((root / rel).is_file() for root in roots):
            raise ExtensionError(
                f"Local asset '{rel}' not found in html_static_path {[str(r) for r in roots]}: "
                "run `make assets` (it fetches MathJax from npm and writes the Vega bundle)."
            )


_THEBE_CONFIG = re.compile(r'\s*<script type="text/x-thebe-config">.*?</script>', re.DOTALL)


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", js) or "")
    body = str(getattr(js, "attributes", {}).get("body", ""))
    return "thebe" in name.lower() or "THEBE_JS_URL" in body


def _page_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if f'class="{CHART_CLASS}"' in (context.get("body") or ""):
        app.add_js_file(VEGA_BUNDLE, loading_method="defer")
    scripts = context.get("script_files")
    if scripts is not None:  # the builder restores its own list after each page
        scripts[:] = [js for js in scripts if not _is_thebe(js)]
    styles = context.get("css_files")
    if styles is not None:
        styles[:] = [css for css in styles if "thebe" not in str(getattr(css, "filename", css) or "")]
    if context.get("body"):
        context["body"] = _THEBE_CONFIG.sub("", context["body"])


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_own_static)
    app.connect("builder-inited", _check_assets)
    app.connect("html-page-context", _page_assets, priority=900)  # after the theme's handlers
    app.add_css_file("elens-book.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
