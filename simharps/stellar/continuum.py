"""Stellar continuum: a Planck function at a backwarmed temperature, with line blanketing.

Equation
--------
The line-free continuum is ``F_c(lambda) = pi B_lambda(T_b)`` (erg s^-1 cm^-2 A^-1). Lines remove a
fraction beta(lambda) of the flux (blanketing); to conserve the total flux sigma Teff^4 the blocked
energy re-emerges in the continuum (backwarming), which in the grey approximation raises the
continuum temperature to (Chalonge & Kourganoff; Gray 2005, ch. 17)::

    T_b = Teff * (1 - f)^(-1/4),   f = int beta B_lambda(Teff) dlambda / int B_lambda(Teff) dlambda

beta(lambda) is the blanketing coefficient of the synthesised lines (depth table, weak-line forest,
molecular lines, Balmer lines) per 50 A bin. Each line's Milne-Eddington equivalent width
``W = A_c int eta / (1 + eta) dv`` comes from the Voigt curve of growth in the approximation of Rodgers &
Williams (1974, JOSA 64, 1130), ``W^2 = W_D^2 + W_L^2 - (W_D W_L / W_0)^2``, with W_0 = S the weak-line
(linear) limit (S the line's opacity area), W_D the width of a pure Doppler line of area S (tabulated
integral) and W_L = S gamma / sqrt(gamma^2 + S gamma / pi) that of a pure Lorentz line (exact for the
``eta / (1 + eta)`` form); A_c is the maximum central depth of ``simharps.stellar.linelist.maximum_depth``.
The lines of a bin overlap at random (the statistical band model: Goody & Yung 1989, ch. 4), so the blocked
fraction saturates at the bin's A_c::

    beta = A_c (1 - exp(-sum W / (A_c dlambda_bin)))

(sum W / dlambda for sparse lines; the depth of an opaque band, A_c, for the dense molecular bands of M
dwarfs). Outside the synthesis range beta is held at the value of the first bin on the blue side (the
near-UV is at least as blanketed) and decays as (lambda_edge / lambda)^4 on the red side.

The emergent (surface) flux is ``F_c(lambda) [1 - A_c eta(lambda) / (1 + eta(lambda))]``, so the blue is suppressed
relative to a blackbody of Teff while the red is raised: a continuum shape that depends on Teff and
on the line content. Approximations: grey backwarming, no bound-free edges (the Balmer jump at
3646 A lies outside the HARPS range), random overlap of lines within a bin, lines weaker than the forest
table's cut (central depth 0.005) missing.

Example
-------
>>> from simharps.stellar.continuum import planck_flux
>>> flux = planck_flux([4000.0, 6000.0], temperature_k=5800.0)
"""

import numpy as np
from scipy.special import voigt_profile

from simharps.constants import C_CGS, C_KMS, H_PLANCK_CGS, K_BOLTZMANN_CGS

BIN_WIDTH_AA = 50.0
"""Width of the bins (A) over which the lines' blocked-flux fraction sets the backwarming."""


def planck_flux(wavelength_aa, temperature_k):
    """Surface flux pi B_lambda(T) of a blackbody, erg s^-1 cm^-2 A^-1."""
    wavelength_cm = np.asarray(wavelength_aa, dtype=float) * 1e-8
    x = H_PLANCK_CGS * C_CGS / (wavelength_cm * K_BOLTZMANN_CGS * temperature_k)
    return np.pi * 2.0 * H_PLANCK_CGS * C_CGS**2 / wavelength_cm**5 / np.expm1(x) * 1e-8


def _core_curve_of_growth():
    """Tabulated W/(A_c dv_D) = int eta0 e^-u^2 / (1 + eta0 e^-u^2) du on a grid of log10 eta0."""
    log_eta = np.linspace(-6, 8, 281)
    u = np.linspace(-8, 8, 4001)
    profile = np.exp(-u**2)[None, :] * 10.0 ** log_eta[:, None]
    return log_eta, np.trapezoid(profile / (1 + profile), u, axis=1)


_LOG_ETA_TABLE, _CORE_WIDTH_TABLE = _core_curve_of_growth()


def equivalent_widths_kms(eta0, sigma_kms, gamma_kms, max_depth):
    """Milne-Eddington equivalent widths (km/s) of Voigt lines (Rodgers & Williams 1974 combination), times A_c."""
    area = eta0 / voigt_profile(0.0, sigma_kms, gamma_kms)
    dv_doppler = np.sqrt(2.0) * sigma_kms
    peak_doppler = area / (np.sqrt(np.pi) * dv_doppler)
    doppler = dv_doppler * np.interp(np.log10(np.maximum(peak_doppler, 1e-30)), _LOG_ETA_TABLE, _CORE_WIDTH_TABLE)
    lorentz = area * gamma_kms / np.sqrt(gamma_kms**2 + area * gamma_kms / np.pi)
    combined = doppler**2 + lorentz**2 - (doppler * lorentz / np.maximum(area, 1e-300)) ** 2
    return max_depth * np.sqrt(np.maximum(combined, np.maximum(doppler, lorentz) ** 2))


def blanketing_coefficient(bin_edges_aa, line_wavelength_aa, line_width_aa, continuous_eta_function, max_depth=None):
    """beta per bin: ``A_c (1 - exp(-sum W / (A_c dlambda)))`` of the lines' equivalent widths (A) and those of the
    continuous opacities (Balmer wings, TiO bands: ``continuous_eta_function(wavelength_aa)``, integrated on 0.05 A).

    ``max_depth``: A_c per bin (default 1), the saturation of randomly overlapping lines.
    """
    summed, _ = np.histogram(line_wavelength_aa, bins=bin_edges_aa, weights=line_width_aa)
    fine = np.arange(bin_edges_aa[0], bin_edges_aa[-1], 0.05)
    eta = continuous_eta_function(fine)
    balmer, _ = np.histogram(fine, bins=bin_edges_aa, weights=eta / (1 + eta) * 0.05)
    saturation = np.ones(len(bin_edges_aa) - 1) if max_depth is None else np.asarray(max_depth, dtype=float)
    return saturation * -np.expm1(-(summed + balmer) / (saturation * np.diff(bin_edges_aa)))


def backwarmed_temperature(teff_k, bin_edges_aa, beta):
    """T_b = Teff (1 - f)^(-1/4) with f the Planck-weighted blanketing fraction over all wavelengths."""
    wave = np.geomspace(500.0, 2e6, 20000)
    beta_all = np.interp(wave, 0.5 * (bin_edges_aa[1:] + bin_edges_aa[:-1]), beta)
    red = wave > bin_edges_aa[-1]
    beta_all[red] = beta[-1] * (bin_edges_aa[-1] / wave[red]) ** 4
    weight = planck_flux(wave, teff_k)
    f = np.trapezoid(beta_all * weight, wave) / np.trapezoid(weight, wave)
    return teff_k * (1.0 - f) ** -0.25


def line_width_aa(wavelength_aa, width_kms):
    """Convert equivalent widths from km/s to A at each line's wavelength."""
    return np.asarray(width_kms) * np.asarray(wavelength_aa) / C_KMS
