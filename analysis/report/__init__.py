"""Validation report of a run directory: one self-contained HTML file, ``RUNDIR/report.html``.

Sections appear only when their inputs exist: provenance (run.json), the regression verdict (a baseline file),
truth/metadata distributions (dataset tables), loss curves (history.json), example reconstructions
(reconstructions-DATASET.npz), MI heatmaps and the telluric/stellar table (metrics JSON), latent scatter plots
and repeat-observation tracks (latents-DATASET.npy + table), every metric with its baseline and pass/fail.
Images are base64 PNG data URIs; every string from a scenario, header or table is HTML-escaped.

Example
-------
>>> from analysis.report import build_report
>>> build_report("runs/quickstart", baseline="reports/baselines/quickstart.json")   # doctest: +SKIP
PosixPath('runs/quickstart/report.html')
"""

from analysis.report.build import build_report

__all__ = ["build_report"]
