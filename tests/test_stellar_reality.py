"""Built-in synthesis against reality: RV recovery with the HARPS G2 mask, and the real HD 41248 spectrum.

Numbers measured when this was written (printed with ``pytest -s``):
* G2 synthesis at RV -100..+100 km/s, HARPS G2 mask: recovered - injected = -0.279 km/s (zero-point:
  the mask positions are not VALD laboratory positions, and the synthetic line blends are asymmetric),
  constant to ~1 m/s.
* HD 41248 (ESPRESSO, degraded to R = 115,000), 5000-5500 A, continuum-normalised: Pearson r = 0.970
  for the built-in synthesis (0.967 before the astrophysical log gf corrections, which were fitted on this star;
  0.966 before the weak-line forest; 0.961 with maximum core depth 1) vs 0.83 for a plain sum of Gaussian lines
  from the G2 table.
* Core flux of the strongest lines in that band (Mg b, Cr I, Fe I): model - real = +0.002 on average
  (rms 0.023; -0.005 and 0.018 before the forest); with maximum core depth 1 it was -0.07 (cores at ~zero flux).
* Weak-line forest and molecular bands (issue #13), per 100 A windows, against HD 41248, alpha Cen B, Gl 581
  and the held-out Gl 273: see the last three tests (numbers in their comments) and
  ``benchmarks/bench_stellar_fidelity.py`` (all windows, line statistics).
"""

import numpy as np
import pytest
from scipy.ndimage import percentile_filter, uniform_filter1d

from simharps.broadening import broaden
from simharps.ccf import measure_rv, read_ccf_mask
from simharps.constants import C_KMS
from simharps.lsf import convolve_gaussian_velocity, fwhm_kms_from_resolution
from simharps.stellar.linelist import load_line_table
from simharps.stellar.synthesis import default_vmac_kms, doppler_factor, synthesize

HD41248 = dict(teff_k=5713.0, logg_cgs=4.48, mh_dex=-0.37, vsini_kms=3.0)
ESPRESSO_R, HARPS_R = 140_000, 115_000


@pytest.fixture(scope="module")
def g2_mask(shared_data):
    return read_ccf_mask(shared_data / "ccf_masks" / "HARPS_G2.fits")


def test_rv_recovery_is_constant_to_1_ms(g2_mask):
    window = (4380.0, 6820.0)
    keep = (g2_mask.wavelength_air_aa > 4450) & (g2_mask.wavelength_air_aa < 6750)
    mask = type(g2_mask)(g2_mask.wavelength_air_aa[keep], g2_mask.weight[keep])
    offsets = []
    for rv in (-100.0, -50.0, 0.0, 50.0, 100.0):
        s = synthesize(5770, 4.44, 0.0, vsini_kms=2.0, rv_kms=rv, window=window)
        result = measure_rv(s.wavelength_air_aa, s.normalised, mask, rv_guess_kms=rv, step_kms=0.1)
        offsets.append(result.rv_kms - rv)
    offsets = np.array(offsets)
    print(f"\nG2 RV recovery: zero-point {offsets.mean() * 1e3:+.1f} m/s, spread (max-min) "
          f"{np.ptp(offsets) * 1e3:.4f} m/s, offsets {np.round(offsets * 1e3, 4)} m/s")
    assert np.ptp(offsets) < 0.001                                 # README: constant to < 1 m/s
    assert offsets.mean() == pytest.approx(-0.279, abs=0.1)        # mask vs VALD laboratory wavelengths


def continuum_normalise(wavelength_aa, flux, width_aa=10.0, percentile=95):
    """Upper-envelope continuum: running percentile over width_aa, then a running mean over the same width."""
    n = int(width_aa / np.median(np.diff(wavelength_aa))) | 1
    continuum = uniform_filter1d(percentile_filter(flux, percentile, size=n, mode="nearest"), n, mode="nearest")
    return flux / continuum


