"""Telluric O2 + H2O lines at La Silla (run time): the shipped optical-depth tables scaled with airmass and PWV.

Equation (observatory frame, vacuum line data, air wavelengths at the boundary). For a species s with zenith
optical depth ``tau_s(lambda)``, the transmission at airmass X and precipitable water vapour PWV is::

    T(lambda) = exp(-[X * tau_O2(lambda) + X * (PWV / 1 mm) * tau_H2O(lambda)])

``tau_O2`` is the zenith optical depth of O2 at La Silla (airmass 1) and
``tau_H2O`` that of 1 mm PWV at zenith; both are computed line by line from HITRAN through a layered
site atmosphere (``simharps.buildtime.telluric_lbl``, run by ``scripts/build_telluric_tables.py``) and shipped in
``simharps/data`` (``simharps/data/telluric.md``).
Optionally ``T`` is convolved with a Gaussian LSF of resolving power R
(``simharps.lsf``) on the tables' own log-lambda grid before it is
interpolated onto the requested wavelengths. Continuum extinction is ``simharps.extinction``.

Approximations
--------------
* Plane-parallel scaling: optical depths scale with the airmass X (and
  PWV x X for water); the vertical profile shape is fixed (US 1976 scaled to
  the site, 2 km water scale height), so line shapes do not change with
  airmass, season or weather. Refraction and Earth curvature are ignored.
* H2(16)O and (16)O2 only (the HITRAN subsets); no HDO, O3 lines, O2
  collision-induced absorption or H2O continuum. HITRAN's line-coupling and
  the temperature dependence of ``delta_air`` are not modelled; ``n_air`` is
  applied to the self width too. Line wings are cut where a layer's
  contribution falls below 1e-7 or at 25 cm^-1.
* The tables keep only optical depths > 1e-5 (per species, at airmass 1 and
  1 mm PWV): what is dropped is weak line-wing absorption below that level
  (< 1e-5 * X * PWV in optical depth).
* Lines are evaluated on a 0.1 km/s vacuum log-lambda grid; run-time values
  between grid points are linear interpolations of the optical depth. The
  table position of an air wavelength is itself interpolated between exact
  air-to-vacuum conversions every 0.02 A (< 1e-6 km/s off), and the native
  transmission is returned in float32.
* ``resolution=None`` samples the native (unconvolved) transmission at the
  requested wavelengths: pass a grid of <= 0.2 km/s (telluric lines are
  1-2 km/s wide) when the result is to be multiplied with a spectrum.

Frames and validation
---------------------
Telluric lines are at rest in the observatory frame. For a barycentric
archive product evaluate the model at ``lambda_obs = lambda_bary / (1 + BERV/c)``
(classical DRS BERV). Fitting a shift and an optical-depth scale to real
spectra (tests/test_atmosphere.py) puts the model O2 lines at +0.03 km/s
(B band) and -0.07 km/s (gamma band) from the observed ones in the HARPS
ADP product, +0.05 km/s (B) in the Gl581 s1d, -0.08 km/s (B) in the Gl273
e2ds, and +0.01 / -0.04 km/s (B / gamma) in the ESPRESSO HD41248 spectrum,
whose H2O lines sit within 0.03 km/s; without the delta_air shifts the B-band
lines sit ~0.1 km/s blue.

Example
-------
>>> from simharps.grids import log_lambda_grid
>>> from simharps.telluric import telluric_transmission, telluric_optical_depth
>>> wave_air_aa = log_lambda_grid(6860.0, 6920.0, step_kms=0.15)
>>> t_native = telluric_transmission(wave_air_aa, airmass=1.3, pwv_mm=2.0)
>>> t_harps = telluric_transmission(wave_air_aa, airmass=1.3, pwv_mm=2.0, resolution=115_000)
>>> tau = telluric_optical_depth(wave_air_aa, airmass=1.3, pwv_mm=2.0)   # {"O2": ..., "H2O": ...}
"""

from functools import lru_cache
from importlib import resources

import numpy as np

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import air_to_vacuum, vacuum_to_air
from simharps.lsf import FWHM_PER_SIGMA, convolve_gaussian_velocity, fwhm_kms_from_resolution

PWV_REFERENCE_MM = 1.0
"""PWV of the shipped H2O table; 1 mm = 1 kg m^-2 of water = 3.343e21 molecules cm^-2."""

SPECIES = ("O2", "H2O")
TABLE_FILES = {"O2": "telluric_o2.npz", "H2O": "telluric_h2o.npz"}

FLOAT32_DEPTH_LIMIT = 2.0
"""Optical depth above which the native transmission is recomputed in float64: below it the float32 rounding of the
depth (~2e-7 relative) changes exp(-tau) by < 1e-6 relative."""

POSITION_NODE_STEP_AA = 0.02
"""Spacing (air, A) of the nodes between which run-time table positions are linearly interpolated instead of
converting every wavelength to vacuum. The position's curvature is that of ln(lambda), so the interpolation is
off by < (0.02 A)^2 / (8 lambda^2 dlog) < 1.1e-5 of a 0.1 km/s table step (1e-6 km/s) over the tables' range."""


