"""The stellar spectrum container shared by every stellar model (built-in synthesis, PHOENIX, generic grids)."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class StellarSpectrum:
    """A stellar surface spectrum on a log-lambda grid.

    wavelength_air_aa : air wavelengths, A, uniform in ln(lambda) (step ``step_kms``)
    flux              : surface flux density, arbitrary but common units across Teff
                        (proportional to erg/s/cm^2/A), so continuum shapes compare between stars
    continuum         : the flux without lines (line-blanketed pseudo-continuum where the model has one)
    step_kms          : velocity step of the grid, km/s
    params            : the parameters it was made with (teff_k, logg_cgs, mh_dex, ...)
    frame             : "stellar rest" or "barycentric" (after the star's RV is applied)
    """

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    continuum: np.ndarray
    step_kms: float
    params: dict = field(default_factory=dict)
    frame: str = "stellar rest"

    @property
    def normalised(self):
        """Continuum-normalised flux (1 = continuum)."""
        return self.flux / self.continuum
