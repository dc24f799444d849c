import numpy as np

from simharps.lsf import FWHM_PER_SIGMA, convolve_gaussian_velocity, fwhm_kms_from_resolution


def test_harps_resolution_gives_2p61_kms():
    assert abs(fwhm_kms_from_resolution(115_000) - 2.607) < 1e-3


def test_delta_line_becomes_gaussian_of_requested_width():
    step_kms = 0.15
    flux = np.zeros(2001)
    flux[1000] = 1.0
    out = convolve_gaussian_velocity(flux, step_kms, fwhm_kms=2.607)
    velocity = (np.arange(flux.size) - 1000) * step_kms
    sigma = np.sqrt(np.sum(out * velocity**2) / np.sum(out))
    assert abs(out.sum() - 1.0) < 1e-12
    assert abs(sigma * FWHM_PER_SIGMA - 2.607) / 2.607 < 1e-3


def test_batch_convolves_along_last_axis():
    rng = np.random.default_rng(1)
    batch = rng.normal(size=(3, 500))
    out = convolve_gaussian_velocity(batch, 0.15, 2.6)
    np.testing.assert_allclose(out[1], convolve_gaussian_velocity(batch[1], 0.15, 2.6))
