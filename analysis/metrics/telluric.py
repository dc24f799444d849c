"""Telluric versus stellar reconstruction: does the model reproduce telluric lines, stellar lines, continuum?

Inputs, per spectrum (rows) and model channel (columns), all on the model's channels (the same channel selection,
binning and frame as the network input):

- ``data`` x, ``reconstruction`` and ``sigma`` (noise): in the preprocessed units the model sees;
- ``telluric`` T and ``stellar`` S: dimensionless (LSF-convolved transmission; continuum-normalised stellar
  spectrum), not flux-scaled;
- ``expected`` C: the noise-free, telluric-free expected flux (simulated: response x stellar) with the
  preprocessing's multiplicative steps applied (or none): the per-spectrum scale a and offset b of
  ``x ~ a C T + b`` are fitted by weighted least squares, so amplitude normalisation and a subtracted DC level
  need not be replayed on C;
- ``mask``: True where a pixel is valid.

Pixel classes (precedence in this order): telluric T < 0.98 (whatever S); stellar-line T > 0.995 and
1 - S > 0.05; continuum T > 0.995 and 1 - S < 0.01. Pixels with 0.98 <= T <= 0.995, and clean pixels
(T > 0.995) with 0.01 <= 1 - S <= 0.05 (line wings), belong to no class.

Rejection fraction: the slope through the origin, weighted by 1 / sigma^2, of (reconstruction - data) against
the flux a component removes: a_T = a C (1 - T) on telluric pixels, a_S = a R T (1 - S) on stellar-line pixels with
R = C / S the line-free response. 0 = the lines are reproduced, 1 = fully removed (negative: drawn too deep).
On telluric pixels a_S enters as a second regressor when S is known (stellar lines inside telluric pixels would
otherwise leak a model's stellar-line behaviour into the telluric slope; measured: +0.036 for a planted
half-removal of stellar lines); the telluric fraction is its a_T coefficient.
Deviation from the issue's literal "C (1 - S)" for stellar lines: C contains S, so a full removal would give
1 / S > 1 there; a_S is the exact stellar analogue of a_T. Residual RMS in noise units per class:
sqrt(mean(((reconstruction - data) / sigma)^2)); 1 = residuals at the noise level.

Real sets have no truth components: ``estimate_expected`` builds C and S from a star's own series when it has
>= 10 spectra spanning >= 10 km/s of BERV (tellurics move across the stellar lines): per-spectrum median-scaled
flux / T (pixels with T >= 0.3), median over the target's spectra, and S = that median over a pseudo-continuum
(90th percentile in blocks, linearly interpolated between block centres). Otherwise the slopes and the stellar
and continuum classes are skipped, and the reason is reported.

Intervals: delete-d jackknife over clusters of spectra (``analysis.metrics.intervals``).
"""

import warnings

import numpy as np

from analysis.metrics.intervals import jackknife_interval, subsample_rows
from analysis.metrics.schema import entry

TELLURIC_MAX_T = 0.98
CLEAN_MIN_T = 0.995
STELLAR_MIN_DEPTH = 0.05
CONTINUUM_MAX_DEPTH = 0.01
MIN_SERIES_SPECTRA = 10
MIN_SERIES_BERV_SPAN_KMS = 10.0
MIN_SERIES_TRANSMISSION = 0.3
CONTINUUM_PERCENTILE = 90.0
NONE, TELLURIC, STELLAR, CONTINUUM = 0, 1, 2, 3
CLASS_NAMES = {TELLURIC: "telluric", STELLAR: "stellar", CONTINUUM: "continuum"}


def pixel_classes(telluric, stellar=None):
    """int8 class per pixel (``NONE``, ``TELLURIC``, ``STELLAR``, ``CONTINUUM``) with the module's precedence."""
    T = np.asarray(telluric, dtype=np.float64)
    classes = np.zeros(T.shape, dtype=np.int8)
    classes[T < TELLURIC_MAX_T] = TELLURIC
    if stellar is not None:
        depth = 1.0 - np.asarray(stellar, dtype=np.float64)
        clean = T > CLEAN_MIN_T
        classes[clean & (depth > STELLAR_MIN_DEPTH)] = STELLAR
        classes[clean & (depth < CONTINUUM_MAX_DEPTH)] = CONTINUUM
    return classes


