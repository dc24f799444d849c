"""Real-data ingest against the real archive files: RVs, tellurics, PWV, error model, resampling, rejections."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from scipy.signal import argrelmin, savgol_filter

from simharps.ccf import read_ccf_mask
from simharps.constants import C_KMS
from simharps.ingest import (MASK_NAMES, QualityThresholds, RejectedFile, load_ccf_mask, prepare_file,
                             prepare_files, resample_flux_conserving)
from simharps.ingest.resample import pixel_edges
from simharps.ingest.telluric import telluric_component

ADP = "ADP.2014-09-16T11:04:45.123.fits"
S1D_GL581 = "HARPS.2010-09-18T23:42:36.178_s1d_A.fits"
ESPRESSO = "HD41248_1_1_S1D_A.fits"
LITERATURE_RV_KMS = {ADP: -30.6, S1D_GL581: -9.2, ESPRESSO: 3.5}
"""IC4651 No9122: the header's TARG RADVEL (cluster RV); Gl581, HD41248: SIMBAD-style values (data README)."""


@pytest.fixture(scope="module")
def ingested(harps_dir):
    return prepare_files([harps_dir])


def _row_index(result, name):
    return next(i for i, row in enumerate(result.rows) if row["file"] == name)


def test_real_products_ingested_and_others_rejected_with_reasons(ingested):
    assert sorted(row["file"] for row in ingested.rows) == sorted([ADP, S1D_GL581, ESPRESSO])
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in ingested.rejected}
    assert "e2ds" in reasons["HARPS.2003-12-13T06:19:48.371_e2ds_A.fits"]
    assert "calibration" in reasons["HARPS.2003-12-12T21:42:45.093_blaze_A.fits"]
    assert "calibration" in reasons["HARPS.2003-12-12T21:47:59.366_wave_A.fits"]
    n = len(ingested.rows)
    grid = ingested.wavelength_air_aa
    assert ingested.flux.shape == ingested.error.shape == ingested.components["telluric"].shape == (n, grid.size)
    assert ingested.flux.dtype == np.float32
    np.testing.assert_array_equal(np.rint(grid / 0.01) * 0.01, grid)


def test_rows_carry_contract_names_and_provenance(ingested):
    by_file = {row["file"]: row for row in ingested.rows}
    for row in ingested.rows:
        for name in ("target_id", "epoch", "mjd_utc", "berv_kms", "airmass", "pwv_mm", "rv_kms", "instrument",
                     "site"):
            assert row[name] is not None, name
        assert row["pwv_source"] in {"header", "fitted", "default"}
        assert row["frame"] == "barycentric"
    assert by_file[ESPRESSO]["resampled"] and "flux-conserving" in by_file[ESPRESSO]["resampling"]
    assert by_file[ESPRESSO]["error_source"] == "file" and by_file[ESPRESSO]["resolving_power"] == 140_000
    for name in (ADP, S1D_GL581):
        assert not by_file[name]["resampled"] and by_file[name]["error_source"] == "modelled"
    assert len({row["target_id"] for row in ingested.rows}) == 3
    assert by_file[S1D_GL581]["target_id"] == "GJ581"


def test_lattice_products_keep_values_and_mark_no_data_as_nan(ingested, harps_dir):
    i = _row_index(ingested, ADP)
    grid = ingested.wavelength_air_aa
    with fits.open(harps_dir / ADP) as hdul:
        wave, flux = hdul[1].data["WAVE"][0].astype(float), hdul[1].data["FLUX"][0].astype(float)
    k = np.rint(wave / 0.01).astype(int) - int(np.rint(grid[0] / 0.01))
    inside = (k >= 0) & (k < grid.size) & (flux != 0)
    np.testing.assert_array_equal(ingested.flux[i, k[inside]], flux[inside].astype(np.float32))
    gap = (grid > 5304.5) & (grid < 5336.5)   # CCD gap, zeros in the file
    assert np.isnan(ingested.flux[i, gap]).all() and np.isnan(ingested.error[i, gap]).all()
    assert np.isnan(ingested.flux[i, grid < 3781.4]).all()


@pytest.mark.parametrize("name", [ADP, S1D_GL581, ESPRESSO])
def test_ccf_rv_matches_literature(ingested, name):
    row = ingested.rows[_row_index(ingested, name)]
    print(f"{name}: rv_ccf {row['rv_ccf_kms']:+.3f} km/s (lit {LITERATURE_RV_KMS[name]:+.1f}), mask {row['ccf_mask']}, "
          f"FWHM {row['ccf_fwhm_kms']:.2f} km/s, contrast {row['ccf_contrast']:.3f}")
    assert row["rv_ccf_kms"] == pytest.approx(LITERATURE_RV_KMS[name], abs=0.5)
    assert row["ccf_mask"] in MASK_NAMES and 2.0 < row["ccf_fwhm_kms"] < 15.0


