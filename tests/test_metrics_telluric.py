"""Planted reconstructions for the telluric-vs-stellar metric (analysis.metrics.telluric)."""

import numpy as np
import pytest

from analysis.metrics import estimate_expected, pixel_classes, telluric_rejection
from analysis.metrics.telluric import CONTINUUM, NONE, STELLAR, TELLURIC, pseudo_continuum

N_PIX = 3000


def _lines(rng, n_lines, depth_max, width_px, centre_shift=0.0, n_pix=N_PIX):
    x = np.arange(n_pix, dtype=float)
    profile = np.ones(n_pix)
    centres = rng.uniform(50, n_pix - 50, n_lines)
    depths = rng.uniform(0.05, depth_max, n_lines)
    for c, d in zip(centres, depths):
        profile *= 1 - d * np.exp(-0.5 * ((x - c - centre_shift) / width_px) ** 2)
    return profile


@pytest.fixture(scope="module")
def spectra():
    """8 spectra: response R, stellar S, telluric T; data = a (R S T) + b + noise in preprocessed units."""
    rng = np.random.default_rng(0)
    n = 8
    x = np.linspace(0, 1, N_PIX)
    S = np.tile(_lines(rng, 60, 0.7, 2.0), (n, 1))
    T = np.stack([_lines(np.random.default_rng(1), 30, 0.6, 1.5, centre_shift=7 * i) for i in range(n)])
    R = 1000 * (1 + 0.3 * x)[None, :] * rng.uniform(0.5, 2, (n, 1))
    C = R * S
    sigma = np.sqrt(C * T) + 5.0
    scale, offset = rng.uniform(1e-3, 2e-3, (n, 1)), rng.uniform(-1, 1, (n, 1))   # median scaling, DC level
    noise = rng.normal(size=C.shape) * sigma
    data = scale * (C * T + noise) + offset
    return dict(S=S, T=T, R=R, C=C, sigma=scale * sigma, scale=scale, offset=offset, data=data)


def _reconstruct(s, telluric_fraction, stellar_fraction):
    """Noise-free model with the given fractions of telluric and stellar absorption removed."""
    removed = telluric_fraction * s["C"] * (1 - s["T"]) + stellar_fraction * s["R"] * s["T"] * (1 - s["S"])
    return s["scale"] * (s["C"] * s["T"] + removed) + s["offset"]


@pytest.mark.parametrize("telluric_fraction, stellar_fraction", [(0.0, 0.0), (0.5, 1.0), (1.0, 0.5), (1.0, 0.0)])
def test_rejection_slopes_recovered(spectra, telluric_fraction, stellar_fraction):
    s = spectra
    out = telluric_rejection(s["data"], _reconstruct(s, telluric_fraction, stellar_fraction), s["sigma"], s["T"],
                             stellar=s["S"], expected=s["C"] * 7.0, n_subsamples=10)   # any scale of C works
    assert out["telluric.rejection"]["value"] == pytest.approx(telluric_fraction, abs=0.01)
    assert out["stellar.rejection"]["value"] == pytest.approx(stellar_fraction, abs=0.01)
    low, high = out["telluric.rejection"]["ci_low"], out["telluric.rejection"]["ci_high"]
    assert low <= out["telluric.rejection"]["value"] <= high
    # the continuum is reconstructed noise-free in every case: residuals are the noise, RMS ~ 1
    assert out["continuum.residual_rms_noise"]["value"] == pytest.approx(1.0, abs=0.05)
    if telluric_fraction == 0:
        assert out["telluric.residual_rms_noise"]["value"] == pytest.approx(1.0, abs=0.05)
    else:
        assert out["telluric.residual_rms_noise"]["value"] > 3


def test_classes_and_precedence():
    T = np.array([0.5, 0.97, 0.985, 0.999, 0.999, 0.999, 0.999, np.nan])
    S = np.array([0.5, 1.00, 0.5, 0.90, 0.995, 0.97, 1.0, 0.5])
    assert pixel_classes(T, S).tolist() == [TELLURIC, TELLURIC, NONE, STELLAR, CONTINUUM, NONE, CONTINUUM, NONE]
    assert pixel_classes(T).tolist() == [TELLURIC, TELLURIC] + [NONE] * 6


def test_missing_components_are_said(spectra):
    s = spectra
    out = telluric_rejection(s["data"], s["data"], s["sigma"], s["T"], n_subsamples=0)
    assert out["telluric.rejection"]["value"] != out["telluric.rejection"]["value"]       # NaN
    assert "needs expected" in out["telluric.rejection"]["params"]["skipped"]
    assert "needs stellar" in out["continuum.residual_rms_noise"]["params"]["skipped"]
    assert out["telluric.residual_rms_noise"]["value"] == 0.0


def test_real_series_estimate():
    """A star observed at 12 BERVs: tellurics move, the median of flux / T recovers the stellar spectrum."""
    rng = np.random.default_rng(2)
    n = 12
    S = _lines(rng, 40, 0.6, 2.0)
    berv = np.linspace(-15, 15, n)
    T = np.stack([_lines(np.random.default_rng(3), 25, 0.5, 1.5, centre_shift=2 * b) for b in berv])
    flux = 500 * S[None, :] * T * rng.uniform(0.5, 2, (n, 1))
    flux = flux + rng.normal(size=flux.shape) * np.sqrt(flux)
    targets = np.array(["A"] * n)
    C, S_hat, qualifies, note = estimate_expected(flux, T, targets, berv, block_px=500)
    assert qualifies.all() and "12 of 12" in note
    clean = (T.min(axis=0) > 0.995) & (S > 0.95)
    assert np.median(np.abs(S_hat[0][clean] - S[clean])) < 0.03
    assert not estimate_expected(flux[:5], T[:5], targets[:5], berv[:5])[2].any()       # too few spectra
    assert not estimate_expected(flux, T, targets, berv / 10)[2].any()                   # BERV span 3 km/s


def test_pseudo_continuum_is_an_upper_envelope():
    x = np.linspace(0, 1, 4000)
    continuum = 1 + 0.5 * x
    spectrum = continuum * _lines(np.random.default_rng(4), 20, 0.5, 3.0, n_pix=4000)
    envelope = pseudo_continuum(spectrum, 400)
    assert np.median(np.abs(envelope / continuum - 1)) < 0.02
