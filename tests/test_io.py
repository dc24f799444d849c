"""simharps.io against the real archive files: the three 1-D layouts, e2ds, ADP write/read, specutils, bad input."""

import shutil

import numpy as np
import pytest
from astropy.io import fits

import simharps
from simharps.constants import C_KMS
from simharps.errors import HarpsFormatError, ParameterError
from simharps.grids import vacuum_to_air
from simharps.io import read_e2ds, read_harps, truth_keyword, write_adp
from simharps.io.harps import header_meta

ADP = "ADP.2014-09-16T11:04:45.123.fits"
S1D_HARPS = "HARPS.2010-09-18T23:42:36.178_s1d_A.fits"
S1D_ESPRESSO = "HD41248_1_1_S1D_A.fits"
E2DS = "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits"
WAVE_A = "HARPS.2003-12-12T21:47:59.366_wave_A.fits"
BLAZE_A = "HARPS.2003-12-12T21:42:45.093_blaze_A.fits"


@pytest.fixture(scope="module")
def adp(harps_dir):
    return read_harps(harps_dir / ADP)


@pytest.fixture(scope="module")
def s1d(harps_dir):
    return read_harps(harps_dir / S1D_HARPS)


@pytest.fixture(scope="module")
def espresso(harps_dir):
    return read_harps(harps_dir / S1D_ESPRESSO)


def _gap_start_aa(product):
    """First wavelength of the zero-filled CCD gap (longest run of zero flux between 5250 and 5400 A)."""
    window = (product.wavelength_air_aa > 5250) & (product.wavelength_air_aa < 5400)
    zero = (product.flux[window] == 0).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], zero, [0]])))
    starts, stops = edges[::2], edges[1::2]
    longest = np.argmax(stops - starts)
    assert stops[longest] - starts[longest] > 1000  # the gap is ~30 A = ~3000 bins
    return product.wavelength_air_aa[window][starts[longest]]


def test_adp_arrays_and_units(adp, harps_dir):
    wave = adp.wavelength_air_aa
    assert wave.size == adp.flux.size == 313124
    assert wave[0] == pytest.approx(3781.43, abs=1e-9) and wave[-1] == pytest.approx(6912.66, abs=1e-9)
    assert np.allclose(np.diff(wave), 0.01, atol=1e-9)
    # WAVELMIN/SPEC_BIN are in nm, WAVE in A: the reader must not mix them up
    header = adp.header
    assert wave[0] == pytest.approx(header["WAVELMIN"] * 10) and np.median(np.diff(wave)) == pytest.approx(
        header["SPEC_BIN"] * 10
    )
    assert adp.error is None  # the archive's ERR column is all NaN
    assert adp.flux.dtype == np.float32 and adp.flux.dtype.isnative
    assert adp.flux_unit == "adu" and adp.truth == {} and adp.path == harps_dir / ADP


def test_adp_meta(adp):
    meta = adp.meta
    assert meta["instrument"] == "HARPS" and meta["site"] == "lasilla" and meta["object"] == "IC4651No9122"
    assert meta["berv_kms"] == pytest.approx(-8.686, abs=5e-4)
    assert meta["snr_550"] == 30.9  # DRS SN50, not the ADP SNR
    assert meta["snr_adp"] == 23.35
    assert meta["airmass"] == 1.077 and meta["seeing_arcsec"] == 0.87 and meta["pwv_mm"] is None
    assert meta["exptime_s"] == pytest.approx(302.5016) and meta["mjd_utc"] == pytest.approx(53921.1615749)
    assert meta["ra_deg"] == pytest.approx(261.21664) and meta["dec_deg"] == pytest.approx(-49.94913)
    assert meta["gain_e_per_adu"] == 1.42 and meta["read_noise_e"] == pytest.approx(4.9375, abs=1e-4)
    assert (meta["site_lat_deg"], meta["site_lon_deg"], meta["site_elevation_m"]) == (-29.2584, -70.7345, 2400.0)
    assert meta["frame"] == "barycentric" and meta["product"] == "adp"
    assert meta["pipeline"].startswith("ESO Phase-3 ADP")


