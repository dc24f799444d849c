"""The reference engine: the chain of ``simharps.chain`` composed the plain way, on a fine grid. Slow; the test oracle.

For one spectrum, with the same stage objects and parameter table as the fast engine (``simharps.forward``)::

    1. star       rest-frame lines and continuum from the stellar model (0.15 km/s lattice); rotation x
                  macroturbulence by real-space convolution (``simharps.broadening.broaden``); read at the rest
                  wavelengths of every point of a fine observatory-frame grid (``FINE_STEP_KMS``) by a cubic spline
    2. V band     scale = 10^(-0.4 (vmag - V(lines x continuum x barycentric smooth factors))) on the full lattice
    3. photons    per km/s at every fine point: photon_flux(scale x star) x area x t x lambda / c x eps
                  x every factor stage's smooth part x every narrow part, each evaluated at that point
    4. pixels     ``HarpsSpectrograph.extract`` (float64 FFT LSF, exact integration over each pixel, blaze)
    5. product    ``HarpsSpectrograph.merge`` at the BERV onto the 0.01 A grid; the error from the detector's
                  variance of the expectation (no draw: the noise stage is compared through its variance)

Components: ``stellar`` and ``telluric`` are the narrow spectra convolved with the LSF on the fine grid and read at
the product bins by a cubic spline; ``response`` is steps 3-5 with every line removed.

It differs from the fast engine in every numerical shortcut the latter takes (lattice-aligned shift by a Fourier
kernel, block means for the V band, smooth factors on a 1 A grid, float32 FFTs, 6-point pixel stencils, quintic
reads, the merge plan), and in nothing physical; ``tests/test_chain.py`` states the agreement. It uses the fast
engine's calibrated grey efficiency ``eps`` (a constant: an error in either engine's continuum still shows).
"""

import numpy as np
from scipy.interpolate import CubicSpline

from simharps.broadening import broaden
from simharps.chain import active_factors, enabled_stages
from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.extraction import BERV_LIMIT_KMS
from simharps.forward import (LATTICE_PAD_KMS, PIXEL_MARGIN_KMS, TELESCOPE_AREA_CM2, V_BAND_WINDOW_AA,
                              Simulation, default_simulator, product_window, resolve_parameters)
from simharps.grids import product_grid
from simharps.kinematics import doppler_factor
from simharps.lsf import convolve_gaussian_velocity
from simharps.photometry import BESSELL_V_WAVELENGTH_AA, photon_flux, synthetic_vmag
from simharps.stages import BARYCENTRIC
from simharps.stellar.synthesis import lattice_indices, lattice_wavelengths

FINE_STEP_KMS = 0.03
"""Step of the reference's observatory-frame grid (a fifth of the synthesis lattice's)."""

BROADENING_MARGIN_KMS = 300.0
"""Rest-frame lattice taken beyond the fine grid on both sides (covers rotation up to 300 km/s and the RV shift)."""


def _fine_grid(grid_aa, lsf_fwhm_kms):
    """Observatory-frame grid uniform in ln lambda covering every pixel that can reach the product window."""
    reach = np.exp((BERV_LIMIT_KMS + PIXEL_MARGIN_KMS + 6.0 * lsf_fwhm_kms + LATTICE_PAD_KMS) / C_KMS)
    dln = FINE_STEP_KMS / C_KMS
    low, high = np.log(grid_aa[0] / reach), np.log(grid_aa[-1] * reach)
    return np.exp(low + dln * np.arange(int(np.ceil((high - low) / dln)) + 1))


def _star_at(model, values, wavelength_rest_aa):
    """Broadened rest-frame lines of the star at ``wavelength_rest_aa`` (cubic spline in ln lambda) and its
    continuum callable."""
    margin = np.exp(BROADENING_MARGIN_KMS / C_KMS)
    first, last = lattice_indices(wavelength_rest_aa[0] / margin, wavelength_rest_aa[-1] * margin, model.step_kms)
    lines, continuum = model.rest_spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"], first, last + 1)
    broadened = broaden(lines.astype(float), model.step_kms, values["vsini_kms"], values["vmac_kms"])
    spline = CubicSpline(np.log(lattice_wavelengths(first, last, model.step_kms)), broadened)
    return spline(np.log(wavelength_rest_aa)), continuum


