"""Telluric and continuum-extinction model: physics checks and line positions against real spectra."""

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from scipy.integrate import trapezoid
from scipy.optimize import least_squares
from scipy.signal import argrelmin

from simharps.buildtime.telluric_lbl import HitranLineList, PartitionSum, SiteAtmosphere, line_by_line_optical_depth
from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.extinction import continuum_transmission, extinction_mag_per_airmass
from simharps.grids import air_to_vacuum, log_lambda_grid, product_grid
from simharps.lsf import convolve_gaussian_velocity, fwhm_kms_from_resolution
from simharps.telluric import default_telluric_model, telluric_optical_depth, telluric_transmission

O2_B_BAND_AA = (6865.0, 6910.0)
O2_GAMMA_BAND_AA = (6275.0, 6310.0)
H2O_6500_AA = (6470.0, 6580.0)
FIT_STEP_KMS = 0.1


# ----------------------------------------------------------------------------- helpers


def fit_telluric_lines(wave_air_aa, flux, berv_kms, airmass, band_aa, *, species="O2", pwv_mm=2.0,
                       resolution=115_000, min_depth=0.3, half_window_aa=0.15, tau_tables=None, clip=3.0):
    """Fit a velocity shift and one optical-depth scale to the telluric lines of a band.

    Data are barycentric (``lambda_bary = lambda_obs (1 + BERV/c)``; pass
    ``berv_kms=0`` for observatory-frame data). Windows of +-half_window_aa
    around each model line deeper than ``min_depth`` each get their own linear
    continuum (solved linearly at every step: the stellar spectrum acts as a
    local continuum), pixels off by > clip x the robust scatter are dropped
    iteratively (stellar lines). ``species`` says which optical depth is scaled
    (O2: airmass; H2O: PWV, with O2 fixed at the header airmass). Returns the
    offset of the observed lines from the model (km/s, positive = observed
    redder), its formal error, the fitted scale, and the relative residual rms.
    """
    sel = (wave_air_aa > band_aa[0]) & (wave_air_aa < band_aa[1]) & (flux > 0)
    wave, flux = wave_air_aa[sel], flux[sel]
    wave_obs = wave / (1.0 + berv_kms / C_KMS)
    fine = log_lambda_grid(wave_obs[0] - 1.0, wave_obs[-1] + 1.0, FIT_STEP_KMS)
    tau = tau_tables(fine) if tau_tables else telluric_optical_depth(fine, 1.0, 1.0)
    fwhm_kms = fwhm_kms_from_resolution(resolution)

    def transmission(v_kms, scale):
        o2, h2o = (scale, airmass * pwv_mm) if species == "O2" else (airmass, airmass * scale)
        smooth = convolve_gaussian_velocity(np.exp(-o2 * tau["O2"] - h2o * tau["H2O"]), FIT_STEP_KMS, fwhm_kms)
        return np.interp(np.log(wave_obs), np.log(fine) + v_kms / C_KMS, smooth)

    start = [0.0, airmass if species == "O2" else pwv_mm]
    t0 = transmission(*start)
    minima = argrelmin(t0, order=3)[0]
    minima = minima[1.0 - t0[minima] > min_depth]
    window = np.full(wave.size, -1)
    for k, i in enumerate(minima):
        window[(np.abs(wave - wave[i]) < half_window_aa) & (window < 0)] = k
    groups = [np.flatnonzero(window == k) for k in np.unique(window[window >= 0])]
    use = window >= 0

    def relative_residuals(p):
        model_t = transmission(*p)
        out = np.zeros(wave.size)
        for g in groups:
            x = wave[g] - wave[g].mean()
            good = use[g]
            design = np.stack([model_t[g], model_t[g] * x], axis=1)
            coeff = np.linalg.lstsq(design[good], flux[g][good], rcond=None)[0]
            out[g] = (flux[g] - design @ coeff) / coeff[0]
        return out

    params = np.array(start)
    for _ in range(6):
        result = least_squares(lambda p: relative_residuals(p)[use], params, diff_step=1e-5)
        params = result.x
        resid = relative_residuals(params)
        sigma = 1.4826 * np.median(np.abs(resid[use]))
        new_use = (window >= 0) & (np.abs(resid) < clip * sigma)
        if np.array_equal(new_use, use):
            break
        use = new_use
    dof = use.sum() - params.size - 2 * len(groups)
    cov = np.linalg.pinv(result.jac.T @ result.jac) * np.sum(result.fun**2) / dof
    return {"v_kms": params[0], "v_err_kms": np.sqrt(cov[0, 0]), "scale": params[1],
            "rms": np.std(resid[use]), "n_lines": len(groups), "clipped": 1.0 - use.sum() / (window >= 0).sum()}


