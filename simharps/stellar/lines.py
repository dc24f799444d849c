"""Metal and molecular line opacity: Voigt profiles of the shipped line table on a log-lambda grid.

Equation
--------
Each line adds a line-to-continuum opacity ratio (Milne-Eddington with a finite core, see ``linelist``)::

    eta_i(v) = eta_0,i * V(v - v_i; sigma_i, gamma_i) / V(0; sigma_i, gamma_i)

with V the Voigt profile (``scipy.special.voigt_profile``), v the velocity offset from the line centre
(km/s; the grid is uniform in ln lambda, so offsets are pixel offsets times the step). The emergent
normalised flux of all lines is ``1 - A_c eta / (1 + eta)`` with ``eta = sum_i eta_i`` (blends add in
opacity) and A_c the maximum central depth of ``linelist.maximum_depth`` (carried per line in
``LineParameters.max_depth`` for the curve of growth of the blanketing).

Line-centre opacity (the physics that moves the lines with the stellar parameters):

* Teff: log eta_0 interpolated linearly in Teff between the spectral-type tables (``LineTable``).
* [M/H]: ``eta_0 *= 10**(n_heavy * mh_dex)`` (n_heavy = number of non-hydrogen atoms of the species,
  e.g. 1 for Fe I and CH, 2 for TiO): the Milne-Eddington curve of growth then makes weak lines grow
  linearly and saturated lines slowly.
* logg (Saha and dissociation balance): ``log eta_0 += m_s(Teff, logg) - m_s(Teff, logg_ref)`` with the
  population model m_s of ``simharps.stellar.linelist`` (H- continuum ~ N_H N_e, N_e ~ g^(1/3), N_H ~
  g^(1/2)) relative to the dwarf-sequence logg of the tables: ion lines of mostly ionised elements take
  ~ g^(-1/3), their neutral lines ~ g^0, lines of mostly neutral elements ~ g^(-1/3), molecules grow with g.
* microturbulence: the integrated line opacity is conserved, ``eta_0 *= dv_D(1 km/s) / dv_D(vmic)``.

Widths: Doppler ``dv_D = sqrt(2 k T / m + vmic^2)`` (sigma = dv_D / sqrt 2) at the line-forming
temperature ``T = 0.85 Teff``. Lorentz HWHM ``gamma = Gamma * lambda / (4 pi)`` with
``Gamma = gamma_rad + gamma_4 N_e + gamma_6 N_H``: gamma_rad from VALD (classical 2.223e15 / lambda_A^2
s^-1 when absent); gamma_4 per electron from VALD scaled as (T/10^4 K)^(1/6) (0 when absent);
gamma_6 per H atom from VALD's log value scaled as (T/10^4 K)^0.3, or from the Anstee-Barklem-O'Mara
cross-section sigma and exponent alpha (Barklem, Piskunov & O'Mara 2000, eq. 3), or log gamma_6 = -7.5
at 10^4 K when VALD gives none (a typical Unsold-times-2 value). The line-forming layer has
``N_H = 1e17 cm^-3 (g/g_sun)^(1/2) (Teff/5772 K)^-3`` and ``N_e = 1e13 cm^-3 (g/g_sun)^(1/3)
(Teff/5772 K)^6`` (scaled from the solar photosphere near log tau_500 = -0.5; the g^(1/2) pressure
scaling is the usual grey-atmosphere result ``P ~ g^(1/2..2/3)``).

Approximations: one line-forming layer per star (no depth dependence of T, N_H, N_e); Milne-
Eddington line formation (maximum depth A_c(lambda, Teff) < 1 from one surface source-function
temperature for every line, no chromospheric emission cores); no hyperfine structure (isotopologues of
CH, CN, MgH are separate lines).

Evaluation: lines of the depth table are evaluated one by one on their own window out to where eta_i
falls below 2e-4 (windows bucketed by powers of 1.25 in length and scattered with ``np.bincount``); within
``CORE_SIGMAS`` Gaussian sigmas of the centre with ``scipy.special.voigt_profile``, beyond with the
asymptotic Voigt wing ``L(v) + (sigma^2 / 2) L''(v)`` (L the Lorentzian; relative error < 0.2 %). The
forest table's lines (~250,000, mostly weak) are grouped into classes of equal width (sigma to
``SIGMA_CLASS_DEX`` = 0.01 dex, gamma to ``GAMMA_CLASS_DEX`` = 0.04 dex); per class, each line's opacity
area is deposited at its fractional pixel position (quadratic Lagrange weights on the nearest pixel and
its two neighbours, which keep the area, centroid and second moment) and the deposit is convolved with the
class's peak-normalised Voigt kernel (FFT overlap-add), so a class costs one convolution of its wavelength
span instead of one profile per line. A line's width is off by at most half a class step (1.2 % in sigma,
5 % in gamma); the sub-pixel phase enters only at third order. Sparse classes are evaluated line by line
with the same deposit and kernel, window by window (the same numbers as the convolution).

Example
-------
>>> import numpy as np
>>> from simharps.stellar.linelist import maximum_depth
>>> from simharps.stellar.lines import line_opacity, line_parameters
>>> ln_wave = np.log(5000.0) + np.arange(20000) * 0.15 / 299792.458
>>> eta = line_opacity(ln_wave, 0.15, line_parameters(teff_k=5770, logg_cgs=4.44, mh_dex=0.0, vmic_kms=1.0))
>>> normalised = 1 - maximum_depth(np.exp(ln_wave), 5770.0) * eta / (1 + eta)
"""

