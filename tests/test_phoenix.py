"""PHOENIX HiRes loader on small files written in the Husser et al. (2013) layout.

The files carry analytic spectra: ln F is affine in (Teff, logg, [M/H], [alpha/M]) and in
wavelength, minus line optical depths whose strength is affine in the parameters, so the
log-flux interpolation the loader uses must reproduce an off-grid point exactly, and a line
at a known vacuum wavelength must land at its air wavelength.
"""

import numpy as np
import pytest
from astropy.io import fits

from simharps.constants import C_KMS
from simharps.errors import ParameterError, SimharpsError
from simharps.grids import air_to_vacuum, vacuum_to_air
from simharps.stellar.phoenix import (
    WAVE_FILENAME,
    FitsGrid,
    GridFileError,
    GridPoint,
    PhoenixGrid,
    bin_edges_log,
    parse_phoenix_filename,
    phoenix_filename,
    pseudo_continuum,
)
from simharps.stellar.spectrum import StellarSpectrum

WAVE_RANGE_VAC_AA = (4990.0, 5110.0)
NATIVE_DLN = 1.0 / 500_000          # R = 500,000 sampling, as in the optical HiRes files
BROAD_LINE_VAC_AA, BROAD_SIGMA_AA = 5050.0, 1.0
NARROW_LINE_VAC_AA, NARROW_SIGMA_AA = 5030.0, 0.03
WINDOW_AIR_AA = (4995.0, 5105.0)

GRID_POINTS = [GridPoint(t, g, z, 0.0) for t in (5700.0, 5800.0) for g in (4.0, 4.5) for z in (-0.5, 0.0)]
EXTRA_POINTS = [GridPoint(5800.0, 4.5, 0.5, 0.0), GridPoint(5800.0, 4.5, 0.0, 0.2)]


def native_wavelength_vac_aa():
    n = int(np.log(WAVE_RANGE_VAC_AA[1] / WAVE_RANGE_VAC_AA[0]) / NATIVE_DLN) + 1
    return WAVE_RANGE_VAC_AA[0] * np.exp(np.arange(n) * NATIVE_DLN)


def continuum_per_cm(wavelength_vac_aa, teff_k, logg_cgs, mh_dex, alpha_dex=0.0):
    """Continuum, erg/s/cm^2/cm: ln C affine in every parameter and in ln(wavelength) (a power law)."""
    return np.exp(np.log(2.5e15) + 0.25 * (teff_k - 5800.0) / 100.0 - 0.05 * (logg_cgs - 4.5)
                  + 0.02 * mh_dex + 0.01 * alpha_dex - 15.0 * np.log(wavelength_vac_aa / 5050.0))


def flux_per_cm(wavelength_vac_aa, teff_k, logg_cgs, mh_dex, alpha_dex=0.0):
    """Continuum times exp(-tau) of two Gaussian lines; the broad line's depth is affine in the parameters."""
    depth = 0.4 - 0.1 * (teff_k - 5800.0) / 100.0 + 0.05 * (logg_cgs - 4.5) + 0.2 * mh_dex + 0.1 * alpha_dex
    tau = (depth * np.exp(-0.5 * ((wavelength_vac_aa - BROAD_LINE_VAC_AA) / BROAD_SIGMA_AA) ** 2)
           + 2.0 * np.exp(-0.5 * ((wavelength_vac_aa - NARROW_LINE_VAC_AA) / NARROW_SIGMA_AA) ** 2))
    return continuum_per_cm(wavelength_vac_aa, teff_k, logg_cgs, mh_dex, alpha_dex) * np.exp(-tau)


def write_flux_file(directory, point, flux):
    path = directory / phoenix_filename(*point)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = fits.Header()
    header["BUNIT"] = "erg/s/cm^2/cm"
    header["PHXTEFF"], header["PHXLOGG"], header["PHXM_H"], header["PHXALPHA"] = point
    fits.writeto(path, np.asarray(flux, dtype=np.float32), header, overwrite=True)
    return path


def write_grid(directory, points, with_wave=True):
    wave = native_wavelength_vac_aa()
    if with_wave:
        fits.writeto(directory / WAVE_FILENAME, wave)
    for point in points:
        write_flux_file(directory, point, flux_per_cm(wave, *point))
    return directory