@pytest.fixture(scope="module")
def hd41248_full(harps_dir):
    """HD 41248 over 3800-6900 A, degraded to R = 115,000."""
    from astropy.io import fits

    with fits.open(harps_dir / "HD41248_1_1_S1D_A.fits") as hdul:
        data = hdul[1].data
        wavelength = np.asarray(data["wavelength_air"], dtype=float)
        flux = np.asarray(data["flux"], dtype=float)
    sel = (wavelength > 3800.0) & (wavelength < 6900.0) & np.isfinite(flux) & (flux > 0)
    wavelength, flux = wavelength[sel], flux[sel]
    step_kms = np.median(np.diff(np.log(wavelength))) * C_KMS
    kernel_kms = C_KMS * np.sqrt(1 / HARPS_R**2 - 1 / ESPRESSO_R**2)
    return wavelength, convolve_gaussian_velocity(flux, step_kms, kernel_kms)


@pytest.fixture(scope="module")
def hd41248(harps_dir):
    from astropy.io import fits

    with fits.open(harps_dir / "HD41248_1_1_S1D_A.fits") as hdul:
        data = hdul[1].data
        wavelength = np.asarray(data["wavelength_air"], dtype=float)
        flux = np.asarray(data["flux"], dtype=float)
    sel = (wavelength > 4900.0) & (wavelength < 5600.0)
    wavelength, flux = wavelength[sel], flux[sel]
    step_kms = np.median(np.diff(np.log(wavelength))) * C_KMS
    kernel_kms = C_KMS * np.sqrt(1 / HARPS_R**2 - 1 / ESPRESSO_R**2)
    return wavelength, convolve_gaussian_velocity(flux, step_kms, kernel_kms)


def gaussian_baseline(wavelength_air_aa, rv_kms, step_kms=0.15):
    """Plain sum of Gaussian lines (G2 VALD depths, 1.5 km/s Doppler sigma), broadened like the model."""
    table = load_line_table()
    g2 = list(table.spectral_types).index("G2")
    listed = table.depth[g2] > 0
    centres = table.wavelength_air_aa[listed] * doppler_factor(rv_kms)
    depths = table.depth[g2][listed]
    ln_grid = np.arange(np.log(wavelength_air_aa[0]) - 1e-3, np.log(wavelength_air_aa[-1]) + 1e-3, step_kms / C_KMS)
    absorption = np.zeros(len(ln_grid))
    near = (centres > np.exp(ln_grid[0])) & (centres < np.exp(ln_grid[-1]))
    for centre, depth in zip(centres[near], depths[near]):
        lo, hi = np.searchsorted(ln_grid, [np.log(centre) - 2e-5, np.log(centre) + 2e-5])
        absorption[lo:hi] += depth * np.exp(-0.5 * ((ln_grid[lo:hi] - np.log(centre)) * C_KMS / 1.5) ** 2)
    flux = broaden(np.clip(1 - absorption, 0, 1), step_kms, HD41248["vsini_kms"], default_vmac_kms(HD41248["teff_k"]))
    flux = convolve_gaussian_velocity(flux, step_kms, fwhm_kms_from_resolution(HARPS_R))
    return np.interp(wavelength_air_aa, np.exp(ln_grid), flux)


STRONG_LINES_AIR_AA = np.array([4957.597, 5167.322, 5172.684, 5183.604, 5206.038, 5208.419, 5227.189, 5269.537,
                                5328.039, 5371.490, 5397.128, 5405.775, 5429.697, 5434.524, 5528.405])
"""Fe I 4957.6, Mg b 5167/5172/5183, Cr I 5206/5208, Fe I 5227-5434, Mg I 5528 (air, A)."""


def core_flux(wavelength_aa, normalised, rv_kms):
    """Minimum normalised flux within 0.08 A of each of STRONG_LINES_AIR_AA, shifted by rv_kms."""
    centres = STRONG_LINES_AIR_AA * doppler_factor(rv_kms)
    near = np.abs(wavelength_aa[None, :] - centres[:, None]) < 0.08
    return np.where(near, normalised[None, :], np.inf).min(axis=1)


