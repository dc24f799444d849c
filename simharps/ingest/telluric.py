"""Telluric component of a real spectrum: transmission at the header BERV and airmass, PWV fitted or defaulted.

Equation (``simharps.telluric``; observatory frame, HITRAN O2 + H2O line by line), computed by the same code as
the telluric component of a simulated product (``simharps.forward.telluric_component``: the atmosphere stage on the
0.15 km/s lattice, the Gaussian LSF, a quintic read at the product bins)::

    T_obs(lambda)  = LSF_R * exp(-[X tau_O2(lambda) + X (PWV / 1 mm) tau_H2O(lambda)])
    T_bary(lambda) = T_obs(lambda / (1 + BERV / c))          on the dataset grid (barycentric, air, A)

X is the header airmass (start of exposure), BERV the header (classical DRS) BERV, R the instrument's resolving
power (HARPS 115,000; ESPRESSO 140,000; the header's ``SPEC_RES`` where given). Telluric lines are at rest in the
observatory frame, so in the barycentric product they sit at lambda_obs (1 + BERV / c): exactly where the
component puts them.

PWV (``pwv_mm``, ``pwv_source``)
--------------------------------
1. ``fitted``: least squares of the model against the data in the strong-H2O windows ``H2O_WINDOWS_AA``
   (observatory frame: 5880-5990 A and 6460-6590 A, the deepest H2O bands inside 3781-6913 A; O2 is held at
   the airmass). Each 1 A chunk of a window gets its own linear continuum, d = (a + b x) T(PWV), solved
   linearly for every PWV of a grid (0-40 mm), so the continuum normalisation is local and exact; chi^2 is
   weighted by the error; pixels off by more than 5 robust sigma at the first-pass best PWV (stellar line cores
   such as Na D and H alpha, which the model lacks) are dropped and the fit repeated. The minimum is refined by
   a parabola; its 1-sigma error comes from the chi^2 curvature, scaled by sqrt(reduced chi^2).
   The fit counts as constrained when the minimum lies inside the grid (PWV > 0), chi^2(0) - chi^2_min > 25
   (the H2O lines are detected at 5 sigma) and the error is below max(0.5 mm, 0.3 PWV).
2. ``header``: otherwise the header's line-of-sight water vapour (``ESO TEL[n] AMBI IWV START``; Paranal's
   LHATPRO radiometer, ESPRESSO files), when present.
3. ``default``: otherwise the site median (``PWV_DEFAULT_MM``): La Silla 3.9 mm, the night-time median of the
   VLT site survey (1983-1989, VLT Report 62, 1990; ESO astroclimatology page "Precipitable Water Vapour at
   La Silla"); Paranal 2.4 mm (median of the LHATPRO radiometer, Querel & Kerber 2014, SPIE 9147; the site
   survey gave 2.3 mm). ``pwv_default_mm`` overrides it.
The row also keeps ``pwv_fit_mm``/``pwv_fit_err_mm`` (None if the fit could not run) and ``pwv_header_mm``.

Approximations: the La Silla atmosphere profile is used at every site (at Paranal, 743 vs 772 hPa, the O2
lines are ~4 % too deep); the model's O2 depth is fixed by the airmass (not fitted); start-of-exposure airmass;
the H2O windows hold few lines deeper than 4 % at 1 mm and zenith, so at S/N ~30 per bin and low PWV the fit
is rarely constrained (then the default is used, which is the honest choice).

Example
-------
>>> from simharps.ingest.telluric import fit_pwv, telluric_component
>>> fit = fit_pwv(grid_aa, flux, error, berv_kms=-8.69, airmass=1.08, resolution=115_000)
>>> transmission = telluric_component(grid_aa, berv_kms=-8.69, airmass=1.08, pwv_mm=fit.pwv_mm, resolution=115_000)
"""

from dataclasses import dataclass

import numpy as np

from simharps.constants import C_KMS
from simharps.forward import telluric_component as forward_telluric_component
from simharps.instrument import RESOLVING_POWER as HARPS_RESOLVING_POWER
from simharps.sites import SITES

