"""Night-time visibility at an observatory: when a target can be observed, at which hour angle and airmass.

Geometry (spherical astronomy, geometric positions, no refraction)::

    sin(alt) = sin(phi) sin(dec) + cos(phi) cos(dec) cos(H),     H = LAST - RA
    airmass  = 1 / sin(alt)                                      (plane-parallel, sec z)
    q        = atan2(sin H, tan(phi) cos(dec) - sin(dec) cos(H)) (parallactic angle)

with phi the site latitude, (RA, dec) apparent equatorial coordinates of date and LAST the local
apparent sidereal time. sec z is the airmass the fibre and atmosphere stages assume
(``simharps.fibre`` takes tan z = sqrt(X^2 - 1)); refraction would lower z by ~1.7 arcmin at X = 2.

Ephemeris: for every UTC day spanning the date range, astropy gives the Greenwich apparent sidereal
time at 0h UTC (``Time.sidereal_time``, IAU 2006/2000A, UT1 from the bundled IERS table, offline),
the bias-precession-nutation matrix (ERFA ``pnm06a``) and the Sun's GCRS position (``get_sun``).
Between the daily nodes the sidereal time is interpolated linearly (its rate is constant to 1e-9;
leap-second days are handled because the node difference is used), the Sun's direction linearly
(renormalised), and the target's ICRS direction is rotated to the true equator and equinox of the
day. Annual aberration (<= 20.5 arcsec), polar motion (< 1 arcsec) and the Sun's parallax are
ignored: positions are good to ~0.01 deg, airmass to ~1e-3 at X = 2. Vectorised: ~10^6 candidate
times per second.

Night: the Sun's geometric altitude below ``sun_altitude_max_deg`` (-18 deg astronomical, -12 deg
nautical twilight) at mid-exposure.

Sampling (``draw_visible_times``): for each observation, candidate mid-exposure times are drawn
uniformly in the date range and the first that is night-time with the target at airmass
<= ``max_airmass`` is kept; with a given airmass, the hour angle is solved from it and the
declination (random sign) and the candidate nights are those on which the target reaches that
hour angle in the dark. Each observation's candidates come from its own generator, so the result
does not depend on the other observations.

Example
-------
>>> import numpy as np
>>> from simharps.scenario.visibility import SiteEphemeris
>>> ephemeris = SiteEphemeris("lasilla", 55000.0, 55010.0)
>>> geometry = ephemeris.geometry(np.array([229.86]), np.array([-7.72]), np.array([55005.1]))
"""

import astropy.units as u
import erfa
import numpy as np
from astropy.coordinates import get_sun
from astropy.time import Time

from simharps.kinematics import _offline_astropy, site_location

CANDIDATES_PER_ROUND = 64
MAX_ROUNDS = 40


