"""The one parameter table: every name the forward model, the CLI, scenarios and datasets know.

Each ``Parameter`` gives the name (contract name, unit in the suffix), its astropy unit (None for strings), the valid
range (inclusive, in that unit), the default the forward model uses when a caller leaves it out, the level
(``target``: drawn once per star; ``epoch``: per observation; ``derived``: computed from others unless given;
``setting``: instrument / site configuration; ``record``: bookkeeping carried into the truth, never read by the
physics), and the real-header keyword that provides it for an archive file (``simharps.io.header_meta`` reads it).

Readers of this table:

* ``simharps.forward.resolve_parameters`` refuses unknown names (nearest valid name suggested), non-finite numbers and
  values outside ``valid``, then fills ``default`` (``check_parameters``);
* ``simharps spectrum NAME=VALUE`` parses values with units (``teff_k=5000 K``, ``pwv_mm=8 mm``) through
  ``parse_assignment`` and lists the table in ``--help`` (``help_table``);
* the scenario schema (``simharps.scenario.parameters``) takes units, levels and ranges of its drawable parameters
  from here;
* docs/contracts.md carries the table as ``markdown_table`` prints it (a test checks that it is current).

Units: a bare number is in the parameter's unit; ``"NUMBER UNIT"`` is converted with astropy.units (``A`` after a
number means Angstrom for a length); ``dex`` and ``mag`` quantities take their own unit or none.
"""

import difflib
import math
import re
from dataclasses import dataclass

import astropy.units as u

from simharps.detector import Detector
from simharps.errors import ParameterError
from simharps.extraction import BERV_LIMIT_KMS
from simharps.fibre import DEFAULT_ADR_RESIDUAL_FRACTION
from simharps.instrument import MODES
from simharps.ism import DEFAULT_ISM_B_KMS, DEFAULT_LAW, EXTINCTION_LAWS
from simharps.kinematics import MJD_RANGE
from simharps.sites import SITES
from simharps.stellar.synthesis import DEFAULT_VMIC_KMS, PARAMETER_RANGES

TARGET, EPOCH, DERIVED, SETTING, RECORD = "target", "epoch", "derived", "setting", "record"
LEVELS = (TARGET, EPOCH, DERIVED, SETTING, RECORD)

DEX_CGS = u.dex(u.cm / u.s**2)
ONE = u.dimensionless_unscaled
SIMULATED_FIBRE_ERAS = ("pre2015",)
"""Fibre eras the chain simulates: the order layout and blaze are those of the 2003 calibration (``fibre_era``
offers ``post2015`` and ``auto`` for real-data labels and future work)."""