def _vband_scale(model, values, factors, doppler):
    """f_lambda scale for V = vmag: the unbroadened star times the barycentric smooth factors on the full lattice."""
    first, last = lattice_indices(BESSELL_V_WAVELENGTH_AA[0] / doppler, V_BAND_WINDOW_AA[1] / doppler,
                                  model.step_kms)
    lines, continuum = model.rest_spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"], first, last + 1)
    wave_rest = lattice_wavelengths(first, last, model.step_kms)
    flux = lines * continuum(wave_rest)
    for stage in factors:
        factor = stage.smooth(None, values, wave_rest * doppler, 1.0) if stage.frame == BARYCENTRIC else None
        flux = flux if factor is None else flux * factor
    return 10.0 ** (-0.4 * (values["vmag"] - synthetic_vmag(wave_rest * doppler, flux)))


def _read(fine_obs_aa, spectrum, lsf_fwhm_kms, grid_aa, berv_factor):
    """``spectrum`` on the fine grid convolved with the LSF, read at the barycentric ``grid_aa`` by a cubic spline."""
    smoothed = convolve_gaussian_velocity(spectrum, FINE_STEP_KMS, lsf_fwhm_kms, method="fft")
    return CubicSpline(np.log(fine_obs_aa), smoothed)(np.log(grid_aa / berv_factor))


def reference_simulate(params, *, stages=None, window, simulator=None, components=True):
    """One product through the reference composition (module docstring). ``flux`` is the expectation (no noise
    draw); ``error`` the detector's error of it."""
    simulator = simulator or default_simulator()
    model = simulator.stellar_model
    enabled = enabled_stages(stages)
    factors = active_factors(enabled)
    values = resolve_parameters(params)
    spectrograph = simulator.spectrograph(values["instrument_mode"])
    grid = product_grid(*product_window(window))
    berv_factor = 1.0 + values["berv_kms"] / C_KMS
    doppler = doppler_factor(values["rv_kms"])

    fine_obs = _fine_grid(grid, spectrograph.lsf_fwhm_kms)
    fine_bary = fine_obs * berv_factor
    lines, continuum = _star_at(model, values, fine_bary / doppler)
    scale = _vband_scale(model, values, factors, doppler)
    photons = (photon_flux(fine_bary, scale * continuum(fine_bary / doppler))
               * TELESCOPE_AREA_CM2 * values["exptime_s"] * fine_bary / C_KMS * simulator.efficiency)
    narrow = {"stellar": lines, "telluric": np.ones_like(fine_obs)}
    for stage in factors:
        prepared = stage.prepare(fine_obs, fine_obs)
        smooth = stage.smooth(prepared, values, fine_obs, berv_factor)
        photons = photons if smooth is None else photons * smooth
        transmission = stage.narrow(prepared, values, fine_obs, berv_factor)
        if transmission is not None:
            narrow[stage.component] = narrow[stage.component] * transmission

    detector = Detector(read_noise_e=values["read_noise_e"], gain_e_per_adu=values["gain_e_per_adu"])

    def product(density):
        pixels_e = spectrograph.extract(fine_obs, density)
        variance = detector.variance_e(np.nan_to_num(pixels_e), values["exptime_s"])
        return spectrograph.merge(pixels_e, variance, values["berv_kms"], wavelength_grid_aa=grid)

    merged = product(photons * narrow["stellar"] * narrow["telluric"])
    truth = dict(values, stages=sorted(enabled), engine="reference")
    parts = {}
    if components:
        parts = {name: _read(fine_obs, spectrum, spectrograph.lsf_fwhm_kms, grid, berv_factor)
                 for name, spectrum in narrow.items()}
        parts["response"] = product(photons).flux
    return Simulation(grid, merged.flux, merged.error, merged.flux, truth, parts)
