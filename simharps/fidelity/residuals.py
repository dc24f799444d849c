"""Residuals of real spectra against their noiseless twins, after continuum normalisation (per window).

Both are normalised alike (``simharps.fidelity.degrade.normalise``); with ``r = real_n - twin_n`` (continuum units,
barycentric frame, 0.01 A bins) and ``e`` the real spectrum's normalised error (the twin is noiseless):

* ``chi2_per_bin`` = mean of (r / e)^2 over spectra and bins, and ``rms_noise_units`` its square root: 1 when the
  twins differ from the real spectra by noise only; also over ``clean`` bins (twin telluric transmission >= 0.995)
  and ``telluric`` bins (< 0.98);
* ``mean_residual_rms``: rms over bins of the residual averaged over spectra (continuum units), its noise floor
  ``sqrt(mean(e^2) / n)`` and ``systematic_rms`` = sqrt(max(rms^2 - floor^2, 0)): the part every spectrum shares;
* ``rv_offset_kms``: least-squares shift of the mean real spectrum against the mean twin on clean bins
  (``r ~ -dv lambda / c  d twin / d lambda``; positive: real lines sit redder);
* ``depth_ratio``: slope of (1 - real_n) on (1 - twin_n) on clean bins (> 1: real lines deeper);
* ``continuum_shape``: the ratio of the real to the twin envelope, each in ``shape_block_aa`` blocks and divided
  by its median over the window: its rms and peak-to-peak (what normalisation removes, and a network without it
  would see).

``envelope_ratio`` gives the same ratio over the whole simulated range in 100 A blocks (the chromatic flux scale:
real / twin 90th-percentile levels, median and 16-84 % over spectra, and divided by the block at order 50).

Example
-------
>>> stats = window_residuals(wave, real_flux, real_error, twin_expected, twin_telluric)
"""

import numpy as np

from simharps.constants import C_KMS
from simharps.fidelity.degrade import normalise

CLEAN_TRANSMISSION = 0.995
TELLURIC_TRANSMISSION = 0.98
SHAPE_BLOCK_AA = 10.0
RATIO_BLOCK_AA = 100.0
REFERENCE_AA = 5565.0
"""The centre of order 50 (the SN50 order), where ``envelope_ratio`` is normalised."""


def _chi2(z, bins):
    values = z[:, bins]
    values = values[np.isfinite(values)]
    return float(np.mean(values**2)) if values.size else None


def window_residuals(wavelength_aa, real_flux, real_error, twin_expected, twin_telluric):
    """Residual statistics of (n, m) real spectra against their noiseless twins (see module docstring)."""
    wave = np.asarray(wavelength_aa, dtype=float)
    real_n, error_n = normalise(wave, real_flux, real_error)
    twin_n, _ = normalise(wave, twin_expected, np.ones_like(twin_expected))
    residual = real_n - twin_n
    z = residual / error_n
    telluric = np.nanmedian(twin_telluric, axis=0)
    usable = np.all(np.isfinite(z), axis=0)
    clean = usable & (telluric >= CLEAN_TRANSMISSION)
    deep = usable & (telluric < TELLURIC_TRANSMISSION)
    n = residual.shape[0]
    mean_residual = residual[:, usable].mean(axis=0)
    rms = float(np.sqrt(np.mean(mean_residual**2)))
    floor = float(np.sqrt(np.mean(error_n[:, usable] ** 2) / n))
    mean_real, mean_twin = real_n[:, clean].mean(axis=0), twin_n[:, clean].mean(axis=0)
    stats = {
        "n_spectra": n, "n_bins": int(usable.sum()), "n_clean_bins": int(clean.sum()),
        "n_telluric_bins": int(deep.sum()),
        "chi2_per_bin": _chi2(z, usable), "chi2_clean": _chi2(z, clean), "chi2_telluric": _chi2(z, deep),
        "mean_residual_rms": rms, "noise_floor_rms": floor,
        "systematic_rms": float(np.sqrt(max(rms**2 - floor**2, 0.0))),
        "median_snr_per_bin": float(np.nanmedian(1.0 / error_n[:, usable])),
        "rv_offset_kms": _shift(wave, twin_n, clean, mean_real - mean_twin),
        "depth_ratio": _depth_ratio(mean_real, mean_twin),
        **continuum_shape(wave, real_flux, twin_expected),
    }
    stats["rms_noise_units"] = None if stats["chi2_per_bin"] is None else float(np.sqrt(stats["chi2_per_bin"]))
    return stats, {"wavelength_aa": wave, "mean_real": np.nanmean(real_n, axis=0),
                   "mean_twin": np.nanmean(twin_n, axis=0), "mean_residual": np.nanmean(residual, axis=0),
                   "telluric": telluric}


