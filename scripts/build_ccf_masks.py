"""Pack the HARPS DRS cross-correlation masks into simharps/data/ccf_masks.npz (read by simharps.ingest.masks).

Input: the 11 FITS masks HARPS_{F9,G2,G8,G9,K2,K6,M0,M2,M3,M4,M5}.fits of the MIT-licensed iCCF package
(../shared/data/ccf_masks, licence LICENSE-iccf.txt beside them): one binary table per file with columns
``lambda`` (line centre, air, A, float64) and ``contrast`` (line weight, float32).

Output: one compressed npz with, per mask NAME, ``NAME_wavelength_air_aa`` (float64, sorted increasing) and
``NAME_weight`` (float32, the ``contrast`` column in the same order), plus ``names`` (the mask names) and
``licence`` (the iCCF MIT licence text, which must travel with the copied data). Values are copied unchanged
(no line is dropped), so ``simharps.ingest.masks.load_ccf_mask(NAME)`` equals
``simharps.ccf.read_ccf_mask(HARPS_NAME.fits)`` exactly.

Run:  .venv/bin/python scripts/build_ccf_masks.py [MASK_DIR]     (default ../shared/data/ccf_masks; < 1 s)
"""

import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "simharps" / "data" / "ccf_masks.npz"
NAMES = ("F9", "G2", "G8", "G9", "K2", "K6", "M0", "M2", "M3", "M4", "M5")


def main(mask_dir):
    mask_dir = Path(mask_dir)
    arrays = {"names": np.array(NAMES), "licence": np.array((mask_dir / "LICENSE-iccf.txt").read_text())}
    for name in NAMES:
        with fits.open(mask_dir / f"HARPS_{name}.fits") as hdul:
            data = hdul[1].data
            wavelength = np.asarray(data["lambda"], dtype=np.float64)
            weight = np.asarray(data["contrast"], dtype=np.float32)
        order = np.argsort(wavelength, kind="stable")
        arrays[f"{name}_wavelength_air_aa"] = wavelength[order]
        arrays[f"{name}_weight"] = weight[order]
        print(f"{name}: {wavelength.size} lines, {wavelength.min():.2f}-{wavelength.max():.2f} A, "
              f"weights {weight.min():.3f}-{weight.max():.3f}")
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "ccf_masks")
