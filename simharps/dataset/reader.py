"""Reading a dataset directory lazily, chunk by chunk (format: ``simharps.dataset.layout``).

Reading::

    >>> from simharps.dataset import open_dataset
    >>> ds = open_dataset("datasets/quickstart")          # doctest: +SKIP
    >>> ds.table["teff_k"][:3], ds.flux[0:8].shape, len(ds) # doctest: +SKIP
    >>> for batch in ds.iter_batches(256, arrays=("flux", "error")):   # doctest: +SKIP
    ...     batch.table, batch.flux, batch.error
"""

import json
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simharps.dataset.codec import decode_array, unshuffle
from simharps.dataset.layout import (FORMAT, FORMAT_VERSION, MANIFEST_FILE, RUN_FILE, TABLE_FILE, WAVELENGTH_FILE,
                                     DatasetError)
from simharps.dataset.table import read_table


class ArrayView:
    """Lazy (n_spectra, n_channels) float32 array of a dataset: indexing reads only the chunks it needs.

    ``view[i]``, ``view[i0:i1]``, ``view[[i, j, k]]``, ``view[mask]``, ``view[i0:i1, c0:c1]``; ``np.asarray(view)``
    reads everything.
    """

    def __init__(self, dataset, name):
        self._dataset = dataset
        self.name = name

    @property
    def shape(self):
        return (len(self._dataset), self._dataset.n_channels)

    @property
    def dtype(self):
        return np.dtype(np.float32)

    def __len__(self):
        return len(self._dataset)

    def __repr__(self):
        return f"<ArrayView {self.name!r} shape={self.shape} float32>"

    def __array__(self, dtype=None, copy=None):
        values = self[:]
        return values if dtype is None else values.astype(dtype)

    def __getitem__(self, key):
        columns = None
        if isinstance(key, tuple):
            if len(key) > 2:
                raise IndexError(f"{self.name}: at most 2 indices (spectra, channels), got {len(key)}")
            key, columns = key if len(key) == 2 else (key[0], None)
        n = len(self._dataset)
        scalar = isinstance(key, (int, np.integer))
        if scalar:
            if not -n <= key < n:
                raise IndexError(f"{self.name}: spectrum index {key} out of range for {n} spectra")
            indices = np.array([key % n])
        elif isinstance(key, slice):
            indices = np.arange(n)[key]
        else:
            indices = np.asarray(key)
            if indices.dtype == bool:
                if indices.shape != (n,):
                    raise IndexError(f"{self.name}: boolean index needs shape ({n},), got {indices.shape}")
                indices = np.flatnonzero(indices)
            elif indices.dtype.kind not in "iu" or indices.ndim != 1:
                raise IndexError(f"{self.name}: index spectra with an int, a slice, or a 1-D int/bool array")
            if indices.size and (indices.min() < -n or indices.max() >= n):
                raise IndexError(f"{self.name}: spectrum index out of range for {n} spectra")
            indices = indices % n
        pieces = []
        size = self._dataset.chunk_size
        chunks = indices // size
        boundaries = np.flatnonzero(np.diff(chunks)) + 1
        for group in np.split(np.arange(indices.size), boundaries) if indices.size else []:
            chunk = int(chunks[group[0]])
            block = self._dataset.read_chunk(chunk, self.name)
            local = indices[group] - chunk * size
            rows = block[local[0]:local[-1] + 1] if np.all(np.diff(local) == 1) else block[local]
            pieces.append(rows if columns is None else rows[:, columns])
        if not pieces:
            empty = np.empty((0, self._dataset.n_channels), dtype=np.float32)
            return empty if columns is None else empty[:, columns]
        out = np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()
        return out[0] if scalar else out


@dataclass
class DatasetBatch:
    """Spectra ``start``..``stop`` of a dataset: their table rows and arrays (name -> (stop-start, m) float32)."""

    start: int
    stop: int
    table: object
    arrays: dict

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)


