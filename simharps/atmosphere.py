"""Earth's atmosphere at La Silla: telluric O2 + H2O lines and continuum extinction.

Equations
---------
Telluric lines (observatory frame, vacuum line data, air wavelengths at the
boundary). For a species s with zenith optical depth ``tau_s(lambda)`` built
line by line (below), the transmission at airmass X and precipitable water
vapour PWV is::

    T(lambda) = exp(-[X * tau_O2(lambda) + X * (PWV / 1 mm) * tau_H2O(lambda)])

``tau_O2`` is the zenith optical depth of O2 at La Silla (airmass 1) and
``tau_H2O`` that of 1 mm PWV at zenith; both are precomputed by
``scripts/build_telluric_tables.py`` and shipped in ``simharps/data``.
Optionally ``T`` is convolved with a Gaussian LSF of resolving power R
(``simharps.lsf``) on the tables' own log-lambda grid before it is
interpolated onto the requested wavelengths.

Line-by-line optical depth (HITRAN; Rothman et al. 1998 App. A, Gordon et al.
2022 for the database). For layer j (pressure ``p`` in atm, temperature ``T``,
absorber column ``N_j`` in cm^-2) and line i (wavenumber ``nu_i`` in cm^-1)::

    tau(nu) = sum_j sum_i N_j * S_i(T_j) * V(nu - nu_i - delta_air_i * p_j; sigma_ij, gamma_ij)

    S_i(T)  = S_i(296 K) * Q(296 K)/Q(T) * exp(-c2 E''_i / T) / exp(-c2 E''_i / 296 K)
              * (1 - exp(-c2 nu_i / T)) / (1 - exp(-c2 nu_i / 296 K))          [c2 = hc/k]
    gamma   = (296 K / T)**n_air * (gamma_air * (p - p_self) + gamma_self * p_self)   (Lorentz HWHM)
    sigma   = nu_i / c * sqrt(k T / m)                                          (Doppler, Gaussian sigma)

``V`` is the area-normalised Voigt profile (``scipy.special.voigt_profile``),
``Q`` the total internal partition sum tabulated with the HITRAN subsets.

Atmosphere: the U.S. Standard Atmosphere 1976 (NOAA/NASA/USAF 1976) from the
La Silla altitude (2400 m) upward, its pressures scaled by a constant factor
so that the site pressure is 772 hPa and its temperatures raised by 10.6 K at
the site (283.15 K, a nominal night-time mean), the offset falling linearly
to zero at the tropopause (11 km). O2 is well mixed (volume fraction 0.2095).
H2O falls off exponentially with a 2 km scale height above the site, with
the column normalised to 1 mm PWV (1 kg m^-2).

Continuum extinction: the ESO La Silla mean extinction curve ``k(lambda)``
(mag per airmass; Rayleigh scattering + aerosols + the ozone Chappuis band;
it is smooth, measured between the telluric line bands, so it does not
double-count the O2/H2O lines)::

    T_cont(lambda) = 10 ** (-0.4 * k(lambda) * X)

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
>>> from simharps.atmosphere import telluric_transmission, telluric_optical_depth
>>> wave_air_aa = log_lambda_grid(6860.0, 6920.0, step_kms=0.15)
>>> t_native = telluric_transmission(wave_air_aa, airmass=1.3, pwv_mm=2.0)
>>> t_harps = telluric_transmission(wave_air_aa, airmass=1.3, pwv_mm=2.0, resolution=115_000)
>>> tau = telluric_optical_depth(wave_air_aa, airmass=1.3, pwv_mm=2.0)   # {"O2": ..., "H2O": ...}
"""

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.special import voigt_profile

from simharps.constants import AMU_KG, C_KMS, K_BOLTZMANN_SI
from simharps.errors import ParameterError
from simharps.grids import accumulate_windows, air_to_vacuum, vacuum_to_air
from simharps.lsf import FWHM_PER_SIGMA, convolve_gaussian_velocity, fwhm_kms_from_resolution

