"""Scenario files: the pydantic v2 schema, loading with line numbers, and the checks that run before any work.

A scenario is a YAML mapping (full reference with examples: ``docs/scenarios.md``)::

    name: quickstart                 # [A-Za-z0-9_.-]+
    seed: 20240601                   # int >= 0; every random draw derives from it
    description: ...                 # optional free text
    source: {kind: simulated}        # default; or {kind: real, paths: [...]} (relative to this file)
    stages: [stellar, ism, atmosphere, telescope, fibre, spectrograph, instrument, noise]   # default: all
    stellar_model: builtin           # or phoenix (then phoenix_dir: PATH)
    instrument: {name: HARPS, site: lasilla}
    observing: {dates: [2004-01-01, 2015-05-31], sun_altitude_max: -18 deg, max_airmass: 2.0}
    population:
      n_targets: 3
      epochs_per_target: 2
      per_target: {teff_k: {uniform: [4500 K, 6500 K]}, ...}     # drawn once per star
      per_epoch: {seeing_arcsec: {lognormal: {median: 0.9 arcsec, sigma: 0.3}}, ...}   # per observation
    design: {kind: random}           # or factorial / paired
    output: {window: [5000 A, 5600 A], subsample: {channels: 11000, method: bin}, components: true}
    analysis: {models: [...], ...}   # training and metrics (schema: analysis.config)
    regression: {baseline: ..., tolerances: ...}

Unknown keys fail everywhere (the nearest valid key is suggested). Every problem found by
``load_scenario`` raises ``ScenarioError`` naming the file, the line, the key path and the fix, before
any sampling or simulation happens: besides the schema, values must be finite and in range, the
population must fit in memory (``simharps.scenario.budget``) and the output window must hold data
(``simharps.extraction.uncovered_gap_aa``). ``Scenario.check_disk(out_dir)`` compares the dataset's size with
the free disk space, for a caller about to write it.

Example
-------
>>> from simharps.scenario import load_scenario, sample_population
>>> scenario = load_scenario("scenarios/quickstart.yaml")
>>> population = sample_population(scenario)        # astropy Table, one row per spectrum
"""

import datetime
import glob
import hashlib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional, Tuple, Union

import astropy.units as u
import numpy as np
from astropy.time import Time
from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter,
                      ValidationError)

from analysis.config import AnalysisConfig, RegressionConfig
from simharps.chain import STAGE_NAMES
from simharps.extraction import BERV_LIMIT_KMS, uncovered_gap_aa
from simharps.grids import PRODUCT_RANGE_AA, PRODUCT_STEP_AA
from simharps.kinematics import MJD_RANGE
from simharps.parameters import EPOCH, SIMULATED_FIBRE_ERAS, TARGET, parse_quantity
from simharps.scenario import distributions as dist
from simharps.scenario.budget import free_disk_bytes, physical_memory_bytes, storage_bytes, table_problem
from simharps.scenario.eras import ERA_WINDOWS_MJD, FIBRE_UPGRADE_MJD
from simharps.scenario.errors import ScenarioError, suggest
from simharps.scenario.parameters import DEFAULT_DISTRIBUTIONS, DERIVED, PARAMETERS
from simharps.scenario.population import sample_population
from simharps.scenario.relations import MAIN_SEQUENCE_TEFF_RANGE_K
from simharps.scenario.yamlio import MAX_TEXT_CHARS, dotted, line_of, load_yaml
from simharps.sites import SITES

STAGES = STAGE_NAMES
"""Forward-model stages a scenario can switch on, in chain order (``simharps.chain``)."""

Scalar = dist.Scalar
DateLike = Union[datetime.datetime, datetime.date, StrictInt, StrictFloat, StrictStr]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstrumentConfig(_Strict):
    """Spectrograph and site (modes and fibre era are per-observation parameters: instrument_mode, fibre_era)."""

    name: Literal["HARPS"] = "HARPS"
    site: StrictStr = "lasilla"


class ObservingConfig(_Strict):
    """When observations happen: date range (UTC), night definition and airmass limit (for derived airmass)."""

    dates: Tuple[DateLike, DateLike] = ("2004-01-01", "2015-05-31")
    sun_altitude_max: Scalar = "-18 deg"
    max_airmass: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0


class PopulationConfig(_Strict):
    """Targets (stars) and epochs (repeat observations of each under new conditions)."""

    n_targets: Annotated[int, Field(ge=1, le=10_000_000)]
    epochs_per_target: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_target: Dict[StrictStr, dist.DistributionSpec] = Field(default_factory=dict)
    per_epoch: Dict[StrictStr, dist.DistributionSpec] = Field(default_factory=dict)


class RandomDesign(_Strict):
    """Every parameter drawn from its distribution (targets x epochs)."""

    kind: Literal["random"] = "random"


