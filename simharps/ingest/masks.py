"""Stellar RV of real spectra by cross-correlation with the shipped HARPS DRS masks.

Method (the HARPS DRS CCF, Baranne et al. 1996; Pepe et al. 2002; the cross-correlation itself is
``simharps.ccf.cross_correlate``): each mask line is a 0.82 km/s box weighted by its DRS contrast, moved by
the relativistic Doppler factor sqrt((1 + v/c) / (1 - v/c)); the CCF is fitted with a Gaussian
``c0 - A exp(-(v - RV)^2 / 2 sigma^2)``, FWHM = 2.3548 sigma, contrast = A / c0.

1. Coarse search: the G2 and M2 masks over ``COARSE_RANGE_KMS`` (+-250 km/s) at ``COARSE_STEP_KMS`` (2 km/s);
   the velocity of the deepest normalised CCF dip of either mask starts the fine search.
2. Fine fit: every candidate mask (all 11 by default, F9..M5) over that velocity +-20 km/s at 0.25 km/s (widened
   to +-3 FWHM for broad CCFs); the mask with the highest fitted contrast is kept: the one whose lines match the
   star's spectrum best, i.e. the spectral type the DRS would have chosen.

Input: a spectrum on the dataset grid (barycentric, air A) with NaN where there is no data; pixels where the
telluric component is below ``telluric_floor`` are set to NaN first, which drops the mask lines that touch
them (the DRS masks already avoid the strongest telluric bands). The RV is in the masks' zero point
(the G2 mask lines sit +0.20 km/s (median) from VALD laboratory wavelengths, so RVs of the built-in synthetic
spectra come out 0.276 km/s low: tests/test_stellar_reality.py; DESIGN "Measured facts" quotes ~+0.1 km/s).

Approximations: one merged 1-D spectrum instead of the DRS per-order CCFs (the continuum shape enters each
line's box through the flux level, as a weight); no per-order flux normalisation; the Gaussian fit is
unweighted.

Example
-------
>>> from simharps.ingest.masks import load_ccf_mask, measure_stellar_rv
>>> mask = load_ccf_mask("G2")                       # same CCFMask as simharps.ccf.read_ccf_mask(HARPS_G2.fits)
>>> rv = measure_stellar_rv(wavelength_air_aa, flux)  # RVMeasurement(rv_kms, fwhm_kms, contrast, mask, n_lines)
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from simharps.ccf import CCFMask, cross_correlate, measure_rv
from simharps.errors import ParameterError, SimharpsError

MASK_FILE = Path(__file__).resolve().parents[1] / "data" / "ccf_masks.npz"
MASK_NAMES = ("F9", "G2", "G8", "G9", "K2", "K6", "M0", "M2", "M3", "M4", "M5")
"""HARPS DRS masks shipped in ``simharps/data/ccf_masks.npz`` (spectral types)."""

COARSE_MASKS = ("G2", "M2")
COARSE_RANGE_KMS = 250.0
COARSE_STEP_KMS = 2.0
FINE_HALF_RANGE_KMS = 20.0
FINE_STEP_KMS = 0.25
TELLURIC_FLOOR = 0.97
"""Pixels with a telluric transmission below this are excluded from the CCF."""


@dataclass(frozen=True)
class RVMeasurement:
    """CCF RV of one spectrum: rv_kms, fwhm_kms, contrast (fraction), the mask used and its line count."""

    rv_kms: float
    fwhm_kms: float
    contrast: float
    mask: str
    n_lines: int


@lru_cache(maxsize=None)
def load_ccf_mask(name):
    """The shipped HARPS DRS mask ``name`` (one of ``MASK_NAMES``) as a ``simharps.ccf.CCFMask``."""
    name = str(name).upper().removeprefix("HARPS_")
    if name not in MASK_NAMES:
        raise ParameterError(f"CCF mask must be one of {', '.join(MASK_NAMES)}, got {name!r}")
    with np.load(MASK_FILE) as data:
        return CCFMask(data[f"{name}_wavelength_air_aa"].astype(float), data[f"{name}_weight"].astype(float))


def measure_stellar_rv(wavelength_air_aa, flux, *, telluric=None, masks=MASK_NAMES, telluric_floor=TELLURIC_FLOOR):
    """RV of one spectrum by the best-matching HARPS mask (highest CCF contrast); None if no mask gives a CCF dip.

    ``wavelength_air_aa``, ``flux``: one spectrum (NaN = no data); ``telluric``: its telluric transmission on the
    same grid (optional; pixels below ``telluric_floor`` are ignored); ``masks``: names of the candidate masks.
    """
    wave = np.asarray(wavelength_air_aa, dtype=float)
    flux = np.array(flux, dtype=float)
    if telluric is not None:
        flux[np.asarray(telluric) < telluric_floor] = np.nan
    rv0 = _coarse_velocity(wave, flux)
    if rv0 is None:
        return None
    best = None
    for name in masks:
        fit = _fine_fit(wave, flux, load_ccf_mask(name), rv0)
        if fit is not None and (best is None or fit.contrast > best[0].contrast):
            best = (fit, name)
    if best is None:
        return None
    fit, name = best
    return RVMeasurement(fit.rv_kms, fit.fwhm_kms, fit.contrast, name, fit.n_lines)


def _coarse_velocity(wave, flux):
    velocities = np.arange(-COARSE_RANGE_KMS, COARSE_RANGE_KMS + COARSE_STEP_KMS / 2, COARSE_STEP_KMS)
    best_depth, best_velocity = 0.0, None
    for name in COARSE_MASKS:
        try:
            ccf, _ = cross_correlate(wave, flux, load_ccf_mask(name), velocities)
        except SimharpsError:
            continue
        level = np.median(ccf)
        if not np.isfinite(level) or level <= 0:
            continue
        depth = 1.0 - ccf.min() / level
        if depth > best_depth:
            best_depth, best_velocity = depth, float(velocities[np.argmin(ccf)])
    return best_velocity


def _fine_fit(wave, flux, mask, rv0):
    """Gaussian fit around rv0 (+-20 km/s, or +-3 FWHM for broad CCFs); None if it fails or is not a dip."""
    result = _fit_or_none(wave, flux, mask, rv0, FINE_HALF_RANGE_KMS)
    if result is not None and result.fwhm_kms > FINE_HALF_RANGE_KMS / 1.5:
        result = _fit_or_none(wave, flux, mask, result.rv_kms, min(3.0 * result.fwhm_kms, COARSE_RANGE_KMS))
    return result


def _fit_or_none(wave, flux, mask, rv_guess, half_range):
    try:
        result = measure_rv(wave, flux, mask, rv_guess_kms=rv_guess, half_range_kms=half_range, step_kms=FINE_STEP_KMS)
    except SimharpsError:
        return None
    plausible = (np.isfinite(result.rv_kms) and 0 < result.contrast < 1 and 0.5 < result.fwhm_kms < 2 * half_range
                 and abs(result.rv_kms - rv_guess) < half_range)
    return result if plausible else None
