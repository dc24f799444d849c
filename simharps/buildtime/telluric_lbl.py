"""Build-time line-by-line telluric optical depths (HITRAN) through a layered La Silla atmosphere.

Used only by ``scripts/build_telluric_tables.py`` to compute the optical-depth tables shipped in
``simharps/data`` (``simharps/data/telluric.md``), and by the tests of their physics; the run-time model
(``simharps.telluric``) reads those tables and never imports this module.

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

Approximations: listed with the run-time model (``simharps.telluric``).
"""

import gzip
from dataclasses import dataclass

import numpy as np
from scipy.special import voigt_profile

from simharps.constants import AMU_KG, C_KMS, K_BOLTZMANN_SI
from simharps.errors import ParameterError
from simharps.grids import accumulate_windows
from simharps.telluric import PWV_REFERENCE_MM, SPECIES

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
