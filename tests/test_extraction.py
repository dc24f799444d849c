"""The fixed-geometry fast path (lattice -> order pixels -> product bins) against the exact, general instrument code."""

import numpy as np
import pytest

from simharps import forward
from simharps.chain import active_factors
from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.errors import ParameterError
from simharps.extraction import BERV_LIMIT_KMS, MergePlan
from simharps.fidelity import noise
from simharps.grids import product_grid
from simharps.ingest.noise import modelled_error
from simharps.instrument import bin_edges
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
    # a spectrum-like pixel series (lines a few pixels wide, 1 % noise): the same rebin, with the bin edges from the
    # exact inversion of the wavelength solution (instrument) and from the cubic in BERV through float32 nodes (plan):
    # they differ by ~1e-5 of a pixel (measured <= 1e-5 relative on flux and error for |BERV| <= 34 km/s)
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


# Noise texture of the 86 real DRS s1d of alpha Cen B (consecutive exposures <= 5 min apart, docs/fidelity.md): the
# variance of the bins against the whole-pixel model by folded pixel phase (0.05 .. 0.45 of a pixel from its centre;
# the real excess of 1.160 divided out), the autocorrelation of the differences at lags 1-3 (all, and the photon-noise
# intercepts), and the photon-noise autocorrelations per 200 A bin (3700 .. 6900 A).
REAL_BY_PHASE = np.array([1.263, 1.224, 1.161, 1.098, 1.057]) / 1.160
REAL_ACF = {1: 0.405, 2: -0.103, 3: -0.021}
REAL_PHOTON_ACF = {1: 0.376, 2: -0.152, 3: -0.051}
REAL_PHOTON_ACF_PER_BIN = {
    1: [0.249, 0.182, 0.200, 0.233, 0.267, 0.303, 0.336, 0.373, 0.386, 0.417, 0.437, 0.468, 0.480, 0.495, 0.524,
        0.527, 0.515],
    2: [-0.085, -0.088, -0.121, -0.141, -0.157, -0.168, -0.181, -0.181, -0.180, -0.179, -0.178, -0.168, -0.158,
        -0.148, -0.125, -0.128, -0.141],
    3: [0.080, 0.052, 0.048, 0.049, 0.042, 0.027, 0.006, -0.011, -0.041, -0.057, -0.086, -0.122, -0.130, -0.146,
        -0.178, -0.192, -0.187]}
PHASE_OFFSET_KMS = 0.14
"""The real phases come from the 2003 layout moved by the BERV; the 2012 pixels sit ~0.17 px (0.14 km/s) off it: with
the simulated bins' phases taken as far off, their curve is the real one (without, the real curve is the flatter)."""


@pytest.fixture(scope="module")
def pixel_noise_texture():
    """``simharps.fidelity.noise`` sums of pure pixel noise (Poisson + read noise of 3e4 e- x blaze, 600 s) merged
    by the plan over the whole product range, two draws differenced at each of three BERVs, against the whole-pixel
    model (``modelled_error``) as for the real spectra; phases as measured and moved by PHASE_OFFSET_KMS."""
    spectrograph = forward.default_spectrograph()
    layout = spectrograph.layout
    grid = product_grid()
    plan = MergePlan(layout, grid, spectrograph.merge_trim_px, spectrograph.to_bin)
    expected = (3.0e4 * layout.blaze).ravel()
    variance = Detector().variance_e(expected, 600.0)
    rng = np.random.default_rng(5)
    sums = {"as measured": [], "moved": []}
    for berv in (-17.0, 3.0, 21.0):
        merged = plan.merge(expected + rng.normal(size=(2, expected.size)) * np.sqrt(variance), variance, berv)
        meta = dict(instrument="HARPS", berv_kms=berv, exptime_s=600.0)
        var = [modelled_error(grid, np.where(flux > 0, flux, np.nan), meta) ** 2 for flux in merged.flux]
        for name, shift in (("as measured", 0.0), ("moved", PHASE_OFFSET_KMS)):
            sums[name].append(noise.difference_texture(grid, merged.flux[0], merged.flux[1], var[0], var[1],
                                                       rescale=False, phase=noise.pixel_phase(grid, berv + shift)))
    return {name: noise.summary(noise.combine(parts)) for name, parts in sums.items()}