def _check_conditions(airmass, pwv_mm):
    """Validated float arrays of airmass (>= 1) and PWV (>= 0 mm), broadcast together."""
    airmass = np.asarray(airmass, dtype=float)
    pwv_mm = np.asarray(pwv_mm, dtype=float)
    if not np.all(np.isfinite(airmass) & (airmass >= 1.0)):
        raise ParameterError(f"airmass must be finite and >= 1 (zenith = 1), got {airmass}")
    if not np.all(np.isfinite(pwv_mm) & (pwv_mm >= 0.0)):
        raise ParameterError(f"pwv_mm must be finite and >= 0 mm, got {pwv_mm}")
    airmass, pwv_mm = np.broadcast_arrays(airmass, pwv_mm)
    return airmass, pwv_mm


def _leading(conditions, trailing):
    """``conditions`` reshaped so it broadcasts as leading axes in front of an array of ndim ``trailing``."""
    return conditions.reshape(conditions.shape + (1,) * trailing)


def _wavelength_aa(wavelength):
    """Plain float array of wavelengths in A from an array or an astropy Quantity."""
    if hasattr(wavelength, "unit"):
        return np.asarray(wavelength.to_value("Angstrom"), dtype=float)
    return np.asarray(wavelength, dtype=float)


class TelluricModel:
    """HITRAN line-by-line O2 + H2O transmission at La Silla from the shipped optical-depth tables.

    The tables hold the zenith optical depth of O2 (airmass 1) and of 1 mm
    PWV on one vacuum log-lambda grid (``wave0_vac_aa``, ``step_kms``),
    stored as segments where tau > 1e-5; they are expanded once into dense
    float32 arrays (~7 MB per species). ``tables`` maps species ("O2", "H2O")
    to npz paths (default: the files in ``simharps/data``).
    """

    def __init__(self, tables=None):
        tables = tables or {s: resources.files("simharps.data") / TABLE_FILES[s] for s in SPECIES}
        self.tau = {}
        for species, path in tables.items():
            with np.load(path) as data:
                self.wave0_vac_aa = float(data["wave0_vac_aa"])
                self.step_kms = float(data["step_kms"])
                dense = np.zeros(int(data["n_points"]), dtype=np.float32)
                segments = np.split(data["tau"], np.cumsum(data["segment_length"])[:-1])
                for start, values in zip(data["segment_start"], segments):
                    dense[start:start + values.size] = values
                self.tau[species] = dense
        self.n_points = next(iter(self.tau.values())).size
        self._dlog = self.step_kms / C_KMS
        self.wavelength_vac_aa = self.wave0_vac_aa * np.exp(np.arange(self.n_points) * self._dlog)
        lo, hi = self.range_air_aa
        self._position_nodes_air_aa = np.arange(lo - POSITION_NODE_STEP_AA, hi + 2 * POSITION_NODE_STEP_AA,
                                                POSITION_NODE_STEP_AA)
        self._position_nodes = self._exact_position(self._position_nodes_air_aa)

    @property
    def range_air_aa(self):
        """Air-wavelength span (A) the tables cover (interpolation needs both neighbours)."""
        return float(vacuum_to_air(self.wavelength_vac_aa[0])), float(vacuum_to_air(self.wavelength_vac_aa[-2]))

    def _exact_position(self, wavelength_air_aa):
        """Fractional table index of air wavelengths (A), through the exact air-to-vacuum conversion."""
        return np.log(air_to_vacuum(wavelength_air_aa) / self.wave0_vac_aa) / self._dlog

    def _grid_position(self, wavelength_air_aa):
        """Fractional table index of air wavelengths (A): linear interpolation of ``_exact_position`` between
        nodes every ``POSITION_NODE_STEP_AA`` (off by < 1.1e-5 of a table step, see the constant), kept within
        the tables at their two ends."""
        wave = _wavelength_aa(wavelength_air_aa)
        lo, hi = self.range_air_aa
        if wave.size and (wave.min() < lo or wave.max() > hi):
            raise ParameterError(
                f"wavelength_air_aa must lie within the telluric tables' range {lo:.2f}-{hi:.2f} A, "
                f"got {wave.min():.2f}-{wave.max():.2f} A")
        position = np.interp(wave, self._position_nodes_air_aa, self._position_nodes)
        return np.clip(position, 0.0, self.n_points - 2, out=position)

    @staticmethod
    def _interpolate(values, position):
        index = np.floor(position).astype(np.int64)
        frac = position - index
        return values[..., index] * (1.0 - frac) + values[..., index + 1] * frac

    def optical_depth(self, wavelength_air_aa, airmass, pwv_mm):
        """Per-species optical depths {"O2": X tau_O2, "H2O": X PWV tau_H2O} at the air wavelengths.

        Scalar ``airmass``/``pwv_mm`` give arrays shaped like the wavelengths;
        arrays of conditions add leading axes (broadcast together).
        """
        airmass, pwv_mm = _check_conditions(airmass, pwv_mm)
        position = self._grid_position(wavelength_air_aa)
        airmass, pwv_mm = _leading(airmass, position.ndim), _leading(pwv_mm, position.ndim)
        scale = {"O2": airmass, "H2O": airmass * pwv_mm / PWV_REFERENCE_MM}
        return {s: scale[s] * self._interpolate(self.tau[s], position) for s in SPECIES}

    def _native_transmission(self, wavelength_air_aa, airmass, pwv_mm):
        """exp(-tau) at the air wavelengths as float32, to < 1e-6 relative.

        The two species are summed on the table slice first, so one interpolation serves both; that runs in
        float32, whose rounding (~2e-7 of the depth) is re-done in float64 where the depth exceeds
        ``FLOAT32_DEPTH_LIMIT`` (line cores, a few per cent of the points).
        """
        airmass, pwv_mm = _check_conditions(airmass, pwv_mm)
        position = self._grid_position(wavelength_air_aa)
        if position.size == 0:
            return np.ones(airmass.shape + position.shape, dtype=np.float32)
        flat = position.reshape(-1)
        whole = np.floor(flat)
        index = whole.astype(np.int64)
        frac = (flat - whole).astype(np.float32)
        lo = int(index.min())
        local = index - lo
        span = slice(lo, int(index.max()) + 2)
        o2, water = _leading(airmass, 1), _leading(airmass * pwv_mm / PWV_REFERENCE_MM, 1)
        tau = o2.astype(np.float32) * self.tau["O2"][span]
        tau += water.astype(np.float32) * self.tau["H2O"][span]
        below = np.take(tau, local, axis=-1)
        local += 1
        depth = below + frac * (np.take(tau, local, axis=-1) - below)
        result = np.exp(-depth)
        deep = np.nonzero(depth > FLOAT32_DEPTH_LIMIT)
        if deep[-1].size:
            at = index[deep[-1]]
            step = flat[deep[-1]] - at
            exact = {s: self.tau[s][at] + step * (self.tau[s][at + 1] - self.tau[s][at]) for s in SPECIES}
            depth_f64 = (np.broadcast_to(o2, depth.shape)[deep] * exact["O2"]
                         + np.broadcast_to(water, depth.shape)[deep] * exact["H2O"])
            result[deep] = np.exp(-depth_f64)
        return result.reshape(airmass.shape + position.shape)

    def transmission(self, wavelength_air_aa, airmass, pwv_mm, resolution=None):
        """Telluric transmission exp(-tau) at the air wavelengths, native or convolved to resolving power R.

        Without ``resolution`` the result is float32 (its relative rounding, 6e-8, is far below the tables'
        accuracy). With ``resolution``, exp(-tau) is formed on the tables' 0.1 km/s grid
        over the requested span plus 6 LSF sigma, convolved there with
        ``simharps.lsf.convolve_gaussian_velocity`` (float64 FFTs; a grid uniform in vacuum
        log-lambda is uniform in velocity), then linearly interpolated onto the
        requested wavelengths, which may be any grid (e.g. the 0.01 A product grid).
        """
        if resolution is None:
            return self._native_transmission(wavelength_air_aa, airmass, pwv_mm)
        if not np.isfinite(resolution) or resolution <= 0:
            raise ParameterError(f"resolution must be a positive resolving power (e.g. 115000), got {resolution}")
        airmass, pwv_mm = _check_conditions(airmass, pwv_mm)
        airmass, pwv_mm = _leading(airmass, 1), _leading(pwv_mm, 1)
        position = self._grid_position(wavelength_air_aa)
        fwhm_kms = fwhm_kms_from_resolution(resolution)
        margin = int(np.ceil(6.0 * fwhm_kms / FWHM_PER_SIGMA / self.step_kms)) + 2
        lo = max(int(np.floor(position.min())) - margin, 0)
        hi = min(int(np.ceil(position.max())) + margin + 1, self.n_points)
        tau = airmass * self.tau["O2"][lo:hi] + (airmass * pwv_mm / PWV_REFERENCE_MM) * self.tau["H2O"][lo:hi]
        smoothed = convolve_gaussian_velocity(np.exp(-tau), self.step_kms, fwhm_kms, method="fft")
        return self._interpolate(smoothed, position - lo)


@lru_cache(maxsize=1)
def default_telluric_model():
    """The shipped La Silla telluric model (tables loaded once per process)."""
    return TelluricModel()


def telluric_optical_depth(wavelength_air_aa, airmass, pwv_mm):
    """Per-species telluric optical depths {"O2", "H2O"} at air wavelengths (A), observatory frame, unconvolved."""
    return default_telluric_model().optical_depth(wavelength_air_aa, airmass, pwv_mm)


def telluric_transmission(wavelength_air_aa, airmass, pwv_mm, resolution=None):
    """O2 + H2O line transmission at air wavelengths (A) in the observatory frame; convolved to R if given."""
    return default_telluric_model().transmission(wavelength_air_aa, airmass, pwv_mm, resolution)