def test_adp_snr_is_median_of_order_snr(adp):
    """The documented meaning of the ADP SNR keyword: median over the 72 orders of the DRS order-centre S/N."""
    per_order = [adp.header[f"ESO DRS SPE EXT SN{i}"] for i in range(72)]
    assert np.median(per_order) == pytest.approx(adp.meta["snr_adp"], abs=0.005)


def test_drs_s1d(s1d):
    wave = s1d.wavelength_air_aa
    assert wave.size == 313114 and s1d.error is None
    assert wave[0] == pytest.approx(3781.19, abs=1e-9) and wave[-1] == pytest.approx(6912.32, abs=1e-6)
    meta = s1d.meta
    assert meta["object"] == "Gl581" and meta["snr_550"] == 40.9 and meta["snr_adp"] is None
    assert meta["berv_kms"] == pytest.approx(-23.5439, abs=1e-4)
    assert meta["airmass"] == 1.691 and meta["seeing_arcsec"] == 0.53 and meta["exptime_s"] == pytest.approx(900.0007)
    assert meta["gain_e_per_adu"] == 1.36 and meta["site"] == "lasilla"
    assert meta["pipeline"] == "HARPS DRS 3.5 s1d" and meta["product"] == "s1d"


def test_header_seeing_sentinel_reads_as_missing(shared_data):
    path = shared_data / "harps_series" / "alfcenb" / "HARPS.2012-03-24T08:37:45.581_s1d_A.fits"
    product = read_harps(path)
    assert product.header["HIERARCH ESO TEL AMBI FWHM START"] == -1.0  # ESO's "not recorded"
    assert product.meta["seeing_arcsec"] is None
    assert product.meta["airmass"] == 1.213 and product.meta["exptime_s"] > 0


@pytest.mark.parametrize("cards, expected", [
    ({"AIRM START": -1.0, "AMBI FWHM START": -1.0, "AMBI IWV START": -1.0}, (None, None, None)),
    ({"AIRM START": 0.0, "AMBI FWHM START": 0.0, "AMBI IWV START": 0.0}, (None, None, 0.0)),
    ({"AIRM START": 0.999, "AMBI FWHM START": 0.53, "AMBI IWV START": 2.5}, (0.999, 0.53, 2.5)),
])
def test_header_sentinels_on_synthetic_headers(cards, expected):
    header = fits.Header([(f"HIERARCH ESO TEL {key}", value) for key, value in cards.items()])
    meta = header_meta(header, "s1d")
    assert (meta["airmass"], meta["seeing_arcsec"], meta["pwv_mm"]) == expected


def test_gap_moves_with_berv_between_s1d_and_adp(adp, s1d):
    """Both products are barycentric: the CCD gap (fixed on the detector) sits at lambda_obs * (1 + BERV/c),
    so the gap edges of the two files differ by their BERV difference (DESIGN: 5304.16 vs 5303.90 A)."""
    expected = _gap_start_aa(s1d) * (1 + (adp.meta["berv_kms"] - s1d.meta["berv_kms"]) / C_KMS)
    assert _gap_start_aa(adp) == pytest.approx(expected, abs=0.02)


def test_one_d_products_sit_on_the_archive_lattice(adp, s1d):
    for product in (adp, s1d):
        steps = product.wavelength_air_aa / 0.01
        assert np.abs(steps - np.rint(steps)).max() < 1e-6


