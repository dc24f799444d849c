"""Throughput of the whole forward chain on full-resolution (313,201-bin) products.

Run by hand: ``.venv/bin/python benchmarks/bench_forward.py [N] [--population cell|grid]``. Reports, for N distinct
stars with random conditions (templates already cached on disk; ``cell``: all inside one template cell, the steady
state of a population sorted by stellar parameters; ``grid``: spread over 3500-7000 K, which also measures template
node loading):

* one core: milliseconds per spectrum through ``simulate_batch`` and the split between the chain's steps;
* two cores: two spawned processes, N spectra each, at once (spectra per second in total);
* peak resident memory of the one-core run.

The benchmark pins BLAS/OpenMP to one thread per process (the chain does not use them; it keeps the numbers per core).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402


def population(n, rng, spread="cell"):
    """Random stars and conditions: ``cell`` inside 5750-6000 K, 4.0-4.5, -0.5-0; ``grid`` over 3500-7000 K."""
    teff = (5760, 5990) if spread == "cell" else (3500, 7000)
    logg = (4.05, 4.45) if spread == "cell" else (4.0, 5.0)
    mh = (-0.45, -0.05) if spread == "cell" else (-1.0, 0.4)
    return [dict(teff_k=rng.uniform(*teff), logg_cgs=rng.uniform(*logg), mh_dex=rng.uniform(*mh),
                 vsini_kms=rng.uniform(1, 8), rv_kms=rng.normal(0, 30), vmag=rng.uniform(6, 10),
                 exptime_s=rng.uniform(300, 900), airmass=rng.uniform(1.0, 1.8), pwv_mm=rng.uniform(1, 8),
                 seeing_arcsec=rng.uniform(0.6, 1.4), berv_kms=rng.uniform(-30, 30)) for _ in range(n)]


def _steps(rows):
    """Seconds per step of the chain, summed over ``rows`` (the same calls ``simulate_batch`` makes)."""
    from simharps import forward
    from simharps.chain import active_factors, enabled_stages
    from simharps.detector import Detector

    plan = forward.forward_plan(*forward.PRODUCT_RANGE_AA)
    model = forward.default_stellar_model()
    efficiency = forward.reference_efficiency()
    factors = active_factors(enabled_stages(None))
    spent = dict.fromkeys(["star (interpolate, broaden, shift)", "narrow factors (tellurics, ISM)", "smooth factors", "LSF + pixels",
                           "detector", "merge"], 0.0)
    names = list(spent)
    for index, row in enumerate(rows):
        values = forward.resolve_parameters(row)
        marks = [time.perf_counter()]
        star = plan.place_star(model, values)
        marks.append(time.perf_counter())
        density = star.lines_obs
        for _, factor in plan.narrow_factors(values, factors, star):
            density = density * factor
        marks.append(time.perf_counter())
        continuum_e = plan.continuum_photons(model, values, factors, star, efficiency) * plan.pixel_scale
        marks.append(time.perf_counter())
        expected_e = continuum_e * plan.extraction.pixel_means(density)
        marks.append(time.perf_counter())
        counts_e, variance_e, _ = Detector().draw_e(expected_e, values["exptime_s"], np.random.default_rng(index))
        marks.append(time.perf_counter())
        plan.merge_plan.merge(counts_e[None, :], variance_e, values["berv_kms"])
        marks.append(time.perf_counter())
        for name, start, stop in zip(names, marks[:-1], marks[1:]):
            spent[name] += stop - start
    return spent


def one_core(rows):
    """(seconds per spectrum through simulate_batch, step split in seconds per spectrum, peak RSS MB)."""
    from simharps.forward import reference_efficiency, simulate_batch

    reference_efficiency()
    simulate_batch(rows[:1], [0])
    start = time.perf_counter()
    for index, row in enumerate(rows):
        simulate_batch([row], [index])
    per_spectrum = (time.perf_counter() - start) / len(rows)
    steps = {name: seconds / len(rows) for name, seconds in _steps(rows).items()}
    return per_spectrum, steps, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(task):
    seed, n, spread = task
    from simharps.forward import reference_efficiency, simulate_batch

    rows = population(n, np.random.default_rng(seed), spread)
    reference_efficiency()
    simulate_batch(rows[:1], [0])
    start = time.perf_counter()
    simulate_batch(rows, list(range(n)))
    return time.perf_counter() - start


def two_cores(n, spread):
    """Spectra per second of two processes simulating n spectra each at the same time."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        seconds = list(pool.map(_worker, [(1, n, spread), (2, n, spread)]))
    return 2 * n / max(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=40)
    parser.add_argument("--population", choices=("cell", "grid"), default="cell")
    args = parser.parse_args()
    rows = population(args.n, np.random.default_rng(0), args.population)
    per_spectrum, steps, peak_mb = one_core(rows)
    print(f"{args.n} full-resolution spectra ({args.population} population), one core: "
          f"{per_spectrum * 1000:.1f} ms each, {1 / per_spectrum:.1f} spectra/s; peak RSS {peak_mb:.0f} MB")
    for name, seconds in steps.items():
        print(f"  {name:36s} {seconds * 1000:6.2f} ms")
    print(f"  {'(sum of the steps)':36s} {sum(steps.values()) * 1000:6.2f} ms")
    print(f"two processes on two cores: {two_cores(args.n, args.population):.1f} spectra/s in total")


if __name__ == "__main__":
    main()
