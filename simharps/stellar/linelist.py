"""The project-owned stellar line tables and their conversion to line-centre opacities.

Data
----
* ``simharps/data/stellar_lines.npz`` (``scripts/build_line_table.py``, provenance in
  ``simharps/data/stellar_lines.md``): the VALD-derived depth tables of 16 dwarf spectral types F0..M5, one row
  per line (air wavelength, species, log gf, E_low, damping) with the VALD central depth per type (0 = not
  listed, i.e. shallower than 0.1). The types map to Teff and logg through the Pecaut & Mamajek (2013) dwarf
  sequence.
* ``simharps/data/stellar_forest.npz`` (``scripts/build_forest_table.py``, provenance in
  ``simharps/data/stellar_forest.md``): the weak-line forest and the molecular lines that the depth tables
  lack: Kurucz atomic lines (linemake), VALD solar lines of depth 0.05-0.1 (with their damping), Kurucz CH,
  NH, OH, MgH and CN, and GALAH DR3 TiO, CaH, ZrO, VO, FeH, C2 and SiH; lines already in the depth tables
  removed; kept where the opacity model below predicts a central depth > 0.005 for some type. Their strengths
  come from log gf, E_low and the relation below alone. Its sha256 is ``FOREST_TABLE_SHA256`` (checked on
  load: the template cache key hashes this module, so a rebuilt table must come with an edit here).
* ``simharps/data/astrophysical_gf.npz`` (``scripts/build_astrophysical_gf.py``, provenance in
  ``simharps/data/astrophysical_gf.md``): astrophysical log gf corrections Delta (|Delta| <= 1 dex) of 670 isolated
  lines, fitted so that the model's core depths match the real HD 41248 (G2V) spectrum, with the star-level median
  (+0.39 dex) removed. ``LineTable.log_eta_at`` adds Delta to log eta_0 at every Teff (``loggf_correction_dex``;
  ``log_eta_type`` stays the line lists' value). Assumption: Delta holds line-list errors, which do not depend on
  Teff; it also absorbs the single-layer model's line-to-line errors at G2, which need not transfer to K and M
  dwarfs. Held-out alpha Cen B: core-depth scatter over those lines 0.113 -> 0.071, 12-window r 0.940 -> 0.946; the
  M dwarfs' r changes by -0.003. Its sha256 is ``ASTROPHYSICAL_GF_SHA256`` (checked on load).

From depth to line-centre opacity (Milne-Eddington, Minnaert form with a finite core)
------------------------------------------------------------------------------------
In a Milne-Eddington atmosphere (line-to-continuum opacity ratio eta constant with depth) whose source
function is linear in continuum optical depth, ``S = a + b tau_c``, the emergent flux is
``F = a + (2/3) b / (1 + eta)`` (Eddington-Barbier; Mihalas 1978, sect. 10-3), so the residual flux is
Minnaert's (1935) saturation law with a maximum central depth A_c < 1::

    r = 1 - A_c eta / (1 + eta),      A_c = 1 - S(tau = 0) / F_c ~ 1 - B_lambda(T_0) / B_lambda(Teff)

An infinitely opaque line keeps the residual flux 1 - A_c of the source function at the surface
(Gray 2005, ch. 13 and 16, "maximum depth" of the curve of growth). ``maximum_depth`` takes
T_0 = ``CORE_TEMPERATURE_RATIO`` Teff = 0.66 Teff, below the grey-atmosphere boundary value 0.84 Teff
because the cores of strong lines form high up, where scattering (NLTE) pulls the line source function
below the Planck function; 0.66 was fitted to the cores of the strongest lines of the real ESPRESSO
spectrum of HD 41248 at R = 115,000 (Mg b, Fe I 4383/4404/5269/5328/5371, Cr I 5206/5208: mean model -
real residual flux +0.008, rms 0.03 over 22 lines; before, with A_c = 1: -0.067). A_c then grows toward
the blue and toward cool stars (0.92 at 5200 A and 0.96 at 4000 A for a G2 dwarf, 0.86 at 5200 A for
F0, 0.98 for M3), as the Planck contrast does. The same law inverts a tabulated central depth d:
``eta_0 = d / (A_c - d)`` with A_c at the line and at the type's Teff (d clipped at
``MAX_DEPTH_FRACTION`` A_c, see below). Opacities of overlapping lines add, so blends combine as
``r = 1 - A_c eta / (1 + eta)`` with ``eta = sum eta_i phi_i``; scaling eta_0 by the abundance gives a
curve of growth (linear for weak lines, logarithmic in the Doppler core, square-root on the damping
wings).

The line-strength relation (Boltzmann excitation, Saha ionisation, dissociation equilibrium)
------------------------------------------------------------------------------------------
Every line of every type also gets an opacity from its log gf and E_low::

    log eta_0 = c_s(type) + log gf - theta(type) E_low + g(type) log10(lambda / 5000 A)

* theta = 5040 K / T_exc and the wavelength slope g are fitted per type on the Fe I lines of moderate VALD
  depth (0.1-0.6; theta 0.77 at F0 to 1.39 at M2; g between -1.25 and -2.3: the H- continuum opacity rises
  and the Planck contrast falls toward the red, so lines of equal gf are weaker there);
* c_s(type), the species offset, is the median residual of species s on its moderate lines of that type
  where it has at least ``MIN_CALIBRATION_LINES`` (3) of them ("calibrated"). Elsewhere it is predicted::

      c_s(type) = C(type) + m_s(type) + delta_s(type)

  with m_s the population model below, C(type) a per-type constant (the continuum opacity per H atom and
  the constants of the line opacity), and delta_s the species' own residual at its calibrated types,
  interpolated linearly in Teff between them and held at the nearest one beyond (so c_s is continuous);
  for a species calibrated nowhere, delta_s is the median residual of the calibrated species of the same kind
  (neutral atoms, ions, molecules). C, a correction to the layer's electron density per type (``LOG_NE_GRID``,
  ``log_ne_correction``: -0.4 to -0.6 dex for F-K types, -1.1 to -3 dex for M; it sets the ionisation
  balance, e.g. Fe II / Fe I) and the species' mean residuals are fitted together (alternating medians /
  least absolute deviations) on all calibrated (species, type) pairs of the VALD tables: nothing here is
  fitted to a real spectrum. ``model_residual_dex`` (rms of the residuals about each species' mean: 0.31
  dex, mostly CH and CN in M types; atoms mostly < 0.2 dex) says how well the model describes the tables. One
  correction is fitted to a real star: ``STRENGTH_CORRECTION_DEX`` (TiO, Gl 581 band heads); and per line, the
  astrophysical log gf corrections above (HD 41248).

Population model m_s (one line-forming layer: T = 0.85 Teff, N_H and N_e of ``photosphere_state``; the
continuum is H-, whose opacity per H atom is proportional to N_e)::

    atom, ion stage k:   m_s = log10(n_k / U_k) - log10(N_H N_e) - log10(dv_D)
    molecule AB:         m_s = log10[(n_A / U_A)(n_B / U_B) (h^2 / (2 pi mu k T))^(3/2) exp(D_0 / k T)]
                               - log10(N_H N_e) - log10(dv_D)

(dv_D the Doppler width at 1 km/s microturbulence: the tabulated opacities are peak values). The molecular
form is the Guldberg-Waage (Saha-like) dissociation equilibrium written for one rotational-vibrational
level of the molecule: the level population is ``n_AB g_i exp(-E_i / kT) / U_AB`` and ``n_AB / U_AB =
(n_A / U_A)(n_B / U_B) Lambda^3 exp(D_0 / kT)``, so the molecular partition function cancels and only the
atomic ones (``LOG_PARTITION_5040``) and the dissociation energy D_0 (``MOLECULES``) remain; the line lists'
gf include the Honl-London and Franck-Condon factors, E_i counts from the molecule's ground level.

* Ionisation (Saha, three stages for every element): ``n_{k+1} N_e / n_k = 2 (U_{k+1} / U_k) (2 pi m_e k T /
  h^2)^(3/2) exp(-chi_k / kT)`` with the first and second ionisation energies chi of ``IONISATION_EV`` (NIST
  Atomic Spectra Database, Kramida et al. 2023) and partition functions held at their values at 5040 K
  (``LOG_PARTITION_5040``, after Gray 2005, Appendix D; 10 for species without a value), the electron density
  N_e of the layer given (not solved for).
* Molecules that lock up atoms (H2, CO, N2, OH, H2O, CN, CH, NH, SiO, TiO) are solved for in a small
  chemical equilibrium of H, C, N, O, Si and Ti (``chemical_equilibrium``: dissociation constants from D_0,
  rigid-rotor / harmonic-oscillator partition functions with the constants of Huber & Herzberg 1979);
  the other molecules (MgH, CaH, SiH, FeH, ZrO, VO, C2) are trace species. Abundances: Asplund et al. 2009
  (``SOLAR_LOG_EPS``).

The model also gives the logg dependence of every line at fixed Teff (``simharps.stellar.lines``):
``log eta_0 += m_s(Teff, logg) - m_s(Teff, logg_ref)``, which is the usual result (ion lines of mostly
ionised elements ~ g^(-1/3), their neutral lines ~ g^0, molecules ~ g^(1/6) ... ) without a case list.

Which value a line gets
-----------------------
Depths near A_c are saturated and say little about eta_0 (VALD lists depths up to 0.98 for G2, above
A_c; ``MAX_DEPTH_FRACTION`` = 0.98 caps eta_0 from a depth at 49): saturated lines (d > 0.6) take
``max(eta_from_depth, eta_from_gf)``. The tables are line masks, not complete lists: a line missing from a
type is either shallower than 0.1 or was left out (blended). Between two types that list it, log eta_0 is
interpolated linearly in Teff; beyond the listed types it follows the relation from the nearest listed type
(``log eta_edge + log eta_gf(t) - log eta_gf(edge)``); forest lines take the relation everywhere.

Limits (say them wherever built-in spectra are used): A_c is one law for all lines (the very
strong resonance lines Na D keep too much core flux: 0.13 vs 0.06 in HD 41248; the red Ca I lines
6122/6162/6439 are 0.04-0.06 too shallow), no chromospheric emission cores; the VALD depths are
central depths of isolated lines at solar abundances for the dwarf sequence, at an assumed microturbulence of
1 km/s (``REFERENCE_VMIC_KMS``); one layer for excitation, ionisation and dissociation; Kurucz log gf values
of the weak lines are partly predicted (errors of tenths of a dex for single lines); TiO lines exist only in
the GALAH windows (4676-4950, 5600-5900, 6400-6800 A within the synthesis range) and, deeper than 0.1, in
the M tables: TiO band absorption elsewhere (the 5167, 5448 and 6159 A bands, below 4676 A) is underestimated.

Example
-------
>>> from simharps.stellar.linelist import load_line_table, maximum_depth
>>> table = load_line_table()
>>> log_eta = table.log_eta_at(5770.0)      # line-centre log10 opacity ratio of every line at G2V
>>> a_c = maximum_depth(table.wavelength_air_aa, 5770.0)   # maximum central depth at each line
"""

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from simharps.constants import AMU_G, C_CGS, H_PLANCK_CGS, K_BOLTZMANN_CGS, K_BOLTZMANN_EV
from simharps.errors import ParameterError
from simharps.stellar.continuum import planck_flux

