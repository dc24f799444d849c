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
* logg (Saha balance): for elements mostly ionised in FGK photospheres, neutral lines and the H-
  continuum both scale with the electron pressure, ion lines as ``1 / P_e``; with ``P_e ~ g^(1/3)``
  (Gray 2005, ch. 13) ion lines take ``eta_0 *= (g / g_ref)^(-1/3)`` relative to the dwarf-sequence
  logg of the tables; neutral atoms and molecules are left unchanged.
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
temperature for every line, no chromospheric emission cores); no isotopic or hyperfine
structure; lines shallower than 0.1 in the VALD tables are missing unless filled from the
Boltzmann relation (see ``linelist``). Each line is evaluated on its own window out to where eta_i
falls below 2e-4 (windows bucketed by power-of-two length and scattered with ``np.bincount``).

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
from scipy.special import gamma as gamma_function
from scipy.special import voigt_profile

from simharps.constants import AMU_G, C_KMS, K_BOLTZMANN_CGS
from simharps.grids import accumulate_windows
from simharps.stellar.linelist import REFERENCE_VMIC_KMS, load_line_table, maximum_depth

BOHR_RADIUS_CM = 0.529177e-8
LOGG_SUN_CGS = 4.438
TEFF_SUN_K = 5772.0
N_H_SUN_CM3 = 1e17
N_E_SUN_CM3 = 1e13
LINE_FORMING_TEMPERATURE_RATIO = 0.85
DEFAULT_LOG_GAMMA6 = -7.5
WINDOW_THRESHOLD = 2e-4
MAX_HALF_WIDTH_KMS = 3000.0
CHUNK_ELEMENTS = 1 << 22


class LineParameters(NamedTuple):
    """Per-line quantities for one star: air wavelength (A), eta_0, Gaussian sigma and Lorentz HWHM (km/s),
    and the maximum central depth A_c at the line."""

    wavelength_air_aa: np.ndarray
    eta0: np.ndarray
    sigma_kms: np.ndarray
    gamma_kms: np.ndarray
    max_depth: np.ndarray


def photosphere_state(teff_k, logg_cgs):
    """(T_K, N_H_cm3, N_e_cm3) of the single line-forming layer adopted for (Teff, logg)."""
    g_ratio = 10.0 ** (logg_cgs - LOGG_SUN_CGS)
    t_ratio = teff_k / TEFF_SUN_K
    return (
        LINE_FORMING_TEMPERATURE_RATIO * teff_k,
        N_H_SUN_CM3 * g_ratio**0.5 * t_ratio**-3,
        N_E_SUN_CM3 * g_ratio ** (1.0 / 3.0) * t_ratio**6,
    )


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
    stage = table.species_ion_stage[table.species_index]
    heavy = table.species_heavy_atoms[table.species_index]
    thermal2 = 2.0 * K_BOLTZMANN_CGS * temperature / (mass * AMU_G) / 1e10
    dv_doppler = np.sqrt(thermal2 + vmic_kms**2)
    dv_reference = np.sqrt(thermal2 + REFERENCE_VMIC_KMS**2)
    log_eta = table.log_eta_at(teff_k) + heavy * mh_dex
    log_eta -= np.where(stage >= 2, (logg_cgs - table.reference_logg_at(teff_k)) / 3.0, 0.0)
    eta0 = 10.0**log_eta * dv_reference / dv_doppler
    wave = table.wavelength_air_aa
    gamma_rad = np.where(table.log_gamma_rad > 0, 10.0**table.log_gamma_rad, 2.223e15 / wave**2)
    gamma_stark = np.where(table.log_gamma_stark < 0, 10.0**table.log_gamma_stark, 0.0) * (temperature / 1e4) ** (1 / 6)
    gamma6 = van_der_waals_per_perturber(table.vdw_code, mass, temperature)
    damping = gamma_rad + gamma_stark * n_e + gamma6 * n_h
    gamma_kms = damping * wave * 1e-8 / (4.0 * np.pi) / 1e5
    return LineParameters(wave, eta0, dv_doppler / np.sqrt(2.0), gamma_kms, maximum_depth(wave, teff_k))


def _half_width_kms(eta0, sigma_kms, gamma_kms):
    """Velocity half-width beyond which a line's eta falls below WINDOW_THRESHOLD."""
    dv_doppler = np.sqrt(2.0) * sigma_kms
    core = dv_doppler * np.sqrt(np.log(np.maximum(eta0, 1.0) / WINDOW_THRESHOLD))
    peak = voigt_profile(0.0, sigma_kms, gamma_kms)
    wing = np.sqrt(eta0 * gamma_kms / (np.pi * peak * WINDOW_THRESHOLD))
    return np.minimum(np.maximum(core, wing), MAX_HALF_WIDTH_KMS)


def line_opacity(ln_wavelength_air, step_kms, parameters, doppler_factor=1.0):
    """Summed eta of the lines in ``parameters`` on a grid uniform in ln(lambda_air) (float64, same length).

    ``doppler_factor`` multiplies every line wavelength (relativistic Doppler factor of the star's RV),
    so lines land at their shifted positions exactly, without resampling.
    """
    wave, eta0, sigma, gamma, _ = parameters
    n_pix = len(ln_wavelength_air)
    dln = step_kms / C_KMS
    centre_px = (np.log(wave * doppler_factor) - ln_wavelength_air[0]) / dln
    half_px = np.ceil(_half_width_kms(eta0, sigma, gamma) / step_kms).astype(np.int64) + 2
    keep = np.flatnonzero((eta0 > WINDOW_THRESHOLD) & (centre_px + half_px >= 0) & (centre_px - half_px < n_pix))
    centre, scale = centre_px[keep], eta0[keep] / voigt_profile(0.0, sigma[keep], gamma[keep])
    sigma, gamma = sigma[keep], gamma[keep]

    def profile(selected, index):
        velocity_kms = (index - centre[selected, None]) * step_kms
        return scale[selected, None] * voigt_profile(velocity_kms, sigma[selected, None], gamma[selected, None])

    eta = accumulate_windows(np.zeros(n_pix), np.rint(centre).astype(np.int64), half_px[keep], profile,
                             CHUNK_ELEMENTS)
    return eta
