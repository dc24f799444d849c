"""Distributions a scenario can give a parameter, as written in YAML and as samplers.

Forms (``X`` is a value with or without unit, e.g. ``5800 K``; a bare number is in the parameter's
canonical unit, ``simharps.scenario.parameters``)::

    teff_k: 5800 K                                   fixed (also {fixed: 5800 K})
    teff_k: {uniform: [4500 K, 6500 K]}              uniform on [low, high]  (or {uniform: {low: X, high: X}})
    vsini_kms: {loguniform: [1 km/s, 30 km/s]}       log-uniform on [low, high], 0 < low
    mh_dex: {normal: {mean: -0.1, sigma: 0.2}}       normal                  (or [mean, sigma])
    seeing_arcsec: {lognormal: {median: 0.9 arcsec, sigma: 0.3}}   ln X ~ N(ln median, sigma); sigma in e-folds
    pwv_mm: {truncated: {normal: {mean: 2 mm, sigma: 2 mm}, low: 0.5 mm, high: 10 mm}}
                                                     normal or lognormal restricted to [low, high] (either optional)
    exptime_s: {choice: [300 s, 600 s, 900 s]}       equal weights, or {choice: {values: [...], weights: [...]}}
    dec_deg: {isotropic: [-90 deg, 30 deg]}          uniform on the sphere: sin(dec) uniform (dec_deg only)

Relations (values computed from other parameters; ``simharps.scenario.relations``)::

    logg_cgs: {main_sequence: {scatter: 0.05 dex}}   dwarf sequence logg(Teff) + N(0, scatter)
    ebv_mag: {reddening: {mag_per_kpc: 0.61, scale_height: 125 pc, bubble_radius: 0 pc, scatter: 0.3}}
                                                     E(B-V) from distance_pc and Galactic latitude; scatter in e-folds
    vmag: {distance_modulus: {scatter: 0.1 mag}}     V = M_V(Teff) + 5 log10(d / 10 pc) + R_V E(B-V)
    rv_kms: {galactic_kinematics: {mean_uvw: [-9.9, -16.9, -7.1], sigma_uvw: [32.5, 17.8, 16.5]}}
                                                     line-of-sight projection of a velocity ellipsoid (km/s)

A relation name alone (``rv_kms: galactic_kinematics``) takes its defaults.

Inverse-transform sampling: every sampler maps uniform variates u in [0, 1) to values (``ppf``), so a
row's values depend only on its own uniforms; truncated distributions use the exact truncated
inverse CDF (``scipy.stats.truncnorm``), never rejection.
"""

from typing import Annotated, List, Literal, Optional, Tuple, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from scipy.special import ndtri
from scipy.stats import truncnorm

from simharps.scenario import relations
from simharps.scenario.errors import suggest

Scalar = Union[StrictInt, StrictFloat, StrictStr]

TAIL_PROBABILITY = 1e-9
"""Unbounded distributions must keep their TAIL_PROBABILITY and 1 - TAIL_PROBABILITY quantiles in range."""
_Z_TAIL = float(-ndtri(TAIL_PROBABILITY))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedSpec(_Spec):
    kind: Literal["fixed"] = "fixed"
    value: Scalar


class UniformSpec(_Spec):
    kind: Literal["uniform"] = "uniform"
    low: Scalar
    high: Scalar


class LogUniformSpec(_Spec):
    kind: Literal["loguniform"] = "loguniform"
    low: Scalar
    high: Scalar


class NormalSpec(_Spec):
    kind: Literal["normal"] = "normal"
    mean: Scalar
    sigma: Scalar


class LogNormalSpec(_Spec):
    kind: Literal["lognormal"] = "lognormal"
    median: Scalar
    sigma: Annotated[float, Field(gt=0.0, le=5.0)]


class TruncatedSpec(_Spec):
    kind: Literal["truncated"] = "truncated"
    normal: Optional[NormalSpec] = None
    lognormal: Optional[LogNormalSpec] = None
    low: Optional[Scalar] = None
    high: Optional[Scalar] = None


class ChoiceSpec(_Spec):
    kind: Literal["choice"] = "choice"
    values: Annotated[List[Scalar], Field(min_length=1)]
    weights: Optional[List[Annotated[float, Field(ge=0.0)]]] = None


class IsotropicSpec(_Spec):
    kind: Literal["isotropic"] = "isotropic"
    low: Scalar = -90.0
    high: Scalar = 90.0


class MainSequenceSpec(_Spec):
    kind: Literal["main_sequence"] = "main_sequence"
    scatter: Scalar = 0.0


class ReddeningSpec(_Spec):
    kind: Literal["reddening"] = "reddening"
    mag_per_kpc: Scalar = relations.REDDENING_DEFAULTS["mag_per_kpc"]
    scale_height: Scalar = "125 pc"
    bubble_radius: Scalar = "0 pc"
    scatter: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0


