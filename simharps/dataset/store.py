"""The simharps dataset format: a directory that simulated and real sets share, and its reader and writer.

Layout (format version 1)::

    DIR/
      manifest.json           written last: its presence marks a complete dataset
      table.npy               one row per spectrum: numpy structured array (truth or header metadata)
      wavelength_air_aa.npy   (n_channels,) float64, air, A: the stored channels
      chunks/chunk-000000.zip spectra [0, chunk_size), then [chunk_size, 2 chunk_size), ...
      run.json                the generation run that made it (identity for resuming, wall time); not data

A chunk file is a ZIP archive with fixed member timestamps, written whole to a temporary name, flushed and renamed
(``os.replace``, atomic on POSIX), so a chunk is either complete or absent and its bytes depend only on its
content. Members: ``meta.json`` (the chunk's spectrum range, table rows, failures, the stored dtype and
per-spectrum scale of each array, the sha256 of its wavelength grid) and one ``NAME.shuffled`` per array
(``flux``, ``error`` and components such as ``stellar``, ``telluric``, ``response``), deflate-compressed after a
byte shuffle (all first bytes of the values, then all second bytes, ...: the filter blosc and HDF5 use, which
here shrinks float data by ~20 %). An array absent from a chunk (every spectrum of it failed) reads as NaN.

Stored dtypes. float16 (default) keeps 11 significant bits: the rounding error is at most 2^-12 of the value, rms
~1.5e-4 to 2.8e-4 of it, which for flux is 2.1e-4 x S/N of the noise (measured: 0.026 sigma at S/N 123, i.e. a
0.07 % increase of the variance); every dataset records the measured ratio per spectrum in its manifest
(``arrays.flux.rounding_rms_over_error``). Each spectrum's row is first multiplied by a power of two (exact) that
brings its largest finite |value| into [2^14, 2^15), so any flux unit (electrons, erg/s/cm^2/A) fits float16.
Use ``dtypes={"flux": "float32"}`` for lossless flux (S/N per bin above ~1000, or bit-exact comparisons).
Values are decoded to float32.

Reading::

    >>> from simharps.dataset import open_dataset
    >>> ds = open_dataset("datasets/quickstart")          # doctest: +SKIP
    >>> ds.table["teff_k"][:3], ds.flux[0:8].shape, len(ds) # doctest: +SKIP
    >>> for batch in ds.iter_batches(256, arrays=("flux", "error")):   # doctest: +SKIP
    ...     batch.table, batch.flux, batch.error

The decoding recipe needs only numpy and the standard library (see docs/dataset.md).
"""

import hashlib
import io
import json
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simharps.errors import FileFormatError, ParameterError, SimharpsError

FORMAT = "simharps-dataset"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TABLE_FILE = "table.npy"
WAVELENGTH_FILE = "wavelength_air_aa.npy"
RUN_FILE = "run.json"
CHUNK_DIR = "chunks"
DEFAULT_CHUNK_SIZE = 32
STORED_DTYPES = ("float16", "float32")
RESERVED_COLUMNS = ("spectrum_index", "failed")
RESERVED_MANIFEST_KEYS = ("format", "format_version", "fingerprint", "counts", "wavelength", "arrays", "table",
                          "chunks", "failed", "analysis", "regression")

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_FLOAT16_TOP_EXPONENT = 14
_TEMP_PREFIX = ".partial-"


class DatasetError(FileFormatError):
    """A dataset directory is missing, incomplete or inconsistent; the message names the path and the reason."""


def chunk_name(chunk):
    """File name (inside ``chunks/``) of chunk number ``chunk``."""
    return f"chunk-{chunk:06d}.zip"


