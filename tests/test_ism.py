"""ISM stage: dust extinction against the laws' own coefficients; Na D against Poznanski et al. 2012."""

import astropy.units as u
import numpy as np
import pytest
from dust_extinction.parameter_averages import G23
from scipy.integrate import trapezoid

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import log_lambda_grid, vacuum_to_air
from simharps.ism import (
    CA_K,
    NA_D1,
    NA_D2,
    extinction_transmission,
    interstellar_optical_depth,
    nad_column_density,
)


def f99_optical_anchor_a_over_ebv(wavelength_vac_aa, rv):
    """A(lambda)/E(B-V) at the optical spline anchors of Fitzpatrick 1999 (PASP 111, 63, Table 3 notes)."""
    anchors = {
        6000.0: -0.426 + 1.0044 * rv,
        5470.0: -0.050 + 1.0016 * rv,
        4670.0: 0.701 + 1.0016 * rv,
        4110.0: 1.208 + 1.0032 * rv - 0.00033 * rv**2,
    }
    return anchors[wavelength_vac_aa]


@pytest.mark.parametrize("rv_dust", [2.5, 3.1, 5.0])
def test_f99_flux_ratio_matches_published_anchor_coefficients(rv_dust):
    # The F99 optical spline passes through its anchors (vacuum 6000 A = 1.667 um^-1, 4110 A = 2.433 um^-1).
    ebv_mag = 0.4
    x_red, x_blue = 6000.0, 4110.0
    wave_air_aa = vacuum_to_air(np.array([x_red, x_blue]))
    t_red, t_blue = extinction_transmission(wave_air_aa, ebv_mag, rv_dust, law="F99")
    expected_ratio = 10 ** (-0.4 * ebv_mag * (f99_optical_anchor_a_over_ebv(x_blue, rv_dust)
                                              - f99_optical_anchor_a_over_ebv(x_red, rv_dust)))
    assert t_blue / t_red == pytest.approx(expected_ratio, rel=1e-9)
    # and the absolute level at the red anchor
    assert t_red == pytest.approx(10 ** (-0.4 * ebv_mag * f99_optical_anchor_a_over_ebv(x_red, rv_dust)), rel=1e-9)


def test_g23_flux_ratio_matches_dust_extinction_model():
    ebv_mag, rv_dust = 0.3, 3.1
    wave_vac_aa = np.array([4000.0, 6500.0])
    t = extinction_transmission(vacuum_to_air(wave_vac_aa), ebv_mag, rv_dust)  # default law G23
    a_over_av = G23(Rv=rv_dust)(wave_vac_aa * u.AA)
    expected = 10 ** (-0.4 * rv_dust * ebv_mag * (a_over_av[0] - a_over_av[1]))
    assert t[0] / t[1] == pytest.approx(expected, rel=1e-6)


def test_g23_selective_extinction_is_about_ebv():
    # Monochromatic E(4400-5500) differs from broad-band E(B-V) by a few per cent only.
    ebv_mag = 1.0
    t_b, t_v = extinction_transmission(np.array([4400.0, 5500.0]), ebv_mag)
    assert -2.5 * np.log10(t_b / t_v) == pytest.approx(ebv_mag, rel=0.1)


def test_transmission_is_one_without_dust_and_bluer_light_is_dimmed_more():
    wave_air_aa = np.linspace(3781.0, 6913.0, 500)
    np.testing.assert_array_equal(extinction_transmission(wave_air_aa, 0.0), 1.0)
    t = extinction_transmission(wave_air_aa, 0.2)
    assert np.all(np.diff(t) > 0) and np.all((t > 0) & (t < 1))


