import numpy as np
import pytest

from simharps.errors import ParameterError
from simharps.photometry import photon_flux, scale_to_vmag, synthetic_vmag

H_CGS, C_CGS, K_CGS = 6.62607015e-27, 2.99792458e10, 1.380649e-16
AU_CM, R_SUN_CM = 1.495978707e13, 6.957e10


def planck_flam(wavelength_aa, temperature_k):
    wavelength_cm = wavelength_aa * 1e-8
    bnu = 2 * H_CGS * C_CGS**2 / wavelength_cm**5 / np.expm1(H_CGS * C_CGS / (wavelength_cm * K_CGS * temperature_k))
    return np.pi * bnu * 1e-8


def test_sun_as_blackbody_has_published_v_magnitude():
    # A 5772 K blackbody at 1 AU from a solar radius (solar constant 1361 W/m^2) against V_sun = -26.76
    # (Willmer 2018, ApJS 236, 47); line blanketing of the real Sun is worth ~0.1 mag in V.
    wavelength = np.linspace(4500.0, 7200.0, 5000)
    flam = planck_flam(wavelength, 5772.0) * (R_SUN_CM / AU_CM) ** 2
    assert synthetic_vmag(wavelength, flam) == pytest.approx(-26.76, abs=0.15)


def test_vega_flux_at_5556_gives_v_near_zero():
    # Vega: f(5556 A) = 3.44e-9 erg/s/cm^2/A (Hayes 1985), V = 0.03; a flat spectrum at that level is within 0.05 mag.
    wavelength = np.linspace(4600.0, 7100.0, 2000)
    assert synthetic_vmag(wavelength, np.full_like(wavelength, 3.44e-9)) == pytest.approx(0.03, abs=0.05)


def test_scaling_to_vmag_is_exact_and_batched():
    wavelength = np.linspace(4600.0, 7100.0, 2000)
    shapes = np.vstack([planck_flam(wavelength, 3500.0), planck_flam(wavelength, 6500.0)])
    scaled = scale_to_vmag(wavelength, shapes, vmag=np.array([6.0, 10.5]))
    np.testing.assert_allclose(synthetic_vmag(wavelength, scaled), [6.0, 10.5], atol=1e-10)


def test_photon_flux_of_one_erg_at_5500():
    assert photon_flux(5500.0, 1.0) == pytest.approx(5500e-8 / (H_CGS * C_CGS))


def test_v_needs_the_whole_passband():
    with pytest.raises(ParameterError, match="4800-6900"):
        synthetic_vmag(np.linspace(5000.0, 5500.0, 10), np.ones(10))
