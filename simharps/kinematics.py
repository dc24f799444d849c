"""Barycentric correction in the classical HARPS-DRS convention, and Doppler factors.

Barycentric correction (BERV)
-----------------------------
The HARPS DRS BERV (``HIERARCH ESO DRS BERV``, km/s) is the classical, first-order quantity

    BERV = v_obs . n,        v_obs = v_earth(t) + v_site(t)

at mid-exposure ``t = MJD-OBS + EXPTIME / 2`` (UTC), where ``v_earth`` is the barycentric velocity
of the geocentre (BCRS/ICRS axes), ``v_site`` the velocity of the observatory about the geocentre
(GCRS: Earth rotation with precession-nutation, UT1 and polar motion), and ``n`` the unit vector
to the star from its catalogue coordinates (ICRS ~ FK5 J2000, no aberration). Positive when the
observer moves towards the star. Both velocities come from astropy (``get_body_barycentric_posvel``
with the built-in ERFA ``epv00`` ephemeris, ~5 mm/s from DE405, and ``EarthLocation.get_gcrs_posvel``),
the ingredients of astropy's own correction.

astropy's ``SkyCoord.radial_velocity_correction`` returns instead the full barycentric redshift
of Wright & Eastman (2014, PASP 126, 838, Eq. 28; no Shapiro delay, no stellar terms),

    c z_B = c [ gamma (1 + beta . n) / (1 + Phi / c) - 1 ],   beta = v_obs / c,

with ``Phi = -sum_k G M_k / (c r_k)`` (m/s; Sun, Jupiter, Moon, Earth at the site). Its difference
from the classical BERV separates exactly into

    time dilation   c (gamma - 1) (1 + beta . n)                  ~ |v_obs|^2 / 2c   ~ +1.4..+1.6 m/s
    gravitational   c gamma (1 + beta . n) (1 / (1 + Phi/c) - 1)  ~ G M_sun / (c AU) + G M_E / (c R_E)
                                                                   ~ +2.9..+3.0 + 0.2 m/s,

together +4.6..+4.8 m/s. ``barycentric_correction`` returns the classical quantity;
``barycentric_correction_terms`` returns it with the pieces and astropy's own value.

Conventions measured on the real headers (docs/kinematics.md): HARPS DRS 3.5 uses the catalogue
coordinates ``ESO TEL TARG ALPHA/DELTA`` at J2000 without proper motion, at the geometric mid-exposure;
the ESPRESSO pipeline (espdr, ``ESO QC BERV``) propagates them with the proper motion
``TARG PMA/PMD`` to the date. ``berv_inputs_from_header`` encodes both.

Offline operation: IERS auto-download is switched off when this module is imported, and every
computation runs with ``auto_max_age=None``, ``allow_internet=False`` and the built-in ephemeris,
so nothing touches the network. UT1-UTC and polar motion come from the IERS tables bundled with
``astropy-iers-data``. Beyond the end of that table, astropy holds UT1-UTC at its last value and uses
the 50-year mean polar motion; no future leap seconds are known. The BERV changes by at most
0.03 m/s per second of UT1 error (Earth rotation at La Silla: 406 m/s x 7.29e-5 rad/s), and
|UT1 - UTC| < 0.9 s by construction, so the fallback error stays below ~0.1 m/s;
``IersFallbackWarning`` says when it is in use.

Doppler factors
---------------
* BERV (archive convention, first order, as the DRS applies it)::

      lambda_bary = lambda_obs * (1 + BERV / c)      (berv_to_barycentric)
      lambda_obs  = lambda_bary / (1 + BERV / c)     (barycentric_to_observatory)

  Telluric lines, fixed in the observatory frame, sit at lambda_obs * (1 + BERV / c) in the
  barycentric archive products.
* Stellar radial velocity ``rv_kms``, relativistic (special-relativistic radial Doppler)::

      lambda = lambda_rest * sqrt((1 + v/c) / (1 - v/c))   (apply_rv; remove_rv inverts it)

  It differs from the first-order 1 + v/c by v^2 / 2c: 16.7 m/s at 100 km/s. Inject and recover
  an RV with the same pair of functions.

Approximations: frames ICRS and FK5 J2000 are treated as identical (~20 mas, < 5 mm/s); the star's
light-time and parallax are ignored (the DRS ignores them too); proper motion is propagated
linearly on the tangent plane (second-order error < 0.05 m/s for the fastest stars over decades).

Example
-------
>>> from simharps.kinematics import apply_rv, barycentric_correction, barycentric_to_observatory, berv_to_barycentric
>>> berv_kms = barycentric_correction(229.8617, -7.7223, 55457.98791873, exptime_s=900.0, site="lasilla")
>>> wavelength_obs_aa = barycentric_to_observatory(apply_rv(5000.0, rv_kms=-9.2), berv_kms)  # observatory frame
>>> wavelength_bary_aa = berv_to_barycentric(wavelength_obs_aa, berv_kms)  # archive (barycentric) frame
"""

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation, SkyCoord, get_body_barycentric_posvel, solar_system_ephemeris
from astropy.time import Time
from astropy.utils import data as astropy_data
from astropy.utils import iers

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.sites import SITES, TELESCOPE_KEYWORD_PREFIXES

