"""Rest frames of a spectrum and the one flux-conserving resampler that moves spectra between them.

Dataset spectra are stored in the barycentric frame (``docs/contracts.md``). With c = 299,792.458 km/s:

- observatory frame: lambda_obs = lambda_bary / (1 + BERV / c) (the classical DRS convention the products use), so
  the observatory-frame spectrum is g(lambda) = f(lambda * (1 + BERV / c));
- stellar rest frame: lambda_rest = lambda_bary / D(rv), D(v) = sqrt((1 + v/c) / (1 - v/c)) (relativistic, as the
  forward model applies ``rv_kms``), so g(lambda) = f(lambda * D(rv));
- a velocity-whitening shift by v: g(lambda) = f(lambda * (1 + v / c)).

``doppler_resample(wave, values, mask, factor)`` evaluates g(lambda) = f(lambda * factor) as the average of the
piecewise-constant input over each output bin (bin edges halfway between channel centres): the integral of f over
a bin is conserved, so a line's equivalent width is too. A masked input channel contributes nothing, and an output
bin is valid only when valid input covers all of it (to 1e-6 of its width); bins reaching beyond the input are
masked. Mask and every array move together.

Example
-------
>>> obs, valid = doppler_resample(wave, flux, finite, observatory_factor(berv_kms))   # doctest: +SKIP
"""

import numpy as np

from simharps.constants import C_KMS  # km/s

COVERAGE_TOLERANCE = 1e-6
"""Fraction of an output bin that may lack valid input while the bin still counts as valid."""


def observatory_factor(berv_kms):
    """Per-spectrum factor that moves barycentric spectra to the observatory frame: 1 + BERV / c."""
    return 1.0 + np.asarray(berv_kms, dtype=np.float64) / C_KMS


def stellar_factor(rv_kms):
    """Per-spectrum factor that moves barycentric spectra to the star's rest frame: relativistic D(rv)."""
    beta = np.asarray(rv_kms, dtype=np.float64) / C_KMS
    return np.sqrt((1.0 + beta) / (1.0 - beta))


def shift_factor(velocity_kms):
    """Per-spectrum factor of a shift by ``velocity_kms`` (1 + v / c), used for velocity whitening."""
    return 1.0 + np.asarray(velocity_kms, dtype=np.float64) / C_KMS


def bin_edges(wavelength_aa):
    """Edges (n + 1,) halfway between channel centres, the end bins mirrored."""
    wave = np.asarray(wavelength_aa, dtype=np.float64)
    mid = 0.5 * (wave[1:] + wave[:-1])
    return np.concatenate(([wave[0] - (mid[0] - wave[0])], mid, [wave[-1] + (wave[-1] - mid[-1])]))


def doppler_resample(wavelength_aa, arrays, mask, factor):
    """Resample each row of every array in ``arrays`` to g(lambda) = f(lambda * factor[row]).

    ``wavelength_aa`` (L,) increasing; ``arrays`` a dict of (n, L) arrays (or one array); ``mask`` (n, L) bool,
    True = valid; ``factor`` (n,). Returns (resampled arrays of the same kind, float32; new mask). Masked output
    values are 0. The array named ``"error"`` (or ``"sigma"``) is resampled as a variance (sum of e^2 w^2 / W^2),
    the rest as bin averages.
    """
    single = not isinstance(arrays, dict)
    arrays = {"values": arrays} if single else arrays
    edges = bin_edges(wavelength_aa)
    widths = np.diff(edges)
    mask = np.asarray(mask, dtype=bool)
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), (mask.shape[0],))
    out = {name: np.zeros(mask.shape, dtype=np.float32) for name in arrays}
    out_mask = np.zeros(mask.shape, dtype=bool)
    for row in range(mask.shape[0]):
        valid = mask[row]
        covered = np.concatenate(([0.0], np.cumsum(np.where(valid, widths, 0.0))))
        target = edges * factor[row]
        inside = (target[:-1] >= edges[0]) & (target[1:] <= edges[-1])
        cover = np.diff(np.interp(target, edges, covered))
        target_width = np.diff(target)
        good = inside & (cover >= target_width * (1.0 - COVERAGE_TOLERANCE))
        out_mask[row] = good
        for name, values in arrays.items():
            v = np.where(valid, np.asarray(values[row], dtype=np.float64), 0.0)
            if name in ("error", "sigma"):
                integral = np.concatenate(([0.0], np.cumsum(v**2 * widths)))
                # variance of a width-weighted mean: the fraction of each input bin inside the output bin is
                # approximated by its share of the bin (exact for whole bins, conservative for split ones)
                mean_var = np.diff(np.interp(target, edges, integral)) * widths.mean() / np.maximum(target_width, 1e-300) ** 2
                out[name][row] = np.where(good, np.sqrt(np.maximum(mean_var, 0.0)), 0.0)
            else:
                integral = np.concatenate(([0.0], np.cumsum(v * widths)))
                mean = np.diff(np.interp(target, edges, integral)) / np.maximum(target_width, 1e-300)
                out[name][row] = np.where(good, mean, 0.0)
    return (out["values"] if single else out), out_mask
