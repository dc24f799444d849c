"""Time reading and writing archive products (run by hand: python benchmarks/bench_io.py [HARPS_DIR] [REPEATS]).

HARPS_DIR defaults to ../shared/data/harps (the real files); writing uses a synthetic full-range spectrum.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from simharps.grids import product_grid
from simharps.io import read_e2ds, read_harps, write_adp

FILES = ("ADP.2014-09-16T11:04:45.123.fits", "HARPS.2010-09-18T23:42:36.178_s1d_A.fits", "HD41248_1_1_S1D_A.fits")


def best_of(func, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main(harps_dir, repeats=5):
    import specutils

    for name in FILES:
        path = harps_dir / name
        print(f"{'read_harps ' + name:60s} {best_of(lambda: read_harps(path), repeats) * 1e3:7.1f} ms")
        print(f"{'Spectrum.read ' + name:60s} {best_of(lambda: specutils.Spectrum.read(path), repeats) * 1e3:7.1f} ms")
    e2ds = harps_dir / "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits"
    print(f"{'read_e2ds ' + e2ds.name:60s} {best_of(lambda: read_e2ds(e2ds), repeats) * 1e3:7.1f} ms")
    wave = product_grid()
    rng = np.random.default_rng(0)
    flux = (1000 + 30 * rng.standard_normal(wave.size)).astype(np.float32)
    error = np.sqrt(flux)
    meta = {"object": "bench", "berv_kms": 1.0, "mjd_utc": 58000.0, "exptime_s": 900.0, "site": "lasilla"}
    truth = {f"param_{i}": float(i) for i in range(30)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.fits"
        write = best_of(lambda: write_adp(path, wave, flux, error, meta, truth=truth, overwrite=True), repeats)
        print(f"{f'write_adp {wave.size} px, 30 truth keys':60s} {write * 1e3:7.1f} ms")
        print(f"{'read_harps of that file':60s} {best_of(lambda: read_harps(path), repeats) * 1e3:7.1f} ms")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "harps"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