H2O_WINDOWS_AA = ((5880.0, 5990.0), (6460.0, 6590.0))
"""Observatory-frame air wavelengths (A) of the H2O bands used to fit PWV."""
PWV_GRID_MM = np.concatenate([np.arange(0.0, 2.0, 0.1), np.arange(2.0, 10.0, 0.25), np.arange(10.0, 40.01, 1.0)])
PWV_NODES_MM = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0])
"""PWV values at which the fit evaluates the model exactly (it interpolates ln T in between)."""
PWV_DEFAULT_MM = {name: site["median_pwv_mm"] for name, site in SITES.items()}
"""Site medians used when PWV is neither fitted nor in the header (``simharps.sites``)."""
PWV_FALLBACK_MM = SITES["lasilla"]["median_pwv_mm"]
"""Default at an unknown site (the La Silla median)."""
RESOLVING_POWER = {"HARPS": HARPS_RESOLVING_POWER, "ESPRESSO": 140_000.0}
CHUNK_AA = 1.0
CLIP_SIGMA = 5.0
MIN_DELTA_CHI2 = 25.0


@dataclass(frozen=True)
class PwvFit:
    """Result of ``fit_pwv``: best PWV (mm), 1-sigma error (mm), chi^2 gain over PWV = 0, and whether constrained."""

    pwv_mm: float
    pwv_err_mm: float
    delta_chi2: float
    constrained: bool
    n_pixels: int


def telluric_component(grid_aa, berv_kms, airmass, pwv_mm, resolution):
    """Transmission on the barycentric ``grid_aa`` (NaN beyond the telluric tables), computed by the same code as a
    simulated product's telluric component (``simharps.forward.telluric_component``)."""
    return forward_telluric_component(grid_aa, berv_kms, airmass, pwv_mm, resolution)


def fit_pwv(grid_aa, flux, error, berv_kms, airmass, resolution, windows=H2O_WINDOWS_AA, pwv_grid_mm=PWV_GRID_MM):
    """Least-squares PWV from the H2O windows of one spectrum on the barycentric grid; None if no data there."""
    grid = np.asarray(grid_aa, dtype=float)
    wave_obs = grid / (1.0 + berv_kms / C_KMS)
    flux = np.asarray(flux, dtype=float)
    error = np.asarray(error, dtype=float)
    select = np.zeros(grid.size, bool)
    for lo, hi in windows:
        select |= (wave_obs >= lo) & (wave_obs < hi)
    good = select & np.isfinite(flux) & np.isfinite(error) & (error > 0)
    if good.sum() < 200:
        return None
    wave, data, weight = wave_obs[good], flux[good], 1.0 / error[good] ** 2
    model = _transmission_rows(grid[good], berv_kms, airmass, np.asarray(pwv_grid_mm, dtype=float), resolution,
                               windows)
    chunk = np.floor(wave / CHUNK_AA).astype(np.int64)
    chunk = np.unique(chunk, return_inverse=True)[1]
    x = wave - wave.mean()
    use = np.ones(wave.size, bool)
    for _ in range(2):
        chi2, best_fit = _chi2_per_pwv(model, data, weight * use, x, chunk)
        best = int(np.argmin(chi2))
        residual = (data - best_fit[best]) * np.sqrt(weight)
        scale = 1.4826 * np.median(np.abs(residual[use]))
        use = np.abs(residual) < CLIP_SIGMA * max(scale, 1e-12)
    chi2, _ = _chi2_per_pwv(model, data, weight * use, x, chunk)
    pwv, curvature = _parabola_minimum(np.asarray(pwv_grid_mm), chi2)
    reduced = chi2.min() / max(int(use.sum()) - 2 * (chunk.max() + 1) - 1, 1)
    pwv_err = np.sqrt(2.0 / curvature * max(reduced, 1.0)) if curvature > 0 else np.inf
    best = int(np.argmin(chi2))
    delta_chi2 = float((chi2[0] - chi2.min()) / max(reduced, 1.0))
    constrained = bool(0 < best < len(chi2) - 1 and delta_chi2 > MIN_DELTA_CHI2 and pwv_err < max(0.5, 0.3 * pwv))
    return PwvFit(float(pwv), float(pwv_err), delta_chi2, constrained, int(use.sum()))


