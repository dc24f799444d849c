"""The fixed-geometry fast path (lattice -> order pixels -> product bins) against the exact, general instrument code."""

import numpy as np
import pytest

from simharps import forward
from simharps.chain import active_factors
from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.extraction import BERV_LIMIT_KMS, MergePlan
from simharps.grids import product_grid
from simharps.lsf import convolve_gaussian_velocity
from simharps.stellar.synthesis import synthesize
from simharps.telluric import telluric_transmission

NODE_STAR = dict(teff_k=5750.0, logg_cgs=4.5, mh_dex=0.0, rv_kms=12.3, vmag=8.0, exptime_s=600.0, airmass=1.5,
                 pwv_mm=5.0, berv_kms=-8.686)


@pytest.mark.parametrize("window, vsini_kms", [((6270.0, 6320.0), 2.0), ((5870.0, 5910.0), 0.0),
                                               ((5160.0, 5190.0), 20.0)])
def test_fast_extraction_matches_a_brute_force_fine_grid(window, vsini_kms):
    """Star at a template node (so the templates equal the synthesis): the plan's pixel means of stellar lines x
    tellurics equal HarpsSpectrograph.extract of the same spectrum synthesised, shifted and multiplied on a
    0.03 km/s grid. The ~1.7e-4 that remain come from the synthesis itself (line wings are cut where eta falls
    below a threshold at a step-dependent pixel count), not from the chain."""
    values = forward.resolve_parameters(dict(NODE_STAR, vsini_kms=vsini_kms))
    plan = forward.forward_plan(*window)
    star = plan.place_star(forward.default_stellar_model(), values)
    telluric = plan.narrow_factors(values, active_factors({"atmosphere"}), star)[0][1]
    fast = plan.extraction.pixel_means(star.lines_obs * telluric)

    berv_factor = 1.0 + values["berv_kms"] / C_KMS
    lo, hi = plan.wavelength_obs_aa[[0, -1]] * berv_factor
    fine = synthesize(5750.0, 4.5, 0.0, vsini_kms=vsini_kms, vmac_kms=values["vmac_kms"], rv_kms=12.3,
                      window=(lo, hi), step_kms=0.03)
    wave_obs = fine.wavelength_air_aa / berv_factor
    density = (fine.flux / fine.continuum).astype(float) * telluric_transmission(wave_obs, 1.5, 5.0)
    spectrograph = forward.default_spectrograph()
    flat = plan.extraction.flat_index
    counts = spectrograph.extract(wave_obs, density).ravel()[flat]
    exact = counts / (spectrograph.layout.blaze.ravel()[flat] * plan.extraction.width_kms)
    covered = np.isfinite(exact)
    assert covered.sum() > 2500 and exact[covered].min() < 0.5  # deep stellar or telluric lines included
    difference = fast[covered] - exact[covered]
    assert np.abs(difference).max() < 3e-4
    assert np.sqrt(np.mean(difference**2)) < 1e-4


@pytest.mark.parametrize("berv_kms", [-BERV_LIMIT_KMS + 1.0, -8.686, 0.0, 17.31, 29.9])
def test_merge_plan_equals_the_instrument_merge(berv_kms):
    spectrograph = forward.default_spectrograph()
    layout = spectrograph.layout
    grid = product_grid(4400.0, 5600.0)
    rng = np.random.default_rng(3)
    # a spectrum-like pixel series (lines a few pixels wide, 1 % noise): the two merges interpolate between pixel
    # centres linearly in wavelength (instrument) and in pixel coordinate (plan), which differ by ~1e-5 of a pixel
    pixel = np.arange(layout.n_pixels)
    counts = 2000.0 * (1.0 - 0.6 * np.sin(pixel / 3.0) ** 8) * rng.normal(1.0, 0.01, (layout.n_orders, 1))
    counts = counts * rng.normal(1.0, 0.01, counts.shape)
    variance = counts + 178.0
    counts[5, 100:140] = np.nan  # pixels not simulated are skipped by both
    exact = spectrograph.merge(counts, variance, berv_kms, wavelength_grid_aa=grid)
    plan = MergePlan(layout, grid, spectrograph.merge_trim_px, spectrograph.to_bin)
    fast = plan.merge(counts.reshape(1, -1), variance.ravel(), berv_kms)
    np.testing.assert_array_equal(fast.flux[0] > 0, exact.flux > 0)
    np.testing.assert_allclose(fast.flux[0], exact.flux, rtol=2e-5)
    np.testing.assert_allclose(fast.error, exact.error, rtol=2e-5)


