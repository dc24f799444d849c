"""Writing a dataset directory chunk by chunk (resumable), and whole datasets from arrays in memory."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from simharps.dataset.codec import Encoding
from simharps.dataset.jsonio import (TEMP_PREFIX, atomic_write_bytes, canonical_json, package_versions, sha256_bytes,
                                     write_json)
from simharps.dataset.layout import (CHUNK_DIR, FORMAT, FORMAT_VERSION, MANIFEST_FILE, RUN_FILE, TABLE_FILE,
                                     WAVELENGTH_FILE, DatasetError, chunk_name, encode_chunk, read_chunk_meta)
from simharps.dataset.reader import Dataset
from simharps.dataset.table import build_table
from simharps.errors import ParameterError, SimharpsError

DEFAULT_CHUNK_SIZE = 32
RESERVED_MANIFEST_KEYS = ("format", "format_version", "fingerprint", "counts", "wavelength", "arrays", "table",
                          "chunks", "failed", "analysis", "regression")


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


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
        for path in self.path.glob(f"{TEMP_PREFIX}*"):
            path.unlink()
        chunks = self.path / CHUNK_DIR
        if chunks.is_dir():
            for path in list(chunks.glob("chunk-*.zip")) + list(chunks.glob(f"{TEMP_PREFIX}*")):
                path.unlink()
            if not any(chunks.iterdir()):
                chunks.rmdir()

    def completed_chunks(self):
        """Chunk numbers already written for this fingerprint; removes temporary files and unreadable chunks."""
        chunks = self.path / CHUNK_DIR
        for path in chunks.glob(f"{TEMP_PREFIX}*"):
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
            metas.append(read_chunk_meta(io.BytesIO(data)))
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
