"""TiO band opacity where no TiO line data exist: a just-overlapping-line (JOLA) band approximation calibrated on the
published TiO5 index versus Teff.

Why
---
The forest table's TiO lines (GALAH DR3) cover only 4675-4950, 5625-5900 and 6425-6775 A (air) of the synthesis
range. In the gaps between them, 4950-5625 A (alpha bands 5167, 5448, 5498 A) and 5900-6425 A (gamma-prime bands
6159/6187/6215 A, gamma (2,0) and (3,1)), M dwarfs have strong TiO bands of which the synthesis keeps only the
depth table's deepest lines. This module adds the missing band opacity there, and only there (``GAPS_AA``), as a
continuous line-to-continuum opacity ratio eta(lambda) that enters ``1 - A_c eta / (1 + eta)`` and the blanketing
like the Balmer opacity.

Equation
--------
Each band (system s, v', v'') is a set of rotational lines of the P, Q and R branches (lower level J'')::

    nu_R = nu_0 + 2B' + (3B' - B'') J + (B' - B'') J^2,  nu_Q = nu_0 + (B' - B'') J (J + 1),
    nu_P = nu_0 - (B' + B'') J + (B' - B'') J^2

(B' < B'': the R branch turns at the head, all branches run to the red: red-degraded bands). The line opacity
area of each line (eta_0 sqrt(pi) dv_D, km/s) is::

    S(Teff) 10^(2 [M/H] + dm(logg)) f_el q_00 S_rel(v', v'') HL_branch(J'') / n_sub
        10^(-theta(Teff) E_low) (lambda / 5000 A)^g(Teff),   E_low = G''(v'') + B'' J'' (J'' + 1)

with f_el the system's electronic oscillator strength, S_rel = nu |R_v'v''|^2 / (nu |R_00|^2) the band strength
relative to the system's (0,0), HL the Honl-London factors normalised to sum to 2J''+1 over the branches, n_sub the
number of spin sub-bands (each with its own head), theta and g the synthesis's excitation and wavelength terms
(``simharps.stellar.linelist``: the relation every line of the synthesis uses), dm the TiO logg correction of the
line table (zero on the dwarf sequence), and S(Teff) one strength for all systems (``LOG_STRENGTH``), fitted by
``scripts/build_tio_bands.py`` so that the band-only TiO5 index (gamma bands, 7000-7150 A) reproduces the mean of
three published TiO5-spectral type relations converted to Teff (``published_tio5``). The relative strengths carry
that calibration from the gamma system to the alpha and gamma-prime bands in the gaps. The areas are spread over
wavenumber with the density of lines 1 / |d nu / dJ| (J continuous: the JOLA of Zeidler & Koester 1982, A&A 113,
173), integrated exactly over each pixel (cumulative line count per pixel edge, so the head's 1/sqrt singularity is
integrable), smoothed by the Gaussian line profile of the Doppler width (layer temperature, 1 km/s microturbulence)
and divided by the pixel width in km/s.

Data: Franck-Condon factors q, band strengths S_rel, band heads and X-state G''(v) from the ExoMol Duo "Toto" TiO
model (McKemmish et al. 2019, MNRAS 488, 2836; ``Trovemaster/Duo`` examples/TiO/48Ti-16O__Toto.inp: J = 0
vibrational wave functions and transition-dipole curves; heads from the J = 0 origin, the diagonal spin-orbit
constants and B_v; ``scripts/derive_tio_bands.py`` recomputes every number of ``BANDS``); f_el (Jorgensen 1994, A&A 284, 179, Tab. 1) and B', B'' as carried by ChromaStarPy
``MolecData.py``. The model's heads are shifted per spin sub-band by the offset of the system's (0,0) band from the
laboratory heads (``LABORATORY_HEADS_AA``: 0.5-5 A).

Approximations: one B per electronic state for every v (no alpha_e), no spin splitting within a sub-band and
one head for the alpha bands (their three sub-bands lie within 1.5 A), 48TiO only, a continuous (smeared) band
instead of resolved lines, rotational levels populated at the synthesis's excitation temperature 5040 K / theta, the
TiO5 index on the band-only spectrum at full resolution (no other absorber, no instrumental smoothing). S(Teff) is
calibrated over 3060-3850 K (M5-M0), extrapolated to 4000 K and tapered linearly to zero at ``TEFF_MAX_K``
(4500 K), where the opacity stops, so G and K spectra are unchanged bit for bit.

Example
-------
>>> import numpy as np
>>> from simharps.stellar.tio_bands import band_opacity
>>> wave = np.geomspace(5100.0, 5250.0, 20000)
>>> eta = band_opacity(wave, teff_k=3400.0, logg_cgs=4.9, mh_dex=0.0)
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d

from simharps.constants import AMU_G, C_KMS, K_BOLTZMANN_CGS
from simharps.grids import air_to_vacuum
from simharps.stellar.linelist import (
    LAMBDA_REFERENCE_AA,
    REFERENCE_VMIC_KMS,
    load_line_table,
    maximum_depth,
    photosphere_state,
)

TEFF_MAX_K = 4500.0
"""No TiO band opacity at or above this Teff (K)."""
TAPER_START_K = 4000.0
"""Above this Teff (K7, the warm end of the TiO5 relations) S(Teff) is multiplied by a linear taper that reaches 0
at ``TEFF_MAX_K`` (the extrapolated S leaves a mean eta of 0.02 in the gaps at 4450 K: a 2 % flux step at the cut)."""
GAPS_AA = ((4950.0, 5625.0), (5900.0, 6425.0))
"""Air wavelength ranges (A, rest frame) between the forest table's TiO lines (4675-4950, 5625-5900, 6425-6775):
the only places where ``band_opacity`` adds opacity to the synthesis."""
EV_PER_CM = 1.239842e-4
J_STEP = 0.05
BOLTZMANN_CUT = 1e-4
"""Rotational lines whose Boltzmann factor exp(-B'' J''(J''+1) hc / kT_exc) falls below this are left out."""
TIO_MASS_AMU = 63.866

SYSTEMS = {
    # name: (f_el, B' cm^-1, B'' cm^-1, Lambda', Lambda'', q_00)
    "alpha": (0.17, 0.489888, 0.535431, 2, 2, 0.409),
    "gamma_prime": (0.14, 0.507812, 0.535431, 1, 2, 0.728),
    "gamma": (0.15, 0.507390, 0.535431, 3, 2, 0.718),
}
"""TiO systems: alpha C3Delta-X3Delta, gamma-prime B3Pi-X3Delta, gamma A3Phi-X3Delta. f_el: Jorgensen (1994)
Tab. 1; B', B'': ChromaStarPy ``MolecData.py``; q_00: Franck-Condon factor of the (0,0) band (Duo Toto model)."""

