"""Noise texture from differences of two exposures of the same star and conditions.

For two spectra a, b on one 0.01 A grid (barycentric; consecutive same-night exposures of a real series, or two
noise draws of one twin) the star and tellurics cancel in ``d = f_a - k f_b``, with ``k`` the smooth flux ratio
(median of f_a / f_b in ``scale_block_aa`` blocks, linear between block centres; 1 for twins). With ``v_a``, ``v_b``
the expected variances of the bins, ``z = d / sqrt(v_a + k^2 v_b)``; in each wavelength bin (``bin_aa``, 200 A):

* ``variance_ratio`` = var(z): 1 when the bins carry the expected variance;
* ``photon_variance_ratio`` and ``multiplicative_rms``: the fit ``z^2 = a + s^2 x`` with ``x = f_a^2 / (v_a +
  k^2 v_b)`` (the squared S/N of the difference): ``a`` is the variance ratio of the photon (and read) noise alone,
  ``s`` the rms relative difference of a noise that scales with the flux (a pattern changing between exposures;
  real consecutive exposures show one, growing with their time separation, that photon statistics do not explain);
* ``acf_lag{l}`` = mean z_i z_{i+l} / mean z_i^2 over bins l apart that are both valid (lags 1..3): the
  correlation the rebinning of pixels onto the 0.01 A lattice gives neighbouring bins; ``photon_acf_lag{l}`` the
  same from the intercepts of the fits z_i z_{i+l} = c + t x (the photon noise's own correlation, without the
  flux-scaled part).

Bins with |z - median| > ``clip`` robust sigma (cosmic-ray residuals) and non-finite ones are dropped.
The reference variance used for real and simulated spectra alike is the whole-pixel photon + read noise model of
``simharps.ingest.noise.modelled_error`` (a bin with a pixel's variance). ``by_phase`` gives var(z) in bins of the
folded pixel phase (``pixel_phase``, bins covered by one order only): a linearly interpolated bin would carry
(1 - p)^2 + p^2 of a pixel's variance (2/3 on average), the DRS-like rebin of the chain (``simharps.extraction``:
a natural spline of the cumulative counts) about a whole pixel's, falling from ~1.2 to ~0.8 with the phase.

Sums are kept per bin (``TextureSums``) so that pairs pool: ``combine`` adds them, ``summary`` turns them into
ratios.

Example
-------
>>> sums = difference_texture(wave, flux_a, flux_b, var_a, var_b, mask=clean)
>>> summary(sums)["variance_ratio"]
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simharps.constants import C_KMS
from simharps.grids import PRODUCT_RANGE_AA
from simharps.instrument import MERGE_TRIM_PX, HarpsSpectrograph

LAGS = (1, 2, 3)
BIN_AA = 200.0
SCALE_BLOCK_AA = 5.0
CLIP_SIGMA = 5.0
PHASE_EDGES = np.linspace(0.0, 0.5, 6)
"""Bins of the folded pixel phase (0 = bin on a pixel centre, 0.5 = midway between two)."""
MAX_GAP_MIN = 5.0
"""Real pairs: consecutive exposures at most this many minutes apart (start to start)."""


@dataclass
class TextureSums:
    """Per lag l (0 = the variance, then ``lags``) and wavelength bin, the sums over products p = z_i z_{i+l} of
    bins both valid: ``moments[l]`` = (count, sum p, sum x, sum x^2, sum x p), x of bin i; shape (1 + n_lags, 5,
    n_bins). ``edges`` (A) of the bins; ``phase`` (2, n_phase): count and sum z^2 per ``PHASE_EDGES`` bin;
    ``n_pairs`` pooled."""

    edges: np.ndarray
    lags: tuple
    moments: np.ndarray
    phase: np.ndarray
    n_pairs: int = 1

    def __add__(self, other):
        return TextureSums(self.edges, self.lags, self.moments + other.moments, self.phase + other.phase,
                           self.n_pairs + other.n_pairs)


def bin_edges(bin_aa=BIN_AA, start_aa=PRODUCT_RANGE_AA[0], stop_aa=PRODUCT_RANGE_AA[1]):
    """Edges of the texture bins: multiples of ``bin_aa`` spanning start..stop (A)."""
    return np.arange(np.floor(start_aa / bin_aa) * bin_aa, stop_aa + bin_aa, bin_aa)


def smooth_ratio(wavelength_aa, flux_a, flux_b, block_aa=SCALE_BLOCK_AA):
    """Smooth f_a / f_b: block medians of the ratio, linear between block centres (NaN-free where defined)."""
    ratio = flux_a / flux_b
    valid = np.isfinite(ratio) & (flux_b > 0)
    block = np.floor((wavelength_aa - wavelength_aa[0]) / block_aa).astype(int)
    centres, levels = [], []
    for b in np.unique(block[valid]):
        inside = valid & (block == b)
        centres.append(wavelength_aa[inside].mean())
        levels.append(np.median(ratio[inside]))
    if not levels:
        return np.full(wavelength_aa.size, np.nan)
    return np.interp(wavelength_aa, centres, levels)


@lru_cache(maxsize=1)
def _layout():
    return HarpsSpectrograph().layout


def pixel_phase(wavelength_aa, berv_kms):
    """Folded phase of each product bin (barycentric, A) between the centres of the two HARPS pixels around it, in
    the one order that covers it after the merge trim: 0 on a pixel centre, 0.5 midway; NaN where no order or
    several orders cover the bin (``simharps.instrument`` layout, moved by lambda (1 + BERV / c))."""
    layout = _layout()
    wave = np.asarray(wavelength_aa, dtype=float)
    centres = layout.pixel_wavelength_air_aa * (1.0 + berv_kms / C_KMS)
    pixels = np.arange(layout.n_pixels, dtype=float)
    cover = np.zeros(wave.size, dtype=int)
    phase = np.full(wave.size, np.nan)
    for row in range(layout.n_orders):
        lo = layout.valid_pixels[row, 0] + MERGE_TRIM_PX[0]
        hi = layout.valid_pixels[row, 1] - MERGE_TRIM_PX[1]
        start, stop = np.interp([lo, hi], pixels, centres[row])
        k = slice(np.searchsorted(wave, start), np.searchsorted(wave, stop, "right"))
        position = np.interp(wave[k], centres[row], pixels)
        fraction = position - np.floor(position)
        cover[k] += 1
        phase[k] = np.minimum(fraction, 1.0 - fraction)
    phase[cover != 1] = np.nan
    return phase


def difference_texture(wavelength_aa, flux_a, flux_b, var_a, var_b, *, mask=None, rescale=True, edges=None,
                       lags=LAGS, clip=CLIP_SIGMA, scale_block_aa=SCALE_BLOCK_AA, phase=None):
    """``TextureSums`` of one pair of spectra (see module docstring); ``mask``: bins to use (default all);
    ``phase``: ``pixel_phase`` of the bins (for the variance by phase; None: not accumulated)."""
    wave = np.asarray(wavelength_aa, dtype=float)
    flux_a, flux_b = np.asarray(flux_a, float), np.asarray(flux_b, float)
    k = smooth_ratio(wave, flux_a, flux_b, scale_block_aa) if rescale else np.ones(wave.size)
    variance = np.asarray(var_a, float) + k**2 * np.asarray(var_b, float)
    z = (flux_a - k * flux_b) / np.sqrt(variance)
    x = flux_a**2 / variance
    valid = np.isfinite(z) & np.isfinite(x) if mask is None else np.isfinite(z) & np.isfinite(x) & mask
    edges = bin_edges() if edges is None else np.asarray(edges, float)
    index = np.digitize(wave, edges) - 1
    moments = np.zeros((1 + len(lags), 5, edges.size - 1))
    by_phase = np.zeros((2, PHASE_EDGES.size - 1))
    for b in range(edges.size - 1):
        members = np.flatnonzero(index == b)    # contiguous: the grid is sorted
        if np.count_nonzero(valid[members]) < 10:
            continue
        series = np.where(valid[members], z[members], np.nan)
        centre = np.nanmedian(series)
        spread = 1.4826 * np.nanmedian(np.abs(series - centre))
        series[~(np.abs(series - centre) <= clip * spread)] = np.nan
        series -= np.nanmean(series)
        for j, lag in enumerate((0, *lags)):
            product = series[:series.size - lag] * series[lag:]
            both = np.isfinite(product)
            xs, ps = x[members][:series.size - lag][both], product[both]
            moments[j, :, b] = both.sum(), ps.sum(), xs.sum(), np.sum(xs**2), np.sum(xs * ps)
        if phase is not None:
            where = np.digitize(phase[members], PHASE_EDGES[1:-1])
            known = np.isfinite(series) & np.isfinite(phase[members])
            by_phase += np.array([np.bincount(where[known], minlength=PHASE_EDGES.size - 1),
                                  np.bincount(where[known], series[known] ** 2, minlength=PHASE_EDGES.size - 1)])
    return TextureSums(edges, tuple(lags), moments, by_phase)


def combine(sums):
    """Pool the ``TextureSums`` of many pairs (None for an empty list)."""
    total = None
    for item in sums:
        total = item if total is None else total + item
    return total


def _regression(moments):
    """Mean, intercept a and slope of p = a + slope x from ``moments`` (count, sum p, sum x, sum x^2, sum x p)."""
    count, sum_p, sum_x, sum_xx, sum_xp = moments
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x, mean_p = sum_x / count, sum_p / count
        slope = (sum_xp / count - mean_x * mean_p) / (sum_xx / count - mean_x**2)
    return mean_p, mean_p - slope * mean_x, slope


def _statistics(moments, lags):
    """Variance ratio, photon-level ratio, multiplicative rms and, per lag, the total and photon-level acf."""
    variance, photon, slope = _regression(moments[0])
    out = {"variance_ratio": variance, "photon_variance_ratio": photon,
           "multiplicative_rms": np.sqrt(np.clip(slope, 0.0, None))}
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, lag in enumerate(lags, start=1):
            mean, intercept, _ = _regression(moments[j])
            out[f"acf_lag{lag}"] = mean / variance
            out[f"photon_acf_lag{lag}"] = intercept / photon
    return out


def summary(sums, min_count=1000):
    """Per-bin statistics (``_statistics``; None where fewer than ``min_count`` valid bins) and their means over
    those bins weighted by the valid-bin counts (``overall``)."""
    centres = 0.5 * (sums.edges[:-1] + sums.edges[1:])
    count = sums.moments[0, 0]
    ok = count >= min_count
    per_bin = _statistics(sums.moments, sums.lags)
    listed = {name: [float(v) if good else None for v, good in zip(values, ok)] for name, values in per_bin.items()}
    overall = {name: float(np.average(values[ok], weights=count[ok])) if ok.any() else None
               for name, values in per_bin.items()}
    phase_centre = 0.5 * (PHASE_EDGES[:-1] + PHASE_EDGES[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        by_phase = sums.phase[1] / sums.phase[0]
    return {"bin_centre_aa": [float(c) for c in centres], "n_bins_used": [int(c) for c in count], **listed,
            "overall": overall, "n_pairs": sums.n_pairs,
            "by_phase": {"phase_centre": phase_centre.tolist(), "n_bins": sums.phase[0].astype(int).tolist(),
                         "variance_ratio": [float(v) if n >= min_count else None
                                            for v, n in zip(by_phase, sums.phase[0])]}}


def consecutive_pairs(nights, mjd_utc, max_gap_min=None):
    """Index pairs (i, j) of consecutive exposures (by time) within each night, at most ``max_gap_min`` minutes
    apart (start to start) when given."""
    nights, mjd = np.asarray(nights), np.asarray(mjd_utc, dtype=float)
    pairs = []
    for night in np.unique(nights):
        members = np.flatnonzero(nights == night)
        members = members[np.argsort(mjd[members])]
        pairs.extend((i, j) for i, j in zip(members[:-1].tolist(), members[1:].tolist())
                     if max_gap_min is None or (mjd[j] - mjd[i]) * 1440.0 <= max_gap_min)
    return pairs
