"""``harness report``: one self-contained report across sweeps, hosts and builds.

The layers, each a module (importers name the module; nothing is re-exported here):

- :mod:`~harness.report.sql`: a DuckDB connection with every analysis view, queries.
- :mod:`~harness.report.data`: gathering the views' answers into an immutable
  :class:`~harness.report.data.ReportData`.
- :mod:`~harness.report.plots`: the figures as inline SVG: the speedup and builds
  plots by matplotlib, the line plots through :mod:`~harness.report.lineplot` (an SVG
  writer, stdlib only).
- :mod:`~harness.report.drawing`: each figure drawn once per content (the figure cache
  in ``RESULTS/.report-cache/``), the others by worker processes while the queries run.
- :mod:`~harness.report.text`: the prose (claim lines, decisions, thresholds, fleet
  and stability rows, the method).
- :mod:`~harness.report.sections`: the report as ONE list of sections (titles,
  paragraphs, tables of plain text, figures), built once from the data.
- :mod:`~harness.report.markdown`, :mod:`~harness.report.html`: two renderers of those
  sections, so a section cannot exist in one and not the other.
- :mod:`~harness.report.write`: checking ``--out`` and writing the files atomically.
"""
