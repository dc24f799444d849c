"""Continuum normalisation and degradation to a common S/N, applied alike to real and simulated spectra.

Normalisation: flux / envelope, with the envelope of ``analysis.preprocess.continuum_envelope`` (90th percentile of
the valid bins in blocks of 20 A, linear between block centres: what the networks' preprocessing uses), computed on
each spectrum alone. The error is divided by the same envelope.

Degradation: Gaussian noise of variance ``max(1/S^2 - e^2, 0)`` is added to every bin of a normalised spectrum of
error ``e`` (continuum units), so that the total S/N per 0.01 A bin relative to the envelope equals the target
``S`` wherever the spectrum had more; bins already noisier keep their noise (``fraction_below_target`` counts
them). For whole-pixel variance (the DRS products, ``simharps.ingest.noise``) the S/N per 0.01 A bin at the blaze
peak equals the S/N per extracted pixel (the ``SN50`` convention).

Example
-------
>>> flux_n, error_n = normalise(wave, flux, error)
>>> noisy, noisy_error, below = degrade_to_snr(flux_n, error_n, 50.0, np.random.default_rng(1))
"""

import numpy as np

from analysis.preprocess import continuum_envelope

ENVELOPE_BLOCK_AA = 20.0


def normalise(wavelength_aa, flux, error, block_aa=ENVELOPE_BLOCK_AA):
    """(n, m) flux and error divided by each spectrum's upper envelope; NaN stays NaN."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    error = np.atleast_2d(np.asarray(error, dtype=np.float64))
    mask = np.isfinite(flux) & np.isfinite(error)
    envelope = continuum_envelope(wavelength_aa, np.where(mask, flux, 0.0), mask, block_aa=block_aa).astype(float)
    envelope[envelope <= 0] = np.nan
    return flux / envelope, error / envelope


def degrade_to_snr(flux_n, error_n, snr, rng):
    """Normalised spectra with noise added up to S/N ``snr`` per bin: (flux, error, fraction of bins below it)."""
    target = 1.0 / float(snr) ** 2
    extra = np.sqrt(np.clip(target - error_n**2, 0.0, None))
    noisy = flux_n + rng.standard_normal(flux_n.shape) * extra
    valid = np.isfinite(error_n)
    below = float(np.mean(error_n[valid] ** 2 > target)) if valid.any() else float("nan")
    return noisy, np.sqrt(error_n**2 + extra**2), below
