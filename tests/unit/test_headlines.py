"""The introduction's table of claims: each chapter's headline, glued into its notebook."""

from __future__ import annotations

import pytest

from elens_utils.book import headlines
from elens_utils.core.errors import ElensError
from elens_utils.findings.base import tally


def test_tally_counts_in_the_given_order_then_by_frequency():
    verdicts = ["at chance", "at ceiling", "no evidence", "at chance", "above 0.9", "no evidence", "at chance"]
    assert tally(verdicts, order=["at ceiling", "above 0.9"]) == (
        "1 at ceiling, 1 above 0.9, 3 at chance, 2 no evidence"
    )
    assert tally(verdicts) == "3 at chance, 2 no evidence, 1 above 0.9, 1 at ceiling"
    assert tally([]) == "none"
    assert tally(["x"], order=["y", "x", "y"]) == "1 x"  # names not present are skipped
    assert headlines.tally is tally  # its former home still serves users' imports


def test_headline_html_escapes_and_refuses_an_empty_verdict():
    assert headlines.headline_html("at ceiling", "AUC 0.99 < 1 & more") == (
        "<strong>at ceiling</strong>: AUC 0.99 &lt; 1 &amp; more"
    )
    assert headlines.headline_html("<b>", "") == "<strong>&lt;b&gt;</strong>"
    with pytest.raises(ElensError, match="verdict is empty"):
        headlines.headline_html("  ", "detail")


def test_publish_glues_html_under_the_headline_key(monkeypatch):
    import IPython.display

    glued = []
    monkeypatch.setattr("myst_nb.glue", lambda key, value, display=True: glued.append((key, value, display)))
    text = headlines.publish("2 at chance", "8 models")
    assert text == "<strong>2 at chance</strong>: 8 models"
    ((key, value, display),) = glued
    assert key == headlines.HEADLINE_KEY and display is False
    assert isinstance(value, IPython.display.HTML) and value.data == text


def test_knn_verdicts_tally_in_the_order_of_their_rule():
    from elens_utils.analysis.comparison import knn_verdict, knn_verdict_names

    made_up = [  # (AUC, sd, dummy, p): at ceiling, above 0.9, below 0.9, at chance, no evidence
        (0.995, 0.004, 0.5, 1e-9), (0.95, 0.02, 0.5, 1e-6), (0.95, 0.02, 0.5, 1e-6), (0.7, 0.05, 0.5, 1e-3),
        (0.51, 0.05, 0.5, 0.7), (0.62, 0.05, 0.5, 0.2),
    ]  # fmt: skip
    verdicts = [knn_verdict(*row) for row in made_up]
    assert set(verdicts) <= set(knn_verdict_names())
    assert tally(reversed(verdicts), order=knn_verdict_names()) == (
        "1 at ceiling, 2 above 0.9, 1 above chance but below 0.9, 1 at chance, 1 no evidence"
    )
    assert knn_verdict_names(0.8)[1:3] == ("above 0.8", "above chance but below 0.8")