iers.conf.auto_download = False


MJD_RANGE = (37665.0, 88069.0)
"""Supported exposure-start MJDs (UTC): 1962-01-01 (start of the IERS tables) to 2100-01-01
(end of the ERFA ``epv00`` ephemeris validity)."""

_MAS_TO_RAD = np.pi / (180.0 * 3600.0 * 1000.0)


class IersFallbackWarning(UserWarning):
    """Some times lie outside the bundled IERS table; UT1-UTC and polar motion are extrapolated (< 0.1 m/s)."""


@dataclass(frozen=True)
class BervTerms:
    """Classical BERV and the terms that separate it from astropy's full correction (all km/s).

    ``berv_kms = orbital_kms + diurnal_kms`` (classical, DRS convention);
    ``berv_kms + time_dilation_kms + gravitational_kms`` is Wright & Eastman's Eq. 28, which
    ``astropy_kms`` (astropy's ``radial_velocity_correction``) reproduces.
    """

    berv_kms: np.ndarray
    orbital_kms: np.ndarray
    diurnal_kms: np.ndarray
    time_dilation_kms: np.ndarray
    gravitational_kms: np.ndarray
    astropy_kms: np.ndarray
    mjd_mid_utc: np.ndarray

    @property
    def relativistic_kms(self):
        """Time dilation plus gravitational redshift: the model difference astropy minus classical."""
        return self.time_dilation_kms + self.gravitational_kms


@contextmanager
def _offline_astropy():
    """astropy settings under which no computation here can reach the network."""
    with (
        iers.conf.set_temp("auto_download", False),
        iers.conf.set_temp("auto_max_age", None),
        astropy_data.conf.set_temp("allow_internet", False),
        solar_system_ephemeris.set("builtin"),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=".*IERS data is valid.*")
        warnings.filterwarnings("ignore", message=".*dubious year.*")
        yield


def site_location(site):
    """EarthLocation of ``site``: a name in ``SITES`` ("lasilla", "La Silla", "paranal") or an EarthLocation."""
    if isinstance(site, EarthLocation):
        return site
    key = str(site).lower().replace(" ", "").replace("_", "").replace("-", "")
    if key not in SITES:
        raise ParameterError(f"site: unknown observatory {site!r}; use one of {sorted(SITES)} or an EarthLocation")
    site = SITES[key]
    return EarthLocation.from_geodetic(site["lon_deg"] * u.deg, site["lat_deg"] * u.deg, site["elevation_m"] * u.m)


def _check_range(name, values, low, high):
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < low) or np.any(values > high):
        bad = values[~(np.isfinite(values) & (values >= low) & (values <= high))]
        raise ParameterError(f"{name}: must be finite and within [{low}, {high}], got {bad[:3]}")
    return values


