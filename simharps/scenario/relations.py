"""Physical relations between drawn parameters: main-sequence logg and M_V, reddening with distance, disc kinematics.

Main sequence (Pecaut & Mamajek 2013, ApJS 208, 9, Table 5, as extended in E. Mamajek's
"A Modern Mean Dwarf Stellar Color and Effective Temperature Sequence", version 2018.08.02,
http://www.pas.rochester.edu/~emamajek/EEM_dwarf_UBVIJHK_colors_Teff.txt): the rows A7V-M5.5V
(7800-3000 K) of its Teff, M_V, mass and radius columns are kept in ``DWARF_SEQUENCE``. Then ::

    logg_cgs = LOGG_SUN + log10(M / M_sun) - 2 log10(R / R_sun),   LOGG_SUN = 4.438
    (IAU 2015 nominal solar values: GM_sun / R_sun^2 = 27,400 cm s^-2)

and both logg and M_V are interpolated linearly in Teff between the spectral-type rows (the
table's masses are "tentative" per its author; logg therefore carries ~0.05 dex of row-to-row noise,
below the ``scatter`` a scenario usually adds). Solar-metallicity dwarfs only: no evolution off the
zero-age sequence, no metallicity dependence.

Reddening with distance (``reddening`` relation for ``ebv_mag``): a dust layer with an exponential
vertical profile of scale height ``h`` and mid-plane colour-excess rate ``k`` (mag/kpc), seen at
Galactic latitude b, beyond an empty local bubble of radius ``r0``::

    E(B-V) = k h / |sin b| * (1 - exp(-max(d - r0, 0) |sin b| / h))    (-> k max(d - r0, 0) as b -> 0)

times exp(scatter * N(0, 1)). Defaults: k = 0.61 mag/kpc, the mean rate near the Galactic plane
(Spitzer 1978, "Physical Processes in the Interstellar Medium", from the mean gas density and
N_H / E(B-V) of Bohlin, Savage & Drake 1978, ApJ 224, 132); h = 125 pc (dust scale height,
Marshall et al. 2006, A&A 453, 635); r0 = 0 (set ~70 pc for the Local Bubble's reddening-free
cavity, Lallement et al. 2003, A&A 411, 447). Clouds are not modelled: ``scatter`` stands in for them.

Distance modulus (``distance_modulus`` relation for ``vmag``)::

    V = M_V(Teff) + 5 log10(d / 10 pc) + R_V E(B-V)        (+ scatter * N(0, 1))

Disc kinematics (``galactic_kinematics`` relation for ``rv_kms``): heliocentric space velocities
(U towards the Galactic centre, V in the direction of rotation, W to the north Galactic pole) drawn
from a Gaussian velocity ellipsoid and projected on the line of sight::

    rv = U cos b cos l + V cos b sin l + W sin b,   (U, V, W) ~ N(mean, diag(sigma^2))

Defaults: the disc component of the Geneva-Copenhagen survey of F and G dwarfs (Nordstrom et al.
2004, A&A 418, 989), as fitted in an A&A 2010 article (id aa12818-09, Table 1: GCS, population D, 99 %; its
authors could not be checked offline: verify the citation before quoting these numbers):
mean (U, V, W) = (-9.9, -16.9, -7.1) km/s, sigma = (32.5, 17.8, 16.5) km/s (no vertex deviation).
Averaged over the sky the RV spread is sqrt((sum sigma^2 + |mean|^2) / 3) = 26.3 km/s, and stars
towards the solar apex (l = 59.6 deg, b = 19.9 deg) approach at 20.8 km/s on average.

Example
-------
>>> from simharps.scenario.relations import main_sequence_logg, absolute_vmag
>>> round(float(main_sequence_logg(5770.0)), 2), round(float(absolute_vmag(5770.0)), 2)
(4.44, 4.79)
"""

import numpy as np

LOGG_SUN = 4.438
"""log10 of the nominal solar surface gravity in cm s^-2 (IAU 2015 Resolution B3)."""