def expected_per_air_aa(wavelength_air_aa, *point):
    """Analytic flux per air A at the output wavelengths: per-cm value x 1e-8 x d(lambda_vac)/d(lambda_air)."""
    vac = air_to_vacuum(wavelength_air_aa)
    jacobian = np.gradient(vac, wavelength_air_aa)
    return flux_per_cm(vac, *point) * 1e-8 * jacobian


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    return write_grid(tmp_path_factory.mktemp("phoenix"), GRID_POINTS + EXTRA_POINTS)


@pytest.fixture()
def grid(grid_dir):
    return PhoenixGrid(grid_dir)


def test_file_names_follow_the_published_layout():
    model = "PHOENIX-ACES-AGSS-COND-2011-HiRes.fits"
    assert phoenix_filename(5800, 4.5, 0.0) == f"Z-0.0/lte05800-4.50-0.0.{model}"
    assert phoenix_filename(2300, 0.0, -0.0) == f"Z-0.0/lte02300-0.00-0.0.{model}"
    assert phoenix_filename(3100, 5.0, 0.5) == f"Z+0.5/lte03100-5.00+0.5.{model}"
    assert phoenix_filename(12000, 6.0, -1.5) == f"Z-1.5/lte12000-6.00-1.5.{model}"
    assert phoenix_filename(5800, 4.5, -0.5, 0.2) == f"Z-0.5.Alpha=+0.20/lte05800-4.50-0.5.Alpha=+0.20.{model}"
    assert phoenix_filename(5800, 4.5, 0.0, -0.2) == f"Z-0.0.Alpha=-0.20/lte05800-4.50-0.0.Alpha=-0.20.{model}"
    for point in [GridPoint(5800, 4.5, 0.0, 0.0), GridPoint(3100, 5.0, 0.5, 0.0), GridPoint(7200, 2.5, -2.0, 0.4),
                  GridPoint(2300, 0.0, -4.0, 0.0), GridPoint(5800, 4.5, 0.0, -0.2)]:
        assert parse_phoenix_filename(phoenix_filename(*point).split("/")[1]) == point
    assert parse_phoenix_filename("lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits.gz") is None
    assert parse_phoenix_filename(WAVE_FILENAME) is None


def test_discovery_finds_every_point_in_z_folders(grid, grid_dir):
    assert grid.available_points() == sorted(GRID_POINTS + EXTRA_POINTS)
    assert (grid_dir / "Z+0.5").is_dir() and (grid_dir / "Z-0.0.Alpha=+0.20").is_dir()
    assert grid.wave_path == grid_dir / WAVE_FILENAME
    # the nominal Husser grid nodes are the interpolation nodes
    assert 2300.0 in grid.axes["teff_k"] and 7200.0 in grid.axes["teff_k"] and 7100.0 not in grid.axes["teff_k"]
    assert list(grid.axes["mh_dex"]) == [-4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0]


def test_on_grid_point_reads_one_file_and_matches_it(grid, grid_dir):
    spec = grid.spectrum(5800, 4.5, 0.0, window=WINDOW_AIR_AA)
    assert isinstance(spec, StellarSpectrum)
    assert list(spec.params["grid_weights"].values()) == [1.0]
    assert grid.cache_info()["misses"] == 1
    # output grid: air, uniform in ln(lambda) at 0.15 km/s, covering the window
    dln = np.diff(np.log(spec.wavelength_air_aa))
    assert np.allclose(dln * C_KMS, 0.15, rtol=1e-9) and spec.step_kms == 0.15
    assert spec.wavelength_air_aa[0] == WINDOW_AIR_AA[0] and spec.wavelength_air_aa[-1] >= WINDOW_AIR_AA[1]
    # units: erg/s/cm^2/cm in the file -> erg/s/cm^2/A per air A, Jacobian included (it is 2.8e-4 here)
    expected = expected_per_air_aa(spec.wavelength_air_aa, 5800, 4.5, 0.0)
    away = np.abs(air_to_vacuum(spec.wavelength_air_aa) - NARROW_LINE_VAC_AA) > 0.5
    assert np.allclose(spec.flux[away], expected[away], rtol=2e-5)
    # flux conservation: energy in the output pixels equals the integral of the file's samples
    with fits.open(grid_dir / phoenix_filename(5800, 4.5, 0.0)) as hdul:
        native = hdul[0].data.astype(float) * 1e-8
    wave = native_wavelength_vac_aa()
    edges_vac = air_to_vacuum(bin_edges_log(spec.wavelength_air_aa))
    inside = (wave >= edges_vac[0]) & (wave <= edges_vac[-1])
    trapezoid = np.trapezoid(native[inside], wave[inside])
    bin_energy = np.sum(spec.flux * np.diff(bin_edges_log(spec.wavelength_air_aa)))
    ends = (np.interp(edges_vac[0], wave, native) + native[inside][0]) / 2 * (wave[inside][0] - edges_vac[0]) \
        + (np.interp(edges_vac[-1], wave, native) + native[inside][-1]) / 2 * (edges_vac[-1] - wave[inside][-1])
    assert bin_energy == pytest.approx(trapezoid + ends, rel=1e-9)