def _star_unit_vectors(ra_deg, dec_deg, pm_ra_cosdec_masyr, pm_dec_masyr, years):
    """ICRS unit vectors (3, ...) to the star, proper motion propagated linearly by ``years``."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cos_ra, sin_ra, cos_dec, sin_dec = np.cos(ra), np.sin(ra), np.cos(dec), np.sin(dec)
    n = np.stack([cos_dec * cos_ra, cos_dec * sin_ra, sin_dec])
    east = np.stack([-sin_ra, cos_ra, np.zeros_like(ra)])
    north = np.stack([-sin_dec * cos_ra, -sin_dec * sin_ra, cos_dec])
    shift = years * _MAS_TO_RAD
    n = n + shift * (pm_ra_cosdec_masyr * east + pm_dec_masyr * north)
    return n / np.linalg.norm(n, axis=0)


def _prepare(ra_deg, dec_deg, mjd_utc, exptime_s, site, pm_ra_cosdec_masyr, pm_dec_masyr, coord_epoch_jyear):
    ra_deg = _check_range("ra_deg", ra_deg, 0.0, 360.0)
    dec_deg = _check_range("dec_deg", dec_deg, -90.0, 90.0)
    mjd_utc = _check_range("mjd_utc", mjd_utc, *MJD_RANGE)
    exptime_s = _check_range("exptime_s", exptime_s, 0.0, 86400.0)
    pm_ra = _check_range("pm_ra_cosdec_masyr", pm_ra_cosdec_masyr, -2.0e4, 2.0e4)
    pm_dec = _check_range("pm_dec_masyr", pm_dec_masyr, -2.0e4, 2.0e4)
    epoch = _check_range("coord_epoch_jyear", coord_epoch_jyear, 1900.0, 2100.0)
    ra_deg, dec_deg, mjd_utc, exptime_s, pm_ra, pm_dec, epoch = np.broadcast_arrays(
        ra_deg, dec_deg, mjd_utc, exptime_s, pm_ra, pm_dec, epoch
    )
    location = site_location(site)
    time_mid = Time(mjd_utc, 0.5 * exptime_s / 86400.0, format="mjd", scale="utc")
    n = _star_unit_vectors(ra_deg, dec_deg, pm_ra, pm_dec, time_mid.jyear - epoch)
    return time_mid, location, n


def _warn_if_beyond_iers(time_mid):
    with _offline_astropy():
        table_mjd = iers.earth_orientation_table.get()["MJD"].to_value(u.d)
    outside = (time_mid.mjd < table_mjd[0]) | (time_mid.mjd > table_mjd[-1])
    if np.any(outside):
        warnings.warn(
            f"{int(np.count_nonzero(outside))} mid-exposure time(s) outside the bundled IERS table "
            f"(MJD {table_mjd[0]:.0f}-{table_mjd[-1]:.0f}): UT1-UTC held at the table's last value and mean "
            "polar motion used; BERV error < 0.1 m/s",
            IersFallbackWarning,
            stacklevel=3,
        )


def _observer_velocity_kms(time_mid, location):
    """Barycentric velocity of the observatory (3, ...) in km/s, ICRS axes: geocentre + site."""
    with _offline_astropy():
        _, v_earth = get_body_barycentric_posvel("earth", time_mid)
        _, v_site = location.get_gcrs_posvel(time_mid)
    return v_earth.xyz.to_value(u.km / u.s), v_site.xyz.to_value(u.km / u.s)


def _scalar_or_array(values):
    return values[()] if values.ndim == 0 else values


def barycentric_correction(
    ra_deg,
    dec_deg,
    mjd_utc,
    exptime_s=0.0,
    site="lasilla",
    *,
    pm_ra_cosdec_masyr=0.0,
    pm_dec_masyr=0.0,
    coord_epoch_jyear=2000.0,
):
    """Classical barycentric correction (DRS BERV convention) in km/s at mid-exposure.

    ``ra_deg``/``dec_deg``: ICRS (FK5 J2000) catalogue coordinates at ``coord_epoch_jyear``;
    ``mjd_utc``: exposure start (like MJD-OBS); ``exptime_s``: exposure time, the BERV is computed
    at ``mjd_utc + exptime_s / 2``; ``site``: name in ``SITES`` or an EarthLocation. Proper motion
    (mas/yr, RA component times cos(dec)) is propagated to the date; the HARPS DRS 3.5 convention
    is zero proper motion (the default). Array arguments broadcast against each other; the result
    has their broadcast shape (a float for scalar input). Positive when the observer approaches the star.
    """
    time_mid, location, n = _prepare(
        ra_deg, dec_deg, mjd_utc, exptime_s, site, pm_ra_cosdec_masyr, pm_dec_masyr, coord_epoch_jyear
    )
    _warn_if_beyond_iers(time_mid)
    v_earth, v_site = _observer_velocity_kms(time_mid, location)
    return _scalar_or_array(np.einsum("i...,i...->...", v_earth + v_site, n))


def barycentric_correction_terms(
    ra_deg,
    dec_deg,
    mjd_utc,
    exptime_s=0.0,
    site="lasilla",
    *,
    pm_ra_cosdec_masyr=0.0,
    pm_dec_masyr=0.0,
    coord_epoch_jyear=2000.0,
):
    """``BervTerms``: the classical BERV, its orbital and diurnal parts, the relativistic terms, and astropy's value.

    Same arguments as ``barycentric_correction``. ``astropy_kms`` is astropy's own
    ``SkyCoord.radial_velocity_correction`` for the same direction, time and site; it is slower
    (~3x) than the classical BERV alone.
    """
    time_mid, location, n = _prepare(
        ra_deg, dec_deg, mjd_utc, exptime_s, site, pm_ra_cosdec_masyr, pm_dec_masyr, coord_epoch_jyear
    )
    _warn_if_beyond_iers(time_mid)
    v_earth, v_site = _observer_velocity_kms(time_mid, location)
    orbital_kms = np.einsum("i...,i...->...", v_earth, n)
    diurnal_kms = np.einsum("i...,i...->...", v_site, n)
    berv_kms = orbital_kms + diurnal_kms
    beta = (v_earth + v_site) / C_KMS
    gamma = 1.0 / np.sqrt(1.0 - np.sum(beta**2, axis=0))
    with _offline_astropy():
        potential_kms = location.gravitational_redshift(time_mid).to_value(u.km / u.s)
        star = SkyCoord(
            np.degrees(np.arctan2(n[1], n[0])) % 360.0 * u.deg,
            np.degrees(np.arcsin(np.clip(n[2], -1.0, 1.0))) * u.deg,
            frame="icrs",
        )
        astropy_kms = star.radial_velocity_correction(obstime=time_mid, location=location).to_value(u.km / u.s)
    one_plus = 1.0 + berv_kms / C_KMS
    time_dilation_kms = C_KMS * (gamma - 1.0) * one_plus
    gravitational_kms = C_KMS * gamma * one_plus * (1.0 / (1.0 + potential_kms / C_KMS) - 1.0)
    return BervTerms(
        berv_kms=_scalar_or_array(berv_kms),
        orbital_kms=_scalar_or_array(orbital_kms),
        diurnal_kms=_scalar_or_array(diurnal_kms),
        time_dilation_kms=_scalar_or_array(time_dilation_kms),
        gravitational_kms=_scalar_or_array(gravitational_kms),
        astropy_kms=_scalar_or_array(np.asarray(astropy_kms)),
        mjd_mid_utc=_scalar_or_array(np.asarray(time_mid.mjd)),
    )


def eso_sexagesimal_deg(value, hours):
    """Degrees from an ESO TARG ALPHA (HHMMSS.sss) or DELTA (+-DDMMSS.ss) header number."""
    value = float(value)
    sign, value = (-1.0 if value < 0 else 1.0), abs(value)
    whole, seconds = divmod(value, 100.0)
    units, minutes = divmod(whole, 100.0)
    angle = sign * (units + minutes / 60.0 + seconds / 3600.0)
    return angle * 15.0 if hours else angle


def _telescope_prefix(header):
    for prefix in TELESCOPE_KEYWORD_PREFIXES:
        if f"{prefix} GEOLAT" in header and f"{prefix} TARG ALPHA" in header:
            return prefix
    raise ParameterError("header: no ESO TEL[n] GEOLAT/TARG ALPHA keywords to take the site and target from")


def berv_inputs_from_header(header):
    """Keyword arguments for ``barycentric_correction`` that reproduce the pipeline BERV of a HARPS/ESPRESSO header.

    Site from ``ESO TEL[n] GEOLON/GEOLAT/GEOELEV``; target from the catalogue coordinates
    ``ESO TEL[n] TARG ALPHA/DELTA`` (J2000; not the pointing ``RA``/``DEC``, which differ by up to
    ~20 arcsec, i.e. ~3 m/s); time from ``MJD-OBS`` and ``EXPTIME``. Proper motion
    (``TARG PMA/PMD``, arcsec/yr, PMA taken as mu_alpha cos(dec)) is applied only for headers with
    ``ESO QC BERV`` (ESPRESSO-pipeline products); HARPS DRS 3.x (``ESO DRS BERV``) ignores it.
    """
    prefix = _telescope_prefix(header)
    location = EarthLocation.from_geodetic(
        float(header[f"{prefix} GEOLON"]) * u.deg,
        float(header[f"{prefix} GEOLAT"]) * u.deg,
        float(header[f"{prefix} GEOELEV"]) * u.m,
    )
    uses_proper_motion = "ESO QC BERV" in header and "ESO DRS BERV" not in header
    pm_scale = 1000.0 if uses_proper_motion else 0.0
    return {
        "ra_deg": eso_sexagesimal_deg(header[f"{prefix} TARG ALPHA"], hours=True),
        "dec_deg": eso_sexagesimal_deg(header[f"{prefix} TARG DELTA"], hours=False),
        "mjd_utc": float(header["MJD-OBS"]),
        "exptime_s": float(header["EXPTIME"]),
        "site": location,
        "pm_ra_cosdec_masyr": pm_scale * float(header.get(f"{prefix} TARG PMA", 0.0)),
        "pm_dec_masyr": pm_scale * float(header.get(f"{prefix} TARG PMD", 0.0)),
        "coord_epoch_jyear": float(header.get(f"{prefix} TARG EPOCH", 2000.0)),
    }


def berv_to_barycentric(wavelength_obs_aa, berv_kms):
    """Observatory-frame wavelengths to the barycentric frame: ``lambda_obs * (1 + BERV / c)`` (archive convention)."""
    return np.asarray(wavelength_obs_aa, dtype=float) * (1.0 + np.asarray(berv_kms, dtype=float) / C_KMS)


def barycentric_to_observatory(wavelength_bary_aa, berv_kms):
    """Inverse of ``berv_to_barycentric``: ``lambda_bary / (1 + BERV / c)``."""
    return np.asarray(wavelength_bary_aa, dtype=float) / (1.0 + np.asarray(berv_kms, dtype=float) / C_KMS)


def doppler_factor(rv_kms):
    """Relativistic radial Doppler factor ``sqrt((1 + v/c) / (1 - v/c))`` for ``rv_kms`` (positive = receding)."""
    beta = np.asarray(rv_kms, dtype=float) / C_KMS
    if not np.all(np.abs(beta) < 1.0):
        raise ParameterError(f"rv_kms: must satisfy |rv_kms| < c = {C_KMS} km/s")
    return np.sqrt((1.0 + beta) / (1.0 - beta))


def rv_from_doppler_factor(factor):
    """Radial velocity (km/s) whose relativistic Doppler factor is ``factor``; inverse of ``doppler_factor``."""
    factor = np.asarray(factor, dtype=float)
    if not np.all(factor > 0.0):
        raise ParameterError("factor: a Doppler factor lambda_obs / lambda_rest must be positive")
    return C_KMS * (factor**2 - 1.0) / (factor**2 + 1.0)


def apply_rv(wavelength_rest_aa, rv_kms):
    """Shift rest wavelengths by the radial velocity ``rv_kms``: ``lambda_rest * doppler_factor(rv_kms)``."""
    return np.asarray(wavelength_rest_aa, dtype=float) * doppler_factor(rv_kms)


def remove_rv(wavelength_aa, rv_kms):
    """Inverse of ``apply_rv``: rest wavelengths of lines seen at ``wavelength_aa`` from a star at ``rv_kms``."""
    return np.asarray(wavelength_aa, dtype=float) / doppler_factor(rv_kms)