def _affine_scale(data, model, weight):
    """Per-spectrum a of the weighted least-squares fit data ~ a model + b (weight 0 = unused pixel)."""
    sw = weight.sum(axis=1)
    sx, sy = (weight * model).sum(axis=1), (weight * data).sum(axis=1)
    sxx, sxy = (weight * model * model).sum(axis=1), (weight * model * data).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (sw * sxy - sx * sy) / (sw * sxx - sx * sx)


def _zero_nan(x):
    return np.where(np.isfinite(x), x, 0.0)


def _normal_equations(residual, regressors, weight, select):
    """Per-spectrum weighted normal equations of residual ~ sum_i beta_i a_i over ``select``.

    Returns (G (n, m, m), b (n, m), sum (r / sigma)^2 (n,), pixel count (n,)).
    """
    w = np.where(select, weight, 0.0)
    a = [_zero_nan(r) for r in regressors]
    n, m = residual.shape[0], len(a)
    G = np.array([[(w * ai * aj).sum(axis=1) for aj in a] for ai in a]).reshape(m, m, n).transpose(2, 0, 1)
    b = np.array([(w * residual * ai).sum(axis=1) for ai in a]).reshape(m, n).T
    return G, b, (w * residual ** 2).sum(axis=1), select.sum(axis=1)


def _slope(G, b, _ss, _count):
    """First coefficient of the pooled weighted least-squares fit (NaN when singular or empty)."""
    G, b = G.sum(axis=0), b.sum(axis=0)
    if not np.all(np.isfinite(G)) or np.linalg.cond(G) > 1e12:
        return np.nan
    return float(np.linalg.solve(G, b)[0])


def _rms(_G, _b, ss, count):
    total = count.sum()
    return float(np.sqrt(ss.sum() / total)) if total > 0 else np.nan


def _interval_entry(per_spectrum, statistic, draws, fraction, estimator, params):
    value = statistic(*per_spectrum)
    subsample_values = [statistic(*(s[rows] for s in per_spectrum)) for rows in draws]
    count = per_spectrum[-1]
    params = {**params, "n_pixels": int(np.sum(count)), "n_subsamples": len(draws)}
    return entry(value, jackknife_interval(value, subsample_values, fraction), estimator=estimator,
                 n=int(np.sum(count > 0)), params=params)


def telluric_rejection(data, reconstruction, sigma, telluric, *, stellar=None, expected=None, mask=None,
                       clusters=None, n_subsamples=20, fraction=0.5, seed=0, notes=None):
    """Telluric and stellar rejection fractions and per-class residual RMS (noise units).

    Arrays (n_spectra, n_channels) as the module docstring says; ``stellar`` / ``expected`` may be None (then the
    classes or slopes that need them are null, with the reason in ``params``), or hold NaN rows for spectra without
    an estimate. ``clusters`` (n_spectra,) labels for the intervals (default: one per spectrum); ``notes``: text
    added to every entry's params (e.g. how S was obtained). Returns {metric name: entry}.
    """
    x, recon = np.asarray(data, np.float64), np.asarray(reconstruction, np.float64)
    sig, T = np.asarray(sigma, np.float64), np.asarray(telluric, np.float64)
    valid = np.isfinite(x) & np.isfinite(recon) & np.isfinite(sig) & (sig > 0) & np.isfinite(T)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    S = None if stellar is None else np.asarray(stellar, np.float64)
    classes = np.where(valid, pixel_classes(T, S), NONE)
    residual = np.where(valid, recon - x, 0.0)
    weight = np.where(valid, 1.0 / np.where(valid, sig, 1.0) ** 2, 0.0)
    clusters = np.arange(x.shape[0]) if clusters is None else np.asarray(clusters)
    draws = subsample_rows(clusters, n_subsamples, fraction, seed)
    params = {"classes": "telluric T<0.98 > stellar-line (T>0.995, 1-S>0.05) > continuum (T>0.995, 1-S<0.01)",
              "fraction": fraction, **({"note": notes} if notes else {})}
    out = {}
    a_t = a_s = None
    if expected is not None:
        C = np.asarray(expected, np.float64)
        fit = valid & np.isfinite(C)
        scale = _affine_scale(np.where(fit, x, 0.0), np.where(fit, C * T, 0.0), np.where(fit, weight, 0.0))
        a_t = scale[:, None] * C * (1.0 - T)
        if S is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                a_s = scale[:, None] * np.where(S > 0, C / S, np.nan) * T * (1.0 - S)
    slope_text = "weighted (1/sigma^2) least-squares slope through the origin of (reconstruction - data) on "
    fits = {TELLURIC: ([a_t] + ([a_s] if a_s is not None else []), "expected",
                       slope_text + "the flux tellurics remove" + (" (stellar term as a second regressor)"
                                                                   if a_s is not None else "")),
            STELLAR: ([a_s], "expected and stellar", slope_text + "the flux stellar lines remove")}
    for cls, (regressors, need, estimator) in fits.items():
        name = f"{CLASS_NAMES[cls]}.rejection"
        if regressors[0] is None:
            out[name] = entry(np.nan, estimator=estimator, n=0, params={**params, "skipped": f"needs {need}"})
            continue
        select = (classes == cls) & np.all([np.isfinite(r) for r in regressors], axis=0)
        out[name] = _interval_entry(_normal_equations(residual, regressors, weight, select), _slope, draws,
                                    fraction, estimator, params)
    rms_text = "rms of (reconstruction - data) / sigma"
    for cls in (TELLURIC, STELLAR, CONTINUUM):
        name = f"{CLASS_NAMES[cls]}.residual_rms_noise"
        if cls != TELLURIC and S is None:
            out[name] = entry(np.nan, estimator=rms_text, n=0, params={**params, "skipped": "needs stellar"})
            continue
        out[name] = _interval_entry(_normal_equations(residual, [], weight, classes == cls), _rms, draws,
                                    fraction, rms_text, params)
    return out


