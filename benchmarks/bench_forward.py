"""Throughput of the whole forward chain on full-resolution (313,201-bin) products.

Run by hand: ``.venv/bin/python benchmarks/bench_forward.py [N]``. Reports spectra per second on one core
(templates already cached on disk; the first star of a new (Teff, logg, [M/H]) cell builds its 8 corner templates),
how much of it is the stellar template call (``TemplateGrid.spectrum``, the same windows), the split of time between
stages (cProfile, top entries) and the peak resident memory.
"""

import cProfile
import pstats
import resource
import sys
import time

import numpy as np

from simharps.constants import C_KMS
from simharps.forward import default_templates, reference_efficiency, simulate
from simharps.grids import PRODUCT_RANGE_AA


def population(n, rng):
    """Solar-type stars with random conditions, all inside one template cell (5750-6000 K, 4.0-4.5, -0.5-0)."""
    return [dict(teff_k=rng.uniform(5760, 5990), logg_cgs=rng.uniform(4.05, 4.45), mh_dex=rng.uniform(-0.45, -0.05),
                 vsini_kms=rng.uniform(1, 8), rv_kms=rng.normal(0, 30), vmag=rng.uniform(6, 10),
                 exptime_s=rng.uniform(300, 900), airmass=rng.uniform(1.0, 1.8), pwv_mm=rng.uniform(1, 8),
                 seeing_arcsec=rng.uniform(0.6, 1.4), berv_kms=rng.uniform(-30, 30)) for _ in range(n)]


def stellar_seconds(rows):
    """Time of the stellar template calls ``simulate`` makes for ``rows`` (full range, barycentric window)."""
    templates = default_templates()
    margin = WINDOW_MARGIN_KMS / C_KMS
    start = time.perf_counter()
    for row in rows:
        berv_factor = 1.0 + row["berv_kms"] / C_KMS
        window = (PRODUCT_RANGE_AA[0] * (1 - margin) * berv_factor, PRODUCT_RANGE_AA[1] * (1 + margin) * berv_factor)
        templates.spectrum(row["teff_k"], row["logg_cgs"], row["mh_dex"], vsini_kms=row["vsini_kms"],
                           rv_kms=row["rv_kms"], window=window)
    return time.perf_counter() - start


def main(n=20):
    rng = np.random.default_rng(0)
    rows = population(n, rng)
    reference_efficiency()
    simulate(rows[0], 0)
    start = time.perf_counter()
    for index, row in enumerate(rows):
        simulate(row, index)
    elapsed = time.perf_counter() - start
    print(f"{n} full-resolution spectra: {elapsed / n * 1000:.0f} ms each, {n / elapsed:.2f} spectra/s on one core")
    stellar = stellar_seconds(rows)
    print(f"  of which stellar templates: {stellar / n * 1000:.0f} ms each; the rest of the chain "
          f"{(elapsed - stellar) / n * 1000:.0f} ms each")
    profile = cProfile.Profile()
    profile.enable()
    for index, row in enumerate(rows[:5]):
        simulate(row, index)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
