"""The parameters a scenario can draw: canonical units, valid ranges, level (per target or per epoch), defaults.

Every population column is named after ``docs/contracts.md``. A value written in a scenario file
as a bare number is in the canonical unit below; a string such as ``"5800 K"`` or ``"0.8 arcsec"`` is
parsed by ``parse_quantity`` with astropy.units and converted to it (``"5000 A"`` means Angstrom for
wavelengths, never Ampere).

``valid`` is the physically possible range, enforced for every scenario. ``builtin`` is the range of
the built-in stellar synthesis (``simharps.stellar.synthesis.PARAMETER_RANGES``), enforced when
``stellar_model: builtin``. Unbounded distributions (normal, lognormal) must keep their
1e-9 and 1 - 1e-9 quantiles inside these ranges (use ``truncated`` otherwise), and every drawn value
is checked again after sampling.

Defaults (used for a parameter the scenario does not mention) are listed in ``DEFAULTS`` in the same
YAML form a scenario uses; ``docs/scenarios.md`` gives their sources.
"""

import re
from dataclasses import dataclass

import astropy.units as u

from simharps.stellar.synthesis import PARAMETER_RANGES

TARGET = "target"
EPOCH = "epoch"

INSTRUMENT_MODES = ("HAM", "EGGS")
FIBRE_ERAS = ("pre2015", "post2015", "auto")

DEX_CGS = u.dex(u.cm / u.s**2)


@dataclass(frozen=True)
class ParameterSpec:
    """One drawable parameter: ``unit`` is None for strings, ``u.dimensionless_unscaled`` for pure numbers."""

    name: str
    unit: object
    level: str
    valid: tuple
    description: str
    choices: tuple = ()
    optional: bool = False
    builtin: tuple = None

    @property
    def is_string(self):
        return self.unit is None

    @property
    def unit_text(self):
        if self.unit is None:
            return "string"
        return "dimensionless" if self.unit == u.dimensionless_unscaled else self.unit.to_string()


def _spec(name, unit, level, valid, description, **kwargs):
    return ParameterSpec(name, unit, level, valid, description, builtin=PARAMETER_RANGES.get(name), **kwargs)


_ONE = u.dimensionless_unscaled
_LIST = [
    _spec("teff_k", u.K, TARGET, (2300.0, 12000.0), "effective temperature"),
    _spec("logg_cgs", DEX_CGS, TARGET, (-0.5, 6.0), "surface gravity log10(g / cm s^-2)"),
    _spec("mh_dex", u.dex, TARGET, (-4.0, 1.0), "metallicity [M/H]"),
    _spec("vsini_kms", u.km / u.s, TARGET, (0.0, 500.0), "projected rotation velocity"),
    _spec("rv_kms", u.km / u.s, TARGET, (-1000.0, 1000.0), "barycentric radial velocity (relativistic Doppler)"),
    _spec("vmag", u.mag, TARGET, (-2.0, 25.0), "apparent Johnson V magnitude"),
    _spec("ebv_mag", u.mag, TARGET, (0.0, 10.0), "colour excess E(B-V)"),
    _spec("rv_dust", _ONE, TARGET, (2.3, 5.6), "R_V of the extinction law (G23 validity)"),
    _spec("ra_deg", u.deg, TARGET, (0.0, 360.0), "right ascension, ICRS"),
    _spec("dec_deg", u.deg, TARGET, (-90.0, 90.0), "declination, ICRS"),
    _spec("distance_pc", u.pc, TARGET, (1.0, 1.0e5), "distance (for the reddening and distance-modulus relations)",
          optional=True),
    _spec("vmic_kms", u.km / u.s, TARGET, (0.0, 10.0), "microturbulence", optional=True),
    _spec("vmac_kms", u.km / u.s, TARGET, (0.0, 50.0), "macroturbulence", optional=True),
    _spec("ism_rv_kms", u.km / u.s, TARGET, (-500.0, 500.0), "interstellar cloud velocity (barycentric)",
          optional=True),
    _spec("ism_b_kms", u.km / u.s, TARGET, (0.1, 100.0), "interstellar Na D Doppler parameter", optional=True),
    _spec("logn_caii_cm2", _ONE, TARGET, (0.0, 16.0), "log10 Ca II column density / cm^-2", optional=True),
    _spec("airmass", _ONE, EPOCH, (1.0, 10.0), "airmass at mid-exposure (derived from the sky position unless given)"),
    _spec("pwv_mm", u.mm, EPOCH, (0.0, 200.0), "precipitable water vapour"),
    _spec("seeing_arcsec", u.arcsec, EPOCH, (0.05, 10.0), "seeing FWHM at 5000 A and zenith"),
    _spec("fibre_offset_arcsec", u.arcsec, EPOCH, (0.0, 10.0), "fibre centring offset"),
    _spec("fibre_offset_angle_deg", u.deg, EPOCH, (0.0, 360.0), "position angle of the centring offset"),
    _spec("exptime_s", u.s, EPOCH, (0.1, 86400.0), "exposure time"),
    _spec("instrument_mode", None, EPOCH, (), "HARPS mode", choices=INSTRUMENT_MODES),
    _spec("fibre_era", None, EPOCH, (), "fibre link before/after the 2015 upgrade ('auto': from the date)",
          choices=FIBRE_ERAS),
    _spec("adr_residual_fraction", _ONE, EPOCH, (0.0, 1.0), "fraction of the ADR the ADC leaves", optional=True),
]
PARAMETERS = {spec.name: spec for spec in _LIST}
"""Drawable parameters by name, in a fixed order (the order fixes each one's random-number slots: append only)."""