# SpT, Teff (K), M_V (mag), M (M_sun), R (R_sun): Mamajek (2018.08.02) / Pecaut & Mamajek (2013), A7V-M5.5V.
DWARF_SEQUENCE = (
    ("A7V", 7800, 2.07, 1.76, 1.86), ("A8V", 7500, 2.29, 1.67, 1.81), ("A9V", 7440, 2.30, 1.67, 1.84),
    ("F0V", 7220, 2.51, 1.59, 1.79), ("F1V", 7030, 2.79, 1.50, 1.64), ("F2V", 6810, 2.99, 1.44, 1.61),
    ("F3V", 6720, 3.08, 1.43, 1.60), ("F4V", 6640, 3.23, 1.39, 1.53), ("F5V", 6510, 3.40, 1.33, 1.46),
    ("F6V", 6340, 3.70, 1.25, 1.36), ("F7V", 6240, 3.87, 1.21, 1.30), ("F8V", 6170, 4.01, 1.18, 1.25),
    ("F9V", 6040, 4.15, 1.14, 1.23), ("G0V", 5920, 4.45, 1.08, 1.12), ("G1V", 5880, 4.50, 1.07, 1.12),
    ("G2V", 5770, 4.79, 1.02, 1.01), ("G3V", 5720, 4.86, 1.00, 1.01), ("G4V", 5680, 4.94, 0.99, 0.986),
    ("G5V", 5660, 4.98, 0.98, 0.982), ("G6V", 5590, 5.13, 0.97, 0.939), ("G7V", 5530, 5.18, 0.96, 0.949),
    ("G8V", 5490, 5.32, 0.94, 0.909), ("G9V", 5340, 5.55, 0.90, 0.876), ("K0V", 5280, 5.76, 0.87, 0.817),
    ("K0.5V", 5240, 5.80, 0.86, 0.828), ("K1V", 5170, 5.89, 0.85, 0.814), ("K1.5V", 5140, 5.97, 0.82, 0.809),
    ("K2V", 5040, 6.19, 0.78, 0.763), ("K2.5V", 4990, 6.34, 0.76, 0.742), ("K3V", 4830, 6.57, 0.75, 0.729),
    ("K3.5V", 4700, 6.79, 0.73, 0.720), ("K4V", 4600, 6.98, 0.72, 0.726), ("K4.5V", 4540, 7.04, 0.71, 0.737),
    ("K5V", 4410, 7.36, 0.68, 0.698), ("K5.5V", 4330, 7.60, 0.66, 0.672), ("K6V", 4230, 7.80, 0.65, 0.661),
    ("K6.5V", 4190, 8.01, 0.64, 0.656), ("K7V", 4070, 8.15, 0.63, 0.654), ("K8V", 4000, 8.47, 0.59, 0.587),
    ("K9V", 3940, 8.69, 0.56, 0.552), ("M0V", 3870, 8.91, 0.55, 0.559), ("M0.5V", 3800, 9.20, 0.54, 0.535),
    ("M1V", 3700, 9.69, 0.49, 0.496), ("M1.5V", 3650, 9.97, 0.47, 0.460), ("M2V", 3550, 10.30, 0.44, 0.434),
    ("M2.5V", 3500, 10.70, 0.40, 0.393), ("M3V", 3410, 11.14, 0.36, 0.369), ("M3.5V", 3250, 12.19, 0.26, 0.291),
    ("M4V", 3200, 12.80, 0.22, 0.258), ("M4.5V", 3100, 13.57, 0.18, 0.243), ("M5V", 3030, 14.30, 0.16, 0.199),
    ("M5.5V", 3000, 15.51, 0.12, 0.149),
)
_TABLE = np.array([row[1:] for row in DWARF_SEQUENCE], dtype=float)[::-1]  # increasing Teff
_TEFF, _MV, _MASS, _RADIUS = _TABLE.T
_LOGG = LOGG_SUN + np.log10(_MASS) - 2.0 * np.log10(_RADIUS)

MAIN_SEQUENCE_TEFF_RANGE_K = (float(_TEFF[0]), float(_TEFF[-1]))
"""Teff span (K) of the tabulated dwarf sequence; the relations refuse values outside it."""

REDDENING_DEFAULTS = {"mag_per_kpc": 0.61, "scale_height_pc": 125.0, "bubble_radius_pc": 0.0}
GCS_DISC_MEAN_UVW_KMS = (-9.9, -16.9, -7.1)
GCS_DISC_SIGMA_UVW_KMS = (32.5, 17.8, 16.5)


def _check_teff(teff_k):
    teff_k = np.asarray(teff_k, dtype=float)
    lo, hi = MAIN_SEQUENCE_TEFF_RANGE_K
    if np.any(~np.isfinite(teff_k) | (teff_k < lo) | (teff_k > hi)):
        raise ValueError(f"teff_k must lie in {lo:.0f}-{hi:.0f} K for the main-sequence relations")
    return teff_k


def main_sequence_logg(teff_k):
    """Dwarf-sequence log g (cgs) at ``teff_k`` (Pecaut & Mamajek 2013 masses and radii)."""
    return np.interp(_check_teff(teff_k), _TEFF, _LOGG)


def absolute_vmag(teff_k):
    """Dwarf-sequence absolute V magnitude at ``teff_k`` (Pecaut & Mamajek 2013 / Mamajek 2018)."""
    return np.interp(_check_teff(teff_k), _TEFF, _MV)


def galactic_latitude_longitude_deg(ra_deg, dec_deg):
    """Galactic (l, b) in degrees of ICRS positions (astropy)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    galactic = SkyCoord(np.asarray(ra_deg) * u.deg, np.asarray(dec_deg) * u.deg, frame="icrs").galactic
    return galactic.l.deg, galactic.b.deg


def reddening_from_distance(distance_pc, b_deg, mag_per_kpc=0.61, scale_height_pc=125.0, bubble_radius_pc=0.0):
    """E(B-V) (mag) through an exponential dust layer (see the module docstring); no scatter."""
    path_pc = np.maximum(np.asarray(distance_pc, dtype=float) - bubble_radius_pc, 0.0)
    sin_b = np.abs(np.sin(np.radians(b_deg)))
    x = path_pc * sin_b / scale_height_pc
    # (1 - exp(-x)) / x -> 1 as x -> 0; expm1 keeps it exact for small x
    factor = np.where(x > 1e-12, -np.expm1(-x) / np.where(x > 1e-12, x, 1.0), 1.0)
    return mag_per_kpc * path_pc / 1000.0 * factor


def line_of_sight_velocity(l_deg, b_deg, uvw_kms):
    """Projection of heliocentric (U, V, W) velocities (..., 3) on the directions (l, b): km/s, positive receding."""
    l_rad, b_rad = np.radians(l_deg), np.radians(b_deg)
    direction = np.stack([np.cos(b_rad) * np.cos(l_rad), np.cos(b_rad) * np.sin(l_rad), np.sin(b_rad)], axis=-1)
    return np.sum(np.asarray(uvw_kms) * direction, axis=-1)