class FactorialDesign(_Strict):
    """Full grid over the levels of the named factors; n_targets / epochs_per_target are per grid cell."""

    kind: Literal["factorial"]
    factors: Annotated[Dict[StrictStr, Annotated[List[Scalar], Field(min_length=1)]], Field(min_length=1)]


class PairedDesign(_Strict):
    """Each drawn row (variant 0) plus variants that differ from it in ``factor`` only."""

    kind: Literal["paired"]
    factor: StrictStr
    values: Optional[Annotated[List[Scalar], Field(min_length=1)]] = None
    deltas: Optional[Annotated[List[Scalar], Field(min_length=1)]] = None
    same_noise: StrictBool = True


class SubsampleConfig(_Strict):
    channels: Annotated[int, Field(ge=2)]
    method: Literal["bin", "decimate"] = "bin"


class OutputConfig(_Strict):
    """Stored product: wavelength window on the 0.01 A lattice, optional sub-sampling, per-stage components."""

    window: Union[Literal["full"], Tuple[Scalar, Scalar]] = "full"
    subsample: Optional[SubsampleConfig] = None
    components: StrictBool = False


class SimulatedSource(_Strict):
    kind: Literal["simulated"] = "simulated"


class RealSource(_Strict):
    """Real archive files to ingest; ``paths`` (files, directories or glob patterns) relative to the scenario file."""

    kind: Literal["real"]
    paths: Annotated[List[StrictStr], Field(min_length=1)]


class ScenarioModel(_Strict):
    """The validated structure of a scenario file (see the module docstring)."""

    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)]
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    description: StrictStr = ""
    source: Annotated[Union[SimulatedSource, RealSource], Field(discriminator="kind")] = SimulatedSource()
    stages: List[Literal[STAGES]] = list(STAGES)
    stellar_model: Literal["builtin", "phoenix"] = "builtin"
    phoenix_dir: Optional[StrictStr] = None
    instrument: InstrumentConfig = InstrumentConfig()
    observing: ObservingConfig = ObservingConfig()
    population: Optional[PopulationConfig] = None
    design: Annotated[Union[RandomDesign, FactorialDesign, PairedDesign], Field(discriminator="kind")] = RandomDesign()
    output: OutputConfig = OutputConfig()
    analysis: Optional[AnalysisConfig] = None
    regression: Optional[RegressionConfig] = None


@dataclass
class Plan:
    """What sampling needs, in canonical units (built by ``Scenario`` from the model; internal)."""

    samplers: Dict[str, dist.Sampler] = field(default_factory=dict)
    levels: Dict[str, str] = field(default_factory=dict)
    locations: Dict[str, tuple] = field(default_factory=dict)
    factors: Dict[str, list] = field(default_factory=dict)
    paired_values: Optional[list] = None
    paired_deltas: Optional[list] = None
    airmass_given: bool = False
    dates_mjd: Tuple[float, float] = (0.0, 0.0)
    sun_altitude_max_deg: float = -18.0
    window_aa: Tuple[float, float] = PRODUCT_RANGE_AA


