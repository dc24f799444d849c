"""Telescope stage: ESO 3.6 m mirrors, ADC and fibre link as component throughputs.

Equation
--------
::

    T_tel(lambda) = [R_Al(lambda) (1 - dust_loss_per_mirror)]^2 * T_ADC * T_link(lambda)

* Mirrors: primary and secondary of the ESO 3.6 m are bare aluminium (two
  reflections). R_Al is the normal-incidence Fresnel reflectance of aluminium ::

      R = ((n - 1)^2 + k^2) / ((n + 1)^2 + k^2),   n + i k = sqrt(eps(omega))

  with eps from the Lorentz-Drude model of Rakic, Djurisic, Elazar & Majewski 1998
  (Appl. Opt. 37, 5271, Table 1: omega_p = 14.98 eV; f0 = 0.523, Gamma0 = 0.047 eV;
  oscillators (f, Gamma, omega) = (0.227, 0.333, 0.162), (0.050, 0.312, 1.544),
  (0.166, 1.351, 1.808), (0.030, 3.382, 3.473) eV), a fit to the measured
  optical constants of evaporated Al films (Rakic 1995, Appl. Opt. 34, 4755). It gives
  R = 0.915 at 5500 A, falls slowly and monotonically from 0.926 at 3800 A to 0.904 at
  7000 A, and has the interband dip (R ~ 0.865) at 8250 A, outside the HARPS range.
  Computed analytically, so no data table is shipped. ``dust_loss_per_mirror`` is a
  grey fractional loss per surface for an aged, dusty coating (0 = fresh).
  The Cassegrain beam (f/8) is close to normal incidence; polarisation is ignored.
* ADC: HARPS feeds its fibres through an atmospheric dispersion corrector in the
  Cassegrain fibre adapter (HARPS user manual). Modelled as grey, T_ADC = 0.95
  (assumption: 4 broadband-AR-coated air-glass surfaces at 1 % each and 0.99
  internal transmission; no published HARPS figure in the sources at hand).
* Fibre link: Fresnel reflection at the two fibre end faces, ((n_s - 1)/(n_s + 1))^2
  each with n_s from the fused-silica Sellmeier formula of Malitson 1965 (JOSA 55,
  1205), times Rayleigh scattering in the silica core, 10^(-0.1 a L / lambda[um]^4)
  with a = 0.8 dB km^-1 um^4 (the intrinsic scattering of pure silica, e.g. 0.14
  dB/km at 1.55 um) over ``fibre_length_m`` (default 40 m, an assumed Cassegrain-to-
  spectrograph run). Focal-ratio degradation and scrambler losses are grey and left
  to the absolute calibration.

What is not here: the atmosphere (``simharps.telluric``, ``simharps.extinction``), fibre injection
(``simharps.fibre``), the spectrograph (echelle, cross-disperser, camera, blaze)
and the detector QE (instrument/detector stages). The grey parts of every stage are
absorbed by the absolute flux calibration against the reference S/N; this module
supplies the chromatic shape. For orientation, HARPS' total efficiency at 550 nm,
atmosphere and telescope included, is ~6-7 % (Mayor et al. 2003, Messenger 114, 20).

Units and frame: dimensionless throughput at air wavelengths in A (converted to
vacuum for the photon energy and the Sellmeier formula); observatory frame.

Example
-------
>>> import numpy as np
>>> from simharps.telescope import telescope_components, telescope_transmission
>>> wave_air_aa = np.linspace(3781.0, 6913.0, 3133)
>>> t_tel = telescope_transmission(wave_air_aa, dust_loss_per_mirror=0.02)
>>> parts = telescope_components(wave_air_aa)   # {"mirrors", "adc", "fibre_link"}
"""

import numpy as np

from simharps.errors import ParameterError
from simharps.grids import air_to_vacuum

HC_EV_AA = 12398.419843320026
"""Planck constant times speed of light, eV A."""

ADC_TRANSMISSION = 0.95
"""Grey ADC throughput (assumption; see module docstring)."""

DEFAULT_FIBRE_LENGTH_M = 40.0
RAYLEIGH_SILICA_DB_PER_KM_UM4 = 0.8


