"""Observatory sites by name.

Geodetic (WGS84) positions as the real headers give them in ``ESO TEL[n] GEOLAT/GEOLON/GEOELEV``: La Silla from
the HARPS files, Paranal (UT3) from the ESPRESSO file; ``telescope`` is the ``TELESCOP`` value written for each.
"""

SITES = {
    "lasilla": {"lat_deg": -29.2584, "lon_deg": -70.7345, "elevation_m": 2400.0, "telescope": "ESO-3.6"},
    "paranal": {"lat_deg": -24.6268, "lon_deg": -70.4045, "elevation_m": 2648.0, "telescope": "ESO-VLT-U3"},
}
