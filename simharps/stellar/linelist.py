"""The project-owned stellar line table and its conversion to line-centre opacities.

Data: ``simharps/data/stellar_lines.npz`` (built by ``scripts/build_line_table.py`` from the
VALD-derived depth tables of 16 dwarf spectral types F0..M5; provenance in
``simharps/data/stellar_lines.md``). One row per line: air wavelength, species, log gf, E_low,
damping constants, and the VALD central depth per spectral type (0 = not listed, i.e. shallower
than 0.1). The types map to Teff and logg through the Pecaut & Mamajek (2013) dwarf sequence.

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

Depths near A_c are saturated and say little about eta_0 (VALD lists depths up to 0.98 for G2, above
A_c; ``MAX_DEPTH_FRACTION`` = 0.98 caps eta_0 from a depth at 49). They are complemented by the Boltzmann
relation ``log eta_0 = c_s + log gf - theta E_low``, with the excitation temperature
``theta = 5040 / T_exc`` fitted per spectral type on the Fe I lines of moderate depth (0.1-0.6) and the
offset c_s per species and type (median over its moderate lines, at least 3 of them): saturated lines
(d > 0.6) take ``max(eta_from_depth, eta_from_gf)``. The tables are line masks, not complete lists: a
line missing from a type is either shallower than 0.1 or was left out (blended). Between two types that
list it, log eta_0 is interpolated linearly in Teff; beyond the listed types it follows the Boltzmann
relation from the nearest listed type (``log eta_edge + log eta_gf(t) - log eta_gf(edge)``); where that
relation is not calibrated (e.g. TiO in G stars) the line gets no opacity. Ca II has too few lines to
calibrate (H and K are saturated): it borrows the Fe II offset plus ``CA2_FROM_FE2_DEX`` = log(eps_Ca /
eps_Fe) + log(U_FeII / U_CaII) = -1.16 + 1.33 (solar abundances of Asplund et al. 2009; partition
functions at 5000 K), which gives H and K their broad damping wings.

Limits (say them wherever built-in spectra are used): A_c is one law for all lines (the very
strong resonance lines Na D keep too much core flux: 0.13 vs 0.06 in HD 41248; the red Ca I lines
6122/6162/6439 are 0.04-0.06 too shallow), no chromospheric emission cores; the VALD depths are
central depths of isolated lines at solar abundances for the dwarf sequence, at an assumed microturbulence of
1 km/s (``REFERENCE_VMIC_KMS``); weak lines (VALD depth < 0.1) are missing unless their species is
calibrated; the M tables hold only the deepest TiO lines, so M-dwarf molecular-band
pseudo-continua are absent (use the PHOENIX path for M dwarfs).

Example
-------
>>> from simharps.stellar.linelist import load_line_table, maximum_depth
>>> table = load_line_table()
>>> log_eta = table.log_eta_at(5770.0)      # line-centre log10 opacity ratio of every line at G2V
>>> a_c = maximum_depth(table.wavelength_air_aa, 5770.0)   # maximum central depth at each line
"""

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

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
CA2_FROM_FE2_DEX = 0.17


@dataclass(frozen=True)
class LineTable:
    """Line data (one entry per line) and line-centre opacities per spectral type.

    wavelength_air_aa, loggf, e_low_ev, log_gamma_rad, log_gamma_stark, vdw_code : per line
    species_index : per line, into ``species_names`` / ``species_mass_amu`` / ``species_ion_stage`` /
        ``species_heavy_atoms`` (number of non-hydrogen atoms: the power of 10^[M/H] in the opacity)
    log_eta_type : (n_types, n_lines) log10 line-centre opacity ratio per spectral type
    teff_type_k, logg_type_cgs, spectral_types : the type sequence, hottest first
    theta_exc : fitted excitation 5040/T_exc per type
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
        """log10 line-centre opacity ratio of every line, linear in Teff between the spectral types."""
        i, w = self.type_weights(teff_k)
        return (1.0 - w) * self.log_eta_type[i] + w * self.log_eta_type[i + 1]

    def reference_logg_at(self, teff_k):
        """Dwarf-sequence logg (cgs) that the tabulated depths refer to, at ``teff_k``."""
        i, w = self.type_weights(teff_k)
        return (1.0 - w) * self.logg_type_cgs[i] + w * self.logg_type_cgs[i + 1]


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


def _boltzmann_relation(depth, max_depth, loggf, e_low_ev, species_index, names):
    """log eta from log gf and E_low for one spectral type (NaN where uncalibrated), and theta_exc."""
    moderate = (depth >= MODERATE_DEPTH[0]) & (depth <= MODERATE_DEPTH[1])
    log_eta_depth = log_eta_from_depth(np.where(moderate, depth, 0.5), max_depth)
    fe = moderate & (species_index == int(np.flatnonzero(names == "Fe 1")[0]))
    slope, _ = np.polyfit(e_low_ev[fe], log_eta_depth[fe] - loggf[fe], 1)
    theta = -slope
    residual = log_eta_depth - loggf + theta * e_low_ev
    offsets = np.full(len(names), np.nan)
    for s in np.unique(species_index[moderate]):
        sel = moderate & (species_index == s)
        if sel.sum() >= MIN_CALIBRATION_LINES:
            offsets[s] = np.median(residual[sel])
    ca2, fe2 = np.flatnonzero(names == "Ca 2"), np.flatnonzero(names == "Fe 2")
    if len(ca2) and len(fe2) and np.isnan(offsets[ca2[0]]):
        offsets[ca2[0]] = offsets[fe2[0]] + CA2_FROM_FE2_DEX
    return offsets[species_index] + loggf - theta * e_low_ev, theta


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
    beyond = ~listed & ~interior & np.isfinite(extrapolated)
    out[beyond] = extrapolated[beyond]
    return out


@lru_cache(maxsize=1)
def load_line_table():
    """Load the shipped line table and derive the per-type line-centre opacities (cached)."""
    with resources.files("simharps.data").joinpath("stellar_lines.npz").open("rb") as handle:
        raw = dict(np.load(handle))
    depth = raw["depth_permille"].astype(np.float64) / 1000.0
    loggf = raw["loggf"].astype(np.float64)
    e_low = raw["e_low_ev"].astype(np.float64)
    species_index = raw["species_index"].astype(np.intp)
    names = raw["species_names"]
    max_depth = maximum_depth(raw["wavelength_air_aa"][None, :], raw["teff_k"][:, None])
    results = [_boltzmann_relation(d, a, loggf, e_low, species_index, names) for d, a in zip(depth, max_depth)]
    log_eta_gf = np.stack([r[0] for r in results])
    return LineTable(
        wavelength_air_aa=raw["wavelength_air_aa"],
        species_index=species_index,
        species_names=names,
        species_mass_amu=raw["species_mass_amu"].astype(np.float64),
        species_ion_stage=raw["species_ion_stage"].astype(np.int64),
        species_heavy_atoms=raw["species_heavy_atoms"].astype(np.int64),
        loggf=loggf,
        e_low_ev=e_low,
        log_gamma_rad=raw["log_gamma_rad"].astype(np.float64),
        log_gamma_stark=raw["log_gamma_stark"].astype(np.float64),
        vdw_code=raw["vdw_code"].astype(np.float64),
        depth=depth,
        log_eta_type=_line_centre_opacity(depth, max_depth, log_eta_gf, raw["teff_k"]),
        teff_type_k=raw["teff_k"],
        logg_type_cgs=raw["logg_cgs"],
        spectral_types=raw["spectral_types"],
        theta_exc=np.array([r[1] for r in results]),
    )