def test_hd41248_correlation(hd41248, g2_mask):
    wavelength, flux = hd41248
    measured = measure_rv(wavelength, flux, g2_mask, rv_guess_kms=3.5)
    assert measured.rv_kms == pytest.approx(3.5, abs=0.3)
    model = synthesize(**HD41248, rv_kms=measured.rv_kms, window=(wavelength[0], wavelength[-1]))
    model_flux = convolve_gaussian_velocity(model.flux, model.step_kms, fwhm_kms_from_resolution(HARPS_R))
    model_on_real = np.interp(wavelength, model.wavelength_air_aa, model_flux)
    baseline = gaussian_baseline(wavelength, measured.rv_kms)
    real_n = continuum_normalise(wavelength, flux)
    model_n = continuum_normalise(wavelength, model_on_real)
    baseline_n = continuum_normalise(wavelength, baseline)
    band = (wavelength > 5000.0) & (wavelength < 5500.0)
    r_model = np.corrcoef(real_n[band], model_n[band])[0, 1]
    r_baseline = np.corrcoef(real_n[band], baseline_n[band])[0, 1]
    core_real = core_flux(wavelength, real_n, measured.rv_kms)
    core_model = core_flux(wavelength, model_n, measured.rv_kms)
    core_error = core_model - core_real
    print(f"\nHD41248: CCF RV {measured.rv_kms:.3f} km/s (FWHM {measured.fwhm_kms:.2f}); Pearson r model "
          f"{r_model:.4f}, Gaussian baseline {r_baseline:.4f}; strong-line core flux model - real: mean "
          f"{core_error.mean():+.3f}, rms {np.sqrt(np.mean(core_error**2)):.3f}, real min {core_real.min():.3f}, "
          f"model min {core_model.min():.3f}")
    assert r_model > 0.93
    assert r_model > r_baseline + 0.03
    # strong-line cores keep a finite residual flux, as in the real star (none reaches zero)
    assert core_model.min() > 0.5 * core_real.min()
    assert abs(core_error.mean()) < 0.03 and np.sqrt(np.mean(core_error**2)) < 0.04


# --- weak-line forest and molecular bands against four real stars (issue #13) ------------------------------------
# Method as in benchmarks/bench_stellar_fidelity.py: one synthesis per star at rest over 3950-6830 A, HARPS LSF,
# aligned with the CCF RV of the real spectrum minus that of the model (same HARPS mask), both continuum-normalised
# by the same upper envelope. Literature parameters: shared/data/README.md; alpha Cen B from the Gaia benchmark
# stars (Heiter et al. 2015, Jofre et al. 2014). Gl 273 is held out of every fit and calibration choice.
ALF_CEN_B = dict(teff_k=5231.0, logg_cgs=4.53, mh_dex=0.22, vsini_kms=1.0)
GL581 = dict(teff_k=3480.0, logg_cgs=4.9, mh_dex=-0.1, vsini_kms=1.0)
GL273 = dict(teff_k=3380.0, logg_cgs=4.9, mh_dex=0.0, vsini_kms=1.0)
FOREST_WINDOWS = [(4000.0, 4100.0), (4400.0, 4500.0), (6100.0, 6200.0), (6600.0, 6700.0)]
BAND_WINDOWS = [(4900.0, 5000.0), (5800.0, 5900.0), (6400.0, 6500.0), (6600.0, 6700.0)]
TIO_HEADS_AA = (5847.0, 6651.0)
UNCOVERED_TIO_HEAD_AA = 5448.0
"""The TiO alpha (0,1) head under order 50: no TiO line data in 4950-5625 A; the band is the JOLA approximation of
``simharps.stellar.tio_bands`` (calibrated on published TiO5 relations, not on these stars)."""


def _read_s1d(path):
    from astropy.io import fits

    with fits.open(path) as hdul:
        header, flux = hdul[0].header, np.asarray(hdul[0].data, dtype=float)
    wavelength = header["CRVAL1"] + header["CDELT1"] * (np.arange(flux.size) + 1 - header.get("CRPIX1", 1.0))
    return wavelength, np.where(flux > 0, flux, np.nan), header


@pytest.fixture(scope="module")
def alf_cen_b(shared_data):
    """Average of the 6 highest-SN50 s1d spectra of the series, one per night (tellurics move between nights)."""
    from astropy.io import fits

    files = sorted((shared_data / "harps_series" / "alfcenb").glob("*_s1d_A.fits"))
    files = sorted(files, key=lambda f: -fits.getheader(f)["HIERARCH ESO DRS SPE EXT SN50"])
    chosen, nights = [], set()
    for path in files:
        if path.name[6:16] not in nights and len(chosen) < 6:
            chosen.append(path)
            nights.add(path.name[6:16])
    grid = np.arange(3900.0, 6850.0, 0.01)
    total = np.zeros(grid.size)
    for path in chosen:
        wavelength, flux, _ = _read_s1d(path)
        total += np.interp(grid, wavelength, flux / np.nanmedian(flux))
    return grid, total / len(chosen)


