"""Build ``simharps/data/stellar_forest.npz``: the weak-line forest and molecular lines of the built-in synthesis.

The depth table (``stellar_lines.npz``, VALD lines deeper than 0.1 per type) lacks the weak lines and most
molecular lines. This script gathers them from four public line lists in ``../shared/data/linelists``:

* ``kurucz_linemake/moogatom*``: Kurucz atomic lines culled by linemake (Placco et al. 2021), MOOG format
  (air wavelength A, species code Z.s, E_low eV, log gf); neutral and singly ionised species only;
* ``vald_solar_grass/vald_solar.dat``: VALD "extract stellar" for the Sun, depth >= 0.05 (GRASS package; VALD,
  Ryabchikova et al. 2015), with radiative, Stark and van der Waals damping; where a Kurucz line and a VALD
  line are the same transition (same species, |d lambda| < 0.05 A and |d E_low| < 0.05 eV; molecules 0.01 A
  and 0.01 eV) the VALD line (and its damping) is kept;
* ``kurucz_linemake/mooghyd*`` (CH: Masseron et al. 2014; MgH: Hinkle et al. 2013; NH; OH) and ``moogcn*``
  (CN: Sneden et al. 2014): MOOG codes like 106.00112 (12CH) or 607.01314 (13C14N); the isotopologues' log gf
  are raised by log10 of the isotopic fraction (12C/13C = 89, 14N/15N = 272, 16O 99.76 %, 24/25/26Mg =
  78.99/10.00/11.01 %; Asplund et al. 2009 and IUPAC), since MOOG applies those at run time; CH lines whose
  upper level lies above its electronic state's dissociation asymptote are dropped (``CH_UPPER_LIMIT_EV``);
* ``galah_dr3/galah_dr3_linelist.h5`` (Buder et al. 2021, as shipped by Korg.jl; read with h5py here only): TiO,
  CaH, ZrO, VO, C2 and SiH (vacuum wavelengths, converted to air with ``simharps.grids.vacuum_to_air``); its
  MgH, CH, CN, OH and NH are not used (the Kurucz lists cover the whole range), nor its atomic lines.

Lines with a negative E_low (two 25/26MgH lines) and lines already in the depth table (same species, |d lambda|
< 0.05 A and |d E_low| < 0.05 eV; molecules 0.01 A and 0.01 eV) are dropped. Every remaining line gets the
line-centre opacity of the relation of ``simharps.stellar.linelist`` (log gf, E_low, wavelength, species offset
per type, TiO strength correction) at each of the 16 dwarf types (solar abundances, 1 km/s microturbulence, the
type's logg); a line is kept when its central depth ``A_c eta / (1 + eta)`` exceeds ``MIN_DEPTH`` = 0.005 for at
least one type (3060-7220 K). VALD veto: the VALD solar list is complete to depth 0.05 in 3000-6915 A, and the
relation reproduces its depths (median log eta difference < 0.03 dex for VALD depths 0.05-0.4), so a Kurucz line
(atomic or molecular) that the relation makes deeper than ``VETO_SOLAR_DEPTH`` = 0.05 at G2 but that VALD does
not list disagrees with VALD's data (wrong or predicted gf / E_low; e.g. Fe I 4789.576 A carries the log gf of
Fe I 4789.651 A) and is dropped (1,728 lines; against the real alpha Cen B and HD 41248 spectra such lines had a
median observed depth of about a quarter of their prediction).

Output columns (one row per line, sorted by wavelength): ``wavelength_air_e4`` (uint32, (lambda_air -
``wavelength_origin_aa``) x 1e4), ``species_index`` into ``species_names`` (+ ``species_mass_amu``,
``species_ion_stage``, ``species_heavy_atoms``), ``loggf_milli`` (int16, log gf x 1000), ``e_low_mev`` (uint16,
meV), ``log_gamma_rad_centi``, ``log_gamma_stark_centi`` (int16, x 100; 0 = absent), ``vdw_code`` (float32,
VALD convention: < 0 log gamma6 at 10^4 K, > 0 ABO sigma.alpha, 0 = absent), ``source`` (uint8 into
``source_names``).

Usage: ``python scripts/build_forest_table.py [--shared DIR] [--out FILE]``; prints the table's sha256, which
must be copied into ``simharps.stellar.linelist.FOREST_TABLE_SHA256``.
"""

import argparse
import csv
import glob
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from build_line_table import species_properties  # noqa: E402

from simharps.grids import vacuum_to_air  # noqa: E402
from simharps.stellar.linelist import (  # noqa: E402
    ELEMENTS,
    build_line_table,
    load_base_arrays,
    maximum_depth,
)

