"""simharps.kinematics against the real pipeline BERVs, Wright & Eastman (2014) terms and the Doppler conventions."""

import urllib.request
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from simharps import kinematics
from simharps.constants import C_KMS, C_MS
from simharps.errors import ParameterError
from simharps.kinematics import (
    IersFallbackWarning,
    apply_rv,
    barycentric_correction,
    barycentric_correction_terms,
    barycentric_to_observatory,
    berv_inputs_from_header,
    berv_to_barycentric,
    doppler_factor,
    remove_rv,
    rv_from_doppler_factor,
    site_location,
)

REAL_FILES = [
    "ADP.2014-09-16T11:04:45.123.fits",
    "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits",
    "HARPS.2010-09-18T23:42:36.178_s1d_A.fits",
    "HD41248_1_1_S1D_A.fits",
]

GM_SUN = 1.32712440018e20  # m^3 s^-2, IAU 2009
GM_EARTH = 3.986004418e14  # m^3 s^-2, IAU 2009
AU_M = 1.495978707e11


def _pipeline_berv_kms(header):
    return float(header.get("ESO DRS BERV", header.get("ESO QC BERV")))


@pytest.fixture(scope="module")
def real_rows(harps_dir):
    """Per real file: the pipeline BERV and ours under several input conventions (differences in m/s)."""
    rows = []
    for name in REAL_FILES:
        path = harps_dir / name
        if not path.exists():
            pytest.skip(f"{path} missing")
        header = fits.getheader(path)
        pipeline_kms = _pipeline_berv_kms(header)
        inputs = berv_inputs_from_header(header)
        terms = barycentric_correction_terms(**inputs)
        no_pm = {**inputs, "pm_ra_cosdec_masyr": 0.0, "pm_dec_masyr": 0.0}
        prefix = "ESO TEL3" if "ESO TEL3 TARG PMA" in header else "ESO TEL"
        with_pm = {
            **inputs,
            "pm_ra_cosdec_masyr": 1000.0 * header[f"{prefix} TARG PMA"],
            "pm_dec_masyr": 1000.0 * header[f"{prefix} TARG PMD"],
        }
        pointing = {**no_pm, "ra_deg": header["RA"], "dec_deg": header["DEC"]}
        at_start = {**inputs, "exptime_s": 0.0}
        rows.append(
            {
                "file": name,
                "object": header["OBJECT"],
                "pipeline_kms": pipeline_kms,
                "classical_ms": (terms.berv_kms - pipeline_kms) * 1e3,
                "astropy_ms": (terms.astropy_kms - pipeline_kms) * 1e3,
                "relativistic_ms": terms.relativistic_kms * 1e3,
                "terms": terms,
                "inputs": inputs,
                "no_pm_ms": (barycentric_correction(**no_pm) - pipeline_kms) * 1e3,
                "with_pm_ms": (barycentric_correction(**with_pm) - pipeline_kms) * 1e3,
                "pointing_ms": (barycentric_correction(**pointing) - pipeline_kms) * 1e3,
                "at_start_ms": (barycentric_correction(**at_start) - pipeline_kms) * 1e3,
            }
        )
    print("\nfile                                      pipeline BERV   classical-DRS  astropy-DRS  "
          "(no PM / PM / header RA,DEC / at start) m/s")
    for r in rows:
        print(f"{r['file']:42s} {r['pipeline_kms']:+11.6f} km/s {r['classical_ms']:+8.3f}  {r['astropy_ms']:+8.3f}   "
              f"({r['no_pm_ms']:+.3f} / {r['with_pm_ms']:+.3f} / {r['pointing_ms']:+.3f} / {r['at_start_ms']:+.3f})")
    return rows


def test_classical_berv_reproduces_pipeline_headers(real_rows):
    for row in real_rows:
        print(f"{row['file']}: BERV minus pipeline BERV {row['classical_ms']:+.3f} m/s")
        assert abs(row["classical_ms"]) < 10.0, row["file"]
        assert abs(row["classical_ms"]) < 1.0, f"{row['file']}: {row['classical_ms']:.3f} m/s"


def test_astropy_full_correction_sits_above_pipeline_by_relativistic_terms(real_rows):
    for row in real_rows:
        assert 3.4 < row["astropy_ms"] < 7.0, row["file"]
        assert abs(row["astropy_ms"] - row["classical_ms"] - row["relativistic_ms"]) < 1e-3, row["file"]


def test_pointing_coordinates_are_worse_but_within_bound(real_rows):
    """Header RA/DEC (telescope pointing, up to ~18" from the catalogue position) still give < 10 m/s."""
    for row in real_rows:
        assert abs(row["pointing_ms"]) < 10.0, row["file"]
    assert max(abs(r["pointing_ms"]) for r in real_rows) > max(abs(r["classical_ms"]) for r in real_rows)


