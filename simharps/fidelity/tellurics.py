"""Tellurics over a real series: PWV per spectrum, telluric residuals in noise units, line positions against BERV.

The stellar spectrum sits still in the barycentric frame of the products while the telluric lines move with -BERV;
over a series spanning tens of km/s of BERV the two separate. With ``r_i = real_n_i - twin_n_i`` (both continuum
normalised, ``degrade.normalise``; the twin noiseless) the stellar-line mismatch every spectrum shares
(``residuals``) is estimated bin by bin as the median of ``r`` over the spectra whose twin telluric transmission
there is >= ``CLEAN_TRANSMISSION`` (so that no telluric residual enters it), where at least ``MIN_CLEAN_SPECTRA``
are, else over all spectra; each spectrum gets the estimate from the other half of the series (alternate spectra:
its own noise never enters it), and it is subtracted: ``d_i`` holds what changes from spectrum to spectrum (noise, tellurics,
the real flux-proportional extra noise). ``telluric_coverage`` is the fraction of the telluric bins with the clean
estimate: where it is low (a dense band such as O2 B, every bin absorbed at every BERV; or a series at one BERV)
the median also holds the telluric mismatch the spectra share, and the band's numbers understate it. Per band
and spectrum:

* ``rms_telluric``, ``rms_clean``: rms of ``d_i / e_i`` over bins where the twin's telluric transmission is
  < ``TELLURIC_TRANSMISSION`` and >= ``CLEAN_TRANSMISSION``; their ratio is the telluric mismatch in units of the
  noise plus everything else that varies (1 = the twin's tellurics are right to within the noise);
* a joint least-squares fit on the bins the telluric lines touch (transmission < ``FIT_TRANSMISSION``)::

      d_i = -dv_i (lambda / c) s_i dT_i/dlambda + (k_i - 1) s_i T_i ln T_i

  with ``T_i`` the twin's telluric transmission and ``s_i = twin_n_i / T_i`` the rest of the twin: ``dv_i`` (km/s)
  is the shift of the real telluric lines against the twin's (> 0: real redder) and ``k_i`` the ratio of the real
  to the twin optical depth (``T^k``; > 1: real deeper, e.g. a PWV fitted too low), both to first order, with
  errors from the real errors. ``line_positions`` fits ``dv_i = a + b BERV_i`` over the series: ``a`` is the mean
  offset, ``b`` would be -1 (or +1) if the twin's BERV sign or frame were wrong and 0 if the tellurics move
  exactly as the real ones do.

The control is the twin's own noisy draw in place of the real spectrum (the estimator's noise-only values:
rms ratio ~1, ``dv`` ~0, ``k`` ~1). PWV per spectrum is what ingest fitted (``simharps.ingest``; the twins use it).

Approximations: the stellar mismatch is taken as the same in every spectrum (true for one star; its median has
the noise of the clean spectra of the other half at that bin, which adds ~1.57 / n_clean of a spectrum's variance,
alike for telluric and clean bins); first-order fit (shifts << the line width, ~0.5 km/s at most); telluric lines
blended with stellar lines enter with the twin's stellar spectrum ``s_i`` (its errors leak into ``k_i``).

Example
-------
>>> out = telluric_series(wave, real_flux, real_error, twin_flux, twin_expected, twin_telluric, berv, pwv)
>>> out["bands"]["o2_b"]["line_positions"]["slope_per_kms"]
"""

import numpy as np
from scipy.stats import spearmanr

from simharps.constants import C_KMS
from simharps.fidelity.degrade import normalise

TELLURIC_BANDS = {"h2o_5900": (5880.0, 5990.0), "o2_gamma": (6275.0, 6320.0), "h2o_6500": (6470.0, 6580.0),
                  "o2_b": (6865.0, 6913.0)}
"""Bands (A, air, barycentric): H2O near 5900 and 6500 A, the O2 gamma (6276-6310) and B (6867-...) bands."""
H2O_BANDS = ("h2o_5900", "h2o_6500")
O2_BANDS = ("o2_gamma", "o2_b")
TELLURIC_TRANSMISSION = 0.98
CLEAN_TRANSMISSION = 0.995
FIT_TRANSMISSION = 0.999
MIN_CLEAN_SPECTRA = 5
PER_SPECTRUM = ("rms_telluric", "rms_clean", "dv_kms", "dv_err_kms", "k", "k_err")