X_VIBRATIONAL_CM = (0.0, 999.9, 1990.6, 2972.2, 3944.6)
"""G''(v'') - G''(0) of X3Delta, cm^-1 (Duo Toto model), v'' = 0..4."""

BANDS = (
    # system, v', v'', model heads (air, A) of the sub-bands in increasing wavelength, S_rel
    ("alpha", 3, 0, (4585.1,), 0.196),
    ("alpha", 2, 0, (4762.2,), 0.517),
    ("alpha", 3, 1, (4805.4,), 0.696),
    ("alpha", 1, 0, (4955.8,), 0.978),
    ("alpha", 2, 1, (5000.3,), 0.539),
    ("alpha", 3, 2, (5045.6,), 0.114),
    ("alpha", 0, 0, (5168.0,), 1.000),
    ("alpha", 2, 2, (5260.9,), 0.148),
    ("alpha", 3, 3, (5308.5,), 0.335),
    ("alpha", 0, 1, (5449.5,), 0.782),
    ("alpha", 1, 2, (5498.1,), 0.486),
    ("alpha", 2, 3, (5547.4,), 0.139),
    ("alpha", 0, 2, (5760.5,), 0.287),
    ("alpha", 1, 3, (5811.7,), 0.440),
    ("alpha", 2, 4, (5863.6,), 0.409),
    ("alpha", 1, 4, (6159.8,), 0.165),
    ("gamma_prime", 2, 0, (5569.3, 5594.5, 5619.9), 0.101),
    ("gamma_prime", 3, 1, (5618.0, 5643.6, 5669.4), 0.238),
    ("gamma_prime", 1, 0, (5847.3, 5875.1, 5903.1), 0.440),
    ("gamma_prime", 2, 1, (5897.6, 5925.9, 5954.3), 0.587),
    ("gamma_prime", 3, 2, (5949.0, 5977.7, 6006.7), 0.553),
    ("gamma_prime", 0, 0, (6158.2, 6188.9, 6220.0), 1.000),
    ("gamma_prime", 1, 1, (6210.2, 6241.5, 6273.2), 0.430),
    ("gamma_prime", 2, 2, (6263.4, 6295.2, 6327.4), 0.133),
    ("gamma_prime", 0, 1, (6561.9, 6596.8, 6632.2), 0.202),
    ("gamma_prime", 1, 2, (6617.0, 6652.6, 6688.5), 0.278),
    ("gamma_prime", 2, 3, (6673.4, 6709.5, 6746.1), 0.272),
    ("gamma_prime", 3, 4, (6730.9, 6767.7, 6804.9), 0.222),
    ("gamma", 2, 0, (6292.4, 6321.1, 6350.0), 0.097),
    ("gamma", 3, 1, (6354.8, 6384.0, 6413.5), 0.226),
    ("gamma", 1, 0, (6648.5, 6680.6, 6712.9), 0.437),
    ("gamma", 2, 1, (6714.7, 6747.3, 6780.3), 0.582),
    ("gamma", 3, 2, (6781.5, 6814.9, 6848.5), 0.554),
    ("gamma", 0, 0, (7051.2, 7087.2, 7123.6), 1.000),
    ("gamma", 1, 1, (7121.7, 7158.5, 7195.6), 0.423),
)
"""Bands of v' <= 3, v'' <= 4 with S_rel exp(-G''(v'') hc / k 2800 K) > 0.02 and a head below 7150 A (Duo Toto
model; heads: J = 0 origin + spin-orbit term + (B'+B'')^2 / 4(B''-B'), air)."""