def test_line_at_vacuum_wavelength_lands_at_its_air_wavelength(grid):
    spec = grid.spectrum(5800, 4.5, 0.0, window=(5020.0, 5040.0))
    i = int(np.argmin(spec.flux))
    y = np.log(spec.flux[i - 1:i + 2])
    offset_px = 0.5 * (y[0] - y[2]) / (y[0] - 2 * y[1] + y[2])
    centre_air_aa = spec.wavelength_air_aa[i] * np.exp(offset_px * spec.step_kms / C_KMS)
    expected_air_aa = vacuum_to_air(NARROW_LINE_VAC_AA)
    assert NARROW_LINE_VAC_AA - expected_air_aa == pytest.approx(1.404, abs=0.005)   # ~ -84 km/s
    assert (centre_air_aa / expected_air_aa - 1) * C_KMS == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("point", [(5750.0, 4.25, -0.25), (5730.0, 4.5, -0.1), (5800.0, 4.1, 0.0),
                                   (5800.0, 4.5, 0.0, 0.05)])
def test_interpolation_is_exact_for_log_flux_affine_in_the_parameters(grid, point):
    spec = grid.spectrum(*point[:3], alpha_dex=point[3] if len(point) > 3 else 0.0, window=WINDOW_AIR_AA)
    expected = expected_per_air_aa(spec.wavelength_air_aa, *point)
    away = np.abs(air_to_vacuum(spec.wavelength_air_aa) - NARROW_LINE_VAC_AA) > 0.5
    assert np.allclose(spec.flux[away], expected[away], rtol=2e-5)
    assert sum(spec.params["grid_weights"].values()) == pytest.approx(1.0)
    # linear interpolation of flux would miss by ~0.3 % at the line core and in the continuum
    assert np.max(np.abs(spec.flux[away] / expected[away] - 1)) < 1e-4


def test_interpolated_equals_weighted_log_mean_of_the_corner_spectra(grid):
    spec = grid.spectrum(5725.0, 4.4, -0.15, window=WINDOW_AIR_AA)
    w_teff = {5700: 0.75, 5800: 0.25}
    w_logg = {4.0: 0.2, 4.5: 0.8}
    w_mh = {-0.5: 0.3, 0.0: 0.7}
    corners = {(t, g, z): w_teff[t] * w_logg[g] * w_mh[z] for t in w_teff for g in w_logg for z in w_mh}
    log_mean = sum(w * np.log(grid.spectrum(*p, window=WINDOW_AIR_AA).flux) for p, w in corners.items())
    assert np.allclose(spec.flux, np.exp(log_mean), rtol=1e-12)
    weights = {name.split(".PHOENIX")[0]: w for name, w in spec.params["grid_weights"].items()}
    assert weights["lte05700-4.50-0.0"] == pytest.approx(0.75 * 0.8 * 0.7)


def test_blackbody_grid_interpolates_to_the_blackbody_between_nodes(tmp_path):
    wave = native_wavelength_vac_aa()
    fits.writeto(tmp_path / WAVE_FILENAME, wave)

    def planck_per_cm(wavelength_aa, teff_k):
        x = 1.438777e8 / (wavelength_aa * teff_k)           # hc / (lambda k T), lambda in A
        return 1.0 / (wavelength_aa * 1e-8) ** 5 / np.expm1(x)
    for teff in (3000.0, 3100.0):
        write_flux_file(tmp_path, GridPoint(teff, 5.0, 0.0, 0.0), np.pi * 1.191e-5 * planck_per_cm(wave, teff))
    grid = PhoenixGrid(tmp_path)
    spec = grid.spectrum(3050.0, 5.0, 0.0, window=WINDOW_AIR_AA)
    vac = air_to_vacuum(spec.wavelength_air_aa)
    truth = np.pi * 1.191e-5 * planck_per_cm(vac, 3050.0) * 1e-8 * np.gradient(vac, spec.wavelength_air_aa)
    log_error = np.max(np.abs(spec.flux / truth - 1))
    nodes = [grid.spectrum(teff, 5.0, 0.0, window=WINDOW_AIR_AA).flux for teff in (3000.0, 3100.0)]
    linear_error = np.max(np.abs(0.5 * (nodes[0] + nodes[1]) / truth - 1))
    # Wien side at 5000 A: (dT^2 / 8) d2(ln B)/dT2 = 0.25 % for log flux; linear flux misses by 0.9 %
    assert 1e-3 < log_error < 3e-3
    assert log_error < 0.3 * linear_error


