"""The forward chain, in order. This is the one place that lists it.

============ =========== ============ =====================================================================
stage        role        frame        what it does
============ =========== ============ =====================================================================
stellar      source      barycentric  the star (stellar model), broadened, shifted, scaled to V
ism          factor      barycentric  interstellar Na I D / Ca II lines (narrow), dust (smooth)
atmosphere   factor      observatory  telluric O2 + H2O lines (narrow), continuum extinction (smooth)
telescope    factor      observatory  mirrors, ADC, fibre link (smooth)
fibre        factor      observatory  fibre injection efficiency (smooth)
spectrograph factor      observatory  chromatic spectrograph + CCD efficiency relative to order 50 (smooth)
instrument   pixels      pixels       grey efficiency, LSF, order pixels x blaze, merge at the BERV
noise        noise       pixels       photon, dark and read noise, cosmic residuals
============ =========== ============ =====================================================================

Two engines run it: ``simharps.forward.ForwardPlan`` (fast: precomputed lattice, 1 A smooth grid, FFT LSF) and
``simharps.reference.reference_simulate`` (slow, exact composition on a fine grid: the test oracle). Both call the
same stage objects; ``tests/test_chain.py`` compares them with every stage on, all off and each one off in turn.
Adding a stage: docs/contracts.md, "Adding a stage".
"""

from simharps.errors import ParameterError
from simharps.parameters import PARAMETERS
from simharps.stages import (FACTOR, AtmosphereStage, FibreStage, InstrumentStage, InterstellarStage, NoiseStage,
                             SpectrographStage, StellarStage, TelescopeStage)

CHAIN = (
    StellarStage(),
    InterstellarStage(),
    AtmosphereStage(),
    TelescopeStage(),
    FibreStage(),
    SpectrographStage(),
    InstrumentStage(),
    NoiseStage(),
)

STAGE_NAMES = tuple(stage.name for stage in CHAIN)
SWITCHABLE = tuple(stage.name for stage in CHAIN if stage.switchable)
FACTOR_STAGES = tuple(stage for stage in CHAIN if stage.role == FACTOR)


def enabled_stages(stages):
    """Names of the switchable stages that are on. ``stages``: None (all), a mapping name -> bool (unnamed ones stay
    on) or an iterable of the enabled names. ParameterError for an unknown name or for switching off an always-on
    stage."""
    if stages is None:
        return set(SWITCHABLE)
    requested = dict(stages) if isinstance(stages, dict) else {name: True for name in stages}
    unknown = set(requested) - set(STAGE_NAMES)
    if unknown:
        raise ParameterError(f"unknown stage(s) {sorted(unknown)}; the chain is {list(STAGE_NAMES)}")
    off = [stage.name for stage in CHAIN if not stage.switchable and not requested.get(stage.name, True)]
    if off:
        raise ParameterError(f"stage(s) {off} are always simulated and cannot be switched off")
    if isinstance(stages, dict):
        return {name for name in SWITCHABLE if requested.get(name, True)}
    return set(requested) & set(SWITCHABLE)


def active_factors(enabled):
    """The factor stages that are on, in chain order."""
    return [stage for stage in FACTOR_STAGES if stage.name in enabled]


def check_chain():
    """Every parameter a stage reads is in the parameter table (run by the tests)."""
    for stage in CHAIN:
        missing = [name for name in stage.reads if name not in PARAMETERS]
        if missing:
            raise ParameterError(f"stage {stage.name} reads {missing}, which the parameter table lacks")