class Scenario:
    """A validated scenario: the parsed model, its source text and path, and the sampling plan.

    Build one with ``load_scenario(path)``, ``Scenario.from_yaml(text, path=None)`` or
    ``Scenario.from_dict(data)``; all raise ``ScenarioError`` for any problem. Attributes: ``model``
    (``ScenarioModel``), ``path`` (Path or None), ``text`` (YAML source or None), ``name``, ``seed``,
    ``stages``, ``kind`` ('simulated' or 'real'), ``analysis``/``regression`` (verbatim parsed YAML),
    ``window_aa`` ((start, stop) A on the 0.01 A lattice), ``subsample`` (None or SubsampleConfig),
    ``components`` (bool), ``n_spectra`` (rows the population will have; None for real sources).
    """

    def __init__(self, model, *, path=None, text=None, lines=None):
        self.model = model
        self.path = None if path is None else Path(path)
        self.text = text
        self._lines = lines or {}
        self.plan = _compile(self)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text, path=None):
        data, lines = load_yaml(text, path)
        return cls.from_dict(data, path=path, text=text, lines=lines)

    @classmethod
    def from_dict(cls, data, *, path=None, text=None, lines=None):
        lines = lines or {}
        if not isinstance(data, dict):
            raise ScenarioError("a scenario is a YAML mapping of keys (name, seed, population, ...)",
                                path=path, line=line_of(lines, ()))
        try:
            model = ScenarioModel.model_validate(data)
        except ValidationError as exc:
            raise _translate(exc, path, lines) from None
        return cls(model, path=path, text=text, lines=lines)

    # -- error reporting ---------------------------------------------------------------------------
    def fail(self, location, reason):
        """Raise ScenarioError for key path ``location`` (tuple) with ``reason`` (what is wrong and the fix)."""
        raise ScenarioError(reason, path=self.path, line=line_of(self._lines, location),
                            location=dotted(location)) from None

    # -- convenience -------------------------------------------------------------------------------
    name = property(lambda self: self.model.name)
    seed = property(lambda self: self.model.seed)
    stages = property(lambda self: tuple(self.model.stages))
    kind = property(lambda self: self.model.source.kind)
    analysis_config = property(lambda self: self.model.analysis or AnalysisConfig())
    regression_config = property(lambda self: self.model.regression or RegressionConfig())

    @property
    def analysis(self):
        """The validated ``analysis:`` section as JSON-ready data, defaults filled in ({} when absent)."""
        return {} if self.model.analysis is None else self.model.analysis.model_dump(mode="json")

    @property
    def regression(self):
        """The validated ``regression:`` section as JSON-ready data ({} when absent)."""
        return {} if self.model.regression is None else self.model.regression.model_dump(mode="json")
    window_aa = property(lambda self: self.plan.window_aa)
    subsample = property(lambda self: self.model.output.subsample)
    components = property(lambda self: self.model.output.components)
    site = property(lambda self: _site_key(self.model.instrument.site))

    @property
    def sha256(self):
        """Hash of the scenario text (of the canonical JSON dump when built from a dict)."""
        payload = self.text if self.text is not None else self.model.model_dump_json()
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def n_spectra(self):
        """Number of population rows (spectra) this scenario produces; None for a real-data source."""
        return None if self.kind == "real" else _n_rows(self.model, self.plan)

    @property
    def n_channels(self):
        """Channels of each stored spectrum: the sub-sampled count, or the window's 0.01 A pixels."""
        if self.subsample is not None:
            return self.subsample.channels
        start, stop = self.window_aa
        return int(round((stop - start) / PRODUCT_STEP_AA)) + 1

    @property
    def storage_bytes(self):
        """Upper bound of the dataset's size on disk (uncompressed float16 arrays), bytes; None for real data."""
        if self.kind == "real":
            return None
        return storage_bytes(self.n_spectra, self.n_channels, self.components)

    def check_disk(self, out_dir):
        """Raise ScenarioError when the dataset may not fit in the free space where ``out_dir`` would be."""
        need, free = self.storage_bytes, free_disk_bytes(out_dir)
        if need is not None and need > free:
            self.fail(("population", "n_targets"), f"the dataset of {self.n_spectra:,} spectra x {self.n_channels:,} "
                      f"channels needs up to {need / 1e9:,.3g} GB (uncompressed), but only {free / 1e9:,.3g} GB are "
                      f"free at {out_dir}; lower n_targets or epochs_per_target, narrow output.window or subsample")

    def to_dict(self):
        """JSON-ready dump of the validated scenario (defaults filled in), for a dataset manifest."""
        return self.model.model_dump(mode="json")

    def source_paths(self):
        """Real-data sources: absolute Paths (globs expanded, sorted; directories kept as directories).

        Relative entries are resolved against the scenario file's directory (the working directory for a
        scenario without a file). ScenarioError names the entry that matches nothing.
        """
        if self.kind != "real":
            self.fail(("source",), "this scenario simulates; only a source of kind 'real' has paths")
        base = self.path.resolve().parent if self.path is not None else Path.cwd()
        found = []
        for index, entry in enumerate(self.model.source.paths):
            pattern = Path(entry).expanduser()
            pattern = pattern if pattern.is_absolute() else base / pattern
            matches = sorted(Path(p) for p in glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else (
                [pattern] if pattern.exists() else [])
            if not matches:
                self.fail(("source", "paths", index),
                          f"{entry!r} (resolved to {pattern}) matches no file or directory; paths are relative "
                          "to the scenario file")
            found.extend(p.resolve() for p in matches)
        return found

    def population(self, targets=None):
        """``sample_population(self, targets)``: the truth table, one row per spectrum."""
        return sample_population(self, targets=targets)

    def __repr__(self):
        return f"Scenario(name={self.name!r}, seed={self.seed}, kind={self.kind!r}, path={self.path})"


def load_scenario(path):
    """Read, validate and compile the scenario file at ``path``; ScenarioError on any problem."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(MAX_TEXT_CHARS + 1)  # enough for load_yaml to refuse an oversized file (or /dev/zero)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the scenario file: {exc}", path=path) from None
    return Scenario.from_yaml(text, path=path)


# ---------------------------------------------------------------------------------------- validation


def _site_key(site):
    return str(site).lower().replace(" ", "").replace("_", "").replace("-", "")


def _translate(exc, path, lines):
    """The first pydantic error as a ScenarioError with file, line and a fix."""
    errors = exc.errors()
    error = errors[0]
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        reason = f"unknown key {loc[-1]!r}" + (suggest(loc[-1], allowed, "allowed here") if allowed else "")
    elif kind == "missing":
        reason = f"missing required key {loc[-1]!r}; add it"
    elif kind == "union_tag_invalid":
        tags = [tag.strip(" '") for tag in error["ctx"]["expected_tags"].split(",")]
        reason = f"unknown kind {error['ctx']['tag']!r}" + suggest(error["ctx"]["tag"], tags, "kinds")
    elif kind == "union_tag_not_found":
        reason = f"missing key 'kind'; add it (got {_short_repr(error.get('input'))})"
    elif kind == "value_error":
        reason = str(error["ctx"]["error"])
    else:
        reason = f"{error['msg']} (got {_short_repr(error.get('input'))})"
    if len(errors) > 1:
        reason += f" [{len(errors) - 1} more problem(s) after this one]"
    raise ScenarioError(reason, path=path, line=line_of(lines, loc), location=dotted(loc))


def _short_repr(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _members(annotation):
    """Model classes an annotation can hold, unwrapping Annotated/Optional/Union/List/Dict."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is Union:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _allowed_keys(loc):
    """Field names of the model at key path ``loc`` of a scenario (empty when it cannot be told)."""
    models = [ScenarioModel]
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        nxt = []
        for model in models:
            info = model.model_fields.get(part)
            if info is None:
                continue
            annotation = info.annotation
            while typing.get_origin(annotation) is Annotated:
                annotation = typing.get_args(annotation)[0]
            if typing.get_origin(annotation) in (dict, list) and parts:
                parts.pop(0)
                annotation = typing.get_args(annotation)[-1]
            nxt.extend(_members(annotation))
        if parts and any("kind" in m.model_fields for m in nxt):
            tagged = [m for m in nxt if typing.get_args(m.model_fields["kind"].annotation) == (parts[0],)]
            if tagged:
                parts.pop(0)
                nxt = tagged
        models = nxt
    return sorted({name for model in models for name in model.model_fields if name != "kind"})


def _compile(scenario):
    model, plan = scenario.model, Plan()
    fail = scenario.fail
    site = model.instrument.site
    if _site_key(site) not in SITES:
        fail(("instrument", "site"), f"unknown site {site!r}" + suggest(site, sorted(SITES), "sites"))
    if len(set(model.stages)) != len(model.stages):
        fail(("stages",), "a stage is listed twice; list each once")
    plan.window_aa = _window(scenario)
    if model.source.kind == "real":
        for key in ("population", "phoenix_dir"):
            if getattr(model, key) is not None:
                fail((key,), f"a real-data scenario (source kind 'real') takes no {key}; remove it")
        if model.design.kind != "random":
            fail(("design",), "a real-data scenario has no design; remove it")
        return plan
    if model.population is None:
        fail((), "missing key 'population' (n_targets, epochs_per_target, per_target, per_epoch); a scenario "
                 "either simulates a population or reads real files (source: {kind: real, paths: [...]})")
    if model.stellar_model == "phoenix" and model.phoenix_dir is None:
        fail(("stellar_model",), "stellar_model phoenix needs phoenix_dir: PATH (the PHOENIX HiRes grid folder)")
    if model.stellar_model == "builtin" and model.phoenix_dir is not None:
        fail(("phoenix_dir",), "phoenix_dir is only used with stellar_model: phoenix; remove it or switch model")
    _observing(scenario, plan)
    _parameters(scenario, plan)
    _design(scenario, plan)
    _consistency(scenario, plan)
    _budget(scenario, plan)
    return plan


def _window(scenario):
    output = scenario.model.output
    if output.window == "full":
        start, stop = PRODUCT_RANGE_AA
    else:
        values = []
        for index, value in enumerate(output.window):
            try:
                values.append(_finite_quantity(value, u.AA, "window edge"))
            except ValueError as exc:
                scenario.fail(("output", "window", index), str(exc))
        start, stop = values
        lo, hi = PRODUCT_RANGE_AA
        if not lo <= start < stop <= hi:
            scenario.fail(("output", "window"), f"window [{start:g}, {stop:g}] A must satisfy {lo:.2f} <= start < "
                          f"stop <= {hi:.2f} A (the HARPS 1D range, air)")
        for index, edge in enumerate((start, stop)):
            if abs(edge / PRODUCT_STEP_AA - round(edge / PRODUCT_STEP_AA)) > 1e-6:
                scenario.fail(("output", "window", index), f"window edge {edge!r} A is not on the 0.01 A product "
                              f"lattice; use {round(edge / PRODUCT_STEP_AA) * PRODUCT_STEP_AA:.2f}")
        start, stop = round(start, 2), round(stop, 2)
        _check_coverage(scenario, start, stop)
    n_pixels = int(round((stop - start) / PRODUCT_STEP_AA)) + 1
    if output.subsample is not None and output.subsample.channels > n_pixels:
        scenario.fail(("output", "subsample", "channels"), f"{output.subsample.channels} channels exceed the "
                      f"{n_pixels} pixels of the window {start:.2f}-{stop:.2f} A; use at most {n_pixels}")
    return (start, stop)


def _check_coverage(scenario, start, stop):
    """Refuse a window no HARPS order reaches at any BERV (inside the CCD gap or beyond the last order)."""
    gap = uncovered_gap_aa(start, stop)
    if gap is None:
        return
    low, high = max(gap[0], PRODUCT_RANGE_AA[0]), min(gap[1], PRODUCT_RANGE_AA[1])
    where = "the gap between the blue and red CCDs" if np.isfinite(gap).all() else "beyond the last order"
    scenario.fail(("output", "window"), f"window [{start:.2f}, {stop:.2f}] A has no data: no HARPS order reaches "
                  f"{low:.2f} to {high:.2f} A ({where}) at any BERV within {BERV_LIMIT_KMS:g} km/s; move or widen "
                  "the window")


def _n_rows(model, plan):
    """Population rows of a simulated scenario: targets x epochs x factorial cells x paired variants."""
    population, design = model.population, model.design
    n = population.n_targets * population.epochs_per_target
    if design.kind == "factorial":
        n *= math.prod(len(levels) for levels in plan.factors.values())
    if design.kind == "paired":
        n *= 1 + len(plan.paired_values or plan.paired_deltas)
    return n


def _budget(scenario, plan):
    """Refuse a population too large to sample on this machine, with the memory estimate."""
    problem = table_problem(_n_rows(scenario.model, plan), physical_memory_bytes())
    if problem is not None:
        scenario.fail(("population", "n_targets"), problem)


def _finite_quantity(value, unit, what):
    """``parse_quantity`` that also refuses NaN and infinities (ValueError says why)."""
    number = parse_quantity(value, unit, what)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _date_to_mjd(value, what):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime.datetime):
        value = value if value.tzinfo is None else value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    elif isinstance(value, datetime.date):
        value = value.isoformat()
    try:
        return float(Time(value, scale="utc").mjd)
    except (ValueError, TypeError):
        raise ValueError(f"{what}: cannot read {value!r} as a date; write YYYY-MM-DD, an ISO time or an MJD") from None


