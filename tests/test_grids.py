import numpy as np
import pytest

from simharps.constants import C_KMS
from simharps.grids import (
    air_to_vacuum,
    log_lambda_grid,
    product_grid,
    product_grid_index,
    vacuum_to_air,
)


def test_vacuum_to_air_matches_published_lines():
    # Morton (2000) / NIST: Na I D2 5891.583 A vac -> 5889.951 A air; H-alpha 6564.61 vac -> 6562.80 air
    np.testing.assert_allclose(vacuum_to_air([5891.583, 6564.614]), [5889.951, 6562.801], atol=2e-3)


def test_air_vacuum_round_trip():
    wave_air = np.linspace(3700.0, 7000.0, 1001)
    np.testing.assert_allclose(vacuum_to_air(air_to_vacuum(wave_air)), wave_air, atol=1e-9, rtol=0)


def test_log_lambda_grid_is_uniform_in_velocity():
    wave = log_lambda_grid(5000.0, 5100.0, step_kms=0.15)
    dv = np.diff(wave) / wave[:-1] * C_KMS
    np.testing.assert_allclose(np.log(wave[1:] / wave[:-1]) * C_KMS, 0.15, rtol=1e-9)
    assert dv.min() > 0.149 and wave[-1] >= 5100.0 and wave[0] == 5000.0


def test_log_lambda_grid_rejects_bad_bounds():
    with pytest.raises(ValueError):
        log_lambda_grid(5100.0, 5000.0)


def test_product_grid_is_integer_lattice():
    wave = product_grid()
    assert wave.size == 313_201
    assert wave[0] == pytest.approx(3781.00) and wave[-1] == pytest.approx(6913.00)
    np.testing.assert_array_equal(product_grid_index(wave), np.arange(378100, 691301))
