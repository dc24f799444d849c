"""Build ``simharps/data/stellar_lines.npz`` from the VALD-derived line-depth tables.

Input: the 16 zipped CSV tables (spectral types F0..M5) in
``../shared/data/linelists/vald_depths`` (VALD "extract stellar" lines with VALD central depths,
as shipped by the MIT-licensed ``arve`` package). Output: one row per unique line
(species, vacuum wavelength to 1e-3 A, log gf, E_low) inside the HARPS range plus margins, with:

* ``wavelength_air_aa``   VALD laboratory wavelength (``wave_vald``, vacuum) converted to air with
                          ``simharps.grids.vacuum_to_air`` (the ``wave`` column differs by up to ~2 km/s)
* ``species_index``       index into ``species_names`` ("Fe 1", "Ti 2", "TiO 1", ...)
* ``loggf``, ``e_low_ev`` log oscillator strength, lower-level excitation energy (eV)
* ``log_gamma_rad``       log10 radiative damping (s^-1); 0 = not given
* ``log_gamma_stark``     log10 Stark damping per electron at 10,000 K (s^-1 cm^3); 0 = not given
* ``vdw_code``            VALD van der Waals field as given: < 0 log10 gamma6 per H atom at 10,000 K
                          (s^-1 cm^3); > 0 Anstee-Barklem-O'Mara sigma.alpha (integer part: cross-section
                          sigma in a0^2 at 10 km/s, fraction: velocity exponent alpha); 0 = not given
* ``depth_permille``      (n_types, n_lines) uint16 VALD central depth x 1000 per spectral type;
                          0 where the line is not listed for that type (VALD depth < 0.1)
* ``spectral_types``, ``teff_k``, ``logg_cgs``: the type sequence and the dwarf Teff/logg adopted for it
  (Pecaut & Mamajek 2013, ApJS 208, 9, dwarf table; logg from the table's mass and radius)

H I lines are dropped: Balmer lines are modelled separately (``simharps.stellar.balmer``).

Usage: ``python scripts/build_line_table.py [--source DIR] [--out FILE]``
"""

import argparse
import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from simharps.grids import vacuum_to_air
from simharps.stellar.linelist import split_formula

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "linelists" / "vald_depths"
DEFAULT_OUT = ROOT / "simharps" / "data" / "stellar_lines.npz"

# Dwarf sequence of Pecaut & Mamajek (2013), version 2022.04.16 of the online table:
# spectral type -> (Teff K, logg cgs from M and R, rounded to 0.05 dex).
TYPE_SEQUENCE = {
    "F0": (7220.0, 4.15), "F2": (6820.0, 4.20), "F5": (6550.0, 4.25), "F8": (6180.0, 4.35),
    "G0": (5930.0, 4.40), "G2": (5770.0, 4.45), "G5": (5660.0, 4.45), "G8": (5480.0, 4.50),
    "K0": (5270.0, 4.50), "K2": (5100.0, 4.55), "K3": (4830.0, 4.55), "K5": (4440.0, 4.60),
    "K7": (4100.0, 4.65), "M0": (3850.0, 4.65), "M2": (3560.0, 4.80), "M5": (3060.0, 5.00),
}

VACUUM_RANGE_AA = (3690.0, 7010.0)
"""Kept span (vacuum, A): HARPS 3781-6913 A plus margins for +-300 km/s shifts and line wings."""

ATOMIC_MASS_AMU = {
    "H": 1.008, "He": 4.003, "Li": 6.94, "Be": 9.012, "B": 10.81, "C": 12.011, "N": 14.007, "O": 15.999,
    "F": 18.998, "Na": 22.990, "Mg": 24.305, "Al": 26.982, "Si": 28.085, "P": 30.974, "S": 32.06,
    "Cl": 35.45, "K": 39.098, "Ca": 40.078, "Sc": 44.956, "Ti": 47.867, "V": 50.942, "Cr": 51.996,
    "Mn": 54.938, "Fe": 55.845, "Co": 58.933, "Ni": 58.693, "Cu": 63.546, "Zn": 65.38, "Ga": 69.723,
    "Ge": 72.630, "As": 74.922, "Se": 78.971, "Rb": 85.468, "Sr": 87.62, "Y": 88.906, "Zr": 91.224,
    "Nb": 92.906, "Mo": 95.95, "Ru": 101.07, "Rh": 102.906, "Pd": 106.42, "Ag": 107.868, "Cd": 112.414,
    "In": 114.818, "Sn": 118.710, "Sb": 121.760, "Te": 127.60, "Ba": 137.327, "La": 138.905,
    "Ce": 140.116, "Pr": 140.908, "Nd": 144.242, "Sm": 150.36, "Eu": 151.964, "Gd": 157.25,
    "Tb": 158.925, "Dy": 162.500, "Ho": 164.930, "Er": 167.259, "Tm": 168.934, "Yb": 173.045,
    "Lu": 174.967, "Hf": 178.49, "Ta": 180.948, "W": 183.84, "Re": 186.207, "Os": 190.23, "Ir": 192.217,
    "Pt": 195.084, "Au": 196.967, "Hg": 200.592, "Tl": 204.38, "Pb": 207.2, "Bi": 208.980, "Th": 232.038,
    "U": 238.029, "Ne": 20.180, "Ar": 39.948, "Br": 79.904, "Kr": 83.798, "Tc": 98.0, "I": 126.904,
    "Xe": 131.293, "Cs": 132.905, "Pm": 145.0, "Po": 209.0, "At": 210.0, "Rn": 222.0, "Fr": 223.0, "Ra": 226.0,
    "Ac": 227.0, "Pa": 231.036,
}