def pseudo_continuum(spectrum, block_px):
    """Upper envelope: the 90th percentile of the finite pixels in blocks of ``block_px``, linearly interpolated
    between block centres (constant beyond the outer centres); NaN where no block has data."""
    y = np.asarray(spectrum, np.float64)
    centres, levels = [], []
    for start in range(0, y.size, block_px):
        block = y[start:start + block_px]
        finite = np.isfinite(block)
        if finite.sum() >= max(block.size // 2, 1):
            centres.append(start + (block.size - 1) / 2.0)
            levels.append(np.percentile(block[finite], CONTINUUM_PERCENTILE))
    if not centres:
        return np.full(y.size, np.nan)
    return np.interp(np.arange(y.size), centres, levels)


def estimate_expected(flux, telluric, targets, berv_kms, mask=None, *, block_px=2000):
    """Real sets: (expected C, stellar S, qualifies (n,) bool, note) from each target's own series.

    ``flux``: un-offset flux on the model's channels (any per-spectrum scale); C and S are NaN for spectra of
    targets with fewer than 10 spectra or less than 10 km/s of BERV span.
    """
    flux, T = np.asarray(flux, np.float64), np.asarray(telluric, np.float64)
    valid = np.isfinite(flux) & np.isfinite(T) & (T >= MIN_SERIES_TRANSMISSION)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.array([np.median(f[v]) if v.any() else np.nan for f, v in zip(flux, valid)])
        ratio = np.where(valid, flux / (T * scale[:, None]), np.nan)
    C, S = np.full(flux.shape, np.nan), np.full(flux.shape, np.nan)
    targets, berv = np.asarray(targets).astype(str), np.asarray(berv_kms, np.float64)
    qualifies = np.zeros(flux.shape[0], dtype=bool)
    for target in np.unique(targets):
        rows = np.flatnonzero(targets == target)
        span = np.ptp(berv[rows]) if np.isfinite(berv[rows]).all() else 0.0
        if rows.size < MIN_SERIES_SPECTRA or span < MIN_SERIES_BERV_SPAN_KMS:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)          # "All-NaN slice": pixels never usable
            median = np.nanmedian(ratio[rows], axis=0)
        C[rows] = scale[rows, None] * median[None, :]
        S[rows] = median / pseudo_continuum(median, block_px)
        qualifies[rows] = True
    note = (f"S from the per-target median of flux / T ({int(qualifies.sum())} of {qualifies.size} spectra in "
            f"targets with >= {MIN_SERIES_SPECTRA} spectra over >= {MIN_SERIES_BERV_SPAN_KMS:g} km/s of BERV)")
    return C, S, qualifies, note
