"""Drawing a chart: its Vega-Lite spec with the book's theme, the offline HTML snippet the book's
pages draw with the local Vega bundle (and its phone layout), SVG, and notebook display."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

import altair as alt

from elens_utils.core.atomic import atomic_file
from elens_utils.viz import chart_reflow
from elens_utils.viz.theme import CHART_CLASS, VEGALITE_VERSION

# ---------------------------------------------------------------------------------------------
# rendering


def chart_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec (a dict) with the book's theme applied, validated by altair."""
    with alt.theme.enable("elens"):
        return chart.to_dict(validate=True)


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</``, no ``<!--``)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_counter = itertools.count()

# The drawing script: no global but the container's own id; waits until the page (and the
# deferred bundle) has loaded; shows a plain message instead of failing silently.
_SCRIPT = """(function () {
  var id = %(id)s;
  function draw() {
    var el = document.getElementById(id);
    var src = document.getElementById(id + "-spec");
    var narrow = document.getElementById(id + "-narrow");
    if (!el || !src || el.getAttribute("data-state")) { return; }
    if (typeof window.vegaEmbed !== "function") {
      el.setAttribute("data-state", "no-library");
      el.textContent = "(This interactive chart needs the book's local Vega bundle, which was not loaded.)";
      return;
    }
    el.setAttribute("data-state", "drawing");
    var spec = JSON.parse(src.textContent);
    // a phone's column: the same chart laid out for it (chart_reflow.narrow_spec), same data
    if (narrow && el.clientWidth < %(breakpoint)d) {
      var wide = spec;
      spec = JSON.parse(narrow.textContent);
      spec.datasets = wide.datasets;
      el.setAttribute("data-layout", "narrow");
    } else {
      el.setAttribute("data-layout", "wide");
    }
    window.vegaEmbed(el, spec, {mode: "vega-lite", renderer: "svg", actions: false})
      .then(function () { el.setAttribute("data-state", "drawn"); })
      .catch(function (err) {
        el.setAttribute("data-state", "error");
        el.textContent = "Chart error: " + err;
      });
  }
  if (document.readyState === "complete") { draw(); }
  else { window.addEventListener("load", draw); }
})();"""


def to_html(chart: alt.TopLevelMixin) -> str:
    """An HTML snippet that draws ``chart`` with the page's ``vegaEmbed`` (no library inside).

    The snippet is a ``div.elens-chart`` container, the spec in a ``<script
    type="application/json">``, its phone layout (:func:`elens_utils.viz.chart_reflow.narrow_spec`,
    without the data) in another, and a small script in its own function scope that draws once
    the page has loaded (the bundle is loaded with ``defer``): the phone layout when the
    container is narrower than :data:`~elens_utils.viz.chart_reflow.NARROW_BREAK` px, the spec
    otherwise (``data-layout`` says which). The container gets ``data-state="drawn"`` when done,
    ``"error"`` or ``"no-library"`` otherwise. Ids are derived from the spec (and a counter), so
    re-running a notebook gives the same HTML.
    """
    spec = chart_spec(chart)
    spec.pop("$schema", None)  # a URL nothing fetches; the mode is given to vegaEmbed instead
    body = _json_for_script(spec)
    digest = hashlib.sha1(body.encode()).hexdigest()[:10]
    cid = f"elens-chart-{digest}-{next(_counter)}"
    narrow = _json_for_script(chart_reflow.narrow_spec(spec))
    script = _SCRIPT % {"id": json.dumps(cid), "breakpoint": chart_reflow.NARROW_BREAK}
    return (
        f'<div class="{CHART_CLASS}" id="{cid}" style="max-width:100%"></div>\n'
        f'<script type="application/json" id="{cid}-spec">{body}</script>\n'
        f'<script type="application/json" id="{cid}-narrow">{narrow}</script>\n'
        f"<script>{script}</script>"
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart drawn as SVG by vl-convert (offline; no interactivity)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart_spec(chart), vl_version=VEGALITE_VERSION)


def show(chart: alt.TopLevelMixin, *, static: bool | None = None) -> None:
    """Display a chart in the current notebook, the way the current context needs.

    * ``ELENS_CHART_MODE=book`` (set by the chapter runner): :func:`to_html`, drawn in the
      book by its single local Vega bundle.
    * ``static=True`` or ``ELENS_CHART_MODE=svg``: an SVG image (vl-convert).
    * otherwise (interactive Jupyter): the altair chart itself, rendered by Jupyter's own
      Vega-Lite support, with the book's theme.
    """
    from IPython.display import display

    mode = os.environ.get("ELENS_CHART_MODE", "")
    if static or (static is None and mode == "svg"):
        display({"image/svg+xml": to_svg(chart), "text/plain": "<chart (svg)>"}, raw=True)
    elif mode == "book":
        display({"text/html": to_html(chart), "text/plain": "<interactive chart>"}, raw=True)
    else:
        with alt.theme.enable("elens"):
            display(chart)


def write_vega_bundle(path: str | os.PathLike[str]) -> Path:
    """Write the single Vega + Vega-Lite + vega-embed bundle the book's charts draw with.

    Made by vl-convert for the Vega-Lite version altair writes (:data:`VEGALITE_VERSION`),
    wrapped in a function scope so that only ``window.vegaEmbed``, ``window.vega`` and
    ``window.vegaLite`` are defined (the raw bundle declares top-level constants, which clash
    between classic scripts). Written atomically; returns the path.
    """
    import vl_convert as vlc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    code = vlc.javascript_bundle(vl_version=VEGALITE_VERSION)
    header = (
        f"/* Vega {vlc.get_vega_version()}, Vega-Lite {VEGALITE_VERSION}, vega-embed "
        f"{vlc.get_vega_embed_version()}: bundled by vl-convert-python for the Entropy-Lens book. */\n"
    )
    with atomic_file(path) as fh:
        fh.write(header + "(function () {\n" + code + "\n})();\n")
    return path