REQUIRED = object()
"""Default marker of a parameter the caller must give (``teff_k``, ``vmag``, ``exptime_s``)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter: ``unit`` None for strings, ``valid`` (low, high) inclusive or () for strings and records."""

    name: str
    unit: object
    level: str
    valid: tuple
    default: object
    description: str
    header: str = None
    choices: tuple = ()
    integer: bool = False

    @property
    def is_string(self):
        return self.unit is None

    @property
    def required(self):
        return self.default is REQUIRED

    @property
    def builtin(self):
        """Range of the built-in stellar synthesis (``simharps.stellar.synthesis.PARAMETER_RANGES``), or None."""
        return PARAMETER_RANGES.get(self.name)

    @property
    def unit_text(self):
        if self.unit is None:
            return "string" if self.level != RECORD else "any"
        return "dimensionless" if self.unit == ONE else self.unit.to_string()

    @property
    def range_text(self):
        """``from -4 to 1 dex``, ``one of HAM, EGGS``, or '' (no constraint)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if not self.valid:
            return ""
        return f"from {format_value(self.valid[0])} to {format_value(self.valid[1])}" + (
            "" if self.unit == ONE else f" {self.unit_text}")


def format_value(value):
    """A number as short text: 2300.0 -> '2300', 0.05 -> '0.05', 1e5 -> '1e+05'."""
    return f"{value:g}"


def _p(name, unit, level, valid, default, description, **kwargs):
    return Parameter(name, unit, level, tuple(valid), default, description, **kwargs)


_TABLE = [
    _p("teff_k", u.K, TARGET, (2300.0, 12000.0), REQUIRED, "effective temperature"),
    _p("logg_cgs", DEX_CGS, TARGET, (-0.5, 6.0), 4.44, "surface gravity log10(g / cm s^-2)"),
    _p("mh_dex", u.dex, TARGET, (-4.0, 1.0), 0.0, "metallicity [M/H]"),
    _p("vmic_kms", u.km / u.s, TARGET, (0.0, 10.0), DEFAULT_VMIC_KMS,
       f"microturbulence (the templates are built at {DEFAULT_VMIC_KMS} km/s only)"),
    _p("vsini_kms", u.km / u.s, TARGET, (0.0, 500.0), 2.0, "projected rotation velocity"),
    _p("vmac_kms", u.km / u.s, TARGET, (0.0, 50.0), None,
       "radial-tangential macroturbulence (default: Valenti & Fischer 2005 relation of Teff)"),
    _p("rv_kms", u.km / u.s, TARGET, (-1000.0, 1000.0), 0.0, "barycentric radial velocity (relativistic Doppler)"),
    _p("vmag", u.mag, TARGET, (-2.0, 20.0), REQUIRED, "apparent Johnson V magnitude (observed, i.e. reddened)"),
    _p("ebv_mag", u.mag, TARGET, (0.0, 10.0), 0.0, "colour excess E(B-V)"),
    _p("rv_dust", ONE, TARGET, (2.3, 5.6), 3.1, "R_V of the extinction law (G23 validity)"),
    _p("extinction_law", None, TARGET, (), DEFAULT_LAW, "Milky Way extinction law (dust_extinction class)",
       choices=tuple(EXTINCTION_LAWS)),
    _p("ism_rv_kms", u.km / u.s, TARGET, (-500.0, 500.0), 0.0, "interstellar cloud velocity (barycentric)"),
    _p("ism_b_kms", u.km / u.s, TARGET, (0.1, 100.0), DEFAULT_ISM_B_KMS, "interstellar Na D Doppler parameter"),
    _p("logn_caii_cm2", ONE, TARGET, (0.0, 16.0), None,
       "log10 Ca II column density / cm^-2 (default: from E(B-V))"),
    _p("ra_deg", u.deg, TARGET, (0.0, 360.0), None, "right ascension, ICRS", header="RA"),
    _p("dec_deg", u.deg, TARGET, (-90.0, 90.0), None, "declination, ICRS", header="DEC"),
    _p("distance_pc", u.pc, TARGET, (1.0, 1.0e5), None,
       "distance (scenario reddening and distance-modulus relations; not read by the chain)"),
    _p("mjd_utc", u.d, EPOCH, MJD_RANGE, None, "exposure start, UTC MJD", header="MJD-OBS"),
    _p("exptime_s", u.s, EPOCH, (0.1, 86400.0), REQUIRED, "exposure time", header="EXPTIME"),
    _p("airmass", ONE, EPOCH, (1.0, 10.0), 1.2, "airmass at mid-exposure", header="ESO TEL AIRM START"),
    _p("pwv_mm", u.mm, EPOCH, (0.0, 200.0), SITES["lasilla"]["median_pwv_mm"],
       "precipitable water vapour (default: La Silla median)", header="ESO TEL AMBI IWV START"),
    _p("seeing_arcsec", u.arcsec, EPOCH, (0.05, 10.0), 1.0, "seeing FWHM at 5000 A and zenith",
       header="ESO TEL AMBI FWHM START"),
    _p("fibre_offset_arcsec", u.arcsec, EPOCH, (0.0, 10.0), 0.0, "fibre centring offset"),
    _p("fibre_offset_angle_deg", u.deg, EPOCH, (0.0, 360.0), 0.0, "position angle of the centring offset"),
    _p("adr_residual_fraction", ONE, EPOCH, (0.0, 1.0), DEFAULT_ADR_RESIDUAL_FRACTION,
       "fraction of the atmospheric dispersion the ADC leaves"),
    _p("instrument_mode", None, EPOCH, (), "HAM", "HARPS observing mode", choices=tuple(MODES)),
    _p("fibre_era", None, EPOCH, (), "pre2015",
       "fibre link before/after the 2015 upgrade (the chain simulates pre2015; scenarios also take 'auto')",
       choices=("pre2015", "post2015", "auto")),
    _p("berv_kms", u.km / u.s, DERIVED, (-BERV_LIMIT_KMS, BERV_LIMIT_KMS), None,
       "barycentric correction at mid-exposure, classical DRS convention (default: from ra, dec, mjd, exptime)",
       header="ESO DRS BERV"),
    _p("parallactic_angle_deg", u.deg, DERIVED, (-180.0, 360.0), 0.0, "parallactic angle at mid-exposure"),
    _p("hour_angle_h", u.hourangle, DERIVED, (-24.0, 24.0), None, "hour angle at mid-exposure (apparent, of date)"),
    _p("sun_altitude_deg", u.deg, DERIVED, (-90.0, 90.0), None, "geometric Sun altitude at mid-exposure"),
    _p("read_noise_e", u.electron, SETTING, (0.0, 1000.0), Detector.read_noise_e,
       "read noise per CCD pixel", header="ESO DRS CCD SIGDET"),
    _p("gain_e_per_adu", u.electron / u.adu, SETTING, (0.01, 1000.0), Detector.gain_e_per_adu, "CCD gain",
       header="ESO DRS CCD CONAD"),
    _p("site", None, SETTING, (), "lasilla", "observatory site (simharps.sites)", choices=tuple(SITES)),
    _p("instrument", None, SETTING, (), "HARPS", "spectrograph", choices=("HARPS",), header="INSTRUME"),
    _p("target_id", None, RECORD, (), None, "target name", header="OBJECT"),
    _p("target_index", None, RECORD, (), None, "target number in the population"),
    _p("epoch", None, RECORD, (), None, "observation number of the target"),
    _p("variant", None, RECORD, (), None, "design variant number (paired / factorial designs)"),
    _p("design_group", None, RECORD, (), None, "design group number"),
    _p("seed_key", None, RECORD, (), None, "spawn key of the spectrum's random seed"),
]

PARAMETERS = {parameter.name: parameter for parameter in _TABLE}
"""Every parameter by name, in table order."""

DEFAULTS = {p.name: p.default for p in _TABLE if p.level != RECORD and not p.required}
"""Forward-model defaults of the parameters a caller may leave out (None: derived or not applied)."""


def suggest(name, known):
    """`` (did you mean 'airmass'?)`` for the closest of ``known``, or ''."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_names(names, what="parameter"):
    """ParameterError naming every unknown name in ``names``, each with the nearest valid name."""
    unknown = [name for name in names if name not in PARAMETERS]
    if unknown:
        listed = "; ".join(f"{name!r}{suggest(name, PARAMETERS)}" for name in unknown)
        raise ParameterError(f"unknown {what}{'s' if len(unknown) > 1 else ''}: {listed}. Valid names: "
                             "`simharps spectrum --help` or docs/contracts.md")