def telluric_series(wavelength_aa, real_flux, real_error, twin_flux, twin_error, twin_expected, twin_telluric,
                    berv_kms, pwv_mm, *, pwv_err_mm=None, airmass=None, bands=TELLURIC_BANDS):
    """Telluric statistics of (n, m) real spectra against their twins, per band (module docstring).

    ``twin_flux`` (a noisy draw, with its ``twin_error``) serves as the control; ``berv_kms``, ``pwv_mm`` (and
    optional ``pwv_err_mm``, ``airmass``): per spectrum. Bands outside ``wavelength_aa`` are left out.
    """
    wave = np.asarray(wavelength_aa, dtype=float)
    berv = np.asarray(berv_kms, dtype=float)
    pwv = np.asarray(pwv_mm, dtype=float)
    out = {"pwv": _pwv_summary(pwv, pwv_err_mm, airmass, berv), "bands": {}}
    for name, (start, stop) in bands.items():
        cols = (wave >= start) & (wave <= stop)
        if cols.sum() < 100:
            continue
        band = {key: np.asarray(values, dtype=float)[:, cols]
                for key, values in (("real", real_flux), ("error", real_error), ("twin_flux", twin_flux),
                                    ("twin_error", twin_error), ("expected", twin_expected),
                                    ("telluric", twin_telluric))}
        real = band_statistics(wave[cols], band["real"], band["error"], band["expected"], band["telluric"])
        control = band_statistics(wave[cols], band["twin_flux"], band["twin_error"], band["expected"],
                                  band["telluric"])
        out["bands"][name] = {
            "range_aa": [float(start), float(stop)], **_summary(real, berv, pwv),
            "control_twin_noise": {key: value for key, value in _summary(control, berv, pwv).items()
                                   if key != "per_spectrum"}}
    return out


def band_statistics(wavelength_aa, flux, error, twin_expected, twin_telluric):
    """Per-spectrum ``rms_telluric``, ``rms_clean``, ``dv_kms`` (+ error), ``k`` (+ error) of one band, and the
    band's ``telluric_coverage``."""
    wave = np.asarray(wavelength_aa, dtype=float)
    flux_n, error_n = normalise(wave, flux, error)
    twin_n, _ = normalise(wave, twin_expected, np.ones_like(twin_expected))
    residual = flux_n - twin_n
    transmission = np.clip(np.asarray(twin_telluric, dtype=float), 1e-6, None)
    with np.errstate(all="ignore"):
        d, estimated = np.empty_like(residual), np.empty(residual.shape, dtype=bool)
        half = np.arange(residual.shape[0]) % 2
        for parity in (0, 1):
            stellar, estimated[half == parity] = _stellar_mismatch(residual[half != parity],
                                                                   transmission[half != parity])
            d[half == parity] = residual[half == parity] - stellar
        z = d / error_n
        rest = twin_n / transmission
    gradient = np.gradient(transmission, wave, axis=1)
    stats = {key: [] for key in PER_SPECTRUM}
    telluric_bins = np.isfinite(residual) & (transmission < TELLURIC_TRANSMISSION)
    stats["telluric_coverage"] = float(np.mean(estimated[telluric_bins])) if telluric_bins.any() else None
    for i in range(flux_n.shape[0]):
        valid = np.isfinite(z[i]) & np.isfinite(rest[i]) & (error_n[i] > 0)
        stats["rms_telluric"].append(_rms(z[i][valid & (transmission[i] < TELLURIC_TRANSMISSION)]))
        stats["rms_clean"].append(_rms(z[i][valid & (transmission[i] >= CLEAN_TRANSMISSION)]))
        fit = valid & (transmission[i] < FIT_TRANSMISSION)
        if fit.sum() < 10:
            for key in ("dv_kms", "dv_err_kms", "k", "k_err"):
                stats[key].append(None)
            continue
        design = np.column_stack([-(wave[fit] / C_KMS) * rest[i][fit] * gradient[i][fit],
                                  rest[i][fit] * transmission[i][fit] * np.log(transmission[i][fit])])
        weight = 1.0 / error_n[i][fit]
        a = design * weight[:, None]
        normal = a.T @ a
        coef = np.linalg.solve(normal, a.T @ (d[i][fit] * weight))
        cov = np.linalg.inv(normal)
        stats["dv_kms"].append(float(coef[0]))
        stats["dv_err_kms"].append(float(np.sqrt(cov[0, 0])))
        stats["k"].append(float(1.0 + coef[1]))
        stats["k_err"].append(float(np.sqrt(cov[1, 1])))
    return stats


