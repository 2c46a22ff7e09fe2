"""What each chapter's run found: the closing bullets and the introduction's headline.

One module per chapter (``profile``, ``families``, ``task_type``, ``output_format``,
``skipping``, ``correctness``, ``robustness``), each with a ``findings(...)`` that takes the
chapter's computed frames and parameters and returns a :class:`~elens_utils.findings.base.Findings`:
the Markdown bullets the chapter prints under "What this run measured", and the verdict and
detail that :func:`elens_utils.book.headlines.publish` pastes into the introduction's table.
The notebooks keep the prose around them; the thresholds behind every verdict live here,
where tests can reach them.
"""

from elens_utils.findings.base import Findings, tally

__all__ = ["Findings", "tally"]
