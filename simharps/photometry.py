"""Johnson V photometry: scale a spectrum to a V magnitude, and count photons.

The V magnitude of a spectrum f_lambda (erg s^-1 cm^-2 A^-1 above the atmosphere) is computed for a
photon-counting detector through the Bessell (1990, PASP 102, 1181, Table 2) V passband S(lambda)::

    <f> = integral(f * S * lambda) / integral(S * lambda)
    V   = -2.5 log10(<f> / f0),   f0 = 3.631e-9 erg s^-1 cm^-2 A^-1

with the V zero point f0 of Bessell, Castelli & Plez (1998, A&A 333, 231, Table A2). The passband is the
published one, sampled every 100 A (linear interpolation in between). Wavelengths may be air or vacuum: the
0.15 % difference shifts V by < 0.001 mag for any stellar spectrum. The passband and zero point are tabulated here
rather than taken from synphot, whose Johnson V bandpass and Vega spectrum are downloaded from STScI on first use
and so are not available offline.

Photon flux: n_lambda = f_lambda * lambda / (h c), photons s^-1 cm^-2 A^-1.

Example
-------
>>> from simharps.photometry import scale_to_vmag, photon_flux
>>> flam = scale_to_vmag(wavelength_aa, surface_flux, vmag=6.0)
>>> photons = photon_flux(wavelength_aa, flam)
"""

import numpy as np

from simharps.constants import HC_ERG_AA
from simharps.errors import ParameterError

V_ZERO_POINT_FLAM = 3.631e-9
"""f_lambda of a V = 0 star, erg s^-1 cm^-2 A^-1 (Bessell, Castelli & Plez 1998, Table A2)."""

BESSELL_V_WAVELENGTH_AA = np.arange(4700.0, 7001.0, 100.0)
BESSELL_V_RESPONSE = np.array([
    0.000, 0.030, 0.163, 0.458, 0.780, 0.967, 1.000, 0.973, 0.898, 0.792, 0.684, 0.574,
    0.461, 0.359, 0.270, 0.197, 0.135, 0.081, 0.045, 0.025, 0.017, 0.013, 0.009, 0.000,
])
"""Bessell (1990) Table 2 V passband, photon response, 4700-7000 A."""


def v_passband(wavelength_aa):
    """Bessell V photon response at the given wavelengths (0 outside 4700-7000 A)."""
    return np.interp(wavelength_aa, BESSELL_V_WAVELENGTH_AA, BESSELL_V_RESPONSE, left=0.0, right=0.0)


def synthetic_vmag(wavelength_aa, flux_flam):
    """V magnitude of f_lambda (erg/s/cm^2/A, last axis along ``wavelength_aa``, which must span 4700-7000 A)."""
    wavelength_aa = np.asarray(wavelength_aa, dtype=float)
    if wavelength_aa[0] > BESSELL_V_WAVELENGTH_AA[1] or wavelength_aa[-1] < BESSELL_V_WAVELENGTH_AA[-2]:
        raise ParameterError(
            f"the spectrum spans {wavelength_aa[0]:.0f}-{wavelength_aa[-1]:.0f} A; "
            "a V magnitude needs 4800-6900 A at least"
        )
    weight = v_passband(wavelength_aa) * wavelength_aa
    mean_flam = np.trapezoid(np.asarray(flux_flam) * weight, wavelength_aa, axis=-1) / np.trapezoid(
        weight, wavelength_aa
    )
    return -2.5 * np.log10(mean_flam / V_ZERO_POINT_FLAM)


def scale_to_vmag(wavelength_aa, flux, vmag):
    """``flux`` (any units, shape as in ``synthetic_vmag``) rescaled to f_lambda of a star of magnitude ``vmag``."""
    current = synthetic_vmag(wavelength_aa, flux)
    return np.asarray(flux) * np.expand_dims(10.0 ** (-0.4 * (np.asarray(vmag) - current)), -1)


def photon_flux(wavelength_aa, flux_flam):
    """Photons s^-1 cm^-2 A^-1 from f_lambda in erg s^-1 cm^-2 A^-1."""
    return np.asarray(flux_flam) * np.asarray(wavelength_aa) / HC_ERG_AA
