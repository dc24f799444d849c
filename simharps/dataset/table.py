"""The per-spectrum table: truth or header metadata rows as a numpy structured array (read as an astropy Table)."""

import numpy as np

from simharps.dataset.jsonio import canonical_json
from simharps.errors import SimharpsError

RESERVED_COLUMNS = ("spectrum_index", "failed")


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


def read_table(path):
    """The table file at ``path`` as an astropy Table (one row per spectrum)."""
    from astropy.table import Table

    return Table(np.load(path, allow_pickle=False))