class DistanceModulusSpec(_Spec):
    kind: Literal["distance_modulus"] = "distance_modulus"
    scatter: Scalar = 0.0


class GalacticKinematicsSpec(_Spec):
    kind: Literal["galactic_kinematics"] = "galactic_kinematics"
    mean_uvw: Tuple[Scalar, Scalar, Scalar] = relations.GCS_DISC_MEAN_UVW_KMS
    sigma_uvw: Tuple[Scalar, Scalar, Scalar] = relations.GCS_DISC_SIGMA_UVW_KMS


KINDS = ("fixed", "uniform", "loguniform", "normal", "lognormal", "truncated", "choice", "isotropic",
         "main_sequence", "reddening", "distance_modulus", "galactic_kinematics")
RELATIONS = {"main_sequence": "logg_cgs", "reddening": "ebv_mag", "distance_modulus": "vmag",
             "galactic_kinematics": "rv_kms", "isotropic": "dec_deg"}
"""Relations (and the isotropic sky distribution) and the one parameter each applies to."""
_POSITIONAL = {"uniform": ("low", "high"), "loguniform": ("low", "high"), "isotropic": ("low", "high"),
               "normal": ("mean", "sigma"), "lognormal": ("median", "sigma")}


def _normalise(value):
    """YAML shorthand -> {'kind': ..., fields}; anything else is left for pydantic to reject."""
    if isinstance(value, str) and value in RELATIONS:
        return {"kind": value}
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"kind": "fixed", "value": value}
    if isinstance(value, dict) and len(value) == 1:
        (kind, body), = value.items()
        if kind not in KINDS:
            raise ValueError(f"unknown distribution {kind!r}" + suggest(kind, KINDS, "distributions"))
        if body is None:
            return {"kind": kind}
        if kind == "fixed" and not isinstance(body, (dict, list)):
            return {"kind": kind, "value": body}
        if kind == "choice" and isinstance(body, list):
            return {"kind": kind, "values": body}
        if isinstance(body, list) and kind in _POSITIONAL:
            names = _POSITIONAL[kind]
            if len(body) != len(names):
                raise ValueError(f"{kind} takes [{', '.join(names)}], got {len(body)} values")
            return {"kind": kind, **dict(zip(names, body))}
        if isinstance(body, dict):
            body = dict(body)
            for base in ("normal", "lognormal"):
                if kind == "truncated" and isinstance(body.get(base), list) and len(body[base]) == 2:
                    body[base] = dict(zip(_POSITIONAL[base], body[base]))
            return {"kind": kind, **body}
        raise ValueError(f"{kind}: expected a mapping of its fields, got {body!r}")
    if isinstance(value, dict) and "kind" in value:
        return value
    raise ValueError(
        "expected a value (e.g. '5800 K') or a mapping with one key, the distribution: " + ", ".join(KINDS)
    )


DistributionSpec = Annotated[
    Union[FixedSpec, UniformSpec, LogUniformSpec, NormalSpec, LogNormalSpec, TruncatedSpec, ChoiceSpec,
          IsotropicSpec, MainSequenceSpec, ReddeningSpec, DistanceModulusSpec, GalacticKinematicsSpec],
    Field(discriminator="kind"),
    BeforeValidator(_normalise),
]
"""A parameter's distribution as written in a scenario (validated structure, units not yet applied)."""


# ---------------------------------------------------------------------------------------------- samplers


class Sampler:
    """A resolved distribution in canonical units: ``ppf(u, columns)`` maps uniforms (n, 4) to n values."""

    needs = ()
    is_string = False

    def bounds(self):
        """(low, high) of the values it can produce (the TAIL_PROBABILITY quantiles for unbounded ones)."""
        raise NotImplementedError

    def ppf(self, u, columns):
        raise NotImplementedError


class Fixed(Sampler):
    def __init__(self, value):
        self.value = value
        self.is_string = isinstance(value, str)

    def bounds(self):
        return (self.value, self.value)

    def ppf(self, u, columns):
        return np.full(u.shape[0], self.value, dtype=object if self.is_string else float)


class Uniform(Sampler):
    def __init__(self, low, high):
        self.low, self.high = low, high

    def bounds(self):
        return (self.low, self.high)

    def ppf(self, u, columns):
        return self.low + (self.high - self.low) * u[:, 0]


class LogUniform(Uniform):
    def ppf(self, u, columns):
        return self.low * (self.high / self.low) ** u[:, 0]


class Isotropic(Uniform):
    def ppf(self, u, columns):
        sin_low, sin_high = np.sin(np.radians(self.low)), np.sin(np.radians(self.high))
        return np.degrees(np.arcsin(sin_low + (sin_high - sin_low) * u[:, 0]))