LABORATORY_HEADS_AA = {"alpha": (5167.0,), "gamma_prime": (6159.0, 6187.0, 6215.0), "gamma": (7054.0, 7088.0, 7126.0)}
"""Air heads (A) of each system's (0,0) band as commonly quoted (alpha 5167; gamma-prime 6159, 6187, 6215; gamma
7054, 7088, 7126, the heads that the TiO5 windows bracket): every band of a system is shifted by the wavenumber
offset of its sub-band here from the model's (0,0) head."""

LOG_STRENGTH = (1.25, -1.129, -0.35)
"""log10 S(Teff) (S in km/s) = c0 + c1 x + c2 x^2, x = (Teff - 3450 K) / 1000 K: fitted by
``scripts/build_tio_bands.py`` on ``published_tio5`` at the Pecaut & Mamajek M0-M5 Teff (3060-3850 K)."""

TIO5_WINDOWS_AA = ((7126.0, 7135.0), (7042.0, 7046.0))
"""TiO5 = mean flux 7126-7135 A / mean flux 7042-7046 A (Reid, Hawley & Gizis 1995, AJ 110, 1838)."""
TIO5_RELATIONS = {"Reid1995": (-10.775, 8.2), "Gizis1997": (-9.64, 7.76), "Lepine2013": (-9.55, 7.83)}
"""SpT (M subtypes, M0 = 0) = a TiO5 + b (coefficients as in ``aburgasser/kastredux`` core.py
INDEX_CLASSIFICATION_RELATIONS; valid K7-M6)."""
SPT_TEFF_K = ((0.0, 3850.0), (0.5, 3770.0), (1.0, 3660.0), (1.5, 3620.0), (2.0, 3560.0), (2.5, 3470.0),
              (3.0, 3430.0), (3.5, 3270.0), (4.0, 3210.0), (4.5, 3110.0), (5.0, 3060.0))
"""(M subtype, Teff K) of dwarfs, Pecaut & Mamajek (2013; ``emamajek/SpectralType``
EEM_dwarf_UBVIJHK_colors_Teff.txt)."""


def published_tio5(teff_k):
    """TiO5 of the three ``TIO5_RELATIONS`` at ``teff_k`` (K, 3060-3850) through ``SPT_TEFF_K``: array (3,)."""
    spt, teff = np.array(SPT_TEFF_K).T
    subtype = np.interp(teff_k, teff[::-1], spt[::-1])
    return np.array([(subtype - b) / a for a, b in TIO5_RELATIONS.values()])


def log_strength(teff_k, coefficients=None):
    """log10 S(Teff) (S in km/s) of ``LOG_STRENGTH`` (or ``coefficients``)."""
    c0, c1, c2 = LOG_STRENGTH if coefficients is None else coefficients
    x = (teff_k - 3450.0) / 1000.0
    return c0 + c1 * x + c2 * x**2


