"""Interstellar stage: dust extinction and interstellar Na I D / Ca II H&K absorption.

Dust extinction
---------------
The star's flux is multiplied by ::

    T(lambda) = 10 ** (-0.4 * A(lambda)),   A(lambda) = (A(lambda) / A(V)) * R_V * E(B-V)

with ``A(lambda)/A(V)`` from an R_V-dependent average Milky Way law of
``dust_extinction``. Parameters: ``ebv_mag`` (E(B-V), mag, >= 0) and ``rv_dust``
(R_V = A(V)/E(B-V)). Default law: **G23** (Gordon et al. 2023, ApJ 950, 86), the
current R_V-dependent average in ``dust_extinction``; it is built from spectroscopic
(not only photometric) extinction curves, so it is smooth and well sampled across
the whole HARPS range (valid 912 A - 32 um, R_V 2.3-5.6). F99 (Fitzpatrick 1999,
PASP 111, 63; valid 1000 A - 3.3 um, R_V 2-6), CCM89, O94 and F19 can be chosen
with ``law=``. Both G23 and F99 cover 3700-7000 A with room to spare.

Frame and air/vacuum: extinction is a property of the source's light, so it is
applied in the barycentric frame (it is smooth, so frame shifts of < 1e-3 in
wavelength do not matter). The laws are functions of wavelength (vacuum by
construction of their spectroscopic data); input air wavelengths are converted
to vacuum with ``simharps.grids.air_to_vacuum`` before evaluation. The
conversion is a 2.8e-4 relative shift; skipping it would change A(lambda) by
~4e-4 of itself (d ln A / d ln lambda ~ -1.5), i.e. 1e-3 mag at A_V = 3: negligible
for a smooth curve, but free to get right.

Interstellar lines
------------------
Optional optical depth of interstellar Na I D2/D1 and Ca II K/H at a cloud
velocity ``ism_rv_kms`` (barycentric, relativistic Doppler like ``rv_kms``),
one absorbing component with a Voigt profile ::

    tau(v) = (pi e^2 / m_e c) f N lambda_0 * V(v - v_ism; sigma = b / sqrt(2), gamma = Gamma lambda_0 / 4 pi)

(``V`` is the area-normalised Voigt profile in velocity; pi e^2/m_e c = 0.026540 cm^2 s^-1).
Line data: vacuum wavelengths, oscillator strengths and damping constants from
Morton 2003 (ApJS 149, 205); air wavelengths 5889.951/5895.924 A (Na D2/D1) and
3933.663/3968.468 A (Ca II K/H).

* Na I D is tied to E(B-V) by Poznanski, Prochaska & Bloom 2012 (MNRAS 426, 1465,
  eq. 9): ``log10 E(B-V) = 1.17 EW(D1+D2)[A] - 1.85`` (scatter 0.08 dex). The
  column density N(Na I) is solved so that the summed equivalent width of the
  doublet matches it through the curve of growth of one component of Doppler
  parameter ``ism_b_kms``. Default b = 10 km/s: an effective width for the blend of
  the ~3 clouds a typical sight line crosses (Poznanski et al. 2012), chosen so the
  D2/D1 ratio follows their per-line relations (eqs. 7, 8) to ~10 % over
  0.03 <= E(B-V) <= 0.5. Below E(B-V) = 10**-1.85 = 0.0141 the relation gives no
  absorption, and none is added.
* Ca II H&K correlate only weakly with E(B-V) (Welty, Morton & Hobbs 1996, ApJS 106,
  533: Ca II has a ~1 kpc scale height and variable depletion), so no published
  relation ties them to the dust with useful precision; their column is a separate
  parameter ``logn_caii_cm2`` (log10 cm^-2; Galactic sight lines span ~11.5-13).
  Omit it (None) for no Ca II lines.

Approximations: a single velocity component (real sight lines show several narrow
components); no hyperfine structure (Na D hfs ~1 km/s is below b); the optical
depth must be sampled finely enough for b (the 0.15 km/s working grid is ample),
and exp(-tau) multiplied at high resolution before the LSF.

Example
-------
>>> import numpy as np
>>> from simharps.ism import extinction_transmission, interstellar_optical_depth
>>> wave_air_aa = np.linspace(3781.0, 6913.0, 5000)
>>> t_dust = extinction_transmission(wave_air_aa, ebv_mag=0.1, rv_dust=3.1)
>>> tau = interstellar_optical_depth(wave_air_aa, ebv_mag=0.1, ism_rv_kms=-5.0)
>>> flux_ism = t_dust * np.exp(-tau)
"""

from dataclasses import dataclass
from functools import lru_cache

import astropy.units as u
import numpy as np
from dust_extinction.parameter_averages import CCM89, F19, F99, G23, O94
from scipy.optimize import brentq
from scipy.special import voigt_profile

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import air_to_vacuum, vacuum_to_air
from simharps.kinematics import doppler_factor

