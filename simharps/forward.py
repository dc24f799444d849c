"""The forward model: stellar -> ISM -> atmosphere -> telescope -> fibre -> instrument -> detector -> product.

Chain (one spectrum)::

    F_bary(v)  = S(v; teff, logg, [M/H], vsini, rv) * E_ISM(v) * exp(-tau_ISM(v))       barycentric frame
    n(v)       = phi(F_bary scaled to V) * A_tel * t_exp * (lambda / c)                    photons per km/s
    v -> v - BERV                                                                          observatory frame
    n_in(v)    = n(v) * T_atm(v, X) * exp(-tau_O2 X - tau_H2O PWV X) * T_tel(v) * eta_fibre(v) * eps
    N_{m,i}    = blaze_{m,i} * integral over pixel (m, i) of LSF * n_in                    e- per order pixel
    counts     = detector(N)  (Poisson, read noise over the extraction window, cosmic residuals)
    product    = merge(counts / blaze, BERV) on the 0.01 A lattice                         barycentric frame

The stages, their order, frames and parameters are listed in ``simharps.chain`` (one module per stage in
``simharps.stages``); the parameters, units, ranges and defaults in ``simharps.parameters``. This module is the fast
engine; ``simharps.reference`` is the slow, exact one the tests compare it with.

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
no fibre B. The stellar model is the built-in synthesis unless a ``Simulator`` is given another
(``simharps.stellar.model``: a PHOENIX / FITS grid).

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

from simharps.broadening import shifted_broadening_kernel
from simharps.chain import active_factors, enabled_stages
from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.errors import ParameterError, SimharpsError
from simharps.extraction import (BERV_LIMIT_KMS, LSF_HALF_WIDTH_SIGMA, LatticeExtraction, MergePlan, QuinticReader,
                                 neighbour_pairs, uncovered_gap_aa)
from simharps.grids import PRODUCT_RANGE_AA, product_grid
from simharps.instrument import MODES, HarpsSpectrograph
from simharps.kinematics import barycentric_correction, doppler_factor
from simharps.lsf import FWHM_PER_SIGMA, gaussian_kernel, overlap_save, overlap_save_samples
from simharps.parameters import DEFAULTS, PARAMETERS, SIMULATED_FIBRE_ERAS, check_parameters
from simharps.photometry import BESSELL_V_WAVELENGTH_AA, photon_flux, synthetic_vmag
from simharps.stages import BARYCENTRIC
from simharps.stellar.model import BuiltinStellarModel
from simharps.stellar.synthesis import (DEFAULT_VMIC_KMS, GRID_START_AA, WORKING_STEP_KMS, default_vmac_kms,
                                        lattice_indices, lattice_wavelengths)

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

SMOOTH_STEP_AA = 1.0
"""Sampling of the smooth factors (V-band scale, photons per erg, the stages' smooth parts), multiplied there and
interpolated once onto the simulated pixels (observatory frame)."""

VBAND_BLOCK_POINTS = 64
"""The V-band normalisation integrates means of this many lattice points (9.6 km/s at 0.15 km/s) times the smooth
factors at the block centres: the smooth factors are linear across a block to ~1e-9."""

V_BAND_WINDOW_AA = (BESSELL_V_WAVELENGTH_AA[0], 6900.0)
"""Span over which a star is normalised to its V magnitude. The Bessell passband beyond 6900 A (< 0.009) holds
0.06 % of its weight, i.e. < 0.001 mag; stopping there lets a full-range product (3781-6913 A) serve as its own
V-band spectrum and leaves room for RV shifts inside the stellar templates' 3700-7000 A."""

PIXEL_MARGIN_KMS = 5.0
"""Pixels are simulated when their centres lie within the window widened by BERV_LIMIT_KMS plus this margin (the
merge's spline rebin reaches 4 pixels, < 4 km/s, on either side of a bin)."""

LATTICE_PAD_KMS = 3.0
"""The lattice extends this far beyond the outermost simulated pixel centres plus the LSF kernel's half-width (which
covers half a pixel box; this covers the other half and the 6-point stencil)."""


@dataclass
class Simulation:
    """One simulated product: arrays on ``wavelength_air_aa`` (0.01 A lattice, barycentric, air)."""

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    flux_expected: np.ndarray
    truth: dict
    components: dict = field(default_factory=dict)
    order_snr: np.ndarray = None

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
def default_stellar_model():
    """The process-wide built-in stellar model (templates built lazily, cached on disk)."""
    return BuiltinStellarModel()


def default_spectrograph(mode="HAM"):
    """The process-wide HARPS spectrograph model of an observing mode (``simharps.instrument.MODES``)."""
    return _spectrograph(mode)


@lru_cache(maxsize=len(MODES))
def _spectrograph(mode):
    return HarpsSpectrograph(resolving_power=MODES[mode].resolving_power)


def resolve_parameters(params):
    """``params`` checked against the parameter table (unknown names, non-finite values, ranges: ParameterError with
    the nearest valid name), defaults filled in, ``vmac_kms`` and ``berv_kms`` derived."""
    check_parameters(params)
    values = {**DEFAULTS, **{name: value for name, value in dict(params).items() if value is not None}}
    missing = [name for name, parameter in PARAMETERS.items() if parameter.required and name not in values]
    if missing:
        raise ParameterError(f"{', '.join(missing)} required")
    if values["vmac_kms"] is None:
        values["vmac_kms"] = default_vmac_kms(values["teff_k"])
    if values["vmic_kms"] != DEFAULT_VMIC_KMS:
        raise ParameterError(f"vmic_kms={values['vmic_kms']}: the stellar templates are built at vmic_kms="
                             f"{DEFAULT_VMIC_KMS} km/s only")
    if values["fibre_era"] not in SIMULATED_FIBRE_ERAS:
        raise ParameterError(f"fibre_era {values['fibre_era']!r} is not simulated yet: the order layout and blaze are "
                             "those of the 2003 calibration ('pre2015')")
    if values.get("berv_kms") is None:
        missing = [name for name in ("ra_deg", "dec_deg", "mjd_utc") if values.get(name) is None]
        if missing:
            raise ParameterError(f"berv_kms is derived from ra_deg, dec_deg and mjd_utc; missing {missing}")
        values["berv_kms"] = float(barycentric_correction(values["ra_deg"], values["dec_deg"], values["mjd_utc"],
                                                          values["exptime_s"], site=values["site"]))
        if abs(values["berv_kms"]) > BERV_LIMIT_KMS:
            raise ParameterError(f"berv_kms must lie within +-{BERV_LIMIT_KMS} km/s, got {values['berv_kms']}")
    return values


def product_window(window):
    """(start, stop) of a product window (A, air), default the whole HARPS range; ParameterError when it is not."""
    if window is None:
        return PRODUCT_RANGE_AA
    start, stop = float(window[0]), float(window[1])
    if not (np.isfinite(start) and np.isfinite(stop)) or start >= stop:
        raise ParameterError(f"window=({window[0]}, {window[1]}): give START_AA < STOP_AA, both finite")
    if not PRODUCT_RANGE_AA[0] <= start < stop <= PRODUCT_RANGE_AA[1]:
        raise ParameterError(f"window=({start}, {stop}) must lie within {PRODUCT_RANGE_AA[0]}-{PRODUCT_RANGE_AA[1]} A")
    return start, stop


def check_window_has_data(start_aa, stop_aa):
    """ParameterError when no order records the window (air, A, barycentric) at any BERV (the gap between the two
    CCDs, ``simharps.extraction.uncovered_gap_aa``): its product would be all zeros (``simulate`` returns them, as
    the archive does)."""
    gap = uncovered_gap_aa(start_aa, stop_aa)
    if gap is not None:
        where = "inside the gap between the HARPS CCDs" if np.isfinite(gap).all() else "beyond the last HARPS order"
        low, high = max(gap[0], PRODUCT_RANGE_AA[0]), min(gap[1], PRODUCT_RANGE_AA[1])
        raise ParameterError(f"window {start_aa:g}-{stop_aa:g} A lies {where} ({low:.1f}-{high:.1f} A): no order "
                             "records it; choose a window outside it")


def _coarse_grid(wavelength_aa):
    """A ``SMOOTH_STEP_AA`` grid from one step below to beyond the end of ``wavelength_aa``."""
    return np.arange(wavelength_aa[0] - SMOOTH_STEP_AA, wavelength_aa[-1] + 2 * SMOOTH_STEP_AA, SMOOTH_STEP_AA)


@dataclass
class _Star:
    """A star placed on a plan's lattice: broadened, shifted normalised lines (observatory-frame lattice, float32),
    the rest-frame lines it came from (for the V band), its continuum (rest-frame wavelengths -> erg/s/cm^2/A) and
    the frame factors."""

    lines_obs: np.ndarray
    rest_first: int
    rest_lines: np.ndarray
    continuum: object
    doppler: float
    berv_factor: float


class ForwardPlan:
    """Everything about a product window that does not depend on the star or the conditions (built once, reused).

    * the lattice: the synthesis lattice (0.15 km/s, ``simharps.stellar.synthesis``) read in the observatory frame,
      spanning the order pixels that can reach the window at any BERV, plus the LSF's half-width;
    * what each factor stage prepares on the lattice and on the 1 A grid (``Stage.prepare``: the telluric optical
      depths, the telescope curve, the extinction curve);
    * which pixels are simulated, their widths, blaze, and the interpolation of the smooth factors (1 A grid) onto
      them; the lattice -> pixel extraction and the pixel -> product-bin merge (``simharps.extraction``).
    """

    def __init__(self, start_aa, stop_aa, spectrograph, step_kms=WORKING_STEP_KMS):
        layout = spectrograph.layout
        self.lsf_fwhm_kms = spectrograph.lsf_fwhm_kms
        self.grid = product_grid(start_aa, stop_aa)
        self.step_kms = step_kms
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
        flat = self.extraction.flat_index
        self.pixel_wave_obs_aa = centres.ravel()[flat]
        self.pixel_scale = (layout.blaze.ravel()[flat] * self.extraction.width_kms).astype(np.float32)
        self.coarse_obs_aa = _coarse_grid([self.pixel_wave_obs_aa.min(), self.pixel_wave_obs_aa.max()])
        self.prepared = {stage.name: stage.prepare(self.wavelength_obs_aa, self.coarse_obs_aa)
                         for stage in active_factors(enabled_stages(None))}
        position = (self.pixel_wave_obs_aa - self.coarse_obs_aa[0]) / SMOOTH_STEP_AA
        self.coarse_index = np.floor(position).astype(np.int64)
        self.coarse_fraction = (position - self.coarse_index).astype(np.float32)
        self.merge_plan = MergePlan(layout, self.grid, spectrograph.merge_trim_px, spectrograph.to_bin, pixels)
        self.order_centre_pixels = {}
        for row in range(layout.n_orders):
            centre = row * layout.n_pixels + layout.n_pixels // 2
            block = np.arange(centre - SN50_CENTRAL_PIXELS, centre + SN50_CENTRAL_PIXELS)
            where = np.searchsorted(flat, block)
            if np.all((where < flat.size) & (flat[np.minimum(where, flat.size - 1)] == block)):
                self.order_centre_pixels[row] = where
        self.sn50_pixels = self.order_centre_pixels.get(layout.order_index(SN50_ORDER))
        self.n_orders = layout.n_orders

    def place_star(self, model, values):
        """Take the star's rest-frame lines from ``model`` (a ``StellarModel``), broaden and shift them onto the
        observatory-frame lattice (``_Star``)."""
        doppler = doppler_factor(values["rv_kms"])
        berv_factor = 1.0 + values["berv_kms"] / C_KMS
        shift = (np.log(doppler) - np.log(berv_factor)) * C_KMS / self.step_kms
        whole = int(np.floor(shift))
        kernel, half = shifted_broadening_kernel(self.step_kms, values["vsini_kms"], values["vmac_kms"],
                                                 shift - whole)
        n = self.wavelength_obs_aa.size
        rest_first = self.first - whole - half
        rest_lines, continuum = model.rest_spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"],
                                                    rest_first, rest_first + n + 2 * half,
                                                    what=f"rv_kms={values['rv_kms']}")
        lines_obs = overlap_save_samples(overlap_save(rest_lines, kernel.astype(np.float32)), kernel.size, n)
        return _Star(lines_obs, rest_first, rest_lines, continuum, doppler, berv_factor)

    def vband_scale(self, model, values, factors, star):
        """Factor turning the star's surface flux into f_lambda (erg/s/cm^2/A) above the atmosphere for its V = vmag.

        ``vmag`` is the observed magnitude, so it includes the smooth parts of the barycentric-frame stages that are
        on (interstellar dust). The V-band integral uses the unbroadened rest-frame lines (broadening moves flux by
        < 0.1 A, which changes V by < 1e-5 mag) at barycentric wavelengths, as means of ``VBAND_BLOCK_POINTS``
        lattice points times the smooth factors at the block centres.
        """
        band_rest = np.array([BESSELL_V_WAVELENGTH_AA[0], V_BAND_WINDOW_AA[1]]) / star.doppler
        first, last = lattice_indices(band_rest[0], band_rest[1], self.step_kms)
        last = first + (last - first + VBAND_BLOCK_POINTS) // VBAND_BLOCK_POINTS * VBAND_BLOCK_POINTS - 1
        start = first - star.rest_first
        if start >= 0 and last - star.rest_first < star.rest_lines.size:
            lines, continuum = star.rest_lines[start:start + last - first + 1], star.continuum
        else:
            lines, continuum = model.rest_spectrum(values["teff_k"], values["logg_cgs"], values["mh_dex"], first,
                                                   last + 1, what=f"rv_kms={values['rv_kms']} (V band)")
        mean_lines = lines.reshape(-1, VBAND_BLOCK_POINTS).mean(axis=1, dtype=float)
        centre = first + 0.5 * (VBAND_BLOCK_POINTS - 1) + VBAND_BLOCK_POINTS * np.arange(mean_lines.size)
        wave = GRID_START_AA * np.exp(centre * self.step_kms / C_KMS)
        flux = mean_lines * continuum(wave)
        wave_bary = wave * star.doppler
        for stage in factors:
            if stage.frame == BARYCENTRIC:
                factor = stage.smooth(None, values, wave_bary, 1.0)
                if factor is not None:
                    flux = flux * factor
        return 10.0 ** (-0.4 * (values["vmag"] - synthetic_vmag(wave_bary, flux)))

    def smooth_response(self, values, factors, berv_factor):
        """Product of the factor stages' smooth parts on the 1 A grid (observatory frame)."""
        response = np.ones_like(self.coarse_obs_aa)
        for stage in factors:
            factor = stage.smooth(self.prepared[stage.name], values, self.coarse_obs_aa, berv_factor)
            if factor is not None:
                response *= factor
        return response

    def continuum_photons(self, model, values, factors, star, efficiency):
        """Continuum photons per km/s entering the spectrograph at each simulated pixel (observatory frame): the
        stellar continuum scaled to V, photons per erg, area x time x efficiency and every smooth factor, evaluated on
        the 1 A grid and interpolated to the pixels."""
        coarse_bary = self.coarse_obs_aa * star.berv_factor
        scale = self.vband_scale(model, values, factors, star)
        continuum = star.continuum(coarse_bary / star.doppler)
        per_kms = TELESCOPE_AREA_CM2 * values["exptime_s"] * coarse_bary / C_KMS * efficiency
        smooth = (photon_flux(coarse_bary, scale * continuum) * per_kms
                  * self.smooth_response(values, factors, star.berv_factor))
        below, above = neighbour_pairs(smooth.astype(np.float32), self.coarse_index)
        return below + self.coarse_fraction * (above - below)

    def narrow_factors(self, values, factors, star):
        """The factor stages' narrow parts on the lattice, in chain order: [(truth component, float32 array)]."""
        narrow = []
        for stage in factors:
            factor = stage.narrow(self.prepared[stage.name], values, self.wavelength_obs_aa, star.berv_factor)
            if factor is not None:
                narrow.append((stage.component, factor))
        return narrow

    def expected(self, model, values, factors, efficiency):
        """Expected photo-electrons per simulated pixel (flat, float32) and the pieces behind them."""
        star = self.place_star(model, values)
        narrow = self.narrow_factors(values, factors, star)
        density = star.lines_obs
        for _, factor in narrow:
            density = density * factor
        continuum_e = self.continuum_photons(model, values, factors, star, efficiency) * self.pixel_scale
        expected_e = continuum_e * self.extraction.pixel_means(density)
        return expected_e, continuum_e, star, narrow

    def order_snr(self, expected_e, variance_e):
        """Median expected S/N per extracted pixel over the centre of every order (the DRS ``SPE EXT SNn``
        convention, n = 0..71 from the blue; NaN for orders not simulated)."""
        snr = np.full(self.n_orders, np.nan)
        for row, pixels in self.order_centre_pixels.items():
            snr[row] = np.median(expected_e[pixels] / np.sqrt(variance_e[pixels]))
        return snr

    def sn50(self, expected_e, variance_e):
        """Median expected S/N per extracted pixel over the centre of order 50 (None when it is not simulated)."""
        if self.sn50_pixels is None:
            return None
        return float(np.median(expected_e[self.sn50_pixels] / np.sqrt(variance_e[self.sn50_pixels])))

    def lsf_components(self, star, narrow):
        """The stellar (star x the narrow factors of component ``stellar``) and telluric (narrow factors of component
        ``telluric``) transmission spectra, LSF-convolved, on the product grid (``lsf_on_grid``)."""
        parts = {"telluric": np.ones(self.grid.size, dtype=np.float32)}
        for name, start in (("stellar", star.lines_obs), ("telluric", None)):
            spectrum = start
            for component, factor in narrow:
                if component == name:
                    spectrum = factor if spectrum is None else spectrum * factor
            if spectrum is not None:
                parts[name] = lsf_on_grid(spectrum, self.wavelength_obs_aa[0], self.step_kms, self.lsf_fwhm_kms,
                                          self.grid, star.berv_factor)
        return parts