def test_pseudo_continuum_follows_the_line_free_continuum(grid_dir):
    spec = PhoenixGrid(grid_dir, continuum_window_kms=1000.0).spectrum(5800, 4.5, 0.0, window=WINDOW_AIR_AA)
    vac = air_to_vacuum(spec.wavelength_air_aa)
    truth = continuum_per_cm(vac, 5800, 4.5, 0.0) * 1e-8 * np.gradient(vac, spec.wavelength_air_aa)
    assert np.allclose(spec.continuum, truth, rtol=2e-6)
    assert spec.normalised.max() < 1 + 2e-6
    assert spec.normalised.min() == pytest.approx(np.exp(-2.0), rel=0.05)    # narrow line core, tau = 2


def test_pseudo_continuum_of_a_sloped_line_free_spectrum_is_the_spectrum():
    flux = np.exp(np.linspace(0.0, 0.5, 10_001))
    flux[5000:5100] *= 0.5
    continuum = pseudo_continuum(flux, step_kms=0.15, window_kms=300.0)
    truth = np.exp(np.linspace(0.0, 0.5, 10_001))
    assert np.allclose(continuum, truth, rtol=1e-12)
    # a block narrower than a broad line's wings gives a line-blanketed (lower) pseudo-continuum
    wing = truth * np.exp(-0.3 * np.exp(-0.5 * ((np.arange(10_001) - 5000) / 1500.0) ** 2))
    envelope = pseudo_continuum(wing, step_kms=0.15, window_kms=300.0)
    assert np.max(wing / envelope) < 1 + 1e-3
    assert envelope[5000] < 0.8 * truth[5000]


def test_cache_serves_batches_and_stays_bounded(grid_dir):
    grid = PhoenixGrid(grid_dir)
    grid.spectrum(5750, 4.25, -0.25, window=(5000.0, 5010.0))
    assert grid.cache_info()["misses"] == 8 and grid.cache_info()["hits"] == 0
    grid.spectrum(5710, 4.05, -0.45, window=(5000.0, 5010.0))
    assert grid.cache_info()["misses"] == 8 and grid.cache_info()["hits"] == 8
    grid.spectrum(5710, 4.05, -0.45, window=(5000.0, 5020.0))
    assert grid.cache_info()["misses"] == 16
    small = PhoenixGrid(grid_dir, cache_mb=0.1)
    for teff in (5710, 5720, 5730):
        small.spectrum(teff, 4.25, -0.25, window=(5000.0, 5010.0))
    info = small.cache_info()
    assert 0 < info["bytes"] <= info["max_bytes"] and info["entries"] < 8


def test_alpha_enhanced_and_metal_rich_files(grid):
    alpha = grid.spectrum(5800, 4.5, 0.0, alpha_dex=0.2, window=(5000.0, 5010.0))
    name = "lte05800-4.50-0.0.Alpha=+0.20.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits"
    assert list(alpha.params["grid_weights"]) == [name]
    rich = grid.spectrum(5800, 4.5, 0.5, window=(5000.0, 5010.0))
    assert np.allclose(rich.flux, expected_per_air_aa(rich.wavelength_air_aa, 5800, 4.5, 0.5), rtol=2e-5)


def test_explicit_working_grid_and_coarse_step(grid_dir):
    grid = PhoenixGrid(grid_dir, step_kms=2.0)
    spec = grid.spectrum(5800, 4.5, 0.0, window=(5040.0, 5060.0))
    assert spec.step_kms == 2.0 and spec.params["native_step_kms"] == pytest.approx(C_KMS * NATIVE_DLN, rel=1e-6)
    wave = spec.wavelength_air_aa[10:50]
    again = grid.spectrum(5800, 4.5, 0.0, wavelength_air_aa=wave)
    assert np.allclose(again.flux, spec.flux[10:50], rtol=1e-12)
    with pytest.raises(ParameterError, match="uniform in ln"):
        grid.spectrum(5800, 4.5, 0.0, wavelength_air_aa=np.linspace(5040.0, 5060.0, 100) ** 1.5 / 5050 ** 0.5)