REFERENCE_VMIC_KMS = 1.0
"""Microturbulence assumed for the tabulated VALD depths, km/s."""

TEFF_RANGE_K = (3000.0, 7250.0)
"""Teff span of the built-in synthesis: the F0..M5 tables (7220-3060 K) with small margins."""

CORE_TEMPERATURE_RATIO = 0.66
"""T_0 / Teff: effective temperature of the line source function at the surface (fitted, see above)."""
MAX_DEPTH_FRACTION = 0.98
"""Tabulated depths are clipped at this fraction of A_c before the inversion (saturated lines)."""
MODERATE_DEPTH = (0.1, 0.6)
NO_OPACITY_LOG_ETA = -6.0
MIN_CALIBRATION_LINES = 3
LOG_NE_GRID = np.arange(-3.0, 1.0 + 1e-9, 0.125)
"""Trial corrections (dex) to the layer's electron density N_e in the fit of the population model."""
LAMBDA_REFERENCE_AA = 5000.0
"""Wavelength at which the wavelength term of the relation vanishes."""
STRENGTH_CORRECTION_DEX = {"TiO 1": 0.45}
"""Added to log eta_0 of every line of the species at every type (depth-table and forest lines alike). TiO: the
opacities from the VALD M-table depths make the TiO band heads at 5847 and 6651 A too weak against the real
HARPS spectrum of Gl 581 (M3V, 3480 K; model/real flux ratios across the heads 0.898/0.821 and 0.959/0.858 with
the depth-table lines only, 0.861 and 0.932 with the forest); +0.45 dex minimises the squared log difference of
both ratios (0.834/0.821, 0.855/0.858). Gl 273 (M3.5V) was kept out of this fit (see
``benchmarks/bench_stellar_fidelity.py``)."""

ASTROPHYSICAL_GF_TABLE = "astrophysical_gf.npz"
ASTROPHYSICAL_GF_SHA256 = "980d2393d0058f4aa42b789901bff00800fe92edbdbee78748965ce08f7586b7"
"""sha256 of ``simharps/data/astrophysical_gf.npz`` (printed by ``scripts/build_astrophysical_gf.py``)."""

FOREST_TABLE = "stellar_forest.npz"
FOREST_TABLE_SHA256 = "1337a33adfc771113d03f553805fd2c43c6cbe61f35e02c411bcca677ca01be1"
"""sha256 of ``simharps/data/stellar_forest.npz`` (printed by ``scripts/build_forest_table.py``)."""

# --------------------------------------------------------------------------------------------------------------
# The line-forming layer
# --------------------------------------------------------------------------------------------------------------
LOGG_SUN_CGS = 4.438
TEFF_SUN_K = 5772.0
N_H_SUN_CM3 = 1e17
N_E_SUN_CM3 = 1e13
LINE_FORMING_TEMPERATURE_RATIO = 0.85


