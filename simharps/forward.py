"""The forward model: stellar -> ISM -> atmosphere -> telescope -> fibre -> instrument -> detector -> product.

Chain (one spectrum)::

    F_bary(v)  = S(v; teff, logg, [M/H], vsini, rv) * E_ISM(v) * exp(-tau_ISM(v))       barycentric frame
    n(v)       = phi(F_bary scaled to V) * A_tel * t_exp * (lambda / c)                    photons per km/s
    v -> v - BERV                                                                          observatory frame
    n_in(v)    = n(v) * T_atm(v, X) * exp(-tau_O2 X - tau_H2O PWV X) * T_tel(v) * eta_fibre(v) * eps
    N_{m,i}    = blaze_{m,i} * integral over pixel (m, i) of LSF * n_in                    e- per order pixel
    counts     = detector(N)  (Poisson, read noise over the extraction window, cosmic residuals)
    product    = merge(counts / blaze, BERV) on the 0.01 A lattice                         barycentric frame

How it is computed (``ForwardPlan``, one per product window, built once per process and reused): everything that
does not depend on the star or the conditions is fixed in advance. The working lattice is the 0.15 km/s synthesis
lattice read in the observatory frame; the order pixels sit at fixed positions on it; the telluric optical depths
of O2 and H2O are tabulated on it. Per spectrum:

1. the star: the 8 template nodes around (Teff, logg, [M/H]) are interpolated in the stellar rest frame and
   convolved once with rotation x macroturbulence whose kernel also carries the sub-step part of the shift
   rest -> observatory frame (``simharps.broadening.shifted_broadening_kernel``: built from the kernels' analytic
   Fourier transforms, exact for the band-limited template lines); the whole-step part is an index offset, so the
   star lands on the lattice without any interpolation;
2. times the telluric transmission exp(-X tau_O2 - X PWV tau_H2O) and the interstellar lines, point by point on the
   0.15 km/s lattice, before the LSF (float32, whose 6e-8 rounding is far below any other error);
3. the LSF and pixel box: one FFT convolution with the Gaussian LSF times the narrowest pixel box, a 6-point stencil
   per pixel for the rest of its box (``simharps.extraction.LatticeExtraction``);
4. the smooth factors (V-band scale, stellar continuum, photons per erg, ISM dust, La Silla continuum extinction,
   mirrors, fibre link, fibre injection) are multiplied on a 1 A grid and interpolated to the pixels, times blaze
   and pixel width: the continuum is taken constant across one LSF (its slope changes a pixel by < 3e-5);
5. noise at the pixels (``simharps.detector``), then the merge onto the product bins at the spectrum's BERV
   (``simharps.extraction.MergePlan``).

Against a brute-force chain (synthesis, shift and telluric product on a 0.03 km/s grid, exact pixel integration
with ``HarpsSpectrograph.extract``) the pixel values agree to < 3e-4 of the continuum (rms < 1e-4), most of it from
the synthesis's own step-dependent cut of far line wings (tested, ``tests/test_extraction.py``).

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
product sits on, e- per 0.01 A). ``flux_expected`` is the noiseless product (``simulate`` only; ``simulate_batch``
skips it). Since LSF(S*T) != LSF(S)*LSF(T),
``stellar * telluric * response`` differs from ``flux_expected`` inside blends.

Approximations: one grey efficiency for the spectrograph and CCD (no measured HARPS efficiency curve is
available offline); |BERV| <= 35 km/s (``simharps.extraction.BERV_LIMIT_KMS``); a static exposure (airmass, seeing and BERV at mid-exposure); no sky or moon background,
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
from scipy.interpolate import CubicSpline

from simharps.atmosphere import PWV_REFERENCE_MM, extinction_mag_per_airmass, telluric_optical_depth
from simharps.broadening import shifted_broadening_kernel
from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.errors import ParameterError, SimharpsError
from simharps.extraction import (BERV_LIMIT_KMS, LSF_HALF_WIDTH_SIGMA, LatticeExtraction, MergePlan, QuinticReader,
                                 neighbour_pairs)
from simharps.fibre import DEFAULT_ADR_RESIDUAL_FRACTION, injection_efficiency
from simharps.grids import PRODUCT_RANGE_AA, product_grid
from simharps.instrument import MODES, HarpsSpectrograph
from simharps.ism import (CA_H, CA_K, DEFAULT_ISM_B_KMS, LINE_REACH_KMS, NA_D1, NA_D2, check_extinction_parameters,
                          extinction_transmission, interstellar_optical_depth)
from simharps.kinematics import barycentric_correction, doppler_factor
from simharps.lsf import FWHM_PER_SIGMA, gaussian_kernel, overlap_save, overlap_save_samples
from simharps.photometry import BESSELL_V_WAVELENGTH_AA, photon_flux, synthetic_vmag
from simharps.sites import SITES
from simharps.stellar import TemplateGrid
from simharps.stellar.continuum import planck_flux
from simharps.stellar.synthesis import GRID_START_AA, DEFAULT_VMIC_KMS, default_vmac_kms, lattice_indices, lattice_wavelengths
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
                site="lasilla", instrument="HARPS", instrument_mode="HAM")
"""Values used for parameters a caller leaves out (``pwv_mm``: the La Silla median, ``simharps.sites``; ``vmac_kms``
None: the Valenti & Fischer 2005 relation of the star's Teff, recorded in the truth)."""

SMOOTH_STEP_AA = 1.0
"""Sampling of the smooth factors (V-band scale, photons per erg, dust, continuum extinction, optics, fibre injection),
multiplied there and interpolated once onto the simulated pixels (observatory frame)."""

VBAND_BLOCK_POINTS = 64
"""The V-band normalisation integrates means of this many lattice points (9.6 km/s at 0.15 km/s) times the smooth
factors at the block centres: the smooth factors are linear across a block to ~1e-9."""

V_BAND_WINDOW_AA = (BESSELL_V_WAVELENGTH_AA[0], 6900.0)
"""Span over which a star is normalised to its V magnitude. The Bessell passband beyond 6900 A (< 0.009) holds
0.06 % of its weight, i.e. < 0.001 mag; stopping there lets a full-range product (3781-6913 A) serve as its own
V-band spectrum and leaves room for RV shifts inside the stellar templates' 3700-7000 A."""

INJECTION_STRIDE = 10
"""The fibre injection efficiency is computed every 10th point of the 1 A grid and interpolated by a cubic spline in
between: it departs from the exact values by < 2e-6 even with the ADC off at airmass 2.9 and 0.4" seeing (tested)."""

PIXEL_MARGIN_KMS = 5.0
"""Pixels are simulated when their centres lie within the window widened by BERV_LIMIT_KMS plus this margin (the
merge interpolates between neighbouring pixel centres, < 1 km/s apart)."""

LATTICE_PAD_KMS = 3.0
"""The lattice extends this far beyond the outermost simulated pixel centres plus the LSF kernel's half-width (which
covers half a pixel box; this covers the other half and the 6-point stencil)."""

INTERSTELLAR_LINES = (NA_D2, NA_D1, CA_K, CA_H)


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


def default_spectrograph(mode="HAM"):
    """The process-wide HARPS spectrograph model of an observing mode (``simharps.instrument.MODES``)."""
    return _spectrograph(mode)


@lru_cache(maxsize=len(MODES))
def _spectrograph(mode):
    return HarpsSpectrograph(resolving_power=MODES[mode].resolving_power)


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
        raise ParameterError(f"instrument {values['instrument']!r} is not simulated; only 'HARPS' is")
    if values["instrument_mode"] not in MODES:
        raise ParameterError(f"instrument_mode must be one of {sorted(MODES)}, got {values['instrument_mode']!r}")
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


@lru_cache(maxsize=16)
def _dust_curve(law, rv_dust):
    """A(lambda) / E(B-V) of an extinction law on a 1 A grid over 3600-7200 A (air, barycentric): evaluating a
    dust_extinction law builds astropy models on every call (~7 ms), so each (law, R_V) is evaluated once and
    interpolated (the curve is smooth on 1 A scales: < 1e-6 of the transmission at E(B-V) = 1)."""
    wave_aa = np.arange(3600.0, 7201.0, 1.0)
    magnitudes = -2.5 * np.log10(extinction_transmission(wave_aa, 1.0, rv_dust, law))
    return wave_aa, magnitudes


def _dust_transmission(values, wavelength_bary_aa):
    """The ISM dust transmission of ``values`` at barycentric air wavelengths (A)."""
    check_extinction_parameters(values["ebv_mag"], values["rv_dust"], values["extinction_law"])
    wave_aa, magnitudes = _dust_curve(values["extinction_law"], float(values["rv_dust"]))
    return 10.0 ** (-0.4 * values["ebv_mag"] * np.interp(wavelength_bary_aa, wave_aa, magnitudes))


@dataclass
class _Star:
    """A star placed on a plan's lattice: broadened, shifted normalised lines (observatory-frame lattice, float32),
    the rest-frame lines it came from (for the V band), the continuum temperature and the frame factors."""

    lines_obs: np.ndarray
    rest_first: int
    rest_lines: np.ndarray
    temperature_k: float
    doppler: float
    berv_factor: float


class ForwardPlan:
    """Everything about a product window that does not depend on the star or the conditions (built once, reused).

    * the lattice: the synthesis lattice (0.15 km/s, ``simharps.stellar.synthesis``) read in the observatory frame,
      spanning the order pixels that can reach the window at any BERV, plus the LSF's half-width;
    * the telluric optical depths of O2 (airmass 1) and H2O (airmass 1, 1 mm PWV) on that lattice;
    * which pixels are simulated, their widths, blaze, and the interpolation of the smooth factors (1 A grid) onto
      them; the lattice -> pixel extraction and the pixel -> product-bin merge (``simharps.extraction``).
    """

    def __init__(self, start_aa, stop_aa, templates, spectrograph):
        layout = spectrograph.layout
        self.lsf_fwhm_kms = spectrograph.lsf_fwhm_kms
        self.grid = product_grid(start_aa, stop_aa)
        self.step_kms = templates.step_kms
        reach = (BERV_LIMIT_KMS + PIXEL_MARGIN_KMS) / C_KMS
        centres = layout.pixel_wavelength_air_aa
        pixels = (centres >= self.grid[0] * (1.0 - reach)) & (centres <= self.grid[-1] * (1.0 + reach))
        if not pixels.any():  # a window inside the CCD gap: the nearest pixels, which reach no bin (zeros as real)
            distance = np.minimum(np.abs(centres - self.grid[0]), np.abs(centres - self.grid[-1]))
            pixels = distance <= distance.min() + 1.0
        pad = np.exp((LSF_HALF_WIDTH_SIGMA * self.lsf_fwhm_kms / FWHM_PER_SIGMA + LATTICE_PAD_KMS) / C_KMS)
        low = min(centres[pixels].min(), self.grid[0] * (1.0 - reach))  # the window too, for the components
        high = max(centres[pixels].max(), self.grid[-1] * (1.0 + reach))
        self.first, last = lattice_indices(low / pad, high * pad, self.step_kms)
        self.wavelength_obs_aa = lattice_wavelengths(self.first, last, self.step_kms)
        self.extraction = LatticeExtraction(layout, np.log(self.wavelength_obs_aa[0]), self.step_kms,
                                            self.wavelength_obs_aa.size, pixels, spectrograph.lsf_fwhm_kms)
        tau = telluric_optical_depth(self.wavelength_obs_aa, 1.0, PWV_REFERENCE_MM)
        self.tau_o2 = tau["O2"].astype(np.float32)
        self.tau_h2o = tau["H2O"].astype(np.float32)
        flat = self.extraction.flat_index
        self.pixel_wave_obs_aa = centres.ravel()[flat]
        self.pixel_scale = (layout.blaze.ravel()[flat] * self.extraction.width_kms).astype(np.float32)
        self.coarse_obs_aa = _coarse_grid([self.pixel_wave_obs_aa.min(), self.pixel_wave_obs_aa.max()])
        self.telescope = telescope_transmission(self.coarse_obs_aa)
        self.extinction_mag = extinction_mag_per_airmass(self.coarse_obs_aa)
        position = (self.pixel_wave_obs_aa - self.coarse_obs_aa[0]) / SMOOTH_STEP_AA
        self.coarse_index = np.floor(position).astype(np.int64)
        self.coarse_fraction = (position - self.coarse_index).astype(np.float32)
        self.merge_plan = MergePlan(layout, self.grid, spectrograph.merge_trim_px, spectrograph.to_bin, pixels)
        row = layout.order_index(SN50_ORDER)
        centre = row * layout.n_pixels + layout.n_pixels // 2
        sn50 = np.arange(centre - SN50_CENTRAL_PIXELS, centre + SN50_CENTRAL_PIXELS)
        where = np.searchsorted(flat, sn50)
        found = (where < flat.size) & (flat[np.minimum(where, flat.size - 1)] == sn50)
        self.sn50_pixels = where[found] if found.all() else None

    def place_star(self, templates, values):
        """Interpolate, broaden and shift the star onto the observatory-frame lattice (``_Star``)."""
        doppler = doppler_factor(values["rv_kms"])
        berv_factor = 1.0 + values["berv_kms"] / C_KMS
        shift = (np.log(doppler) - np.log(berv_factor)) * C_KMS / self.step_kms
        whole = int(np.floor(shift))
        kernel, half = shifted_broadening_kernel(self.step_kms, values["vsini_kms"], values["vmac_kms"],
                                                 shift - whole)
        n = self.wavelength_obs_aa.size
        rest_first = self.first - whole - half
        lo = rest_first - templates.first
        hi = lo + n + 2 * half
        if lo < 0 or hi > templates.wavelength_air_aa.size:
            raise ParameterError(f"rv_kms={values['rv_kms']} moves the window outside the stellar templates' "
                                 f"{templates.wavelength_air_aa[0]:.0f}-{templates.wavelength_air_aa[-1]:.0f} A")
        rest_lines, ratio = templates.interpolate(values["teff_k"], values["logg_cgs"], values["mh_dex"],
                                                  slice(lo, hi))
        lines_obs = overlap_save_samples(overlap_save(rest_lines, kernel.astype(np.float32)), kernel.size, n)
        return _Star(lines_obs, rest_first, rest_lines, ratio * values["teff_k"], doppler, berv_factor)

    def interstellar_lines(self, values, star):
        """exp(-tau) of the interstellar Na I D / Ca II lines on the lattice, or None (computed near the lines only)."""
        if values["ebv_mag"] <= 0 and values["logn_caii_cm2"] is None:
            return None
        wave_bary = self.wavelength_obs_aa * star.berv_factor
        centres = np.array([line.wavelength_air_aa for line in INTERSTELLAR_LINES]) * doppler_factor(
            values["ism_rv_kms"])
        near = np.zeros(wave_bary.size, dtype=bool)
        for centre in centres:
            lo, hi = np.searchsorted(wave_bary, centre * np.exp(np.array([-1.0, 1.0]) * LINE_REACH_KMS / C_KMS))
            near[lo:hi] = True
        transmission = np.ones(wave_bary.size, dtype=np.float32)
        tau = interstellar_optical_depth(wave_bary[near], values["ebv_mag"], values["ism_rv_kms"], values["ism_b_kms"],
                                         values["logn_caii_cm2"])
        transmission[near] = np.exp(-tau)
        return transmission

    def telluric_lines(self, values):
        """O2 + H2O line transmission on the lattice (observatory frame), float32."""
        airmass = np.float32(values["airmass"])
        water = np.float32(values["airmass"] * values["pwv_mm"] / PWV_REFERENCE_MM)
        depth = self.tau_o2 * airmass
        depth += self.tau_h2o * water
        np.negative(depth, out=depth)
        return np.exp(depth, out=depth)

    def vband_scale(self, templates, values, enabled, star):
        """Factor turning the star's surface flux into f_lambda (erg/s/cm^2/A) above the atmosphere for its V = vmag.

        ``vmag`` is the observed magnitude, so it includes interstellar reddening when the ISM stage is on. The V-band
        integral uses the unbroadened rest-frame lines (broadening moves flux by < 0.1 A, which changes V by < 1e-5
        mag) at barycentric wavelengths, as means of ``VBAND_BLOCK_POINTS`` lattice points times the smooth factors at
        the block centres.
        """
        band_rest = np.array([BESSELL_V_WAVELENGTH_AA[0], V_BAND_WINDOW_AA[1]]) / star.doppler
        first, last = lattice_indices(band_rest[0], band_rest[1], self.step_kms)
        last = first + (last - first + VBAND_BLOCK_POINTS) // VBAND_BLOCK_POINTS * VBAND_BLOCK_POINTS - 1
        start = first - star.rest_first
        if first < templates.first or last > templates.last:
            raise ParameterError(f"rv_kms={values['rv_kms']} moves the V band outside the stellar templates' "
                                 f"{templates.wavelength_air_aa[0]:.0f}-{templates.wavelength_air_aa[-1]:.0f} A")
        if start >= 0 and last - star.rest_first < star.rest_lines.size:
            lines = star.rest_lines[start:start + last - first + 1]
        else:
            lines = templates.interpolate(values["teff_k"], values["logg_cgs"], values["mh_dex"],
                                          slice(first - templates.first, last - templates.first + 1))[0]
        mean_lines = lines.reshape(-1, VBAND_BLOCK_POINTS).mean(axis=1, dtype=float)
        centre = first + 0.5 * (VBAND_BLOCK_POINTS - 1) + VBAND_BLOCK_POINTS * np.arange(mean_lines.size)
        wave = GRID_START_AA * np.exp(centre * self.step_kms / C_KMS)
        flux = mean_lines * planck_flux(wave, star.temperature_k)
        wave_bary = wave * star.doppler
        if "ism" in enabled and values["ebv_mag"] > 0:
            flux = flux * _dust_transmission(values, wave_bary)
        return 10.0 ** (-0.4 * (values["vmag"] - synthetic_vmag(wave_bary, flux)))

    def smooth_response(self, values, enabled, berv_factor):
        """Product of the smooth factors on the 1 A grid: ISM dust (at the barycentric wavelengths), continuum
        extinction, telescope and fibre injection (observatory frame)."""
        factor = np.ones_like(self.coarse_obs_aa)
        if "ism" in enabled and values["ebv_mag"] > 0:
            factor *= _dust_transmission(values, self.coarse_obs_aa * berv_factor)
        if "atmosphere" in enabled:
            factor *= 10.0 ** (-0.4 * values["airmass"] * self.extinction_mag)
        if "telescope" in enabled:
            factor *= self.telescope
        if "fibre" in enabled:
            nodes = self.coarse_obs_aa[np.unique(np.append(np.arange(0, self.coarse_obs_aa.size, INJECTION_STRIDE),
                                                           self.coarse_obs_aa.size - 1))]
            efficiency = injection_efficiency(
                nodes, values["seeing_arcsec"], values["airmass"], values["fibre_offset_arcsec"],
                fibre_offset_angle_deg=values["fibre_offset_angle_deg"],
                parallactic_angle_deg=values["parallactic_angle_deg"],
                adr_residual_fraction=values["adr_residual_fraction"],
                fibre_diameter_arcsec=MODES[values["instrument_mode"]].fibre_diameter_arcsec)
            factor *= CubicSpline(nodes, efficiency)(self.coarse_obs_aa)
        return factor

    def continuum_photons(self, templates, values, enabled, star, efficiency):
        """Continuum photons per km/s entering the spectrograph at each simulated pixel (observatory frame): the
        stellar continuum scaled to V, photons per erg, area x time x efficiency and every smooth factor, evaluated on
        the 1 A grid and interpolated to the pixels."""
        coarse_bary = self.coarse_obs_aa * star.berv_factor
        scale = self.vband_scale(templates, values, enabled, star)
        continuum = planck_flux(coarse_bary / star.doppler, star.temperature_k)
        per_kms = TELESCOPE_AREA_CM2 * values["exptime_s"] * coarse_bary / C_KMS * efficiency
        smooth = (photon_flux(coarse_bary, scale * continuum) * per_kms
                  * self.smooth_response(values, enabled, star.berv_factor))
        below, above = neighbour_pairs(smooth.astype(np.float32), self.coarse_index)
        return below + self.coarse_fraction * (above - below)

    def expected(self, values, enabled, efficiency):
        """Expected photo-electrons per simulated pixel (flat, float32) and the pieces behind them."""
        templates = default_templates()
        star = self.place_star(templates, values)
        density = star.lines_obs
        ism = self.interstellar_lines(values, star) if "ism" in enabled else None
        if ism is not None:
            density = density * ism
        telluric = self.telluric_lines(values) if "atmosphere" in enabled else None
        if telluric is not None:
            density = density * telluric
        continuum_e = self.continuum_photons(templates, values, enabled, star, efficiency) * self.pixel_scale
        expected_e = continuum_e * self.extraction.pixel_means(density)
        return expected_e, continuum_e, star, ism, telluric

    def sn50(self, expected_e, variance_e):
        """Median expected S/N per extracted pixel over the centre of order 50 (None when it is not simulated)."""
        if self.sn50_pixels is None:
            return None
        return float(np.median(expected_e[self.sn50_pixels] / np.sqrt(variance_e[self.sn50_pixels])))

    def lsf_components(self, values, star, ism, telluric):
        """The stellar (with ISM lines) and telluric transmission spectra, LSF-convolved, on the product grid.

        The LSF-convolved lattice is kept every 2nd point (it has no power above that Nyquist frequency) and read at
        the bins by the quintic through the 6 nearest samples (< 1e-5 of a line's depth)."""
        lsf = gaussian_kernel(self.step_kms, self.lsf_fwhm_kms, truncate_sigma=LSF_HALF_WIDTH_SIGMA).astype(np.float32)
        half = lsf.size // 2
        position = ((np.log(self.grid / self.wavelength_obs_aa[0]) - np.log(star.berv_factor)) * C_KMS / self.step_kms
                    - half) / 2.0
        reader = QuinticReader(position)
        n_samples = (self.wavelength_obs_aa.size - lsf.size) // 2 + 1
        parts = {"telluric": np.ones(self.grid.size, dtype=np.float32)}
        for name, narrow in (("stellar", star.lines_obs * (ism if ism is not None else 1.0)), ("telluric", telluric)):
            if narrow is not None:
                smoothed = overlap_save_samples(overlap_save(narrow.astype(np.float32), lsf, 2), lsf.size, n_samples, 2)
                parts[name] = reader.read(smoothed)
        return parts


def forward_plan(start_aa, stop_aa, mode="HAM"):
    """The ForwardPlan of a product window and observing mode (cached: building one costs ~0.4 s, a full-range plan
    holds ~60 MB)."""
    return _forward_plan(float(start_aa), float(stop_aa), mode)


@lru_cache(maxsize=4)
def _forward_plan(start_aa, stop_aa, mode):
    return ForwardPlan(start_aa, stop_aa, default_templates(), default_spectrograph(mode))


@lru_cache(maxsize=1)
def reference_efficiency():
    """Grey spectrograph + CCD efficiency ``eps`` that gives the HARPS reference S/N (110 at order 50)."""
    detector = Detector(read_noise_e=DEFAULTS["read_noise_e"], gain_e_per_adu=DEFAULTS["gain_e_per_adu"])
    layout = default_spectrograph().layout
    start, stop = layout.valid_range_air_aa[layout.order_index(SN50_ORDER)]
    plan = forward_plan(float(start) + 1.0, float(stop) - 1.0)
    expected_e = plan.expected(resolve_parameters(REFERENCE), set(STAGES), efficiency=1.0)[0]
    signal_at_unit_eps = float(np.median(expected_e[plan.sn50_pixels]))
    read_variance = detector.n_window * detector.read_noise_e**2
    snr2 = REFERENCE_SNR_550**2
    signal_needed = 0.5 * (snr2 + np.sqrt(snr2**2 + 4.0 * snr2 * read_variance))
    return signal_needed / signal_at_unit_eps


def _simulate(params, seed, *, components=False, stages=None, window=None, expected_product=True):
    enabled = enabled_stages(stages)
    values = resolve_parameters(params)
    start_aa, stop_aa = _product_window(window)
    if abs(values["berv_kms"]) > BERV_LIMIT_KMS:
        raise ParameterError(f"berv_kms must lie within +-{BERV_LIMIT_KMS} km/s, got {values['berv_kms']}")
    plan = forward_plan(start_aa, stop_aa, values["instrument_mode"])
    efficiency = reference_efficiency()
    expected_e, continuum_e, star, ism, telluric = plan.expected(values, enabled, efficiency)

    detector = Detector(read_noise_e=values["read_noise_e"], gain_e_per_adu=values["gain_e_per_adu"])
    if "noise" in enabled:
        counts_e, variance_e, _ = detector.draw_e(expected_e, values["exptime_s"], np.random.default_rng(seed))
    else:
        counts_e = expected_e
        variance_e = detector.variance_e(expected_e, values["exptime_s"])
    noisy = "noise" in enabled
    rows = [counts_e] + ([expected_e] if expected_product and noisy else []) + ([continuum_e] if components else [])
    merged = plan.merge_plan.merge(np.stack(rows), variance_e, values["berv_kms"])

    truth = {name: values.get(name) for name in sorted(values)}
    truth.update(snr_550=plan.sn50(expected_e, variance_e), stages=sorted(enabled), window_start_aa=start_aa,
                 window_stop_aa=stop_aa, efficiency=efficiency)
    parts = {}
    if components:
        parts = plan.lsf_components(values, star, ism, telluric)
        parts["response"] = merged.flux[-1]
    flux_expected = (merged.flux[1] if noisy else merged.flux[0]) if expected_product else None
    return Simulation(plan.grid, merged.flux[0], merged.error, flux_expected, truth, parts)


def simulate(params, seed, *, components=False, stages=None, window=None):
    """Simulate one HARPS product; see the module docstring. ``seed``: int or numpy SeedSequence."""
    return _simulate(params, seed, components=components, stages=stages, window=window)


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
            sim = _simulate(params, seed, components=components, stages=stages, window=window,
                            expected_product=False)
        except SimharpsError as problem:
            failed.append((index, str(problem)))
            truth.append(dict(params))
            continue
        flux[index], error[index] = sim.flux, sim.error
        for name, array in sim.components.items():
            parts.setdefault(name, np.full_like(flux, np.nan))[index] = array
        truth.append(sim.truth)
    return SimulationBatch(grid, flux, error, truth, parts, failed)