@pytest.mark.parametrize("kwargs, name", [
    (dict(ebv_mag=0.1, law="XYZ"), "law"),
    (dict(ebv_mag=-0.1), "ebv_mag"),
    (dict(ebv_mag=0.1, rv_dust=2.0), "rv_dust"),  # below G23's 2.3
    (dict(ebv_mag=0.1, rv_dust=6.5, law="F99"), "rv_dust"),
])
def test_bad_extinction_parameters_raise_parameter_error_naming_them(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        extinction_transmission(np.array([5000.0]), **kwargs)


def test_wavelength_outside_law_raises():
    with pytest.raises(ParameterError, match="wavelength_air_aa"):
        extinction_transmission(np.array([5000.0, 40000.0]), 0.1, law="F99")


def _observed_ew_aa(wave_air_aa, tau, lo_aa, hi_aa):
    inside = (wave_air_aa >= lo_aa) & (wave_air_aa < hi_aa)
    return trapezoid(-np.expm1(-tau[inside]), wave_air_aa[inside])


def _nad_ews_aa(wave_air_aa, tau, shift=1.0):
    """EW(D2), EW(D1): each line integrated out to the midpoint of the doublet and 30 A beyond."""
    d2, d1 = NA_D2.wavelength_air_aa * shift, NA_D1.wavelength_air_aa * shift
    middle = 0.5 * (d1 + d2)
    return _observed_ew_aa(wave_air_aa, tau, d2 - 30, middle), _observed_ew_aa(wave_air_aa, tau, middle, d1 + 30)


@pytest.mark.parametrize("ebv_mag", [0.05, 0.1, 0.3, 0.8])
def test_nad_equivalent_width_follows_poznanski2012(ebv_mag):
    wave_air_aa = log_lambda_grid(5850.0, 5935.0, step_kms=0.15)
    rv_kms = 12.0
    tau = interstellar_optical_depth(wave_air_aa, ebv_mag, ism_rv_kms=rv_kms)
    ew_total = sum(_nad_ews_aa(wave_air_aa, tau, 1 + rv_kms / C_KMS))
    # Poznanski, Prochaska & Bloom 2012 eq. 9: log10 E(B-V) = 1.17 EW(D1+D2) - 1.85
    assert ew_total == pytest.approx((np.log10(ebv_mag) + 1.85) / 1.17, rel=5e-3)


def test_nad_lines_sit_at_the_ism_velocity():
    wave_air_aa = log_lambda_grid(5880.0, 5900.0, step_kms=0.15)
    rv_kms = -23.0
    tau = interstellar_optical_depth(wave_air_aa, 0.2, ism_rv_kms=rv_kms)
    first_half = wave_air_aa < 5893.0
    d2_centre = wave_air_aa[first_half][np.argmax(tau[first_half])]
    d1_centre = wave_air_aa[~first_half][np.argmax(tau[~first_half])]
    assert C_KMS * (d2_centre / 5889.951 - 1) == pytest.approx(rv_kms, abs=0.2)
    assert C_KMS * (d1_centre / 5895.924 - 1) == pytest.approx(rv_kms, abs=0.2)


@pytest.mark.parametrize("ebv_mag", [0.03, 0.05, 0.1, 0.2, 0.3, 0.5])
def test_nad_doublet_ratio_is_physical_and_near_poznanski_per_line_relations(ebv_mag):
    wave_air_aa = log_lambda_grid(5850.0, 5935.0, step_kms=0.15)
    tau = interstellar_optical_depth(wave_air_aa, ebv_mag)
    ew_d2, ew_d1 = _nad_ews_aa(wave_air_aa, tau)
    ratio = ew_d2 / ew_d1
    # eqs. 7 and 8: log10 E(B-V) = 2.16 EW(D2) - 1.91 and 2.47 EW(D1) - 1.76
    expected = ((np.log10(ebv_mag) + 1.91) / 2.16) / ((np.log10(ebv_mag) + 1.76) / 2.47)
    assert 1.0 < ratio < 2.0
    assert ratio == pytest.approx(expected, rel=0.15)


def test_no_nad_below_the_relation_threshold():
    wave_air_aa = log_lambda_grid(5850.0, 5935.0, step_kms=0.15)
    assert nad_column_density(0.01) is None
    np.testing.assert_array_equal(interstellar_optical_depth(wave_air_aa, 0.01), 0.0)


def test_caii_k_weak_line_limit_matches_textbook_formula():
    # Optically thin: W = (pi e^2 / m_e c^2) N f lambda^2 = 8.853e-21 N f lambda[A]^2 A (N in cm^-2).
    logn_cm2 = 10.0
    wave_air_aa = log_lambda_grid(3920.0, 3950.0, step_kms=0.15)
    tau = interstellar_optical_depth(wave_air_aa, 0.0, logn_caii_cm2=logn_cm2)
    ew = _observed_ew_aa(wave_air_aa, tau, CA_K.wavelength_air_aa - 15, CA_K.wavelength_air_aa + 15)
    thin = 8.853e-21 * 10**logn_cm2 * CA_K.oscillator_strength * CA_K.wavelength_vac_aa**2
    assert ew == pytest.approx(thin, rel=1e-2)


def test_bad_line_parameters_raise():
    wave = np.array([5890.0])
    with pytest.raises(ParameterError, match="ism_b_kms"):
        interstellar_optical_depth(wave, 0.1, ism_b_kms=0.0)
    with pytest.raises(ParameterError, match="logn_caii_cm2"):
        interstellar_optical_depth(wave, 0.1, logn_caii_cm2=25.0)
    with pytest.raises(ParameterError, match="ebv_mag"):
        interstellar_optical_depth(wave, -0.1)
