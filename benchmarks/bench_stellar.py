"""Benchmark of the built-in stellar synthesis: one full-range template, and stars from templates.

Run by hand: ``python benchmarks/bench_stellar.py [--stars N]``. Uses a temporary template cache
(``SIMHARPS_CACHE`` is ignored) so that build times are real. Reports wall times (the line tables' load, a
G, K and M template node built without caching: best of two) and the peak resident memory of the process
(``resource.getrusage``).
"""

import argparse
import resource
import sys
import tempfile
import time

import numpy as np

from simharps.stellar.linelist import load_line_table
from simharps.stellar.synthesis import synthesize
from simharps.stellar.templates import TemplateGrid

NODES = {"G": (5750.0, 4.5, 0.0), "K": (5250.0, 4.5, 0.0), "M": (3500.0, 5.0, 0.0)}


def peak_memory_mb():
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=50, help="stars drawn from the templates")
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = load_line_table()
    print(f"line tables loaded ({len(table):,} lines, {table.forest.sum():,} of the forest): "
          f"{time.perf_counter() - t0:.2f} s")
    with tempfile.TemporaryDirectory() as cache:
        grid = TemplateGrid(cache_dir=cache)
        for label, node in NODES.items():
            spent = []
            for _ in range(2):
                t0 = time.perf_counter()
                grid.build_template(*node)
                spent.append(time.perf_counter() - t0)
            print(f"template node {label} {node}: built in {min(spent):.2f} s (best of 2)")

    t0 = time.perf_counter()
    direct = synthesize(5770.0, 4.44, 0.0, vsini_kms=2.0, rv_kms=10.0)
    t_direct = time.perf_counter() - t0
    print(f"direct synthesis, full range ({len(direct.flux):,} px): {t_direct:.2f} s")

    with tempfile.TemporaryDirectory() as cache:
        grid = TemplateGrid(cache_dir=cache)
        t0 = time.perf_counter()
        grid.template(5750.0, 4.5, 0.0)
        t_build = time.perf_counter() - t0
        print(f"one template built and cached, full range: {t_build:.2f} s")

        t0 = time.perf_counter()
        for teff in (5750.0, 6000.0):
            for logg in (4.5, 5.0):
                for mh in (-0.5, 0.0):
                    grid.template(teff, logg, mh)
        t_corners = time.perf_counter() - t0
        print(f"remaining 7 corners of one grid cell: {t_corners:.2f} s")

        rng = np.random.default_rng(0)
        stars = [dict(teff_k=rng.uniform(5750, 6000), logg_cgs=rng.uniform(4.5, 5.0), mh_dex=rng.uniform(-0.5, 0.0),
                      vsini_kms=rng.uniform(0, 10), rv_kms=rng.uniform(-100, 100)) for _ in range(args.stars)]
        grid.spectrum(**stars[0])
        t0 = time.perf_counter()
        for star in stars:
            grid.spectrum(**star)
        t_star = (time.perf_counter() - t0) / len(stars)
        print(f"per star from cached templates, full range (interpolate + broaden + shift): {t_star * 1e3:.1f} ms")
        fresh = TemplateGrid(cache_dir=cache)
        t0 = time.perf_counter()
        fresh.spectrum(**stars[0])
        print(f"first star of a new process (8 templates read from disk): {time.perf_counter() - t0:.2f} s")
    print(f"peak resident memory: {peak_memory_mb():.0f} MB")


if __name__ == "__main__":
    main()
