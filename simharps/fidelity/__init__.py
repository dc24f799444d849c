"""Fidelity: measure how simulated spectra differ from real ones (issue #13), before improving the synthesis.

Modules: ``twin`` (real spectrum -> simulated twin under its header conditions), ``degrade`` (continuum
normalisation, degradation to a common S/N), ``residuals`` (real - twin statistics per window), ``classify``
(classifier two-sample test, grouped by night), ``noise`` (noise texture from exposure differences), ``fluxscale``
(predicted / header SN50), ``report`` (JSON, PNG, HTML) and ``run`` (``simharps fidelity``). docs/fidelity.md
explains every number.
"""

from simharps.fidelity.run import SNR_LEVELS, WINDOWS, run_fidelity

__all__ = ["SNR_LEVELS", "WINDOWS", "run_fidelity"]
