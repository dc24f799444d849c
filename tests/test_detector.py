import numpy as np
import pytest

from simharps.detector import ADC_MAX_ADU, Detector, photon_and_read_noise
from simharps.errors import ParameterError


def test_error_column_is_honest():
    detector = Detector(cosmic_residual_fraction=0.0)
    rng = np.random.default_rng(7)
    electrons = rng.uniform(10.0, 2.0e4, size=200_000)
    mean_adu, error_adu = detector.expectation(electrons, exptime_s=600.0)
    counts_adu, drawn_error_adu, saturated = detector.draw(electrons, 600.0, rng)
    pulls = (counts_adu - mean_adu) / error_adu
    np.testing.assert_array_equal(drawn_error_adu, error_adu)
    assert not saturated.any()
    assert abs(pulls.mean()) < 0.01
    assert abs(pulls.std() - 1.0) < 0.01


def test_read_noise_grows_with_extraction_window():
    detector = Detector(read_noise_e=5.45, n_window=17)
    _, error_adu = detector.expectation(np.zeros(1), exptime_s=100.0)
    assert error_adu[0] * detector.gain_e_per_adu == pytest.approx(5.45 * np.sqrt(17))


def test_dark_is_subtracted_but_adds_noise():
    detector = Detector(dark_e_per_px_s=0.01, cosmic_residual_fraction=0.0, read_noise_e=0.0)
    rng = np.random.default_rng(3)
    counts_adu, error_adu, _ = detector.draw(np.zeros(100_000), exptime_s=1000.0, rng=rng)
    dark_e = 0.01 * 1000.0 * detector.n_window
    assert abs(counts_adu.mean()) < 0.02 * np.sqrt(dark_e)
    assert error_adu[0] == pytest.approx(np.sqrt(dark_e) / detector.gain_e_per_adu)
    assert counts_adu.std() * detector.gain_e_per_adu == pytest.approx(np.sqrt(dark_e), rel=0.02)


def test_saturation_clips_at_adc_ceiling_of_peak_pixel():
    detector = Detector(peak_fraction=0.2)
    electrons = np.array([1.0e5, 2.0e6])
    counts_adu, _, saturated = detector.draw(electrons, 60.0, np.random.default_rng(0))
    assert saturated.tolist() == [False, True]
    assert counts_adu[1] * detector.peak_fraction == pytest.approx(ADC_MAX_ADU)


def test_cosmic_residuals_are_positive_rare_and_below_threshold():
    detector = Detector(cosmic_residual_fraction=1.0, read_noise_e=5.0)
    electrons = np.full(72 * 4096, 1.0e4)
    sigma_e = np.sqrt(detector.variance_e(electrons, 3600.0))
    residuals = detector._cosmic_residuals_e(sigma_e, 3600.0, np.random.default_rng(5))
    hit = residuals > 0
    assert 4000 < hit.sum() < 6100  # ~1.4/s x 3600 s = 5040 hits, a few land on the same pixel
    assert residuals.max() <= 2 * detector.cosmic_threshold_sigma * sigma_e.max()


@pytest.mark.parametrize("field, value", [("gain_e_per_adu", 0.0), ("read_noise_e", -1.0), ("peak_fraction", 1.5)])
def test_bad_detector_parameters_raise(field, value):
    with pytest.raises(ParameterError, match=field):
        Detector(**{field: value})


@pytest.mark.parametrize("mean_e", [50.0, 60.0, 500.0, 2000.0])  # above, float32 rounding exceeds the kurtosis
def test_cornish_fisher_map_has_the_poisson_plus_normal_cumulants(mean_e):
    """Moments of the map z -> counts by Gauss-Hermite quadrature (exact for polynomials): mean exact, variance to
    O(1/mean^2), skewness and excess kurtosis of Poisson(mean) + Normal(0, read variance) to < 1 %."""
    read_variance = 6 * 5.45**2
    node, weight = np.polynomial.hermite_e.hermegauss(40)
    weight = weight / weight.sum()
    rng = _FixedNormal(node)
    counts, variance = photon_and_read_noise(np.full(node.size, mean_e), read_variance, rng)
    total = mean_e + read_variance
    centred = (counts.astype(float) - mean_e) / np.sqrt(total)
    assert np.dot(weight, centred) == pytest.approx(0.0, abs=2e-5)  # float32 arithmetic
    assert np.dot(weight, centred**2) == pytest.approx(1.0, abs=1e-4)
    assert np.dot(weight, centred**3) == pytest.approx(mean_e / total**1.5, rel=0.01)
    assert np.dot(weight, centred**4) - 3 == pytest.approx(mean_e / total**2, rel=0.01)
    assert variance[0] == pytest.approx(total, rel=1e-6)


class _FixedNormal:
    """Stands in for a numpy Generator: 'draws' the given standard-normal values."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float32)

    def standard_normal(self, shape, dtype=np.float64):
        return self.values.reshape(shape).astype(dtype)


@pytest.mark.parametrize("mean_e", [20.0, 500.0])
def test_photon_and_read_noise_draws_have_the_right_mean_and_variance(mean_e):
    read_variance = 6 * 5.45**2
    counts, _ = photon_and_read_noise(np.full(1_000_000, mean_e), read_variance, np.random.default_rng(9))
    total = mean_e + read_variance
    assert counts.mean() == pytest.approx(mean_e, abs=5 * np.sqrt(total / 1e6))
    assert counts.var() == pytest.approx(total, rel=5 * np.sqrt(2 / 1e6))


def test_scalar_means_below_the_poisson_limit_draw_integers_plus_read_noise():
    rng = np.random.default_rng(2)
    draws = [float(photon_and_read_noise(3.0, 0.0, rng)[0]) for _ in range(200)]
    assert all(value == int(value) and value >= 0 for value in draws)


def test_electrons_for_snr_inverts_the_variance_model():
    detector = Detector(dark_e_per_px_s=0.0)
    snr = np.array([3.0, 40.9, 110.0, 515.0])
    electrons = detector.electrons_for_snr(snr)
    np.testing.assert_allclose(electrons / np.sqrt(detector.variance_e(electrons, 600.0)), snr, rtol=1e-12)
