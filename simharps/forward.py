"""The forward model: stellar -> ISM -> atmosphere -> telescope -> fibre -> instrument -> detector -> product.

Chain (one spectrum)::

    F_bary(v)  = S(v; teff, logg, [M/H], vsini, rv) * E_ISM(v) * exp(-tau_ISM(v))       barycentric frame
    n(v)       = phi(F_bary scaled to V) * A_tel * t_exp * (lambda / c)                    photons per km/s
    v -> v - BERV                                                                          observatory frame
    n_in(v)    = n(v) * T_atm(v, X) * exp(-tau_O2 X - tau_H2O PWV X) * T_tel(v) * eta_fibre(v) * eps
    N_{m,i}    = blaze_{m,i} * integral over pixel (m, i) of LSF * n_in                    e- per order pixel
    counts     = detector(N)  (Poisson, read noise over the extraction window, cosmic residuals)
    product    = merge(counts / blaze, BERV) on the 0.01 A lattice                         barycentric frame

Every narrow feature (stellar, interstellar and telluric lines) is multiplied on the 0.15 km/s working grid
(float32, whose 6e-8 relative rounding is far below any other error) before the LSF; smooth factors (V-band scale,
photons per erg, ISM dust, La Silla continuum extinction, mirrors, fibre link, fibre injection) are multiplied on a
1 A grid and interpolated once. The LSF (float64 FFTs) and the pixel integration run in float64.

``eps`` is the grey spectrograph + CCD efficiency, the one number calibrated on the HARPS reference (S/N 110 per
extracted pixel at order 50, ~5565 A, for a V = 6 G2V star in 60 s at 1" seeing and airmass 1.2;
``reference_efficiency``); the wavelength dependence of the efficiency comes from the component throughputs and
the blaze, not from the calibration.

Conventions (docs/contracts.md): ``rv_kms`` relativistic Doppler; ``berv_kms`` classical DRS convention,
computed at mid-exposure from ``ra_deg``, ``dec_deg``, ``mjd_utc``, ``exptime_s`` unless given; the product is
in air wavelengths, barycentric frame, flux in blaze-corrected photo-electrons per 0.01 A bin (the DRS s1d flux
scale, see ``simharps.instrument``); ``snr_550`` is the expected S/N per extracted pixel at the centre of order
50 (DRS SN50 convention).

Components on the product grid (``components=True``): ``stellar`` (continuum-normalised stellar spectrum with ISM
lines, LSF-convolved), ``telluric`` (LSF-convolved telluric transmission, moved to the product frame), ``response``
(the expected product of the same chain without stellar, interstellar and telluric lines: the continuum the
product sits on, e- per 0.01 A). ``flux_expected`` is the noiseless product. Since LSF(S*T) != LSF(S)*LSF(T),
``stellar * telluric * response`` differs from ``flux_expected`` inside blends.

Approximations: one grey efficiency for the spectrograph and CCD (no measured HARPS efficiency curve is
available offline); a static exposure (airmass, seeing and BERV at mid-exposure); no sky or moon background,
no fibre B; the stellar model is the built-in synthesis (``simharps.stellar``).

Example
-------
>>> from simharps.forward import simulate
>>> params = dict(teff_k=5770, logg_cgs=4.44, mh_dex=0.0, vsini_kms=2.0, rv_kms=12.0, vmag=8.0, exptime_s=600,
...               ra_deg=90.1, dec_deg=-56.2, mjd_utc=58430.275, airmass=1.2, pwv_mm=3.0, seeing_arcsec=0.9)
>>> sim = simulate(params, seed=1, components=True, window=(6270.0, 6320.0))
>>> sim.flux, sim.error, sim.truth["berv_kms"], sim.components["telluric"]
"""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from simharps.atmosphere import continuum_transmission, telluric_transmission
from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.errors import ParameterError, SimharpsError
from simharps.fibre import DEFAULT_ADR_RESIDUAL_FRACTION, injection_efficiency
from simharps.grids import PRODUCT_RANGE_AA, product_grid
from simharps.instrument import HarpsSpectrograph
from simharps.ism import DEFAULT_ISM_B_KMS, extinction_transmission, interstellar_optical_depth
from simharps.kinematics import barycentric_correction
from simharps.lsf import convolve_gaussian_velocity
from simharps.photometry import BESSELL_V_WAVELENGTH_AA, photon_flux, synthetic_vmag
from simharps.sites import SITES
from simharps.stellar import TemplateGrid
from simharps.stellar.synthesis import DEFAULT_VMIC_KMS, default_vmac_kms
from simharps.telescope import telescope_transmission

