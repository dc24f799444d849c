"""Time the classical BERV for a batch of spectra (run by hand: python benchmarks/bench_kinematics.py [N])."""

import sys
import time

import numpy as np

from simharps.kinematics import barycentric_correction, barycentric_correction_terms


def main(n_spectra=10_000, repeats=3):
    rng = np.random.default_rng(0)
    ra_deg = rng.uniform(0.0, 360.0, n_spectra)
    dec_deg = np.degrees(np.arcsin(rng.uniform(-1.0, 0.5, n_spectra)))
    mjd_utc = rng.uniform(52700.0, 61000.0, n_spectra)
    exptime_s = rng.uniform(60.0, 1800.0, n_spectra)
    barycentric_correction(ra_deg[:10], dec_deg[:10], mjd_utc[:10], exptime_s[:10])  # loads the IERS table once
    cases = (("classical BERV", barycentric_correction), ("BervTerms incl. astropy", barycentric_correction_terms))
    for label, func in cases:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            func(ra_deg, dec_deg, mjd_utc, exptime_s)
            best = min(best, time.perf_counter() - start)
        print(f"{label:24s} {n_spectra} spectra: {best:.3f} s, {best / n_spectra * 1e6:.1f} us per spectrum")
    start = time.perf_counter()
    for i in range(100):
        barycentric_correction(ra_deg[i], dec_deg[i], mjd_utc[i], exptime_s[i])
    print(f"{'scalar calls':24s} {(time.perf_counter() - start) / 100 * 1e3:.2f} ms per call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
