"""HARPS fibre-link eras: the 2015 upgrade date and the MJD window of each era (shared by schema and sampling)."""

from simharps.kinematics import MJD_RANGE

FIBRE_UPGRADE_MJD = 57174.0
"""2015-06-01 (UTC): HARPS fibre-link upgrade (octagonal fibres, late May/June 2015; Lo Curto et al. 2015,
The Messenger 162, 9). ``fibre_era: auto`` is ``pre2015`` before it and ``post2015`` from it on."""

ERA_WINDOWS_MJD = {"pre2015": (MJD_RANGE[0], FIBRE_UPGRADE_MJD), "post2015": (FIBRE_UPGRADE_MJD, MJD_RANGE[1])}
"""(start, stop) UTC MJD of each fixed fibre era."""