@pytest.mark.parametrize("params, match", [
    ((2200.0, 4.5, 0.0), r"teff_k = 2200 is outside the PHOENIX grid \(2300 to 12000 K\)"),
    ((5800.0, 6.5, 0.0), r"logg_cgs = 6.5 is outside .*\(0 to 6 dex\)"),
    ((5800.0, 4.5, 1.5), r"mh_dex = 1.5 is outside .*\(-4 to 1 dex\)"),
    ((float("nan"), 4.5, 0.0), r"teff_k = nan is outside"),
])
def test_off_grid_parameters_raise(grid, params, match):
    with pytest.raises(ParameterError, match=match):
        grid.spectrum(*params, window=(5000.0, 5010.0))


def test_missing_grid_point_names_file_and_directory(grid, grid_dir):
    with pytest.raises(ParameterError) as info:
        grid.spectrum(5850.0, 4.5, 0.0, window=(5000.0, 5010.0))
    message = str(info.value)
    assert "lte05900-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits" in message
    assert str(grid_dir) in message and "lte05800" not in message
    with pytest.raises(ParameterError, match=r"Z\+0.5/lte05700-4.50\+0.5"):
        grid.spectrum(5750.0, 4.5, 0.5, window=(5000.0, 5010.0))
    assert isinstance(info.value, SimharpsError)


def test_window_outside_the_wavelength_file_raises(grid):
    with pytest.raises(ParameterError, match="outside the PHOENIX wavelength range"):
        grid.spectrum(5800, 4.5, 0.0, window=(5100.0, 5200.0))


def test_missing_wave_file_and_empty_directory_raise(tmp_path):
    write_grid(tmp_path, GRID_POINTS[:1], with_wave=False)
    with pytest.raises(GridFileError, match=WAVE_FILENAME):
        PhoenixGrid(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GridFileError, match="no PHOENIX HiRes flux files"):
        PhoenixGrid(empty)
    with pytest.raises(GridFileError, match="does not exist"):
        PhoenixGrid(tmp_path / "nowhere")


def test_corrupt_truncated_and_mislabelled_files_raise(tmp_path):
    write_grid(tmp_path, GRID_POINTS[:4])
    garbage, truncated, mislabelled, short = (tmp_path / phoenix_filename(*p) for p in GRID_POINTS[:4])
    garbage.write_bytes(b"not a FITS file" * 100)
    truncated.write_bytes(truncated.read_bytes()[:8000])
    with fits.open(mislabelled, mode="update") as hdul:
        hdul[0].header["PHXTEFF"] = 6100
    fits.writeto(short, np.ones(100, dtype=np.float32), overwrite=True)
    grid = PhoenixGrid(tmp_path)
    for path, point, reason in [(garbage, GRID_POINTS[0], "unreadable"), (truncated, GRID_POINTS[1], "unreadable"),
                                (mislabelled, GRID_POINTS[2], "PHXTEFF=6100 disagrees"),
                                (short, GRID_POINTS[3], "NAXIS1=100")]:
        with pytest.raises(GridFileError, match=reason) as info:
            grid.spectrum(*point[:3], window=(5090.0, 5100.0))
        assert info.value.path == str(path)
    (tmp_path / WAVE_FILENAME).write_bytes(b"junk")
    with pytest.raises(GridFileError, match="unreadable PHOENIX wavelength file"):
        PhoenixGrid(tmp_path)


def test_negative_flux_and_wrong_unit_raise(tmp_path):
    write_grid(tmp_path, GRID_POINTS[:2])
    wave = native_wavelength_vac_aa()
    bad = flux_per_cm(wave, *GRID_POINTS[0])
    bad[5000] = -1.0
    write_flux_file(tmp_path, GRID_POINTS[0], bad)
    with fits.open(tmp_path / phoenix_filename(*GRID_POINTS[1]), mode="update") as hdul:
        hdul[0].header["BUNIT"] = "W/m^2/um"
    grid = PhoenixGrid(tmp_path)
    with pytest.raises(GridFileError, match="negative"):
        grid.spectrum(*GRID_POINTS[0][:3], window=WINDOW_AIR_AA)
    with pytest.raises(GridFileError, match="BUNIT"):
        grid.spectrum(*GRID_POINTS[1][:3], window=WINDOW_AIR_AA)


