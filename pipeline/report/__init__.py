"""`rpv2 report`: one self-contained HTML page about a run's output, for choosing thresholds.

The page is built in three layers, each a module named for what it does:

- :mod:`pipeline.report.scan` reads the run: ``_run_summary.json`` and column-projected pyarrow scans of
  the Parquet datasets (documents, dedup flags), histograms binned with numpy batch by batch;
- :mod:`pipeline.report.funnel` evaluates a filter recipe's rules over whole Arrow batches (numpy, the
  grammar's three-valued semantics) for the per-rule funnel;
- :mod:`pipeline.report.svg` draws the charts as inline SVG and :mod:`pipeline.report.html` lays out the
  page (no network reference, no external script or style).
"""