from typing import NamedTuple

import numpy as np
from scipy.signal import oaconvolve
from scipy.special import gamma as gamma_function
from scipy.special import voigt_profile

from simharps.constants import AMU_G, C_KMS, K_BOLTZMANN_CGS
from simharps.grids import accumulate_windows
from simharps.stellar.linelist import (  # noqa: F401  (photosphere_state: re-exported)
    REFERENCE_VMIC_KMS,
    load_line_table,
    maximum_depth,
    photosphere_state,
)

BOHR_RADIUS_CM = 0.529177e-8
DEFAULT_LOG_GAMMA6 = -7.5
WINDOW_THRESHOLD = 2e-4
MAX_HALF_WIDTH_KMS = 3000.0
CHUNK_ELEMENTS = 1 << 22
BUCKET_RATIO = 1.25
"""Line windows are rounded up to powers of this ratio (lines of one window length are evaluated together)."""
CORE_SIGMAS = 10.0
"""Half-width (in Gaussian sigmas) inside which line profiles are exact Voigt profiles."""
SIGMA_CLASS_DEX = 0.01
GAMMA_CLASS_DEX = 0.04
DIRECT_COST_RATIO = 0.2
"""A class of forest lines is convolved when its profile evaluations would exceed this times its pixel span."""


class LineParameters(NamedTuple):
    """Per-line quantities for one star: air wavelength (A), eta_0, Gaussian sigma and Lorentz HWHM (km/s),
    the maximum central depth A_c at the line, and whether the line is a forest line (class evaluation)."""

    wavelength_air_aa: np.ndarray
    eta0: np.ndarray
    sigma_kms: np.ndarray
    gamma_kms: np.ndarray
    max_depth: np.ndarray
    forest: np.ndarray


def van_der_waals_per_perturber(vdw_code, mass_amu, temperature_k):
    """gamma_6 / N_H (s^-1 cm^3) from VALD's field: log value, ABO sigma.alpha code, or the default."""
    gamma6 = np.full(vdw_code.shape, 10.0**DEFAULT_LOG_GAMMA6 * (temperature_k / 1e4) ** 0.3)
    log_given = vdw_code < 0
    gamma6[log_given] = 10.0 ** vdw_code[log_given] * (temperature_k / 1e4) ** 0.3
    abo = vdw_code > 0
    sigma_cm2 = np.floor(vdw_code[abo]) * BOHR_RADIUS_CM**2
    alpha = vdw_code[abo] - np.floor(vdw_code[abo])
    reduced = 1.0 / (1.0 / 1.008 + 1.0 / mass_amu[abo])
    v_mean = np.sqrt(8.0 * K_BOLTZMANN_CGS * temperature_k / (np.pi * reduced * AMU_G))
    v0 = 1e6
    gamma6[abo] = (4.0 / np.pi) ** (alpha / 2) * gamma_function((4.0 - alpha) / 2) * v0 * sigma_cm2 * (v_mean / v0) ** (1 - alpha)
    return gamma6


