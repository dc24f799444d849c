"""Rotation and macroturbulence kernels against their analytic moments; batch and flux conservation."""

import numpy as np
import pytest

from simharps.broadening import (
    broaden,
    broadening_kernel,
    macroturbulence_kernel,
    macroturbulence_transfer,
    rotation_kernel,
    rotation_transfer,
    shifted_broadening_kernel,
)
from simharps.errors import ParameterError

STEP = 0.05


def second_moment(kernel, step_kms):
    v = (np.arange(len(kernel)) - len(kernel) // 2) * step_kms
    return np.sum(kernel * v**2), np.sum(kernel * v)


@pytest.mark.parametrize("eps, expected_over_vsini2", [(0.0, 1 / 4), (1.0, 1 / 5)])
def test_rotation_kernel_variance_matches_gray(eps, expected_over_vsini2):
    # Gray's kernel: sqrt(1 - x^2) (eps = 0) has variance vsini^2 / 4, (1 - x^2) (eps = 1) vsini^2 / 5
    vsini = 20.0
    kernel = rotation_kernel(STEP, vsini, eps)
    variance, mean = second_moment(kernel, STEP)
    assert kernel.sum() == pytest.approx(1.0)
    assert abs(mean) < 1e-12
    assert variance == pytest.approx(expected_over_vsini2 * vsini**2, rel=2e-3)
    assert len(kernel) // 2 * STEP == pytest.approx(vsini, abs=STEP)


def test_radial_tangential_variance_is_disk_average():
    # Disk average (weight 2 mu dmu) of Gaussians of width zeta*mu (radial) and zeta*sqrt(1-mu^2)
    # (tangential), half each: variance zeta^2/2 * <mu^2> = zeta^2 / 4.
    zeta = 5.0
    variance, _ = second_moment(macroturbulence_kernel(STEP, zeta), STEP)
    assert variance == pytest.approx(zeta**2 / 4, rel=1e-3)
    gaussian_variance, _ = second_moment(macroturbulence_kernel(STEP, zeta, "gaussian"), STEP)
    assert gaussian_variance == pytest.approx(zeta**2 / 2, rel=1e-3)


def test_broaden_conserves_equivalent_width_and_batches():
    n = 4000
    v = (np.arange(n) - n / 2) * 0.15
    flux = 1 - 0.8 * np.exp(-0.5 * (v / 2.0) ** 2)
    single = broaden(flux, 0.15, vsini_kms=10.0, vmac_kms=3.0)
    assert np.sum(1 - single) == pytest.approx(np.sum(1 - flux), rel=1e-6)
    assert single.min() > flux.min() + 0.2
    batch = broaden(np.stack([flux, flux]), 0.15, vsini_kms=np.array([10.0, 0.0]), vmac_kms=np.array([3.0, 0.0]))
    np.testing.assert_allclose(batch[0], single, atol=1e-12)
    np.testing.assert_allclose(batch[1], flux, atol=1e-12)


def test_broadening_kernel_width_and_errors():
    # variances add under convolution: rotation (eps = 0.6, moments of Gray's two terms) + zeta^2 / 4
    eps, vsini, zeta = 0.6, 5.0, 2.0
    a, b = 2 * (1 - eps), np.pi * eps / 2
    rotation_variance = vsini**2 * (a * np.pi / 8 + b * 4 / 15) / (a * np.pi / 2 + b * 4 / 3)
    variance, _ = second_moment(broadening_kernel(0.15, vsini_kms=vsini, vmac_kms=zeta), 0.15)
    assert variance == pytest.approx(rotation_variance + zeta**2 / 4, rel=5e-3)
    with pytest.raises(ParameterError, match="vsini_kms"):
        rotation_kernel(0.15, -1.0)
    with pytest.raises(ParameterError, match="profile"):
        macroturbulence_kernel(0.15, 2.0, "lorentzian")


@pytest.mark.parametrize("vsini, vmac, profile", [(0.0, 3.0, "radial-tangential"), (12.0, 0.0, "radial-tangential"),
                                                   (6.0, 2.5, "gaussian")])
def test_analytic_transforms_match_the_real_space_kernels(vsini, vmac, profile):
    """Gray's rotation profile and the radial-tangential macroturbulence, Fourier-transformed numerically from their
    real-space formulas on a fine grid, equal the closed forms used by shifted_broadening_kernel."""
    step = 0.002
    kernel = broadening_kernel(step, vsini, vmac, macroturbulence=profile)
    lag = (np.arange(kernel.size) - kernel.size // 2) * step
    frequency = np.linspace(0.0, 2.0, 41)
    numerical = (kernel[None, :] * np.cos(2 * np.pi * frequency[:, None] * lag[None, :])).sum(axis=1)
    numerical /= np.sinc(frequency * step) ** (int(vsini > 0) + int(vmac > 0))  # the kernels' sub-pixel averaging
    analytic = rotation_transfer(frequency, vsini) * macroturbulence_transfer(frequency, vmac, profile)
    np.testing.assert_allclose(analytic, numerical, atol=2e-5)


def _gaussian_lines(velocity_kms, centres, depths, sigma_kms=0.97):
    profile = np.exp(-0.5 * ((velocity_kms[:, None] - centres[None, :]) / sigma_kms) ** 2)
    return 1.0 - profile @ depths


@pytest.mark.parametrize("vsini, vmac, shift", [(0.0, 0.0, 0.5), (0.05, 0.2, 0.1), (0.0, 0.5, 0.3),
                                                (2.0, 3.5, 0.77), (30.0, 4.0, 0.5)])
def test_shifted_kernel_broadens_and_shifts_band_limited_spectra_exactly(vsini, vmac, shift):
    """Lines as narrow as the narrowest unbroadened stellar lines (sigma 0.97 km/s) on the 0.15 km/s lattice:
    convolving with the shifted kernel equals the broadened spectrum evaluated shift steps earlier, computed by
    quadrature on a 0.002 km/s grid, to 1e-4 of the line depth; a pure sub-step shift to 2e-6."""
    step = 0.15
    rng = np.random.default_rng(1)
    centres, depths = rng.uniform(100.0, 400.0, 40), rng.uniform(0.1, 0.9, 40)
    weights, half = shifted_broadening_kernel(step, vsini, vmac, shift)
    assert weights.size == 2 * half + 1 and weights.sum() == pytest.approx(1.0, abs=1e-5)
    velocity = np.arange(3500) * step
    out = np.convolve(_gaussian_lines(velocity, centres, depths), weights, mode="same")
    fine_step = 0.002
    fine = broadening_kernel(fine_step, vsini, vmac)
    lag = (np.arange(fine.size) - fine.size // 2) * fine_step
    index = np.arange(800, 2800, 37)
    exact = np.array([np.sum(_gaussian_lines(velocity[i] - shift * step - lag, centres, depths) * fine)
                      for i in index])
    assert np.abs(out[index] - exact).max() < (2e-6 if vsini == vmac == 0 else 1e-4)