def _transmission_rows(grid_aa, berv_kms, airmass, pwv_grid_mm, resolution, windows):
    """Telluric components (n_pwv, n_grid) at the barycentric ``grid_aa``: exact (``telluric_component``) at
    ``PWV_NODES_MM``, ln T linear in PWV between them.

    H2O lines in these windows are weak (tau < 0.1 per mm at zenith), so ln T of the convolved model is
    nearly linear in PWV; the interpolation error is far below the noise. Each window is modelled apart, so
    the span between windows is never convolved.
    """
    wave_obs = grid_aa / (1.0 + berv_kms / C_KMS)
    nodes = np.union1d(PWV_NODES_MM, [pwv_grid_mm.max()])
    out = np.empty((pwv_grid_mm.size, grid_aa.size))
    for lo, hi in windows:
        part = (wave_obs >= lo) & (wave_obs < hi)
        if not part.any():
            continue
        log_t = np.log(np.clip(telluric_component(grid_aa[part], berv_kms, airmass, nodes, resolution), 1e-30, None))
        k = np.clip(np.searchsorted(nodes, pwv_grid_mm, side="right") - 1, 0, nodes.size - 2)
        frac = ((pwv_grid_mm - nodes[k]) / (nodes[k + 1] - nodes[k]))[:, None]
        out[:, part] = np.exp(log_t[k] * (1.0 - frac) + log_t[k + 1] * frac)
    return out


def _chi2_per_pwv(model, data, weight, x, chunk):
    """chi^2 of d = (a + b x) T per chunk, continuum solved linearly, for every model row; and the best-fit curves."""
    n_chunks = chunk.max() + 1

    def per_chunk(values):
        return np.stack([np.bincount(chunk, weights=row, minlength=n_chunks) for row in np.atleast_2d(values)])

    wt, wtx = weight * model, weight * model * x
    s00, s01, s11 = per_chunk(wt * model), per_chunk(wtx * model), per_chunk(wtx * model * x)
    r0, r1 = per_chunk(wt * data), per_chunk(wtx * data)
    det = s00 * s11 - s01**2
    ok = det > 1e-12 * np.maximum(s00 * s11, 1e-300)
    constant_only = np.where(s00 > 0, r0 / np.where(s00 > 0, s00, 1.0), 0.0)
    a = np.where(ok, (s11 * r0 - s01 * r1) / np.where(ok, det, 1.0), constant_only)
    b = np.where(ok, (s00 * r1 - s01 * r0) / np.where(ok, det, 1.0), 0.0)
    fit = (a[:, chunk] + b[:, chunk] * x) * model
    chi2 = np.sum(weight * (data - fit) ** 2, axis=1)
    return chi2, fit


def _parabola_minimum(x, y):
    """Vertex and second derivative of the parabola through the grid minimum and its neighbours."""
    i = int(np.clip(np.argmin(y), 1, len(y) - 2))
    coef = np.polyfit(x[i - 1:i + 2], y[i - 1:i + 2], 2)
    if coef[0] <= 0:
        return float(x[np.argmin(y)]), 0.0
    return float(np.clip(-coef[1] / (2 * coef[0]), x[0], x[-1])), float(2 * coef[0])


def default_pwv_mm(site, override=None):
    """The default PWV: ``override`` if given, else the site median (La Silla 3.9 mm, Paranal 2.4 mm)."""
    if override is not None:
        return float(override)
    return PWV_DEFAULT_MM.get(site, PWV_FALLBACK_MM)


def choose_pwv(fit, header_pwv_mm, site, pwv_default_mm=None):
    """(pwv_mm, pwv_source): the fit if constrained, else the header value, else the default."""
    if fit is not None and fit.constrained:
        return fit.pwv_mm, "fitted"
    if header_pwv_mm is not None and np.isfinite(header_pwv_mm) and header_pwv_mm >= 0:
        return float(header_pwv_mm), "header"
    return default_pwv_mm(site, pwv_default_mm), "default"