def _shift(wave, twin_n, clean, difference):
    """Velocity (km/s) moving the mean twin onto the mean real spectrum, to first order, on clean bins."""
    mean_twin = np.nanmean(twin_n, axis=0)
    slope = np.gradient(mean_twin, wave) * wave / C_KMS
    design = -slope[clean]
    if design.size < 3 or not np.any(design):
        return None
    return float(np.dot(design, difference) / np.dot(design, design))


def _depth_ratio(mean_real, mean_twin):
    depth_twin = 1.0 - mean_twin
    if depth_twin.size < 3 or not np.any(depth_twin):
        return None
    return float(np.dot(depth_twin, 1.0 - mean_real) / np.dot(depth_twin, depth_twin))


def continuum_shape(wavelength_aa, real_flux, twin_expected, block_aa=SHAPE_BLOCK_AA):
    """rms and peak-to-peak of the real/twin envelope ratio over the window (each normalised by its median)."""
    wave = np.asarray(wavelength_aa, dtype=float)
    edges = np.arange(wave[0], wave[-1] + block_aa, block_aa)
    index = np.digitize(wave, edges) - 1
    ratios = []
    for real, twin in zip(np.atleast_2d(real_flux), np.atleast_2d(twin_expected)):
        levels = []
        for b in np.unique(index):
            inside = (index == b) & np.isfinite(real) & np.isfinite(twin)
            if inside.sum() >= 0.5 * np.sum(index == b) and inside.any():
                levels.append(np.percentile(real[inside], 90) / np.percentile(twin[inside], 90))
        if levels:
            levels = np.asarray(levels)
            ratios.append(levels / np.median(levels))
    if not ratios or min(len(r) for r in ratios) < 2:
        return {"continuum_shape_rms": None, "continuum_shape_ptp": None}
    size = min(len(r) for r in ratios)
    mean = np.mean([r[:size] for r in ratios], axis=0)
    return {"continuum_shape_rms": float(np.std(mean)), "continuum_shape_ptp": float(np.ptp(mean))}


def envelope_ratio(wavelength_aa, real_flux, twin_expected, block_aa=RATIO_BLOCK_AA):
    """Real / twin 90th-percentile flux per ``block_aa`` block (blocks at least half valid), over spectra: median,
    16 and 84 % percentiles, and the median divided by that of the block holding ``REFERENCE_AA``."""
    wave = np.asarray(wavelength_aa, dtype=float)
    index = np.floor(wave / block_aa).astype(int)
    centres, median, low, high = [], [], [], []
    for b in np.unique(index):
        inside = index == b
        real, twin = np.asarray(real_flux)[:, inside], np.asarray(twin_expected)[:, inside]
        valid = np.isfinite(real) & np.isfinite(twin)
        if valid.mean() < 0.5:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = (np.nanpercentile(np.where(valid, real, np.nan), 90, axis=1)
                     / np.nanpercentile(np.where(valid, twin, np.nan), 90, axis=1))
        centres.append((b + 0.5) * block_aa)
        median.append(float(np.nanmedian(ratio)))
        low.append(float(np.nanpercentile(ratio, 16)))
        high.append(float(np.nanpercentile(ratio, 84)))
    reference = int(np.floor(REFERENCE_AA / block_aa))
    scale = next((m for c, m in zip(centres, median) if int(np.floor(c / block_aa)) == reference), None)
    return {"block_centre_aa": centres, "median": median, "p16": low, "p84": high,
            "median_over_order50": None if scale is None else [m / scale for m in median]}
