"""Time HARPS extraction and order merging (run by hand: python benchmarks/bench_instrument.py [BATCH]).

A full-range observatory-frame photon spectrum on the 0.15 km/s working grid (3770-6925 A, 1.2 M
samples) is LSF-convolved and integrated into 72 x 4096 pixels, then merged onto the 313,201-bin
archive grid at a BERV; single spectra and a batch.
"""

import sys
import time

import numpy as np

from simharps.grids import WORKING_STEP_KMS, log_lambda_grid
from simharps.instrument import EchelleLayout, HarpsSpectrograph


def best_of(func, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(batch=8):
    start = time.perf_counter()
    layout = EchelleLayout()
    _ = (layout.blaze, layout.pixel_edges_air_aa, layout.pixel_width_aa)  # fill the geometry caches
    print(f"layout load + geometry caches      {time.perf_counter() - start:.3f} s")
    spectrograph = HarpsSpectrograph(layout)
    wave = log_lambda_grid(3770.0, 6925.0, step_kms=WORKING_STEP_KMS)
    rng = np.random.default_rng(0)
    density = 100.0 * (1.0 - 0.5 * rng.random((batch, wave.size)) ** 8)

    seconds, counts = best_of(lambda: spectrograph.extract(wave, density[0]))
    print(f"extract, 1 spectrum ({wave.size} samples -> 72 x 4096 px)   {seconds:.3f} s")
    seconds, _ = best_of(lambda: spectrograph.extract(wave, density[0], apply_lsf=False))
    print(f"extract without LSF, 1 spectrum                        {seconds:.3f} s")
    variance = counts + 17 * 5.45**2
    seconds, product = best_of(lambda: spectrograph.merge(counts, variance, berv_kms=-8.686))
    print(f"merge, 1 spectrum ({product.flux.size} bins)                     {seconds:.3f} s")

    seconds, counts_batch = best_of(lambda: spectrograph.extract(wave, density), repeats=1)
    print(f"extract, batch of {batch}                                  {seconds:.3f} s ({seconds / batch:.3f} s each)")
    seconds, _ = best_of(lambda: spectrograph.merge(counts_batch, counts_batch + 17 * 5.45**2, berv_kms=-8.686), repeats=1)
    print(f"merge, batch of {batch} (one BERV)                         {seconds:.3f} s ({seconds / batch:.3f} s each)")
    bervs = np.linspace(-30.0, 30.0, batch)
    seconds, _ = best_of(lambda: spectrograph.merge(counts_batch, counts_batch + 17 * 5.45**2, berv_kms=bervs), repeats=1)
    print(f"merge, batch of {batch} (one BERV each)                    {seconds:.3f} s ({seconds / batch:.3f} s each)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