def honl_london(delta_lambda, lambda_low, j_low):
    """(P, Q, R) Honl-London factors (singlet formulas, Herzberg 1950) for Lambda' = Lambda'' + delta_lambda
    (0 or +-1), normalised to sum 2J''+1; zero below J'' = Lambda''."""
    j, lam = j_low, float(lambda_low)
    if delta_lambda == 0:
        p = (j + lam) * (j - lam) / j
        q = (2 * j + 1) * lam**2 / (j * (j + 1))
        r = (j + 1 + lam) * (j + 1 - lam) / (j + 1)
    else:  # +-1: the Lambda' = Lambda'' - 1 formulas with Lambda'' -> -delta_lambda Lambda''
        lam = -delta_lambda * lam
        p = (j + lam) * (j + lam - 1) / (4 * j)
        q = (j + lam) * (j - lam + 1) * (2 * j + 1) / (4 * j * (j + 1))
        r = (j - lam + 1) * (j - lam + 2) / (4 * (j + 1))
    total = p + q + r
    norm = np.where((j >= abs(lambda_low)) & (total > 0), (2 * j + 1) / np.where(total > 0, total, 1.0), 0.0)
    return np.maximum(p, 0) * norm, np.maximum(q, 0) * norm, np.maximum(r, 0) * norm


def branch_wavenumbers(b_up, b_low, j_low):
    """(P, Q, R) wavenumbers relative to the band origin, cm^-1, for lower-level J''."""
    j = j_low
    return (-(b_up + b_low) * j + (b_up - b_low) * j**2,
            (b_up - b_low) * j * (j + 1),
            2 * b_up + (3 * b_up - b_low) * j + (b_up - b_low) * j**2)


def _head_wavenumbers():
    """Vacuum wavenumbers (cm^-1) of every band's sub-band heads, shifted as in ``LABORATORY_HEADS_AA``."""
    model_00 = {system: heads for system, v_up, v_low, heads, _ in BANDS if (v_up, v_low) == (0, 0)}
    sigma = {}
    for system, v_up, v_low, heads, _ in BANDS:
        shift = [1e8 / air_to_vacuum(lab) - 1e8 / air_to_vacuum(model)
                 for lab, model in zip(LABORATORY_HEADS_AA[system], model_00[system])]
        sigma[system, v_up, v_low] = [1e8 / air_to_vacuum(h) + s for h, s in zip(heads, shift)]
    return sigma


HEAD_WAVENUMBERS = _head_wavenumbers()


def tio_terms(teff_k, logg_cgs):
    """(theta, wavelength slope g, TiO logg correction dm dex) of the synthesis's line relation at the star."""
    table = load_line_table()
    tio = int(np.flatnonzero(table.species_names == "TiO 1")[0])
    i, w = table.type_weights(teff_k)
    theta = (1 - w) * table.theta_exc[i] + w * table.theta_exc[i + 1]
    slope = (1 - w) * table.lambda_slope[i] + w * table.lambda_slope[i + 1]
    return theta, slope, table.logg_correction(teff_k, logg_cgs)[tio]


