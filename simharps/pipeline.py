"""Scenario or archive files in, dataset out: the glue behind ``simharps simulate`` and ``simharps ingest``.

``simulate_scenario`` turns a scenario's population into forward-model calls (one seed per row, keyed by target,
epoch and variant through ``simharps.scenario.spectrum_seed``) and writes the dataset with
``simharps.dataset.generate``; a scenario whose source is real data is ingested instead. ``ingest_paths`` reads
archive products with ``simharps.ingest.prepare_files`` (in memory: fine for thousands of files; the archive's
275,000 need the streaming path, see docs/ingest.md) and writes them in the same dataset format.

Example
-------
>>> from simharps.scenario import load_scenario
>>> from simharps.pipeline import simulate_scenario
>>> dataset = simulate_scenario(load_scenario("scenarios/ci.yaml"), "runs/ci")
"""

from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from simharps.chain import STAGE_NAMES, enabled_stages
from simharps.dataset import Channels, generate, write_dataset
from simharps.errors import ParameterError, SimharpsError
from simharps.forward import Simulator, default_simulator, resolve_parameters
from simharps.ingest import prepare_files
from simharps.parameters import DEFAULTS
from simharps.scenario import sample_population, spectrum_seed
from simharps.stellar.model import GridStellarModel

CHUNK_SIZE = 16
"""Spectra per chunk file and per forward-model batch."""


def _plain(value):
    """A table cell as a JSON-able Python value (units dropped: columns are in the contract's units)."""
    value = getattr(value, "value", value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def population_rows(scenario):
    """The scenario's population as forward-model parameter dicts, each with its ``seed_key``."""
    table = sample_population(scenario)
    rows = []
    for row in table:
        params = {name: _plain(row[name]) for name in table.colnames}
        params["seed_key"] = list(spectrum_seed(scenario, row).spawn_key)
        rows.append(params)
    return rows


def _channels(scenario):
    if scenario.subsample is None:
        return None
    start, stop = scenario.window_aa
    return Channels(start_aa=start, stop_aa=stop, n_channels=scenario.subsample.channels,
                    method=scenario.subsample.method)


def simulate_dataset_batch(rows, seeds, stellar_model="builtin", **options):
    """``Simulator.simulate_batch`` with no-data bins as NaN, the dataset convention of real and simulated sets.

    ``stellar_model``: ``"builtin"`` or ``"phoenix:DIRECTORY"`` (plain text, so that it enters the dataset
    fingerprint; the simulator is built once per process). The products themselves keep the archive's zeros where no
    order reaches (the CCD gap, the ends); a dataset marks them NaN in ``flux`` and ``error`` exactly as ingest does
    for real products.
    """
    batch = _simulator(stellar_model).simulate_batch(rows, seeds, **options)
    no_data = batch.error == 0
    batch.flux[no_data] = np.nan
    batch.error[no_data] = np.nan
    return batch


def _check_simulable(scenario, rows, stages):
    """Fail before any work when the forward model cannot simulate the scenario's stages or one of its rows."""
    try:
        enabled_stages(stages)
        for index, row in enumerate(rows):
            try:
                resolve_parameters(row)
            except ParameterError as problem:
                raise ParameterError(f"population row {index} ({row.get('target_id')}, epoch {row.get('epoch')}): "
                                     f"{problem}") from problem
    except ParameterError as problem:
        raise SimharpsError(f"{scenario.path}: {problem}") from problem


def stellar_model_spec(scenario):
    """The scenario's stellar model as text: ``"builtin"``, or ``"phoenix:DIRECTORY"`` (``phoenix_dir`` resolved
    against the scenario file's folder)."""
    if scenario.model.stellar_model == "builtin":
        return "builtin"
    directory = Path(scenario.model.phoenix_dir)
    if not directory.is_absolute() and scenario.path is not None:
        directory = scenario.path.resolve().parent / directory
    return f"phoenix:{directory}"


@lru_cache(maxsize=2)
def _simulator(spec):
    """The simulator of a stellar-model spec (``stellar_model_spec``); ParameterError for a bad grid directory."""
    if spec == "builtin":
        return default_simulator()
    return Simulator(GridStellarModel.phoenix(spec.partition(":")[2]))


def simulate_scenario(scenario, out_dir, *, workers=1, scheduler=None, progress=True, overwrite=False):
    """Simulate (or, for a real-data source, ingest) ``scenario`` into the dataset directory ``out_dir``."""
    manifest_extra = {"scenario_name": scenario.name, "scenario_settings": scenario.to_dict(),
                      "analysis": scenario.analysis, "regression": scenario.regression}
    if scenario.kind == "real":
        return ingest_paths(scenario.source_paths(), out_dir, workers=workers, progress=progress,
                            overwrite=overwrite, manifest_extra=manifest_extra)
    stages = {name: name in scenario.stages for name in STAGE_NAMES}
    rows = population_rows(scenario)
    _check_simulable(scenario, rows, stages)
    scenario.check_disk(out_dir)
    spec = stellar_model_spec(scenario)
    try:
        model = _simulator(spec).stellar_model
    except ParameterError as problem:
        raise SimharpsError(f"{scenario.path}: phoenix_dir: {problem}") from problem
    stars = [tuple({**DEFAULTS, **row}[name] for name in ("teff_k", "logg_cgs", "mh_dex")) for row in rows]
    model.prepare(stars, workers=workers, progress=progress)
    model_option = {} if spec == "builtin" else {"stellar_model": spec}   # builtin: the fingerprint of older sets
    simulate = partial(simulate_dataset_batch, components=scenario.components, stages=stages,
                       window=scenario.window_aa, **model_option)
    return generate(rows, scenario.seed, out_dir, simulate, chunk_size=CHUNK_SIZE,
                    workers=workers, scheduler=scheduler, channels=_channels(scenario), progress=progress,
                    scenario_text=scenario.text, manifest_extra=manifest_extra, overwrite=overwrite)


def ingest_paths(paths, out_dir, *, workers=1, progress=True, overwrite=False, labels_csv=None,
                 manifest_extra=None):
    """Ingest archive files and folders into a dataset; the manifest lists the rejected files (``rejected``, with
    duplicates of identical content) and the paths skipped as naming a file already listed (``skipped``), with
    reasons. Each file is ingested once."""
    result = prepare_files(paths, labels_csv=labels_csv, workers=workers,
                           progress=None if progress else False)  # None: a bar only when stderr is a terminal
    if not result.rows:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in result.rejected) or "no FITS files found"
        raise SimharpsError(f"nothing to ingest ({reasons})")
    arrays = {"flux": result.flux, "error": result.error, **result.components}
    extra = {**(manifest_extra or {}),
             "rejected": [{"path": path, "reason": reason} for path, reason in result.rejected],
             "skipped": [{"path": path, "reason": reason} for path, reason in result.skipped]}
    return write_dataset(out_dir, result.wavelength_air_aa, arrays, result.rows, source="real",
                         manifest_extra=extra, overwrite=overwrite)
