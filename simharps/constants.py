"""Physical constants in the units the hot loops use (plain floats). Exact SI 2019 definitions unless noted
(CODATA 2018 for the atomic mass unit and the electron-volt form of Boltzmann's constant)."""

C_KMS = 299792.458
"""Speed of light in vacuum, km/s."""

C_MS = 299792458.0
"""Speed of light in vacuum, m/s."""

C_CGS = 2.99792458e10
"""Speed of light in vacuum, cm/s."""

H_PLANCK_CGS = 6.62607015e-27
"""Planck constant, erg s."""

HC_ERG_AA = H_PLANCK_CGS * C_CGS * 1e8
"""h c in erg A: the energy of a photon of wavelength lambda (A) is HC_ERG_AA / lambda."""

K_BOLTZMANN_CGS = 1.380649e-16
"""Boltzmann constant, erg/K."""

K_BOLTZMANN_SI = 1.380649e-23
"""Boltzmann constant, J/K."""

K_BOLTZMANN_EV = 8.617333262e-5
"""Boltzmann constant, eV/K."""

AMU_G = 1.66053906660e-24
"""Atomic mass unit, g."""

AMU_KG = 1.66053906660e-27
"""Atomic mass unit, kg."""

HYDROGEN_ATOM_MASS_G = 1.00784 * AMU_G
"""Mass of a hydrogen atom (standard atomic weight 1.00784), g."""