def line_parameters(teff_k, logg_cgs, mh_dex, vmic_kms, table=None):
    """``LineParameters`` of every table line for the given stellar parameters."""
    table = load_line_table() if table is None else table
    temperature, n_h, n_e = photosphere_state(teff_k, logg_cgs)
    mass = table.species_mass_amu[table.species_index]
    heavy = table.species_heavy_atoms[table.species_index]
    thermal2 = 2.0 * K_BOLTZMANN_CGS * temperature / (mass * AMU_G) / 1e10
    dv_doppler = np.sqrt(thermal2 + vmic_kms**2)
    dv_reference = np.sqrt(thermal2 + REFERENCE_VMIC_KMS**2)
    log_eta = table.log_eta_at(teff_k) + heavy * mh_dex
    log_eta += table.logg_correction(teff_k, logg_cgs)[table.species_index]
    eta0 = 10.0**log_eta * dv_reference / dv_doppler
    wave = table.wavelength_air_aa
    gamma_rad = np.where(table.log_gamma_rad > 0, 10.0**table.log_gamma_rad, 2.223e15 / wave**2)
    gamma_stark = np.where(table.log_gamma_stark < 0, 10.0**table.log_gamma_stark, 0.0) * (temperature / 1e4) ** (1 / 6)
    gamma6 = van_der_waals_per_perturber(table.vdw_code, mass, temperature)
    damping = gamma_rad + gamma_stark * n_e + gamma6 * n_h
    gamma_kms = damping * wave * 1e-8 / (4.0 * np.pi) / 1e5
    return LineParameters(wave, eta0, dv_doppler / np.sqrt(2.0), gamma_kms, maximum_depth(wave, teff_k), table.forest)


def _half_width_kms(eta0, sigma_kms, gamma_kms):
    """Velocity half-width beyond which a line's eta falls below WINDOW_THRESHOLD."""
    dv_doppler = np.sqrt(2.0) * sigma_kms
    core = dv_doppler * np.sqrt(np.log(np.maximum(eta0, 1.0) / WINDOW_THRESHOLD))
    peak = voigt_profile(0.0, sigma_kms, gamma_kms)
    wing = np.sqrt(eta0 * gamma_kms / (np.pi * peak * WINDOW_THRESHOLD))
    return np.minimum(np.maximum(core, wing), MAX_HALF_WIDTH_KMS)


def voigt_wing(velocity_kms, sigma_kms, gamma_kms):
    """Asymptotic Voigt wing (per km/s) ``L(v) + (sigma^2 / 2) L''(v)`` (L: Lorentzian of HWHM gamma; |v| >> sigma)."""
    v2 = velocity_kms * velocity_kms
    inverse = 1.0 / (v2 + gamma_kms * gamma_kms)
    correction = sigma_kms * sigma_kms * (3.0 * v2 - gamma_kms * gamma_kms) * inverse * inverse
    return (gamma_kms / np.pi) * inverse * (1.0 + correction)


def _accumulate(out, nearest_index, half_width_px, profile, chunk_elements=CHUNK_ELEMENTS, fixed_width=False):
    """``simharps.grids.accumulate_windows`` with windows bucketed by factors of ``BUCKET_RATIO`` (not 2), or of exactly
    ``half_width_px`` with ``fixed_width``."""
    if fixed_width:
        windows = np.asarray(half_width_px, dtype=np.int64)
    else:
        steps = np.ceil(np.log(np.maximum(half_width_px, 1)) / np.log(BUCKET_RATIO)).astype(np.int64)
        windows = np.ceil(BUCKET_RATIO ** steps.astype(float) - 1e-9).astype(np.int64)
    return accumulate_windows(out, nearest_index, half_width_px, profile, chunk_elements, windows=windows)


def _windowed_opacity(eta, centre_px, eta0, sigma, gamma, step_kms):
    """Add line-by-line Voigt profiles (own windows, exact core, asymptotic wings) into ``eta`` (in place)."""
    n_pix = len(eta)
    half_px = np.ceil(_half_width_kms(eta0, sigma, gamma) / step_kms).astype(np.int64) + 2
    keep = np.flatnonzero((eta0 > WINDOW_THRESHOLD) & (centre_px + half_px >= 0) & (centre_px - half_px < n_pix))
    if keep.size == 0:
        return eta
    centre, scale = centre_px[keep], eta0[keep] / voigt_profile(0.0, sigma[keep], gamma[keep])
    sigma, gamma = sigma[keep], gamma[keep]
    nearest = np.rint(centre).astype(np.int64)

    def profile(selected, index):
        velocity_kms = (index - centre[selected, None]) * step_kms
        s, g = sigma[selected, None], gamma[selected, None]
        width = (index.shape[1] - 1) // 2
        core = min(width, int(np.ceil(CORE_SIGMAS * s.max() / step_kms)) + 1)
        values = voigt_wing(velocity_kms, s, g)
        columns = slice(width - core, width + core + 1)
        values[:, columns] = voigt_profile(velocity_kms[:, columns], s, g)
        return scale[selected, None] * values

    return _accumulate(eta, nearest, half_px[keep], profile)