DEFAULT_SHARED = ROOT.parent / "shared" / "data" / "linelists"
DEFAULT_OUT = ROOT / "simharps" / "data" / "stellar_forest.npz"
AIR_RANGE_AA = (3689.0, 7008.0)
"""Kept span (air, A), as the depth table's."""
WAVELENGTH_ORIGIN_AA = 3600.0
MIN_DEPTH = 0.005
SOURCES = ("kurucz_atomic", "vald_solar", "kurucz_molecular", "galah_dr3")
ISOTOPE_FRACTION = {1: 0.99988, 2: 0.00012, 12: 0.9889, 13: 0.0111, 14: 0.99636, 15: 0.00364, 16: 0.99757,
                    24: 0.7899, 25: 0.1000, 26: 0.1101}
MOOG_MOLECULES = {106: "CH", 107: "NH", 108: "OH", 112: "MgH", 607: "CN"}
GALAH_MOLECULES = {(22, 8): "TiO", (20, 1): "CaH", (40, 8): "ZrO", (23, 8): "VO", (6, 6): "C2", (14, 1): "SiH"}
CH_UPPER_LIMIT_EV = {"A": 4.729, "B": 3.465, "C": 4.729}
"""Dissociation asymptotes of the CH upper states above X v=0, N=0 (eV): B 2Sigma- -> C(3P) + H at D_0(X) = 3.465;
A 2Delta and C 2Sigma+ -> C(1D) + H at D_0 + 1.264. Upper levels above them are quasi-bound (predissociated:
broad, weak features, e.g. B 2Sigma- beyond N ~ 15; Herzberg & Johns 1969, ApJ 158, 399); their lines in the
list (some with log gf up to +1.3 at 4600-9000 A, absent from the solar spectrum) are dropped."""
PHOTON_EV_AA = 12398.42
VETO_SOLAR_DEPTH = 0.05
VALD_SOLAR_RANGE_AA = (3000.0, 6915.0)
"""The VALD solar list is complete to depth 0.05 over this range: a Kurucz line that the relation makes deeper
than that at G2 (5770 K) but that VALD does not list disagrees with VALD's data and is dropped."""
MATCH_ATOM = (0.05, 0.05)
MATCH_MOLECULE = (0.01, 0.01)


def _empty():
    return {key: [] for key in ("wave", "species", "loggf", "e_low", "rad", "stark", "vdw", "source")}


def _append(table, wave, species, loggf, e_low, source, rad=None, stark=None, vdw=None):
    n = len(wave)
    table["wave"].append(np.asarray(wave, dtype=float))
    table["species"].append(np.asarray(species))
    table["loggf"].append(np.asarray(loggf, dtype=float))
    table["e_low"].append(np.asarray(e_low, dtype=float))
    for key, value in (("rad", rad), ("stark", stark), ("vdw", vdw)):
        table[key].append(np.zeros(n) if value is None else np.asarray(value, dtype=float))
    table["source"].append(np.full(n, SOURCES.index(source), dtype=np.uint8))


def _concat(table):
    return {key: np.concatenate(value) for key, value in table.items()}


def _read_moog(paths, labels=False):
    rows = []
    for path in paths:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 4:
                    rows.append(parts[:4] + [parts[5] if len(parts) >= 6 else ""])
    wave = np.array([float(r[0]) for r in rows])
    out = (wave, [r[1] for r in rows], np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows]))
    return out + ([r[4] for r in rows],) if labels else out


def read_kurucz_atomic(folder, table):
    wave, codes, e_low, loggf = _read_moog(sorted(glob.glob(str(folder / "moogatom*"))))
    names, keep = [], []
    for code in codes:
        z, _, fraction = code.partition(".")
        stage = int(fraction[:1] or 0) + 1
        ok = fraction[1:].strip("0") == "" and stage <= 2 and int(z) <= len(ELEMENTS)
        names.append(f"{ELEMENTS[int(z) - 1]} {stage}" if ok else "")
        keep.append(ok)
    keep = np.array(keep) & (wave >= AIR_RANGE_AA[0]) & (wave <= AIR_RANGE_AA[1])
    _append(table, wave[keep], np.array(names)[keep], loggf[keep], e_low[keep], "kurucz_atomic")


