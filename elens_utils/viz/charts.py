"""Charts of the Entropy-Lens book: every chart, frame, table and renderer under one name.

The pieces live in :mod:`~elens_utils.viz.theme`, :mod:`~elens_utils.viz.frames`,
:mod:`~elens_utils.viz.tables`, :mod:`~elens_utils.viz.render` and the charts of each part of the
book (:mod:`~elens_utils.viz.profile_charts`, :mod:`~elens_utils.viz.family_charts`,
:mod:`~elens_utils.viz.knn_charts`, :mod:`~elens_utils.viz.intervention_charts`); this module
gathers them, so that a chapter writes ``charts.profile_heatmap(...)``.

Three layers, each usable alone:

* **Frames** turn library results into tidy :class:`pandas.DataFrame` s, one row per mark:
  :func:`lens_frame` (a :class:`~elens_utils.lens.capture.PromptLens`: one row per position x block),
  :func:`curve_frame` (one position's entropy per block and order, with the change dH between
  consecutive blocks) and :func:`depth_frame` (profiles averaged per model against relative
  depth).
* **Charts** take those frames and return altair charts: :func:`profile_heatmap`,
  :func:`shannon_vs_renyi`, :func:`expansion_pruning`, :func:`profiles_by_depth`. They all use
  the book's theme (:data:`THEME`, applied when a chart is rendered) and carry tooltips.
* **Rendering**: :func:`show` displays a chart in a notebook. Under the chapter runner
  (``ELENS_CHART_MODE=book``) it emits :func:`to_html`: a small HTML snippet (a ``div``, the
  Vega-Lite spec as JSON, and a self-contained script that waits for the page to load) that
  draws with ``vegaEmbed`` from the book's single local copy of the Vega bundle (see
  :func:`write_vega_bundle`; the book's Sphinx extension adds it to pages that hold a chart).
  Nothing is fetched from the network and no chart library is copied into a page. Elsewhere
  (plain Jupyter) it displays the altair chart itself. ``static=True`` (or
  ``ELENS_CHART_MODE=svg``) draws an SVG with vl-convert instead.

:func:`parameters_table` shows the parameters a chapter ran with as a small table.
"""

from __future__ import annotations

# ruff: noqa: F401
from elens_utils.entropy.stats import order_label  # re-exported: its old home
from elens_utils.viz.family_charts import (
    DEPTH_MODE_NAMES,
    auc_by_setting,
    auc_tests_chart,
    embedding_frame,
    embedding_scatter,
    permutation_chart,
    profiles_by_family,
)
from elens_utils.viz.frames import (
    curve_frame,
    depth_frame,
    depth_summary,
    lens_frame,
)
from elens_utils.viz.intervention_charts import (
    STRATEGY_COLOURS,
    block_dh_bars,
    correctness_auc_chart,
    mc_accuracy_bars,
    overlap_by_depth,
    profiles_by_outcome,
    skip_accuracy,
    spearman_by_model,
    sublayer_accuracy,
)
from elens_utils.viz.knn_charts import (
    entropy_by_window,
    knn_scores_by_model,
    knn_scores_heatmap,
    profiles_by_label,
)
from elens_utils.viz.profile_charts import (
    expansion_pruning,
    profile_heatmap,
    profiles_by_depth,
    shannon_vs_renyi,
)
from elens_utils.viz.render import (
    chart_spec,
    show,
    to_html,
    to_svg,
    write_vega_bundle,
)
from elens_utils.viz.tables import (
    ParametersTable,
    fmt_range,
    parameters_table,
    summary_table,
)
from elens_utils.viz.theme import (
    CHART_CLASS,
    FACET_COLUMNS,
    FACET_PANEL_WIDTH,
    FONT,
    THEME,
    VEGA_BUNDLE,
    VEGALITE_VERSION,
    ceiling_band,
    json_safe,
    mean_band_layers,
    need_columns,
)

__all__ = [
    "CHART_CLASS",
    "THEME",
    "VEGA_BUNDLE",
    "ParametersTable",
    "chart_spec",
    "curve_frame",
    "depth_frame",
    "depth_summary",
    "expansion_pruning",
    "fmt_range",
    "lens_frame",
    "order_label",
    "parameters_table",
    "profile_heatmap",
    "profiles_by_depth",
    "shannon_vs_renyi",
    "show",
    "summary_table",
    "to_html",
    "to_svg",
    "write_vega_bundle",
    "spearman_by_model", "overlap_by_depth", "block_dh_bars", "skip_accuracy", "sublayer_accuracy",  # chapter 5
    "correctness_auc_chart", "mc_accuracy_bars", "profiles_by_outcome",  # chapter 6
    "knn_scores_by_model", "knn_scores_heatmap", "profiles_by_label", "entropy_by_window",  # chapters 3 and 4
    "DEPTH_MODE_NAMES", "profiles_by_family", "embedding_frame", "embedding_scatter", "auc_tests_chart", "auc_by_setting", "permutation_chart",  # chapters 2 and 7
]