EXTINCTION_LAWS = {"G23": G23, "F99": F99, "CCM89": CCM89, "O94": O94, "F19": F19}
"""Supported R_V-dependent Milky Way extinction laws (``dust_extinction`` classes)."""

DEFAULT_LAW = "G23"

PI_E2_OVER_MC_CGS = 0.026540
"""pi e^2 / (m_e c) in cm^2 s^-1: integrated cross-section per unit oscillator strength (per Hz)."""

DEFAULT_ISM_B_KMS = 10.0
"""Default effective Doppler parameter of the interstellar absorber, km/s (see module docstring)."""


def check_extinction_parameters(ebv_mag, rv_dust, law):
    """ParameterError for an unknown law, E(B-V) < 0 or R_V outside the law's range."""
    if law not in EXTINCTION_LAWS:
        raise ParameterError(f"law must be one of {sorted(EXTINCTION_LAWS)}, got {law!r}")
    if not np.isfinite(ebv_mag) or ebv_mag < 0:
        raise ParameterError(f"ebv_mag (E(B-V)) must be finite and >= 0 mag, got {ebv_mag}")
    rv_min, rv_max = EXTINCTION_LAWS[law].Rv_range
    if not rv_min <= rv_dust <= rv_max:
        raise ParameterError(f"rv_dust (R_V) must lie in [{rv_min}, {rv_max}] for law {law}, got {rv_dust}")


@lru_cache(maxsize=64)
def _extinction_model(law, rv_dust):
    """The dust_extinction model of ``law`` at R_V (cached: building an astropy model costs milliseconds)."""
    return EXTINCTION_LAWS[law](Rv=rv_dust)


def extinction_transmission(wavelength_air_aa, ebv_mag, rv_dust=3.1, law=DEFAULT_LAW):
    """Dust transmission 10**(-0.4 A(lambda)) at air wavelengths (A) for E(B-V) ``ebv_mag`` and R_V ``rv_dust``.

    Raises ``ParameterError`` for an unknown law, E(B-V) < 0, R_V outside the law's
    range, or wavelengths outside the law's range.
    """
    check_extinction_parameters(ebv_mag, rv_dust, law)
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    if ebv_mag == 0:
        return np.ones_like(wavelength_air_aa)
    model = _extinction_model(law, float(rv_dust))
    wavenumber_inv_um = 1.0e4 / air_to_vacuum(wavelength_air_aa)
    x_min, x_max = model.x_range
    if wavenumber_inv_um.size and not (x_min <= wavenumber_inv_um.min() and wavenumber_inv_um.max() <= x_max):
        raise ParameterError(
            f"wavelength_air_aa must lie within {1e4 / x_max:.0f}-{1e4 / x_min:.0f} A for law {law}, "
            f"got {wavelength_air_aa.min():.1f}-{wavelength_air_aa.max():.1f} A"
        )
    a_lambda_over_av = model(wavenumber_inv_um / u.micron)
    return 10.0 ** (-0.4 * a_lambda_over_av * rv_dust * ebv_mag)


@dataclass(frozen=True)
class InterstellarLine:
    """One resonance line: vacuum wavelength (A), oscillator strength, damping constant Gamma (s^-1)."""

    name: str
    wavelength_vac_aa: float
    oscillator_strength: float
    gamma_per_s: float

    @property
    def wavelength_air_aa(self):
        """Rest air wavelength, A."""
        return float(vacuum_to_air(self.wavelength_vac_aa))

    def lorentz_hwhm_kms(self):
        """Half width at half maximum of the natural (Lorentzian) profile, km/s."""
        return self.gamma_per_s * self.wavelength_vac_aa * 1e-8 / (4.0 * np.pi) / 1e5

    def optical_depth(self, velocity_kms, logn_cm2, b_kms):
        """Optical depth at velocity offsets (km/s) from line centre for column 10**logn_cm2 cm^-2."""
        profile_per_kms = voigt_profile(np.asarray(velocity_kms, dtype=float), b_kms / np.sqrt(2.0),
                                        self.lorentz_hwhm_kms())
        strength_kms = PI_E2_OVER_MC_CGS * self.oscillator_strength * 10.0**logn_cm2 * self.wavelength_vac_aa * 1e-13
        return strength_kms * profile_per_kms


NA_D2 = InterstellarLine("Na I D2", 5891.5833, 0.6408, 6.16e7)
NA_D1 = InterstellarLine("Na I D1", 5897.5581, 0.3201, 6.14e7)
CA_K = InterstellarLine("Ca II K", 3934.777, 0.6267, 1.47e8)
CA_H = InterstellarLine("Ca II H", 3969.591, 0.3116, 1.44e8)
"""Morton 2003 (ApJS 149, 205) line data."""

LINE_REACH_KMS = 600.0
"""Interstellar line optical depths are evaluated (and equivalent widths integrated) within this velocity of each
line's centre."""

