"""Metrics: what latents capture, measured the same way on real and simulated sets (docs/metrics.md).

Pinned functions (plain numpy in, floats out; ``z`` latents (n, L), ``v`` factors (n, K)): ``mig``, ``sap``,
``modularity``, ``dci_from_importance``, ``dci``, ``mi_ksg``, ``telluric_rejection``. ``evaluate`` builds the
"simharps-metrics/1" document and ``format_table`` prints it.
"""

from analysis.metrics.disentanglement import dci, dci_from_importance, informative_latents, mig, modularity, sap
from analysis.metrics.evaluate import evaluate, format_table, metrics_config
from analysis.metrics.factors import select_factors
from analysis.metrics.mutual_info import mi_discrete, mi_ksg, mi_mixed, study_indicator
from analysis.metrics.repeat import dispersion
from analysis.metrics.telluric import estimate_expected, pixel_classes, telluric_rejection

__all__ = ["dci", "dci_from_importance", "dispersion", "estimate_expected", "evaluate", "format_table",
           "informative_latents", "metrics_config", "mi_discrete", "mi_ksg", "mi_mixed", "mig", "modularity",
           "pixel_classes", "sap", "select_factors", "study_indicator", "telluric_rejection"]
