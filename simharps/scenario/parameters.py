"""The parameters a scenario can draw: their slot order, which are optional, their default distributions.

Names, units, valid ranges, levels and descriptions come from the one parameter table, ``simharps.parameters``
(every population column is named after it and docs/contracts.md). A value written in a scenario file
as a bare number is in the canonical unit below; a string such as ``"5800 K"`` or ``"0.8 arcsec"`` is
parsed by ``parse_quantity`` with astropy.units and converted to it (``"5000 A"`` means Angstrom for
wavelengths, never Ampere).

``valid`` is the physically possible range, enforced for every scenario. ``builtin`` is the range of
the built-in stellar synthesis (``simharps.stellar.synthesis.PARAMETER_RANGES``), enforced when
``stellar_model: builtin``. Unbounded distributions (normal, lognormal) must keep their
1e-9 and 1 - 1e-9 quantiles inside these ranges (use ``truncated`` otherwise), and every drawn value
is checked again after sampling.

Default distributions (used for a parameter the scenario does not mention) are listed in
``DEFAULT_DISTRIBUTIONS`` in the same YAML form a scenario uses; ``docs/scenarios.md`` gives their sources.
"""

from dataclasses import dataclass, fields

from simharps import parameters as table
from simharps.parameters import Parameter

DRAWABLE = ("teff_k", "logg_cgs", "mh_dex", "vsini_kms", "rv_kms", "vmag", "ebv_mag", "rv_dust", "ra_deg", "dec_deg",
            "distance_pc", "vmic_kms", "vmac_kms", "ism_rv_kms", "ism_b_kms", "logn_caii_cm2", "airmass", "pwv_mm",
            "seeing_arcsec", "fibre_offset_arcsec", "fibre_offset_angle_deg", "exptime_s", "instrument_mode",
            "fibre_era", "adr_residual_fraction")
"""Names a scenario can draw, in a fixed order (the order fixes each one's random-number slots: append only)."""

OPTIONAL = ("distance_pc", "vmic_kms", "vmac_kms", "ism_rv_kms", "ism_b_kms", "logn_caii_cm2",
            "adr_residual_fraction")
"""Drawable parameters that are not drawn unless the scenario names them (the forward model's default applies)."""


@dataclass(frozen=True)
class ParameterSpec(Parameter):
    """A table parameter as a scenario sees it: ``optional`` ones are drawn only when named."""

    optional: bool = False


def _spec(name):
    parameter = table.PARAMETERS[name]
    return ParameterSpec(**{field.name: getattr(parameter, field.name) for field in fields(Parameter)},
                         optional=name in OPTIONAL)


PARAMETERS = {name: _spec(name) for name in DRAWABLE}
"""Drawable parameters by name, in slot order; units, ranges and descriptions from ``simharps.parameters``."""

SLOTS_PER_PARAMETER = 4
"""Uniform variates reserved per parameter and row: one for the draw, three for relation scatter/velocity."""

SLOT = {name: index * SLOTS_PER_PARAMETER for index, name in enumerate(PARAMETERS)}
N_SLOTS = SLOTS_PER_PARAMETER * len(PARAMETERS)

DERIVED = {name: (table.PARAMETERS[name].unit, table.PARAMETERS[name].description)
           for name in ("mjd_utc", "berv_kms", "hour_angle_h", "parallactic_angle_deg", "sun_altitude_deg")}
"""Columns computed, never drawn (``airmass`` joins them when the scenario does not draw it)."""

DEFAULT_DISTRIBUTIONS = {
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
