"""Telescope and fibre link: aluminium mirrors, ADC, fibre attenuation (smooth); observatory frame.

Physics in ``simharps.telescope`` (Rakic 1995 aluminium, fused-silica fibre link); no parameters.
"""

from simharps.stages.base import Prepared, Stage
from simharps.telescope import telescope_transmission


class TelescopeStage(Stage):
    name = "telescope"
    summary = "mirror reflectance, ADC, fibre-link transmission"

    def prepare(self, lattice_obs_aa, coarse_obs_aa):
        return Prepared(coarse=None if coarse_obs_aa is None else telescope_transmission(coarse_obs_aa))

    def smooth(self, prepared, values, coarse_obs_aa, berv_factor):
        return prepared.coarse
