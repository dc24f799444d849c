"""Write and read full-length datasets with a fake simulator: throughput, bytes per spectrum, peak RSS vs N.

Run by hand:  python benchmarks/bench_dataset.py [N ...] [--workers W] [--chunk-size C] [--no-components]
              [--out DIR] [--keep]

Each N runs in a fresh child process (so its peak RSS is its own). The fake simulator makes 313,201-channel
spectra (3781-6913 A on the 0.01 A lattice) shaped like the forward model's output: flux in electrons with a
continuum envelope, ~5,000 stellar lines, telluric bands, the CCD gap as NaN, Gaussian noise at S/N 40-200
per bin drawn from the spectrum's SeedSequence, and the components ``stellar``, ``telluric`` and ``response``.
The forward model itself is ~100x slower per spectrum than this, so these numbers bound the store's overhead.
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simharps.grids import product_grid


@dataclass
class Batch:
    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    components: dict
    truth: list
    failed: list


_TEMPLATE = {}


def _template():
    if not _TEMPLATE:
        rng = np.random.default_rng(2024)
        wave = product_grid()
        lines = np.ones(wave.size)
        for centre in rng.uniform(wave[0], wave[-1], 5000):
            i = int((centre - wave[0]) / 0.01)
            part = slice(max(i - 60, 0), min(i + 60, wave.size))
            lines[part] *= 1 - rng.uniform(0.02, 0.8) * np.exp(-0.5 * ((wave[part] - centre) / 0.06) ** 2)
        telluric = np.ones(wave.size)
        for centre in rng.uniform(6270, 6913, 400):
            i = int((centre - wave[0]) / 0.01)
            part = slice(max(i - 20, 0), min(i + 20, wave.size))
            telluric[part] *= 1 - rng.uniform(0.01, 0.9) * np.exp(-0.5 * ((wave[part] - centre) / 0.03) ** 2)
        response = np.exp(-0.5 * ((wave - 5600) / 1100) ** 2) + 0.05
        response[(wave > 5304.1) & (wave < 5337.0)] = np.nan
        _TEMPLATE.update(wave=wave, lines=lines, telluric=telluric, response=response)
    return _TEMPLATE


def fake_simulate_batch(rows, seeds, components=True):
    """simulate_batch stand-in at full length (see the module docstring)."""
    t = _template()
    n, m = len(rows), t["wave"].size
    flux = np.empty((n, m), np.float32)
    error = np.empty((n, m), np.float32)
    truth = []
    for j, (row, seq) in enumerate(zip(rows, seeds)):
        rng = np.random.default_rng(seq)
        peak = row["snr"] ** 2
        expected = peak * t["response"] * t["lines"] * t["telluric"]
        sigma = np.sqrt(expected + 17 * 5.45**2)
        flux[j] = expected + rng.standard_normal(m) * sigma
        error[j] = sigma
        truth.append({**row, "berv_kms": float(rng.uniform(-30, 30)), "snr_550": float(row["snr"])})
    parts = {}
    if components:
        parts = {"stellar": np.broadcast_to(t["lines"].astype(np.float32), (n, m)),
                 "telluric": np.broadcast_to(t["telluric"].astype(np.float32), (n, m)),
                 "response": (np.array([row["snr"] ** 2 for row in rows])[:, None] * t["response"]).astype(np.float32)}
    return Batch(t["wave"], flux, error, parts, truth, [])


def child(n, out, workers, chunk_size, components):
    from functools import partial

    from simharps.dataset import generate, open_dataset

    rows = [{"target_id": f"star {i % 97}", "epoch": i // 97, "snr": 40.0 + 160.0 * ((i * 0.618) % 1.0),
             "teff_k": 3000.0 + 4500.0 * ((i * 0.377) % 1.0)} for i in range(n)]
    start = time.perf_counter()
    ds = generate(rows, 1, out, partial(fake_simulate_batch, components=components), chunk_size=chunk_size,
                  workers=workers, progress=False)
    write_s = time.perf_counter() - start
    write_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    members = {}
    for entry in ds.manifest["chunks"]:
        with zipfile.ZipFile(out / entry["file"]) as archive:
            for info in archive.infolist():
                name = info.filename.split(".")[0]
                members[name] = members.get(name, 0) + info.compress_size
    total = sum(entry["bytes"] for entry in ds.manifest["chunks"]) + (out / "table.npy").stat().st_size
    ds = open_dataset(out)
    start = time.perf_counter()
    checksum = 0.0
    for batch in ds.iter_batches(arrays=("flux", "error")):
        checksum += float(np.nansum(batch.flux[:, ::1000]))
    read_s = time.perf_counter() - start
    ds = open_dataset(out)
    single = time.perf_counter()
    ds.flux[n // 2]
    single_s = time.perf_counter() - single
    print(json.dumps({
        "n": n, "workers": workers, "chunk_size": chunk_size, "write_s": write_s, "spectra_per_s": n / write_s,
        "mb_per_s_raw_float32": n * ds.n_channels * 4 * (2 + 3 * components) / write_s / 1e6,
        "bytes_per_spectrum": total / n, "bytes_per_spectrum_by_array": {k: v / n for k, v in members.items()},
        "read_flux_error_spectra_per_s": n / read_s, "read_one_spectrum_ms": single_s * 1e3,
        "peak_rss_mb_writer": write_rss,
        "peak_rss_mb_total": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_mb_worker_processes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rounding_rms_over_error": ds.manifest["arrays"]["flux"]["rounding_rms_over_error"]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="*", type=int, default=[2000, 10000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--no-components", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="folder for the datasets (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the datasets")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.n[0], args.out, args.workers, args.chunk_size, not args.no_components)
        return
    root = args.out or Path(tempfile.mkdtemp(prefix="simharps-bench-"))
    print(f"{'N':>6} {'workers':>7} {'write s':>8} {'spec/s':>7} {'MB/s raw':>8} {'kB/spec':>8} "
          f"{'read spec/s':>11} {'1 spec ms':>9} {'RSS MB':>7} {'worker RSS':>10}  kB/spec by array")
    for n in args.n:
        out = root / f"bench-{n}"
        command = [sys.executable, __file__, str(n), "--child", "--out", str(out), "--workers", str(args.workers),
                   "--chunk-size", str(args.chunk_size)] + (["--no-components"] if args.no_components else [])
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        by_array = ", ".join(f"{k} {v / 1e3:.0f}" for k, v in result["bytes_per_spectrum_by_array"].items())
        print(f"{n:6d} {args.workers:7d} {result['write_s']:8.1f} {result['spectra_per_s']:7.1f} "
              f"{result['mb_per_s_raw_float32']:8.0f} {result['bytes_per_spectrum'] / 1e3:8.1f} "
              f"{result['read_flux_error_spectra_per_s']:11.1f} {result['read_one_spectrum_ms']:9.1f} "
              f"{result['peak_rss_mb_total']:7.0f} {result['peak_rss_mb_worker_processes']:10.0f}  {by_array}")
        print(f"       flux rounding rms / noise: {result['rounding_rms_over_error']}")
        if not args.keep:
            shutil.rmtree(out)
    if not args.keep and args.out is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