def _class_opacity(eta, centre_px, eta0, sigma, gamma, step_kms):
    """Add forest lines into ``eta`` (in place): per (sigma, gamma) class, area deposit convolved with one kernel."""
    n_pix = len(eta)
    half_px = np.ceil(_half_width_kms(eta0, sigma, gamma) / step_kms).astype(np.int64) + 2
    keep = (eta0 > WINDOW_THRESHOLD) & (centre_px + half_px >= 0) & (centre_px - half_px < n_pix - 1)
    centre_px, eta0, sigma, gamma = centre_px[keep], eta0[keep], sigma[keep], gamma[keep]
    if centre_px.size == 0:
        return eta
    k_sigma = np.rint(np.log10(sigma) / SIGMA_CLASS_DEX).astype(np.int64)
    k_gamma = np.rint(np.log10(gamma) / GAMMA_CLASS_DEX).astype(np.int64)
    key = k_sigma * 1_000_000 + k_gamma
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
    area = eta0 / voigt_profile(0.0, sigma, gamma)
    for first, stop in zip(starts, np.r_[starts[1:], order.size]):
        members = order[first:stop]
        sigma_c = 10.0 ** (k_sigma[members[0]] * SIGMA_CLASS_DEX)
        gamma_c = 10.0 ** (k_gamma[members[0]] * GAMMA_CLASS_DEX)
        peak_c = voigt_profile(0.0, sigma_c, gamma_c)
        amplitude = area[members] * peak_c
        half = int(np.ceil(_half_width_kms(amplitude.max(), sigma_c, gamma_c) / step_kms)) + 2
        kernel = voigt_profile(np.arange(-half, half + 1) * step_kms, sigma_c, gamma_c) / peak_c
        position = centre_px[members]
        nearest = np.rint(position).astype(np.int64)
        # quadratic (Lagrange) sharing over the nearest pixel and its neighbours: the deposit keeps each line's
        # area, centroid and second moment, so the profile does not depend on the sub-pixel phase to second order
        delta = position - nearest
        weights = (0.5 * delta * (delta - 1.0), 1.0 - delta * delta, 0.5 * delta * (delta + 1.0))
        lo, hi = nearest.min() - 1, nearest.max() + 1
        if members.size * (2 * half + 3) < DIRECT_COST_RATIO * (hi - lo + 1 + 2 * half):
            _class_windows(eta, nearest, weights, amplitude, kernel)
            continue
        deposit = np.zeros(hi - lo + 1)
        for shift, weight in zip((-1, 0, 1), weights):
            deposit += np.bincount(nearest + shift - lo, amplitude * weight, minlength=hi - lo + 1)
        full = oaconvolve(deposit, kernel)
        first_px = lo - half
        a, b = max(first_px, 0), min(first_px + full.size, n_pix)
        if b > a:
            eta[a:b] += full[a - first_px:b - first_px]
    return eta


def _class_windows(eta, nearest, weights, amplitude, kernel):
    """The class convolution evaluated line by line (for sparse classes): same deposit, same kernel, same result."""
    half = (kernel.size - 1) // 2
    padded = np.concatenate([[0.0], kernel, [0.0]])
    offsets = np.arange(-half - 1, half + 2)

    def profile(selected, index):
        o = offsets[None, :] + half + 1
        values = sum(w[selected, None] * padded[np.clip(o - shift, 0, padded.size - 1)]
                     for shift, w in zip((-1, 0, 1), weights))
        return amplitude[selected, None] * values

    return _accumulate(eta, nearest, np.full(nearest.size, half + 1), profile, fixed_width=True)


def line_opacity(ln_wavelength_air, step_kms, parameters, doppler_factor=1.0):
    """Summed eta of the lines in ``parameters`` on a grid uniform in ln(lambda_air) (float64, same length).

    ``doppler_factor`` multiplies every line wavelength (relativistic Doppler factor of the star's RV),
    so lines land at their shifted positions exactly, without resampling.
    """
    wave, eta0, sigma, gamma, _, forest = parameters
    dln = step_kms / C_KMS
    centre_px = (np.log(wave * doppler_factor) - ln_wavelength_air[0]) / dln
    eta = np.zeros(len(ln_wavelength_air))
    direct = ~forest
    _windowed_opacity(eta, centre_px[direct], eta0[direct], sigma[direct], gamma[direct], step_kms)
    _class_opacity(eta, centre_px[forest], eta0[forest], sigma[forest], gamma[forest], step_kms)
    return eta