def test_merge_plan_on_a_pixel_subset_equals_the_full_merge():
    spectrograph = forward.default_spectrograph()
    layout = spectrograph.layout
    grid = product_grid(6000.0, 6100.0)
    centres = layout.pixel_wavelength_air_aa
    pixels = (centres > 5980.0) & (centres < 6120.0)
    rng = np.random.default_rng(4)
    counts = rng.uniform(100.0, 5000.0, centres.shape)
    full = MergePlan(layout, grid, spectrograph.merge_trim_px, spectrograph.to_bin)
    subset = MergePlan(layout, grid, spectrograph.merge_trim_px, spectrograph.to_bin, pixels)
    expected = full.merge(counts.reshape(1, -1), counts.ravel(), 12.0)
    got = subset.merge(counts[pixels][None, :], counts[pixels], 12.0)
    np.testing.assert_array_equal(got.flux, expected.flux)
    np.testing.assert_array_equal(got.error, expected.error)


def test_merge_plan_refuses_a_berv_it_was_not_built_for():
    spectrograph = forward.default_spectrograph()
    plan = MergePlan(spectrograph.layout, product_grid(5000.0, 5010.0), spectrograph.merge_trim_px,
                     spectrograph.to_bin)
    with pytest.raises(ParameterError, match="berv_kms"):
        plan.merge(np.ones((1, spectrograph.to_bin.size)), np.ones(spectrograph.to_bin.size), 40.0)


def test_stellar_component_matches_a_fine_grid_lsf_convolution():
    """The LSF-convolved stellar truth component on the product grid equals the synthesis on a 0.03 km/s grid
    convolved with the same Gaussian LSF and read at the bins (to the synthesis' own wing-cut differences)."""
    window = (6270.0, 6300.0)
    sim = forward.simulate(dict(NODE_STAR, vsini_kms=2.0), seed=0, components=True, window=window,
                           stages={"noise": False})
    values = forward.resolve_parameters(dict(NODE_STAR, vsini_kms=2.0))
    fine = synthesize(5750.0, 4.5, 0.0, vsini_kms=2.0, vmac_kms=values["vmac_kms"], rv_kms=12.3,
                      window=(window[0] - 2.0, window[1] + 2.0), step_kms=0.03)
    smoothed = convolve_gaussian_velocity((fine.flux / fine.continuum).astype(float), 0.03,
                                          forward.default_spectrograph().lsf_fwhm_kms)
    exact = np.interp(sim.wavelength_air_aa, fine.wavelength_air_aa, smoothed)
    assert exact.min() < 0.7  # Fe I 6280.6 and neighbours
    assert np.abs(sim.components["stellar"] - exact).max() < 3e-4


def test_single_precision_lattice_gives_the_double_precision_pixels():
    """The float32 lattice and FFTs change the pixel means by < 2e-6 of the continuum, saturated cores included."""
    values = forward.resolve_parameters(dict(NODE_STAR, vsini_kms=2.0))
    plan = forward.forward_plan(5880.0, 5900.0)
    star = plan.place_star(forward.default_stellar_model(), values)
    density = star.lines_obs * plan.narrow_factors(values, active_factors({"atmosphere"}), star)[0][1]
    single = plan.extraction.pixel_means(density)
    double = plan.extraction.pixel_means(density.astype(float))
    assert single.dtype == np.float32 and density.min() < 0.2  # Na D cores
    assert np.abs(single - double).max() < 2e-6