def test_espresso_s1d(espresso):
    meta = espresso.meta
    assert meta["instrument"] == "ESPRESSO" and meta["site"] == "paranal" and meta["object"] == "HD41248"
    assert meta["berv_kms"] == pytest.approx(3.827, abs=5e-4)
    assert meta["airmass"] == 1.195 and meta["pwv_mm"] == 0.99 and meta["seeing_arcsec"] == 0.71
    assert meta["site_elevation_m"] == 2648.0 and meta["site_lat_deg"] == pytest.approx(-24.6268)
    assert meta["snr_550"] is None and meta["gain_e_per_adu"] is None
    assert meta["product"] == "S1D" and meta["pipeline"] == "espdr 1.0.9a2 S1D"
    wave = espresso.wavelength_air_aa
    assert wave.size == 443262
    assert wave[0] == pytest.approx(3770.9314, abs=1e-4) and wave[-1] == pytest.approx(7897.8065, abs=1e-4)
    assert espresso.error is not None and np.isfinite(espresso.error).all()
    assert espresso.quality is not None and (espresso.quality == 0).sum() == 440612


def test_s1d_table_without_air_column_is_converted(espresso, tmp_path):
    """An S1D table with only the vacuum column: the reader converts it with simharps.grids.vacuum_to_air,
    which agrees with espdr's own air column to 0.00015 A (5 m/s)."""
    sl = slice(100000, 100500)
    with fits.open(espresso.path) as hdul:
        vacuum = hdul[1].data["wavelength"][sl]
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="wavelength", format="D", array=vacuum),
        fits.Column(name="flux", format="D", array=espresso.flux[sl]),
    ])
    path = tmp_path / "vacuum_only.fits"
    fits.HDUList([fits.PrimaryHDU(header=espresso.header), table]).writeto(path)
    product = read_harps(path)
    assert np.array_equal(product.wavelength_air_aa, vacuum_to_air(vacuum))
    assert np.abs(product.wavelength_air_aa - espresso.wavelength_air_aa[sl]).max() < 3e-4
    assert product.error is None and product.meta["site"] == "paranal"


def test_e2ds(harps_dir):
    e2ds = read_e2ds(harps_dir / E2DS)
    assert e2ds.flux.shape == e2ds.wavelength_air_aa.shape == e2ds.blaze.shape == (72, 4096)
    assert e2ds.wavelength_source.startswith("header polynomial")
    # float64 header polynomial vs the float32 wave_A image: equal to float32 rounding
    assert np.abs(e2ds.wavelength_air_aa - fits.getdata(harps_dir / WAVE_A)).max() < 5e-4
    # grating equation: m * lambda_centre is constant over the orders only with the right order numbers
    m_lambda = e2ds.echelle_order * e2ds.wavelength_air_aa[:, 2048]
    assert m_lambda.std() / m_lambda.mean() < 1e-3
    shifted = (e2ds.echelle_order + 1) * e2ds.wavelength_air_aa[:, 2048]
    assert shifted.std() / shifted.mean() > 1e-3
    assert np.array_equal(e2ds.echelle_order[[0, 45, 46, 71]], [161, 116, 114, 89])
    assert np.nanmax(e2ds.blaze, axis=1) == pytest.approx(1.0, abs=0.05)
    assert e2ds.meta["frame"] == "observatory" and e2ds.meta["snr_550"] == 29.1 and e2ds.meta["object"] == "Gl273"


def test_e2ds_wavelength_from_wave_file(harps_dir, tmp_path):
    header = fits.getheader(harps_dir / E2DS)
    for key in [key for key in header if key.startswith("ESO DRS CAL TH COEFF LL")]:
        del header[key]
    fits.writeto(tmp_path / E2DS, fits.getdata(harps_dir / E2DS), header)
    with pytest.raises(HarpsFormatError, match="not beside it"):
        read_e2ds(tmp_path / E2DS)
    shutil.copy(harps_dir / WAVE_A, tmp_path / WAVE_A)
    e2ds = read_e2ds(tmp_path / E2DS)
    assert e2ds.wavelength_source == WAVE_A and e2ds.blaze is None
    assert np.array_equal(e2ds.wavelength_air_aa, fits.getdata(harps_dir / WAVE_A).astype(np.float64))


