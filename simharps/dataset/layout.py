"""The simharps dataset format: the directory that simulated and real sets share, and its chunk files.

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
byte shuffle (``simharps.dataset.codec``). An array absent from a chunk (every spectrum of it failed) reads as NaN.

The decoding recipe needs only numpy and the standard library (see docs/dataset.md).
"""

import io
import json
import zipfile

import numpy as np

from simharps.dataset.codec import decode_array, encode_array, rounding_stats, shuffle
from simharps.dataset.jsonio import canonical_json, sha256_bytes
from simharps.dataset.table import normalise_row
from simharps.errors import FileFormatError, SimharpsError

FORMAT = "simharps-dataset"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TABLE_FILE = "table.npy"
WAVELENGTH_FILE = "wavelength_air_aa.npy"
RUN_FILE = "run.json"
CHUNK_DIR = "chunks"

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class DatasetError(FileFormatError):
    """A dataset directory is missing, incomplete or inconsistent; the message names the path and the reason."""


def chunk_name(chunk):
    """File name (inside ``chunks/``) of chunk number ``chunk``."""
    return f"chunk-{chunk:06d}.zip"


def encode_chunk(*, fingerprint, chunk, start, wavelength_air_aa, arrays, rows, failed, encoding):
    """Bytes of one chunk file (deterministic: same inputs, same bytes).

    ``arrays``: name -> (n, m) float arrays (may be empty when every spectrum failed and no grid is known);
    ``rows``: n table rows; ``failed``: [(global index, reason)]; ``encoding``: a ``codec.Encoding``.
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
        members.append((member, shuffle(stored)))
        array_meta[name] = {"member": member, "stored_dtype": stored_dtype, "shape": list(values.shape),
                            "scale_log2": None if exponents is None else exponents.tolist()}
        if stored_dtype == "float16" and name in ("flux", "error") and "error" in arrays:
            error = np.asarray(arrays["error"], dtype=np.float32)
            rounding[name] = rounding_stats(name, values, decode_array(stored, exponents), error)
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
    """The ``meta.json`` of a chunk file (a path or a file object); raises zipfile.BadZipFile/KeyError/ValueError
    when it is not readable."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("meta.json"))
