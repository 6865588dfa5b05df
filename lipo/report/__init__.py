"""The comparison report, built from MLflow alone: the table (table.py), the reference models
(references.py), the figures (plots.py, calibration.py) and the HTML page (html.py)."""

from lipo.report.build import report

__all__ = ["report"]