def photosphere_state(teff_k, logg_cgs):
    """(T_K, N_H_cm3, N_e_cm3) of the single line-forming layer adopted for (Teff, logg).

    ``N_H = 1e17 cm^-3 (g/g_sun)^(1/2) (Teff/5772 K)^-3``, ``N_e = 1e13 cm^-3 (g/g_sun)^(1/3) (Teff/5772 K)^6``
    (scaled from the solar photosphere near log tau_500 = -0.5), ``T = 0.85 Teff``.
    """
    g_ratio = 10.0 ** (logg_cgs - LOGG_SUN_CGS)
    t_ratio = teff_k / TEFF_SUN_K
    return (
        LINE_FORMING_TEMPERATURE_RATIO * teff_k,
        N_H_SUN_CM3 * g_ratio**0.5 * t_ratio**-3,
        N_E_SUN_CM3 * g_ratio ** (1.0 / 3.0) * t_ratio**6,
    )


# --------------------------------------------------------------------------------------------------------------
# Atomic data: abundances, ionisation energies, partition functions
# --------------------------------------------------------------------------------------------------------------
ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr "
    "Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os "
    "Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U"
).split()
"""Element symbols in order of atomic number (index + 1 = Z)."""

SOLAR_LOG_EPS = {
    "H": 12.00, "He": 10.93, "Li": 1.05, "Be": 1.38, "B": 2.70, "C": 8.43, "N": 7.83, "O": 8.69, "F": 4.56,
    "Ne": 7.93, "Na": 6.24, "Mg": 7.60, "Al": 6.45, "Si": 7.51, "P": 5.41, "S": 7.12, "Cl": 5.50, "Ar": 6.40,
    "K": 5.03, "Ca": 6.34, "Sc": 3.15, "Ti": 4.95, "V": 3.93, "Cr": 5.64, "Mn": 5.43, "Fe": 7.50, "Co": 4.99,
    "Ni": 6.22, "Cu": 4.19, "Zn": 4.56, "Ga": 3.04, "Ge": 3.65, "As": 2.30, "Se": 3.34, "Br": 2.54, "Kr": 3.25,
    "Rb": 2.52, "Sr": 2.87, "Y": 2.21, "Zr": 2.58, "Nb": 1.46, "Mo": 1.88, "Ru": 1.75, "Rh": 0.91, "Pd": 1.57,
    "Ag": 0.94, "Cd": 1.71, "In": 0.80, "Sn": 2.04, "Sb": 1.01, "Te": 2.18, "I": 1.55, "Xe": 2.24, "Cs": 1.08,
    "Ba": 2.18, "La": 1.10, "Ce": 1.58, "Pr": 0.72, "Nd": 1.42, "Sm": 0.96, "Eu": 0.52, "Gd": 1.07, "Tb": 0.30,
    "Dy": 1.10, "Ho": 0.48, "Er": 0.92, "Tm": 0.10, "Yb": 0.84, "Lu": 0.10, "Hf": 0.85, "Ta": -0.12, "W": 0.85,
    "Re": 0.26, "Os": 1.40, "Ir": 1.38, "Pt": 1.62, "Au": 0.92, "Hg": 1.17, "Tl": 0.90, "Pb": 1.75, "Bi": 0.65,
    "Th": 0.02, "U": -0.54,
}
"""Solar abundances log eps (H = 12), Asplund, Grevesse, Sauval & Scott 2009 (ARA&A 47, 481), Table 1:
photospheric values, meteoritic where no photospheric one is given."""

IONISATION_EV = {
    "H": (13.598, 99.0), "He": (24.587, 54.418), "Li": (5.392, 75.640), "Be": (9.323, 18.211),
    "B": (8.298, 25.155), "C": (11.260, 24.383), "N": (14.534, 29.601), "O": (13.618, 35.121),
    "F": (17.423, 34.971), "Ne": (21.565, 40.963), "Na": (5.139, 47.286), "Mg": (7.646, 15.035),
    "Al": (5.986, 18.829), "Si": (8.152, 16.346), "P": (10.487, 19.770), "S": (10.360, 23.338),
    "Cl": (12.968, 23.814), "Ar": (15.760, 27.630), "K": (4.341, 31.625), "Ca": (6.113, 11.872),
    "Sc": (6.562, 12.800), "Ti": (6.828, 13.576), "V": (6.746, 14.634), "Cr": (6.767, 16.486),
    "Mn": (7.434, 15.640), "Fe": (7.902, 16.199), "Co": (7.881, 17.084), "Ni": (7.640, 18.169),
    "Cu": (7.726, 20.292), "Zn": (9.394, 17.964), "Ga": (5.999, 20.515), "Ge": (7.899, 15.934),
    "As": (9.789, 18.59), "Se": (9.752, 21.19), "Rb": (4.177, 27.29), "Sr": (5.695, 11.030),
    "Y": (6.217, 12.224), "Zr": (6.634, 13.13), "Nb": (6.759, 14.32), "Mo": (7.092, 16.16),
    "Ru": (7.361, 16.76), "Rh": (7.459, 18.08), "Pd": (8.337, 19.43), "Ag": (7.576, 21.48),
    "Cd": (8.994, 16.908), "In": (5.786, 18.870), "Sn": (7.344, 14.632), "Sb": (8.608, 16.63),
    "Te": (9.010, 18.6), "Cs": (3.894, 23.16), "Ba": (5.212, 10.004), "La": (5.577, 11.185),
    "Ce": (5.539, 10.956), "Pr": (5.473, 10.631), "Nd": (5.525, 10.783), "Sm": (5.644, 11.078),
    "Eu": (5.670, 11.241), "Gd": (6.150, 12.076), "Tb": (5.864, 11.513), "Dy": (5.939, 11.647),
    "Ho": (6.022, 11.781), "Er": (6.108, 11.916), "Tm": (6.184, 12.065), "Yb": (6.254, 12.176),
    "Lu": (5.426, 13.9), "Hf": (6.825, 14.9), "Ta": (7.550, 16.2), "W": (7.864, 16.37), "Re": (7.834, 16.6),
    "Os": (8.438, 17.0), "Ir": (8.967, 17.0), "Pt": (8.959, 18.563), "Au": (9.226, 20.203),
    "Hg": (10.438, 18.757), "Tl": (6.108, 20.428), "Pb": (7.417, 15.032), "Bi": (7.286, 16.703),
    "Th": (6.307, 11.9), "U": (6.194, 11.6),
}
"""First and second ionisation energies (eV), NIST Atomic Spectra Database (Kramida, Ralchenko, Reader & NIST
ASD Team 2023), rounded to 0.001-0.1 eV."""