C2_CM_K = 1.4387769
"""Second radiation constant hc/k, cm K."""
T_REF_K = 296.0
"""HITRAN reference temperature."""
LOCAL_GRAVITY_M_S2 = 9.786
"""Gravity at La Silla (latitude -29.26 deg, 2400 m), m/s^2."""
MEAN_AIR_MASS_AMU = 28.9644
ATM_PA = 101325.0

MOLECULAR_MASS_AMU = {"O2": 31.98983, "H2O": 18.010565}
"""Masses of the HITRAN isotopologues in the subsets: (16)O2 and H2(16)O."""

O2_VOLUME_FRACTION = 0.2095
PWV_REFERENCE_MM = 1.0
"""PWV of the shipped H2O table; 1 mm = 1 kg m^-2 of water = 3.343e21 molecules cm^-2."""

SPECIES = ("O2", "H2O")
TABLE_FILES = {"O2": "telluric_o2.npz", "H2O": "telluric_h2o.npz"}
EXTINCTION_FILE = "telluric_extinction_lasilla.npz"

FLOAT32_DEPTH_LIMIT = 2.0
"""Optical depth above which the native transmission is recomputed in float64: below it the float32 rounding of the
depth (~2e-7 relative) changes exp(-tau) by < 1e-6 relative."""

POSITION_NODE_STEP_AA = 0.02
"""Spacing (air, A) of the nodes between which run-time table positions are linearly interpolated instead of
converting every wavelength to vacuum. The position's curvature is that of ln(lambda), so the interpolation is
off by < (0.02 A)^2 / (8 lambda^2 dlog) < 1.1e-5 of a 0.1 km/s table step (1e-6 km/s) over the tables' range."""


# --------------------------------------------------------------------------- line data


@dataclass
class HitranLineList:
    """HITRAN 160-character line parameters (vacuum wavenumbers, cm^-1; intensities at 296 K).

    ``intensity`` is in cm^-1 / (molecule cm^-2), scaled by natural isotopic
    abundance as HITRAN gives it; ``gamma_air``/``gamma_self`` are Lorentz
    HWHM in cm^-1/atm at 296 K, ``delta_air`` the air-pressure shift in cm^-1/atm.
    """

    wavenumber_cm: np.ndarray
    intensity: np.ndarray
    gamma_air: np.ndarray
    gamma_self: np.ndarray
    lower_energy_cm: np.ndarray
    n_air: np.ndarray
    delta_air: np.ndarray

    @classmethod
    def from_par(cls, path):
        """Read a (gzipped or plain) HITRAN .par file of 160-character records."""
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt") as handle:
            records = [line for line in handle.read().splitlines() if line.strip()]
        fields = {"wavenumber_cm": (3, 15), "intensity": (15, 25), "gamma_air": (35, 40),
                  "gamma_self": (40, 45), "lower_energy_cm": (45, 55), "n_air": (55, 59),
                  "delta_air": (59, 67)}
        return cls(**{name: np.array([float(rec[a:b]) for rec in records])
                      for name, (a, b) in fields.items()})

    def intensity_at(self, temperature_k, partition_sum):
        """Line intensities S(T) from S(296 K) with the partition sums and lower-state energies."""
        t = float(temperature_k)
        q_ratio = partition_sum(T_REF_K) / partition_sum(t)
        boltzmann = np.exp(-C2_CM_K * self.lower_energy_cm * (1.0 / t - 1.0 / T_REF_K))
        stimulated = (-np.expm1(-C2_CM_K * self.wavenumber_cm / t)) / (
            -np.expm1(-C2_CM_K * self.wavenumber_cm / T_REF_K))
        return self.intensity * q_ratio * boltzmann * stimulated