def test_proper_motion_convention_differs_between_pipelines(real_rows):
    """HARPS DRS 3.5 ignores proper motion (Gl581: ~13" in 10.7 yr); the ESPRESSO pipeline applies it."""
    by_object = {r["object"]: r for r in real_rows}
    gl581, hd41248 = by_object["Gl581"], by_object["HD41248"]
    assert abs(gl581["no_pm_ms"]) < abs(gl581["with_pm_ms"])
    print(f"Gl581 (HARPS DRS) BERV minus pipeline: {gl581['no_pm_ms']:+.3f} m/s without PM, "
          f"{gl581['with_pm_ms']:+.3f} m/s with PM")
    print(f"HD41248 (ESPRESSO QC BERV) BERV minus pipeline: {hd41248['with_pm_ms']:+.3f} m/s with PM, "
          f"{hd41248['no_pm_ms']:+.3f} m/s without PM")
    assert abs(gl581["no_pm_ms"]) < abs(gl581["with_pm_ms"])
    assert abs(hd41248["with_pm_ms"]) < abs(hd41248["no_pm_ms"])
    assert abs(hd41248["with_pm_ms"]) < 0.07  # measured -0.034 m/s (README: -0.03 m/s)


def test_mid_exposure_not_start(real_rows):
    for row in real_rows:
        assert abs(row["classical_ms"]) < abs(row["at_start_ms"]), row["file"]


def _earth_sun_distance_au(jd):
    """Low-precision solar distance (Astronomical Almanac), independent of astropy/ERFA."""
    g = np.radians(357.529 + 0.98560028 * (jd - 2451545.0))
    return 1.00014 - 0.01671 * np.cos(g) - 0.00014 * np.cos(2 * g)


def _site_geocentric_radius_m(lat_deg, height_m):
    a, f = 6378137.0, 1 / 298.257223563
    phi = np.radians(lat_deg)
    b = a * (1 - f)
    num = (a**2 * np.cos(phi)) ** 2 + (b**2 * np.sin(phi)) ** 2
    den = (a * np.cos(phi)) ** 2 + (b * np.sin(phi)) ** 2
    return np.sqrt(num / den) + height_m


def test_relativistic_terms_match_wright_eastman_estimate(real_rows):
    """astropy - classical = v^2/2c + G M_sun/(c r) + G M_E/(c R_site), from independent formulas (vis-viva)."""
    for row in real_rows:
        terms = row["terms"]
        jd = terms.mjd_mid_utc + 2400000.5
        r_m = _earth_sun_distance_au(jd) * AU_M
        v2 = GM_SUN * (2.0 / r_m - 1.0 / (1.000001 * AU_M))
        lat = row["inputs"]["site"].lat.to_value(u.deg)
        height = row["inputs"]["site"].height.to_value(u.m)
        r_site_m = _site_geocentric_radius_m(lat, height)
        expected_ms = v2 / (2 * C_MS) + GM_SUN / (C_MS * r_m) + GM_EARTH / (C_MS * r_site_m)
        measured_ms = (terms.astropy_kms - terms.berv_kms) * 1e3
        print(f"{row['file']:42s} astropy-classical {measured_ms:.4f} m/s, estimate {expected_ms:.4f} m/s "
              f"(time dilation {terms.time_dilation_kms * 1e3:.4f}, gravitational {terms.gravitational_kms * 1e3:.4f})")
        assert abs(measured_ms - expected_ms) < 0.1
        assert 1.3 < terms.time_dilation_kms * 1e3 < 1.7
        assert 3.0 < terms.gravitational_kms * 1e3 < 3.3


def test_ut1_fallback_error_is_below_a_tenth_of_a_metre_per_second(real_rows):
    """Beyond the IERS table UT1-UTC is frozen; |UT1-UTC| < 0.9 s, so an error of 1.8 s bounds the effect."""
    for row in real_rows:
        inputs = row["inputs"]
        location = inputs["site"]
        time_mid = Time(row["terms"].mjd_mid_utc, format="mjd", scale="utc")
        shifted = Time(row["terms"].mjd_mid_utc, format="mjd", scale="utc")
        shifted.delta_ut1_utc = time_mid.delta_ut1_utc + 1.8
        _, v0 = location.get_gcrs_posvel(time_mid)
        _, v1 = location.get_gcrs_posvel(shifted)
        ra, dec = np.radians(inputs["ra_deg"]), np.radians(inputs["dec_deg"])
        n = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
        assert abs((v1 - v0).xyz.to_value(u.m / u.s) @ n) < 0.06