def sha256_bytes(data):
    """Hex sha256 of a bytes-like object."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(value):
    """Deterministic JSON text (sorted keys, numpy scalars as Python numbers) used for hashes and chunk metadata."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_json(path, value):
    """Write ``value`` as indented JSON (numpy scalars and arrays as Python values) with ``atomic_write_bytes``."""
    atomic_write_bytes(path, (json.dumps(value, indent=1, default=_json_default) + "\n").encode())


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file (temp name, fsync, rename)."""
    path = Path(path)
    temp = path.with_name(f"{_TEMP_PREFIX}{os.getpid()}-{path.name}")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Table rows and columns


def table_value(value, key="value"):
    """A truth/metadata value as a table cell: bool, int, float, str or None (missing).

    Sequences of scalars become comma-joined text (e.g. the forward model's ``stages``); mappings become sorted JSON.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        return ",".join(str(table_value(item, key)) for item in value)
    if isinstance(value, dict):
        return canonical_json(value)
    raise SimharpsError(f"table column {key!r}: unsupported value type {type(value).__name__} "
                        "(use numbers, strings, booleans or 1-D sequences)")


def normalise_row(row):
    """A mapping with every value made a table cell (see ``table_value``); keys must be strings."""
    out = {}
    for key, value in dict(row).items():
        if not isinstance(key, str):
            raise SimharpsError(f"table column names must be strings, got {key!r}")
        out[key] = table_value(value, key)
    return out


def _column(values):
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    missing = len(present) < len(values)
    if not present:
        return np.full(len(values), np.nan)
    if kinds == {bool} and not missing:
        return np.array(values, dtype=bool)
    if kinds == {int} and not missing:
        return np.array(values, dtype="<i8")
    if kinds <= {int, float}:
        return np.array([np.nan if v is None else float(v) for v in values], dtype="<f8")
    text = ["" if v is None else str(v) for v in values]
    width = max(1, max(len(t) for t in text))
    return np.array(text, dtype=f"<U{width}")


def build_table(rows, failed_indices=()):
    """Structured array with ``spectrum_index``, ``failed`` and one column per key (first-seen order).

    Column types: bool, int64 (all present and integer), float64 (numbers; missing -> NaN; also a column that
    is missing everywhere) or unicode text (anything else; missing -> "").
    """
    rows = [normalise_row(row) for row in rows]
    names = []
    for row in rows:
        for key in row:
            if key in RESERVED_COLUMNS:
                raise SimharpsError(f"table column {key!r} is reserved by the dataset format")
            if key not in names:
                names.append(key)
    failed = np.zeros(len(rows), dtype=bool)
    failed[list(failed_indices)] = True
    columns = {"spectrum_index": np.arange(len(rows), dtype="<i8"), "failed": failed}
    for name in names:
        columns[name] = _column([row.get(name) for row in rows])
    table = np.zeros(len(rows), dtype=[(name, column.dtype) for name, column in columns.items()])
    for name, column in columns.items():
        table[name] = column
    return table


# ---------------------------------------------------------------------------------------------------------------
# Array encoding


@dataclass(frozen=True)
class Encoding:
    """How arrays are stored: dtype per array name (``default`` for the rest) and the deflate level."""

    dtypes: dict = field(default_factory=dict)
    default: str = "float16"
    compresslevel: int = 1

    def __post_init__(self):
        for name, dtype in {**self.dtypes, "default": self.default}.items():
            if dtype not in STORED_DTYPES:
                raise ParameterError(f"dtypes[{name!r}] must be one of {STORED_DTYPES}, got {dtype!r}")
        if not 0 <= self.compresslevel <= 9:
            raise ParameterError(f"compresslevel must be in 0..9, got {self.compresslevel}")

    def dtype_for(self, name):
        """Stored dtype name of array ``name``."""
        return self.dtypes.get(name, self.default)

    def to_dict(self):
        """JSON-ready description (part of the dataset's fingerprint)."""
        return {"dtypes": dict(sorted(self.dtypes.items())), "default": self.default,
                "compresslevel": self.compresslevel}


def _shuffle(array):
    array = np.ascontiguousarray(array)
    return np.ascontiguousarray(array.view(np.uint8).reshape(-1, array.dtype.itemsize).T).tobytes()


def _unshuffle(data, dtype, shape):
    dtype = np.dtype(dtype)
    planes = np.frombuffer(data, dtype=np.uint8).reshape(dtype.itemsize, -1)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(shape)


def _scale_exponents(array):
    """Per-row power of two that puts the row's largest finite |value| in [2^14, 2^15) (0 for empty rows)."""
    magnitude = np.where(np.isfinite(array), np.abs(array), 0.0).max(axis=1, initial=0.0)
    exponents = np.zeros(array.shape[0], dtype=np.int64)
    positive = magnitude > 0
    exponents[positive] = np.floor(np.log2(magnitude[positive])).astype(np.int64) - _FLOAT16_TOP_EXPONENT
    return np.clip(exponents, -100, 100)


def encode_array(array, stored_dtype):
    """(stored array, per-row scale exponents or None) for a float32 (n, m) array."""
    array = np.asarray(array, dtype=np.float32)
    if stored_dtype == "float32":
        return array.astype("<f4"), None
    exponents = _scale_exponents(array)
    scaled = array * np.exp2(-exponents).astype(np.float32)[:, None]
    return scaled.astype("<f2"), exponents


def decode_array(stored, exponents):
    """float32 values of a stored array (inverse of ``encode_array`` up to float16 rounding)."""
    values = stored.astype(np.float32)
    if exponents is not None:
        values *= np.exp2(np.asarray(exponents)).astype(np.float32)[:, None]
    return values


def _rounding_stats(name, original, decoded, error):
    """Per-spectrum rounding error: flux -> rms of (decoded - x) / error; error -> max |decoded - x| / x."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "error":
            ratio = np.abs(decoded - original) / original
        else:
            ratio = (decoded - original) / error
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)
    out = []
    for row in ratio:
        finite = row[np.isfinite(row)]
        if finite.size == 0:
            out.append(None)
        elif name == "error":
            out.append(float(finite.max()))
        else:
            out.append(float(np.sqrt(np.mean(finite.astype(np.float64) ** 2))))
    return out


def encode_chunk(*, fingerprint, chunk, start, wavelength_air_aa, arrays, rows, failed, encoding):
    """Bytes of one chunk file (deterministic: same inputs, same bytes).

    ``arrays``: name -> (n, m) float arrays (may be empty when every spectrum failed and no grid is known);
    ``rows``: n table rows; ``failed``: [(global index, reason)].
    """
    n = len(rows)
    members = []
    array_meta = {}
    rounding = {}
    for name in sorted(arrays):
        values = np.asarray(arrays[name], dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != n:
            raise SimharpsError(f"array {name!r} has shape {values.shape}, expected ({n}, n_channels)")
        stored_dtype = encoding.dtype_for(name)
        stored, exponents = encode_array(values, stored_dtype)
        member = f"{name}.shuffled"
        members.append((member, _shuffle(stored)))
        array_meta[name] = {"member": member, "stored_dtype": stored_dtype, "shape": list(values.shape),
                            "scale_log2": None if exponents is None else exponents.tolist()}
        if stored_dtype == "float16" and name in ("flux", "error") and "error" in arrays:
            error = np.asarray(arrays["error"], dtype=np.float32)
            rounding[name] = _rounding_stats(name, values, decode_array(stored, exponents), error)
    wavelength_sha256 = None
    if wavelength_air_aa is not None:
        wavelength_sha256 = sha256_bytes(np.ascontiguousarray(wavelength_air_aa, dtype="<f8").tobytes())
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": fingerprint, "chunk": chunk,
        "start": start, "stop": start + n, "wavelength_sha256": wavelength_sha256,
        "n_channels": None if wavelength_air_aa is None else int(np.size(wavelength_air_aa)),
        "arrays": array_meta, "rows": [normalise_row(row) for row in rows],
        "failed": [[int(index), str(reason)] for index, reason in failed], "rounding": rounding,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in [("meta.json", canonical_json(meta).encode())] + members:
            info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=encoding.compresslevel)
    return buffer.getvalue()


def read_chunk_meta(path):
    """The ``meta.json`` of a chunk file; raises zipfile.BadZipFile/KeyError/ValueError when it is not readable."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("meta.json"))


# ---------------------------------------------------------------------------------------------------------------
# Writer


def package_versions():
    import importlib.metadata
    import platform
    import zlib

    import simharps

    out = {"python": platform.python_version(), "simharps": simharps.__version__,
           "zlib": zlib.ZLIB_RUNTIME_VERSION}
    for package in ("numpy", "scipy", "astropy"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def describe_grid(wavelength_air_aa, channels=None):
    """Manifest description of the stored wavelengths: start, stop, n, uniform step (or None), 0.01 A lattice."""
    wave = np.asarray(wavelength_air_aa, dtype=np.float64)
    step = None
    if wave.size > 1:
        diffs = np.diff(wave)
        if np.all(np.abs(diffs - diffs.mean()) < 1e-6 * abs(diffs.mean())):
            step = round(float(diffs.mean()), 9)
    on_lattice = bool(np.all(np.abs(wave / 0.01 - np.rint(wave / 0.01)) < 1e-6))
    return {"frame": "air", "unit": "Angstrom", "file": WAVELENGTH_FILE, "start_aa": float(wave[0]),
            "stop_aa": float(wave[-1]), "n": int(wave.size), "step_aa": step, "on_0p01_lattice": on_lattice,
            "channels": channels}


class DatasetWriter:
    """Writes a dataset directory chunk by chunk; safe to interrupt and resume (see ``begin``).

    Only this writer's own files are ever removed (``overwrite=True`` clears a previous simharps dataset,
    never a foreign directory).
    """

    def __init__(self, path, n_spectra, chunk_size=DEFAULT_CHUNK_SIZE):
        if int(n_spectra) != n_spectra or n_spectra < 1:
            raise ParameterError(f"a dataset needs at least one spectrum, got n_spectra={n_spectra}")
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ParameterError(f"chunk_size must be an integer >= 1, got {chunk_size}")
        self.path = Path(path)
        self.n_spectra = int(n_spectra)
        self.chunk_size = int(chunk_size)
        self.n_chunks = -(-self.n_spectra // self.chunk_size)
        self.fingerprint = None

    def bounds(self, chunk):
        """(start, stop) spectrum indices of a chunk."""
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.n_spectra)

    def chunk_path(self, chunk):
        return self.path / CHUNK_DIR / chunk_name(chunk)

    def begin(self, fingerprint, *, overwrite=False, run_info=None):
        """Prepare the directory for the dataset ``fingerprint``; returns "complete", "resume" or "new".

        A directory holding another simharps dataset (other fingerprint) raises DatasetError unless ``overwrite``;
        a non-empty directory that is not a simharps dataset always raises.
        """
        self.fingerprint = fingerprint
        existing = self._existing_fingerprint()
        if existing is not None and existing != fingerprint:
            if not overwrite:
                raise DatasetError(self.path, "holds a different dataset (other scenario, seed, chunk size, "
                                              "channels or dtypes); choose another directory or overwrite it")
            self.clear()
        elif existing is None and self.path.exists() and any(self.path.iterdir()):
            raise DatasetError(self.path, "is not empty and is not a simharps dataset; choose a new directory")
        if existing == fingerprint and (self.path / MANIFEST_FILE).exists():
            return "complete"
        status = "resume" if existing == fingerprint else "new"
        (self.path / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
        info = {"fingerprint": fingerprint, "n_spectra": self.n_spectra, "chunk_size": self.chunk_size,
                **(run_info or {})}
        atomic_write_bytes(self.path / RUN_FILE, json.dumps(info, indent=1).encode())
        return status

    def _existing_fingerprint(self):
        for name in (MANIFEST_FILE, RUN_FILE):
            path = self.path / name
            if path.exists():
                try:
                    return json.loads(path.read_text())["fingerprint"]
                except (ValueError, KeyError) as error:
                    raise DatasetError(path, f"unreadable ({error}); remove the directory to start afresh") \
                        from error
        return None

    def clear(self):
        """Remove this format's files (manifest, table, wavelength, run record, chunks and temporary files)."""
        for name in (MANIFEST_FILE, TABLE_FILE, WAVELENGTH_FILE, RUN_FILE):
            (self.path / name).unlink(missing_ok=True)
        for path in self.path.glob(f"{_TEMP_PREFIX}*"):
            path.unlink()
        chunks = self.path / CHUNK_DIR
        if chunks.is_dir():
            for path in list(chunks.glob("chunk-*.zip")) + list(chunks.glob(f"{_TEMP_PREFIX}*")):
                path.unlink()
            if not any(chunks.iterdir()):
                chunks.rmdir()

    def completed_chunks(self):
        """Chunk numbers already written for this fingerprint; removes temporary files and unreadable chunks."""
        chunks = self.path / CHUNK_DIR
        for path in chunks.glob(f"{_TEMP_PREFIX}*"):
            path.unlink()
        done = set()
        for chunk in range(self.n_chunks):
            path = self.chunk_path(chunk)
            if not path.exists():
                continue
            try:
                meta = read_chunk_meta(path)
                valid = (meta["fingerprint"] == self.fingerprint and meta["chunk"] == chunk
                         and (meta["start"], meta["stop"]) == self.bounds(chunk))
            except (zipfile.BadZipFile, KeyError, ValueError, OSError):
                valid = False
            if valid:
                done.add(chunk)
            else:
                path.unlink()
        return done

    def put_wavelength(self, wavelength_air_aa):
        """Store the grid once; later calls check that every chunk has the same grid."""
        wave = np.ascontiguousarray(wavelength_air_aa, dtype="<f8")
        path = self.path / WAVELENGTH_FILE
        if path.exists():
            stored = np.load(path, allow_pickle=False)
            if stored.shape != wave.shape or not np.array_equal(stored, wave):
                raise SimharpsError(f"{self.path}: batches returned different wavelength grids "
                                    f"({stored.size} vs {wave.size} channels); simulate_batch must use one grid")
            return
        atomic_write_bytes(path, _npy_bytes(wave))

    def put_chunk(self, chunk, data):
        """Write an encoded chunk atomically."""
        atomic_write_bytes(self.chunk_path(chunk), data)

    def write_chunk(self, chunk, wavelength_air_aa, arrays, rows, failed=(), *, encoding=None):
        """Encode and write chunk ``chunk`` (rows ``bounds(chunk)``); ``failed``: [(global index, reason)]."""
        start, stop = self.bounds(chunk)
        if len(rows) != stop - start:
            raise SimharpsError(f"chunk {chunk} needs {stop - start} rows, got {len(rows)}")
        if wavelength_air_aa is not None:
            self.put_wavelength(wavelength_air_aa)
        self.put_chunk(chunk, encode_chunk(fingerprint=self.fingerprint, chunk=chunk, start=start,
                                           wavelength_air_aa=wavelength_air_aa, arrays=arrays, rows=rows,
                                           failed=failed, encoding=encoding or Encoding()))

    def finalise(self, header=None, manifest_extra=None):
        """Assemble table and manifest from the chunks (all must exist); returns the opened ``Dataset``.

        ``header``: format-level fields (source, seed, scenario, simulator, channels, versions...);
        ``manifest_extra``: free-form sections kept verbatim (``analysis``, ``regression`` and any other key
        not used by the format).
        """
        metas, chunk_entries = [], []
        for chunk in range(self.n_chunks):
            path = self.chunk_path(chunk)
            if not path.exists():
                raise DatasetError(path, "missing: the dataset is incomplete")
            data = path.read_bytes()
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                metas.append(json.loads(archive.read("meta.json")))
            start, stop = self.bounds(chunk)
            chunk_entries.append({"file": f"{CHUNK_DIR}/{chunk_name(chunk)}", "start": start, "stop": stop,
                                  "bytes": len(data), "sha256": sha256_bytes(data)})
        failed = [(index, reason) for meta in metas for index, reason in meta["failed"]]
        wave_path = self.path / WAVELENGTH_FILE
        if not wave_path.exists():
            first = failed[0][1] if failed else "no chunk returned a wavelength grid"
            raise SimharpsError(f"{self.path}: every one of the {self.n_spectra} spectra failed; first reason: "
                                f"{first}")
        wave = np.load(wave_path, allow_pickle=False)
        wave_sha = sha256_bytes(np.ascontiguousarray(wave, dtype="<f8").tobytes())
        arrays = {}
        for meta in metas:
            if meta["wavelength_sha256"] not in (None, wave_sha):
                raise DatasetError(self.chunk_path(meta["chunk"]), "was written on another wavelength grid")
            for name, info in meta["arrays"].items():
                arrays.setdefault(name, info["stored_dtype"])
        for required in ("flux", "error"):
            if required not in arrays:
                raise SimharpsError(f"{self.path}: no chunk holds the required array {required!r}")
        rows = [row for meta in metas for row in meta["rows"]]
        table = build_table(rows, [index for index, _ in failed])
        atomic_write_bytes(self.path / TABLE_FILE, _npy_bytes(table))

        header = dict(header or {})
        extra = dict(manifest_extra or {})
        clash = sorted(set(extra) & set(RESERVED_MANIFEST_KEYS[:-2]) | set(header) & set(RESERVED_MANIFEST_KEYS))
        if clash:
            raise SimharpsError(f"manifest keys {clash} are reserved by the dataset format")
        array_section = {}
        for name in sorted(arrays, key=lambda item: ({"flux": 0, "error": 1}.get(item, 2), item)):
            entry = {"dtype": "float32", "stored_dtype": arrays[name], "shape": [self.n_spectra, int(wave.size)],
                     "filter": "byte-shuffle", "compression": "zip deflate",
                     "scaling": "per-spectrum power of two (scale_log2 in chunk meta)"
                     if arrays[name] == "float16" else None}
            values = [v for meta in metas for v in meta["rounding"].get(name, []) if v is not None]
            if values:
                key = "rounding_max_relative" if name == "error" else "rounding_rms_over_error"
                entry[key] = {"median": float(np.median(values)), "max": float(np.max(values))}
            array_section[name] = entry
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": self.fingerprint,
            **header,
            "counts": {"n_spectra": self.n_spectra, "n_failed": len(failed), "n_channels": int(wave.size),
                       "chunk_size": self.chunk_size, "n_chunks": self.n_chunks},
            "wavelength": describe_grid(wave, header.get("channels")),
            "arrays": array_section,
            "table": {"file": TABLE_FILE, "columns": {name: table.dtype[name].str for name in table.dtype.names}},
            "chunks": chunk_entries,
            "failed": [{"index": int(index), "reason": reason} for index, reason in failed],
            "analysis": extra.pop("analysis", {}),
            "regression": extra.pop("regression", {}),
            **extra,
        }
        write_json(self.path / MANIFEST_FILE, manifest)
        return Dataset(self.path)


def write_dataset(path, wavelength_air_aa, arrays, rows, *, failed=(), chunk_size=DEFAULT_CHUNK_SIZE,
                  dtypes=None, source="real", manifest_extra=None, overwrite=False):
    """Write a whole dataset from arrays in memory (or memory-mapped): the path real-data ingest can use.

    ``arrays``: name -> (n, m) (``flux`` and ``error`` required; ``error`` may be NaN where unknown);
    ``rows``: n metadata mappings; ``failed``: [(index, reason)] of spectra that could not be read (their
    array rows should be NaN). Returns the opened ``Dataset``.
    """
    rows = [dict(row) for row in rows]
    wave = np.asarray(wavelength_air_aa, dtype=np.float64)
    encoding = Encoding(dict(dtypes or {}))
    for name, values in arrays.items():
        if np.shape(values) != (len(rows), wave.size):
            raise SimharpsError(f"array {name!r} has shape {np.shape(values)}, expected ({len(rows)}, {wave.size})")
    writer = DatasetWriter(path, len(rows), chunk_size)
    fingerprint = sha256_bytes(canonical_json({
        "rows": rows, "wavelength": sha256_bytes(wave.tobytes()), "encoding": encoding.to_dict(),
        "chunk_size": chunk_size, "source": source}).encode())
    if writer.begin(fingerprint, overwrite=overwrite) == "complete":
        if not overwrite:
            return Dataset(path)
        writer.clear()
        writer.begin(fingerprint)
    failed = [(int(index), str(reason)) for index, reason in failed]
    for chunk in range(writer.n_chunks):
        start, stop = writer.bounds(chunk)
        writer.write_chunk(chunk, wave, {name: values[start:stop] for name, values in arrays.items()},
                           rows[start:stop], [item for item in failed if start <= item[0] < stop],
                           encoding=encoding)
    header = {"source": source, "versions": package_versions(), "encoding": encoding.to_dict()}
    return writer.finalise(header, manifest_extra)


# ---------------------------------------------------------------------------------------------------------------
# Reader


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
            from astropy.table import Table

            self._table = Table(np.load(self.path / TABLE_FILE, allow_pickle=False))
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
                    stored = _unshuffle(archive.read(info["member"]), "<" + np.dtype(info["stored_dtype"]).str[1:],
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
