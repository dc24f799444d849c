"""Earth's atmosphere at the site: telluric O2 + H2O lines (narrow) and continuum extinction (smooth); observatory frame.

Physics in ``simharps.telluric`` and ``simharps.extinction``: T = exp(-X tau_O2 - X PWV tau_H2O) from the shipped
HITRAN line-by-line tables, the La Silla extinction curve (mag per airmass) for the continuum.
"""

import numpy as np

from simharps.extinction import extinction_mag_per_airmass
from simharps.stages.base import Prepared, Stage
from simharps.telluric import PWV_REFERENCE_MM, telluric_optical_depth


class AtmosphereStage(Stage):
    name = "atmosphere"
    reads = ("airmass", "pwv_mm")
    component = "telluric"
    summary = "telluric O2 + H2O lines (HITRAN tables, airmass, PWV); La Silla continuum extinction"

    def prepare(self, lattice_obs_aa, coarse_obs_aa):
        """Zenith optical depths of O2 and of 1 mm PWV on the lattice (float32); extinction (mag) on the coarse grid."""
        lattice = coarse = None
        if lattice_obs_aa is not None:
            tau = telluric_optical_depth(lattice_obs_aa, 1.0, PWV_REFERENCE_MM)
            lattice = (tau["O2"].astype(np.float32), tau["H2O"].astype(np.float32))
        if coarse_obs_aa is not None:
            coarse = extinction_mag_per_airmass(coarse_obs_aa)
        return Prepared(lattice, coarse)

    def narrow(self, prepared, values, lattice_obs_aa, berv_factor):
        tau_o2, tau_h2o = prepared.lattice
        depth = tau_o2 * np.float32(values["airmass"])
        depth += tau_h2o * np.float32(values["airmass"] * values["pwv_mm"] / PWV_REFERENCE_MM)
        np.negative(depth, out=depth)
        return np.exp(depth, out=depth)

    def smooth(self, prepared, values, coarse_obs_aa, berv_factor):
        return 10.0 ** (-0.4 * values["airmass"] * prepared.coarse)
