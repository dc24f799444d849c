import numpy as np
import pytest

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


def test_fft_method_matches_direct_correlation_edges_included():
    rng = np.random.default_rng(2)
    batch = 100.0 * (1.0 - 0.9 * (rng.random(size=(2, 3000)) < 0.02)) + rng.normal(size=(2, 3000))
    direct = convolve_gaussian_velocity(batch, 0.15, 2.607)
    fast64 = convolve_gaussian_velocity(batch, 0.15, 2.607, method="fft")
    fast32 = convolve_gaussian_velocity(batch.astype(np.float32), 0.15, 2.607, method="fft")
    assert fast64.dtype == np.float64 and fast32.dtype == np.float32
    np.testing.assert_allclose(fast64, direct, rtol=1e-12)
    np.testing.assert_allclose(fast32, direct, rtol=3e-6)
    with pytest.raises(ValueError, match="method"):
        convolve_gaussian_velocity(batch, 0.15, 2.607, method="spline")
