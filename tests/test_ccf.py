"""CCF: exact recovery of injected shifts on synthetic line spectra, batches, the real HARPS mask reader."""

import numpy as np
import pytest

from simharps.ccf import CCFMask, cross_correlate, fit_ccf, measure_rv, read_ccf_mask
from simharps.constants import C_KMS
from simharps.errors import HarpsFormatError
from simharps.grids import log_lambda_grid


def gaussian_line_spectrum(wave, centres, depths, rv_kms, sigma_kms=3.0):
    beta = rv_kms / C_KMS
    shifted = centres * np.sqrt((1 + beta) / (1 - beta))
    flux = np.ones_like(wave)
    for centre, depth in zip(shifted, depths):
        flux -= depth * np.exp(-0.5 * ((wave / centre - 1) * C_KMS / sigma_kms) ** 2)
    return flux


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    centres = np.sort(rng.uniform(5020, 5480, 150))
    depths = rng.uniform(0.1, 0.7, 150)
    wave = log_lambda_grid(5000.0, 5500.0, 0.5)
    return wave, centres, depths


@pytest.mark.parametrize("rv_kms", [-73.2, 0.0, 12.345])
def test_recovers_injected_rv_and_width(toy, rv_kms):
    wave, centres, depths = toy
    flux = gaussian_line_spectrum(wave, centres, depths, rv_kms)
    result = measure_rv(wave, flux, CCFMask(centres, depths), rv_guess_kms=rv_kms)
    assert result.rv_kms == pytest.approx(rv_kms, abs=2e-3)
    # CCF width: line sigma (3 km/s) in quadrature with the 0.82 km/s box and 0.5 km/s pixels (var = w^2/12)
    expected_fwhm = 2.3548 * np.sqrt(3.0**2 + (0.82**2 + 0.5**2) / 12)
    assert result.fwhm_kms == pytest.approx(expected_fwhm, rel=0.02)
    assert 0.05 < result.contrast < 0.7


def test_batch_equals_single(toy):
    wave, centres, depths = toy
    mask = CCFMask(centres, depths)
    velocities = np.arange(-20, 20.1, 0.25)
    fluxes = np.stack([gaussian_line_spectrum(wave, centres, depths, rv) for rv in (-3.0, 4.0)])
    batch, n_lines = cross_correlate(wave, fluxes, mask, velocities)
    assert batch.shape == (2, len(velocities)) and n_lines == len(centres)
    for row, rv in zip(batch, (-3.0, 4.0)):
        single, _ = cross_correlate(wave, gaussian_line_spectrum(wave, centres, depths, rv), mask, velocities)
        np.testing.assert_allclose(row, single, rtol=1e-12)
        assert fit_ccf(velocities, row)[0] == pytest.approx(rv, abs=2e-3)


def test_non_finite_pixels_drop_lines(toy):
    wave, centres, depths = toy
    flux = gaussian_line_spectrum(wave, centres, depths, 0.0)
    flux[(wave > 5200) & (wave < 5300)] = np.nan
    result = measure_rv(wave, flux, CCFMask(centres, depths))
    assert result.n_lines < len(centres)
    assert result.rv_kms == pytest.approx(0.0, abs=2e-3)


def test_reads_harps_mask(shared_data, tmp_path):
    mask = read_ccf_mask(shared_data / "ccf_masks" / "HARPS_G2.fits")
    assert len(mask.wavelength_air_aa) == 3297
    assert np.all(np.diff(mask.wavelength_air_aa) > 0)
    assert 3780 < mask.wavelength_air_aa[0] < mask.wavelength_air_aa[-1] < 7900
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(HarpsFormatError, match="bad.fits"):
        read_ccf_mask(bad)
