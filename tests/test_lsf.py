import numpy as np
import pytest

from simharps.lsf import (
    FWHM_PER_SIGMA,
    convolve_gaussian_velocity,
    fwhm_kms_from_resolution,
    gaussian_box_kernel,
    overlap_save,
    overlap_save_index,
    overlap_save_samples,
)


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


def test_overlap_save_is_the_valid_convolution_and_halves_exactly_when_band_limited():
    rng = np.random.default_rng(5)
    signal = rng.normal(size=20_000)
    kernel = rng.normal(size=301)
    pieces = overlap_save(signal, kernel)
    valid = overlap_save_samples(pieces, kernel.size, signal.size - kernel.size + 1)
    np.testing.assert_allclose(valid, np.convolve(signal, kernel, mode="valid"), atol=1e-9)
    # a Gaussian LSF at 0.15 km/s leaves no power above half the Nyquist frequency: every 2nd sample is exact
    lsf = gaussian_box_kernel(0.15, 2.607, 0.7, 55)
    smooth = np.convolve(signal, lsf, mode="valid")
    halved = overlap_save(signal, lsf, decimation=2)
    sample = np.arange(0, smooth.size, 2) // 2
    np.testing.assert_allclose(halved.ravel()[overlap_save_index(sample, lsf.size, 2)], smooth[::2], atol=1e-9)


def test_gaussian_box_kernel_has_the_lsf_and_box_moments():
    step, fwhm, width = 0.15, 2.607, 0.82
    kernel = gaussian_box_kernel(step, fwhm, width, 60)
    lag = (np.arange(kernel.size) - 60) * step
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.sum(kernel * lag**2) == pytest.approx((fwhm / FWHM_PER_SIGMA) ** 2 + width**2 / 12, rel=1e-6)


def test_overlap_save_on_long_and_strided_signals():
    """Long enough for several batches of blocks taken straight from the signal; a strided view is copied first."""
    rng = np.random.default_rng(6)
    signal = rng.normal(size=200_000)
    kernel = rng.normal(size=151)
    exact = np.convolve(signal, kernel, mode="valid")
    got = overlap_save_samples(overlap_save(signal, kernel), kernel.size, exact.size)
    np.testing.assert_allclose(got, exact, atol=1e-9)
    strided = signal[::2]
    got = overlap_save_samples(overlap_save(strided, kernel), kernel.size, strided.size - kernel.size + 1)
    np.testing.assert_allclose(got, np.convolve(strided, kernel, mode="valid"), atol=1e-9)
    with pytest.raises(ValueError, match="1-D"):
        overlap_save(signal.reshape(2, -1), kernel)