STAGES = ("ism", "atmosphere", "telescope", "fibre", "noise")
"""Stages that can be switched off."""

ALWAYS_ON_STAGES = ("stellar", "instrument")
"""Stages always simulated (the stellar spectrum; LSF, orders and merging): they may be named, never switched off."""

TELESCOPE_AREA_CM2 = np.pi / 4.0 * (357.0**2 - 120.0**2)
"""ESO 3.6 m collecting area: 3.57 m primary less a ~1.2 m central obstruction (approximate: it enters only
through the calibrated efficiency ``eps``, so S/N predictions do not depend on it)."""

SN50_ORDER = 110
"""Physical order of the DRS order index 50 (0-based from the blue), centred near 5565 A."""

SN50_CENTRAL_PIXELS = 64
"""Half-width (pixels) of the central block of order 50 whose median S/N defines ``snr_550``."""

REFERENCE = dict(teff_k=5770.0, logg_cgs=4.44, mh_dex=0.0, vsini_kms=2.0, rv_kms=0.0, vmag=6.0, exptime_s=60.0,
                 seeing_arcsec=1.0, airmass=1.2, pwv_mm=3.0, berv_kms=0.0)
"""HARPS reference performance (user manual): S/N 110 per extracted pixel at 550 nm for a V = 6 G2V star in 60 s,
1" seeing, airmass 1.2 (PWV, vsini and BERV do not matter there)."""

REFERENCE_SNR_550 = 110.0

DEFAULTS = dict(logg_cgs=4.44, mh_dex=0.0, vmic_kms=DEFAULT_VMIC_KMS, vsini_kms=2.0, vmac_kms=None, rv_kms=0.0,
                ebv_mag=0.0, rv_dust=3.1, extinction_law="G23", ism_rv_kms=0.0, ism_b_kms=DEFAULT_ISM_B_KMS,
                logn_caii_cm2=None, adr_residual_fraction=DEFAULT_ADR_RESIDUAL_FRACTION, airmass=1.2,
                pwv_mm=SITES["lasilla"]["median_pwv_mm"],
                seeing_arcsec=1.0, fibre_offset_arcsec=0.0, fibre_offset_angle_deg=0.0, parallactic_angle_deg=0.0,
                read_noise_e=Detector.read_noise_e, gain_e_per_adu=Detector.gain_e_per_adu,
                site="lasilla", instrument="HARPS")
"""Values used for parameters a caller leaves out (``pwv_mm``: the La Silla median, ``simharps.sites``; ``vmac_kms``
None: the Valenti & Fischer 2005 relation of the star's Teff, recorded in the truth)."""

SMOOTH_STEP_AA = 1.0
"""Sampling of the smooth factors (V-band scale, photons per erg, dust, continuum extinction, optics, fibre injection),
multiplied there and interpolated once onto the working grid (barycentric frame)."""

UPSAMPLE_STRIDE = 64
"""The smooth factors are interpolated onto every 64th working-grid point (9.6 km/s, 0.12-0.22 A) and filled in
linearly in between: it departs from interpolating every point by < 1e-6 relative (the 1 A sampling itself is good
to ~2e-6)."""

VBAND_BLOCK_POINTS = 8
"""The V-band normalisation integrates means of this many working-grid points (1.2 km/s at 0.15 km/s)."""

V_BAND_WINDOW_AA = (BESSELL_V_WAVELENGTH_AA[0], 6900.0)
"""Span over which a star is normalised to its V magnitude. The Bessell passband beyond 6900 A (< 0.009) holds
0.06 % of its weight, i.e. < 0.001 mag; stopping there lets a full-range product (3781-6913 A) serve as its own
V-band spectrum and leaves room for RV shifts inside the stellar templates' 3700-7000 A."""

WINDOW_MARGIN_KMS = 120.0
"""Extra working-grid span on each side of a window: |BERV| <= 32 km/s plus LSF and pixel integration."""


