"""JSON text, hashes, atomic file writes and the package versions that datasets and runs record."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

TEMP_PREFIX = ".partial-"
"""Name prefix of the temporary files ``atomic_write_bytes`` writes before renaming them."""


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
    temp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")
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


def package_versions():
    """Versions of Python, simharps, zlib, numpy, scipy and astropy (None where a package is not installed)."""
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
