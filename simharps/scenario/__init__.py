"""Scenario files (YAML) and population sampling: what to simulate, with which distributions and designs.

Public API
----------
* ``load_scenario(path) -> Scenario``; ``Scenario.from_yaml(text, path=None)``, ``Scenario.from_dict(data)``
* ``Scenario``: ``name``, ``seed``, ``kind`` ('simulated' / 'real'), ``stages``, ``window_aa``,
  ``subsample``, ``components``, ``site``, ``n_spectra``, ``analysis``, ``regression``, ``text``,
  ``path``, ``sha256``, ``to_dict()``, ``source_paths()`` (real data), ``population(targets=None)``
* ``sample_population(scenario, targets=None) -> astropy.table.Table`` (one row per spectrum)
* ``spectrum_seed(scenario, row) -> numpy.random.SeedSequence`` (the forward model's seed for a row)
* ``ScenarioError`` (a ``SimharpsError``): file, line, key path and fix in one message
* ``PARAMETERS``, ``DERIVED``, ``DEFAULT_DISTRIBUTIONS``, ``STAGES``: the vocabulary

See ``docs/scenarios.md`` for the file format.
"""

from simharps.scenario.errors import ScenarioError
from simharps.scenario.parameters import DEFAULT_DISTRIBUTIONS, DERIVED, PARAMETERS
from simharps.scenario.population import sample_population, spectrum_seed
from simharps.scenario.schema import STAGES, Scenario, ScenarioModel, load_scenario

__all__ = [
    "DEFAULT_DISTRIBUTIONS",
    "DERIVED",
    "PARAMETERS",
    "STAGES",
    "Scenario",
    "ScenarioError",
    "ScenarioModel",
    "load_scenario",
    "sample_population",
    "spectrum_seed",
]