@dataclass
class Simulation:
    """One simulated product: arrays on ``wavelength_air_aa`` (0.01 A lattice, barycentric, air)."""

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    flux_expected: np.ndarray
    truth: dict
    components: dict = field(default_factory=dict)

    def write_adp(self, path, *, overwrite=False):
        """Write the product as an ESO Phase-3 ADP file with the truth in ``HIERARCH SIMHARPS`` cards."""
        from simharps.io import write_adp

        truth = self.truth
        meta = {name: truth[name] for name in ("ra_deg", "dec_deg", "mjd_utc", "exptime_s", "berv_kms", "snr_550",
                                               "airmass", "seeing_arcsec", "pwv_mm", "site", "instrument",
                                               "gain_e_per_adu", "read_noise_e") if truth.get(name) is not None}
        meta["object"] = str(truth.get("target_id", "simharps"))
        stored_truth = {name: value for name, value in truth.items() if value is not None and name != "stages"}
        stored_truth["stages"] = ",".join(truth["stages"])
        return write_adp(path, self.wavelength_air_aa, self.flux, self.error, meta, truth=stored_truth,
                         flux_unit="electron", overwrite=overwrite)


@dataclass
class SimulationBatch:
    """Many products on one grid: ``flux``/``error`` (n, n_channels) float32, ``failed`` = [(index, message)]."""

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    truth: list
    components: dict
    failed: list


@lru_cache(maxsize=1)
def default_templates():
    """The process-wide stellar template grid (built lazily, cached on disk; see simharps.stellar.templates)."""
    return TemplateGrid()


@lru_cache(maxsize=1)
def default_spectrograph():
    """The process-wide HARPS spectrograph model (order layout and blaze loaded once)."""
    return HarpsSpectrograph()


def enabled_stages(stages):
    """The switchable stages that are on: ``stages`` is None (all), a mapping name -> bool (unnamed ones stay on) or an
    iterable of the enabled names. ParameterError for unknown names or for switching off an always-on stage."""
    if stages is None:
        return set(STAGES)
    requested = dict(stages) if isinstance(stages, dict) else {name: True for name in stages}
    unknown = set(requested) - set(STAGES) - set(ALWAYS_ON_STAGES)
    if unknown:
        raise ParameterError(f"unknown stage(s) {sorted(unknown)}; stages that can be switched are {list(STAGES)}")
    off = [name for name in ALWAYS_ON_STAGES if not requested.get(name, True)]
    if off:
        raise ParameterError(f"stage(s) {off} are always simulated and cannot be switched off")
    if isinstance(stages, dict):
        return {name for name in STAGES if requested.get(name, True)}
    return set(requested) & set(STAGES)


def resolve_parameters(params):
    """``params`` with defaults filled in and ``berv_kms`` derived; ParameterError naming what cannot be simulated."""
    values = {**DEFAULTS, **dict(params)}
    if values["vmac_kms"] is None:
        values["vmac_kms"] = default_vmac_kms(values["teff_k"]) if values.get("teff_k") is not None else None
    if values["vmic_kms"] != DEFAULT_VMIC_KMS:
        raise ParameterError(f"vmic_kms={values['vmic_kms']}: the stellar templates are built at vmic_kms="
                             f"{DEFAULT_VMIC_KMS} km/s only")
    for name in ("teff_k", "vmag", "exptime_s"):
        if values.get(name) is None:
            raise ParameterError(f"{name} is required")
    if not values["exptime_s"] > 0:
        raise ParameterError(f"exptime_s must be > 0 s, got {values['exptime_s']}")
    if not -2.0 <= values["vmag"] <= 20.0:
        raise ParameterError(f"vmag must lie in [-2, 20] mag, got {values['vmag']}")
    if not values["airmass"] >= 1.0:
        raise ParameterError(f"airmass must be >= 1, got {values['airmass']}")
    if not values["pwv_mm"] >= 0.0:
        raise ParameterError(f"pwv_mm must be >= 0 mm, got {values['pwv_mm']}")
    if not values["seeing_arcsec"] > 0.0:
        raise ParameterError(f"seeing_arcsec must be > 0 arcsec, got {values['seeing_arcsec']}")
    if values["instrument"] != "HARPS":
        raise ParameterError(f"instrument {values['instrument']!r} is not simulated; only 'HARPS' (HAM mode) is")
    if values.get("instrument_mode", "HAM") != "HAM":
        raise ParameterError(f"instrument_mode {values['instrument_mode']!r} is not simulated yet; only 'HAM' is")
    if values.get("fibre_era", "pre2015") != "pre2015":
        raise ParameterError(f"fibre_era {values['fibre_era']!r} is not simulated yet: the order layout and blaze are "
                             "those of the 2003 calibration ('pre2015')")
    if values.get("berv_kms") is None:
        missing = [name for name in ("ra_deg", "dec_deg", "mjd_utc") if values.get(name) is None]
        if missing:
            raise ParameterError(f"berv_kms is derived from ra_deg, dec_deg and mjd_utc; missing {missing}")
        values["berv_kms"] = float(barycentric_correction(values["ra_deg"], values["dec_deg"], values["mjd_utc"],
                                                          values["exptime_s"], site=values["site"]))
    return values


