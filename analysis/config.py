"""The scenario's ``analysis:`` and ``regression:`` sections: pydantic v2 schema (validated with the rest of the file).

``simharps.scenario`` validates these sections with the models below, so a mistake is reported like any other
scenario error (FILE, line N (key path): reason). Every field has a default, so ``analysis: {}`` is valid and
means "the scenario's own dataset, the ``hits`` recipe, one PCA model"::

    analysis:
      datasets:                          # default: [{name: sim}] = the scenario's own (simulated or ingested) set
        - {name: sim}
        - {name: alfcenb, scenario: real_alfcenb.yaml}   # another scenario's dataset (path relative to this file)
        - {name: mine, path: runs/real}                  # an existing dataset directory
                                                         # train: true on one entry: train on it (default: the first)
      split: {by: target, fractions: [0.7, 0.15, 0.15], seed: 0}       # by: target | night
      preprocessing: {recipe: hits, amplitude: median, frame: barycentric}   # default for every model
      models:
        - {name: pca8, kind: pca, latent_dim: 8}
        - {name: fcae2, kind: fc_ae, latent_dim: 2}
        - {name: ae1d8, kind: ae1d, latent_dim: 8, preprocessing: {recipe: window, start_aa: 6270, n_pixels: 4096}}
      training: {epochs: 30, batch_size: 32, learning_rate: 1.0e-4, device: auto}
      metrics: {ksg_k: 3, n_subsamples: 30}
    regression:
      baseline: ../reports/baselines/ci_regression.json
      tolerances: {default: {abs: 0.05}, mig: {abs: 0.03}}

A model's ``preprocessing`` and ``training`` are merged key by key over the section defaults (``merged_options``).
"""

import difflib
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

Name = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]
PositiveFloat = Annotated[float, Field(gt=0)]


def _suggestion(name, known):
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRef(_Strict):
    """A dataset the models are encoded and evaluated on: the scenario's own (``sim``, no source), another
    scenario's (``scenario``: its YAML file) or an existing dataset directory (``path``)."""

    name: Name
    scenario: Optional[StrictStr] = None
    path: Optional[StrictStr] = None
    train: StrictBool = False

    @model_validator(mode="after")
    def _one_source(self):
        if self.scenario is not None and self.path is not None:
            raise ValueError("give either 'scenario' or 'path', not both")
        return self


class SplitConfig(_Strict):
    """Train / validation / test split by whole targets (``target_id``) or whole nights (La Silla local night)."""

    by: Literal["target", "night"] = "target"
    fractions: Tuple[Annotated[float, Field(gt=0, lt=1)], Annotated[float, Field(ge=0, lt=1)],
                     Annotated[float, Field(ge=0, lt=1)]] = (0.7, 0.15, 0.15)
    seed: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _sum_to_one(self):
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must add up to 1 (got {sum(self.fractions):g})")
        return self


class QualityConfig(_Strict):
    """Spectra failing a threshold are excluded from training and listed with the reason (never dropped silently)."""

    max_nonfinite_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    min_snr_550: Optional[Annotated[float, Field(ge=0)]] = None
    min_median_flux: Optional[float] = None          # the study dropped median flux < 50 (raw units)
    max_flux_jump: Optional[PositiveFloat] = None     # |x[i+1] - x[i]| / median, over valid neighbours


class WhiteningConfig(_Strict):
    """Velocity whitening (Sedaghat et al. 2023): a uniform random shift per spectrum and epoch, after moving to the
    observatory frame; none when encoding."""

    max_kms: Annotated[float, Field(gt=0, le=300)] = 30.0


