"""La Silla continuum extinction: the ESO mean curve k(lambda), mag per airmass, 3100-9000 A.

The curve (Rayleigh scattering + aerosols + the ozone Chappuis band) is smooth, measured between the
telluric line bands, so it does not double-count the O2/H2O lines of ``simharps.telluric``::

    T_cont(lambda) = 10 ** (-0.4 * k(lambda) * X)

Source: ``simharps/data/telluric_extinction_lasilla.npz``, copied unchanged from the ESO La Silla
extinction page values by ``scripts/build_telluric_tables.py`` (``simharps/data/telluric.md``).

Example
-------
>>> from simharps.extinction import continuum_transmission, extinction_mag_per_airmass
>>> k_mag = extinction_mag_per_airmass([4000.0, 5500.0])
>>> transmission = continuum_transmission([4000.0, 5500.0], airmass=1.3)
"""

from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.interpolate import PchipInterpolator

from simharps.errors import ParameterError

EXTINCTION_FILE = "telluric_extinction_lasilla.npz"


def _check_airmass(airmass):
    """Validated float array of airmass (>= 1)."""
    airmass = np.asarray(airmass, dtype=float)
    if not np.all(np.isfinite(airmass) & (airmass >= 1.0)):
        raise ParameterError(f"airmass must be finite and >= 1 (zenith = 1), got {airmass}")
    return airmass


class LaSillaExtinction:
    """ESO La Silla mean continuum extinction k(lambda), mag per airmass, 3100-9000 A.

    Rayleigh + aerosol + ozone; interpolated with a monotone cubic (PCHIP) so
    the continuum it imprints has no kinks at the 100-200 A table nodes.
    """

    def __init__(self, path=None):
        path = path or resources.files("simharps.data") / EXTINCTION_FILE
        with np.load(path) as data:
            self.wavelength_aa = data["wavelength_aa"]
            self.mag_per_airmass = data["extinction_mag_per_airmass"]
        self._curve = PchipInterpolator(self.wavelength_aa, self.mag_per_airmass, extrapolate=False)

    def extinction(self, wavelength_aa):
        """k(lambda) in mag per airmass."""
        wave = np.asarray(wavelength_aa.to_value("Angstrom") if hasattr(wavelength_aa, "unit") else wavelength_aa,
                          dtype=float)
        lo, hi = self.wavelength_aa[0], self.wavelength_aa[-1]
        if wave.size and (wave.min() < lo or wave.max() > hi):
            raise ParameterError(f"wavelength_aa must lie within {lo:.0f}-{hi:.0f} A for the La Silla "
                                 f"extinction curve, got {wave.min():.1f}-{wave.max():.1f} A")
        return self._curve(wave)

    def transmission(self, wavelength_aa, airmass):
        """10**(-0.4 k(lambda) X); array airmass adds leading axes."""
        airmass = _check_airmass(airmass)
        mag = self.extinction(wavelength_aa)
        return 10.0 ** (-0.4 * mag * airmass.reshape(airmass.shape + (1,) * mag.ndim))


@lru_cache(maxsize=1)
def default_extinction():
    """The shipped La Silla extinction curve."""
    return LaSillaExtinction()


def extinction_mag_per_airmass(wavelength_aa):
    """La Silla continuum extinction, mag per airmass, at wavelengths in A (3100-9000 A)."""
    return default_extinction().extinction(wavelength_aa)


def continuum_transmission(wavelength_aa, airmass):
    """Continuum (Rayleigh + aerosol + ozone) transmission 10**(-0.4 k X) at wavelengths in A."""
    return default_extinction().transmission(wavelength_aa, airmass)