AWKWARD_FLOATS = [-0.012345678901234568, 1.2345678901234568e-05, 2.2250738585072014e-308, -0.0, 0.1 + 0.2]


def _synthetic(n=4000, dtype=np.float32, seed=3):
    rng = np.random.default_rng(seed)
    wave = np.arange(500000, 500000 + n) * 0.01
    flux = (1000 + 30 * rng.standard_normal(n)).astype(dtype)
    error = np.sqrt(np.abs(flux)).astype(dtype)
    return wave, flux, error


FULL_META = {
    "instrument": "HARPS", "site": "lasilla", "object": "HD 10700 sim", "ra_deg": 26.01701388888889,
    "dec_deg": -15.937479444444444, "mjd_utc": 58000.123456789, "exptime_s": 900.0, "berv_kms": -0.012345678901234568,
    "airmass": 1.2345678901234567, "seeing_arcsec": 0.8, "pwv_mm": 3.3, "snr_550": 110.0, "snr_adp": 88.5,
    "gain_e_per_adu": 1.42, "read_noise_e": 5.45, "frame": "barycentric",
}
TRUTH = {"teff_k": 5772.0, "logg_cgs": 4.438, "mh_dex": -0.0, "rv_kms": 1.2345678901234568e-05, "target_id": "sun",
         "epoch": 3, "tellurics_on": True, "note": "x" * 150, "ebv_mag": None, "vsini_kms": 0.1 + 0.2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_write_read_round_trip(tmp_path, dtype):
    wave, flux, error = _synthetic(dtype=dtype)
    path = write_adp(tmp_path / "sim.fits", wave, flux, error, FULL_META, truth=TRUTH)
    product = read_harps(path)
    for written, read in ((wave, product.wavelength_air_aa), (flux, product.flux), (error, product.error)):
        assert read.dtype == written.dtype and read.tobytes() == written.tobytes()
    for name, value in FULL_META.items():
        assert repr(product.meta[name]) == repr(value), name
    assert product.truth.keys() == TRUTH.keys()
    assert all(repr(product.truth[k]) == repr(v) for k, v in TRUTH.items())
    assert product.meta["pipeline"] == f"ESO Phase-3 ADP (simharps {simharps.__version__})"
    assert product.meta["telescope"] == "ESO-3.6" and product.meta["site_lat_deg"] == -29.2584
    header = product.header
    assert header["PROCSOFT"] == f"simharps {simharps.__version__}" and header["PRODCATG"] == "SCIENCE.SPECTRUM"
    assert header["WAVELMIN"] == pytest.approx(wave[0] / 10) and header["SPEC_BIN"] == pytest.approx(0.001)
    assert header["DATE-OBS"] == "2017-09-04T02:57:46.667"  # MJD 58000 = 2017-09-04; 0.123456789 d = 10666.667 s
    with fits.open(path, checksum=True) as hdul:
        table = hdul["SPECTRUM"]
        assert len(table.data) == 1 and table.columns["WAVE"].unit == "Angstrom"
        assert table.header["TFORM2"] == f"{wave.size}{'E' if dtype == np.float32 else 'D'}"
        assert table.header["NELEM"] == wave.size


def test_truth_keywords(tmp_path):
    assert truth_keyword("teff_k") == "SIMHARPS TEFF_K"
    wave, flux, _ = _synthetic(n=50)
    path = write_adp(tmp_path / "t.fits", wave, flux, None, {}, truth={"teff_k": 5000.0})
    assert "HIERARCH SIMHARPS TEFF_K = 5000.0" in fits.getheader(path).tostring()
    product = read_harps(path)
    assert product.error is None and product.truth == {"teff_k": 5000.0}
    assert fits.getdata(path, 1)["ERR"][0].size == 50  # ERR written as NaN, like the archive


def test_rewriting_real_adp_reproduces_archive_data_and_meta(adp, tmp_path):
    path = write_adp(tmp_path / "copy.fits", adp.wavelength_air_aa, adp.flux, adp.error, adp.meta, header=adp.header)
    with fits.open(path) as hdul:
        assert hdul[1].header["DATASUM"] == "746786772"  # the archive file's own table checksum: same bytes
    again = read_harps(path)
    assert {k: v for k, v in again.meta.items() if k != "pipeline"} == {
        k: v for k, v in adp.meta.items() if k != "pipeline"
    }
    assert again.header["ESO DRS SPE EXT SN10"] == adp.header["ESO DRS SPE EXT SN10"]  # extra header kept


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"meta": {"teff_k": 5000.0}}, "unknown names"),
        ({"meta": {"instrument": "UVES"}}, "instrument"),
        ({"meta": {"site": "lasilla", "site_lat_deg": -24.6268, "site_lon_deg": -70.4045}}, "disagrees"),
        ({"meta": {"berv_kms": float("nan")}}, "berv_kms"),
        ({"truth": {"teff_k": float("inf")}}, "teff_k"),
        ({"truth": {"Teff": 5000.0}}, "snake case"),
        ({"truth": {"target_id": "sun  "}}, "trailing spaces"),
        ({"truth": {"spectrum": np.ones(3)}}, "spectrum"),
        ({"wavelength_air_aa": np.arange(100)[::-1] * 0.01 + 5000}, "strictly increasing"),
        ({"flux": np.full(100, np.nan)}, "no finite"),
        ({"error": -np.ones(100)}, "error"),
    ],
)
def test_write_rejects_bad_input(tmp_path, change, match):
    wave, flux, error = _synthetic(n=100)
    arguments = {"wavelength_air_aa": wave, "flux": flux, "error": error, "meta": {}, "truth": None} | change
    with pytest.raises(ParameterError, match=match):
        write_adp(tmp_path / "bad.fits", **arguments)