_COG_T = np.linspace(-np.arcsinh(LINE_REACH_KMS), np.arcsinh(LINE_REACH_KMS), 2001)
_COG_VELOCITY_KMS = np.sinh(_COG_T)
_COG_WEIGHT_KMS = np.cosh(_COG_T) * (_COG_T[1] - _COG_T[0])
"""Curve-of-growth quadrature: v = sinh(t) km/s, uniform in t over +-600 km/s (0.007 km/s steps at line
centre, 4 km/s in the far damping wings); trapezoid in t, i.e. weights dv/dt dt."""


def equivalent_width_aa(line, logn_cm2, b_kms):
    """Rest equivalent width (A) of one component: integral of 1 - exp(-tau) over +-600 km/s."""
    absorbed = -np.expm1(-line.optical_depth(_COG_VELOCITY_KMS, logn_cm2, b_kms))
    return float(np.dot(absorbed, _COG_WEIGHT_KMS) * line.wavelength_vac_aa / C_KMS)


class Poznanski2012:
    """Na I D equivalent width vs reddening: log10 E(B-V) = 1.17 EW(D1+D2) - 1.85 (MNRAS 426, 1465, eq. 9)."""

    SLOPE_PER_AA = 1.17
    INTERCEPT = -1.85
    SCATTER_DEX = 0.08

    @classmethod
    def ew_d1_d2_aa(cls, ebv_mag):
        """Summed equivalent width of D1 + D2 (A) for E(B-V); zero where the relation goes negative."""
        if ebv_mag <= 0:
            return 0.0
        return max(0.0, (np.log10(ebv_mag) - cls.INTERCEPT) / cls.SLOPE_PER_AA)


def nad_column_density(ebv_mag, ism_b_kms=DEFAULT_ISM_B_KMS):
    """log10 N(Na I) (cm^-2) whose D1 + D2 equivalent width matches Poznanski et al. 2012 at ``ebv_mag``.

    Returns None when the relation predicts no absorption (E(B-V) <= 0.0141). Scalars; the solution is cached (repeat
    observations of one star share it).
    """
    return _nad_column_density(float(ebv_mag), float(ism_b_kms))


@lru_cache(maxsize=4096)
def _nad_column_density(ebv_mag, ism_b_kms):
    if ism_b_kms <= 0:
        raise ParameterError(f"ism_b_kms must be > 0 km/s, got {ism_b_kms}")
    target_aa = Poznanski2012.ew_d1_d2_aa(ebv_mag)
    if target_aa <= 0:
        return None

    def mismatch(logn_cm2):
        doublet_aa = equivalent_width_aa(NA_D2, logn_cm2, ism_b_kms) + equivalent_width_aa(NA_D1, logn_cm2, ism_b_kms)
        return doublet_aa - target_aa

    return brentq(mismatch, 6.0, 23.0, xtol=1e-6)


def interstellar_optical_depth(wavelength_air_aa, ebv_mag, ism_rv_kms=0.0, ism_b_kms=DEFAULT_ISM_B_KMS,
                               logn_caii_cm2=None):
    """Optical depth of interstellar Na I D (tied to ``ebv_mag``) and Ca II H&K (column ``logn_caii_cm2``).

    ``wavelength_air_aa``: barycentric air wavelengths (A), sampled finely compared
    with ``ism_b_kms``; ``ism_rv_kms``: barycentric cloud velocity (relativistic
    Doppler). Multiply the spectrum by ``exp(-tau)`` before the LSF.
    """
    if not np.isfinite(ebv_mag) or ebv_mag < 0:
        raise ParameterError(f"ebv_mag (E(B-V)) must be finite and >= 0 mag, got {ebv_mag}")
    if not abs(ism_rv_kms) < C_KMS:
        raise ParameterError(f"ism_rv_kms must satisfy |v| < c, got {ism_rv_kms}")
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    components = []
    logn_nad_cm2 = nad_column_density(ebv_mag, ism_b_kms)
    if logn_nad_cm2 is not None:
        components += [(NA_D2, logn_nad_cm2), (NA_D1, logn_nad_cm2)]
    if logn_caii_cm2 is not None:
        if not 0 <= logn_caii_cm2 <= 16:
            raise ParameterError(f"logn_caii_cm2 must lie in [0, 16] (log10 cm^-2), got {logn_caii_cm2}")
        components += [(CA_K, logn_caii_cm2), (CA_H, logn_caii_cm2)]
    doppler = doppler_factor(ism_rv_kms)
    tau = np.zeros_like(wavelength_air_aa)
    for line, logn_cm2 in components:
        centre_air_aa = line.wavelength_air_aa * doppler
        velocity_kms = C_KMS * np.log(wavelength_air_aa / centre_air_aa)
        near = np.abs(velocity_kms) < LINE_REACH_KMS
        tau[near] += line.optical_depth(velocity_kms[near], logn_cm2, ism_b_kms)
    return tau