@pytest.fixture(scope="module")
def gl581(harps_dir):
    wavelength, flux, _ = _read_s1d(harps_dir / "HARPS.2010-09-18T23:42:36.178_s1d_A.fits")
    return wavelength, flux


@pytest.fixture(scope="module")
def gl273(harps_dir):
    """e2ds / blaze, BERV-shifted to the barycentric frame, orders merged with blaze^2 weights."""
    from simharps.io import read_e2ds

    e2ds = read_e2ds(harps_dir / "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits")
    grid = np.arange(3900.0, 6850.0, 0.01)
    num, den = np.zeros(grid.size), np.zeros(grid.size)
    for wave, flux, blaze in zip(e2ds.wavelength_air_aa, e2ds.flux, e2ds.blaze):
        wave = wave[100:-100] * (1 + e2ds.meta["berv_kms"] / C_KMS)
        inside = (grid > wave[0]) & (grid < wave[-1])
        weight = np.interp(grid[inside], wave, blaze[100:-100]) ** 2
        num[inside] += weight * np.interp(grid[inside], wave, flux[100:-100] / blaze[100:-100])
        den[inside] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return grid, np.where(den > 0, num / den, np.nan)


def compare_with_model(real, params, mask, rv_guess, windows, heads=()):
    """Per window r of the continuum-normalised spectra, resolved lines deeper than 1 % per 100 A (model, real), and
    the flux ratio across TiO band heads (model, real)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    wavelength, flux = real
    model = synthesize(**params, window=(3950.0, 6830.0))
    model_flux = convolve_gaussian_velocity(model.flux.astype(float), model.step_kms, fwhm_kms_from_resolution(HARPS_R))
    keep = (mask.wavelength_air_aa > 4400) & (mask.wavelength_air_aa < 6800)
    mask = type(mask)(mask.wavelength_air_aa[keep], mask.weight[keep])
    good = np.isfinite(flux)
    rv_real = measure_rv(wavelength[good], flux[good], mask, rv_guess_kms=rv_guess, step_kms=0.1).rv_kms
    rv_zero = measure_rv(model.wavelength_air_aa, model_flux, mask, rv_guess_kms=0.0, step_kms=0.1).rv_kms
    rv = rv_real - rv_zero
    on_real = np.interp(wavelength / doppler_factor(rv), model.wavelength_air_aa, model_flux)
    out = {"r": [], "lines": [], "heads": []}
    for lo, hi in windows:
        sel = (wavelength > lo - 6) & (wavelength < hi + 6)
        w, fr, fm = wavelength[sel], flux[sel], on_real[sel]
        ok = np.isfinite(fr) & (fr > 0)
        real_n = continuum_normalise(w, np.interp(w, w[ok], fr[ok]))
        model_n = continuum_normalise(w, fm)
        core = (w >= lo) & (w < hi) & ok
        out["r"].append(float(np.corrcoef(real_n[core], model_n[core])[0, 1]))
        sigma_px = np.median(w) / HARPS_R / 2.3548 / np.median(np.diff(w))
        counts = [find_peaks(1 - gaussian_filter1d(f[core], sigma_px), height=0.01, prominence=0.005)[0].size
                  for f in (model_n, real_n)]
        out["lines"].append(counts)
    rest = wavelength / doppler_factor(rv)
    for head in heads:
        ratios = []
        for w, f in ((model.wavelength_air_aa, model_flux), (rest, flux)):
            red, blue = (w > head + 1) & (w < head + 11), (w > head - 11) & (w < head - 1)
            ratios.append(float(np.nanmean(f[red]) / np.nanmean(f[blue])))
        out["heads"].append(ratios)
    return out


def test_weak_line_forest_against_hd41248_and_alpha_cen_b(hd41248_full, alf_cen_b, g2_mask, shared_data):
    k2_mask = read_ccf_mask(shared_data / "ccf_masks" / "HARPS_K2.fits")
    g = compare_with_model(hd41248_full, HD41248, g2_mask, 3.5, FOREST_WINDOWS)
    k = compare_with_model(alf_cen_b, ALF_CEN_B, k2_mask, -22.0, FOREST_WINDOWS + [(5000.0, 5100.0)])
    print(f"\nHD41248 r per window {np.round(g['r'], 4)}, mean {np.mean(g['r']):.4f}; alpha Cen B r "
          f"{np.round(k['r'][:4], 4)}, mean {np.mean(k['r'][:4]):.4f}; alpha Cen B lines > 1 % per 100 A "
          f"(model, real): {k['lines']}")
    # measured (synthesis before this work -> now): HD41248 mean r 0.9292 -> 0.9417; alpha Cen B 0.9324 -> 0.9412;
    # alpha Cen B 5000-5100 A resolved lines deeper than 1 %: 183 -> 272 (real 362). Bounds: half the improvement.
    # Astrophysical log gf corrections (simharps/data/astrophysical_gf.md, fitted on HD 41248 only): HD41248 mean r
    # 0.9417 -> 0.9571 (calibration star, not a validation); alpha Cen B (held out) 0.9412 -> 0.9455; 5000-5100 A
    # lines 272 -> 273. Bounds raised to half of that improvement.
    assert np.mean(g["r"]) > 0.949
    assert np.mean(k["r"][:4]) > 0.943
    assert k["lines"][4][0] > 227


def test_m_dwarf_molecular_bands_against_gl581(gl581, shared_data):
    mask = read_ccf_mask(shared_data / "ccf_masks" / "HARPS_M2.fits")
    out = compare_with_model(gl581, GL581, mask, -9.2, BAND_WINDOWS, (*TIO_HEADS_AA, UNCOVERED_TIO_HEAD_AA))
    print(f"\nGl581 r per window {np.round(out['r'], 4)}, mean {np.mean(out['r']):.4f}; TiO head flux ratios "
          f"(model, real) {np.round(out['heads'], 3).tolist()}")
    # measured (before this work -> now): mean r 0.5615 -> 0.6987; head ratios 0.898/0.959 -> 0.837/0.856,
    # real 0.821/0.858 (the TiO strength scale was fitted on these two heads). Bounds: half the improvement.
    assert np.mean(out["r"]) > 0.630
    for model, real in out["heads"][:-1]:
        assert abs(model - real) < 0.04
    # astrophysical log gf corrections (fitted on HD 41248): mean r 0.7024 -> 0.6998, heads unchanged to 0.002.
    # TiO band approximation (tio_bands): mean r 0.6987 -> 0.7024; 5448 A head model 0.819 -> 0.660, real 0.657
    # (was asserted 0.08 < model - real < 0.32 without the band). Bound: half the improvement of |model - real|.
    model, real = out["heads"][-1]
    assert abs(model - real) < 0.08


def test_m_dwarf_molecular_bands_against_held_out_gl273(gl273, shared_data):
    mask = read_ccf_mask(shared_data / "ccf_masks" / "HARPS_M2.fits")
    out = compare_with_model(gl273, GL273, mask, 18.2, BAND_WINDOWS, (*TIO_HEADS_AA, UNCOVERED_TIO_HEAD_AA))
    print(f"\nGl273 (held out) r per window {np.round(out['r'], 4)}, mean {np.mean(out['r']):.4f}; TiO head flux "
          f"ratios (model, real) {np.round(out['heads'], 3).tolist()}")
    # measured (before this work -> now): mean r 0.4852 -> 0.6399; head ratios 0.892/0.929 -> 0.817/0.816,
    # real 0.790/0.798 (no choice was made on this star). Bounds: half the improvement. Astrophysical log gf
    # corrections (fitted on HD 41248): mean r 0.6441 -> 0.6438, heads 0.817/0.816 -> 0.815/0.816.
    assert np.mean(out["r"]) > 0.562
    for model, real in out["heads"][:-1]:
        assert abs(model - real) < 0.04
    # TiO band approximation (tio_bands): mean r 0.6399 -> 0.6441; 5448 A head model 0.749 -> 0.521, real 0.601 (now
    # too deep; was asserted 0.07 < model - real < 0.3 without the band). Bound: half the improvement of |model - real|.
    model, real = out["heads"][-1]
    assert abs(model - real) < 0.115