def lsf_on_grid(lattice_values, lattice_start_aa, step_kms, lsf_fwhm_kms, grid_aa, berv_factor):
    """A narrow spectrum on an observatory-frame lattice (uniform in ln lambda from ``lattice_start_aa``), convolved
    with the Gaussian LSF and read at the barycentric wavelengths ``grid_aa`` (float32).

    The LSF-convolved lattice is kept every 2nd point (it has no power above that Nyquist frequency) and read at the
    bins by the quintic through the 6 nearest samples (< 1e-5 of a line's depth). The lattice must reach the LSF's
    half-width plus 3 samples beyond the grid on both sides."""
    lsf = gaussian_kernel(step_kms, lsf_fwhm_kms, truncate_sigma=LSF_HALF_WIDTH_SIGMA).astype(np.float32)
    half = lsf.size // 2
    position = ((np.log(np.asarray(grid_aa) / lattice_start_aa) - np.log(berv_factor)) * C_KMS / step_kms
                - half) / 2.0
    n_samples = (lattice_values.size - lsf.size) // 2 + 1
    if position.min() < 2 or position.max() > n_samples - 4:
        raise ParameterError("the lattice does not cover the grid plus the LSF's reach")
    smoothed = overlap_save_samples(overlap_save(lattice_values.astype(np.float32), lsf, 2), lsf.size, n_samples, 2)
    return QuinticReader(position).read(smoothed)