def _product_window(window):
    if window is None:
        return PRODUCT_RANGE_AA
    start, stop = float(window[0]), float(window[1])
    if not PRODUCT_RANGE_AA[0] <= start < stop <= PRODUCT_RANGE_AA[1]:
        raise ParameterError(f"window=({start}, {stop}) must lie within {PRODUCT_RANGE_AA[0]}-{PRODUCT_RANGE_AA[1]} A")
    return start, stop


def _coarse_grid(wavelength_aa):
    """A ``SMOOTH_STEP_AA`` grid from one step below to beyond the end of ``wavelength_aa``."""
    return np.arange(wavelength_aa[0] - SMOOTH_STEP_AA, wavelength_aa[-1] + 2 * SMOOTH_STEP_AA, SMOOTH_STEP_AA)


def _smooth(wavelength_aa, function):
    """Evaluate a smooth factor on a 1 A grid spanning ``wavelength_aa`` and interpolate it there."""
    coarse = _coarse_grid(wavelength_aa)
    return np.interp(wavelength_aa, coarse, function(coarse))


def _interpolate_smooth(wavelength_aa, coarse_aa, values):
    """``np.interp(wavelength_aa, coarse_aa, values)`` as float32 on a long grid, computed at every
    ``UPSAMPLE_STRIDE``-th point (and the last) and filled in linearly in grid index between them."""
    n = wavelength_aa.size
    full = (n - 1) // UPSAMPLE_STRIDE
    nodes = np.interp(wavelength_aa[np.append(np.arange(0, n - 1, UPSAMPLE_STRIDE), n - 1)], coarse_aa, values)
    nodes = nodes.astype(np.float32)
    step = np.arange(UPSAMPLE_STRIDE, dtype=np.float32) / np.float32(UPSAMPLE_STRIDE)
    head = nodes[:full, None] + (nodes[1:full + 1] - nodes[:full])[:, None] * step
    rest = n - full * UPSAMPLE_STRIDE
    tail_step = np.arange(rest, dtype=np.float32) / np.float32(max(rest - 1, 1))
    tail = nodes[full] + (nodes[-1] - nodes[full]) * tail_step
    return np.concatenate([head.ravel(), tail])


def _dust_transmission(values):
    """The ISM dust transmission of ``values`` as a function of barycentric air wavelength (A)."""
    return lambda wave_aa: extinction_transmission(wave_aa, values["ebv_mag"], values["rv_dust"],
                                                   values["extinction_law"])


def _block_means(wavelength_aa, flux, block=VBAND_BLOCK_POINTS):
    """(wavelength, flux) as means of ``block`` consecutive points; the end points and a remainder shorter than a
    block are kept as they are, so the span is unchanged."""
    n = (wavelength_aa.size - 2) // block * block
    weights = np.full(block, 1.0 / block)
    return tuple(np.concatenate([values[:1], values[1:n + 1].reshape(-1, block).astype(float) @ weights,
                                 values[n + 1:]]) for values in (wavelength_aa, flux))


def _vband_scale(templates, values, enabled, star):
    """Factor turning the star's surface flux into f_lambda (erg/s/cm^2/A) above the atmosphere for its V = vmag.

    ``vmag`` is the observed magnitude, so it includes interstellar reddening when the ISM stage is on. The V-band
    integral runs over the passband (from the last point below 4700 A, where the passband is zero) on means of
    ``VBAND_BLOCK_POINTS`` working-grid points, which changes the scale by < 1e-7.
    """
    band = V_BAND_WINDOW_AA
    covers = star.wavelength_air_aa[0] <= band[0] and star.wavelength_air_aa[-1] >= band[1]
    source = star if covers else templates.spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"],
                                                    rv_kms=values["rv_kms"], window=band)
    first = max(int(np.searchsorted(source.wavelength_air_aa, BESSELL_V_WAVELENGTH_AA[0], "right")) - 1, 0)
    wave, flux = _block_means(source.wavelength_air_aa[first:], source.flux[first:])
    if "ism" in enabled and values["ebv_mag"] > 0:
        flux = flux * _smooth(wave, _dust_transmission(values))
    return 10.0 ** (-0.4 * (values["vmag"] - synthetic_vmag(wave, flux)))