class Normal(Sampler):
    log = False

    def __init__(self, centre, sigma):
        self.centre, self.sigma = centre, sigma

    def _to_value(self, y):
        return np.exp(y) if self.log else y

    def bounds(self):
        with np.errstate(over="ignore"):  # a huge lognormal reaches inf, which the range check refuses
            return tuple(self._to_value(self.centre + s * _Z_TAIL * self.sigma) for s in (-1.0, 1.0))

    def ppf(self, u, columns):
        return self._to_value(self.centre + self.sigma * ndtri(u[:, 0]))


class LogNormal(Normal):
    """``centre`` = ln(median), ``sigma`` in e-folds."""

    log = True


class Truncated(Sampler):
    def __init__(self, base, low, high):
        self.base, self.low, self.high = base, low, high
        to_y = np.log if base.log else (lambda x: x)
        y_low = -np.inf if low is None else to_y(low)
        y_high = np.inf if high is None else to_y(high)
        self.a = (y_low - base.centre) / base.sigma
        self.b = (y_high - base.centre) / base.sigma

    def bounds(self):
        base_low, base_high = self.base.bounds()
        return (base_low if self.low is None else self.low, base_high if self.high is None else self.high)

    def ppf(self, u, columns):
        z = truncnorm.ppf(u[:, 0], self.a, self.b)
        return self.base._to_value(self.base.centre + self.base.sigma * z)


class Choice(Sampler):
    def __init__(self, values, weights):
        self.values = list(values)
        self.is_string = isinstance(self.values[0], str)
        weights = np.ones(len(self.values)) if weights is None else np.asarray(weights, dtype=float)
        self.cumulative = np.cumsum(weights) / np.sum(weights)

    def bounds(self):
        return (self.values, self.values) if self.is_string else (min(self.values), max(self.values))

    def ppf(self, u, columns):
        index = np.minimum(np.searchsorted(self.cumulative, u[:, 0], side="right"), len(self.values) - 1)
        return np.asarray(self.values, dtype=object if self.is_string else float)[index]


class MainSequence(Sampler):
    needs = ("teff_k",)

    def __init__(self, scatter):
        self.scatter = scatter

    def bounds(self):
        table = relations.main_sequence_logg(np.linspace(*relations.MAIN_SEQUENCE_TEFF_RANGE_K, 2000))
        return (table.min() - _Z_TAIL * self.scatter, table.max() + _Z_TAIL * self.scatter)

    def ppf(self, u, columns):
        return relations.main_sequence_logg(columns["teff_k"]) + self.scatter * ndtri(u[:, 0])


class Reddening(Sampler):
    needs = ("distance_pc", "ra_deg", "dec_deg")

    def __init__(self, mag_per_kpc, scale_height_pc, bubble_radius_pc, scatter):
        self.mag_per_kpc, self.scale_height_pc = mag_per_kpc, scale_height_pc
        self.bubble_radius_pc, self.scatter = bubble_radius_pc, scatter

    def bounds(self):
        return (0.0, None)

    def ppf(self, u, columns):
        _, b_deg = relations.galactic_latitude_longitude_deg(columns["ra_deg"], columns["dec_deg"])
        ebv = relations.reddening_from_distance(columns["distance_pc"], b_deg, self.mag_per_kpc,
                                                self.scale_height_pc, self.bubble_radius_pc)
        return ebv * np.exp(self.scatter * ndtri(u[:, 0]))


class DistanceModulus(Sampler):
    needs = ("teff_k", "distance_pc", "ebv_mag", "rv_dust")

    def __init__(self, scatter):
        self.scatter = scatter

    def bounds(self):
        return (None, None)

    def ppf(self, u, columns):
        modulus = 5.0 * np.log10(np.asarray(columns["distance_pc"]) / 10.0)
        extinction = np.asarray(columns["rv_dust"]) * np.asarray(columns["ebv_mag"])
        return relations.absolute_vmag(columns["teff_k"]) + modulus + extinction + self.scatter * ndtri(u[:, 0])


class GalacticKinematics(Sampler):
    needs = ("ra_deg", "dec_deg")

    def __init__(self, mean_uvw_kms, sigma_uvw_kms):
        self.mean = np.asarray(mean_uvw_kms, dtype=float)
        self.sigma = np.asarray(sigma_uvw_kms, dtype=float)

    def bounds(self):
        reach = np.linalg.norm(np.abs(self.mean) + _Z_TAIL * self.sigma)
        return (-reach, reach)

    def ppf(self, u, columns):
        l_deg, b_deg = relations.galactic_latitude_longitude_deg(columns["ra_deg"], columns["dec_deg"])
        uvw = self.mean + self.sigma * ndtri(u[:, 1:4])
        return relations.line_of_sight_velocity(l_deg, b_deg, uvw)


def describe_range(low, high, unit_text):
    """``'from -4 to 1 dex'``: a range in words (a hyphen would read as a minus sign); no unit for 'dimensionless'."""
    unit = "" if unit_text == "dimensionless" else f" {unit_text}"
    return f"from {low:g} to {high:g}{unit}"


def describe_bounds(bounds):
    low, high = bounds
    return f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"

