"""Time all metrics, intervals included: 10,000 spectra x 128 latents x 15 scored factors (+ target_id).

Worst case for the interval cost: every latent is informative (MAD > 0.02). The table mimics a simulated
population (1,000 targets x 10 epochs: per-target stellar parameters, per-epoch observing conditions,
instrument mode); 10 latents follow factors or mixtures of them, 118 are unit-variance noise. The telluric metric
runs on 64 reconstructions of 11,000 channels (the hits recipe's length). Default options
(``analysis.metrics.evaluate.DEFAULTS``) unless given as KEY=VALUE arguments.

Run: .venv/bin/python benchmarks/bench_metrics.py [n_subsamples=20 n_permutations=20 ...]
"""

import resource
import sys
import time

import numpy as np
from astropy.table import Table

from analysis.metrics import evaluate, format_table


def population(n_targets=1000, n_epochs=10, seed=0):
    rng = np.random.default_rng(seed)
    n = n_targets * n_epochs
    per_target = lambda values: np.repeat(values, n_epochs)                    # noqa: E731
    teff = rng.uniform(3500, 7000, n_targets)
    columns = {"spectrum_index": np.arange(n), "failed": np.zeros(n, bool),
               "target_id": per_target([f"T{i:05d}" for i in range(n_targets)]),
               "teff_k": per_target(teff), "logg_cgs": per_target(4.4 + (5800 - teff) / 1e4 + rng.normal(0, .1, n_targets)),
               "mh_dex": per_target(rng.normal(0, 0.3, n_targets)), "vsini_kms": per_target(rng.gamma(2, 3, n_targets)),
               "rv_kms": per_target(rng.normal(0, 30, n_targets)), "ebv_mag": per_target(rng.exponential(0.05, n_targets)),
               "vmag": per_target(rng.uniform(5, 10, n_targets)), "berv_kms": rng.uniform(-30, 30, n),
               "airmass": rng.uniform(1, 2, n), "pwv_mm": rng.lognormal(1.2, 0.5, n), "seeing_arcsec": rng.uniform(0.5, 2, n),
               "fibre_offset_arcsec": rng.rayleigh(0.1, n), "exptime_s": rng.choice([300.0, 600.0, 900.0, 1200.0, 1800.0, 2400.0,
                                                                                     3000.0, 3600.0, 450.0, 750.0, 1500.0], n),
               "instrument_mode": rng.choice(["HAM", "EGGS"], n), "mjd_utc": 53000 + rng.uniform(0, 4000, n)}
    columns["snr_550"] = 100 * 10 ** (-0.2 * (columns["vmag"] - 6)) * np.sqrt(columns["exptime_s"] / 60)
    return Table(columns)


def latents(table, n_latent=128, seed=1):
    rng = np.random.default_rng(seed)
    n = len(table)
    col = lambda name: (np.asarray(table[name]) - np.mean(table[name])) / np.std(table[name])   # noqa: E731
    planted = [col("teff_k"), col("logg_cgs") + col("teff_k"), col("berv_kms"), col("pwv_mm") * col("airmass"),
               np.log(np.asarray(table["snr_550"])), col("vsini_kms") ** 3, col("rv_kms") + col("berv_kms"),
               col("mh_dex"), col("ebv_mag") + col("seeing_arcsec"), col("airmass")]
    z = rng.normal(size=(n, n_latent))
    z[:, :len(planted)] = np.column_stack(planted) + 0.1 * rng.normal(size=(n, len(planted)))
    return z.astype(np.float32)


def telluric_inputs(table, n_spectra=64, n_channels=11000, seed=2):
    rng = np.random.default_rng(seed)
    x = np.arange(n_channels)
    S = np.ones(n_channels)
    for c in rng.uniform(0, n_channels, 400):
        S *= 1 - rng.uniform(0.05, 0.7) * np.exp(-0.5 * ((x - c) / 1.5) ** 2)
    T = np.ones((n_spectra, n_channels))
    for c in rng.uniform(0, n_channels, 150):
        T *= 1 - rng.uniform(0.05, 0.6) * np.exp(-0.5 * ((x[None, :] - c - rng.normal(0, 3, (n_spectra, 1))) / 1.2) ** 2)
    C = 1000 * (1 + 0.2 * x / n_channels) * S * np.ones((n_spectra, 1))
    sigma = np.sqrt(C * T)
    data = C * T + rng.normal(size=C.shape) * sigma
    return {"spectrum_index": np.arange(n_spectra) * 10, "data": data, "reconstruction": C * T + 0.3 * C * (1 - T),
            "sigma": sigma, "telluric": T, "stellar": S * np.ones((n_spectra, 1)), "expected": C}


def main(options):
    table = population()
    z = latents(table)
    telluric = telluric_inputs(table)
    start = time.perf_counter()
    doc = evaluate(z, table, config=options, telluric=telluric, model="bench", dataset_info={"name": "bench"})
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(format_table(doc))
    print(f"\n{z.shape[0]} spectra x {z.shape[1]} latents x {len(doc['factors'])} factors "
          f"({len(doc['metrics'])} scalar metrics, {doc['info']['options']['n_subsamples']} subsamples, "
          f"{doc['info']['options']['n_permutations']} permutations): {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB")


def _parse(arguments):
    options = {}
    for argument in arguments:
        key, value = argument.split("=", 1)
        options[key] = int(value) if value.isdigit() else value
    return options


if __name__ == "__main__":
    main(_parse(sys.argv[1:]))