LOG_PARTITION_5040 = {
    "H 1": 0.30, "H 2": 0.0, "C 1": 0.97, "C 2": 0.78, "N 1": 0.61, "N 2": 0.95, "O 1": 0.94, "O 2": 0.60,
    "Na 1": 0.31, "Na 2": 0.0, "Mg 1": 0.01, "Mg 2": 0.31, "Mg 3": 0.0, "Al 1": 0.77, "Al 2": 0.0, "Si 1": 0.98,
    "Si 2": 0.76, "K 1": 0.34, "K 2": 0.0, "Ca 1": 0.07, "Ca 2": 0.34, "Ca 3": 0.0, "Sc 1": 1.08,
    "Sc 2": 1.36, "Ti 1": 1.47, "Ti 2": 1.75, "V 1": 1.55, "V 2": 1.54, "Cr 1": 1.02, "Cr 2": 0.86,
    "Mn 1": 0.81, "Mn 2": 0.89, "Fe 1": 1.43, "Fe 2": 1.63, "Co 1": 1.52, "Co 2": 1.46, "Ni 1": 1.47,
    "Ni 2": 1.02, "Cu 1": 0.34, "Cu 2": 0.01, "Zn 1": 0.0, "Zn 2": 0.30, "Sr 1": 0.10, "Sr 2": 0.30,
    "Sr 3": 0.0, "Y 1": 1.08, "Y 2": 1.18, "Zr 1": 1.53, "Zr 2": 1.66, "Ba 1": 0.36, "Ba 2": 0.62,
    "Ba 3": 0.0, "La 2": 1.41, "Ce 2": 2.0, "Nd 2": 2.1, "Li 1": 0.32, "Li 2": 0.0,
}
"""log10 partition functions at 5040 K (theta = 1), approximately Gray (2005, The Observation and Analysis of
Stellar Photospheres, 3rd ed., Table D.2); held fixed in temperature. Others: ``DEFAULT_LOG_PARTITION``."""
DEFAULT_LOG_PARTITION = 1.0

SAHA_CONSTANT_CM3 = 2.0 * (2.0 * np.pi * 9.1093837015e-28 * K_BOLTZMANN_CGS / H_PLANCK_CGS**2) ** 1.5
"""2 (2 pi m_e k / h^2)^(3/2) in cm^-3 K^-3/2 (= 4.829e15): the Saha factor without T^(3/2) and U ratio."""

ATOMIC_MASS_AMU = {
    "H": 1.008, "He": 4.003, "Li": 6.94, "Be": 9.012, "B": 10.81, "C": 12.011, "N": 14.007, "O": 15.999,
    "F": 18.998, "Ne": 20.180, "Na": 22.990, "Mg": 24.305, "Al": 26.982, "Si": 28.085, "P": 30.974, "S": 32.06,
    "Cl": 35.45, "Ar": 39.948, "K": 39.098, "Ca": 40.078, "Sc": 44.956, "Ti": 47.867, "V": 50.942, "Cr": 51.996,
    "Mn": 54.938, "Fe": 55.845, "Co": 58.933, "Ni": 58.693, "Cu": 63.546, "Zn": 65.38, "Zr": 91.224,
}

# --------------------------------------------------------------------------------------------------------------
# Molecules
# --------------------------------------------------------------------------------------------------------------
MOLECULES = {
    # name: (atoms, D_0 eV, B_e cm^-1, omega_e cm^-1, electronic weight of the ground state, symmetry number)
    "H2": (("H", "H"), 4.478, 60.853, 4401.2, 1, 2),
    "CO": (("C", "O"), 11.092, 1.9313, 2169.8, 1, 1),
    "N2": (("N", "N"), 9.759, 1.998, 2358.6, 1, 2),
    "OH": (("O", "H"), 4.392, 18.91, 3737.8, 4, 1),
    "CN": (("C", "N"), 7.724, 1.8997, 2068.6, 2, 1),
    "CH": (("C", "H"), 3.464, 14.457, 2858.5, 4, 1),
    "NH": (("N", "H"), 3.40, 16.699, 3282.3, 3, 1),
    "SiO": (("Si", "O"), 8.26, 0.7268, 1241.6, 1, 1),
    "TiO": (("Ti", "O"), 6.87, 0.5354, 1009.0, 6, 1),
    "MgH": (("Mg", "H"), 1.34, 5.8257, 1495.2, 2, 1),
    "CaH": (("Ca", "H"), 1.70, 4.2766, 1298.3, 2, 1),
    "SiH": (("Si", "H"), 3.06, 7.4996, 2041.8, 4, 1),
    "FeH": (("Fe", "H"), 1.63, 6.4, 1831.0, 8, 1),
    "ZrO": (("Zr", "O"), 7.85, 0.4231, 969.7, 1, 1),
    "VO": (("V", "O"), 6.44, 0.5465, 1011.3, 4, 1),
    "C2": (("C", "C"), 6.21, 1.8198, 1854.7, 1, 2),
}
"""Diatomic molecules: dissociation energy D_0 and the ground state's rotational constant, vibrational
frequency, electronic degeneracy and symmetry number (Huber & Herzberg 1979, Constants of Diatomic Molecules;
D_0 of CH, CN, MgH, NH and OH as carried by the Kurucz line lists). Only D_0 enters the line strengths; the
partition functions (rigid rotor, harmonic oscillator) enter the equilibrium of the ``NETWORK`` molecules."""
H2O = (("H", "H", "O"), 9.511, (27.88, 14.51, 9.28), (3657.1, 1594.7, 3755.9), 1, 2)
"""H2O: atoms, atomisation energy D_0(H2O -> 2H + O) eV, rotational constants A, B, C and the three
vibrational frequencies (cm^-1), electronic weight, symmetry number (NIST Chemistry WebBook)."""
NETWORK = ("H2", "CO", "N2", "OH", "CN", "CH", "NH", "SiO", "TiO")
NETWORK_ELEMENTS = ("H", "C", "N", "O", "Si", "Ti")
HC_OVER_K_CM_K = H_PLANCK_CGS * C_CGS / K_BOLTZMANN_CGS


def split_formula(formula):
    """Element symbols of a species formula ("TiO" -> ["Ti", "O"], "C2" -> ["C", "C"])."""
    symbols, i = [], 0
    while i < len(formula):
        j = i + 1
        while j < len(formula) and formula[j].islower():
            j += 1
        symbol, i = formula[i:j], j
        count = 1
        if i < len(formula) and formula[i].isdigit():
            count, i = int(formula[i]), i + 1
        symbols.extend([symbol] * count)
    return symbols


def log_partition(element, stage):
    """log10 U at 5040 K of ``element`` in ion ``stage`` (1 = neutral)."""
    return LOG_PARTITION_5040.get(f"{element} {stage}", DEFAULT_LOG_PARTITION)


def saha_factors(element, temperature_k):
    """(S_1, S_2): n_{k+1} N_e / n_k (cm^-3) for k = 1, 2 at ``temperature_k``."""
    chi = IONISATION_EV.get(element, (99.0, 99.0))
    out = []
    for k in (1, 2):
        ratio = 10.0 ** (log_partition(element, k + 1) - log_partition(element, k))
        boltzmann = np.exp(-chi[k - 1] / (K_BOLTZMANN_EV * temperature_k))
        out.append(SAHA_CONSTANT_CM3 * temperature_k**1.5 * ratio * boltzmann)
    return tuple(out)


def ionisation_fractions(element, temperature_k, n_e):
    """Fractions (neutral, singly, doubly ionised) of the atomic (not molecular) ``element``."""
    s1, s2 = saha_factors(element, temperature_k)
    r1 = s1 / n_e
    r2 = r1 * s2 / n_e
    total = 1.0 + r1 + r2
    return 1.0 / total, r1 / total, r2 / total


def _molecular_mass_g(atoms):
    return sum(ATOMIC_MASS_AMU[a] for a in atoms) * AMU_G


