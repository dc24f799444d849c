"""Tellurics over a series (``simharps.fidelity.tellurics``): planted shifts, depth ratios and BERV trends are
recovered on synthetic series whose stars also differ from their twins (the part the median must remove)."""

import numpy as np
import pytest

from simharps.constants import C_KMS
from simharps.fidelity.tellurics import band_statistics, telluric_series

WAVE = np.arange(6860.0, 6915.0, 0.01)
STELLAR_LINES = [(6863.5, 0.5), (6871.2, 0.3), (6880.9, 0.6), (6894.4, 0.4), (6906.0, 0.5), (6911.3, 0.35)]
TELLURIC_LINES = [(6867.3 + 0.9 * k, 0.4 + 0.5 * ((k * 7) % 5) / 4) for k in range(40)]
SNR = 300.0


def _gaussians(wave, lines, sigma_aa):
    return sum(depth * np.exp(-0.5 * ((wave - centre) / sigma_aa) ** 2) for centre, depth in lines)


def _series(berv, *, dv_kms=0.0, k=1.0, star_depth_scale=1.0, seed=0):
    """Noisy 'real' spectra (tellurics moved by dv, optical depth x k, star lines scaled), noiseless twins, a
    twin noise draw, the twin telluric transmission and errors."""
    rng = np.random.default_rng(seed)
    n = berv.size
    star_twin = 1.0 - _gaussians(WAVE, STELLAR_LINES, 0.05)
    star_real = 1.0 - star_depth_scale * _gaussians(WAVE, STELLAR_LINES, 0.05)
    continuum = 1e4 * (1.0 + 0.1 * (WAVE - WAVE[0]) / np.ptp(WAVE))
    dv = np.broadcast_to(np.asarray(dv_kms, float), (n,))
    real, twin, telluric = (np.empty((n, WAVE.size)) for _ in range(3))
    for i in range(n):
        tau = _gaussians(WAVE / (1.0 + berv[i] / C_KMS), TELLURIC_LINES, 0.04)
        tau_real = _gaussians(WAVE / (1.0 + (berv[i] + dv[i]) / C_KMS), TELLURIC_LINES, 0.04)
        telluric[i] = np.exp(-tau)
        twin[i] = continuum * star_twin * telluric[i]
        real[i] = continuum * star_real * np.exp(-k * tau_real)
    error = np.sqrt(real) * np.sqrt(np.mean(continuum) / SNR**2)
    twin_error = np.sqrt(twin) * np.sqrt(np.mean(continuum) / SNR**2)
    noisy_real = real + rng.standard_normal(real.shape) * error
    twin_draw = twin + rng.standard_normal(twin.shape) * twin_error
    return noisy_real, error, twin_draw, twin_error, twin, telluric


BERV = np.linspace(-10.0, 12.0, 24)


def test_planted_shift_and_depth_are_recovered_despite_a_stellar_mismatch():
    real, error, _, _, twin, telluric = _series(BERV, dv_kms=0.05, k=1.1, star_depth_scale=1.15)
    stats = band_statistics(WAVE, real, error, twin, telluric)
    dv, k = np.array(stats["dv_kms"]), np.array(stats["k"])
    assert np.median(dv) == pytest.approx(0.05, abs=0.01)
    assert np.median(k) == pytest.approx(1.1, abs=0.03)
    assert np.median(np.array(stats["rms_telluric"]) / np.array(stats["rms_clean"])) > 2.0


def test_null_series_gives_noise_only_values():
    real, error, _, _, twin, telluric = _series(BERV, star_depth_scale=1.15, seed=3)
    stats = band_statistics(WAVE, real, error, twin, telluric)
    dv, dv_err = np.array(stats["dv_kms"]), np.array(stats["dv_err_kms"])
    assert abs(np.mean(dv)) < 4 * np.std(dv) / np.sqrt(dv.size) + 1e-3
    assert np.median(stats["k"]) == pytest.approx(1.0, abs=0.01)
    ratio = np.array(stats["rms_telluric"]) / np.array(stats["rms_clean"])
    assert 0.85 < np.median(ratio) < 1.15
    assert np.std(dv) == pytest.approx(np.median(dv_err), rel=0.5)


def test_berv_trend_and_control():
    """A shift growing with BERV (a wrong frame would give slope -1 or +1) is measured; the twin's own noise draw
    serves as a control with no shift, no trend and an rms ratio of ~1."""
    real, error, draw, draw_error, twin, telluric = _series(BERV, dv_kms=0.01 * BERV, seed=5)
    out = telluric_series(WAVE, real, error, draw, draw_error, twin, telluric, BERV, np.full(BERV.size, 4.0),
                          bands={"o2_b": (6865.0, 6913.0), "outside": (5000.0, 5100.0)})
    assert set(out["bands"]) == {"o2_b"}
    line = out["bands"]["o2_b"]["line_positions"]
    assert line["slope_per_kms"] == pytest.approx(0.01, abs=0.002)
    assert abs(line["offset_kms"]) < 0.01
    assert line["berv_range_kms"] == pytest.approx([-10.0, 12.0])
    control = out["bands"]["o2_b"]["control_twin_noise"]
    assert abs(control["line_positions"]["slope_per_kms"]) < 0.002
    assert 0.85 < control["rms_ratio"] < 1.15
    assert out["pwv"]["median_mm"] == 4.0 and out["pwv"]["n"] == BERV.size


def test_series_at_one_berv_has_no_clean_stellar_estimate():
    """All exposures at one BERV: no spectrum sees the telluric bins clean, so the coverage is 0 and the numbers
    come from the plain median (which also removes the shared telluric mismatch: the planted shift is not seen)."""
    berv = np.full(12, 3.0)
    real, error, _, _, twin, telluric = _series(berv, dv_kms=0.05, seed=7)
    stats = band_statistics(WAVE, real, error, twin, telluric)
    assert stats["telluric_coverage"] == 0.0
    assert abs(np.median(stats["dv_kms"])) < 0.01
    spread = band_statistics(WAVE, *_series(BERV, dv_kms=0.05, seed=7)[:2], *_series(BERV)[4:])
    assert spread["telluric_coverage"] > 0.5