def read_kurucz_molecular(folder, table):
    paths = sorted(glob.glob(str(folder / "mooghyd*"))) + sorted(glob.glob(str(folder / "moogcn*")))
    wave, codes, e_low, loggf, labels = _read_moog(paths, labels=True)
    names, shift, keep = [], [], []
    for code, label, e, w in zip(codes, labels, e_low, wave):
        head, _, isotopes = code.partition(".")
        name = MOOG_MOLECULES.get(int(head))
        # isotopes: "00112" -> masses 1 and 12; "01214" -> 12 and 14
        digits = isotopes.ljust(5, "0")
        masses = (int(digits[1:3]), int(digits[3:5])) if len(isotopes) >= 5 else (0, 0)
        fractions = [ISOTOPE_FRACTION.get(m, np.nan) for m in masses]
        ok = name is not None and np.all(np.isfinite(fractions))
        if ok and name == "CH" and label[:1] in CH_UPPER_LIMIT_EV:
            ok = e + PHOTON_EV_AA / w < CH_UPPER_LIMIT_EV[label[:1]]
        names.append(f"{name} 1" if ok else "")
        shift.append(float(np.sum(np.log10(fractions))) if ok else 0.0)
        keep.append(ok)
    keep = np.array(keep) & (wave >= AIR_RANGE_AA[0]) & (wave <= AIR_RANGE_AA[1])
    _append(table, wave[keep], np.array(names)[keep], (loggf + np.array(shift))[keep], e_low[keep],
            "kurucz_molecular")


def read_vald_solar(path, table):
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    wave = np.array([float(r["wav_air"]) for r in rows])
    species = np.array([r["species"].strip() for r in rows])
    keep = (wave >= AIR_RANGE_AA[0]) & (wave <= AIR_RANGE_AA[1]) & (species != "H 1")
    keep &= np.array([s.split()[1] in ("1", "2") for s in species])
    column = {name: np.array([float(r[name]) for r in rows]) for name in ("excit_pot", "log_gf", "rad", "stark",
                                                                            "waals")}
    _append(table, wave[keep], species[keep], column["log_gf"][keep], column["excit_pot"][keep], "vald_solar",
            rad=column["rad"][keep], stark=column["stark"][keep], vdw=column["waals"][keep])


def read_galah(path, table):
    import h5py  # build-time only (not a package dependency)

    with h5py.File(path, "r") as handle:
        formula = handle["formula"][:]
        data = {key: handle[key][:].astype(float) for key in ("wl", "log_gf", "E_lo", "gamma_rad", "gamma_stark",
                                                               "vdW")}
    for (z1, z2), name in GALAH_MOLECULES.items():
        sel = (formula[:, 0] == z1) & (formula[:, 1] == z2) & (formula[:, 2] == 0)
        wave = vacuum_to_air(data["wl"][sel])
        keep = (wave >= AIR_RANGE_AA[0]) & (wave <= AIR_RANGE_AA[1])
        idx = np.flatnonzero(sel)[keep]
        _append(table, wave[keep], np.full(keep.sum(), f"{name} 1"), data["log_gf"][idx], data["E_lo"][idx],
                "galah_dr3", rad=data["gamma_rad"][idx], stark=data["gamma_stark"][idx], vdw=data["vdW"][idx])


def is_molecule(name):
    formula = name.split()[0]
    return sum(c.isupper() for c in formula) > 1 or any(c.isdigit() for c in formula)


def matched(wave, species, e_low, ref_wave, ref_species, ref_e_low):
    """Boolean per line: a line of ``ref_*`` is the same transition (species, wavelength, E_low tolerances)."""
    out = np.zeros(len(wave), dtype=bool)
    for name in np.unique(species):
        sel = np.flatnonzero(species == name)
        ref = np.flatnonzero(ref_species == name)
        if ref.size == 0:
            continue
        dl, de = MATCH_MOLECULE if is_molecule(name) else MATCH_ATOM
        order = ref[np.argsort(ref_wave[ref])]
        rw, re = ref_wave[order], ref_e_low[order]
        lo = np.searchsorted(rw, wave[sel] - dl)
        hi = np.searchsorted(rw, wave[sel] + dl)
        for k, i in enumerate(sel):
            if hi[k] > lo[k] and np.any(np.abs(re[lo[k]:hi[k]] - e_low[i]) < de):
                out[i] = True
    return out