def log_dissociation_constant(name, temperature_k):
    """log10 K_d (cm^-3 per extra atom) with n_A n_B (n_C) / n_mol = K_d: from D_0 and an RRHO partition function."""
    temperature_k = np.asarray(temperature_k, dtype=float)
    kt = K_BOLTZMANN_CGS * temperature_k
    if name == "H2O":
        atoms, d0, rotation, vibration, g_el, symmetry = H2O
        u_rot = np.sqrt(np.pi) / symmetry * (temperature_k / HC_OVER_K_CM_K) ** 1.5 / np.sqrt(np.prod(rotation))
        u_vib = np.prod([1.0 / (1.0 - np.exp(-HC_OVER_K_CM_K * w / temperature_k)) for w in vibration], axis=0)
        masses = [ATOMIC_MASS_AMU[a] * AMU_G for a in atoms]
        translational = 3.0 * np.log10(2.0 * np.pi * kt / H_PLANCK_CGS**2) + 1.5 * np.log10(
            np.prod(masses) / sum(masses))
    else:
        atoms, d0, b_e, omega_e, g_el, symmetry = MOLECULES[name]
        u_rot = temperature_k / (symmetry * HC_OVER_K_CM_K * b_e)
        u_vib = 1.0 / (1.0 - np.exp(-HC_OVER_K_CM_K * omega_e / temperature_k))
        m_a, m_b = (ATOMIC_MASS_AMU[a] * AMU_G for a in atoms)
        translational = 1.5 * np.log10(2.0 * np.pi * (m_a * m_b / (m_a + m_b)) * kt / H_PLANCK_CGS**2)
    log_u_atoms = sum(log_partition(a, 1) for a in atoms)
    log_u_mol = np.log10(g_el * u_rot * u_vib)
    return log_u_atoms - log_u_mol + translational - d0 / (K_BOLTZMANN_EV * temperature_k) / np.log(10.0)


def chemical_equilibrium(temperature_k, n_h_total, n_e, iterations=400):
    """log10 free neutral atom densities (cm^-3) {element: array} of every element of ``SOLAR_LOG_EPS``.

    Arrays broadcast (one layer per element). Element totals are ``n_h_total 10^(log eps - 12)`` (Asplund et
    al. 2009); each element's atoms are split into ion stages by ``ionisation_fractions`` at the given N_e;
    H, C, N, O, Si and Ti also form the ``NETWORK`` molecules and H2O (fixed-point iteration with geometric
    damping until no density changes by more than 1e-6 dex).
    """
    temperature_k, n_h_total, n_e = np.broadcast_arrays(*(np.asarray(x, dtype=float)
                                                           for x in (temperature_k, n_h_total, n_e)))
    log_k = {name: log_dissociation_constant(name, temperature_k) for name in NETWORK + ("H2O",)}
    atoms = {name: MOLECULES[name][0] for name in NETWORK}
    atoms["H2O"] = H2O[0]
    log_free, log_total, ion_factor = {}, {}, {}
    for element in SOLAR_LOG_EPS:
        log_total[element] = np.log10(n_h_total) + SOLAR_LOG_EPS[element] - 12.0
        ion_factor[element] = 1.0 / ionisation_fractions(element, temperature_k, n_e)[0]
        log_free[element] = log_total[element] - np.log10(ion_factor[element])
    for _ in range(iterations):
        molecules = {m: sum(log_free[a] for a in atoms[m]) - log_k[m] for m in atoms}
        change = 0.0
        for element in NETWORK_ELEMENTS:
            bound = sum(atoms[m].count(element) * 10.0 ** (molecules[m] - log_free[element]) for m in atoms
                        if element in atoms[m])
            new = log_total[element] - np.log10(ion_factor[element] + bound)
            updated = 0.5 * (log_free[element] + new)
            change = max(change, float(np.max(np.abs(updated - log_free[element]))))
            log_free[element] = updated
        if change < 1e-6:
            break
    return log_free


def species_log_population(names, temperature_k, n_h, n_e):
    """m_s without the Doppler-width term: log10 of the lower-level population factor per (N_H N_e), per species.

    ``names``: species like "Fe 1", "Ti 2", "TiO 1"; the layer (T, N_H, N_e) may be arrays (broadcast): the
    result has shape (len(names),) + their shape. See the module docstring.
    """
    temperature_k, n_h, n_e = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (temperature_k, n_h, n_e)))
    log_free = chemical_equilibrium(temperature_k, n_h, n_e)
    log_norm = np.log10(n_h * n_e)
    kt = K_BOLTZMANN_CGS * temperature_k
    out = np.empty((len(names),) + temperature_k.shape)
    for i, name in enumerate(names):
        formula, stage = str(name).split()
        stage = int(stage)
        symbols = split_formula(formula)
        if len(symbols) == 1:
            element = symbols[0]
            ionised = np.zeros_like(temperature_k)
            if stage >= 2:
                s1, s2 = saha_factors(element, temperature_k)
                with np.errstate(divide="ignore"):
                    ionised = np.log10(s1 / n_e) + (np.log10(s2 / n_e) if stage >= 3 else 0.0)
            out[i] = log_free.get(element, -30.0) + ionised - log_partition(element, stage) - log_norm
        else:
            d0 = MOLECULES[formula][1] if formula in MOLECULES else 4.0
            masses = [ATOMIC_MASS_AMU.get(a, 50.0) * AMU_G for a in symbols[:2]]
            mu = masses[0] * masses[1] / (masses[0] + masses[1])
            log_lambda3 = 1.5 * np.log10(H_PLANCK_CGS**2 / (2.0 * np.pi * mu * kt))
            log_atoms = sum(log_free.get(a, -30.0) - log_partition(a, 1) for a in symbols[:2])
            out[i] = log_atoms + log_lambda3 + d0 / (K_BOLTZMANN_EV * temperature_k) / np.log(10.0) - log_norm
    return out


def species_kind(name):
    """"atom" (neutral), "ion" or "molecule" for a species name."""
    formula, stage = str(name).split()
    if len(split_formula(formula)) > 1:
        return "molecule"
    return "atom" if stage == "1" else "ion"


def doppler_log_width(mass_amu, teff_k):
    """log10 of the Doppler width (km/s) at the layer temperature and REFERENCE_VMIC_KMS."""
    temperature = LINE_FORMING_TEMPERATURE_RATIO * teff_k
    thermal2 = 2.0 * K_BOLTZMANN_CGS * temperature / (np.asarray(mass_amu) * AMU_G) / 1e10
    return 0.5 * np.log10(thermal2 + REFERENCE_VMIC_KMS**2)