class RakicAluminium:
    """Optical constants of aluminium from the Lorentz-Drude fit of Rakic et al. 1998 (Appl. Opt. 37, 5271)."""

    PLASMA_EV = 14.98
    DRUDE_STRENGTH = 0.523
    DRUDE_DAMPING_EV = 0.047
    OSCILLATORS = np.array([  # strength f_j, damping Gamma_j (eV), resonance omega_j (eV)
        [0.227, 0.333, 0.162],
        [0.050, 0.312, 1.544],
        [0.166, 1.351, 1.808],
        [0.030, 3.382, 3.473],
    ])

    def permittivity(self, wavelength_vac_aa):
        """Complex relative permittivity eps = eps1 + i eps2 at vacuum wavelengths (A)."""
        omega = HC_EV_AA / np.asarray(wavelength_vac_aa, dtype=float)[..., None]
        plasma2 = self.PLASMA_EV**2
        drude = 1.0 - self.DRUDE_STRENGTH * plasma2 / (omega * (omega + 1j * self.DRUDE_DAMPING_EV))
        strength, damping, resonance = self.OSCILLATORS.T
        lorentz = strength * plasma2 / (resonance**2 - omega**2 - 1j * omega * damping)
        return drude[..., 0] + lorentz.sum(axis=-1)

    def refractive_index(self, wavelength_air_aa):
        """Complex refractive index n + i k at air wavelengths (A)."""
        return np.sqrt(self.permittivity(air_to_vacuum(wavelength_air_aa)))

    def normal_incidence_reflectance(self, wavelength_air_aa):
        """Fresnel reflectance ((n-1)^2 + k^2) / ((n+1)^2 + k^2) at air wavelengths (A)."""
        index = self.refractive_index(wavelength_air_aa)
        return np.abs((index - 1.0) / (index + 1.0)) ** 2


def fused_silica_index(wavelength_air_aa):
    """Refractive index of fused silica (Malitson 1965 Sellmeier formula) at air wavelengths (A)."""
    lam2 = (air_to_vacuum(wavelength_air_aa) / 1.0e4) ** 2
    terms = ((0.6961663, 0.0684043), (0.4079426, 0.1162414), (0.8974794, 9.896161))
    return np.sqrt(1.0 + sum(b * lam2 / (lam2 - c**2) for b, c in terms))


def mirror_reflectance(wavelength_air_aa, n_reflections=2, dust_loss_per_mirror=0.0):
    """Throughput of ``n_reflections`` aluminium surfaces, each with a grey fractional ``dust_loss_per_mirror``."""
    if not 0.0 <= dust_loss_per_mirror < 1.0:
        raise ParameterError(f"dust_loss_per_mirror must lie in [0, 1), got {dust_loss_per_mirror}")
    single = RakicAluminium().normal_incidence_reflectance(wavelength_air_aa) * (1.0 - dust_loss_per_mirror)
    return single**n_reflections


def fibre_link_transmission(wavelength_air_aa, fibre_length_m=DEFAULT_FIBRE_LENGTH_M):
    """Fresnel losses at two silica end faces times Rayleigh scattering over ``fibre_length_m``."""
    if not 0.0 <= fibre_length_m <= 1000.0:
        raise ParameterError(f"fibre_length_m must lie in [0, 1000] m, got {fibre_length_m}")
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    n_silica = fused_silica_index(wavelength_air_aa)
    fresnel = (1.0 - ((n_silica - 1.0) / (n_silica + 1.0)) ** 2) ** 2
    loss_db = RAYLEIGH_SILICA_DB_PER_KM_UM4 * fibre_length_m / 1000.0 / (wavelength_air_aa / 1.0e4) ** 4
    return fresnel * 10.0 ** (-0.1 * loss_db)


def telescope_components(wavelength_air_aa, dust_loss_per_mirror=0.0, fibre_length_m=DEFAULT_FIBRE_LENGTH_M):
    """Component throughputs on ``wavelength_air_aa``: ``mirrors`` (M1 + M2), ``adc`` and ``fibre_link``."""
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    return {
        "mirrors": mirror_reflectance(wavelength_air_aa, 2, dust_loss_per_mirror),
        "adc": np.full(wavelength_air_aa.shape, ADC_TRANSMISSION),
        "fibre_link": fibre_link_transmission(wavelength_air_aa, fibre_length_m),
    }


def telescope_transmission(wavelength_air_aa, dust_loss_per_mirror=0.0, fibre_length_m=DEFAULT_FIBRE_LENGTH_M):
    """Product of ``telescope_components``: telescope + ADC + fibre link throughput."""
    return np.prod(list(telescope_components(wavelength_air_aa, dust_loss_per_mirror, fibre_length_m).values()),
                   axis=0)