class PreprocessingConfig(_Strict):
    """Options of ``analysis.preprocess`` (see its docstring for every step and its order)."""

    recipe: Literal["hits", "eso", "window"] = "hits"
    amplitude: Literal["median", "none"] = "median"
    median: Literal["with_masked_zeros", "masked"] = "with_masked_zeros"
    n_channels: Annotated[int, Field(ge=16, le=400_000)] = 11_000       # hits: channels after sub-sampling
    subsample: Literal["bin", "decimate"] = "bin"
    start_aa: Optional[float] = None                                    # window: first channel (A, air)
    n_pixels: Optional[Annotated[int, Field(ge=16, le=400_000)]] = None  # window: length in 0.01 A channels
    frame: Literal["barycentric", "observatory", "stellar"] = "barycentric"
    whitening: Optional[WhiteningConfig] = None
    continuum: StrictBool = False
    continuum_block_aa: Annotated[float, Field(gt=0.5, le=500)] = 20.0
    telluric_mask: Optional[Annotated[float, Field(gt=0, le=1)]] = None  # mask pixels with T below this
    weights: Literal["none", "inverse_variance"] = "none"
    quality: QualityConfig = QualityConfig()

    @model_validator(mode="after")
    def _window_complete(self):
        if self.recipe == "window" and (self.start_aa is None or self.n_pixels is None):
            raise ValueError("recipe 'window' needs start_aa (A) and n_pixels")
        if self.recipe != "window" and (self.start_aa is not None or self.n_pixels is not None):
            raise ValueError(f"start_aa / n_pixels belong to recipe 'window', not {self.recipe!r}")
        if self.whitening is not None and self.frame != "observatory":
            raise ValueError("velocity whitening shifts spectra in the observatory frame: set frame: observatory")
        return self


class EarlyStoppingConfig(_Strict):
    patience: Annotated[int, Field(ge=1)] = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0


class KLConfig(_Strict):
    """KL weight: 0 before ``start`` iterations, rising linearly to ``max_weight`` at ``stop`` (stellar-karaoke)."""

    start: Annotated[int, Field(ge=0)] = 5000
    stop: Annotated[int, Field(ge=0)] = 20000
    max_weight: Annotated[float, Field(ge=0)] = 0.3


class TrainingConfig(_Strict):
    """The one training loop's options (``analysis.train``)."""

    epochs: Annotated[int, Field(ge=1, le=100_000)] = 20
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 32
    learning_rate: PositiveFloat = 1e-4
    schedule: Literal["none", "plateau", "cosine"] = "plateau"
    early_stopping: Optional[EarlyStoppingConfig] = EarlyStoppingConfig()
    seed: Annotated[int, Field(ge=0)] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[Annotated[int, Field(ge=1, le=1024)]] = None
    equal_weight_per_star: StrictBool = False
    kl: KLConfig = KLConfig()
    reconstructions: Annotated[int, Field(ge=0, le=10_000)] = 64     # spectra kept with their reconstruction