def test_write_refuses_to_overwrite(tmp_path):
    wave, flux, error = _synthetic(n=100)
    path = write_adp(tmp_path / "a.fits", wave, flux, error, {})
    with pytest.raises(ParameterError, match="overwrite"):
        write_adp(path, wave, flux, error, {})
    write_adp(path, wave, 2 * flux, error, {}, overwrite=True)
    assert np.array_equal(read_harps(path).flux, 2 * flux)


@pytest.mark.parametrize("name", [ADP, S1D_HARPS, S1D_ESPRESSO])
def test_specutils_loader(harps_dir, name):
    product_of = {ADP: "adp", S1D_HARPS: "s1d", S1D_ESPRESSO: "S1D"}
    from specutils import Spectrum
    from specutils.io.registers import identify_spectrum_format

    path = harps_dir / name
    # specutils' generic loaders claim these files too; the registry priority makes Spectrum.read pick simharps
    assert "simharps" in np.atleast_1d(identify_spectrum_format(str(path)))
    spectrum = Spectrum.read(path)
    assert spectrum.meta["product"] == product_of[name]
    product = read_harps(path)
    assert np.array_equal(spectrum.spectral_axis.to_value("Angstrom"), product.wavelength_air_aa)
    assert np.array_equal(spectrum.flux.value, product.flux)
    assert spectrum.meta["berv_kms"] == product.meta["berv_kms"] and spectrum.meta["header"]["OBJECT"]
    assert (spectrum.uncertainty is None) == (product.error is None)


def test_specutils_reads_written_files_and_leaves_foreign_ones(tmp_path):
    from specutils import Spectrum
    from specutils.io.registers import identify_spectrum_format

    wave, flux, error = _synthetic(n=200)
    path = write_adp(tmp_path / "sim.fits", wave, flux, error, {"berv_kms": 1.5}, truth={"teff_k": 4000.0})
    spectrum = Spectrum.read(path)
    assert spectrum.meta["truth"] == {"teff_k": 4000.0} and str(spectrum.flux.unit) == "adu"
    assert np.array_equal(spectrum.uncertainty.array, error)
    foreign = tmp_path / "uves.fits"
    header = fits.Header([("INSTRUME", "UVES"), ("PRODCATG", "SCIENCE.SPECTRUM")])
    table = fits.BinTableHDU.from_columns([fits.Column(name="WAVE", format="200D", array=wave[None]),
                                           fits.Column(name="FLUX", format="200E", array=flux[None])])
    fits.HDUList([fits.PrimaryHDU(header=header), table]).writeto(foreign)
    assert "simharps" not in np.atleast_1d(identify_spectrum_format(str(foreign)))