class PartitionSum:
    """Total internal partition sum Q(T), linearly interpolated in a HITRAN QT table (T in K, Q)."""

    def __init__(self, path):
        table = np.loadtxt(path)
        self.temperature_k, self.q = table[:, 0], table[:, 1]

    def __call__(self, temperature_k):
        return np.interp(temperature_k, self.temperature_k, self.q)


# --------------------------------------------------------------------------- atmosphere profile

# U.S. Standard Atmosphere 1976: base geopotential heights (km) and lapse rates (K/km).
_US76_BASE_KM = np.array([0.0, 11.0, 20.0, 32.0, 47.0, 51.0, 71.0, 84.852])
_US76_LAPSE_K_KM = np.array([-6.5, 0.0, 1.0, 2.8, 0.0, -2.8, -2.0])
_US76_HYDROSTATIC_K_KM = 34.1632  # g0 M / R*, K/km
_EARTH_RADIUS_KM = 6356.766


def us_standard_1976(altitude_km):
    """Temperature (K) and pressure (Pa) of the U.S. Standard Atmosphere 1976 at geometric altitudes (km, < 86)."""
    z = np.asarray(altitude_km, dtype=float)
    h = _EARTH_RADIUS_KM * z / (_EARTH_RADIUS_KM + z)
    base_t = [288.15]
    base_p = [101325.0]
    for i, lapse in enumerate(_US76_LAPSE_K_KM[:-1]):
        dh = _US76_BASE_KM[i + 1] - _US76_BASE_KM[i]
        t_top = base_t[i] + lapse * dh
        if lapse == 0.0:
            p_top = base_p[i] * np.exp(-_US76_HYDROSTATIC_K_KM * dh / base_t[i])
        else:
            p_top = base_p[i] * (base_t[i] / t_top) ** (_US76_HYDROSTATIC_K_KM / lapse)
        base_t.append(t_top)
        base_p.append(p_top)
    k = np.clip(np.searchsorted(_US76_BASE_KM, h, side="right") - 1, 0, _US76_LAPSE_K_KM.size - 1)
    lapse, tb, pb = _US76_LAPSE_K_KM[k], np.array(base_t)[k], np.array(base_p)[k]
    dh = h - _US76_BASE_KM[k]
    temperature = tb + lapse * dh
    with np.errstate(divide="ignore", invalid="ignore"):
        pressure = np.where(lapse == 0.0, pb * np.exp(-_US76_HYDROSTATIC_K_KM * dh / tb),
                            pb * (tb / temperature) ** (_US76_HYDROSTATIC_K_KM / np.where(lapse == 0, 1, lapse)))
    return temperature, pressure


