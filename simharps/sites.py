"""Observatory sites by name.

Geodetic (WGS84) positions as the real headers give them in ``ESO TEL[n] GEOLAT/GEOLON/GEOELEV``: La Silla from
the HARPS files, Paranal (UT3) from the ESPRESSO file; ``telescope`` is the ``TELESCOP`` value written for each.
``median_pwv_mm``: night-time median precipitable water vapour, La Silla 3.9 mm (VLT site survey 1983-1989, VLT
Report 62, 1990), Paranal 2.4 mm (LHATPRO radiometer, Querel & Kerber 2014, SPIE 9147).
"""

SITES = {
    "lasilla": {"lat_deg": -29.2584, "lon_deg": -70.7345, "elevation_m": 2400.0, "telescope": "ESO-3.6",
                "median_pwv_mm": 3.9},
    "paranal": {"lat_deg": -24.6268, "lon_deg": -70.4045, "elevation_m": 2648.0, "telescope": "ESO-VLT-U3",
                "median_pwv_mm": 2.4},
}

TELESCOPE_KEYWORD_PREFIXES = ("ESO TEL", "ESO TEL1", "ESO TEL2", "ESO TEL3", "ESO TEL4")
"""Header keyword prefixes of the telescope in use: ``ESO TEL`` (La Silla 3.6 m) or ``ESO TEL1``..``ESO TEL4`` (the
VLT unit telescope feeding ESPRESSO), written ``ESO TEL[n]`` in the docs."""


def telescope_keywords(suffix):
    """``ESO TEL[n] <suffix>`` for every telescope prefix, in ``TELESCOPE_KEYWORD_PREFIXES`` order."""
    return [f"{prefix} {suffix}" for prefix in TELESCOPE_KEYWORD_PREFIXES]