# --------------------------------------------------------------------------------------------------------------
# The line table
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineTable:
    """Line data (one entry per line) and line-centre opacities per spectral type.

    wavelength_air_aa, loggf, e_low_ev, log_gamma_rad, log_gamma_stark, vdw_code : per line
    species_index : per line, into ``species_names`` / ``species_mass_amu`` / ``species_ion_stage`` /
        ``species_heavy_atoms`` (number of non-hydrogen atoms: the power of 10^[M/H] in the opacity)
    depth : (n_types, n_lines) VALD depth (0 where not listed; always 0 for forest lines)
    log_eta_type : (n_types, n_lines) log10 line-centre opacity ratio per spectral type (float32)
    forest : per line, True for lines of the forest table (strengths from the relation only)
    teff_type_k, logg_type_cgs, spectral_types : the type sequence, hottest first
    theta_exc, lambda_slope : fitted excitation 5040/T_exc and wavelength slope per type
    species_offset : (n_types, n_species) c_s of the relation; species_calibrated : where it is empirical
    continuum_offset : (n_types,) C of the model; model_residual_dex : rms residual of the calibrated offsets
    log_ne_correction : (n_types,) fitted correction (dex) to the layer's N_e in the population model
    """

    wavelength_air_aa: np.ndarray
    species_index: np.ndarray
    species_names: np.ndarray
    species_mass_amu: np.ndarray
    species_ion_stage: np.ndarray
    species_heavy_atoms: np.ndarray
    loggf: np.ndarray
    e_low_ev: np.ndarray
    log_gamma_rad: np.ndarray
    log_gamma_stark: np.ndarray
    vdw_code: np.ndarray
    depth: np.ndarray
    log_eta_type: np.ndarray
    teff_type_k: np.ndarray
    logg_type_cgs: np.ndarray
    spectral_types: np.ndarray
    theta_exc: np.ndarray
    forest: np.ndarray
    lambda_slope: np.ndarray
    species_offset: np.ndarray
    species_calibrated: np.ndarray
    continuum_offset: np.ndarray
    model_residual_dex: float
    log_ne_correction: np.ndarray
    loggf_correction_dex: np.ndarray = None

    def __len__(self):
        return len(self.wavelength_air_aa)

    def type_weights(self, teff_k):
        """Indices (i, i+1) of the bracketing types and the weight of i+1 for linear interpolation in Teff."""
        check_teff(teff_k)
        t = np.clip(teff_k, self.teff_type_k[-1], self.teff_type_k[0])
        i = int(np.clip(np.searchsorted(-self.teff_type_k, -t) - 1, 0, len(self.teff_type_k) - 2))
        w = (self.teff_type_k[i] - t) / (self.teff_type_k[i] - self.teff_type_k[i + 1])
        return i, float(w)

    def log_eta_at(self, teff_k):
        """log10 line-centre opacity ratio of every line, linear in Teff between the spectral types (float64), plus
        the astrophysical log gf correction of each line (``loggf_correction_dex``, the same at every Teff)."""
        i, w = self.type_weights(teff_k)
        log_eta = (1.0 - w) * self.log_eta_type[i].astype(np.float64) + w * self.log_eta_type[i + 1]
        if self.loggf_correction_dex is not None:
            log_eta += self.loggf_correction_dex
        return log_eta

    def reference_logg_at(self, teff_k):
        """Dwarf-sequence logg (cgs) that the tabulated depths refer to, at ``teff_k``."""
        i, w = self.type_weights(teff_k)
        return (1.0 - w) * self.logg_type_cgs[i] + w * self.logg_type_cgs[i + 1]

    def logg_correction(self, teff_k, logg_cgs):
        """Per species: m_s(Teff, logg) - m_s(Teff, logg_ref(Teff)), the Saha/dissociation logg scaling (dex)."""
        i, w = self.type_weights(teff_k)
        reference = (1.0 - w) * self.logg_type_cgs[i] + w * self.logg_type_cgs[i + 1]
        if logg_cgs == reference:
            return np.zeros(len(self.species_names))
        correction = 10.0 ** ((1.0 - w) * self.log_ne_correction[i] + w * self.log_ne_correction[i + 1])
        temperature, n_h, n_e = photosphere_state(teff_k, np.array([logg_cgs, reference]))
        populations = species_log_population(self.species_names, temperature, n_h, n_e * correction)
        return populations[:, 0] - populations[:, 1]


def check_teff(teff_k):
    """Raise ParameterError unless ``teff_k`` lies in the built-in synthesis range."""
    if not TEFF_RANGE_K[0] <= teff_k <= TEFF_RANGE_K[1]:
        raise ParameterError(
            f"teff_k={teff_k} is outside the built-in synthesis range {TEFF_RANGE_K[0]:.0f}-{TEFF_RANGE_K[1]:.0f} K "
            "(the span of the F0..M5 VALD tables); use a PHOENIX grid for other temperatures"
        )


def maximum_depth(wavelength_aa, teff_k):
    """Central depth A_c = 1 - B_lambda(T_0) / B_lambda(Teff) of an infinitely opaque line (T_0 = 0.66 Teff)."""
    return 1.0 - planck_flux(wavelength_aa, CORE_TEMPERATURE_RATIO * teff_k) / planck_flux(wavelength_aa, teff_k)


def log_eta_from_depth(depth, max_depth):
    """log10 eta_0 = log10(d / (A_c - d)), the inverse of ``d = A_c eta_0 / (1 + eta_0)`` (d clipped below A_c)."""
    d = np.clip(depth, 1e-3, MAX_DEPTH_FRACTION * max_depth)
    return np.log10(d / (max_depth - d))


def _relation_terms(loggf, e_low_ev, wavelength_aa, theta, slope):
    """log gf - theta E_low + g log10(lambda / 5000 A): the line's part of the relation."""
    return loggf - theta * e_low_ev + slope * np.log10(wavelength_aa / LAMBDA_REFERENCE_AA)


def _calibrate_type(depth, max_depth, loggf, e_low_ev, wavelength_aa, species_index, n_species, fe1):
    """Empirical offsets of one type: (c_s with NaN where < 3 moderate lines, n moderate lines, theta, slope)."""
    moderate = (depth >= MODERATE_DEPTH[0]) & (depth <= MODERATE_DEPTH[1])
    log_eta_depth = log_eta_from_depth(np.where(moderate, depth, 0.5), max_depth)
    fe = moderate & (species_index == fe1)
    design = np.column_stack([np.ones(fe.sum()), e_low_ev[fe], np.log10(wavelength_aa[fe] / LAMBDA_REFERENCE_AA)])
    coefficients = np.linalg.lstsq(design, log_eta_depth[fe] - loggf[fe], rcond=None)[0]
    theta, slope = -coefficients[1], coefficients[2]
    residual = log_eta_depth - _relation_terms(loggf, e_low_ev, wavelength_aa, theta, slope)
    offsets, counts = np.full(n_species, np.nan), np.zeros(n_species, dtype=int)
    for s in np.unique(species_index[moderate]):
        sel = moderate & (species_index == s)
        counts[s] = sel.sum()
        if sel.sum() >= MIN_CALIBRATION_LINES:
            offsets[s] = np.median(residual[sel])
    return offsets, counts, theta, slope


def _weighted_median(values, weights):
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]


