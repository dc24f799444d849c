"""Datasets: the on-disk format shared by simulated and real sets, its reader, and the generation runner.

See ``simharps.dataset.store`` for the format and ``simharps.dataset.runner`` for generation; docs/dataset.md
explains the choices.

Example
-------
>>> from simharps.dataset import open_dataset
>>> ds = open_dataset("datasets/quickstart")            # doctest: +SKIP
>>> ds.table["teff_k"], ds.wavelength_air_aa, ds.flux[0:10]   # doctest: +SKIP
"""

from simharps.dataset.channels import Channels
from simharps.dataset.runner import generate, spectrum_seeds
from simharps.dataset.store import (ArrayView, Dataset, DatasetBatch, DatasetError, DatasetWriter, Encoding,
                                    open_dataset, write_dataset, write_json)

__all__ = ["ArrayView", "Channels", "Dataset", "DatasetBatch", "DatasetError", "DatasetWriter", "Encoding",
           "generate", "open_dataset", "spectrum_seeds", "write_dataset", "write_json"]
