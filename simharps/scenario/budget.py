"""Size limits of a simulated scenario: population rows, memory for sampling its table, disk for its dataset.

Sampling holds, per population row, its uniforms (``parameters.N_SLOTS`` per target and per
observation), its own random generator, the geometry of the visibility search's candidate times
(``visibility.CANDIDATES_PER_ROUND`` per row and round) and the table's ~30 columns: measured with
``tracemalloc`` (25 parameters, caches warm), the peak is 13.4 kB per row at 4,000 rows and 14.1 kB at
1,000; ``TABLE_BYTES_PER_ROW`` rounds it up (``tests/test_scenario_bad_inputs.py`` keeps it an upper bound). The dataset stores ``flux`` and ``error``
(plus ``COMPONENT_ARRAYS`` truth spectra with ``output.components``) as float16, ``STORED_BYTES_PER_VALUE``
per channel before compression (``simharps.dataset.codec``): an upper bound of the size on disk.
"""

import os
import shutil
from pathlib import Path

MAX_ROWS = 10_000_000
"""Most spectra a scenario may ask for (the HARPS archive holds ~275,000), memory permitting."""

TABLE_BYTES_PER_ROW = 16_000
"""Peak memory of sampling the population table, bytes per row (measured ~13 kB, rounded up)."""

MEMORY_FRACTION = 0.5
"""Largest fraction of the machine's RAM the population table may take."""

STORED_BYTES_PER_VALUE = 2
"""Bytes of one stored channel value before compression (float16, the dataset default)."""

COMPONENT_ARRAYS = 3
"""Truth spectra stored with ``output.components``: stellar, telluric, response (``simharps.forward``)."""


def physical_memory_bytes():
    """Installed RAM of this machine, bytes (None where the operating system does not tell)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def table_bytes(n_rows):
    """Peak memory of sampling a population of ``n_rows`` spectra, bytes."""
    return n_rows * TABLE_BYTES_PER_ROW


def storage_bytes(n_rows, n_channels, components):
    """Uncompressed size of the stored arrays of ``n_rows`` spectra of ``n_channels`` channels, bytes."""
    arrays = 2 + (COMPONENT_ARRAYS if components else 0)
    return n_rows * n_channels * arrays * STORED_BYTES_PER_VALUE


def table_problem(n_rows, memory_bytes):
    """Why ``n_rows`` spectra cannot be sampled with ``memory_bytes`` of RAM (None when they can)."""
    need = table_bytes(n_rows)
    have = "" if memory_bytes is None else f"; this machine has {_gb(memory_bytes)} GB"
    fix = "; lower n_targets or epochs_per_target (or the factor levels / paired variants)"
    if n_rows > MAX_ROWS:
        return (f"population of {n_rows:,} spectra is more than the {MAX_ROWS:,} allowed (the HARPS archive holds "
                f"~275,000) and needs ~{_gb(need)} GB for its table{have}{fix}")
    if memory_bytes is not None and need > MEMORY_FRACTION * memory_bytes:
        return (f"population of {n_rows:,} spectra needs ~{_gb(need)} GB for its table{have} (at most "
                f"{MEMORY_FRACTION:.0%} of it may go to the table){fix}")
    return None


def free_disk_bytes(directory):
    """Free space on the file system that holds ``directory`` (or its nearest existing parent), bytes."""
    path = Path(directory).resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def _gb(n_bytes):
    gigabytes = n_bytes / 1e9
    return f"{gigabytes:,.0f}" if gigabytes >= 10 else f"{gigabytes:.2g}"