def _fit_model(calibrated, counts, model_grid, kinds, reference_species, iterations=12):
    """Fit the population model to the calibrated offsets; returns the per-type choices and the offsets.

    ``model_grid``: (n_types, n_grid, n_species) m_s for each trial electron density of ``LOG_NE_GRID``. Per
    type, the electron density (index into the grid) and the constant C are chosen to minimise the weighted
    mean absolute residual ``c_s - C - m_s - delta_s`` over its calibrated species; per species, delta_s is the
    median residual over its calibrated types (Fe I: 0). Returns (grid index per type, C per type, delta per
    species, rms residual over the calibrated pairs).
    """
    n_types, n_grid, n_species = model_grid.shape
    known = np.isfinite(calibrated)
    weight = np.sqrt(counts)
    delta = np.zeros(n_species)
    choice = np.full(n_types, int(np.argmin(np.abs(LOG_NE_GRID))))
    constant = np.zeros(n_types)
    for _ in range(iterations):
        for t in range(n_types):
            k = known[t]
            residual = calibrated[t, k][None, :] - model_grid[t][:, k] - delta[k][None, :]
            centre = np.array([_weighted_median(r, weight[t, k]) for r in residual])
            cost = np.sum(weight[t, k] * np.abs(residual - centre[:, None]), axis=1)
            choice[t] = int(np.argmin(cost))
            constant[t] = centre[choice[t]]
        model = model_grid[np.arange(n_types), choice]
        for s in np.flatnonzero(known.any(axis=0)):
            delta[s] = np.median((calibrated[:, s] - model[:, s] - constant)[known[:, s]])
        shift = delta[reference_species]
        delta -= shift
        constant += shift
    model = model_grid[np.arange(n_types), choice]
    residual = (calibrated - model - constant[:, None] - delta[None, :])[known]
    rms = float(np.sqrt(np.average(residual**2, weights=weight[known])))
    return choice, constant, delta, rms


def _species_offsets(calibrated, model, constant, delta, teff_type_k, kinds):
    """c_s(type) for every species: empirical where calibrated, ``C + m_s + delta_s(type)`` elsewhere.

    delta_s(type) is the species' own residual ``c_s - C - m_s`` at its calibrated types, interpolated linearly in
    Teff between them and held beyond; for species calibrated nowhere, the median delta of the calibrated
    species of the same kind (neutral atom, ion, molecule).
    """
    n_types, n_species = calibrated.shape
    known = np.isfinite(calibrated)
    offsets = np.where(known, calibrated, np.nan)
    for s in range(n_species):
        rows = np.flatnonzero(known[:, s])
        if rows.size:
            own = calibrated[rows, s] - model[rows, s] - constant[rows]
            order = np.argsort(teff_type_k[rows])
            local = np.interp(teff_type_k, teff_type_k[rows][order], own[order])
        else:
            same = known.any(axis=0) & (kinds == kinds[s])
            local = np.full(n_types, np.median(delta[same]) if same.any() else 0.0)
        fill = ~known[:, s]
        offsets[fill, s] = constant[fill] + model[fill, s] + local[fill]
    return offsets


