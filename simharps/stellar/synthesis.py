"""Built-in offline stellar synthesis: line table + Balmer lines + blanketed continuum -> StellarSpectrum.

Equation
--------
On a grid uniform in ln(lambda_air) with step ``WORKING_STEP_KMS`` (0.15 km/s)::

    F(lambda) = pi B_lambda(T_b; lambda / D)  *  K_rot+mac  (*)  [1 - A_c(lambda / D) eta / (1 + eta)],
    eta = eta_lines(lambda) + eta_Balmer(lambda)

eta from ``simharps.stellar.lines`` (Voigt profiles of the VALD-derived depth table and of the weak-line
forest and molecular lines of ``stellar_forest.npz``; opacities Teff-interpolated from the dwarf
sequence, [M/H]-, logg- (Saha / dissociation model) and vmic-scaled, see ``simharps.stellar.linelist``)
and ``simharps.stellar.balmer`` (Stark wings); the Milne-Eddington
form ``1 - A_c eta / (1 + eta)`` (Minnaert 1935) is the curve of growth and the blending rule, with
the maximum central depth ``A_c = 1 - B_lambda(0.66 Teff) / B_lambda(Teff)`` of
``simharps.stellar.linelist.maximum_depth`` (strong-line cores keep a residual flux of ~0.08 at
5200 A in a G2 dwarf, fitted to the real HD 41248 spectrum). K is the rotation (Gray, limb
darkened) and macroturbulence (radial-tangential by default) kernel of ``simharps.broadening``;
T_b the backwarmed continuum temperature of ``simharps.stellar.continuum``. The star's RV enters
through the relativistic Doppler factor ``D = sqrt((1 + v/c) / (1 - v/c))`` applied to every line
centre (exact, no resampling), so the output is in the barycentric frame when ``rv_kms`` is the
barycentric RV.

Units and frames: air wavelengths in A on the lattice ``lambda_i = GRID_START_AA exp(i step / c)``
(windows are sub-ranges of the same lattice, so spectra of different windows and stars align);
flux in erg s^-1 cm^-2 A^-1 at the stellar surface (float32).

Parameter ranges: teff_k 3000-7250 K (the F0..M5 tables), logg_cgs 3.0-5.5 (the tables are for
dwarfs; line strengths and damping are scaled from the dwarf sequence), mh_dex -2.5..+1.0, vmic_kms 0-5,
vmac_kms 0-30 (default: Valenti & Fischer 2005 eq. 1, ``3.98 + (Teff - 5770) / 650`` km/s, at least
0.5), vsini_kms 0-300, |rv_kms| <= 1000.

Limits: lines that the opacity model makes shallower than 0.005 for every type are missing, weak lines
carry Kurucz log gf values (partly predicted; 670 isolated lines carry astrophysical log gf corrections fitted on
HD 41248, ``simharps/data/astrophysical_gf.md``), one line-forming layer, one core-depth law for all lines
(no chromospheric emission cores; Na D too shallow by ~0.06 in flux). M dwarfs: TiO, CaH, MgH, ZrO lines
make the band pseudo-continua where line data exist (TiO in 4676-4950, 5600-5900 and 6400-6800 A, with a
strength scale fitted to the TiO band heads of Gl 581); between those windows (4950-5625 and 5900-6425 A:
the 5167, 5448, 6159 A bands) the TiO alpha, gamma-prime and gamma bands are a smooth JOLA band opacity
calibrated on published TiO5-Teff relations (``simharps.stellar.tio_bands``, no line structure, Teff < 4500 K
only); below 4676 A and the CaH 6382 A band have only the depth table's deepest lines, so they are too weak;
against real M3 dwarfs (Gl 581, Gl 273) the continuum-normalised correlation is 0.6-0.75 per 100 A
(0.9-0.97 for G and K dwarfs; ``benchmarks/bench_stellar_fidelity.py``). See
``simharps/data/stellar_lines.md`` and ``simharps/data/stellar_forest.md``.

Example
-------
>>> from simharps.stellar.synthesis import synthesize
>>> spectrum = synthesize(5770, 4.44, 0.0, vsini_kms=2.0, rv_kms=10.0, window=(5000.0, 5100.0))
>>> bool(0.05 < spectrum.normalised.min() < 0.3)
True
"""