def _smooth_response(values, enabled, coarse_bary_aa, berv_factor):
    """Product of the smooth factors at barycentric wavelengths: ISM dust (barycentric frame), continuum extinction,
    telescope and fibre injection (observatory frame, at ``coarse_bary_aa / berv_factor``)."""
    factor = np.ones_like(coarse_bary_aa)
    if "ism" in enabled and values["ebv_mag"] > 0:
        factor *= _dust_transmission(values)(coarse_bary_aa)
    coarse_obs = coarse_bary_aa / berv_factor
    if "atmosphere" in enabled:
        factor *= continuum_transmission(coarse_obs, values["airmass"])
    if "telescope" in enabled:
        factor *= telescope_transmission(coarse_obs)
    if "fibre" in enabled:
        factor *= injection_efficiency(
            coarse_obs, values["seeing_arcsec"], values["airmass"], values["fibre_offset_arcsec"],
            fibre_offset_angle_deg=values["fibre_offset_angle_deg"],
            parallactic_angle_deg=values["parallactic_angle_deg"], adr_residual_fraction=values["adr_residual_fraction"])
    return factor


def _photons_at_spectrograph(values, enabled, templates, start_aa, stop_aa, efficiency):
    """Photon densities per km/s entering the spectrograph (observatory frame) and the truth components' pieces.

    Returns the observatory-frame grid, the continuum photon density (float32), the stellar + interstellar lines
    (continuum-normalised, float32), the telluric transmission (float32) and the grid step (km/s). Everything smooth
    (V-band scale, photons per erg, collecting area x time x efficiency, the smooth factors) is multiplied on a
    ``SMOOTH_STEP_AA`` grid and interpolated once onto the working grid.
    """
    berv_factor = 1.0 + values["berv_kms"] / C_KMS
    star = templates.spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"], vsini_kms=values["vsini_kms"],
                              vmac_kms=values["vmac_kms"], rv_kms=values["rv_kms"],
                              window=(start_aa * berv_factor, stop_aa * berv_factor))
    wave_bary = star.wavelength_air_aa
    lines = star.normalised
    if "ism" in enabled and (values["ebv_mag"] > 0 or values["logn_caii_cm2"] is not None):
        tau_ism = interstellar_optical_depth(wave_bary, values["ebv_mag"], values["ism_rv_kms"], values["ism_b_kms"],
                                             values["logn_caii_cm2"])
        lines = lines * np.exp(-tau_ism.astype(np.float32))

    coarse = _coarse_grid(wave_bary)
    per_kms = TELESCOPE_AREA_CM2 * values["exptime_s"] * coarse / C_KMS * efficiency
    scale = _vband_scale(templates, values, enabled, star)
    smooth = photon_flux(coarse, scale) * per_kms * _smooth_response(values, enabled, coarse, berv_factor)
    continuum_photons = star.continuum * _interpolate_smooth(wave_bary, coarse, smooth)

    wave_obs = wave_bary / berv_factor
    if "atmosphere" in enabled:
        telluric = telluric_transmission(wave_obs, values["airmass"], values["pwv_mm"])
    else:
        telluric = np.ones(wave_obs.shape, dtype=np.float32)
    return wave_obs, continuum_photons, lines, telluric, star.step_kms


def _sn50(expected_e, variance_e, layout):
    row = layout.order_index(SN50_ORDER)
    centre = layout.n_pixels // 2
    block = slice(centre - SN50_CENTRAL_PIXELS, centre + SN50_CENTRAL_PIXELS)
    ratio = expected_e[row, block] / np.sqrt(variance_e[row, block])
    return float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else None


def _expected_chain(values, enabled, start_aa, stop_aa, efficiency):
    templates = default_templates()
    spectrograph = default_spectrograph()
    wave_obs, continuum, lines, telluric, step_kms = _photons_at_spectrograph(
        values, enabled, templates, start_aa, stop_aa, efficiency)
    expected_e = spectrograph.extract(wave_obs, continuum * lines * telluric)
    return wave_obs, continuum, lines, telluric, step_kms, expected_e