@pytest.mark.parametrize("name", [ADP, S1D_GL581, ESPRESSO])
def test_telluric_o2_lines_coincide_with_observed_ones(ingested, name):
    """Deep O2 B-band minima of the component sit on flux minima (+-1 bin); with the BERV sign flipped they do not."""
    i = _row_index(ingested, name)
    row, grid = ingested.rows[i], ingested.wavelength_air_aa
    window = (grid > 6865.0) & (grid < 6910.0)
    wave, flux = grid[window], ingested.flux[i, window].astype(float)
    telluric = ingested.components["telluric"][i, window]

    def matched_fraction(transmission):
        minima = argrelmin(transmission, order=3)[0]
        minima = minima[transmission[minima] < 0.6]
        flux_minima = argrelmin(savgol_filter(flux, 5, 2), order=2)[0]
        distance = np.abs(minima[:, None] - flux_minima[None, :]).min(axis=1)
        return (distance <= 1).mean(), minima.size

    fraction, n_lines = matched_fraction(telluric)
    wrong = telluric_component(wave, -row["berv_kms"], row["airmass"], row["pwv_mm"], row["resolving_power"])
    wrong_fraction, _ = matched_fraction(wrong)
    print(f"{name}: {fraction:.0%} of {n_lines} O2 minima on flux minima; with -BERV {wrong_fraction:.0%}")
    assert n_lines >= 20 and fraction >= 0.85
    assert wrong_fraction < 0.5


def test_pwv_fit_agrees_with_header_iwv(ingested):
    for row in ingested.rows:
        print(f"{row['file']}: pwv {row['pwv_mm']:.2f} mm ({row['pwv_source']}), fit {row['pwv_fit_mm']:.2f} "
              f"+- {row['pwv_fit_err_mm']:.2f}, header {row['pwv_header_mm']}")
    row = ingested.rows[_row_index(ingested, ESPRESSO)]
    assert row["pwv_source"] == "fitted" and row["pwv_header_mm"] == pytest.approx(0.99)
    assert row["pwv_fit_mm"] == pytest.approx(row["pwv_header_mm"], abs=0.4)


def _line_free_scatter(wave, flux, error, telluric, lo, hi):
    """Robust scatter of (flux - smoothed) / error on the 10 % flattest, telluric-free bins of [lo, hi)."""
    from scipy.ndimage import gaussian_filter1d

    filled = np.nan_to_num(flux)
    residual = (flux - savgol_filter(filled, 21, 2)) / error
    curvature = np.abs(np.gradient(np.gradient(gaussian_filter1d(filled, 5)))) / error
    select = (wave >= lo) & (wave < hi) & (telluric > 0.995) & np.isfinite(residual)
    select &= curvature < np.nanpercentile(curvature[select], 10)
    x = residual[select]
    return 1.4826 * np.median(np.abs(x - np.median(x)))


@pytest.mark.parametrize("name,regions,bounds", [
    (ADP, [(4000, 4500), (4500, 5000), (5000, 5500), (5500, 6000), (6000, 6500)], (0.85, 1.15)),
    (S1D_GL581, [(4000, 4500)], (0.75, 1.25)),       # an M3 dwarf has no line-free bins redder than that
    (ESPRESSO, [(4500, 5000), (5000, 5500), (5500, 6000), (6000, 6500)], (0.8, 1.2)),   # the file's own error
])
def test_error_gives_unit_scatter_in_line_free_regions(ingested, name, regions, bounds):
    i = _row_index(ingested, name)
    wave = ingested.wavelength_air_aa
    flux, error = ingested.flux[i].astype(float), ingested.error[i].astype(float)
    telluric = ingested.components["telluric"][i]
    scatter = {lo: _line_free_scatter(wave, flux, error, telluric, lo, hi) for lo, hi in regions}
    print(f"{name} ({ingested.rows[i]['error_source']} error): " +
          ", ".join(f"{lo}-{hi} A {scatter[lo]:.3f}" for lo, hi in regions))
    assert all(bounds[0] < value < bounds[1] for value in scatter.values())