import numpy as np

from simharps.broadening import DEFAULT_LIMB_DARKENING, broaden, broadening_margin_kms
from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import WORKING_STEP_KMS
from simharps.kinematics import doppler_factor
from simharps.stellar.balmer import balmer_opacity
from simharps.stellar.continuum import (
    BIN_WIDTH_AA,
    backwarmed_temperature,
    blanketing_coefficient,
    equivalent_widths_kms,
    line_width_aa,
    planck_flux,
)
from simharps.stellar.linelist import TEFF_RANGE_K, check_teff, maximum_depth
from simharps.stellar.lines import line_opacity, line_parameters
from simharps.stellar.spectrum import StellarSpectrum
from simharps.stellar.tio_bands import band_opacity

GRID_START_AA = 3770.0
"""First wavelength (air, A) of the synthesis lattice."""
FULL_RANGE_AA = (3770.0, 6930.0)
"""Default synthesis range (air, A): the HARPS 1D range with margins for BERV and RV shifts."""
ALLOWED_RANGE_AA = (3700.0, 7000.0)
"""Span covered by the line table (air, A); windows must lie inside it."""

PARAMETER_RANGES = {
    "teff_k": TEFF_RANGE_K,
    "logg_cgs": (3.0, 5.5),
    "mh_dex": (-2.5, 1.0),
    "vmic_kms": (0.0, 5.0),
    "vmac_kms": (0.0, 30.0),
    "vsini_kms": (0.0, 300.0),
    "rv_kms": (-1000.0, 1000.0),
}
DEFAULT_VMIC_KMS = 1.0


def default_vmac_kms(teff_k):
    """Radial-tangential macroturbulence of dwarfs, Valenti & Fischer (2005) eq. 1, at least 0.5 km/s."""
    return max(0.5, 3.98 + (teff_k - 5770.0) / 650.0)


def check_parameters(**values):
    """Raise ParameterError naming the first parameter outside ``PARAMETER_RANGES``."""
    for name, value in values.items():
        if name == "teff_k":
            check_teff(value)
            continue
        lo, hi = PARAMETER_RANGES[name]
        if not np.isfinite(value) or not lo <= value <= hi:
            raise ParameterError(f"{name}={value} is outside the built-in synthesis range [{lo}, {hi}]")


def lattice_indices(start_aa, stop_aa, step_kms=WORKING_STEP_KMS):
    """Integer lattice indices (first, last) covering [start_aa, stop_aa] on the synthesis lattice."""
    dln = step_kms / C_KMS
    return int(np.floor(np.log(start_aa / GRID_START_AA) / dln)), int(np.ceil(np.log(stop_aa / GRID_START_AA) / dln))


def lattice_wavelengths(first, last, step_kms=WORKING_STEP_KMS):
    """Air wavelengths (A) of lattice indices first..last inclusive."""
    return GRID_START_AA * np.exp(np.arange(first, last + 1) * (step_kms / C_KMS))


def check_window(window):
    """Validated (start_aa, stop_aa) of a window (default: FULL_RANGE_AA)."""
    start, stop = FULL_RANGE_AA if window is None else (float(window[0]), float(window[1]))
    if not ALLOWED_RANGE_AA[0] <= start < stop <= ALLOWED_RANGE_AA[1]:
        raise ParameterError(
            f"window=({start}, {stop}) must satisfy {ALLOWED_RANGE_AA[0]} <= start < stop <= {ALLOWED_RANGE_AA[1]} A (air)"
        )
    return start, stop