def test_offline_beyond_iers_table(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr("astropy.utils.data.download_file", no_network)
    monkeypatch.setattr("astropy.utils.iers.iers.download_file", no_network)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside = barycentric_correction(150.0, -20.0, 58000.0, 600.0)
    with pytest.warns(IersFallbackWarning):
        beyond = barycentric_correction([150.0, 150.0], -20.0, [58000.0, 66000.0], 600.0)
    assert beyond[0] == pytest.approx(inside, abs=1e-12)
    assert abs(beyond[1]) < 31.0


def test_annual_amplitude_and_ecliptic_pole():
    mjd = 58000.0 + np.arange(0.0, 366.0, 3.0)
    on_ecliptic = barycentric_correction(90.0, 23.44, mjd, site="paranal")
    pole = barycentric_correction(270.0, 66.56, mjd, site="paranal")
    assert 29.0 < on_ecliptic.max() < 30.7 and -30.7 < on_ecliptic.min() < -29.0
    assert np.abs(pole).max() < 0.5


def test_vectorised_equals_scalar_and_mid_exposure():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 6), rng.uniform(-90, 40, 6)
    mjd, exptime = rng.uniform(53000, 60000, 6), rng.uniform(0, 3600, 6)
    batch = barycentric_correction(ra, dec, mjd, exptime)
    singles = [barycentric_correction(*args) for args in zip(ra, dec, mjd, exptime)]
    assert isinstance(singles[0], float)
    np.testing.assert_allclose(batch, singles, rtol=0, atol=1e-12)
    shifted = barycentric_correction(ra, dec, mjd + exptime / 2 / 86400.0, 0.0)
    np.testing.assert_allclose(batch, shifted, rtol=0, atol=1e-9)
    grid = barycentric_correction(ra[:, None], dec[:, None], mjd[None, :3])
    assert grid.shape == (6, 3)
    np.testing.assert_allclose(grid[:, 0], barycentric_correction(ra, dec, mjd[0]), atol=1e-12)


def test_sites_and_bad_inputs():
    assert site_location("La Silla").lat.to_value(u.deg) == pytest.approx(-29.2584)
    assert site_location("paranal").height.to_value(u.m) == pytest.approx(2648.0)
    loc = site_location("lasilla")
    assert barycentric_correction(10.0, -40.0, 55000.0, site=loc) == barycentric_correction(10.0, -40.0, 55000.0)
    with pytest.raises(ParameterError, match="site"):
        site_location("mauna kea")
    with pytest.raises(ParameterError, match="dec_deg"):
        barycentric_correction(10.0, 95.0, 55000.0)
    with pytest.raises(ParameterError, match="mjd_utc"):
        barycentric_correction(10.0, 10.0, np.nan)
    with pytest.raises(ParameterError, match="header"):
        berv_inputs_from_header(fits.Header())


def test_relativistic_doppler_differs_by_17_ms_at_100_kms():
    first_order_ms = (doppler_factor(100.0) - (1.0 + 100.0 / C_KMS)) * C_MS
    assert first_order_ms == pytest.approx(100.0**2 / (2 * C_KMS) * 1e3, rel=1e-3)
    assert 16.5 < first_order_ms < 17.0
    assert doppler_factor(0.0) == 1.0
    assert doppler_factor(-50.0) * doppler_factor(50.0) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ParameterError, match="rv_kms"):
        doppler_factor(C_KMS)


def test_doppler_round_trips_and_batches():
    wave = np.linspace(3781.0, 6913.0, 1001)
    rv = np.linspace(-100.0, 100.0, 7)[:, None]
    berv = np.linspace(-30.0, 30.0, 7)[:, None]
    np.testing.assert_allclose(remove_rv(apply_rv(wave, rv), rv), np.broadcast_to(wave, (7, wave.size)), rtol=1e-14)
    np.testing.assert_allclose(rv_from_doppler_factor(doppler_factor(rv)), rv, atol=1e-9)
    np.testing.assert_allclose(barycentric_to_observatory(berv_to_barycentric(wave, berv), berv),
                               np.broadcast_to(wave, (7, wave.size)), rtol=1e-14)
    with pytest.raises(ParameterError, match="factor"):
        rv_from_doppler_factor(-1.0)


def test_inject_and_recover_rv_through_the_product_chain():
    """Star at rv -> observatory frame (-BERV) -> archive frame (+BERV).

    Stellar lines end at exactly the injected rv; telluric lines at lambda_obs * (1 + BERV/c).
    """
    rest = np.array([4500.0, 5500.0, 6500.0])
    telluric_obs = np.array([6280.0, 6870.0])
    for rv in (-100.0, -9.2, 0.0, 18.2, 100.0):
        for berv in (-23.54, 15.26):
            observed = barycentric_to_observatory(apply_rv(rest, rv), berv)
            product = berv_to_barycentric(observed, berv)
            recovered = rv_from_doppler_factor(product / rest)
            np.testing.assert_allclose(recovered, rv, atol=1e-8)
            first_order = (product / rest - 1.0) * C_KMS
            assert abs(first_order - rv).max() * 1e3 == pytest.approx(rv**2 / (2 * C_KMS) * 1e3, abs=0.01)
            np.testing.assert_allclose(berv_to_barycentric(telluric_obs, berv), telluric_obs * (1 + berv / C_KMS))


def test_iers_auto_download_is_off():
    assert kinematics.iers.conf.auto_download is False