def read_1d(path):
    """(air wavelength A, flux, DRS BERV km/s, airmass at start, header) of an ADP or DRS s1d file."""
    with fits.open(path) as hdul:
        header = hdul[0].header
        if "WAVE" in (hdul[1].columns.names if len(hdul) > 1 else []):
            wave = np.asarray(hdul[1].data["WAVE"][0], dtype=float)
            flux = np.asarray(hdul[1].data["FLUX"][0], dtype=float)
        else:
            flux = np.asarray(hdul[0].data, dtype=float)
            wave = header["CRVAL1"] + header["CDELT1"] * np.arange(flux.size)
    return wave, flux, header["HIERARCH ESO DRS BERV"], header["HIERARCH ESO TEL AIRM START"], header


@pytest.fixture(scope="module")
def adp(harps_dir):
    return read_1d(harps_dir / "ADP.2014-09-16T11:04:45.123.fits")


@pytest.fixture(scope="module")
def s1d_gl581(harps_dir):
    return read_1d(harps_dir / "HARPS.2010-09-18T23:42:36.178_s1d_A.fits")


# ----------------------------------------------------------------------------- run-time model


@pytest.mark.parametrize("kwargs, name", [({"airmass": 0.99, "pwv_mm": 1.0}, "airmass"),
                                          ({"airmass": np.nan, "pwv_mm": 1.0}, "airmass"),
                                          ({"airmass": 1.2, "pwv_mm": -0.1}, "pwv_mm"),
                                          ({"airmass": [1.2, 1.5], "pwv_mm": [1.0, -2.0]}, "pwv_mm")])
def test_bad_conditions_raise_parameter_error_naming_parameter(kwargs, name):
    wave = np.linspace(6870.0, 6871.0, 11)
    with pytest.raises(ParameterError, match=name):
        telluric_transmission(wave, **kwargs)
    with pytest.raises(ParameterError, match=name):
        telluric_optical_depth(wave, **kwargs)


def test_wavelength_outside_tables_and_bad_resolution_raise():
    with pytest.raises(ParameterError, match="wavelength_air_aa"):
        telluric_transmission(np.array([6900.0, 7100.0]), 1.0, 1.0)
    with pytest.raises(ParameterError, match="resolution"):
        telluric_transmission(np.array([6900.0]), 1.0, 1.0, resolution=-5)
    with pytest.raises(ParameterError, match="wavelength_aa"):
        extinction_mag_per_airmass([3000.0])


def test_optical_depth_scales_with_airmass_and_pwv_and_batches():
    wave = log_lambda_grid(6860.0, 6900.0, 0.15)
    ref = telluric_optical_depth(wave, 1.0, 1.0)
    assert ref["O2"].max() > 5 and ref["H2O"].max() > 1e-3  # saturated B band, weak water lines
    batch = telluric_optical_depth(wave, [1.0, 2.0], [1.0, 3.0])
    np.testing.assert_allclose(batch["O2"][1], 2.0 * ref["O2"], rtol=1e-6)
    np.testing.assert_allclose(batch["H2O"][1], 6.0 * ref["H2O"], rtol=1e-6)
    np.testing.assert_allclose(telluric_transmission(wave, 2.0, 3.0),
                               np.exp(-batch["O2"][1] - batch["H2O"][1]), rtol=1e-6)
    conv = telluric_transmission(wave, [1.0, 2.0], [1.0, 3.0], resolution=115_000)
    np.testing.assert_allclose(conv[1], telluric_transmission(wave, 2.0, 3.0, resolution=115_000))


def test_native_transmission_matches_exact_vacuum_positions_over_the_harps_range():
    """Interpolated table positions and the float32 evaluation reproduce an exact float64 evaluation."""
    model = default_telluric_model()
    wave = log_lambda_grid(3770.0, 6930.0, 0.15)
    exact_position = np.log(air_to_vacuum(wave) / model.wave0_vac_aa) / (model.step_kms / C_KMS)
    position = model._grid_position(wave)
    assert np.abs(position - exact_position).max() < 1.1e-5  # table steps of 0.1 km/s

    def float64_transmission(at, airmass, pwv_mm):
        index = np.floor(at).astype(np.int64)
        frac = at - index
        depth = sum(scale * (model.tau[s][index] * (1.0 - frac) + model.tau[s][index + 1] * frac)
                    for s, scale in (("O2", airmass), ("H2O", airmass * pwv_mm)))
        return depth, np.exp(-depth)

    for airmass, pwv_mm in ((1.0, 0.5), (2.2, 12.0)):
        native = telluric_transmission(wave, airmass, pwv_mm)
        assert native.dtype == np.float32
        depth, expected = float64_transmission(position, airmass, pwv_mm)
        assert (depth > 2.0).any() and (depth < 2.0).mean() > 0.9  # both evaluation paths are exercised
        kept = expected > 1e-30
        np.testing.assert_allclose(native[kept], expected[kept], rtol=1e-6, atol=0)
        _, exact = float64_transmission(exact_position, airmass, pwv_mm)
        assert np.abs(native - exact).max() < 1e-6