def band_opacity(wavelength_air_aa, teff_k, logg_cgs, mh_dex, doppler_factor=1.0, gaps_only=True, bands=BANDS,
                 log_strength_dex=None):
    """JOLA TiO eta on an increasing air wavelength grid (A, observed frame: band positions times
    ``doppler_factor``); zero outside ``GAPS_AA`` (rest frame) unless ``gaps_only=False``, and for Teff >= TEFF_MAX_K.
    ``log_strength_dex``: log10 S (km/s) instead of ``log_strength(teff_k)`` (calibration)."""
    wavelength = np.asarray(wavelength_air_aa, dtype=float)
    eta = np.zeros(wavelength.shape)
    if teff_k >= TEFF_MAX_K or wavelength.size < 2:
        return eta
    rest = wavelength / doppler_factor
    inside = np.zeros(wavelength.shape, dtype=bool)
    for lo, hi in (GAPS_AA if gaps_only else ((rest[0], rest[-1]),)):
        inside |= (rest >= lo) & (rest <= hi)
    if not inside.any():
        return eta
    first, last = np.flatnonzero(inside)[[0, -1]]
    part = slice(max(first - 1, 0), last + 2)
    rest = rest[part]
    edges_aa = np.concatenate([[1.5 * rest[0] - 0.5 * rest[1]], 0.5 * (rest[1:] + rest[:-1]),
                               [1.5 * rest[-1] - 0.5 * rest[-2]]])
    edges_cm = 1e8 / air_to_vacuum(edges_aa)  # decreasing
    theta, slope, logg_dex = tio_terms(teff_k, logg_cgs)
    strength = log_strength(teff_k) if log_strength_dex is None else log_strength_dex
    taper = min(1.0, (TEFF_MAX_K - teff_k) / (TEFF_MAX_K - TAPER_START_K))
    scale = taper * 10.0 ** (strength + 2 * mh_dex + logg_dex)
    area = np.zeros(rest.size)
    for system, v_up, v_low, _, relative in bands:
        f_el, b_up, b_low, lam_up, lam_low, q00 = SYSTEMS[system]
        heads_cm = HEAD_WAVENUMBERS[system, v_up, v_low]
        j_max = np.sqrt(-np.log(BOLTZMANN_CUT) / (b_low * EV_PER_CM * theta * np.log(10)))
        j = np.arange(J_STEP, j_max, J_STEP)
        branches = branch_wavenumbers(b_up, b_low, j)
        if min(heads_cm) - branches[2].max() + branches[0].min() > edges_cm[0] or max(heads_cm) < edges_cm[-1]:
            continue  # the band (head to the end of its P branch) misses the grid
        hl = honl_london(lam_up - lam_low, lam_low, j)
        e_low_ev = (X_VIBRATIONAL_CM[v_low] + b_low * j * (j + 1)) * EV_PER_CM
        gf = scale * f_el * q00 * relative / len(heads_cm)
        for head_cm in heads_cm:
            origin = head_cm - branches[2].max()
            centre_aa = 1e8 / origin
            weight = gf * 10.0 ** (-theta * e_low_ev + slope * np.log10(centre_aa / LAMBDA_REFERENCE_AA)) * J_STEP
            for nu, strength_hl in zip(branches, hl):
                _deposit(area, edges_cm, origin + nu, weight * strength_hl)
    pixel_kms = np.abs(np.diff(edges_cm)) / (1e8 / air_to_vacuum(rest)) * C_KMS
    temperature = photosphere_state(teff_k, logg_cgs)[0]
    sigma_kms = np.sqrt(K_BOLTZMANN_CGS * temperature / (TIO_MASS_AMU * AMU_G) / 1e10 + 0.5 * REFERENCE_VMIC_KMS**2)
    eta[part] = gaussian_filter1d(area, sigma_kms / np.median(pixel_kms)) / pixel_kms
    return np.where(inside, eta, 0.0)


def _deposit(area, edges_cm, nu_cm, line_area):
    """Add the line areas of one branch (sampled on a fine J grid) to the pixels between ``edges_cm`` (decreasing),
    through the cumulative area on each monotonic part of nu(J)."""
    turn = int(np.argmax(nu_cm))
    for part in (slice(0, turn + 1), slice(turn, None)):
        nu, cumulative = nu_cm[part], np.concatenate([[0.0], np.cumsum(line_area[part])])[:-1]
        if nu.size < 2:
            continue
        order = np.argsort(nu)
        lo, hi = np.searchsorted(-edges_cm, [-nu[order[-1]], -nu[order[0]]])
        lo, hi = max(lo - 1, 0), min(hi + 1, edges_cm.size)
        if hi - lo < 2:
            continue
        at_edges = np.interp(edges_cm[lo:hi], nu[order], cumulative[order])
        area[lo:hi - 1] += np.abs(np.diff(at_edges))


def tio5_index(teff_k, logg_cgs, mh_dex=0.0, log_strength_dex=None, step_kms=0.5):
    """TiO5 of the band-only spectrum ``1 - A_c eta / (1 + eta)`` over 7000-7150 A (all ``BANDS``, no gap mask)."""
    wave = 7000.0 * np.exp(np.arange(int(np.log(7150.0 / 7000.0) * C_KMS / step_kms)) * step_kms / C_KMS)
    eta = band_opacity(wave, teff_k, logg_cgs, mh_dex, gaps_only=False, log_strength_dex=log_strength_dex)
    flux = 1.0 - maximum_depth(wave, teff_k) * eta / (1.0 + eta)
    (num_lo, num_hi), (den_lo, den_hi) = TIO5_WINDOWS_AA
    return flux[(wave >= num_lo) & (wave <= num_hi)].mean() / flux[(wave >= den_lo) & (wave <= den_hi)].mean()
