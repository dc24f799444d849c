"""Datasets: the on-disk format shared by simulated and real sets, its reader, and the generation runner.

Modules: ``layout`` (the directory and chunk-file format), ``codec`` (float16/float32 array storage), ``table``
(the per-spectrum table), ``jsonio`` (JSON, hashes, atomic writes), ``writer``, ``reader``, ``runner``
(generation) and ``channels``; docs/dataset.md explains the choices.

Example
-------
>>> from simharps.dataset import open_dataset
>>> ds = open_dataset("datasets/quickstart")            # doctest: +SKIP
>>> ds.table["teff_k"], ds.wavelength_air_aa, ds.flux[0:10]   # doctest: +SKIP
"""

from simharps.dataset.channels import Channels
from simharps.dataset.codec import Encoding
from simharps.dataset.jsonio import write_json
from simharps.dataset.layout import DatasetError
from simharps.dataset.reader import ArrayView, Dataset, DatasetBatch, open_dataset
from simharps.dataset.runner import generate, spectrum_seeds
from simharps.dataset.writer import DatasetWriter, write_dataset

__all__ = ["ArrayView", "Channels", "Dataset", "DatasetBatch", "DatasetError", "DatasetWriter", "Encoding",
           "generate", "open_dataset", "spectrum_seeds", "write_dataset", "write_json"]