def _truncated(source, tmp_path, n_bytes):
    path = tmp_path / f"truncated_{n_bytes}_{source.name}"
    with open(source, "rb") as handle:
        path.write_bytes(handle.read(n_bytes) if n_bytes >= 0 else handle.read()[:n_bytes])
    return path


# cut inside the primary header, just after it, in the table data, in the last 2880-byte block (ADP: 784 data bytes
# lost; ESPRESSO: padding only), and in the s1d image
@pytest.mark.parametrize(
    ("name", "n_bytes"),
    [(ADP, 100), (ADP, 28800), (ADP, 250000), (ADP, 2630880), (ADP, -2000), (S1D_HARPS, 600000),
     (S1D_ESPRESSO, 8000000), (S1D_ESPRESSO, -30)],
)
def test_truncated_files(harps_dir, tmp_path, name, n_bytes):
    path = _truncated(harps_dir / name, tmp_path, n_bytes)
    with pytest.raises(HarpsFormatError, match="truncated|not a readable FITS file") as info:
        read_harps(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def _small_adp(tmp_path, name="small.fits"):
    wave, flux, error = _synthetic(n=100)
    return write_adp(tmp_path / name, wave, flux, error, {"object": "x"})


def test_bad_files(harps_dir, tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("not a FITS file\n" * 300)
    image = tmp_path / "uves.fits"
    fits.PrimaryHDU(data=np.ones(100, np.float32), header=fits.Header([("INSTRUME", "UVES")])).writeto(image)
    anonymous = tmp_path / "anonymous.fits"
    fits.PrimaryHDU(data=np.ones((4, 4))).writeto(anonymous)
    cases = {
        tmp_path / "missing.fits": "no such file",
        text: "not a readable FITS file",
        image: "INSTRUME = 'UVES'",
        anonymous: "no INSTRUME",
        harps_dir / WAVE_A: "calibration frame",
        harps_dir / E2DS: "read_e2ds",
    }
    for path, reason in cases.items():
        with pytest.raises(HarpsFormatError, match=reason) as info:
            read_harps(path)
        assert info.value.path == str(path)
    with pytest.raises(HarpsFormatError, match="read_harps"):
        read_e2ds(harps_dir / ADP)


def test_missing_column_and_nan_flux(tmp_path):
    source = _small_adp(tmp_path)
    with fits.open(source) as hdul:
        primary, table = hdul[0].header.copy(), hdul[1]
        columns = [column for column in table.columns if column.name != "FLUX"]
        no_flux = tmp_path / "no_flux.fits"
        fits.HDUList([fits.PrimaryHDU(header=primary), fits.BinTableHDU.from_columns(columns)]).writeto(no_flux)
    with pytest.raises(HarpsFormatError, match="no FLUX column") as info:
        read_harps(no_flux)
    assert info.value.path == str(no_flux)

    nan_flux = _small_adp(tmp_path, "nan_flux.fits")
    with fits.open(nan_flux, mode="update") as hdul:
        hdul[1].data["FLUX"][0][:] = np.nan
    with pytest.raises(HarpsFormatError, match="all NaN"):
        read_harps(nan_flux)

    shuffled = _small_adp(tmp_path, "shuffled.fits")
    with fits.open(shuffled, mode="update") as hdul:
        hdul[1].data["WAVE"][0][:] = hdul[1].data["WAVE"][0][::-1]
    with pytest.raises(HarpsFormatError, match="strictly increasing"):
        read_harps(shuffled)