def species_properties(name):
    """(mass in amu, ion stage, number of non-hydrogen atoms) of a VALD species name like "Fe 2"."""
    formula, stage = name.split()
    atoms = split_formula(formula)
    mass = sum(ATOMIC_MASS_AMU[a] for a in atoms)
    heavy = max(1, sum(a != "H" for a in atoms))
    return mass, int(stage), heavy


def read_table(path):
    with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as handle:
        rows = list(csv.reader(io.TextIOWrapper(handle, encoding="ascii")))
    header, body = rows[0], rows[1:]
    columns = {name: [row[i] for row in body] for i, name in enumerate(header)}
    numeric = ["wave_vald", "depth_vald", "loggf", "E_l", "damping_rad", "damping_stark", "damping_waals"]
    table = {name: np.asarray(columns[name], dtype=float) for name in numeric}
    table["species"] = np.asarray(columns["species"])
    return table


def build(source, out):
    types = list(TYPE_SEQUENCE)
    lines = {}
    for t_index, spectral_type in enumerate(types):
        table = read_table(Path(source) / f"{spectral_type}.csv.zip")
        keep = (table["wave_vald"] >= VACUUM_RANGE_AA[0]) & (table["wave_vald"] <= VACUUM_RANGE_AA[1])
        keep &= table["species"] != "H 1"
        for i in np.flatnonzero(keep):
            key = (table["species"][i], round(table["wave_vald"][i], 3), table["loggf"][i], table["E_l"][i])
            entry = lines.get(key)
            if entry is None:
                entry = lines[key] = {
                    "wave_vac": table["wave_vald"][i], "rad": table["damping_rad"][i],
                    "stark": table["damping_stark"][i], "vdw": table["damping_waals"][i],
                    "depth": np.zeros(len(types), dtype=np.uint16),
                }
            depth = int(round(1000 * table["depth_vald"][i]))
            entry["depth"][t_index] = max(entry["depth"][t_index], depth)

    keys = sorted(lines, key=lambda k: lines[k]["wave_vac"])
    species_names = sorted({k[0] for k in keys})
    props = np.array([species_properties(s) for s in species_names])
    species_lookup = {s: i for i, s in enumerate(species_names)}
    wave_vac = np.array([lines[k]["wave_vac"] for k in keys])
    np.savez_compressed(
        out,
        wavelength_air_aa=vacuum_to_air(wave_vac),
        species_index=np.array([species_lookup[k[0]] for k in keys], dtype=np.int16),
        species_names=np.array(species_names),
        species_mass_amu=props[:, 0].astype(np.float32),
        species_ion_stage=props[:, 1].astype(np.int8),
        species_heavy_atoms=props[:, 2].astype(np.int8),
        loggf=np.array([k[2] for k in keys], dtype=np.float32),
        e_low_ev=np.array([k[3] for k in keys], dtype=np.float32),
        log_gamma_rad=np.array([lines[k]["rad"] for k in keys], dtype=np.float32),
        log_gamma_stark=np.array([lines[k]["stark"] for k in keys], dtype=np.float32),
        vdw_code=np.array([lines[k]["vdw"] for k in keys], dtype=np.float32),
        depth_permille=np.stack([lines[k]["depth"] for k in keys], axis=1),
        spectral_types=np.array(types),
        teff_k=np.array([TYPE_SEQUENCE[t][0] for t in types]),
        logg_cgs=np.array([TYPE_SEQUENCE[t][1] for t in types]),
    )
    return len(keys)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, type=Path)
    parser.add_argument("--out", default=DEFAULT_OUT, type=Path)
    args = parser.parse_args()
    n = build(args.source, args.out)
    print(f"wrote {n} lines to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
