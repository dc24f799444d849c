"""Which product wavelengths HARPS records at all: the echelle orders' valid ranges, widened by the BERV limit.

A product bin (air, barycentric frame) gets data when some order's valid pixels reach it. The orders'
ranges (``simharps.instrument.EchelleLayout.valid_range_air_aa``, observatory frame) move by the BERV,
at most ``simharps.extraction.BERV_LIMIT_KMS``, so the wavelengths reachable at some BERV are the
ranges stretched by 1 -+ BERV_LIMIT_KMS / c. What lies outside them (the CCD gap between the blue and
red detectors, ~5305-5337 A, and slivers at the ends of the 1D range) never holds data: a window
there would be a dataset of NaN.
"""

from functools import lru_cache

import numpy as np

from simharps.constants import C_KMS
from simharps.extraction import BERV_LIMIT_KMS
from simharps.instrument import EchelleLayout


@lru_cache(maxsize=1)
def covered_ranges_aa():
    """(n, 2) disjoint sorted intervals of air wavelength (A) that some order reaches at some |BERV| <= the limit."""
    ranges = np.sort(EchelleLayout().valid_range_air_aa, axis=0)
    stretch = BERV_LIMIT_KMS / C_KMS
    merged = []
    for low, high in zip(ranges[:, 0] * (1.0 - stretch), ranges[:, 1] * (1.0 + stretch)):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return np.asarray(merged)


def uncovered_gap_aa(start_aa, stop_aa):
    """(low, high) A of the no-data gap holding all of the window [start_aa, stop_aa] A; None if any of it has data."""
    ranges = covered_ranges_aa()
    if np.any((ranges[:, 0] < stop_aa) & (ranges[:, 1] > start_aa)):
        return None
    below = ranges[ranges[:, 1] <= start_aa, 1]
    above = ranges[ranges[:, 0] >= stop_aa, 0]
    return (below.max() if below.size else -np.inf, above.min() if above.size else np.inf)