def _stellar_mismatch(residual, transmission):
    """Per-bin median residual over the spectra free of tellurics there (over all where fewer than
    ``MIN_CLEAN_SPECTRA`` are), and where the clean estimate was possible."""
    clean = transmission >= CLEAN_TRANSMISSION
    estimated = np.sum(clean & np.isfinite(residual), axis=0) >= MIN_CLEAN_SPECTRA
    with np.errstate(all="ignore"):
        stellar = np.nanmedian(np.where(clean | ~estimated, residual, np.nan), axis=0)
    return stellar, estimated


def _rms(values):
    return float(np.sqrt(np.mean(values**2))) if values.size else None


def _summary(stats, berv, pwv):
    """Medians over spectra, the dv-BERV line and the correlations of the mismatch with PWV."""
    tel, clean = _array(stats["rms_telluric"]), _array(stats["rms_clean"])
    dv, dv_err, k = _array(stats["dv_kms"]), _array(stats["dv_err_kms"]), _array(stats["k"])
    ratio = tel / clean
    out = {"telluric_coverage": stats["telluric_coverage"], "rms_telluric_noise_units": _median(tel), "rms_clean_noise_units": _median(clean),
           "rms_ratio": _median(ratio), "rms_ratio_p16_p84": _percentiles(ratio),
           "k_median": _median(k), "k_p16_p84": _percentiles(k),
           "line_positions": _berv_line(dv, dv_err, berv),
           "spearman_rms_ratio_pwv": _spearman(ratio, pwv), "spearman_k_pwv": _spearman(k, pwv),
           "per_spectrum": [{key: stats[key][i] for key in PER_SPECTRUM} | {"berv_kms": float(berv[i]),
                                                                             "pwv_mm": _f(pwv[i])}
                            for i in range(len(berv))]}
    return out


def _berv_line(dv, dv_err, berv):
    """Weighted line ``dv = a + b BERV``: a (km/s), b, their errors, the rms about it and the BERV range."""
    good = np.isfinite(dv) & np.isfinite(dv_err) & (dv_err > 0)
    if good.sum() < 3 or np.ptp(berv[good]) <= 0:
        return {"n": int(good.sum()), "offset_kms": None, "slope_per_kms": None}
    w = 1.0 / dv_err[good] ** 2
    design = np.column_stack([np.ones(good.sum()), berv[good]])
    normal = design.T @ (design * w[:, None])
    coef = np.linalg.solve(normal, design.T @ (dv[good] * w))
    scatter = dv[good] - design @ coef
    chi2 = float(np.sum(w * scatter**2) / max(good.sum() - 2, 1))
    cov = np.linalg.inv(normal) * max(chi2, 1.0)
    return {"n": int(good.sum()), "offset_kms": float(coef[0]), "offset_err_kms": float(np.sqrt(cov[0, 0])),
            "slope_per_kms": float(coef[1]), "slope_err_per_kms": float(np.sqrt(cov[1, 1])),
            "rms_about_line_kms": float(np.std(scatter)), "median_dv_err_kms": float(np.median(dv_err[good])),
            "reduced_chi2": chi2, "berv_range_kms": [float(berv[good].min()), float(berv[good].max())]}


def _pwv_summary(pwv, pwv_err, airmass, berv):
    good = np.isfinite(pwv)
    out = {"n": int(good.sum()), "median_mm": _median(pwv), "p16_p84_mm": _percentiles(pwv),
           "range_mm": [float(pwv[good].min()), float(pwv[good].max())] if good.any() else None}
    per = []
    for i in range(pwv.size):
        entry = {"pwv_mm": _f(pwv[i]), "berv_kms": float(berv[i])}
        if pwv_err is not None:
            entry["pwv_err_mm"] = _f(np.asarray(pwv_err, float)[i])
        if airmass is not None:
            entry["airmass"] = _f(np.asarray(airmass, float)[i])
        per.append(entry)
    out["per_spectrum"] = per
    if pwv_err is not None:
        out["median_err_mm"] = _median(np.asarray(pwv_err, float))
    return out


def _array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _median(values):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def _percentiles(values):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return [float(v) for v in np.percentile(values, [16, 84])] if values.size else None


def _spearman(a, b):
    good = np.isfinite(a) & np.isfinite(b)
    if good.sum() < 5 or np.ptp(a[good]) == 0 or np.ptp(b[good]) == 0:
        return None
    return float(spearmanr(a[good], b[good]).statistic)


def _f(value):
    return float(value) if np.isfinite(value) else None
