"""Real-data ingest: archive FITS files -> dataset rows + arrays on the 0.01 A dataset grid.

* ``prepare_files(paths_or_dirs, *, thresholds, labels_csv, grid, pwv_default_mm, components, ...)`` ->
  ``IngestResult`` (``rows``, ``flux``, ``error``, ``components``, ``wavelength_air_aa``, ``rejected``).
* ``prepare_file(path, config)`` -> ``PreparedSpectrum`` (or raises ``RejectedFile``); ``iter_prepared`` streams
  files (optionally in worker processes); ``finish_rows`` sets ``target_id``/``epoch`` and joins labels.
* Pieces: ``resample`` (lattice placement, flux-conserving resampling), ``noise`` (modelled error), ``telluric``
  (PWV fit, telluric component), ``masks`` (shipped HARPS CCF masks, RV), ``quality`` (file filters),
  ``targets`` (grouping by sky position and name, label join).

See docs/ingest.md for the conventions, assumptions and the numbers measured on the real files.
"""

from simharps.ingest.masks import MASK_NAMES, RVMeasurement, load_ccf_mask, measure_stellar_rv
from simharps.ingest.noise import NoiseModel, modelled_error
from simharps.ingest.prepare import (COMPONENTS, IngestConfig, IngestResult, PreparedSpectrum, expand_paths,
                                     finish_rows, iter_prepared, prepare_file, prepare_files)
from simharps.ingest.quality import QualityReport, QualityThresholds, RejectedFile, assess_spectrum
from simharps.ingest.resample import resample_flux_conserving
from simharps.ingest.targets import assign_targets, join_labels, normalise_name
from simharps.ingest.telluric import PwvFit, fit_pwv, telluric_component

__all__ = [
    "COMPONENTS", "MASK_NAMES", "IngestConfig", "IngestResult", "NoiseModel", "PreparedSpectrum", "PwvFit",
    "QualityReport", "QualityThresholds", "RVMeasurement", "RejectedFile", "assess_spectrum", "assign_targets",
    "expand_paths", "finish_rows", "fit_pwv", "iter_prepared", "join_labels", "load_ccf_mask", "measure_stellar_rv",
    "modelled_error", "normalise_name", "prepare_file", "prepare_files", "resample_flux_conserving",
    "telluric_component",
]