def build(shared, out):
    kurucz, vald, galah = _empty(), _empty(), _empty()
    read_kurucz_atomic(shared / "kurucz_linemake", kurucz)
    read_kurucz_molecular(shared / "kurucz_linemake", kurucz)
    read_vald_solar(shared / "vald_solar_grass" / "vald_solar.dat", vald)
    read_galah(shared / "galah_dr3" / "galah_dr3_linelist.h5", galah)
    kurucz, vald, galah = _concat(kurucz), _concat(vald), _concat(galah)
    duplicate = matched(kurucz["wave"], kurucz["species"], kurucz["e_low"], vald["wave"], vald["species"],
                        vald["e_low"])
    print(f"Kurucz {len(kurucz['wave'])} lines ({duplicate.sum()} also in the VALD solar list: VALD kept), "
          f"VALD solar {len(vald['wave'])}, GALAH molecular {len(galah['wave'])}")
    candidates = {key: np.concatenate([kurucz[key][~duplicate], vald[key], galah[key]]) for key in kurucz}
    physical = candidates["e_low"] >= 0.0
    candidates = {key: value[physical] for key, value in candidates.items()}
    print(f"{(~physical).sum()} lines with a negative E_low dropped")

    base = load_base_arrays()
    base_species = base["species_names"][base["species_index"]]
    in_base = matched(candidates["wave"], candidates["species"], candidates["e_low"], base["wavelength_air_aa"],
                      base_species, base["e_low_ev"])
    candidates = {key: value[~in_base] for key, value in candidates.items()}
    print(f"{in_base.sum()} candidates already in the depth table, {len(candidates['wave'])} left")

    names = sorted(set(candidates["species"]))
    lookup = {name: i for i, name in enumerate(names)}
    props = np.array([species_properties(name) for name in names])
    forest = {
        "wavelength_air_aa": candidates["wave"],
        "species_names": np.array(names),
        "species_index": np.array([lookup[s] for s in candidates["species"]], dtype=np.intp),
        "species_mass_amu": props[:, 0],
        "species_ion_stage": props[:, 1].astype(np.int64),
        "species_heavy_atoms": props[:, 2].astype(np.int64),
        "loggf": candidates["loggf"],
        "e_low_ev": candidates["e_low"],
        "log_gamma_rad": candidates["rad"],
        "log_gamma_stark": candidates["stark"],
        "vdw_code": candidates["vdw"],
    }
    table = build_line_table(base, forest)
    n_base = len(base["wavelength_air_aa"])
    log_eta = table.log_eta_type[:, n_base:].astype(np.float64)
    eta = 10.0**log_eta
    a_c = maximum_depth(candidates["wave"][None, :], table.teff_type_k[:, None])
    depth = a_c * eta / (1.0 + eta)
    keep = depth.max(axis=0) > MIN_DEPTH
    solar = depth[list(table.spectral_types).index("G2")]
    kurucz = np.isin(candidates["source"], [SOURCES.index("kurucz_atomic"), SOURCES.index("kurucz_molecular")])
    veto = kurucz & (solar > VETO_SOLAR_DEPTH) & (candidates["wave"] < VALD_SOLAR_RANGE_AA[1])
    keep &= ~veto
    print(f"{veto.sum()} Kurucz lines vetoed (predicted deeper than {VETO_SOLAR_DEPTH} in the Sun, absent from the "
          "VALD solar list)")
    print(f"model fit of the depth table: rms residual {table.model_residual_dex:.3f} dex; "
          f"{keep.sum()} lines with a central depth > {MIN_DEPTH} for some type")
    order = np.argsort(candidates["wave"][keep], kind="stable")
    kept = {key: value[keep][order] for key, value in candidates.items()}
    used = sorted(set(kept["species"]))
    lookup = {name: i for i, name in enumerate(used)}
    props = np.array([species_properties(name) for name in used])
    np.savez_compressed(
        out,
        wavelength_origin_aa=np.float64(WAVELENGTH_ORIGIN_AA),
        wavelength_air_e4=np.round((kept["wave"] - WAVELENGTH_ORIGIN_AA) * 1e4).astype(np.uint32),
        species_index=np.array([lookup[s] for s in kept["species"]], dtype=np.uint8),
        species_names=np.array(used),
        species_mass_amu=props[:, 0].astype(np.float32),
        species_ion_stage=props[:, 1].astype(np.int8),
        species_heavy_atoms=props[:, 2].astype(np.int8),
        loggf_milli=np.round(kept["loggf"] * 1000).astype(np.int16),
        e_low_mev=np.round(kept["e_low"] * 1000).astype(np.uint16),
        log_gamma_rad_centi=np.round(kept["rad"] * 100).astype(np.int16),
        log_gamma_stark_centi=np.round(kept["stark"] * 100).astype(np.int16),
        vdw_code=kept["vdw"].astype(np.float32),
        source=kept["source"],
        source_names=np.array(SOURCES),
        min_depth=np.float64(MIN_DEPTH),
    )
    per_source = {SOURCES[s]: int(np.sum(kept["source"] == s)) for s in range(len(SOURCES))}
    per_species = {name: int(np.sum(kept["species"] == name)) for name in used}
    top = sorted(per_species.items(), key=lambda item: -item[1])[:25]
    print("per source:", per_source)
    print("largest species:", ", ".join(f"{name} {count}" for name, count in top))
    return len(kept["wave"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=DEFAULT_SHARED, type=Path, help="the linelists folder")
    parser.add_argument("--out", default=DEFAULT_OUT, type=Path)
    args = parser.parse_args()
    n = build(args.shared, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {n} lines to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); sha256 {digest}")


if __name__ == "__main__":
    main()