@lru_cache(maxsize=1)
def reference_efficiency():
    """Grey spectrograph + CCD efficiency ``eps`` that gives the HARPS reference S/N (110 at order 50)."""
    detector = Detector(read_noise_e=DEFAULTS["read_noise_e"], gain_e_per_adu=DEFAULTS["gain_e_per_adu"])
    layout = default_spectrograph().layout
    row = layout.order_index(SN50_ORDER)
    start, stop = layout.valid_range_air_aa[row]
    values = resolve_parameters(REFERENCE)
    expected_e = _expected_chain(values, set(STAGES), start + 1.0, stop - 1.0, efficiency=1.0)[-1]
    centre = layout.n_pixels // 2
    signal_at_unit_eps = float(np.nanmedian(expected_e[row, centre - SN50_CENTRAL_PIXELS:centre + SN50_CENTRAL_PIXELS]))
    read_variance = detector.n_window * detector.read_noise_e**2
    snr2 = REFERENCE_SNR_550**2
    signal_needed = 0.5 * (snr2 + np.sqrt(snr2**2 + 4.0 * snr2 * read_variance))
    return signal_needed / signal_at_unit_eps


def simulate(params, seed, *, components=False, stages=None, window=None):
    """Simulate one HARPS product; see the module docstring. ``seed``: int or numpy SeedSequence."""
    enabled = enabled_stages(stages)
    values = resolve_parameters(params)
    start_aa, stop_aa = _product_window(window)
    margin = WINDOW_MARGIN_KMS / C_KMS
    efficiency = reference_efficiency()
    wave_obs, continuum, lines, telluric, step_kms, expected_e = _expected_chain(
        values, enabled, start_aa * (1 - margin), stop_aa * (1 + margin), efficiency)

    spectrograph = default_spectrograph()
    detector = Detector(read_noise_e=values["read_noise_e"], gain_e_per_adu=values["gain_e_per_adu"])
    recorded = np.isfinite(expected_e)
    expected_filled = np.where(recorded, expected_e, 0.0)
    variance_e = np.where(recorded, detector.variance_e(expected_filled, values["exptime_s"]), np.nan)
    if "noise" in enabled:
        rng = np.random.default_rng(seed)
        counts_adu, _, _ = detector.draw(expected_filled, values["exptime_s"], rng)
        counts_e = np.where(recorded, counts_adu * detector.gain_e_per_adu, np.nan)
    else:
        counts_e = expected_e

    grid = product_grid(start_aa, stop_aa)
    merged = spectrograph.merge(np.stack([counts_e, expected_e]), variance_e, values["berv_kms"],
                                wavelength_grid_aa=grid)

    truth = {name: values.get(name) for name in sorted(values)}
    truth.update(snr_550=_sn50(expected_e, variance_e, spectrograph.layout), stages=sorted(enabled),
                 window_start_aa=start_aa, window_stop_aa=stop_aa, efficiency=efficiency)

    parts = {}
    if components:
        berv_factor = 1.0 + values["berv_kms"] / C_KMS
        fwhm_kms = spectrograph.lsf_fwhm_kms
        wave_bary = wave_obs * berv_factor
        for name, narrow in (("stellar", lines), ("telluric", telluric)):
            smoothed = convolve_gaussian_velocity(narrow.astype(float), step_kms, fwhm_kms, method="fft")
            parts[name] = np.interp(grid, wave_bary, smoothed)
        smooth_e = spectrograph.extract(wave_obs, continuum)
        parts["response"] = spectrograph.merge(smooth_e, variance_e, values["berv_kms"], wavelength_grid_aa=grid).flux
        parts = {name: array.astype(np.float32) for name, array in parts.items()}

    return Simulation(grid, merged.flux[0].astype(np.float32), merged.error[0].astype(np.float32),
                      merged.flux[1].astype(np.float32), truth, parts)


def simulate_batch(params_list, seeds, *, components=False, stages=None, window=None):
    """Simulate many products on one grid; a spectrum that fails is reported in ``failed``, never fatal."""
    params_list = list(params_list)
    seeds = list(seeds)
    if len(seeds) != len(params_list):
        raise ParameterError(f"need one seed per parameter set: {len(params_list)} sets, {len(seeds)} seeds")
    grid = product_grid(*_product_window(window))
    flux = np.full((len(params_list), grid.size), np.nan, dtype=np.float32)
    error = np.full_like(flux, np.nan)
    parts, truth, failed = {}, [], []
    for index, (params, seed) in enumerate(zip(params_list, seeds)):
        try:
            sim = simulate(params, seed, components=components, stages=stages, window=window)
        except SimharpsError as problem:
            failed.append((index, str(problem)))
            truth.append(dict(params))
            continue
        flux[index], error[index] = sim.flux, sim.error
        for name, array in sim.components.items():
            parts.setdefault(name, np.full_like(flux, np.nan))[index] = array
        truth.append(sim.truth)
    return SimulationBatch(grid, flux, error, truth, parts, failed)