def test_merged_pixel_noise_has_the_drs_variance_by_phase(pixel_noise_texture):
    """A bin carries about a whole pixel's variance at every phase, as the DRS s1d do (linear interpolation gave
    (1 - p)^2 + p^2: 0.905 .. 0.505). Measured: 1.20, 1.13, 1.01, 0.90, 0.83 (mean 1.00); with the phases moved by
    PHASE_OFFSET_KMS 1.11, 1.07, 1.02, 0.96, 0.92 against the real 1.089, 1.055, 1.001, 0.947, 0.911."""
    measured = np.array(pixel_noise_texture["as measured"]["by_phase"]["variance_ratio"])
    assert np.all(np.diff(measured) < 0)                        # most at the pixel centres, as the real
    assert measured.mean() == pytest.approx(REAL_BY_PHASE.mean(), abs=0.03)
    assert pixel_noise_texture["as measured"]["overall"]["variance_ratio"] == pytest.approx(1.0, abs=0.03)
    moved = np.array(pixel_noise_texture["moved"]["by_phase"]["variance_ratio"])
    np.testing.assert_allclose(moved, REAL_BY_PHASE, atol=0.05)


def test_merged_pixel_noise_has_the_drs_autocorrelation(pixel_noise_texture):
    """Lag 1, 2, 3 of the merged pixel noise: 0.393, -0.136, -0.051 (linear interpolation: +0.52, +0.08, +0.00);
    real 0.405, -0.103, -0.021 (0.376, -0.152, -0.051 of the photon noise alone, the rest a pattern that scales with
    the flux and changes between exposures). Per 200 A bin the photon-noise values follow the real ones as the pixel
    spans more bins towards the red (lag 1 0.16 -> 0.57, lag 3 changing sign near 5000 A), within 0.07."""
    overall = pixel_noise_texture["as measured"]["overall"]
    for lag in (1, 2, 3):
        assert overall[f"acf_lag{lag}"] == pytest.approx(REAL_ACF[lag], abs=0.05), lag
        assert overall[f"acf_lag{lag}"] == pytest.approx(REAL_PHOTON_ACF[lag], abs=0.03), lag
        per_bin = np.array([np.nan if v is None else v for v in pixel_noise_texture["as measured"][f"acf_lag{lag}"]])
        np.testing.assert_allclose(per_bin, REAL_PHOTON_ACF_PER_BIN[lag], atol=0.08, err_msg=f"lag {lag}")
    assert overall["acf_lag2"] < -0.1                           # negative lobes, which interpolation cannot give


def test_merge_counts_what_falls_into_each_bin():
    """Flux conservation: a flat and a sloped spectrum come out exact bin by bin (to 2e-8; so their integral over any
    window to better than 1e-6), and every count of an unresolved feature lands in the product (linear interpolation put
    0.90 to 1.11 of them there, by the feature's phase)."""
    spectrograph = forward.default_spectrograph()
    layout = spectrograph.layout
    row = layout.order_index(110)
    centre = layout.pixel_wavelength_air_aa[row, 2048]
    grid = product_grid(centre - 3.0, centre + 3.0)     # one order, far from its ends
    plan = MergePlan(layout, grid, spectrograph.merge_trim_px, spectrograph.to_bin)
    berv = 13.7
    edges = bin_edges(grid) / (1.0 + berv / C_KMS)     # the bins in the observatory frame
    for name, antiderivative in (("flat", lambda x: 250.0 * x),
                                 ("sloped", lambda x: 250.0 * x + 20.0 * (x - centre) ** 2)):
        counts = layout.blaze * np.diff(antiderivative(layout.pixel_edges_air_aa), axis=1)
        expected = np.diff(antiderivative(edges))
        exact = spectrograph.merge(counts, counts, berv, wavelength_grid_aa=grid)
        fast = plan.merge(counts.reshape(1, -1), counts.ravel(), berv)
        assert np.all(exact.n_orders == 1), name
        # (the counts per pixel are not quite linear in the pixel coordinate: the wavelength solution's curvature
        # leaves 2e-8, which the edge densities, cut after SPLINE_TAPS pixels, do not follow exactly)
        np.testing.assert_allclose(exact.flux, expected, rtol=1e-7, err_msg=name)
        np.testing.assert_allclose(fast.flux[0], expected, rtol=1e-6, err_msg=name)
        assert exact.flux.sum() == pytest.approx(expected.sum(), rel=1e-7)
        assert fast.flux[0].astype(float).sum() == pytest.approx(expected.sum(), rel=1e-6)
    # an unresolved feature: 1000 blaze-corrected e- more in one pixel (any phase): the bins gain exactly that
    flat = layout.blaze * np.diff(250.0 * layout.pixel_edges_air_aa, axis=1)
    base = spectrograph.merge(flat, flat, berv, wavelength_grid_aa=grid)
    for pixel in (2040, 2041, 2042):
        spiked = flat.copy()
        spiked[row, pixel] += 1000.0 * layout.blaze[row, pixel]
        added = spectrograph.merge(spiked, flat, berv, wavelength_grid_aa=grid).flux - base.flux
        assert added.sum() == pytest.approx(1000.0, rel=1e-9)
        assert added.min() < 0                                  # the spline's negative lobes