def test_convolution_conserves_equivalent_width_on_any_grid():
    """The LSF redistributes absorption: the band's equivalent width survives convolution and regridding."""
    fine = log_lambda_grid(6862.0, 6925.0, 0.05)
    native = telluric_transmission(fine, 1.3, 2.0)
    ew_native = trapezoid(1.0 - native, fine)
    coarse = product_grid(6862.0, 6925.0)
    for wave in (fine, coarse):
        smooth = telluric_transmission(wave, 1.3, 2.0, resolution=115_000)
        assert abs(trapezoid(1.0 - smooth, wave) / ew_native - 1.0) < 0.005
        assert smooth.min() > native.min() + 0.01  # saturated cores are filled in by the LSF
    assert 3.0 < ew_native < 8.0  # A; the B band at airmass 1.3 absorbs several A in all


def test_run_time_never_imports_the_build_time_line_by_line_code():
    code = ("import sys, simharps.forward, simharps.ingest.telluric\n"
            "print(sorted(m for m in sys.modules if m.startswith('simharps.buildtime')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


# ----------------------------------------------------------------------------- line-by-line physics


def test_intensity_at_reference_temperature_is_identity_and_hot_lines_grow(shared_data):
    hitran = shared_data / "hitran"
    lines = HitranLineList.from_par(hitran / "O2_3750_6950.par.gz")
    qsum = PartitionSum(hitran / "O2_QT.txt")
    assert lines.wavenumber_cm.size == 207
    np.testing.assert_allclose(lines.intensity_at(296.0, qsum), lines.intensity, rtol=1e-12)
    warm, cold = lines.intensity_at(300.0, qsum), lines.intensity_at(220.0, qsum)
    high = lines.lower_energy_cm > 1000.0
    assert np.all(cold[high] < lines.intensity[high]) and np.all(warm[high] > lines.intensity[high])


def test_table_area_equals_column_times_line_intensity(shared_data):
    """Integral of tau over wavenumber in the B band = sum over layers and lines of N_j S_i(T_j)."""
    hitran = shared_data / "hitran"
    lines = HitranLineList.from_par(hitran / "O2_3750_6950.par.gz")
    qsum = PartitionSum(hitran / "O2_QT.txt")
    temperature, _, _, column = SiteAtmosphere().layers("O2")
    in_band = (lines.wavenumber_cm > 1e8 / 6935.0) & (lines.wavenumber_cm < 1e8 / 6865.0)
    expected = sum(n * lines.intensity_at(t, qsum)[in_band].sum() for t, n in zip(temperature, column))
    model = default_telluric_model()
    sel = (model.wavelength_vac_aa > 6855.0) & (model.wavelength_vac_aa < 6944.0)
    wavenumber = 1e8 / model.wavelength_vac_aa[sel]
    area = -trapezoid(model.tau["O2"][sel], wavenumber)
    assert abs(area / expected - 1.0) < 0.01


def test_site_atmosphere_matches_la_silla_and_pwv_definition():
    atmosphere = SiteAtmosphere()
    temperature_k, pressure_pa = atmosphere.temperature_pressure(2.4)
    assert abs(pressure_pa - 772e2) < 1.0 and abs(temperature_k - 283.15) < 0.01
    assert abs(atmosphere.temperature_pressure(11.0)[0] - 216.8) < 0.5  # US 1976 tropopause
    _, _, _, o2_column = atmosphere.layers("O2")
    # O2 column = 0.2095 x p / (m_air g): 3.44e24 cm^-2 at 772 hPa
    assert abs(o2_column.sum() / 3.44e24 - 1.0) < 0.01
    _, _, _, h2o_column = atmosphere.layers("H2O")
    assert abs(h2o_column.sum() * 18.0106 * 1.66054e-24 - 0.1) < 1e-4  # 1 mm PWV = 0.1 g cm^-2


# ----------------------------------------------------------------------------- continuum extinction


def test_extinction_table_is_the_la_silla_curve(shared_data):
    source = np.loadtxt(shared_data / "site" / "lasilla_extinction.dat")
    np.testing.assert_allclose(extinction_mag_per_airmass(source[:, 0]), source[:, 1], atol=1e-12)


def test_extinction_is_rayleigh_at_site_pressure_plus_small_ozone_aerosol_term():
    wave = np.linspace(3781.0, 6913.0, 200)
    lam_um = wave / 1e4
    # Rayleigh optical depth (Hansen & Travis 1974, Eq. 2.29) scaled to 772 hPa, in mag
    rayleigh_mag = 1.0857 * 0.008569 * lam_um**-4 * (1 + 0.0113 * lam_um**-2 + 0.00013 * lam_um**-4) * 772 / 1013.25
    excess = extinction_mag_per_airmass(wave) - rayleigh_mag
    assert excess.min() > -0.01 and excess.max() < 0.06
    assert 5500 < wave[np.argmax(excess)] < 6500  # the ozone Chappuis band peaks near 6000 A
    np.testing.assert_allclose(continuum_transmission(wave, 2.0),
                               10 ** (-0.8 * extinction_mag_per_airmass(wave)), rtol=1e-12)
    assert continuum_transmission(wave, [1.0, 1.5, 2.0]).shape == (3, wave.size)


# ----------------------------------------------------------------------------- real spectra


def test_o2_b_band_lines_up_with_adp_and_residuals_reach_noise(adp):
    wave, flux, berv_kms, airmass, header = adp
    fit = fit_telluric_lines(wave, flux, berv_kms, airmass, O2_B_BAND_AA)
    print(f"O2 B band, ADP: v = {fit['v_kms'] * 1000:+.1f} +- {fit['v_err_kms'] * 1000:.1f} m/s")
    assert abs(fit["v_kms"]) < 0.055, fit  # measured +0.027 +- 0.006 km/s (README: +27 m/s)
    assert abs(fit["scale"] / airmass - 1.0) < 0.1, fit
    noise = 1.0 / header["HIERARCH ESO DRS SPE EXT SN71"]  # per extracted pixel, last order
    assert fit["rms"] < 1.3 * noise, (fit, noise)


def test_o2_gamma_band_lines_up_with_adp(adp):
    wave, flux, berv_kms, airmass, _ = adp
    fit = fit_telluric_lines(wave, flux, berv_kms, airmass, O2_GAMMA_BAND_AA, min_depth=0.15)
    print(f"O2 gamma band, ADP: v = {fit['v_kms'] * 1000:+.1f} +- {fit['v_err_kms'] * 1000:.1f} m/s")
    assert abs(fit["v_kms"]) < 0.14 and fit["n_lines"] > 20, fit  # measured -0.069 +- 0.028 km/s (README: -69 m/s)


@pytest.mark.parametrize("name, band, min_depth, bound_kms", [
    ("B", O2_B_BAND_AA, 0.3, 0.1),  # measured +0.053 +- 0.014 km/s (README: +53 m/s)
    ("gamma", O2_GAMMA_BAND_AA, 0.15, 0.3),  # measured -0.198 +- 0.046 km/s (README: -198 m/s; M3 dwarf blends)
])
def test_o2_bands_line_up_with_gl581_s1d(s1d_gl581, name, band, min_depth, bound_kms):
    wave, flux, berv_kms, airmass, _ = s1d_gl581
    fit = fit_telluric_lines(wave, flux, berv_kms, airmass, band, min_depth=min_depth)
    print(f"O2 {name} band, Gl581 s1d: v = {fit['v_kms'] * 1000:+.1f} +- {fit['v_err_kms'] * 1000:.1f} m/s")
    assert abs(fit["v_kms"]) < bound_kms, fit


def test_o2_b_band_at_zero_shift_in_e2ds_observatory_frame(harps_dir):
    wave = fits.getdata(harps_dir / "HARPS.2003-12-12T21:47:59.366_wave_A.fits").astype(float)
    flux = fits.getdata(harps_dir / "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits").astype(float)
    airmass = fits.getheader(harps_dir / "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits")["HIERARCH ESO TEL AIRM START"]
    fit = fit_telluric_lines(wave[71], flux[71], 0.0, airmass, O2_B_BAND_AA)
    print(f"O2 B band, Gl273 e2ds (observatory frame): v = {fit['v_kms'] * 1000:+.1f} +- "
          f"{fit['v_err_kms'] * 1000:.1f} m/s")
    assert abs(fit["v_kms"]) < 0.15, fit  # measured -0.077 +- 0.024 km/s (README: -77 m/s)


@pytest.fixture(scope="module")
def espresso(harps_dir):
    with fits.open(harps_dir / "HD41248_1_1_S1D_A.fits") as hdul:
        header, table = hdul[0].header, hdul[1].data
        return (np.asarray(table["wavelength_air"], float), np.asarray(table["flux"], float),
                np.asarray(table["error"], float), header)


def test_h2o_lines_and_pwv_against_espresso_radiometer(espresso):
    """Water lines at 6500 A in the G2V ESPRESSO spectrum: position, PWV vs the header IWV, residual vs error."""
    wave, flux, error, header = espresso
    berv_kms, airmass = header["HIERARCH ESO QC BERV"], header["HIERARCH ESO TEL3 AIRM START"]
    fit = fit_telluric_lines(wave, flux, berv_kms, airmass, H2O_6500_AA, species="H2O", pwv_mm=1.0,
                             resolution=140_000, min_depth=0.02, half_window_aa=0.2)
    assert abs(fit["v_kms"]) < 0.15, fit  # measured +0.01 +- 0.03 km/s
    iwv_mm = header["HIERARCH ESO TEL3 AMBI IWV START"]
    assert 0.7 < fit["scale"] / iwv_mm < 1.5, fit  # fitted 1.2 mm vs radiometer 0.99 mm
    sel = (wave > H2O_6500_AA[0]) & (wave < H2O_6500_AA[1])
    assert fit["rms"] < 1.3 * np.median(error[sel] / flux[sel]), fit


def test_pressure_shifts_bring_b_band_onto_espresso_lines(espresso, shared_data):
    """Without delta_air the model lines sit blue of the observed ones by > 0.05 km/s; with it < 0.02 km/s."""
    wave, flux, _, header = espresso
    berv_kms, airmass = header["HIERARCH ESO QC BERV"], header["HIERARCH ESO TEL3 AIRM START"]
    hitran = shared_data / "hitran"
    lines = HitranLineList.from_par(hitran / "O2_3750_6950.par.gz")
    lines.delta_air = np.zeros_like(lines.delta_air)
    qsum, layers = PartitionSum(hitran / "O2_QT.txt"), SiteAtmosphere().layers("O2")
    wave0_vac_aa, step_kms = 6850.0, 0.1
    n_points = int(np.log(6935.0 / wave0_vac_aa) / (step_kms / C_KMS))

    def unshifted(fine_air_aa):
        tau = line_by_line_optical_depth(lines, qsum, "O2", layers, wave0_vac_aa, step_kms, n_points)
        position = np.log(air_to_vacuum(fine_air_aa) / wave0_vac_aa) / (step_kms / C_KMS)
        return {"O2": np.interp(position, np.arange(n_points), tau), "H2O": np.zeros(fine_air_aa.size)}

    kwargs = dict(resolution=140_000, min_depth=0.3)
    with_shift = fit_telluric_lines(wave, flux, berv_kms, airmass, O2_B_BAND_AA, **kwargs)
    without = fit_telluric_lines(wave, flux, berv_kms, airmass, O2_B_BAND_AA, tau_tables=unshifted, **kwargs)
    print(f"O2 B band, ESPRESSO: v = {with_shift['v_kms'] * 1000:+.1f} +- {with_shift['v_err_kms'] * 1000:.1f} m/s "
          f"(without delta_air: {without['v_kms'] * 1000:+.1f} m/s)")
    assert abs(with_shift["v_kms"]) < 0.02, with_shift  # measured +0.010 +- 0.002 km/s (README: +10 m/s)
    assert without["v_kms"] > 0.05, without


def test_o2_gamma_band_lines_up_with_espresso(espresso):
    wave, flux, _, header = espresso
    berv_kms, airmass = header["HIERARCH ESO QC BERV"], header["HIERARCH ESO TEL3 AIRM START"]
    fit = fit_telluric_lines(wave, flux, berv_kms, airmass, O2_GAMMA_BAND_AA, resolution=140_000, min_depth=0.15)
    print(f"O2 gamma band, ESPRESSO: v = {fit['v_kms'] * 1000:+.1f} +- {fit['v_err_kms'] * 1000:.1f} m/s, "
          f"{fit['n_lines']} lines")
    assert abs(fit["v_kms"]) < 0.08 and fit["n_lines"] > 20, fit  # measured -0.038 +- 0.004 km/s (README: -38 m/s)
