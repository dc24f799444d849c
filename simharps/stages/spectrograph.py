"""Spectrograph + CCD efficiency: its wavelength dependence relative to order 50 (smooth); observatory frame.

The chain's grey efficiency ``eps`` is calibrated on the HARPS reference S/N at order 50 (``simharps.forward``); this
stage multiplies it by the chromatic part, 1 at order 50, fitted on the per-order S/N keywords of the 86 real alpha
Cen B spectra (``scripts/build_efficiency.py``, provenance in ``simharps/data/harps_efficiency.md``). It also absorbs
the stellar model's and the other throughput models' chromatic errors for that K1 dwarf (see the provenance file).
"""

from functools import lru_cache
from importlib import resources

import numpy as np

from simharps.stages.base import Prepared, Stage

EFFICIENCY_FILE = "harps_efficiency.npz"


@lru_cache(maxsize=1)
def relative_efficiency_table():
    """(wavelength_air_aa, relative efficiency) tabulated every 5 A over 3700-7000 A."""
    with resources.as_file(resources.files("simharps") / "data" / EFFICIENCY_FILE) as path:
        data = np.load(path)
        return data["wavelength_air_aa"], data["relative_efficiency"]


class SpectrographStage(Stage):
    name = "spectrograph"
    summary = "chromatic spectrograph + CCD efficiency relative to order 50 (fitted on real per-order S/N)"

    def prepare(self, lattice_obs_aa, coarse_obs_aa):
        if coarse_obs_aa is None:
            return Prepared()
        wave, efficiency = relative_efficiency_table()
        return Prepared(coarse=np.interp(coarse_obs_aa, wave, efficiency))

    def smooth(self, prepared, values, coarse_obs_aa, berv_factor):
        return prepared.coarse
