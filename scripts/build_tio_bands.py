"""Fit ``simharps.stellar.tio_bands.LOG_STRENGTH``: the TiO band strength S(Teff) from published TiO5 relations.

Run: ``python scripts/build_tio_bands.py`` (about 30 s). No spectrum is used. At each Pecaut & Mamajek dwarf Teff
of M0-M5 (``SPT_TEFF_K``; logg of the line table's dwarf sequence, [M/H] 0):

1. the published TiO5: the three ``TIO5_RELATIONS`` (Reid et al. 1995, Gizis 1997, Lepine et al. 2013) inverted at
   the subtype of that Teff; their mean is the target, their range the calibration uncertainty;
2. the log10 S (km/s) that makes ``tio5_index`` (band-only spectrum of the gamma bands over 7000-7150 A) equal the
   mean, and the ones that give the smallest and largest of the three (the uncertainty in dex);
3. a quadratic in x = (Teff - 3450 K) / 1000 K fitted to the per-node log S: ``LOG_STRENGTH``;

then the band-model TiO5 with the fitted S against the published one, and, for comparison with the earlier
calibration on the line-based synthesis (alpha 10^0.32, gamma-prime 10^0.55 times the synthesis's TiO line
relation), log S minus the line relation's strength at each Teff (``line_relation_log_strength``) and the TiO5 that
the uncalibrated line-relation strength gives (S = line relation: "before").
"""

import numpy as np
from scipy.optimize import brentq

import simharps.stellar.tio_bands as tio
from simharps.constants import AMU_G, K_BOLTZMANN_CGS
from simharps.stellar.linelist import (
    REFERENCE_VMIC_KMS,
    STRENGTH_CORRECTION_DEX,
    load_line_table,
    photosphere_state,
)


def line_relation_log_strength(teff_k, logg_cgs):
    """log10 of the synthesis's TiO line strength in the units of S: species offset c_TiO(Teff) + TiO strength
    correction + log10(sqrt(pi) dv_D,ref) (km/s); what the band strength was tied to before this calibration."""
    table = load_line_table()
    index = int(np.flatnonzero(table.species_names == "TiO 1")[0])
    i, w = table.type_weights(teff_k)
    offset = (1 - w) * table.species_offset[i, index] + w * table.species_offset[i + 1, index]
    temperature = photosphere_state(teff_k, logg_cgs)[0]
    dv_kms = np.sqrt(2 * K_BOLTZMANN_CGS * temperature / (tio.TIO_MASS_AMU * AMU_G) / 1e10 + REFERENCE_VMIC_KMS**2)
    return offset + STRENGTH_CORRECTION_DEX["TiO 1"] + np.log10(np.sqrt(np.pi) * dv_kms)


def solve_log_strength(teff_k, logg_cgs, target):
    """log10 S (km/s) at which the band model's TiO5 equals ``target``."""
    return brentq(lambda s: tio.tio5_index(teff_k, logg_cgs, log_strength_dex=s) - target, -2.0, 2.5, xtol=1e-4)


def main():
    table = load_line_table()
    teffs = np.array([t for _, t in tio.SPT_TEFF_K])
    rows = []
    print("Teff K  SpT  TiO5 Reid/Gizis/Lepine  mean   log S (range)          S_line  TiO5 at S_line")
    for (subtype, teff) in tio.SPT_TEFF_K:
        logg = float(table.reference_logg_at(teff))
        published = tio.published_tio5(teff)
        log_s = solve_log_strength(teff, logg, published.mean())
        lo, hi = sorted(solve_log_strength(teff, logg, p) for p in (published.max(), published.min()))
        line = line_relation_log_strength(teff, logg)
        rows.append((teff, logg, published, log_s, lo, hi, line))
        print(f"{teff:6.0f} M{subtype:<3.1f} {published[0]:.3f}/{published[1]:.3f}/{published[2]:.3f}     "
              f"{published.mean():.3f}  {log_s:+.3f} ({lo:+.3f}..{hi:+.3f})  {line:+.3f}  "
              f"{tio.tio5_index(teff, logg, log_strength_dex=line):.3f}")
    x = (teffs - 3450.0) / 1000.0
    log_s = np.array([r[3] for r in rows])
    c2, c1, c0 = np.polyfit(x, log_s, 2)
    coefficients = (round(float(c0), 3), round(float(c1), 3), round(float(c2), 3))
    print(f"LOG_STRENGTH = {coefficients}  (rms of the per-node log S about the fit "
          f"{np.sqrt(np.mean((np.polyval([c2, c1, c0], x) - log_s) ** 2)):.3f} dex; mean half-range of the relations "
          f"{np.mean([(r[5] - r[4]) / 2 for r in rows]):.3f} dex)")
    print("Teff K  TiO5 published (min..max)  band model (fitted S)  log S - line relation (earlier: alpha +0.32, "
          "gamma-prime +0.55)")
    for teff, logg, published, _, _, _, line in rows:
        fitted = tio.log_strength(teff, coefficients)
        print(f"{teff:6.0f}  {published.mean():.3f} ({published.min():.3f}..{published.max():.3f})       "
              f"{tio.tio5_index(teff, logg, log_strength_dex=fitted):.3f}                  {fitted - line:+.3f}")
    for teff in (4000.0, 4200.0, 4450.0):
        logg = float(table.reference_logg_at(teff))
        fitted = tio.log_strength(teff, coefficients)
        index = tio.tio5_index(teff, logg, log_strength_dex=fitted)
        print(f"extrapolated {teff:.0f} K (taper above 4000 K included): log S {fitted:+.3f}, TiO5 {index:.3f}")


if __name__ == "__main__":
    main()