def telluric_component(grid_aa, berv_kms, airmass, pwv_mm, resolving_power):
    """The telluric truth component of a product on the barycentric ``grid_aa`` (air, A), computed exactly as a
    simulated product's: the atmosphere stage's narrow part on the 0.15 km/s lattice (observatory frame), the
    Gaussian LSF of ``resolving_power``, read at the grid moved by the BERV (``lsf_on_grid``). Used by ingest for
    real products. NaN where the telluric tables do not reach. ``pwv_mm`` may be a sequence: then one row per
    value, the lattice and its optical depths prepared once."""
    from simharps.lsf import fwhm_kms_from_resolution
    from simharps.stages import AtmosphereStage
    from simharps.telluric import default_telluric_model

    grid = np.asarray(grid_aa, dtype=float)
    berv_factor = 1.0 + berv_kms / C_KMS
    fwhm_kms = fwhm_kms_from_resolution(resolving_power)
    pad = np.exp((LSF_HALF_WIDTH_SIGMA * fwhm_kms / FWHM_PER_SIGMA + LATTICE_PAD_KMS) / C_KMS)
    table_lo, table_hi = default_telluric_model().range_air_aa
    inside = (grid / berv_factor >= table_lo * pad) & (grid / berv_factor <= table_hi / pad)
    pwv_values = np.atleast_1d(pwv_mm)
    out = np.full((pwv_values.size, grid.size), np.nan)
    if inside.any():
        first, last = lattice_indices(grid[inside][0] / berv_factor / pad, grid[inside][-1] / berv_factor * pad,
                                      WORKING_STEP_KMS)
        lattice = lattice_wavelengths(first, last, WORKING_STEP_KMS)
        stage = AtmosphereStage()
        prepared = stage.prepare(lattice, None)
        for row, pwv in zip(out, pwv_values):
            transmission = stage.narrow(prepared, dict(airmass=airmass, pwv_mm=pwv), lattice, berv_factor)
            row[inside] = lsf_on_grid(transmission, lattice[0], WORKING_STEP_KMS, fwhm_kms, grid[inside],
                                      berv_factor)
    return out if np.ndim(pwv_mm) else out[0]


