"""Flux scale: the simulator's predicted SN50 against the DRS header's, spectrum by spectrum.

``predicted_sn50(params)`` is the forward model's ``truth["snr_550"]`` (expected S/N per extracted pixel at the
centre of order 50, ~5565 A, the DRS ``ESO DRS SPE EXT SN50`` convention) for a spectrum's header conditions and
its star's V (``simharps.fidelity.twin.twin_parameters``); only the product window ``SN50_WINDOW_AA`` around order
50 is simulated, without noise (the expectation does not depend on the draw). The ratio predicted / observed per
spectrum is summarised by its median, its robust scatter (1.4826 MAD) and its standard deviation.

``fit_seeing`` solves predicted(seeing) = observed for the seeing FWHM (arcsec) with everything else fixed: the
delivered image quality the flux scale would need. It absorbs every other flux-scale error (efficiency,
extinction, guiding), so read it as "seeing-equivalent"; out of ``SEEING_BOUNDS_ARCSEC`` it is reported as the
bound with a flag.

Example
-------
>>> ratio = predicted_sn50(params) / row["snr_550"]
>>> seeing, inside = fit_seeing(params, row["snr_550"])
"""

import numpy as np
from scipy.optimize import brentq

from simharps.forward import simulate

SN50_WINDOW_AA = (5555.0, 5575.0)
"""Product window holding the central 128 pixels of order 50 (5564.0-5566.0 A) at any |BERV| <= 35 km/s."""

SEEING_BOUNDS_ARCSEC = (0.3, 4.0)


def predicted_sn50(params):
    """Expected SN50 of a spectrum with ``params`` (forward-model names), noise-free."""
    return simulate(params, 0, stages={"noise": False}, window=SN50_WINDOW_AA).truth["snr_550"]


def ratio_summary(predicted, observed):
    """Median, robust scatter, standard deviation, min, 10 and 90 % percentiles, max and count of predicted /
    observed SN50."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    ratio = predicted / observed
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size == 0:
        return dict.fromkeys(("median", "robust_scatter", "std", "min", "p10", "p90", "max"), None) | {"n": 0}
    median = float(np.median(ratio))
    return {"n": int(ratio.size), "median": median,
            "robust_scatter": float(1.4826 * np.median(np.abs(ratio - median))), "std": float(np.std(ratio)),
            "min": float(ratio.min()), "p10": float(np.percentile(ratio, 10)), "p90": float(np.percentile(ratio, 90)),
            "max": float(ratio.max())}


def fit_seeing(params, observed_sn50, bounds=SEEING_BOUNDS_ARCSEC):
    """Seeing FWHM (arcsec) at which the predicted SN50 equals ``observed_sn50``, and whether it lies inside
    ``bounds`` (otherwise the nearer bound is returned)."""
    def excess(seeing):
        return predicted_sn50({**params, "seeing_arcsec": seeing}) - observed_sn50

    low, high = excess(bounds[0]), excess(bounds[1])
    if low < 0:
        return bounds[0], False
    if high > 0:
        return bounds[1], False
    return float(brentq(excess, bounds[0], bounds[1], xtol=1e-3)), True
