"""Balmer lines H-alpha .. H8 with Stark-broadened wings, as line-to-continuum opacity ratios.

Equation
--------
Far from the core, the quasi-static (Holtsmark) linear Stark profile of a hydrogen line falls as
``Delta_lambda^(-5/2)`` (Griem 1960; Gray 2005, ch. 11). Disk-integrated wings of FGK dwarfs decline
more slowly, because each wavelength forms at a different depth; with one line-forming layer we
use the exponent ``WING_EXPONENT = 2``, which fits the real H-alpha and H-beta wings of HD 41248
with 1.7 times less squared residual than 5/2::

    eta_n(Delta_lambda) = S_n(Teff) * (Delta_lambda^2 + w_n^2)^(-WING_EXPONENT / 2)    (Delta_lambda in A)

with w_n the thermal Doppler width of hydrogen at Teff (the profile is smooth through the core).
The opacity follows the population of the n = 2 level over the H- continuum opacity; the electron
density of the Stark field cancels against the electron pressure of H- (Gray 2005, ch. 13), so the
wings track Teff, not logg::

    S_n(Teff) = S_n,ref * (T / T_ref)^(5/2) * exp(-(E_2 + E_H-) / k * (1/T - 1/T_ref)),  T = Teff

with E_2 = 10.20 eV (n = 2 excitation) and E_H- = 0.754 eV (H- binding). The remaining logg
dependence, through the fraction of electrons that come from hydrogen in the hotter stars, is
``S_n ~ (g / g_ref)^0.1`` (a weak, documented approximation).

The Balmer eta adds to the metal-line eta (blends in opacity) inside the common residual-flux law
``r = 1 - A_c eta / (1 + eta)`` of ``simharps.stellar.linelist`` (wing depth ~ A_c eta).

Calibration: S_alpha,ref and S_beta,ref were fitted to the wings (1.5-70 A from the centre, metal-line
free pixels, with a linear continuum) of the
real ESPRESSO spectrum of HD 41248 (Teff 5713 K, logg 4.48, [Fe/H] -0.37), continuum-normalised,
with A_c = 1 (S = 0.96, 1.10); they are carried over to the A_c law by dividing by A_c of HD 41248 at
the line (0.864 at H-alpha, 0.931 at H-beta), which keeps the fitted wing depths;
the higher members scale from H-beta by ``f_n lambda_n^5 X_n^(3/2)`` with X_n = n_u^2 - 4, the
linear Stark splitting scale (Holtsmark wing coefficient). Chromospheric cores are not modelled:
the summed Balmer eta is limited to ``ETA_CORE_MAX`` = 10 (central depth 0.91 A_c: 0.79 at H-alpha
for HD 41248, whose real core depth at R = 115,000 is 0.79). These are approximations
of a full Stark-profile synthesis (e.g. Vidal, Cooper & Smith 1973 tables), good for shapes in F-K
dwarfs; the Teff scaling of the wings is not verified against real F stars.

Example
-------
>>> import numpy as np
>>> from simharps.stellar.balmer import balmer_opacity
>>> wave = np.linspace(6500, 6620, 5000)
>>> eta = balmer_opacity(wave, teff_k=5770, logg_cgs=4.44)
"""

import numpy as np

from simharps.constants import C_KMS, HYDROGEN_ATOM_MASS_G, K_BOLTZMANN_CGS, K_BOLTZMANN_EV

BALMER_LINES_AIR_AA = np.array([6562.80, 4861.33, 4340.46, 4101.74, 3970.07, 3889.05])
"""H-alpha, H-beta, H-gamma, H-delta, H-epsilon, H8 (air, A)."""
UPPER_LEVEL = np.array([3, 4, 5, 6, 7, 8])
OSCILLATOR_STRENGTH = np.array([0.6407, 0.1193, 0.04467, 0.02209, 0.01270, 0.00800])
"""Absorption oscillator strengths f_2n (Wiese & Fuhr 2009)."""

TEFF_REFERENCE_K = 5713.0
LOGG_REFERENCE_CGS = 4.48
S_ALPHA_REF = 1.11
S_BETA_REF = 1.18
WING_EXPONENT = 2.0
EXCITATION_PLUS_HMINUS_EV = 10.199 + 0.754
LOGG_EXPONENT = 0.1
ETA_CORE_MAX = 10.0
HALF_WINDOW_AA = 400.0


def wing_strengths(teff_k, logg_cgs):
    """S_n (far-wing eta at 1 A from the centre) of each Balmer line, H-alpha first."""
    x = UPPER_LEVEL**2 - 4.0
    relative = OSCILLATOR_STRENGTH * BALMER_LINES_AIR_AA**5 * x**1.5
    strengths = S_BETA_REF * relative / relative[1]
    strengths[0] = S_ALPHA_REF
    t = float(teff_k)
    boltzmann = (t / TEFF_REFERENCE_K) ** 2.5 * np.exp(
        -EXCITATION_PLUS_HMINUS_EV / K_BOLTZMANN_EV * (1.0 / t - 1.0 / TEFF_REFERENCE_K)
    )
    return strengths * boltzmann * 10.0 ** (LOGG_EXPONENT * (logg_cgs - LOGG_REFERENCE_CGS))


def balmer_opacity(wavelength_air_aa, teff_k, logg_cgs, doppler_factor=1.0):
    """Summed Balmer eta on ``wavelength_air_aa`` (lines shifted by ``doppler_factor``)."""
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    eta = np.zeros(wavelength_air_aa.shape)
    thermal_kms = np.sqrt(2.0 * K_BOLTZMANN_CGS * teff_k / HYDROGEN_ATOM_MASS_G) / 1e5
    for centre, strength in zip(BALMER_LINES_AIR_AA * doppler_factor, wing_strengths(teff_k, logg_cgs)):
        lo, hi = np.searchsorted(wavelength_air_aa, [centre - HALF_WINDOW_AA, centre + HALF_WINDOW_AA])
        if lo == hi:
            continue
        width_aa = centre * thermal_kms / C_KMS
        offset = wavelength_air_aa[lo:hi] - centre
        eta[lo:hi] += strength * (offset**2 + width_aa**2) ** (-0.5 * WING_EXPONENT)
    return eta / (1.0 + eta / ETA_CORE_MAX)