def test_resampling_conserves_flux_and_propagates_error():
    rng = np.random.default_rng(3)
    wave = 5000.0 * np.exp(np.arange(3000) * 0.5 / C_KMS)        # ESPRESSO-like 0.5 km/s pixels
    counts = rng.uniform(50.0, 150.0, wave.size)
    grid = np.arange(500050, 502400) * 0.01
    out, error = resample_flux_conserving(wave, counts, np.sqrt(counts), grid)
    edges = pixel_edges(wave)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    integral = np.interp(grid[[0, -1]] + [-0.005, 0.005], edges, cumulative)   # exact for a piecewise-constant density
    covered = np.isfinite(out)
    assert covered.all()
    assert out.sum() == pytest.approx(integral[1] - integral[0], rel=1e-12)
    draws = np.stack([resample_flux_conserving(wave, counts + rng.normal(0, np.sqrt(counts)), None, grid)[0][:400]
                      for _ in range(300)])
    np.testing.assert_allclose(draws.std(axis=0).mean() / error[:400].mean(), 1.0, atol=0.05)


def test_espresso_resampling_conserves_the_real_flux(harps_dir, ingested):
    i = _row_index(ingested, ESPRESSO)
    grid = ingested.wavelength_air_aa
    with fits.open(harps_dir / ESPRESSO) as hdul:                 # one table row per pixel
        wave, flux = hdul[1].data["wavelength_air"].astype(float), hdul[1].data["flux"].astype(float)
    lo, hi = 5000.005, 6000.005                                   # whole output bins 5000.01 .. 6000.00
    cumulative = np.concatenate([[0.0], np.cumsum(flux)])
    expected = np.diff(np.interp([lo, hi], pixel_edges(wave), cumulative))[0]
    select = (grid > lo) & (grid < hi)
    assert ingested.flux[i, select].astype(float).sum() == pytest.approx(expected, rel=1e-6)


def test_shipped_masks_equal_the_drs_fits_masks(shared_data):
    for name in MASK_NAMES:
        shipped, original = load_ccf_mask(name), read_ccf_mask(shared_data / "ccf_masks" / f"HARPS_{name}.fits")
        np.testing.assert_array_equal(shipped.wavelength_air_aa, original.wavelength_air_aa)
        np.testing.assert_array_equal(shipped.weight, original.weight)


def _modified_s1d(src, dst, change):
    with fits.open(src) as hdul:
        hdul[0].data = change(hdul[0].data.astype(np.float32))
        hdul.writeto(dst)
    return dst


def test_broken_files_are_rejected_with_reasons_and_do_not_stop_the_ingest(harps_dir, tmp_path):
    src = harps_dir / S1D_GL581
    raw = (harps_dir / ADP).read_bytes()
    (tmp_path / "a_truncated.fits").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "b_notfits.fits").write_text("SIMPLE = not really a FITS file\n")
    _modified_s1d(src, tmp_path / "c_allnan.fits", lambda d: np.full_like(d, np.nan))
    wave = np.arange(313114) * 0.01 + 3781.19
    jumps = np.where((wave // 50) % 2 == 0, 100.0, 1.0).astype(np.float32)
    _modified_s1d(src, tmp_path / "d_jumps.fits", lambda d: d * jumps)
    rng = np.random.default_rng(0)
    _modified_s1d(src, tmp_path / "e_faint.fits", lambda d: d * 1e-3 + rng.normal(0, 10, d.size).astype(np.float32))
    _modified_s1d(src, tmp_path / "f_partnan.fits", lambda d: np.where(np.arange(d.size) % 20 == 0, np.nan, d))
    shutil.copy(src, tmp_path / "g_good.fits")

    result = prepare_files([tmp_path], thresholds=QualityThresholds())
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in result.rejected}
    for name, reason in sorted(reasons.items()):
        print(f"{name}: {reason}")
    assert [row["file"] for row in result.rows] == ["g_good.fits"]
    assert "truncated" in reasons["a_truncated.fits"]
    assert "not a readable FITS" in reasons["b_notfits.fits"] or "FITS" in reasons["b_notfits.fits"]
    assert "finite" in reasons["c_allnan.fits"]
    assert "unstable flux" in reasons["d_jumps.fits"]
    assert "low S/N" in reasons["e_faint.fits"]
    assert "non-numeric" in reasons["f_partnan.fits"]
    with pytest.raises(RejectedFile, match="low S/N"):
        prepare_file(tmp_path / "e_faint.fits")


def test_real_files_pass_the_quality_cuts_with_margin(ingested):
    thresholds = QualityThresholds()
    for row in ingested.rows:
        print(f"{row['file']}: snr_bin {row['snr_bin']:.1f}, max_block_jump {row['max_block_jump']:.2f}, spikes "
              f"{row['outlier_fraction']:.1e}, negative {row['negative_fraction']:.1e}, coverage {row['coverage']:.3f}")
        assert row["snr_bin"] > 3 * thresholds.min_snr
        assert row["max_block_jump"] < thresholds.max_block_jump / 2
        assert row["outlier_fraction"] < thresholds.max_outlier_fraction / 10
