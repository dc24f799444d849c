"""Time full-range telluric transmissions (run by hand: python benchmarks/bench_atmosphere.py [REPEATS])."""

import sys
import time

import numpy as np

from simharps.grids import PRODUCT_RANGE_AA, WORKING_STEP_KMS, log_lambda_grid, product_grid
from simharps.telluric import TelluricModel, default_telluric_model, telluric_optical_depth, telluric_transmission


def best_of(func, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main(repeats=3):
    start = time.perf_counter()
    TelluricModel()
    print(f"{'load tables (per process)':44s} {time.perf_counter() - start:.3f} s")
    default_telluric_model()
    working = log_lambda_grid(*PRODUCT_RANGE_AA, step_kms=WORKING_STEP_KMS)
    product = product_grid()
    cases = (
        (f"optical depths, {working.size} px @ {WORKING_STEP_KMS} km/s",
         lambda: telluric_optical_depth(working, 1.3, 2.0)),
        (f"transmission native, {working.size} px", lambda: telluric_transmission(working, 1.3, 2.0)),
        (f"transmission R=115k, {working.size} px", lambda: telluric_transmission(working, 1.3, 2.0, 115_000)),
        (f"transmission native, product {product.size} px", lambda: telluric_transmission(product, 1.3, 2.0)),
        (f"transmission R=115k, product {product.size} px", lambda: telluric_transmission(product, 1.3, 2.0, 115_000)),
        ("transmission R=115k, product, batch of 8",
         lambda: telluric_transmission(product, np.linspace(1.0, 2.0, 8), np.linspace(0.5, 10.0, 8), 115_000)),
    )
    for label, func in cases:
        print(f"{label:44s} {best_of(func, repeats):.3f} s per call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
