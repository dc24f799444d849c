"""Build the telluric tables that simharps ships (see simharps/data/telluric.md).

Computes, line by line from the HITRAN subsets in ../shared/data/hitran, the
zenith optical depth of O2 (airmass 1) and of 1 mm PWV of H2O above La Silla
(``simharps.buildtime.telluric_lbl.SiteAtmosphere``) on a 0.1 km/s vacuum log-lambda grid,
keeps the segments where tau > 1e-5, and writes them as compressed float32
npz files (mantissa rounded to 14 bits); also copies the La Silla extinction curve into an npz.

Usage::

    .venv/bin/python scripts/build_telluric_tables.py [--shared-data ../shared/data] [--out simharps/data]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from simharps.buildtime.telluric_lbl import HitranLineList, PartitionSum, SiteAtmosphere, line_by_line_optical_depth
from simharps.constants import C_KMS
from simharps.extinction import EXTINCTION_FILE
from simharps.telluric import PWV_REFERENCE_MM, TABLE_FILES

WAVE0_VAC_AA = 3760.0
WAVE1_VAC_AA = 6945.0
STEP_KMS = 0.1
KEEP_ABOVE = 1e-5
MERGE_GAP_PX = 16
"""Runs of tau > KEEP_ABOVE closer than this are stored as one segment (fewer, longer segments)."""
MANTISSA_BITS = 14
"""float32 mantissa bits kept (relative rounding < 6.1e-5): the zeroed low bits make the npz compress by 25%."""


def segments(tau, keep_above=KEEP_ABOVE, merge_gap=MERGE_GAP_PX):
    """(start, length) of the runs where tau > keep_above, runs closer than merge_gap joined."""
    above = np.flatnonzero(tau > keep_above)
    if above.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(above) > merge_gap)
    starts = np.concatenate([[above[0]], above[breaks + 1]])
    stops = np.concatenate([above[breaks], [above[-1]]]) + 1
    return starts, stops - starts


def quantise(values, mantissa_bits=MANTISSA_BITS):
    """float32 copy of ``values`` with the mantissa truncated to ``mantissa_bits`` bits."""
    mask = np.uint32((0xFFFFFFFF << (23 - mantissa_bits)) & 0xFFFFFFFF)
    return (np.asarray(values, dtype=np.float32).view(np.uint32) & mask).view(np.float32)


def main():
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=root.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=root / "simharps" / "data")
    args = parser.parse_args()
    hitran = args.shared_data / "hitran"
    atmosphere = SiteAtmosphere()
    n_points = int(np.ceil(np.log(WAVE1_VAC_AA / WAVE0_VAC_AA) / (STEP_KMS / C_KMS))) + 1
    for species in ("O2", "H2O"):
        t0 = time.perf_counter()
        lines = HitranLineList.from_par(hitran / f"{species}_3750_6950.par.gz")
        qsum = PartitionSum(hitran / f"{species}_QT.txt")
        layers = atmosphere.layers(species)
        tau = line_by_line_optical_depth(lines, qsum, species, layers, WAVE0_VAC_AA, STEP_KMS, n_points)
        start, length = segments(tau)
        kept = quantise(np.concatenate([tau[a:a + n] for a, n in zip(start, length)]))
        out = args.out / TABLE_FILES[species]
        np.savez_compressed(
            out, tau=kept, segment_start=start.astype(np.int32), segment_length=length.astype(np.int32),
            wave0_vac_aa=WAVE0_VAC_AA, step_kms=STEP_KMS, n_points=n_points, keep_above=KEEP_ABOVE,
            reference=("airmass 1 (zenith)" if species == "O2" else f"{PWV_REFERENCE_MM} mm PWV at zenith"))
        dropped = tau[tau <= KEEP_ABOVE]
        print(f"{species}: {lines.wavenumber_cm.size} lines, {len(layers[0])} layers, "
              f"{time.perf_counter() - t0:.1f} s; max tau {tau.max():.3g}; kept {kept.size}/{n_points} px "
              f"in {start.size} segments; largest dropped tau {dropped.max():.2e}, "
              f"dropped share of the tau integral {dropped.sum() / tau.sum():.2e}; "
              f"{out.name} {out.stat().st_size / 1e6:.2f} MB")
    table = np.loadtxt(args.shared_data / "site" / "lasilla_extinction.dat")
    np.savez_compressed(args.out / EXTINCTION_FILE, wavelength_aa=table[:, 0],
                        extinction_mag_per_airmass=table[:, 1])
    print(f"{EXTINCTION_FILE}: {table.shape[0]} points, {table[0, 0]:.0f}-{table[-1, 0]:.0f} A")


if __name__ == "__main__":
    main()
