"""Tests of the instrument stage against the real HARPS calibration files and archive products."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from simharps.constants import C_KMS, C_MS
from simharps.errors import ParameterError
from simharps.grids import log_lambda_grid, product_grid
from simharps.instrument import EchelleLayout, HarpsSpectrograph, bin_edges

WAVE_FILE = "HARPS.2003-12-12T21:47:59.366_wave_A.fits"
BLAZE_FILE = "HARPS.2003-12-12T21:42:45.093_blaze_A.fits"
E2DS_FILE = "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits"
S1D_FILE = "HARPS.2010-09-18T23:42:36.178_s1d_A.fits"
ADP_FILE = "ADP.2014-09-16T11:04:45.123.fits"


def read_fits(path, hdu=0):
    """Data and header of one HDU; the HARPS headers carry a few non-standard cards (NaN values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            hdul.verify("silentfix")
            return hdul[hdu].data, hdul[0].header.copy()


@pytest.fixture(scope="module")
def layout():
    return EchelleLayout()


@pytest.fixture(scope="module")
def spectrograph(layout):
    return HarpsSpectrograph(layout)


@pytest.fixture(scope="module")
def flat_extraction(spectrograph):
    """Constant photon density of 100 per km/s, extracted (LSF on)."""
    wave = log_lambda_grid(3770.0, 6925.0, step_kms=0.15)
    return wave, spectrograph.extract(wave, np.full(wave.size, 100.0))


def test_order_numbers_follow_the_grating_equation(layout):
    assert layout.n_orders == 72
    assert list(layout.orders[:46]) == list(range(161, 115, -1))
    assert list(layout.orders[46:]) == list(range(114, 88, -1))
    assert set(layout.ccd[:46]) == {"blue"} and set(layout.ccd[46:]) == {"red"}
    m_lambda = layout.orders * layout.pixel_wavelength_air_aa[:, 2048]
    assert np.ptp(m_lambda) / np.mean(m_lambda) < 2e-4  # an off-by-one numbering would give ~1e-2
    with pytest.raises(ParameterError, match="115"):
        layout.order_index(115)
    assert layout.order_index(114) == 46


def test_layout_reproduces_the_wave_file(layout, harps_dir):
    wave, header = read_fits(harps_dir / WAVE_FILE)
    wave = wave.astype(float)
    dv = (layout.pixel_wavelength_air_aa - wave) / wave * C_MS
    # the float32 image is itself rounded to ~0.5 mA: 7.9 m/s rms is the floor
    assert dv.std() < 8.5 and np.abs(dv).max() < 20.0
    coeffs = np.array([header[f"HIERARCH ESO DRS CAL TH COEFF LL{i}"] for i in range(288)]).reshape(72, 4)
    drs = np.array([np.polynomial.polynomial.polyval(np.arange(4096.0), c) for c in coeffs])
    assert np.abs((layout.pixel_wavelength_air_aa - drs) / drs * C_MS).max() < 0.01
    smooth = EchelleLayout(calibration="smooth").pixel_wavelength_air_aa
    dv_smooth = (smooth - drs) / drs * C_MS
    assert dv_smooth[46:].std() < 20.0 and dv_smooth.std() < 40.0


def test_blaze_model_reproduces_the_blaze_file(layout, harps_dir):
    blaze, _ = read_fits(harps_dir / BLAZE_FILE)
    centre = slice(1024, 3072)
    rel = layout.blaze[:, centre] / blaze.astype(float)[:, centre] - 1.0
    rms = rel.std(axis=1) * 100.0
    assert np.median(rms) < 0.6
    assert np.mean(rms < 1.0) > 0.9
    assert rms.max() < 3.0  # m = 160: lamp features of ~5 % in the real flat
    assert np.all(np.abs(layout.blaze[:, 2048] - 1.0) < 0.05)


def test_pixel_velocity_widths(layout):
    centre = layout.pixel_width_kms[:, 2047:2049].mean(axis=1)
    assert np.all((centre > 0.81) & (centre < 0.84))
    assert np.all(layout.pixel_width_kms[:, 0] > layout.pixel_width_kms[:, -1])  # dispersion grows along the order
    assert np.allclose(layout.pixel_width_aa[:, 2048], layout.pixel_wavelength_air_aa[:, 2048] * centre / C_KMS, rtol=2e-3)


def test_free_spectral_range_overlaps_and_gap(layout):
    fsr = layout.free_spectral_range_aa
    assert np.allclose(fsr, layout.blaze_wavelength_aa / layout.orders)
    assert 23.0 < fsr[0] < 24.0 and 77.0 < fsr[-1] < 79.0
    inside = (layout.blaze_wavelength_aa > layout.valid_range_air_aa[:, 0]) & (layout.blaze_wavelength_aa < layout.valid_range_air_aa[:, 1])
    assert inside.all()
    # the FSR is the step between adjacent orders at the same pixel: lambda_(m-1) - lambda_m = lambda_m / (m - 1)
    centre = layout.pixel_wavelength_air_aa[:, 2048]
    same_ccd = layout.ccd[:-1] == layout.ccd[1:]
    assert np.allclose((centre[1:] - centre[:-1])[same_ccd], fsr[:-1][same_ccd], rtol=0.03)
    overlaps = layout.overlaps_aa()
    assert len(overlaps) == 70
    width = overlaps["stop_aa"] - overlaps["start_aa"]
    assert np.all(width > 0)
    assert width[0] > 15.0 and width[-1] < 1.0
    assert np.all(np.diff(width[1:]) < 0)  # m = 161 is cut short by its valid pixel range
    gap_start, gap_stop = layout.ccd_gap_aa
    assert 5303.0 < gap_start < 5305.0 and 5336.0 < gap_stop < 5338.0


def test_extraction_integrates_the_density_exactly(layout, flat_extraction):
    _, counts = flat_extraction
    assert not np.isnan(counts).any()
    per_kms = counts / (layout.blaze * layout.pixel_width_kms)
    assert np.allclose(per_kms, 100.0, rtol=1e-9)


def test_extracted_lsf_width(spectrograph, layout):
    line_aa = float(layout.pixel_wavelength_air_aa[layout.order_index(110), 2048])  # order centre, ~5565 A
    wave = log_lambda_grid(line_aa - 10.0, line_aa + 10.0, step_kms=0.05)
    density = np.exp(-0.5 * (C_KMS * np.log(wave / line_aa) / 0.05) ** 2)  # narrower than a pixel
    counts = spectrograph.extract(wave, density)
    row = int(np.argmin(np.abs(layout.pixel_wavelength_air_aa[:, 2048] - line_aa)))
    c = np.nan_to_num(counts[row]) / layout.blaze[row]
    x = np.arange(c.size)
    mean = np.sum(x * c) / c.sum()
    sigma_px = np.sqrt(np.sum((x - mean) ** 2 * c) / c.sum())
    velocity_px = layout.pixel_width_kms[row, int(mean)]
    expected = np.hypot(spectrograph.lsf_fwhm_kms / 2.3548 / velocity_px, np.sqrt(1 / 12))
    assert sigma_px == pytest.approx(expected, rel=0.02)
    assert 3.2 < 2.3548 * sigma_px < 3.5  # ~3.2 px per FWHM at the order centre, ~3.3 with the pixel box
    assert 2.3548 * sigma_px * velocity_px == pytest.approx(2.68, abs=0.03)
    assert np.interp(mean, x, layout.pixel_wavelength_air_aa[row]) == pytest.approx(line_aa, abs=0.002)


def test_merge_of_a_flat_spectrum(spectrograph, flat_extraction):
    _, counts = flat_extraction
    product = spectrograph.merge(counts, berv_kms=12.0)
    covered = product.n_orders > 0
    expected = 100.0 * C_KMS * 0.01 / product.wavelength_air_aa  # e- per 0.01 A bin (barycentric)
    # the rebin counts what falls into each bin: a flat spectrum comes out exact (near the ends of the orders, where
    # the edge densities are one-sided, to the slope of the counts per pixel across a pixel, < 1e-5)
    assert np.allclose(product.flux[covered], expected[covered], rtol=1e-5)
    assert np.all(product.flux[~covered] == 0) and np.all(product.error[~covered] == 0)
    assert set(np.unique(product.n_orders)) == {0, 1, 2}
    # inverse-variance weighting: the overlaps are less noisy than single-order stretches nearby
    snr = product.flux / np.where(covered, product.error, np.inf)
    red_end_of_order = (product.wavelength_air_aa > 5090.0) & (product.wavelength_air_aa < 5127.0)
    assert np.median(snr[red_end_of_order & (product.n_orders == 2)]) > np.median(snr[red_end_of_order & (product.n_orders == 1)])


def test_merge_error_matches_monte_carlo(spectrograph, flat_extraction):
    _, counts = flat_extraction
    rng = np.random.default_rng(3)
    variance = counts + 17 * 5.45**2
    draws = counts + rng.normal(size=(12,) + counts.shape) * np.sqrt(variance)
    grid = product_grid(5050.0, 5130.0)
    products = spectrograph.merge(draws, np.broadcast_to(variance, draws.shape), -5.0, wavelength_grid_aa=grid)
    expected = spectrograph.merge(counts, variance, -5.0, wavelength_grid_aa=grid)
    assert products.flux.shape == (12, grid.size)
    for n in (1, 2):
        sel = expected.n_orders == n
        ratio = np.mean(products.flux[:, sel].var(axis=0, ddof=1)) / np.mean(expected.error[sel] ** 2)
        assert ratio == pytest.approx(1.0, abs=0.06)
    single = spectrograph.merge(draws[3], variance, -5.0, wavelength_grid_aa=grid)
    assert np.allclose(single.flux, products.flux[3])
    bervs = np.linspace(-20.0, 20.0, 12)
    per_spectrum = spectrograph.merge(draws, np.broadcast_to(variance, draws.shape), bervs, wavelength_grid_aa=grid)
    alone = spectrograph.merge(draws[7], variance, bervs[7], wavelength_grid_aa=grid)
    assert np.array_equal(per_spectrum.flux[7], alone.flux) and np.array_equal(per_spectrum.n_orders[7], alone.n_orders)


def test_berv_moves_instrument_features(spectrograph):
    wave = log_lambda_grid(5495.0, 5505.0, step_kms=0.15)
    line_aa = 5500.0
    density = 100.0 * (1 - 0.8 * np.exp(-0.5 * (C_KMS * np.log(wave / line_aa) / 1.0) ** 2))
    counts = spectrograph.extract(wave, density)
    for berv in (-25.0, 0.0, 25.0):
        product = spectrograph.merge(counts, berv_kms=berv, wavelength_grid_aa=product_grid(5498.0, 5502.0))
        depth = 1 - product.flux * product.wavelength_air_aa / (100.0 * C_KMS * 0.01)   # e- per barycentric bin
        centroid = np.sum(product.wavelength_air_aa * depth) / depth.sum()
        assert C_KMS * np.log(centroid / (line_aa * (1 + berv / C_KMS))) == pytest.approx(0.0, abs=0.1)


def zero_run_edges(wavelength_aa, flux, lo=5290.0, hi=5350.0):
    """First and last zero bin of the CCD-gap run, and the last non-zero bin of the spectrum."""
    zero = np.flatnonzero((flux == 0) & (wavelength_aa > lo) & (wavelength_aa < hi))
    return wavelength_aa[zero[0]], wavelength_aa[zero[-1]], wavelength_aa[np.flatnonzero(flux)[-1]]


@pytest.mark.parametrize("which", ["s1d", "adp"])
def test_gap_edges_match_the_real_products(spectrograph, flat_extraction, harps_dir, which):
    if which == "s1d":
        flux, header = read_fits(harps_dir / S1D_FILE)
        wave = header["CRVAL1"] + header["CDELT1"] * (np.arange(flux.size) + 1 - header.get("CRPIX1", 1))
    else:
        table, header = read_fits(harps_dir / ADP_FILE, hdu=1)
        wave, flux = table["WAVE"][0], table["FLUX"][0]
    berv = header["HIERARCH ESO DRS BERV"]
    real = zero_run_edges(np.asarray(wave, float), np.asarray(flux, float))
    product = spectrograph.merge(flat_extraction[1], berv_kms=berv)
    model = zero_run_edges(product.wavelength_air_aa, product.flux)
    assert np.allclose(model, real, atol=0.021), (which, berv, real, model)


def test_real_e2ds_merges_without_steps(spectrograph, harps_dir):
    e2ds, header = read_fits(harps_dir / E2DS_FILE)
    blaze, _ = read_fits(harps_dir / BLAZE_FILE)
    gain, ron = header["HIERARCH ESO DRS CCD CONAD"], header["HIERARCH ESO DRS CCD SIGDET"]
    counts = e2ds.astype(float) * gain
    variance = np.maximum(counts, 0) + 17 * ron**2
    berv = header["HIERARCH ESO DRS BERV"]
    rows = np.arange(72)[:, None]
    merged = spectrograph.merge(counts, variance, berv, blaze=blaze)
    even = spectrograph.merge(np.where(rows % 2 == 0, counts, np.nan), variance, berv, blaze=blaze)
    odd = spectrograph.merge(np.where(rows % 2 == 1, counts, np.nan), variance, berv, blaze=blaze)
    wave = merged.wavelength_air_aa
    both = np.flatnonzero((even.n_orders > 0) & (odd.n_orders > 0))
    runs = [r for r in np.split(both, np.flatnonzero(np.diff(both) > 1) + 1) if wave[r[0]] > 4500 and r.size > 200]
    assert len(runs) > 35
    ratios, pulls = [], []
    for run in runs:
        ratios.append(even.flux[run].sum() / odd.flux[run].sum())
        for join, outside in ((run[0], np.arange(run[0] - 50, run[0])), (run[-1], np.arange(run[-1] + 1, run[-1] + 51))):
            inside = np.arange(join, join + 50) if join == run[0] else np.arange(join - 49, join + 1)
            single = even if np.all(even.n_orders[outside] > 0) else odd
            r_in = merged.flux[inside] / single.flux[inside]
            r_out = merged.flux[outside] / single.flux[outside]
            assert np.allclose(r_out, 1.0)
            pulls.append((r_in.mean() - 1.0) / (r_in.std() / np.sqrt(inside.size / 1.5)))
    ratios, pulls = np.array(ratios), np.array(pulls)
    # adjacent orders agree in their overlaps once divided by blaze and pixel width ...
    assert np.median(np.abs(ratios - 1)) < 0.006 and np.abs(ratios - 1).max() < 0.02
    # ... so the merged spectrum has no steps at the order joins beyond the noise
    assert np.sqrt(np.mean(pulls**2)) < 2.0 and np.abs(pulls).max() < 5.0


def test_bad_input_raises(spectrograph):
    wave = np.linspace(5000.0, 5010.0, 100)
    with pytest.raises(ParameterError, match="ln"):
        spectrograph.extract(wave, np.ones(100))
    with pytest.raises(ParameterError, match="orders, pixels"):
        spectrograph.merge(np.ones((10, 4096)))
    with pytest.raises(ParameterError, match="berv_kms"):
        spectrograph.merge(np.ones((72, 4096)), berv_kms=np.nan)
    with pytest.raises(ParameterError, match="calibration"):
        EchelleLayout(calibration="bogus")


def loop_merge_coverage(spectrograph, berv_kms, grid):
    """Reference for the vectorised geometry: order by order, the bins whose centres lie in the trimmed range."""
    layout = spectrograph.layout
    pixel_wave = layout.pixel_wavelength_air_aa * (1.0 + berv_kms / C_KMS)
    lo = layout.valid_pixels[:, 0] + spectrograph.merge_trim_px[0]
    hi = layout.valid_pixels[:, 1] - spectrograph.merge_trim_px[1]
    bins, rows = [], []
    for row in range(layout.n_orders):
        start, stop = np.interp([lo[row], hi[row]], np.arange(layout.n_pixels), pixel_wave[row])
        k = np.arange(np.searchsorted(grid, start, "left"), np.searchsorted(grid, stop, "right"))
        bins.append(k)
        rows.append(np.full(k.size, row))
    return np.concatenate(bins), np.concatenate(rows)


@pytest.mark.parametrize("berv_kms", [-31.7, 0.0, 18.25])
def test_merge_geometry_covers_the_bins_with_exact_edges_and_weights(spectrograph, berv_kms):
    """The vectorised geometry: the bins each order covers as the order-by-order search finds them; their edges at
    the exact pixel positions of lambda_k +- 0.005 A; weights that count a flat (and, away from the order ends, a
    sloped) density exactly."""
    layout = spectrograph.layout
    grid = product_grid()
    bins, rows = loop_merge_coverage(spectrograph, berv_kms, grid)
    geom = spectrograph._merge_geometry(berv_kms, grid)
    np.testing.assert_array_equal(geom.bins, bins)
    np.testing.assert_array_equal(geom.row_first // layout.n_pixels, rows)
    edges = bin_edges(grid)
    np.testing.assert_allclose(edges[1:] - edges[:-1], 0.01, atol=1e-9)
    for side, target in ((0, edges[bins]), (1, edges[bins + 1])):
        wave = np.empty(bins.size)
        for row in np.unique(rows):
            chosen = rows == row
            wave[chosen] = layout.wavelength_air_aa(geom.edges[side, chosen])[row]
        np.testing.assert_allclose(wave * (1.0 + berv_kms / C_KMS), target, rtol=0, atol=1e-9)
    width = geom.edges[1] - geom.edges[0]
    pixel = geom.start[:, None] + np.arange(geom.weights.shape[1]) - (rows * layout.n_pixels)[:, None]  # in the order
    np.testing.assert_allclose(geom.weights.sum(axis=1), width, rtol=0, atol=1e-12)
    interior = (pixel.min(axis=1) > layout.valid_pixels[rows, 0]) & (pixel.max(axis=1) < layout.valid_pixels[rows, 1])
    assert interior.mean() > 0.98
    moment = np.sum(geom.weights * pixel, axis=1)
    np.testing.assert_allclose(moment[interior], 0.5 * (geom.edges[1] ** 2 - geom.edges[0] ** 2)[interior],
                               rtol=0, atol=1e-8)


def test_searchsorted_left_matches_numpy():
    from simharps.instrument import _searchsorted_left

    rng = np.random.default_rng(4)
    for grid in (product_grid(), np.sort(rng.uniform(0.0, 10.0, 1000))):
        keys = np.concatenate([rng.uniform(grid[0] - 1, grid[-1] + 1, 20000), grid[::3],
                               np.sort(rng.choice(grid, 500))])
        np.testing.assert_array_equal(_searchsorted_left(grid, keys), np.searchsorted(grid, keys, "left"))


def test_shared_variance_merges_like_a_broadcast_one(spectrograph, flat_extraction):
    _, counts = flat_extraction
    rng = np.random.default_rng(8)
    variance = counts + 6 * 5.45**2
    draws = counts + rng.normal(size=(3,) + counts.shape) * np.sqrt(variance)
    row = int(np.argmin(np.abs(spectrograph.layout.pixel_wavelength_air_aa[:, 2048] - 4600.0)))
    draws[1, row, 1500:1700] = np.nan  # one spectrum loses pixels the others keep
    grid = product_grid(4500.0, 4700.0)
    shared = spectrograph.merge(draws, variance, 4.0, wavelength_grid_aa=grid)
    full = spectrograph.merge(draws, np.stack([variance] * 3), 4.0, wavelength_grid_aa=grid)
    for name in ("flux", "error", "n_orders"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(full, name))
    assert (shared.n_orders[1] < shared.n_orders[0]).any()
    with pytest.raises(ParameterError, match="variance"):
        spectrograph.merge(draws, variance[:, :100])


def test_float32_density_extracts_like_float64(spectrograph):
    wave = log_lambda_grid(5480.0, 5530.0, step_kms=0.15)
    rng = np.random.default_rng(6)
    centres = rng.uniform(5485.0, 5525.0, 60)
    depth = rng.uniform(0.05, 0.95, 60)
    velocity = C_KMS * np.log(wave[:, None] / centres)
    density = 300.0 * np.prod(1.0 - depth * np.exp(-0.5 * (velocity / 3.0) ** 2), axis=1)
    double = spectrograph.extract(wave, density)
    single = spectrograph.extract(wave, density.astype(np.float32))
    recorded = np.isfinite(double)
    np.testing.assert_array_equal(np.isfinite(single), recorded)
    assert recorded.sum() > 1000
    np.testing.assert_allclose(single[recorded], double[recorded], rtol=2e-7)