def _observing(scenario, plan):
    observing = scenario.model.observing
    mjd = []
    for index, value in enumerate(observing.dates):
        try:
            mjd.append(_date_to_mjd(value, "date"))
        except ValueError as exc:
            scenario.fail(("observing", "dates", index), str(exc))
    if not MJD_RANGE[0] <= mjd[0] < mjd[1] <= MJD_RANGE[1]:
        scenario.fail(("observing", "dates"), f"dates must be increasing and within MJD {MJD_RANGE[0]:.0f}-"
                      f"{MJD_RANGE[1]:.0f} (1962-2100), got MJD {mjd[0]:.2f}-{mjd[1]:.2f}")
    plan.dates_mjd = (mjd[0], mjd[1])
    try:
        sun = _finite_quantity(observing.sun_altitude_max, u.deg, "sun_altitude_max")
    except ValueError as exc:
        scenario.fail(("observing", "sun_altitude_max"), str(exc))
    if not -90.0 < sun <= 0.0:
        scenario.fail(("observing", "sun_altitude_max"), f"sun_altitude_max {sun:g} deg must lie in (-90, 0] deg "
                      "(-18 deg: astronomical night, -12 deg: nautical twilight)")
    plan.sun_altitude_max_deg = sun


def _scalar(scenario, spec, value, location):
    """A scalar of a parameter in canonical units (a string for string parameters)."""
    if spec.is_string:
        if value not in spec.choices:
            scenario.fail(location, f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    try:
        return _finite_quantity(value, spec.unit, spec.name)
    except ValueError as exc:
        scenario.fail(location, str(exc))


def _check_range(scenario, spec, bounds, location, what="values"):
    if spec.is_string:
        return
    low, high = bounds
    ranges = [(spec.valid, "its valid range")]
    if spec.builtin is not None and scenario.model.stellar_model == "builtin":
        ranges.append((spec.builtin, "the range of the built-in stellar model (stellar_model: builtin)"))
    for (lo, hi), name in ranges:
        if (low is not None and low < lo) or (high is not None and high > hi):
            text = dist.describe_bounds(bounds)
            scenario.fail(location, f"{spec.name} {what} reach {text} {spec.unit_text}, outside {name}, "
                          f"{dist.describe_range(lo, hi, spec.unit_text)}; narrow the distribution (a normal/lognormal "
                          "is judged by its 1e-9 quantiles: use truncated to bound it)"
                          + ("" if lo == spec.valid[0] and hi == spec.valid[1] else
                             " or use stellar_model: phoenix with phoenix_dir"))


def _sampler(scenario, spec, body, location):
    kind = body.kind
    loc = location + (kind,)
    if kind in dist.RELATIONS and dist.RELATIONS[kind] != spec.name:
        scenario.fail(loc, f"{kind} applies to {dist.RELATIONS[kind]} only, not {spec.name}")
    if spec.is_string and kind not in ("fixed", "choice"):
        scenario.fail(loc, f"{spec.name} is a string parameter: give a value or a choice of {', '.join(spec.choices)}")

    def q(value, key, unit=spec.unit):
        try:
            return _finite_quantity(value, unit, f"{spec.name} {kind} {key}")
        except ValueError as exc:
            scenario.fail(loc + (key,), str(exc))

    if kind == "fixed":
        return dist.Fixed(_scalar(scenario, spec, body.value, loc))
    if kind in ("uniform", "loguniform", "isotropic"):
        low, high = q(body.low, "low"), q(body.high, "high")
        if not low < high:
            scenario.fail(loc, f"low ({body.low}) must be below high ({body.high}); swap them")
        if kind == "loguniform" and low <= 0:
            scenario.fail(loc + ("low",), "loguniform needs low > 0; use uniform to include zero")
        if kind == "isotropic" and not -90.0 <= low < high <= 90.0:
            scenario.fail(loc, "isotropic declinations must lie within [-90, 90] deg")
        return {"uniform": dist.Uniform, "loguniform": dist.LogUniform, "isotropic": dist.Isotropic}[kind](low, high)
    if kind == "normal":
        sigma = q(body.sigma, "sigma")
        if not sigma > 0:
            scenario.fail(loc + ("sigma",), "sigma must be > 0; use a fixed value for no spread")
        return dist.Normal(q(body.mean, "mean"), sigma)
    if kind == "lognormal":
        median = q(body.median, "median")
        if not median > 0:
            scenario.fail(loc + ("median",), "a lognormal median must be > 0")
        return dist.LogNormal(np.log(median), body.sigma)
    if kind == "truncated":
        bases = [name for name in ("normal", "lognormal") if getattr(body, name) is not None]
        if len(bases) != 1:
            scenario.fail(loc, "truncated takes exactly one of normal: {...} or lognormal: {...}, plus low/high")
        base = _sampler(scenario, spec, getattr(body, bases[0]), loc)
        low = None if body.low is None else q(body.low, "low")
        high = None if body.high is None else q(body.high, "high")
        if low is None and high is None:
            scenario.fail(loc, "truncated needs low, high or both")
        if low is not None and high is not None and not low < high:
            scenario.fail(loc, f"low ({body.low}) must be below high ({body.high}); swap them")
        if bases[0] == "lognormal" and low is not None and low <= 0:
            scenario.fail(loc + ("low",), "a truncated lognormal needs low > 0 (or no low)")
        truncated = dist.Truncated(base, low, high)
        if not truncated.a < truncated.b or min(abs(truncated.a), abs(truncated.b)) > 30 and truncated.a * truncated.b > 0:
            scenario.fail(loc, "the truncation interval holds (almost) none of the distribution's probability")
        return truncated
    if kind == "choice":
        values = [_scalar(scenario, spec, value, loc + ("values", index)) for index, value in enumerate(body.values)]
        if body.weights is not None:
            if len(body.weights) != len(values) or not 0 < sum(body.weights) < math.inf:
                scenario.fail(loc + ("weights",), f"give {len(values)} finite non-negative weights, not all zero")
        return dist.Choice(values, body.weights)
    if kind == "main_sequence":
        scatter = q(body.scatter, "scatter", u.dex)
        if scatter < 0:
            scenario.fail(loc + ("scatter",), "scatter must be >= 0 dex")
        return dist.MainSequence(scatter)
    if kind == "reddening":
        rate = q(body.mag_per_kpc, "mag_per_kpc", u.mag / u.kpc)
        height, bubble = q(body.scale_height, "scale_height", u.pc), q(body.bubble_radius, "bubble_radius", u.pc)
        if not (0 <= rate <= 10 and height > 0 and bubble >= 0):
            scenario.fail(loc, "need 0 <= mag_per_kpc <= 10, scale_height > 0 pc, bubble_radius >= 0 pc")
        return dist.Reddening(rate, height, bubble, body.scatter)
    if kind == "distance_modulus":
        scatter = q(body.scatter, "scatter", u.mag)
        if scatter < 0:
            scenario.fail(loc + ("scatter",), "scatter must be >= 0 mag")
        return dist.DistanceModulus(scatter)
    if kind == "galactic_kinematics":
        mean = [q(v, "mean_uvw", u.km / u.s) for v in body.mean_uvw]
        sigma = [q(v, "sigma_uvw", u.km / u.s) for v in body.sigma_uvw]
        if min(sigma) < 0:
            scenario.fail(loc + ("sigma_uvw",), "velocity dispersions must be >= 0 km/s")
        return dist.GalacticKinematics(mean, sigma)
    raise AssertionError(kind)


def _parameters(scenario, plan):
    population = scenario.model.population
    given = {}
    for level, section in ((TARGET, "per_target"), (EPOCH, "per_epoch")):
        for name, body in getattr(population, section).items():
            location = ("population", section, name)
            spec = PARAMETERS.get(name)
            if spec is None:
                why = f"{name!r} is derived, never drawn" if name in DERIVED else f"unknown parameter {name!r}"
                scenario.fail(location, why + suggest(name, PARAMETERS, "drawable"))
            if name in given:
                scenario.fail(location, f"{name} is given in both per_target and per_epoch; keep one")
            if level == EPOCH and name in ("ra_deg", "dec_deg", "distance_pc"):
                scenario.fail(location, f"{name} is a property of the target: move it to per_target")
            if level == TARGET and name == "airmass":
                scenario.fail(location, "airmass changes with every observation: move it to per_epoch")
            given[name] = (level, body, location)
    for name, spec in PARAMETERS.items():
        if name in given or spec.optional or name == "airmass":
            continue
        section = "per_target" if spec.level == TARGET else "per_epoch"
        given[name] = (spec.level, _default_spec(name), ("population", section, name))
    for name, (level, body, location) in given.items():
        spec = PARAMETERS[name]
        sampler = _sampler(scenario, spec, body, location)
        if not spec.is_string and not isinstance(sampler, (dist.Reddening, dist.DistanceModulus)):
            _check_range(scenario, spec, sampler.bounds(), location)
        plan.samplers[name], plan.levels[name], plan.locations[name] = sampler, level, location
    plan.airmass_given = "airmass" in plan.samplers


_SPEC_ADAPTER = TypeAdapter(dist.DistributionSpec)


def _default_spec(name):
    return _SPEC_ADAPTER.validate_python(DEFAULT_DISTRIBUTIONS[name])


def _design(scenario, plan):
    design = scenario.model.design
    if design.kind == "factorial":
        for name, levels in design.factors.items():
            location = ("design", "factors", name)
            spec = PARAMETERS.get(name)
            if spec is None:
                scenario.fail(location, f"{name!r} cannot be a factor"
                              + suggest(name, PARAMETERS, "drawable parameters"))
            if name in scenario.model.population.per_target or name in scenario.model.population.per_epoch:
                scenario.fail(location, f"{name} is a factor and also has a distribution in population; remove one")
            values = [_scalar(scenario, spec, value, location + (index,)) for index, value in enumerate(levels)]
            if len(set(values)) != len(values):
                scenario.fail(location, f"{name} levels repeat; list each level once")
            if not spec.is_string:
                _check_range(scenario, spec, (min(values), max(values)), location, what="levels")
            plan.factors[name] = values
            if name not in plan.levels:
                plan.levels[name] = spec.level
            plan.samplers.pop(name, None)
            plan.locations[name] = location
        plan.airmass_given = plan.airmass_given or "airmass" in plan.factors
    if design.kind == "paired":
        location = ("design", "factor")
        name = design.factor
        if name != "mjd_utc" and name not in PARAMETERS:
            scenario.fail(location, f"{name!r} cannot be a paired factor"
                          + suggest(name, ["mjd_utc", *PARAMETERS], "mjd_utc or a drawable parameter"))
        if name != "mjd_utc" and name not in plan.samplers:
            scenario.fail(location, f"{name} is not part of this population; give it a distribution first")
        if (design.values is None) == (design.deltas is None):
            scenario.fail(("design",), "a paired design takes exactly one of values: [...] or deltas: [...]")
        is_string = name != "mjd_utc" and PARAMETERS[name].is_string
        key = "values" if design.values is not None else "deltas"
        raw = design.values if design.values is not None else design.deltas
        if key == "deltas" and is_string:
            scenario.fail(("design", "deltas"), f"{name} is a string parameter: use values, not deltas")
        parsed = []
        for index, value in enumerate(raw):
            location = ("design", key, index)
            try:
                if name == "mjd_utc":
                    parsed.append(_date_to_mjd(value, "mjd_utc value") if key == "values"
                                  else _finite_quantity(value, u.d, "mjd_utc delta"))
                elif key == "values":
                    parsed.append(_scalar(scenario, PARAMETERS[name], value, location))
                else:
                    parsed.append(_finite_quantity(value, PARAMETERS[name].unit, f"{name} delta"))
            except ValueError as exc:
                scenario.fail(location, str(exc))
        if name != "mjd_utc" and key == "values" and not is_string:
            _check_range(scenario, PARAMETERS[name], (min(parsed), max(parsed)), ("design", key), what="values")
        if name == "mjd_utc":
            _check_paired_dates(scenario, plan, key, parsed)
        if key == "values":
            plan.paired_values = parsed
        else:
            plan.paired_deltas = parsed


def _check_paired_dates(scenario, plan, key, parsed):
    """Paired mjd_utc variants (values, or observing.dates shifted by the deltas) inside MJD_RANGE."""
    start, stop = plan.dates_mjd
    low, high = (min(parsed), max(parsed)) if key == "values" else (start + min(parsed), stop + max(parsed))
    if low < MJD_RANGE[0] or high > MJD_RANGE[1]:
        scenario.fail(("design", key), f"paired mjd_utc variants reach MJD {low:.6g} to {high:.6g}, outside MJD "
                      f"{MJD_RANGE[0]:.0f} to {MJD_RANGE[1]:.0f}; use smaller {key}")


def _consistency(scenario, plan):
    """Cross-parameter checks: relation inputs, main-sequence Teff span, airmass limits, fibre era vs dates."""
    max_airmass = scenario.model.observing.max_airmass
    for name, sampler in plan.samplers.items():
        for need in sampler.needs:
            if need not in plan.samplers and need not in plan.factors:
                scenario.fail(plan.locations[name], f"{name} uses {type(sampler).__name__.lower()}, which needs "
                              f"{need}: add population.per_target.{need}")
            if plan.levels[name] == TARGET and plan.levels[need] == EPOCH:
                scenario.fail(plan.locations[name], f"{name} is drawn per target but depends on {need}, drawn per "
                              "epoch: move one of them")
    teff_low, teff_high = _numeric_span(plan, "teff_k")
    uses_teff = [n for n, s in plan.samplers.items() if isinstance(s, (dist.MainSequence, dist.DistanceModulus))]
    lo, hi = MAIN_SEQUENCE_TEFF_RANGE_K
    if uses_teff and (teff_low < lo or teff_high > hi):
        scenario.fail(plan.locations[uses_teff[0]], f"the main-sequence relation covers teff_k {lo:.0f}-{hi:.0f} K "
                      f"but teff_k reaches {teff_low:.0f}-{teff_high:.0f} K; narrow teff_k or draw "
                      f"{uses_teff[0]} from a distribution")
    if plan.airmass_given:
        low, high = _numeric_span(plan, "airmass")
        if high > max_airmass:
            scenario.fail(plan.locations["airmass"], f"airmass reaches {high:g}, above observing.max_airmass "
                          f"{max_airmass:g}; raise max_airmass or lower the airmass values")
    reach = _numeric_span(plan, "airmass")[1] if plan.airmass_given else max_airmass
    site = SITES[_site_key(scenario.model.instrument.site)]
    zenith_max = np.degrees(np.arccos(1.0 / reach))
    dec_low, dec_high = _numeric_span(plan, "dec_deg")
    allowed = (max(-90.0, site["lat_deg"] - zenith_max), min(90.0, site["lat_deg"] + zenith_max))
    if dec_low < allowed[0] - 1e-9 or dec_high > allowed[1] + 1e-9:
        scenario.fail(plan.locations["dec_deg"], f"dec_deg spans {dec_low:g} to {dec_high:g} deg, but from "
                      f"{scenario.model.instrument.site} (latitude {site['lat_deg']:g} deg) only declinations "
                      f"{allowed[0]:.1f} to {allowed[1]:.1f} deg reach airmass {reach:g}; narrow dec_deg")
    start, stop = plan.dates_mjd
    eras = _string_values(plan, "fibre_era")
    for era in eras:
        if era == "auto":
            if stop > FIBRE_UPGRADE_MJD and "post2015" not in SIMULATED_FIBRE_ERAS:
                scenario.fail(plan.locations["fibre_era"], "fibre_era auto gives post2015 observations after "
                              "2015-06-01, and the chain simulates only pre2015 (the 2003 order layout and blaze): "
                              "end observing.dates before 2015-06-01 or use fibre_era: pre2015")
            continue
        if era not in SIMULATED_FIBRE_ERAS:
            scenario.fail(plan.locations["fibre_era"], f"fibre_era {era} is not simulated yet (the chain has the "
                          f"2003 order layout and blaze only): use {', '.join(SIMULATED_FIBRE_ERAS)}")
        era_start, era_stop = ERA_WINDOWS_MJD[era]
        if max(start, era_start) >= min(stop, era_stop):
            scenario.fail(plan.locations["fibre_era"], f"fibre_era {era} does not overlap observing.dates "
                          f"(MJD {start:.0f}-{stop:.0f}; upgrade at MJD {FIBRE_UPGRADE_MJD:.0f} = 2015-06-01): "
                          "change the dates or use fibre_era: auto")


def _numeric_span(plan, name):
    if name in plan.factors:
        return min(plan.factors[name]), max(plan.factors[name])
    low, high = plan.samplers[name].bounds()
    return low, high


def _string_values(plan, name):
    if name in plan.factors:
        return set(plan.factors[name])
    sampler = plan.samplers[name]
    return {sampler.value} if isinstance(sampler, dist.Fixed) else set(sampler.values)
