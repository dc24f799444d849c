"""Telescope stage: aluminium reflectance, fused silica, and the overall-efficiency sanity range."""

import numpy as np
import pytest

from simharps.errors import ParameterError
from simharps.fibre import injection_efficiency
from simharps.telescope import (
    ADC_TRANSMISSION,
    RakicAluminium,
    fibre_link_transmission,
    fused_silica_index,
    mirror_reflectance,
    telescope_components,
    telescope_transmission,
)


def test_aluminium_reflectance_is_about_092_at_5500():
    reflectance = RakicAluminium().normal_incidence_reflectance(np.array([5500.0]))[0]
    assert reflectance == pytest.approx(0.92, abs=0.01)


def test_aluminium_optical_constants_near_published_values_at_5500():
    # Evaporated Al near 550 nm: n ~ 0.96, k ~ 6.7 (Rakic 1995; Palik 1985 give n 0.96, k 6.69).
    index = RakicAluminium().refractive_index(np.array([5500.0]))[0]
    assert index.real == pytest.approx(0.96, abs=0.05)
    assert index.imag == pytest.approx(6.69, rel=0.05)


def test_aluminium_dip_lies_near_8250_outside_harps_range():
    harps = np.linspace(3700.0, 7000.0, 400)
    reflectance = RakicAluminium().normal_incidence_reflectance(harps)
    assert np.all(np.diff(reflectance) < 0)  # slow monotonic decline across the HARPS range
    assert reflectance.max() - reflectance.min() < 0.03
    red = np.linspace(6000.0, 10000.0, 801)
    red_reflectance = RakicAluminium().normal_incidence_reflectance(red)
    dip = red[np.argmin(red_reflectance)]
    assert 8000.0 < dip < 8600.0
    assert 0.85 < red_reflectance.min() < 0.88
    assert red_reflectance.min() < reflectance.min() - 0.03


def test_two_mirrors_and_dust_loss():
    wave = np.array([4000.0, 6000.0])
    single = RakicAluminium().normal_incidence_reflectance(wave)
    np.testing.assert_allclose(mirror_reflectance(wave), single**2)
    np.testing.assert_allclose(mirror_reflectance(wave, dust_loss_per_mirror=0.05), (0.95 * single) ** 2)


def test_fused_silica_index_matches_malitson_nd():
    # Malitson 1965: n_d = 1.45846 at the He d line (5875.6 A in air).
    assert fused_silica_index(np.array([5875.6]))[0] == pytest.approx(1.45846, abs=1e-4)


def test_fibre_link_loses_blue_light_as_lambda_to_minus_four():
    wave = np.array([3800.0, 5500.0, 6900.0])
    link = fibre_link_transmission(wave, fibre_length_m=40.0)
    bare = fibre_link_transmission(wave, fibre_length_m=0.0)  # Fresnel end losses only, ~3.5 % per face
    np.testing.assert_allclose(bare, 0.93, atol=0.005)
    loss_db = -10 * np.log10(link / bare)
    np.testing.assert_allclose(loss_db * (wave / 1e4) ** 4, 0.8 * 0.040, rtol=1e-10)
    assert np.all(np.diff(link) > 0)


def test_components_multiply_to_total():
    wave = np.linspace(3781.0, 6913.0, 100)
    parts = telescope_components(wave, dust_loss_per_mirror=0.02)
    assert set(parts) == {"mirrors", "adc", "fibre_link"}
    np.testing.assert_allclose(parts["adc"], ADC_TRANSMISSION)
    np.testing.assert_allclose(telescope_transmission(wave, dust_loss_per_mirror=0.02),
                               parts["mirrors"] * parts["adc"] * parts["fibre_link"])


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="dust_loss_per_mirror"):
        telescope_transmission(np.array([5000.0]), dust_loss_per_mirror=1.0)
    with pytest.raises(ParameterError, match="fibre_length_m"):
        telescope_transmission(np.array([5000.0]), fibre_length_m=-1.0)


def test_overall_efficiency_at_550nm_in_published_range(shared_data):
    """Sanity range only: HARPS' total efficiency at 550 nm is ~6-7 % (Mayor et al. 2003, Messenger 114, 20).

    Chain at the reference conditions (1" seeing, airmass 1.2): La Silla extinction, telescope + ADC +
    fibre link, fibre injection, then the spectrograph optics from the HARPS user manual (echelle > 65 %,
    grism 73 %, camera > 85 %, three passes on the silver collimator at ~97 %) and a CCD QE of 0.8.
    """
    table = np.loadtxt(shared_data / "site" / "lasilla_extinction.dat")
    extinction_mag_per_airmass = np.interp(5500.0, table[:, 0], table[:, 1])
    atmosphere = 10 ** (-0.4 * extinction_mag_per_airmass * 1.2)
    wave = np.array([5500.0])
    telescope = telescope_transmission(wave)[0]
    injection = injection_efficiency(wave, seeing_arcsec=1.0, airmass=1.2)[0]
    spectrograph = 0.65 * 0.73 * 0.85 * 0.97**3
    total = atmosphere * telescope * injection * spectrograph * 0.8
    assert 0.04 < total < 0.10
