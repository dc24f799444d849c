"""Fibre stage: Filippenko 1982 refraction table, Moffat/Gaussian closed forms, brute-force 2-D integrals."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import ncx2

from simharps.errors import ParameterError
from simharps.fibre import (
    HPA_PER_MMHG,
    Filippenko1982Refraction,
    GaussianPSF,
    MoffatPSF,
    injection_efficiency,
    offset_aperture_fraction,
    seeing_fwhm_arcsec,
)

# Filippenko 1982 (PASP 94, 715) Table 1: differential refraction (arcsec) relative to 5000 A at 2 km
# altitude (P = 600 mmHg, T = 7 C, water vapour 8 mmHg), as reproduced on CTIO's "Differential Atmospheric
# Refraction" page. That reproduction labels the sec z = 1.95 and 2.00 rows "2.00" and "2.05"; the row
# below is the one that follows tan z for sec z = 2.00 (1.10 = 0.71 * tan z(2.00) / tan z(1.50)).
FILIPPENKO_WAVELENGTHS_AA = np.array([3000.0, 3500.0, 4000.0, 4500.0, 5500.0, 6000.0, 6500.0])
FILIPPENKO_TABLE = {
    1.20: [1.40, 0.80, 0.42, 0.17, -0.13, -0.22, -0.30],
    1.50: [2.37, 1.34, 0.71, 0.29, -0.21, -0.37, -0.50],
    2.00: [3.67, 2.08, 1.10, 0.45, -0.33, -0.58, -0.77],
}
FILIPPENKO_RED_AT_1P5 = {7000.0: -0.60, 8000.0: -0.74, 9000.0: -0.84}


@pytest.fixture(scope="module")
def filippenko_air():
    return Filippenko1982Refraction(7.0, 600.0 * HPA_PER_MMHG, 8.0 * HPA_PER_MMHG)


@pytest.mark.parametrize("airmass", sorted(FILIPPENKO_TABLE))
def test_differential_refraction_reproduces_filippenko_table(filippenko_air, airmass):
    computed = filippenko_air.differential_refraction_arcsec(FILIPPENKO_WAVELENGTHS_AA, airmass, 5000.0)
    np.testing.assert_allclose(computed, FILIPPENKO_TABLE[airmass], atol=0.0055)  # table rounded to 0.01"


def test_differential_refraction_red_wavelengths(filippenko_air):
    wavelengths = np.array(sorted(FILIPPENKO_RED_AT_1P5))
    computed = filippenko_air.differential_refraction_arcsec(wavelengths, 1.5, 5000.0)
    np.testing.assert_allclose(computed, [FILIPPENKO_RED_AT_1P5[w] for w in wavelengths], atol=0.0055)


def test_refraction_grows_with_pressure_and_falls_with_water_vapour():
    wave = np.array([4000.0])
    base = Filippenko1982Refraction(10.0, 775.0, 0.0).differential_refraction_arcsec(wave, 1.5, 5500.0)
    denser = Filippenko1982Refraction(10.0, 1013.0, 0.0).differential_refraction_arcsec(wave, 1.5, 5500.0)
    assert denser[0] / base[0] == pytest.approx(1013.0 / 775.0, rel=0.01)
    refraction = Filippenko1982Refraction(10.0, 775.0, 10.0)
    assert refraction.refractivity(5000.0) < Filippenko1982Refraction(10.0, 775.0, 0.0).refractivity(5000.0)


@pytest.mark.parametrize("fwhm_arcsec", [0.5, 1.0, 1.8])
def test_moffat_encircled_energy_matches_2d_integral_of_profile(fwhm_arcsec):
    psf = MoffatPSF(fwhm_arcsec)
    alpha, beta = psf.alpha_arcsec, psf.beta
    # surface brightness normalised to unit flux, integrated numerically over the 1" fibre
    def surface_brightness(r):
        return (beta - 1) / (np.pi * alpha**2) * (1 + (r / alpha) ** 2) ** (-beta)
    flux, _ = integrate.quad(lambda r: 2 * np.pi * r * surface_brightness(r), 0, 0.5, epsabs=1e-13)
    assert psf.encircled_energy(0.5) == pytest.approx(flux, abs=1e-10)
    assert offset_aperture_fraction(psf, 0.5, 0.0) == pytest.approx(flux, abs=1e-10)
    # FWHM: half the central surface brightness at r = FWHM / 2
    assert surface_brightness(fwhm_arcsec / 2) / surface_brightness(0.0) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("fwhm_arcsec, offset_arcsec", [
    (0.2, 0.5), (0.6, 0.2), (0.6, 0.5), (0.6, 0.9), (1.2, 0.3), (1.2, 1.6),
])
def test_offset_moffat_fraction_matches_brute_force_2d_integration(fwhm_arcsec, offset_arcsec):
    psf = MoffatPSF(fwhm_arcsec)
    alpha, beta = psf.alpha_arcsec, psf.beta

    def surface_brightness(y, x):
        r2 = (x - offset_arcsec) ** 2 + y**2
        return (beta - 1) / (np.pi * alpha**2) * (1 + r2 / alpha**2) ** (-beta)

    half_chord = lambda x: np.sqrt(max(0.25 - x * x, 0.0))  # noqa: E731
    brute, _ = integrate.dblquad(surface_brightness, -0.5, 0.5, lambda x: -half_chord(x), half_chord,
                                 epsabs=1e-12, epsrel=1e-11)
    assert offset_aperture_fraction(psf, 0.5, offset_arcsec) == pytest.approx(brute, abs=1e-8)


def test_offset_gaussian_fraction_matches_marcum_closed_form():
    # Fraction of an offset circular Gaussian inside a circle = CDF of a non-central chi^2 with 2 d.o.f.
    psf = GaussianPSF(0.8)
    sigma = psf.sigma_arcsec
    offsets = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 1.2])
    expected = ncx2.cdf((0.5 / sigma) ** 2, 2, (offsets / sigma) ** 2)
    np.testing.assert_allclose(offset_aperture_fraction(psf, 0.5, offsets), expected, atol=1e-10)


def test_moffat_tends_to_gaussian_for_large_beta():
    offsets = np.array([0.0, 0.25, 0.5, 0.8])
    moffat = offset_aperture_fraction(MoffatPSF(0.8, beta=5000.0), 0.5, offsets)
    gaussian = offset_aperture_fraction(GaussianPSF(0.8), 0.5, offsets)
    np.testing.assert_allclose(moffat, gaussian, atol=1e-3)


def test_quadrature_converged_at_default_nodes():
    offsets = np.linspace(0.0, 1.5, 31)
    psf = MoffatPSF(np.full(offsets.shape, 0.3))
    np.testing.assert_allclose(offset_aperture_fraction(psf, 0.5, offsets),
                               offset_aperture_fraction(psf, 0.5, offsets, n_nodes=400), atol=1e-9)


def test_seeing_scaling_reference_point_and_exponents():
    assert seeing_fwhm_arcsec(5000.0, 0.9, 1.0) == pytest.approx(0.9)
    assert seeing_fwhm_arcsec(4000.0, 1.0, 1.0) / seeing_fwhm_arcsec(6400.0, 1.0, 1.0) == pytest.approx(1.6**0.2)
    assert seeing_fwhm_arcsec(5000.0, 1.0, 2.0) == pytest.approx(2.0**0.6)


def test_injection_without_adr_or_offset_is_centred_moffat_everywhere():
    wave = np.linspace(3800.0, 6900.0, 50)
    eta = injection_efficiency(wave, 1.0, 1.3, adr_residual_fraction=0.0)
    expected = MoffatPSF(seeing_fwhm_arcsec(wave, 1.0, 1.3)).encircled_energy(0.5)
    np.testing.assert_allclose(eta, expected, atol=1e-12)
    assert np.all(np.diff(eta) > 0)  # smaller seeing disc in the red


def test_uncorrected_adr_costs_blue_light_and_guiding_wavelength_is_unaffected():
    wave = np.array([3800.0, 5500.0, 6900.0])
    perfect = injection_efficiency(wave, 0.8, 2.0, adr_residual_fraction=0.0)
    no_adc = injection_efficiency(wave, 0.8, 2.0, adr_residual_fraction=1.0, guiding_wavelength_aa=5500.0)
    assert no_adc[1] == pytest.approx(perfect[1], abs=1e-12)
    assert no_adc[0] < 0.8 * perfect[0]  # ~1.5" of ADR between 3800 and 5500 A at airmass 2
    assert no_adc[2] < perfect[2]


def test_guiding_offset_direction_relative_to_parallactic_angle_matters():
    # An offset toward the zenith (where blue images move) helps the red and hurts the blue.
    wave = np.array([3800.0, 6900.0])
    common = dict(seeing_arcsec=0.8, airmass=1.8, fibre_offset_arcsec=0.3, adr_residual_fraction=1.0,
                  parallactic_angle_deg=40.0)
    toward_zenith = injection_efficiency(wave, fibre_offset_angle_deg=40.0, **common)
    away = injection_efficiency(wave, fibre_offset_angle_deg=220.0, **common)
    assert toward_zenith[0] < away[0] and toward_zenith[1] > away[1]


@pytest.mark.parametrize("kwargs, name", [
    (dict(seeing_arcsec=0.0, airmass=1.2), "seeing_arcsec"),
    (dict(seeing_arcsec=1.0, airmass=0.9), "airmass"),
    (dict(seeing_arcsec=1.0, airmass=1.2, adr_residual_fraction=1.5), "adr_residual_fraction"),
    (dict(seeing_arcsec=1.0, airmass=1.2, fibre_offset_arcsec=-0.1), "fibre_offset_arcsec"),
    (dict(seeing_arcsec=1.0, airmass=1.2, pressure_hpa=-5.0), "pressure_hpa"),
    (dict(seeing_arcsec=1.0, airmass=1.2, beta=0.5), "beta"),
])
def test_bad_parameters_raise_parameter_error_naming_them(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        injection_efficiency(np.array([5000.0]), **kwargs)


def test_batched_psf_and_offsets_broadcast_like_scalars():
    fwhm = np.array([[0.5, 0.8], [1.0, 1.2]])  # e.g. (spectra, wavelengths)
    offsets = np.array([0.0, 0.3])
    batched = offset_aperture_fraction(MoffatPSF(fwhm), 0.5, offsets)
    singles = [[offset_aperture_fraction(MoffatPSF(f), 0.5, d) for f, d in zip(row, offsets)] for row in fwhm]
    np.testing.assert_allclose(batched, singles, atol=1e-14)