class Simulator:
    """The chain with a stellar model and spectrographs: plans built lazily per (window, mode) and reused.

    ``stellar_model``: a ``simharps.stellar.model.StellarModel`` (default: the built-in synthesis);
    ``spectrographs``: {mode: HarpsSpectrograph} (default: one per ``MODES`` entry). The grey efficiency ``eps`` is
    calibrated on the HARPS reference with the built-in star and this simulator's HAM spectrograph. Pickling keeps
    the models and drops the plans (rebuilt in a worker on first use)."""

    MAX_PLANS = 4

    def __init__(self, stellar_model=None, spectrographs=None):
        self.stellar_model = stellar_model if stellar_model is not None else default_stellar_model()
        self.spectrographs = dict(spectrographs or {})
        self._plans = {}
        self._efficiency = None

    def __getstate__(self):
        return {**self.__dict__, "_plans": {}, "_efficiency": None}

    def spectrograph(self, mode="HAM"):
        return self.spectrographs[mode] if mode in self.spectrographs else default_spectrograph(mode)

    def plan(self, start_aa, stop_aa, mode="HAM"):
        """The ForwardPlan of a product window and observing mode (building one costs ~0.4 s; full range ~60 MB)."""
        key = (float(start_aa), float(stop_aa), mode)
        if key not in self._plans:
            if len(self._plans) >= self.MAX_PLANS:
                self._plans.pop(next(iter(self._plans)))
            self._plans[key] = ForwardPlan(*key[:2], self.spectrograph(mode), self.stellar_model.step_kms)
        return self._plans[key]

    @property
    def efficiency(self):
        """Grey spectrograph + CCD efficiency ``eps`` that gives the HARPS reference S/N (110 at order 50)."""
        if self._efficiency is None:
            self._efficiency = reference_efficiency(self.spectrograph("HAM"))
        return self._efficiency

    def simulate(self, params, seed, *, components=False, stages=None, window=None, expected_product=True):
        """One product; see the module docstring. ``Simulation.order_snr``: the expected S/N at the centre of each
        order (``ForwardPlan.order_snr``)."""
        enabled = enabled_stages(stages)
        factors = active_factors(enabled)
        values = resolve_parameters(params)
        start_aa, stop_aa = product_window(window)
        if abs(values["berv_kms"]) > BERV_LIMIT_KMS:
            raise ParameterError(f"berv_kms must lie within +-{BERV_LIMIT_KMS} km/s, got {values['berv_kms']}")
        plan = self.plan(start_aa, stop_aa, values["instrument_mode"])
        efficiency = self.efficiency
        expected_e, continuum_e, star, narrow = plan.expected(self.stellar_model, values, factors, efficiency)

        detector = Detector(read_noise_e=values["read_noise_e"], gain_e_per_adu=values["gain_e_per_adu"])
        noisy = "noise" in enabled
        if noisy:
            counts_e, variance_e, _ = detector.draw_e(expected_e, values["exptime_s"], np.random.default_rng(seed))
        else:
            counts_e = expected_e
            variance_e = detector.variance_e(expected_e, values["exptime_s"])
        rows = [counts_e] + ([expected_e] if expected_product and noisy else []) + ([continuum_e] if components else [])
        merged = plan.merge_plan.merge(np.stack(rows), variance_e, values["berv_kms"])

        truth = {name: values.get(name) for name in sorted(values)}
        truth.update(snr_550=plan.sn50(expected_e, variance_e), stages=sorted(enabled),
                     window_start_aa=start_aa, window_stop_aa=stop_aa, efficiency=efficiency,
                     stellar_model=self.stellar_model.name)
        parts = {}
        if components:
            parts = plan.lsf_components(star, narrow)
            parts["response"] = merged.flux[-1]
        flux_expected = (merged.flux[1] if noisy else merged.flux[0]) if expected_product else None
        return Simulation(plan.grid, merged.flux[0], merged.error, flux_expected, truth, parts,
                          plan.order_snr(expected_e, variance_e))

    def simulate_batch(self, params_list, seeds, *, components=False, stages=None, window=None):
        """Many products on one grid; a spectrum that fails is reported in ``failed``, never fatal."""
        params_list = list(params_list)
        seeds = list(seeds)
        if len(seeds) != len(params_list):
            raise ParameterError(f"need one seed per parameter set: {len(params_list)} sets, {len(seeds)} seeds")
        grid = product_grid(*product_window(window))
        flux = np.full((len(params_list), grid.size), np.nan, dtype=np.float32)
        error = np.full_like(flux, np.nan)
        parts, truth, failed = {}, [], []
        for index, (params, seed) in enumerate(zip(params_list, seeds)):
            try:
                sim = self.simulate(params, seed, components=components, stages=stages, window=window,
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


def reference_efficiency(spectrograph=None):
    """Grey spectrograph + CCD efficiency ``eps`` that gives the HARPS reference S/N (110 at order 50) with the
    built-in star (cached for the default spectrograph)."""
    if spectrograph is None or spectrograph is default_spectrograph():
        return _default_efficiency()
    return _calibrate(spectrograph)


@lru_cache(maxsize=1)
def _default_efficiency():
    return _calibrate(default_spectrograph())


def _calibrate(spectrograph):
    detector = Detector(read_noise_e=DEFAULTS["read_noise_e"], gain_e_per_adu=DEFAULTS["gain_e_per_adu"])
    layout = spectrograph.layout
    start, stop = layout.valid_range_air_aa[layout.order_index(SN50_ORDER)]
    plan = ForwardPlan(float(start) + 1.0, float(stop) - 1.0, spectrograph)
    factors = active_factors(enabled_stages(None))
    expected_e = plan.expected(default_stellar_model(), resolve_parameters(REFERENCE), factors, efficiency=1.0)[0]
    signal_at_unit_eps = float(np.median(expected_e[plan.sn50_pixels]))
    return float(detector.electrons_for_snr(REFERENCE_SNR_550)) / signal_at_unit_eps


@lru_cache(maxsize=1)
def default_simulator():
    """The process-wide simulator: built-in star, default spectrographs."""
    return Simulator()


def forward_plan(start_aa, stop_aa, mode="HAM"):
    """The default simulator's ForwardPlan of a product window and observing mode."""
    return default_simulator().plan(start_aa, stop_aa, mode)


def simulate(params, seed, *, components=False, stages=None, window=None):
    """Simulate one HARPS product with the default simulator; see the module docstring. ``seed``: int or numpy
    SeedSequence."""
    return default_simulator().simulate(params, seed, components=components, stages=stages, window=window)


def simulate_batch(params_list, seeds, *, components=False, stages=None, window=None):
    """Simulate many products on one grid with the default simulator; a spectrum that fails is reported in
    ``failed``, never fatal."""
    return default_simulator().simulate_batch(params_list, seeds, components=components, stages=stages,
                                              window=window)