@dataclass
class SiteAtmosphere:
    """Layered atmosphere above a site: US Standard 1976 scaled to the site's pressure and temperature.

    Pressures are the US76 ones times ``site_pressure_hpa / p_US76(site)``;
    temperatures get ``site_temperature_k - T_US76(site)`` added at the site,
    falling linearly to zero at the tropopause (11 km). Water vapour number
    density falls as ``exp(-(z - z_site) / h2o_scale_height_km)``.
    """

    site_altitude_km: float = 2.4
    site_pressure_hpa: float = 772.0
    site_temperature_k: float = 283.15
    h2o_scale_height_km: float = 2.0
    tropopause_km: float = 11.0

    def temperature_pressure(self, altitude_km):
        """Temperature (K) and pressure (Pa) at geometric altitudes (km) above sea level."""
        z = np.asarray(altitude_km, dtype=float)
        t_std, p_std = us_standard_1976(z)
        t_site_std, p_site_std = us_standard_1976(self.site_altitude_km)
        taper = np.clip((self.tropopause_km - z) / (self.tropopause_km - self.site_altitude_km), 0.0, 1.0)
        temperature = t_std + (self.site_temperature_k - t_site_std) * taper
        return temperature, p_std * (100.0 * self.site_pressure_hpa / p_site_std)

    def layer_boundaries_km(self, top_km):
        """Layer edges: 0.25 km steps up to 6 km, 1 km to 20 km, 2.5 km to 50 km, 5 km above."""
        edges = np.concatenate([np.arange(self.site_altitude_km, 6.0, 0.25), np.arange(6.0, 20.0, 1.0),
                                np.arange(20.0, 50.0, 2.5), np.arange(50.0, 85.0, 5.0)])
        return edges[edges <= top_km]

    def layers(self, species, column_cm2=None):
        """Per-layer (temperature_k, pressure_atm, partial_pressure_atm, column_cm2) of ``species``.

        O2 layers reach 80 km with the column set by the site pressure (airmass 1);
        H2O layers reach 20 km (the 2 km scale height leaves < 2e-4 of the column
        above), normalised to ``column_cm2`` (default: 1 mm PWV). Each layer's
        temperature and pressure are those at the height that halves its column.
        """
        if species == "O2":
            edges = self.layer_boundaries_km(80.0)
            _, p_edges = self.temperature_pressure(edges)
            air_column_cm2 = -np.diff(p_edges) / (MEAN_AIR_MASS_AMU * AMU_KG * LOCAL_GRAVITY_M_S2) * 1e-4
            column = O2_VOLUME_FRACTION * air_column_cm2
            p_half = 0.5 * (p_edges[:-1] + p_edges[1:])
            fine_z = np.linspace(edges[0], edges[-1], 20001)
            _, fine_p = self.temperature_pressure(fine_z)
            z_half = np.interp(-np.log(p_half), -np.log(fine_p), fine_z)
            fraction = np.full(column.size, O2_VOLUME_FRACTION)
        elif species == "H2O":
            if column_cm2 is None:
                column_cm2 = PWV_REFERENCE_MM * 0.1 / (MOLECULAR_MASS_AMU["H2O"] * AMU_KG * 1e3)
            edges = self.layer_boundaries_km(20.0)
            scale = self.h2o_scale_height_km
            below = np.exp(-(edges - self.site_altitude_km) / scale)
            column = column_cm2 * -np.diff(below)
            z_half = edges[:-1] - scale * np.log(0.5 * (1.0 + np.exp(-np.diff(edges) / scale)))
            fraction = None
        else:
            raise ParameterError(f"species must be one of {SPECIES}, got {species!r}")
        temperature, pressure_pa = self.temperature_pressure(z_half)
        if fraction is None:
            density_cm3 = column_cm2 / (scale * 1e5) * np.exp(-(z_half - self.site_altitude_km) / scale)
            fraction = density_cm3 * 1e6 * K_BOLTZMANN_SI * temperature / pressure_pa
        pressure_atm = pressure_pa / ATM_PA
        return temperature, pressure_atm, fraction * pressure_atm, column


# --------------------------------------------------------------------------- line-by-line


def line_by_line_optical_depth(lines, partition_sum, species, layers, wave0_vac_aa, step_kms, n_points,
                               floor=1e-7, max_cutoff_cm=25.0, chunk_elements=4_000_000):
    """Optical depth on the vacuum log-lambda grid ``wave0_vac_aa * exp(i * step_kms / c)``, i < n_points.

    ``layers`` is ``SiteAtmosphere.layers(species)``. Each line in each layer
    is evaluated where its contribution exceeds ``floor`` (the Lorentz wing
    ``N S gamma / (pi dnu^2)`` sets the window, at most ``max_cutoff_cm``);
    lines whose peak is below ``floor`` are skipped.
    """
    dlog = step_kms / C_KMS
    wn0 = 1e8 / wave0_vac_aa
    grid_wn = wn0 * np.exp(-np.arange(n_points) * dlog)
    tau = np.zeros(n_points)
    mass_kg = MOLECULAR_MASS_AMU[species] * AMU_KG
    for temperature, pressure_atm, self_atm, column in zip(*layers):
        strength = column * lines.intensity_at(temperature, partition_sum)
        gamma = (T_REF_K / temperature) ** lines.n_air * (
            lines.gamma_air * (pressure_atm - self_atm) + lines.gamma_self * self_atm)
        centre = lines.wavenumber_cm + lines.delta_air * pressure_atm
        sigma = centre * np.sqrt(K_BOLTZMANN_SI * temperature / mass_kg) / (C_KMS * 1e3)
        peak = strength * voigt_profile(0.0, sigma, gamma)
        keep = peak > floor
        wing = np.sqrt(strength * gamma / (np.pi * floor))
        half_width_cm = np.minimum(np.maximum(wing, 8.0 * (sigma + gamma)), max_cutoff_cm)
        _accumulate_profiles(tau, grid_wn, wn0, dlog, centre[keep], strength[keep], sigma[keep],
                             gamma[keep], half_width_cm[keep], chunk_elements)
    return tau