def _line_centre_opacity(depth, max_depth, log_eta_gf, teff_type_k):
    """(n_types, n_lines) log eta: from depths where listed, interpolated/extrapolated elsewhere."""
    n_types, n_lines = depth.shape
    listed = depth > 0
    log_eta = log_eta_from_depth(depth, max_depth)
    saturated = listed & (depth > MODERATE_DEPTH[1]) & np.isfinite(log_eta_gf)
    log_eta[saturated] = np.maximum(log_eta[saturated], log_eta_gf[saturated])
    rows = np.arange(n_types)[:, None]
    prev = np.maximum.accumulate(np.where(listed, rows, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(listed, rows, n_types)[::-1], axis=0)[::-1]
    cols = np.arange(n_lines)[None, :]
    has_prev, has_next = prev >= 0, nxt < n_types
    p, q = np.clip(prev, 0, n_types - 1), np.clip(nxt, 0, n_types - 1)
    t = teff_type_k[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (teff_type_k[p] - t) / (teff_type_k[p] - teff_type_k[q])
    interior = ~listed & has_prev & has_next
    out = np.full((n_types, n_lines), NO_OPACITY_LOG_ETA)
    out[listed] = log_eta[listed]
    out[interior] = ((1 - w) * log_eta[p, cols] + w * log_eta[q, cols])[interior]
    edge = np.where(has_prev, p, q)
    extrapolated = log_eta[edge, cols] + log_eta_gf - log_eta_gf[edge, cols]
    beyond = ~listed & ~interior & (has_prev | has_next) & np.isfinite(extrapolated)
    out[beyond] = extrapolated[beyond]
    never = ~listed.any(axis=0)
    out[:, never] = log_eta_gf[:, never]
    return out


def _read_npz(name):
    with resources.files("simharps.data").joinpath(name).open("rb") as handle:
        data = handle.read()
    return data


def _read_checked_npz(name, sha256, constant):
    """The arrays (dict) of ``simharps/data/NAME`` after checking its sha256 against the module constant
    ``constant`` (value ``sha256``): a rebuilt file must come with that constant updated (it keys the template
    cache)."""
    data = _read_npz(name)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"simharps/data/{name} has sha256 {digest}, but simharps.stellar.linelist.{constant} is "
                           f"{sha256}: a rebuilt file must come with that constant updated (it keys the template "
                           "cache)")
    return dict(np.load(io.BytesIO(data)))


def _load_forest():
    """The forest table's arrays (dict), after checking its sha256 against FOREST_TABLE_SHA256."""
    raw = _read_checked_npz(FOREST_TABLE, FOREST_TABLE_SHA256, "FOREST_TABLE_SHA256")
    return {
        "wavelength_air_aa": raw["wavelength_air_e4"].astype(np.float64) * 1e-4 + raw["wavelength_origin_aa"],
        "species_names": raw["species_names"],
        "species_index": raw["species_index"].astype(np.intp),
        "species_mass_amu": raw["species_mass_amu"].astype(np.float64),
        "species_ion_stage": raw["species_ion_stage"].astype(np.int64),
        "species_heavy_atoms": raw["species_heavy_atoms"].astype(np.int64),
        "loggf": raw["loggf_milli"].astype(np.float64) * 1e-3,
        "e_low_ev": raw["e_low_mev"].astype(np.float64) * 1e-3,
        "log_gamma_rad": raw["log_gamma_rad_centi"].astype(np.float64) * 1e-2,
        "log_gamma_stark": raw["log_gamma_stark_centi"].astype(np.float64) * 1e-2,
        "vdw_code": raw["vdw_code"].astype(np.float64),
    }


def _merge(base, forest):
    """Concatenate base and forest lines on one species list (base species first, in their order)."""
    names = list(base["species_names"])
    lookup = {name: i for i, name in enumerate(names)}
    remap = []
    for i, name in enumerate(forest["species_names"]):
        if name not in lookup:
            lookup[name] = len(names)
            names.append(name)
        remap.append(lookup[name])
    per_species = {}
    for key in ("species_mass_amu", "species_ion_stage", "species_heavy_atoms"):
        values = np.zeros(len(names), dtype=base[key].dtype)
        values[: len(base["species_names"])] = base[key]
        values[np.array(remap, dtype=np.intp)] = forest[key]
        values[: len(base["species_names"])] = base[key]
        per_species[key] = values
    lines = {}
    for key in ("wavelength_air_aa", "loggf", "e_low_ev", "log_gamma_rad", "log_gamma_stark", "vdw_code"):
        lines[key] = np.concatenate([base[key], forest[key]])
    remapped = np.array(remap, dtype=np.intp)[forest["species_index"]]
    lines["species_index"] = np.concatenate([base["species_index"], remapped])
    return np.array(names), per_species, lines


def build_line_table(base, forest=None, loggf_correction=None):
    """A ``LineTable`` from the raw arrays of the depth table (and of the forest table, if given).

    ``base``: dict with ``wavelength_air_aa``, ``species_index``, ``species_names``, ``species_mass_amu``,
    ``species_ion_stage``, ``species_heavy_atoms``, ``loggf``, ``e_low_ev``, ``log_gamma_*``, ``vdw_code``,
    ``depth`` (n_types, n_base), ``teff_k``, ``logg_cgs``, ``spectral_types``; ``forest``: as ``_load_forest``;
    ``loggf_correction``: per-line astrophysical log gf corrections (dex, as ``load_astrophysical_gf``), or None.
    """
    n_base = len(base["wavelength_air_aa"])
    if forest is None:
        forest = {key: value[:0] for key, value in base.items() if key not in ("depth", "teff_k", "logg_cgs",
                                                                             "spectral_types")}
    names, per_species, lines = _merge(base, forest)
    n_lines = len(lines["wavelength_air_aa"])
    teff_type, logg_type = base["teff_k"], base["logg_cgs"]
    depth = np.zeros((len(teff_type), n_lines))
    depth[:, :n_base] = base["depth"]
    wave = lines["wavelength_air_aa"]
    max_depth = maximum_depth(wave[None, :n_base], teff_type[:, None])
    fe1 = int(np.flatnonzero(names == "Fe 1")[0])
    calibration = [_calibrate_type(depth[t, :n_base], max_depth[t], lines["loggf"][:n_base],
                                   lines["e_low_ev"][:n_base], wave[:n_base], lines["species_index"][:n_base],
                                   len(names), fe1) for t in range(len(teff_type))]
    calibrated = np.stack([c[0] for c in calibration])
    counts = np.stack([c[1] for c in calibration])
    theta = np.array([c[2] for c in calibration])
    slope = np.array([c[3] for c in calibration])
    temperature, n_h, n_e = photosphere_state(teff_type[:, None], logg_type[:, None])
    populations = species_log_population(names, temperature, n_h, n_e * 10.0**LOG_NE_GRID[None, :])
    doppler = doppler_log_width(per_species["species_mass_amu"][:, None], teff_type[None, :])
    model_grid = np.transpose(populations - doppler[:, :, None], (1, 2, 0))
    kinds = np.array([species_kind(n) for n in names])
    choice, constant, delta, rms = _fit_model(calibrated, counts, model_grid, kinds, fe1)
    model = model_grid[np.arange(len(teff_type)), choice]
    offsets = _species_offsets(calibrated, model, constant, delta, teff_type, kinds)
    species = lines["species_index"]
    log_eta = (offsets[:, species] + _relation_terms(lines["loggf"][None, :], lines["e_low_ev"][None, :],
                                                     wave[None, :], theta[:, None], slope[:, None])).astype(np.float32)
    log_eta[:, :n_base] = _line_centre_opacity(depth[:, :n_base], max_depth, log_eta[:, :n_base].astype(np.float64),
                                               teff_type)
    for name, correction in STRENGTH_CORRECTION_DEX.items():
        if name in names:
            log_eta[:, species == int(np.flatnonzero(names == name)[0])] += correction
    forest_mask = np.zeros(n_lines, dtype=bool)
    forest_mask[n_base:] = True
    return LineTable(
        wavelength_air_aa=wave,
        species_index=species,
        species_names=names,
        species_mass_amu=per_species["species_mass_amu"].astype(np.float64),
        species_ion_stage=per_species["species_ion_stage"].astype(np.int64),
        species_heavy_atoms=per_species["species_heavy_atoms"].astype(np.int64),
        loggf=lines["loggf"],
        e_low_ev=lines["e_low_ev"],
        log_gamma_rad=lines["log_gamma_rad"],
        log_gamma_stark=lines["log_gamma_stark"],
        vdw_code=lines["vdw_code"],
        depth=depth.astype(np.float32),
        log_eta_type=log_eta,
        teff_type_k=teff_type,
        logg_type_cgs=logg_type,
        spectral_types=base["spectral_types"],
        theta_exc=theta,
        forest=forest_mask,
        lambda_slope=slope,
        species_offset=offsets,
        species_calibrated=np.isfinite(calibrated),
        continuum_offset=constant,
        model_residual_dex=rms,
        log_ne_correction=LOG_NE_GRID[choice],
        loggf_correction_dex=None if loggf_correction is None else np.asarray(loggf_correction, dtype=np.float64),
    )


def load_base_arrays():
    """The depth table's arrays (dict) as ``build_line_table`` takes them."""
    raw = dict(np.load(io.BytesIO(_read_npz("stellar_lines.npz"))))
    return {
        "wavelength_air_aa": raw["wavelength_air_aa"].astype(np.float64),
        "species_index": raw["species_index"].astype(np.intp),
        "species_names": raw["species_names"],
        "species_mass_amu": raw["species_mass_amu"].astype(np.float64),
        "species_ion_stage": raw["species_ion_stage"].astype(np.int64),
        "species_heavy_atoms": raw["species_heavy_atoms"].astype(np.int64),
        "loggf": raw["loggf"].astype(np.float64),
        "e_low_ev": raw["e_low_ev"].astype(np.float64),
        "log_gamma_rad": raw["log_gamma_rad"].astype(np.float64),
        "log_gamma_stark": raw["log_gamma_stark"].astype(np.float64),
        "vdw_code": raw["vdw_code"].astype(np.float64),
        "depth": raw["depth_permille"].astype(np.float64) / 1000.0,
        "teff_k": raw["teff_k"].astype(np.float64),
        "logg_cgs": raw["logg_cgs"].astype(np.float64),
        "spectral_types": raw["spectral_types"],
    }


def load_astrophysical_gf(n_lines, n_base):
    """Per-line astrophysical log gf corrections (dex, float64, length ``n_lines``) from ``astrophysical_gf.npz``.

    The file holds the non-zero corrections only (``line_index`` into the merged table: depth-table lines first,
    then forest lines; ``delta_centidex``); for the depth table alone (``n_lines == n_base``) only the corrections
    of its lines are kept. The sha256 is checked against ``ASTROPHYSICAL_GF_SHA256``.
    """
    raw = _read_checked_npz(ASTROPHYSICAL_GF_TABLE, ASTROPHYSICAL_GF_SHA256, "ASTROPHYSICAL_GF_SHA256")
    if int(raw["n_lines"]) != n_lines and n_lines != n_base:
        raise RuntimeError(f"{ASTROPHYSICAL_GF_TABLE} was built for {int(raw['n_lines'])} lines, the table has {n_lines}")
    index = raw["line_index"].astype(np.intp)
    keep = index < n_lines
    correction = np.zeros(n_lines)
    correction[index[keep]] = raw["delta_centidex"][keep].astype(np.float64) * 1e-2
    return correction


@lru_cache(maxsize=4)
def load_line_table(forest=True, astrophysical_gf=True):
    """Load the shipped line tables (depth table + forest unless ``forest=False``) and derive the opacities (cached);
    with the astrophysical log gf corrections of ``astrophysical_gf.npz`` unless ``astrophysical_gf=False``."""
    base = load_base_arrays()
    forest_arrays = _load_forest() if forest else None
    correction = None
    if astrophysical_gf:
        n_base = len(base["wavelength_air_aa"])
        n_lines = n_base + (len(forest_arrays["wavelength_air_aa"]) if forest else 0)
        correction = load_astrophysical_gf(n_lines, n_base)
    return build_line_table(base, forest_arrays, correction)