def _unit_vectors(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


class SiteEphemeris:
    """Daily sidereal time, precession-nutation and Sun positions for ``site`` over [mjd_start, mjd_stop] (UTC)."""

    def __init__(self, site, mjd_start, mjd_stop):
        location = site_location(site)
        self.latitude_rad = float(location.lat.to_value(u.rad))
        self.longitude_deg = float(location.lon.to_value(u.deg))
        self.day0 = float(np.floor(mjd_start)) - 1.0
        days = np.arange(self.day0, np.ceil(mjd_stop) + 2.0)
        with _offline_astropy():
            times = Time(days, format="mjd", scale="utc")
            gast_deg = times.sidereal_time("apparent", longitude=0.0 * u.deg).deg
            tt = times.tt
            self.rnpb = erfa.pnm06a(tt.jd1, tt.jd2)
            sun = get_sun(times).cartesian.xyz.value.T
        sun = np.einsum("nij,nj->ni", self.rnpb, sun / np.linalg.norm(sun, axis=1, keepdims=True))
        self.sun_of_date = sun
        self.gast0_deg = gast_deg
        self.gast_step_deg = np.mod(np.diff(gast_deg), 360.0) + 360.0
        self.days = days

    def _index(self, mjd):
        index = np.floor(mjd - self.day0).astype(int)
        if np.any(index < 0) or np.any(index >= self.days.size - 1):
            raise ValueError("time outside the ephemeris range")
        return index, mjd - self.days[index]

    def last_deg(self, mjd):
        """Local apparent sidereal time (deg) at UTC MJD ``mjd``."""
        index, frac = self._index(mjd)
        return np.mod(self.gast0_deg[index] + frac * self.gast_step_deg[index] + self.longitude_deg, 360.0)

    def apparent(self, ra_deg, dec_deg, mjd):
        """Apparent (RA, dec) of date in degrees (no aberration) of ICRS positions at ``mjd``."""
        index, _ = self._index(mjd)
        vector = np.einsum("...ij,...j->...i", self.rnpb[index], _unit_vectors(ra_deg, dec_deg))
        return np.degrees(np.arctan2(vector[..., 1], vector[..., 0])) % 360.0, np.degrees(np.arcsin(vector[..., 2]))

    def sun_altitude_deg(self, mjd):
        """Geometric altitude of the Sun (deg)."""
        index, frac = self._index(mjd)
        vector = self.sun_of_date[index] * (1.0 - frac)[..., None] + self.sun_of_date[index + 1] * frac[..., None]
        vector /= np.linalg.norm(vector, axis=-1, keepdims=True)
        ra, dec = np.arctan2(vector[..., 1], vector[..., 0]), np.arcsin(vector[..., 2])
        return self._altitude_deg(np.radians(self.last_deg(mjd)) - ra, dec)

    def _altitude_deg(self, hour_angle_rad, dec_rad):
        phi = self.latitude_rad
        sin_alt = np.sin(phi) * np.sin(dec_rad) + np.cos(phi) * np.cos(dec_rad) * np.cos(hour_angle_rad)
        return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))

    def geometry(self, ra_deg, dec_deg, mjd):
        """Dict of hour_angle_h (-12..12), altitude_deg, airmass (inf below the horizon), parallactic_angle_deg,
        sun_altitude_deg at UTC MJD ``mjd`` for ICRS (ra_deg, dec_deg); arrays broadcast."""
        ra_app, dec_app = self.apparent(ra_deg, dec_deg, mjd)
        hour_angle = np.radians((self.last_deg(mjd) - ra_app + 180.0) % 360.0 - 180.0)
        dec = np.radians(dec_app)
        altitude = self._altitude_deg(hour_angle, dec)
        phi = self.latitude_rad
        parallactic = np.degrees(np.arctan2(np.sin(hour_angle), np.tan(phi) * np.cos(dec) - np.sin(dec) * np.cos(hour_angle)))
        with np.errstate(divide="ignore"):
            airmass = np.where(altitude > 0.0, 1.0 / np.sin(np.radians(altitude)), np.inf)
        return {
            "hour_angle_h": np.degrees(hour_angle) / 15.0,
            "altitude_deg": altitude,
            "airmass": airmass,
            "parallactic_angle_deg": parallactic,
            "sun_altitude_deg": self.sun_altitude_deg(mjd),
        }

    def minimum_airmass(self, dec_deg):
        """Airmass at upper transit for declination ``dec_deg`` (inf if the target never rises)."""
        altitude = 90.0 - np.abs(np.degrees(self.latitude_rad) - np.asarray(dec_deg, dtype=float))
        with np.errstate(divide="ignore"):
            return np.where(altitude > 0.0, 1.0 / np.sin(np.radians(altitude)), np.inf)

    def hour_angle_for_airmass_deg(self, dec_deg, airmass):
        """|H| (deg) at which a target at ``dec_deg`` has ``airmass``; NaN where it never does."""
        phi, dec = self.latitude_rad, np.radians(dec_deg)
        cos_h = (1.0 / np.asarray(airmass, dtype=float) - np.sin(phi) * np.sin(dec)) / (np.cos(phi) * np.cos(dec))
        with np.errstate(invalid="ignore"):
            return np.where(np.abs(cos_h) <= 1.0, np.degrees(np.arccos(np.clip(cos_h, -1.0, 1.0))), np.nan)


def draw_visible_times(ephemeris, ra_deg, dec_deg, windows, rngs, sun_altitude_max_deg, max_airmass,
                       airmass=None, hour_angle_sign=None):
    """Mid-exposure UTC MJDs, one per observation, at night with the target observable.

    ``windows`` (n, 2): allowed [start, stop) MJD of each observation; ``rngs``: one numpy Generator per
    observation (candidates are drawn from it, CANDIDATES_PER_ROUND at a time). Without ``airmass`` the
    target must be at airmass <= ``max_airmass``; with ``airmass`` (n,) the time is placed where the target
    has exactly that airmass, on the side of the meridian given by ``hour_angle_sign`` (n,) (+1 west, -1 east).
    Returns (mjd_mid, found) where ``found`` is False for observations without a valid time after
    MAX_ROUNDS rounds (mjd_mid NaN there).
    """
    n = len(rngs)
    mjd_mid = np.full(n, np.nan)
    pending = np.arange(n)
    for _ in range(MAX_ROUNDS):
        if pending.size == 0:
            break
        u = np.stack([rngs[i].random(CANDIDATES_PER_ROUND) for i in pending])
        start, stop = windows[pending, 0:1], windows[pending, 1:2]
        ra, dec = ra_deg[pending, None], dec_deg[pending, None]
        if airmass is None:
            times = start + (stop - start) * u
            geometry = ephemeris.geometry(ra, dec, times)
            valid = (geometry["sun_altitude_deg"] < sun_altitude_max_deg) & (geometry["airmass"] <= max_airmass)
        else:
            days = np.floor(start + (stop - start) * u)
            ra_app, dec_app = ephemeris.apparent(ra, dec, days)
            hour_angle = hour_angle_sign[pending, None] * ephemeris.hour_angle_for_airmass_deg(dec_app, airmass[pending, None])
            index, _ = ephemeris._index(days)
            offset = np.mod(ra_app + hour_angle - ephemeris.last_deg(days), 360.0)
            times = days + offset / ephemeris.gast_step_deg[index]
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(times) & (times >= start) & (times < stop)
            safe_times = np.where(valid, times, start)
            valid &= ephemeris.sun_altitude_deg(safe_times) < sun_altitude_max_deg
        has = valid.any(axis=1)
        first = np.argmax(valid, axis=1)
        mjd_mid[pending[has]] = times[has, first[has]]
        pending = pending[~has]
    return mjd_mid, np.isfinite(mjd_mid)