# ---- generic FITS grid --------------------------------------------------------------------------------


def write_fits_grid(directory):
    """Four air-wavelength spectra per A: linear-WCS images in A, one binary table in nm; a CSV index."""
    rows = ["file,teff_k,logg_cgs,mh_dex"]
    for teff in (4000.0, 4500.0):
        for logg in (4.0, 5.0):
            name = f"spec_{teff:.0f}_{logg:.1f}.fits"
            if teff == 4500.0 and logg == 5.0:
                wave_air_nm = np.linspace(499.0, 511.0, 24001)
                flux = flux_per_cm(air_to_vacuum(wave_air_nm * 10.0), teff, logg, 0.0) * 1e-8
                columns = [fits.Column("wavelength", "D", unit="nm", array=wave_air_nm),
                           fits.Column("flux", "D", array=flux)]
                fits.BinTableHDU.from_columns(columns).writeto(directory / name)
            else:
                header = fits.Header()
                header["CRVAL1"], header["CDELT1"], header["CRPIX1"], header["CUNIT1"] = 4990.0, 0.005, 1.0, "Angstrom"
                wave_air = 4990.0 + 0.005 * np.arange(24001)
                flux = flux_per_cm(air_to_vacuum(wave_air), teff, logg, 0.0) * 1e-8
                fits.writeto(directory / name, flux, header)
            rows.append(f"{name},{teff},{logg},0.0")
    (directory / "index.csv").write_text("\n".join(rows) + "\n")
    return directory / "index.csv"


def test_fits_grid_reads_images_and_tables_and_interpolates(tmp_path):
    index = write_fits_grid(tmp_path)
    grid = FitsGrid(index, medium="air")
    assert grid.available_points() == sorted(GridPoint(t, g, 0.0, 0.0) for t in (4000.0, 4500.0) for g in (4.0, 5.0))
    window = (5000.0, 5100.0)
    for point in [(4000.0, 4.0, 0.0), (4500.0, 5.0, 0.0), (4300.0, 4.6, 0.0)]:
        spec = grid.spectrum(*point, window=window)
        vac = air_to_vacuum(spec.wavelength_air_aa)
        # the files sample the analytic flux per air A: no Jacobian here, the files are already per air A
        expected = flux_per_cm(vac, *point) * 1e-8
        away = np.abs(vac - NARROW_LINE_VAC_AA) > 0.5
        assert np.allclose(spec.flux[away], expected[away], rtol=2e-5)
    with pytest.raises(ParameterError, match=r"mh_dex = 0.5 is outside the FITS grid \(0 to 0 dex\)"):
        grid.spectrum(4000.0, 4.0, 0.5, window=window)
    (tmp_path / "spec_4500_4.0.fits").unlink()
    with pytest.raises(ParameterError, match="spec_4500_4.0.fits"):
        grid.spectrum(4300.0, 4.6, 0.0, window=window)
    with pytest.raises(ParameterError, match="outside the coverage"):
        grid.spectrum(4000.0, 4.0, 0.0, window=(5100.0, 5200.0))


def test_fits_grid_bad_index_and_files(tmp_path):
    index = write_fits_grid(tmp_path)
    (tmp_path / "bad.csv").write_text("file,teff_k,logg_cgs\nspec_4000_4.0.fits,4000,4.0\n")
    with pytest.raises(GridFileError, match="bad index row"):
        FitsGrid(tmp_path / "bad.csv")
    (tmp_path / "index.json").write_text('[{"file": "spec_4000_4.0.fits", "teff_k": 4000, "logg_cgs": 4.0, '
                                         '"mh_dex": 0.0}, {"file": "junk.fits", "teff_k": 4500, "logg_cgs": 4.0, '
                                         '"mh_dex": 0.0}]')
    (tmp_path / "junk.fits").write_bytes(b"junk" * 100)
    grid = FitsGrid(tmp_path / "index.json", medium="air")
    assert grid.spectrum(4000.0, 4.0, 0.0, window=(5000.0, 5010.0)).flux.size > 0
    with pytest.raises(GridFileError, match="junk.fits"):
        grid.spectrum(4500.0, 4.0, 0.0, window=(5000.0, 5010.0))
    with pytest.raises(ParameterError, match="medium"):
        FitsGrid(index, medium="glass")
