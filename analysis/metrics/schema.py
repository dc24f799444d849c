"""The "simharps-metrics/1" document: metric entries, matrices, and JSON-safe values (NaN/inf -> null).

A scalar metric is ``{"value", "ci_low", "ci_high", "estimator", "n", "params"}`` under a flat dotted name; a
matrix is ``{"rows", "cols", "values"}``. See shared/DESIGN.md "Analysis contracts" and docs/metrics.md.
"""

import math

import numpy as np

SCHEMA = "simharps-metrics/1"


def entry(value, ci=(np.nan, np.nan), *, estimator, n, params=None):
    """One scalar metric entry (values may be NaN here; ``json_safe`` turns them into null)."""
    return {"value": value, "ci_low": ci[0], "ci_high": ci[1], "estimator": estimator, "n": int(n),
            "params": dict(params or {})}


def matrix(rows, cols, values):
    """One matrix entry: ``values[i][j]`` for row i, column j."""
    return {"rows": [str(r) for r in rows], "cols": [str(c) for c in cols],
            "values": np.asarray(values, dtype=np.float64).tolist()}


def json_safe(obj):
    """Plain JSON types: numpy scalars and arrays converted, non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