def _accumulate_profiles(tau, grid_wn, wn0, dlog, centre, strength, sigma, gamma, half_width_cm, chunk_elements):
    """Add ``strength * Voigt`` of each line into ``tau`` within +-half_width_cm (``simharps.grids.accumulate_windows``)."""
    nearest = np.rint(np.log(wn0 / centre) / dlog).astype(np.int64)
    half_px = np.maximum(np.ceil(half_width_cm / (centre * dlog)), 1).astype(np.int64)

    def profile(selected, index):
        return strength[selected, None] * voigt_profile(grid_wn[index] - centre[selected, None], sigma[selected, None],
                                                        gamma[selected, None])

    accumulate_windows(tau, nearest, half_px, profile, chunk_elements)


# --------------------------------------------------------------------------- run-time model


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


# --------------------------------------------------------------------------- continuum extinction


class LaSillaExtinction:
    """ESO La Silla mean continuum extinction k(lambda), mag per airmass, 3100-9000 A.

    Rayleigh + aerosol + ozone; interpolated with a monotone cubic (PCHIP) so
    the continuum it imprints has no kinks at the 100-200 A table nodes.
    """

    def __init__(self, path=None):
        path = path or resources.files("simharps.data") / EXTINCTION_FILE
        with np.load(path) as data:
            self.wavelength_aa = data["wavelength_aa"]
            self.mag_per_airmass = data["extinction_mag_per_airmass"]
        self._curve = PchipInterpolator(self.wavelength_aa, self.mag_per_airmass, extrapolate=False)

    def extinction(self, wavelength_aa):
        """k(lambda) in mag per airmass."""
        wave = _wavelength_aa(wavelength_aa)
        lo, hi = self.wavelength_aa[0], self.wavelength_aa[-1]
        if wave.size and (wave.min() < lo or wave.max() > hi):
            raise ParameterError(f"wavelength_aa must lie within {lo:.0f}-{hi:.0f} A for the La Silla "
                                 f"extinction curve, got {wave.min():.1f}-{wave.max():.1f} A")
        return self._curve(wave)

    def transmission(self, wavelength_aa, airmass):
        """10**(-0.4 k(lambda) X); array airmass adds leading axes."""
        airmass, _ = _check_conditions(airmass, 0.0)
        mag = self.extinction(wavelength_aa)
        return 10.0 ** (-0.4 * mag * _leading(airmass, mag.ndim))


@lru_cache(maxsize=1)
def default_extinction():
    """The shipped La Silla extinction curve."""
    return LaSillaExtinction()


def extinction_mag_per_airmass(wavelength_aa):
    """La Silla continuum extinction, mag per airmass, at wavelengths in A (3100-9000 A)."""
    return default_extinction().extinction(wavelength_aa)


def continuum_transmission(wavelength_aa, airmass):
    """Continuum (Rayleigh + aerosol + ozone) transmission 10**(-0.4 k X) at wavelengths in A."""
    return default_extinction().transmission(wavelength_aa, airmass)
