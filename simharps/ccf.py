"""Cross-correlation of a spectrum with a HARPS CCF mask, and the RV from a Gaussian fit.

Equation (as the HARPS DRS does it; Baranne et al. 1996, Pepe et al. 2002)
-------------------------------------------------------------------------
Each mask line i (air wavelength lambda_i, weight w_i = the mask's ``contrast``) is a box hole of
width ``mask_width_kms`` (0.82 km/s, about one HARPS pixel) centred on ``lambda_i D(v)``, with the
relativistic Doppler factor ``D(v) = sqrt((1 + v/c) / (1 - v/c))`` (the convention simharps uses to
inject RVs). The spectrum's pixels are projected onto the holes by the fraction of each pixel they
cover::

    CCF(v) = sum_i w_i * (1 / |hole_i|) int_{hole_i(v)} f(lambda) dlambda

computed exactly for piecewise-constant pixels through the cumulative integral of f over pixel
edges. The CCF is fitted with ``c0 - A exp(-(v - RV)^2 / (2 sigma^2))``; FWHM = 2 sqrt(2 ln 2) sigma,
contrast = A / c0. Lines whose hole leaves the spectrum (or touches non-finite flux) at any velocity
of the scan are dropped, so every velocity uses the same lines.

Input: any spectrum on a monotonic air-wavelength grid (simulated or real, barycentric or not);
fluxes may be a batch (n, n_pix) on one grid. Units: km/s, A.

Example
-------
>>> from simharps.ccf import read_ccf_mask, measure_rv
>>> mask = read_ccf_mask("HARPS_G2.fits")
>>> result = measure_rv(wavelength_air_aa, flux, mask)
>>> result.rv_kms, result.fwhm_kms, result.contrast
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

from simharps.constants import C_KMS
from simharps.errors import HarpsFormatError, SimharpsError
from simharps.kinematics import doppler_factor

DEFAULT_MASK_WIDTH_KMS = 0.82
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class CCFMask:
    """Mask lines: air wavelengths (A) and weights (the DRS ``contrast`` column)."""

    wavelength_air_aa: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class CCFResult:
    """Gaussian fit to a CCF: rv_kms, fwhm_kms, contrast (fraction), and the CCF itself."""

    rv_kms: float
    fwhm_kms: float
    contrast: float
    velocities_kms: np.ndarray
    ccf: np.ndarray
    n_lines: int


def read_ccf_mask(path):
    """Read a HARPS DRS CCF mask FITS table (columns ``lambda`` in air A and ``contrast``)."""
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path) as hdul:
            data = hdul[1].data
            wavelength = np.asarray(data["lambda"], dtype=float)
            weight = np.asarray(data["contrast"], dtype=float)
    except (OSError, KeyError, IndexError, TypeError) as error:
        raise HarpsFormatError(path, f"not a CCF mask with 'lambda' and 'contrast' columns ({error})") from error
    order = np.argsort(wavelength)
    return CCFMask(wavelength[order], weight[order])


def _pixel_edges(wavelength):
    mid = 0.5 * (wavelength[1:] + wavelength[:-1])
    return np.concatenate([[2 * wavelength[0] - mid[0]], mid, [2 * wavelength[-1] - mid[-1]]])


def cross_correlate(wavelength_air_aa, flux, mask, velocities_kms, mask_width_kms=DEFAULT_MASK_WIDTH_KMS):
    """CCF of ``flux`` ((n_pix,) or (n, n_pix)) with ``mask`` at ``velocities_kms``; returns (ccf, n_lines)."""
    wavelength = np.asarray(wavelength_air_aa, dtype=float)
    flux = np.asarray(flux, dtype=float)
    velocities = np.asarray(velocities_kms, dtype=float)
    edges = _pixel_edges(wavelength)
    doppler = doppler_factor(velocities)
    half = 0.5 * mask_width_kms / C_KMS
    lo = mask.wavelength_air_aa[:, None] * doppler[None, :] * (1 - half)
    hi = mask.wavelength_air_aa[:, None] * doppler[None, :] * (1 + half)
    inside = (lo.min(axis=1) > edges[0]) & (hi.max(axis=1) < edges[-1])
    bad = ~np.all(np.isfinite(flux.reshape(-1, flux.shape[-1])), axis=0)
    if bad.any():
        lo_px = np.searchsorted(edges, lo.min(axis=1)) - 1
        hi_px = np.searchsorted(edges, hi.max(axis=1))
        bad_cum = np.concatenate([[0], np.cumsum(bad)])
        inside &= bad_cum[np.clip(hi_px, 0, len(bad))] - bad_cum[np.clip(lo_px, 0, len(bad))] == 0
    if not inside.any():
        raise SimharpsError("no CCF mask line falls inside the spectrum at every velocity of the scan")
    lo, hi, weight = lo[inside], hi[inside], mask.weight[inside]
    clean = np.where(np.isfinite(flux), flux, 0.0)
    cumulative = np.concatenate([np.zeros(clean.shape[:-1] + (1,)), np.cumsum(clean * np.diff(edges), axis=-1)], axis=-1)

    def integral(x):
        k = np.clip(np.searchsorted(edges, x) - 1, 0, len(edges) - 2)
        frac = (x - edges[k]) / (edges[k + 1] - edges[k])
        return cumulative[..., k] * (1 - frac) + cumulative[..., k + 1] * frac

    per_line = (integral(hi) - integral(lo)) / (hi - lo)
    return np.tensordot(per_line, weight, axes=([-2], [0])), int(inside.sum())


def _gaussian(v, c0, amplitude, centre, sigma):
    return c0 - amplitude * np.exp(-0.5 * ((v - centre) / sigma) ** 2)


def fit_ccf(velocities_kms, ccf):
    """Fit ``c0 - A exp(-(v - rv)^2 / 2 sigma^2)`` to one CCF; returns (rv_kms, fwhm_kms, contrast)."""
    v = np.asarray(velocities_kms, dtype=float)
    c = np.asarray(ccf, dtype=float)
    c0 = np.max(c)
    i_min = int(np.argmin(c))
    amplitude = c0 - c[i_min]
    below = v[c < c0 - 0.5 * amplitude]
    sigma0 = max((below.max() - below.min()) / FWHM_PER_SIGMA, np.diff(v).min()) if len(below) else 3.0
    try:
        popt, _ = curve_fit(_gaussian, v, c, p0=[c0, amplitude, v[i_min], sigma0], maxfev=5000)
    except RuntimeError as error:
        raise SimharpsError(f"Gaussian fit to the CCF did not converge: {error}") from error
    return float(popt[2]), float(FWHM_PER_SIGMA * abs(popt[3])), float(popt[1] / popt[0])


def measure_rv(wavelength_air_aa, flux, mask, velocities_kms=None, mask_width_kms=DEFAULT_MASK_WIDTH_KMS,
               rv_guess_kms=0.0, half_range_kms=20.0, step_kms=0.25):
    """Cross-correlate one spectrum with ``mask`` and fit a Gaussian; returns a ``CCFResult``.

    Without ``velocities_kms`` the scan is ``rv_guess_kms +- half_range_kms`` at ``step_kms``.
    """
    if velocities_kms is None:
        velocities_kms = rv_guess_kms + np.arange(-half_range_kms, half_range_kms + step_kms / 2, step_kms)
    velocities_kms = np.asarray(velocities_kms, dtype=float)
    ccf, n_lines = cross_correlate(wavelength_air_aa, flux, mask, velocities_kms, mask_width_kms)
    if ccf.ndim != 1:
        raise SimharpsError("measure_rv takes one spectrum; use cross_correlate + fit_ccf for batches")
    rv, fwhm, contrast = fit_ccf(velocities_kms, ccf)
    return CCFResult(rv, fwhm, contrast, velocities_kms, ccf, n_lines)
