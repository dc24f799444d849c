"""The stages of the forward chain, one module each; ``simharps.chain`` lists them in order."""

from simharps.stages.atmosphere import AtmosphereStage
from simharps.stages.base import BARYCENTRIC, FACTOR, NOISE, OBSERVATORY, PIXELS, SOURCE, Prepared, Stage
from simharps.stages.fibre import FibreStage
from simharps.stages.ism import InterstellarStage
from simharps.stages.source import InstrumentStage, NoiseStage, StellarStage
from simharps.stages.spectrograph import SpectrographStage
from simharps.stages.telescope import TelescopeStage

__all__ = ["AtmosphereStage", "BARYCENTRIC", "FACTOR", "FibreStage", "InstrumentStage", "InterstellarStage", "NOISE",
           "NoiseStage", "OBSERVATORY", "PIXELS", "Prepared", "SOURCE", "SpectrographStage", "Stage", "StellarStage",
           "TelescopeStage"]