class Dataset:
    """A complete dataset directory, read lazily (chunk by chunk).

    Attributes: ``manifest`` (dict), ``table`` (astropy Table, one row per spectrum), ``wavelength_air_aa``,
    ``flux``/``error`` and ``components`` (name -> ``ArrayView``), ``array_names``, ``n_channels``,
    ``chunk_size``; ``len(ds)`` spectra; ``ds["stellar"]`` any array by name; ``iter_batches``.
    """

    _CACHE_CHUNKS = 4

    def __init__(self, path):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.exists():
            reason = ("no manifest.json: generation has not finished (run the same command again to resume)"
                      if (self.path / RUN_FILE).exists() else "no manifest.json: not a simharps dataset")
            raise DatasetError(self.path, reason)
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except ValueError as error:
            raise DatasetError(manifest_path, f"not valid JSON ({error})") from error
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version", 0) > FORMAT_VERSION:
            raise DatasetError(manifest_path, f"not a {FORMAT} manifest of version <= {FORMAT_VERSION}")
        counts = self.manifest["counts"]
        self.n_channels = int(counts["n_channels"])
        self.chunk_size = int(counts["chunk_size"])
        self._n = int(counts["n_spectra"])
        self._cache = OrderedDict()
        self._table = None
        self._wavelength = None

    def __len__(self):
        return self._n

    def __repr__(self):
        return (f"<Dataset {str(self.path)!r}: {self._n} spectra x {self.n_channels} channels, "
                f"arrays {self.array_names}>")

    @property
    def array_names(self):
        return list(self.manifest["arrays"])

    @property
    def table(self):
        if self._table is None:
            self._table = read_table(self.path / TABLE_FILE)
        return self._table

    @property
    def wavelength_air_aa(self):
        if self._wavelength is None:
            self._wavelength = np.load(self.path / WAVELENGTH_FILE, allow_pickle=False)
        return self._wavelength

    @property
    def flux(self):
        return self["flux"]

    @property
    def error(self):
        return self["error"]

    @property
    def components(self):
        return {name: self[name] for name in self.array_names if name not in ("flux", "error")}

    def __getitem__(self, name):
        if name not in self.manifest["arrays"]:
            raise KeyError(f"{self.path}: no array {name!r}; arrays: {self.array_names}")
        return ArrayView(self, name)

    def chunk_bounds(self, chunk):
        entry = self.manifest["chunks"][chunk]
        return entry["start"], entry["stop"]

    def read_chunk(self, chunk, name):
        """Decoded float32 (spectra in chunk, n_channels) array ``name`` of chunk ``chunk`` (cached LRU)."""
        key = (chunk, name)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self.path / self.manifest["chunks"][chunk]["file"]
        start, stop = self.chunk_bounds(chunk)
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("meta.json"))
                info = meta["arrays"].get(name)
                if info is None:
                    values = np.full((stop - start, self.n_channels), np.nan, dtype=np.float32)
                else:
                    stored = unshuffle(archive.read(info["member"]), "<" + np.dtype(info["stored_dtype"]).str[1:],
                                        tuple(info["shape"]))
                    values = decode_array(stored, info["scale_log2"])
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
            raise DatasetError(path, f"unreadable chunk ({error})") from error
        values.setflags(write=False)
        self._cache[key] = values
        while len(self._cache) > self._CACHE_CHUNKS:
            self._cache.popitem(last=False)
        return values

    def iter_batches(self, batch_size=None, arrays=None, start=0, stop=None):
        """Yield ``DatasetBatch`` objects of ``batch_size`` spectra (default: one chunk) from ``start`` to ``stop``."""
        batch_size = batch_size or self.chunk_size
        names = self.array_names if arrays is None else list(arrays)
        stop = self._n if stop is None else min(stop, self._n)
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            yield DatasetBatch(first, last, self.table[first:last],
                               {name: self[name][first:last] for name in names})


def open_dataset(path):
    """Open a complete dataset directory (see ``Dataset``)."""
    return Dataset(path)