class ModelConfig(_Strict):
    """One model: ``kind`` pca | fc_ae | ae1d; options of ``analysis.models.build_model``; optional per-model
    ``preprocessing`` and ``training`` overrides (merged key by key over the section's)."""

    name: Name
    kind: Literal["pca", "fc_ae", "ae1d"]
    latent_dim: Annotated[int, Field(ge=1, le=8192)] = 2
    variational: Optional[StrictBool] = None
    hidden: Optional[List[Annotated[int, Field(ge=1)]]] = None
    incremental: Optional[StrictBool] = None
    init: Optional[Literal["kaiming", "torch"]] = None          # ae1d weight initialisation (analysis.models.ae1d)
    preprocessing: Dict[StrictStr, Any] = Field(default_factory=dict)
    training: Dict[StrictStr, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_valid(self):
        for section, cls in (("preprocessing", PreprocessingConfig), ("training", TrainingConfig)):
            given = getattr(self, section)
            unknown = [key for key in given if key not in cls.model_fields]
            if unknown:
                listed = ", ".join(f"{key!r}{_suggestion(key, cls.model_fields)}" for key in unknown)
                raise ValueError(f"{section}: unknown key(s) {listed}; allowed here: {', '.join(cls.model_fields)}")
            cls.model_validate(given)
        if self.kind == "pca" and (self.variational or self.hidden):
            raise ValueError("pca takes no 'variational' or 'hidden'")
        if self.init is not None and self.kind != "ae1d":
            raise ValueError("'init' is an ae1d option")
        if self.kind == "ae1d" and not 4 <= self.latent_dim <= 8192:
            raise ValueError("ae1d latent_dim must be within 4..8192")
        return self


class MetricsConfig(_Strict):
    """Options passed to ``analysis.metrics.evaluate`` (every convention: docs/metrics.md)."""

    factors: Optional[List[StrictStr]] = None                    # null: every physical factor of the table
    ksg_k: Annotated[int, Field(ge=1, le=50)] = 3
    n_subsamples: Annotated[int, Field(ge=0, le=1000)] = 20      # target-cluster subsamples for intervals
    subsample_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5
    n_permutations: Annotated[int, Field(ge=0, le=1000)] = 20    # permutation null of the KSG MI
    unique_per_star: StrictBool = False
    per_target_weighting: StrictBool = False
    n_folds: Annotated[int, Field(ge=2, le=50)] = 5              # grouped folds of DCI and probes
    bins: Annotated[int, Field(ge=2, le=1000)] = 20              # MIG / modularity discretisation
    study_bins: List[Annotated[int, Field(ge=2, le=10_000)]] = [5, 10, 20, 40, 80, 160]
    informative_mad: Annotated[float, Field(ge=0)] = 0.02
    min_median_flux: float = 50.0                                # the study's cut (raw flux units)
    significance_sigma: Annotated[float, Field(gt=0)] = 4.0
    top_candidates: Annotated[int, Field(ge=1, le=100)] = 4
    seed: Annotated[int, Field(ge=0)] = 0


class AnalysisConfig(_Strict):
    """The validated ``analysis:`` section (see the module docstring)."""

    datasets: List[DatasetRef] = Field(default_factory=lambda: [DatasetRef(name="sim")])
    split: SplitConfig = SplitConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    models: List[ModelConfig] = Field(default_factory=lambda: [ModelConfig(name="pca", kind="pca", latent_dim=8)])
    training: TrainingConfig = TrainingConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _unique_names(self):
        for what, names in (("model", [m.name for m in self.models]), ("dataset", [d.name for d in self.datasets])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what} names must be unique (repeated: {', '.join(duplicates)})")
        if sum(ref.train for ref in self.datasets) > 1:
            raise ValueError("only one dataset can have train: true (the one the models are trained on)")
        return self

    @property
    def training_set(self):
        """Name of the dataset the models are trained on: the one marked ``train: true``, else the first."""
        return next((ref.name for ref in self.datasets if ref.train), self.datasets[0].name)

    def model(self, name):
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no model {name!r} in the analysis section (models: {[m.name for m in self.models]})")


class ToleranceConfig(_Strict):
    """How far a metric may move from its baseline: exactly one of an absolute, a relative difference, or
    ``interval: true`` (the baseline's and the new interval must overlap)."""

    abs: Optional[PositiveFloat] = None
    rel: Optional[PositiveFloat] = None
    interval: Optional[Literal[True]] = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if sum(value is not None for value in (self.abs, self.rel, self.interval)) != 1:
            raise ValueError("a tolerance is exactly one of {abs: A}, {rel: R} or {interval: true}")
        return self


class RegressionConfig(_Strict):
    """The ``regression:`` section: the baseline file and the tolerance of each metric (``default`` for the rest)."""

    baseline: Optional[StrictStr] = None
    tolerances: Dict[StrictStr, ToleranceConfig] = Field(default_factory=dict)


def merged_options(section, overrides, cls):
    """``cls`` validated from the section's model dumped to a dict with ``overrides`` merged over it key by key."""
    data = section.model_dump()
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return cls.model_validate(data)