def continuum_temperature(teff_k, logg_cgs, parameters, mh_dex=0.0):
    """Backwarmed continuum temperature T_b from the blanketing of all lines in ``parameters``, the Balmer lines and
    the TiO band opacity of ``simharps.stellar.tio_bands`` ([M/H] ``mh_dex``)."""
    edges = np.arange(FULL_RANGE_AA[0], FULL_RANGE_AA[1] + 1.0, BIN_WIDTH_AA)
    widths = line_width_aa(parameters.wavelength_air_aa, equivalent_widths_kms(
        parameters.eta0, parameters.sigma_kms, parameters.gamma_kms, parameters.max_depth))

    def continuous_eta(wavelength_aa):
        return balmer_opacity(wavelength_aa, teff_k, logg_cgs) + band_opacity(wavelength_aa, teff_k, logg_cgs, mh_dex)

    beta = blanketing_coefficient(edges, parameters.wavelength_air_aa, widths, continuous_eta,
                                  maximum_depth(0.5 * (edges[1:] + edges[:-1]), teff_k))
    return backwarmed_temperature(teff_k, edges, beta)


def normalised_lines(ln_wavelength_air, step_kms, teff_k, logg_cgs, parameters, doppler=1.0, mh_dex=0.0):
    """Unbroadened continuum-normalised flux ``1 - A_c eta / (1 + eta)`` on a ln-lambda grid (float64); eta: lines,
    Balmer lines, TiO bands where no TiO line data exist (``simharps.stellar.tio_bands``, [M/H] ``mh_dex``)."""
    wavelength = np.exp(ln_wavelength_air)
    eta = line_opacity(ln_wavelength_air, step_kms, parameters, doppler)
    eta += balmer_opacity(wavelength, teff_k, logg_cgs, doppler)
    eta += band_opacity(wavelength, teff_k, logg_cgs, mh_dex, doppler)
    return 1.0 - maximum_depth(wavelength / doppler, teff_k) * eta / (1.0 + eta)


def synthesize(teff_k, logg_cgs=4.44, mh_dex=0.0, vmic_kms=DEFAULT_VMIC_KMS, vmac_kms=None, vsini_kms=0.0,
               rv_kms=0.0, window=None, limb_darkening=DEFAULT_LIMB_DARKENING, macroturbulence="radial-tangential",
               step_kms=WORKING_STEP_KMS):
    """Synthesise one stellar spectrum; returns a ``StellarSpectrum`` (frame "barycentric", air, log-lambda).

    ``window=(start_aa, stop_aa)`` restricts the output to a sub-range of the lattice (air, A, after the
    RV shift); the default is ``FULL_RANGE_AA``.
    """
    vmac_kms = default_vmac_kms(teff_k) if vmac_kms is None else vmac_kms
    check_parameters(teff_k=teff_k, logg_cgs=logg_cgs, mh_dex=mh_dex, vmic_kms=vmic_kms, vmac_kms=vmac_kms,
                     vsini_kms=vsini_kms, rv_kms=rv_kms)
    start, stop = check_window(window)
    first, last = lattice_indices(start, stop, step_kms)
    margin = int(np.ceil(broadening_margin_kms(vsini_kms, vmac_kms) / step_kms))
    wave = lattice_wavelengths(first - margin, last + margin, step_kms)
    doppler = doppler_factor(rv_kms)
    parameters = line_parameters(teff_k, logg_cgs, mh_dex, vmic_kms)
    normalised = normalised_lines(np.log(wave), step_kms, teff_k, logg_cgs, parameters, doppler, mh_dex)
    normalised = broaden(normalised, step_kms, vsini_kms, vmac_kms, limb_darkening, macroturbulence)
    keep = slice(margin, len(wave) - margin)
    temperature_b = continuum_temperature(teff_k, logg_cgs, parameters, mh_dex)
    continuum = planck_flux(wave[keep] / doppler, temperature_b)
    params = dict(teff_k=teff_k, logg_cgs=logg_cgs, mh_dex=mh_dex, vmic_kms=vmic_kms, vmac_kms=vmac_kms,
                  vsini_kms=vsini_kms, rv_kms=rv_kms, limb_darkening=limb_darkening,
                  macroturbulence=macroturbulence, continuum_temperature_k=temperature_b, model="builtin")
    return StellarSpectrum(
        wavelength_air_aa=wave[keep],
        flux=(normalised[keep] * continuum).astype(np.float32),
        continuum=continuum.astype(np.float32),
        step_kms=step_kms,
        params=params,
        frame="barycentric",
    )