def check_value(name, value):
    """ParameterError unless ``value`` is a valid value of parameter ``name`` (None always passes: not given)."""
    parameter = PARAMETERS[name]
    if value is None or parameter.level == RECORD:
        return
    if parameter.is_string:
        if value not in parameter.choices:
            raise ParameterError(f"{name} must be {parameter.range_text}, got {value!r}"
                                 + suggest(value, parameter.choices))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        unit = "" if parameter.unit == ONE else f" in {parameter.unit_text}"
        raise ParameterError(f"{name} must be a number{unit}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(f"{name} must be a finite number, got {number}")
    low, high = parameter.valid
    if not low <= number <= high:
        raise ParameterError(f"{name} = {format_value(number)} is out of range: it must be {parameter.range_text}")


def check_parameters(params):
    """Refuse unknown names and invalid values in the mapping ``params`` (ParameterError naming the first)."""
    check_names(params)
    for name, value in params.items():
        check_value(name, value)


_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?|nan)\s*(.*?)\s*$",
                     re.IGNORECASE)


def parse_quantity(value, unit, what):
    """Float in ``unit`` from a number (already in ``unit``) or a string "NUMBER UNIT"; ValueError says why not.

    ``what`` names the quantity in messages. Function units: ``dex`` and ``mag`` values must carry that unit (or
    none); ``logg`` accepts ``dex`` or ``dex(cm / s2)``. ``A`` after a number means Angstrom when ``unit`` is a length.
    Non-finite numbers are returned as such (the caller's range check refuses them with the parameter's range).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number or a string like '1.5 {unit_hint(unit)}', got {value!r}")
    if not isinstance(value, str):
        return float(value)
    match = _NUMBER.match(value)
    if not match:
        raise ValueError(f"{what}: cannot read {value!r} as 'NUMBER UNIT' (e.g. '1.5 {unit_hint(unit)}')")
    number, unit_text = float(match.group(1)), match.group(2)
    if not unit_text:
        return number
    if unit_text in ("A", "Angstrom", "angstrom") and unit.physical_type == "length":
        unit_text = "Angstrom"
    try:
        given = u.Unit(unit_text, parse_strict="raise")
    except ValueError:
        raise ValueError(f"{what}: unknown unit {unit_text!r} in {value!r}; write it in {unit_hint(unit)}") from None
    if isinstance(unit, u.FunctionUnitBase) or isinstance(given, u.FunctionUnitBase) or unit in (u.dex, u.mag):
        accepted = {unit, u.dex} if unit == DEX_CGS else {unit}
        if given in accepted:
            return number
        raise ValueError(f"{what}: unit {given} of {value!r} is not {unit_hint(unit)}")
    try:
        return float((number * given).to_value(unit))
    except u.UnitConversionError:
        raise ValueError(f"{what}: {value!r} has unit {given}, which does not convert to {unit_hint(unit)}") from None


def unit_hint(unit):
    """How to write a value of ``unit`` in a message."""
    if unit == ONE:
        return "no unit (a plain number)"
    return unit.to_string()


def parse_assignment(text):
    """``"NAME=VALUE"`` (VALUE a number, "NUMBER UNIT" or a string choice) -> (name, value), checked against the
    table; ParameterError saying what is wrong and how to write it."""
    name, sep, value_text = text.partition("=")
    name, value_text = name.strip(), value_text.strip()
    if not sep or not name or not value_text or "=" in value_text:
        raise ParameterError(f"parameters are NAME=VALUE with one '=' (e.g. teff_k=5800 or 'teff_k=5800 K'), "
                             f"got {text!r}")
    check_names([name])
    parameter = PARAMETERS[name]
    if parameter.is_string:
        value = value_text
    else:
        try:
            value = parse_quantity(value_text, parameter.unit, name)
        except ValueError as error:
            raise ParameterError(str(error)) from None
    check_value(name, value)
    return name, value


def help_table():
    """The table as plain text for ``--help``: name, unit, range, default."""
    rows = []
    for p in _TABLE:
        if p.level == RECORD:
            continue
        default = "required" if p.required else ("derived" if p.default is None else str(p.default))
        rows.append(f"  {p.name:<24}{p.unit_text:<16}{p.range_text:<42}default {default}")
    return "\n".join(rows)


def markdown_table():
    """The table as Markdown (docs/contracts.md holds this text between its PARAMETER TABLE markers)."""
    lines = ["| name | unit | valid | default | level | header keyword | description |",
             "|---|---|---|---|---|---|---|"]
    for p in _TABLE:
        default = "required" if p.required else ("—" if p.default is None else f"`{p.default}`")
        header = f"`{p.header}`" if p.header else ""
        lines.append(f"| `{p.name}` | {p.unit_text} | {p.range_text} | {default} | {p.level} | {header} | "
                     f"{p.description} |")
    return "\n".join(lines)