SLOTS_PER_PARAMETER = 4
"""Uniform variates reserved per parameter and row: one for the draw, three for relation scatter/velocity."""

SLOT = {name: index * SLOTS_PER_PARAMETER for index, name in enumerate(PARAMETERS)}
N_SLOTS = SLOTS_PER_PARAMETER * len(PARAMETERS)

DERIVED = {
    "mjd_utc": (u.d, "exposure start, UTC MJD (drawn from night-time visibility)"),
    "berv_kms": (u.km / u.s, "barycentric correction at mid-exposure, classical DRS convention"),
    "hour_angle_h": (u.hourangle, "hour angle at mid-exposure (apparent, of date)"),
    "parallactic_angle_deg": (u.deg, "parallactic angle at mid-exposure"),
    "sun_altitude_deg": (u.deg, "geometric Sun altitude at mid-exposure"),
}
"""Columns computed, never drawn (``airmass`` joins them when the scenario does not draw it)."""

DEFAULTS = {
    "teff_k": {"uniform": ["4000 K", "6500 K"]},
    "logg_cgs": {"main_sequence": {"scatter": "0.05 dex"}},
    "mh_dex": {"truncated": {"normal": {"mean": -0.14, "sigma": 0.19}, "low": -1.0, "high": 0.5}},
    "vsini_kms": {"lognormal": {"median": "2.5 km/s", "sigma": 0.5}},
    "rv_kms": {"galactic_kinematics": {}},
    "vmag": {"uniform": ["6 mag", "10 mag"]},
    "ebv_mag": {"uniform": ["0 mag", "0.05 mag"]},
    "rv_dust": 3.1,
    "ra_deg": {"uniform": ["0 deg", "360 deg"]},
    "dec_deg": {"isotropic": ["-89 deg", "30 deg"]},
    "pwv_mm": {"lognormal": {"median": "3.9 mm", "sigma": 0.5}},
    "seeing_arcsec": {"lognormal": {"median": "0.9 arcsec", "sigma": 0.3}},
    "fibre_offset_arcsec": {"uniform": ["0 arcsec", "0.2 arcsec"]},
    "fibre_offset_angle_deg": {"uniform": ["0 deg", "360 deg"]},
    "exptime_s": "900 s",
    "instrument_mode": "HAM",
    "fibre_era": "pre2015",
}
"""Distribution of each non-optional parameter a scenario leaves out (``airmass``: derived from visibility)."""

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def parse_quantity(value, unit, what):
    """Float in ``unit`` from a number (already canonical) or a string "NUMBER UNIT"; ValueError says why not.

    ``what`` names the quantity in the message. Function units: ``dex`` and ``mag`` values must carry
    that unit (or none); ``logg`` accepts ``dex`` or ``dex(cm / s2)``. ``A`` after a number means Angstrom
    when ``unit`` is a length.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number or a string like '1.5 {_unit_hint(unit)}', got {value!r}")
    if not isinstance(value, str):
        return float(value)
    match = _NUMBER.match(value)
    if not match:
        raise ValueError(f"{what}: cannot read {value!r} as 'NUMBER UNIT' (e.g. '1.5 {_unit_hint(unit)}')")
    number, unit_text = float(match.group(1)), match.group(2)
    if not unit_text:
        return number
    if unit_text in ("A", "Angstrom", "angstrom") and unit.physical_type == "length":
        unit_text = "Angstrom"
    try:
        given = u.Unit(unit_text, parse_strict="raise")
    except ValueError:
        raise ValueError(f"{what}: unknown unit {unit_text!r} in {value!r}; write it in {_unit_hint(unit)}") from None
    if isinstance(unit, u.FunctionUnitBase) or isinstance(given, u.FunctionUnitBase) or unit in (u.dex, u.mag):
        accepted = {unit, u.dex} if unit == DEX_CGS else {unit}
        if given in accepted:
            return number
        raise ValueError(f"{what}: unit {given} of {value!r} is not {_unit_hint(unit)}")
    try:
        return float((number * given).to_value(unit))
    except u.UnitConversionError:
        raise ValueError(f"{what}: {value!r} has unit {given}, which does not convert to {_unit_hint(unit)}") from None


def _unit_hint(unit):
    if unit == u.dimensionless_unscaled:
        return "no unit (a plain number)"
    return unit.to_string()

