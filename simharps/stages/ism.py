"""Interstellar medium: Na I D / Ca II H&K absorption lines (narrow) and dust extinction (smooth); barycentric frame.

Physics in ``simharps.ism`` (dust_extinction laws; Voigt lines tied to E(B-V) and the Ca II column). Dust is
evaluated from a per-(law, R_V) curve on a 1 A grid (a dust_extinction law builds astropy models on every call,
~7 ms; the curve is smooth on 1 A scales: < 1e-6 of the transmission at E(B-V) = 1).
"""

from functools import lru_cache

import numpy as np

from simharps.constants import C_KMS
from simharps.ism import (CA_H, CA_K, LINE_REACH_KMS, NA_D1, NA_D2, check_extinction_parameters,
                          extinction_transmission, interstellar_optical_depth)
from simharps.kinematics import doppler_factor
from simharps.stages.base import BARYCENTRIC, Stage

INTERSTELLAR_LINES = (NA_D2, NA_D1, CA_K, CA_H)


@lru_cache(maxsize=16)
def _dust_curve(law, rv_dust):
    """A(lambda) / E(B-V) (mag) of an extinction law on a 1 A grid over 3600-7200 A (air, barycentric)."""
    wave_aa = np.arange(3600.0, 7201.0, 1.0)
    magnitudes = -2.5 * np.log10(extinction_transmission(wave_aa, 1.0, rv_dust, law))
    return wave_aa, magnitudes


def dust_transmission(values, wavelength_bary_aa):
    """ISM dust transmission of ``values`` at barycentric air wavelengths (A)."""
    check_extinction_parameters(values["ebv_mag"], values["rv_dust"], values["extinction_law"])
    wave_aa, magnitudes = _dust_curve(values["extinction_law"], float(values["rv_dust"]))
    return 10.0 ** (-0.4 * values["ebv_mag"] * np.interp(wavelength_bary_aa, wave_aa, magnitudes))


class InterstellarStage(Stage):
    name = "ism"
    frame = BARYCENTRIC
    reads = ("ebv_mag", "rv_dust", "extinction_law", "ism_rv_kms", "ism_b_kms", "logn_caii_cm2")
    component = "stellar"
    summary = "interstellar Na I D and Ca II H&K lines; dust extinction (dust_extinction law, E(B-V), R_V)"

    def narrow(self, prepared, values, lattice_obs_aa, berv_factor):
        """exp(-tau) of the interstellar lines, computed within LINE_REACH_KMS of each line only."""
        if values["ebv_mag"] <= 0 and values["logn_caii_cm2"] is None:
            return None
        wave_bary = lattice_obs_aa * berv_factor
        centres = np.array([line.wavelength_air_aa for line in INTERSTELLAR_LINES]) * doppler_factor(
            values["ism_rv_kms"])
        near = np.zeros(wave_bary.size, dtype=bool)
        for centre in centres:
            lo, hi = np.searchsorted(wave_bary, centre * np.exp(np.array([-1.0, 1.0]) * LINE_REACH_KMS / C_KMS))
            near[lo:hi] = True
        transmission = np.ones(wave_bary.size, dtype=np.float32)
        tau = interstellar_optical_depth(wave_bary[near], values["ebv_mag"], values["ism_rv_kms"],
                                         values["ism_b_kms"], values["logn_caii_cm2"])
        transmission[near] = np.exp(-tau)
        return transmission

    def smooth(self, prepared, values, coarse_obs_aa, berv_factor):
        if values["ebv_mag"] <= 0:
            return None
        return dust_transmission(values, coarse_obs_aa * berv_factor)
