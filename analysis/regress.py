"""CI regression of disentanglement metrics: compare metrics files with a stored baseline.

Baseline file (schema ``simharps-baseline/1``, committed in ``reports/baselines/``)::

    {"schema": "simharps-baseline/1",
     "source": {"metrics_files": [...], "n_samples": 5, "spread_rule": "...", ...},
     "metrics": {"fcae2/sim/mig": {"value": 0.21, "tolerance": {"abs": 0.04},
                                   "ci_low": 0.18, "ci_high": 0.24, "n_samples": 5, "std": 0.006}}}

Keys are ``MODEL/DATASET/METRIC`` (the metrics file's ``model``, ``dataset.name`` and dotted metric name), so one
baseline covers every model and dataset of a run, and a model or dataset that disappears is caught.
``ci_low``/``ci_high`` are kept for interval tolerances; the other extra keys are informative.

Tolerances (two-sided: a change in either direction beyond the tolerance fails):

- ``{"abs": a}``: pass when ``|now - baseline| <= a``;
- ``{"rel": r}``: pass when ``|now - baseline| <= r * |baseline|``;
- ``{"interval": true}``: pass when ``[ci_low, ci_high]`` of baseline and now overlap (a missing interval is
  the point value).

A baseline metric absent from the new metrics, or not finite there, is a regression. New metrics absent from the
baseline are ignored.

``make_baseline`` takes one metrics document or several (other models, or the same model trained with other
seeds). Each key's tolerance comes from the ``tolerances`` mapping (the scenario's ``regression: tolerances:``):
exact key ``MODEL/DATASET/METRIC``, else the bare metric name, else the first matching glob pattern (``fnmatch``,
tried against both), else ``"default"``, else ``DEFAULT_TOLERANCE``. With n >= 2 samples of a key (several
seeds) the value is their mean and the tolerance becomes ``{"abs": max(SPREAD_K * std, floor)}`` with std the
sample standard deviation (ddof=1) and floor the configured tolerance as an absolute width (``a``, or
``r * |mean|``); an ``interval`` tolerance stays one, with the envelope of the seeds' intervals.

Example
-------
>>> rows, ok = regress("runs/ci/metrics", "reports/baselines/ci_regression.json")   # doctest: +SKIP
>>> print(format_rows(rows))                                                          # doctest: +SKIP
"""

import difflib
import fnmatch
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from simharps import __version__
from simharps.errors import SimharpsError

METRICS_SCHEMA = "simharps-metrics/1"
BASELINE_SCHEMA = "simharps-baseline/1"
DEFAULT_TOLERANCE = {"rel": 0.1}
SPREAD_K = 4.0
SPREAD_RULE = f"n >= 2 seeds: abs = max({SPREAD_K:g} * std(ddof=1), configured tolerance as an absolute width)"
TOLERANCE_KINDS = ("abs", "rel", "interval")


def metric_key(model, dataset, metric):
    """The baseline key of one metric: ``MODEL/DATASET/METRIC``."""
    return f"{model}/{dataset}/{metric}"


def flatten(metrics):
    """``{MODEL/DATASET/METRIC: entry}`` from one metrics document or a list of them (later ones win)."""
    docs = [metrics] if isinstance(metrics, dict) else list(metrics)
    out = {}
    for doc in docs:
        if doc.get("schema") != METRICS_SCHEMA:
            raise SimharpsError(f"not a {METRICS_SCHEMA} document (schema {doc.get('schema')!r})")
        dataset = doc.get("dataset") or {}
        name = dataset.get("name") if isinstance(dataset, dict) else dataset
        for metric, entry in (doc.get("metrics") or {}).items():
            out[metric_key(doc.get("model"), name, metric)] = entry
    return out


def check_tolerance(tolerance):
    """Validate a tolerance spec (exactly one of abs / rel / interval); returns it."""
    if not isinstance(tolerance, dict) or len(tolerance) != 1 or next(iter(tolerance)) not in TOLERANCE_KINDS:
        raise SimharpsError("a tolerance is one of {'abs': a}, {'rel': r}, {'interval': true}, "
                            f"got {tolerance!r}")
    kind, width = next(iter(tolerance.items()))
    if kind == "interval":
        if width is not True:
            raise SimharpsError(f"interval tolerance must be {{'interval': true}}, got {tolerance!r}")
    elif isinstance(width, bool) or not isinstance(width, (int, float)) or not width >= 0:
        raise SimharpsError(f"{kind} tolerance must be a number >= 0, got {tolerance!r}")
    return tolerance


def format_tolerance(tolerance):
    """Short text of a tolerance spec: ``±0.05``, ``±10%``, ``CI overlap``."""
    kind, width = next(iter(tolerance.items()))
    return {"abs": lambda: f"±{width:.3g}", "rel": lambda: f"±{100 * width:.3g}%",
            "interval": lambda: "CI overlap"}[kind]()


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _interval(entry):
    value = entry.get("value")
    low, high = entry.get("ci_low"), entry.get("ci_high")
    return (low if _finite(low) else value), (high if _finite(high) else value)


def check(base, now):
    """Status of one metric: ``pass``, ``FAIL`` (outside tolerance), ``missing`` or ``invalid`` (not finite)."""
    if now is None:
        return "missing"
    if not _finite(now.get("value")) or not _finite(base.get("value")):
        return "invalid"
    kind, width = next(iter(base["tolerance"].items()))
    if kind == "interval":
        (b_low, b_high), (n_low, n_high) = _interval(base), _interval(now)
        ok = b_low <= n_high and n_low <= b_high
    else:
        allowed = width if kind == "abs" else width * abs(base["value"])
        ok = abs(now["value"] - base["value"]) <= allowed * (1 + 1e-12)
    return "pass" if ok else "FAIL"


def compare(metrics, baseline):
    """One row per baseline metric: dicts with metric, baseline, now, tolerance (text), status.

    ``metrics``: a metrics document or a list of them; ``baseline``: a ``simharps-baseline/1`` document.
    """
    if baseline.get("schema") != BASELINE_SCHEMA:
        raise SimharpsError(f"not a {BASELINE_SCHEMA} document (schema {baseline.get('schema')!r})")
    current = flatten(metrics)
    rows = []
    for key, base in sorted(baseline.get("metrics", {}).items()):
        now = current.get(key)
        rows.append({"metric": key, "baseline": base.get("value"), "now": None if now is None else now.get("value"),
                     "tolerance": format_tolerance(check_tolerance(base.get("tolerance"))),
                     "status": check(base, now)})
    return rows


def read_json(path):
    """A JSON document from ``path``, with one clear error when it is absent or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise SimharpsError(f"{path}: cannot read ({error.strerror})") from error
    except ValueError as error:
        raise SimharpsError(f"{path}: not valid JSON ({error})") from error


def load_metrics(paths):
    """Metrics documents from files and/or directories (every ``*.json`` inside, sorted)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files = []
    for path in map(Path, paths):
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    if not files:
        raise SimharpsError(f"no metrics files in {', '.join(map(str, paths))}")
    return [read_json(path) for path in files], files


def regress(metrics_path, baseline_path):
    """Compare metrics file(s) or a metrics directory with a baseline file: ``(rows, ok)``."""
    docs, _ = load_metrics(metrics_path)
    rows = compare(docs, read_json(baseline_path))
    return rows, all(row["status"] == "pass" for row in rows)


def lookup_tolerance(key, tolerances):
    """The configured tolerance of ``MODEL/DATASET/METRIC`` (see the module docstring for the order)."""
    bare = key.split("/", 2)[-1]
    for name in (key, bare):
        if name in tolerances:
            return check_tolerance(tolerances[name])
    for pattern, tolerance in tolerances.items():
        if pattern != "default" and (fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(bare, pattern)):
            return check_tolerance(tolerance)
    return check_tolerance(tolerances.get("default", DEFAULT_TOLERANCE))


def _baseline_entry(samples, configured):
    values = np.array([s["value"] for s in samples], dtype=float)
    mean = float(values.mean())
    entry = {"value": mean, "n_samples": len(samples)}
    lows, highs = zip(*(_interval(s) for s in samples))
    if all(_finite(s.get("ci_low")) and _finite(s.get("ci_high")) for s in samples):
        entry["ci_low"], entry["ci_high"] = float(min(lows)), float(max(highs))
    kind, width = next(iter(configured.items()))
    if len(samples) < 2 or kind == "interval":
        entry["tolerance"] = dict(configured)
    else:
        std = float(values.std(ddof=1))
        floor = width if kind == "abs" else width * abs(mean)
        entry["std"] = std
        entry["tolerance"] = {"abs": max(SPREAD_K * std, floor)}
    return entry


def _check_tolerance_names(tolerances, keys):
    """SimharpsError naming each tolerance (other than ``default``) that matches none of the metric keys, with the
    nearest metric name: a misspelled name would silently fall back to the default tolerance."""
    bare = sorted({key.split("/", 2)[-1] for key in keys})
    for pattern in tolerances:
        if pattern == "default" or any(pattern in (key, key.split("/", 2)[-1]) or fnmatch.fnmatchcase(key, pattern)
                                       or fnmatch.fnmatchcase(key.split("/", 2)[-1], pattern) for key in keys):
            continue
        close = difflib.get_close_matches(pattern, bare, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SimharpsError(f"tolerance {pattern!r} matches no metric of these documents{hint}; name a metric, "
                            "MODEL/DATASET/METRIC, a glob pattern or 'default'")


def make_baseline(metrics, tolerances=None, source=None):
    """A ``simharps-baseline/1`` document from one metrics document or a list (several models and/or seeds).

    Metrics whose value is not finite in a document are left out of the baseline.
    """
    docs = [metrics] if isinstance(metrics, dict) else list(metrics)
    tolerances = dict(tolerances or {})
    samples = {}
    for doc in docs:
        for key, entry in flatten(doc).items():
            if _finite(entry.get("value")):
                samples.setdefault(key, []).append(entry)
    if not samples:
        raise SimharpsError("no finite metric values to make a baseline from")
    _check_tolerance_names(tolerances, samples)
    info = {"created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "simharps": __version__,
            "n_documents": len(docs), "n_samples": max(len(v) for v in samples.values()), "spread_rule": SPREAD_RULE,
            "tolerances": tolerances, **(source or {})}
    return {"schema": BASELINE_SCHEMA, "source": info,
            "metrics": {key: _baseline_entry(samples[key], lookup_tolerance(key, tolerances))
                        for key in sorted(samples)}}


def write_baseline(path, baseline):
    """Write a baseline document as indented JSON (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n")
    return path


def _cell(value):
    return "-" if value is None else f"{value:.6g}" if isinstance(value, (int, float)) else str(value)


def format_rows(rows):
    """A plain-text table (metric, baseline, now, tolerance, status) and a one-line summary."""
    header = ("metric", "baseline", "now", "tolerance", "status")
    table = [header] + [tuple(_cell(row[name]) for name in header) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    failed = sum(row["status"] != "pass" for row in rows)
    lines.append(f"{len(rows) - failed} of {len(rows)} metrics within tolerance"
                 + (f"; {failed} REGRESSED" if failed else ""))
    return "\n".join(lines)


def load_tolerances(path):
    """Tolerances from a YAML/JSON file: a scenario (its ``regression: tolerances:``) or the mapping itself."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SimharpsError(f"{path}: cannot read tolerances ({error})") from error
    if isinstance(doc, dict) and isinstance(doc.get("regression"), dict):
        doc = doc["regression"]
    if isinstance(doc, dict) and "tolerances" in doc:
        doc = doc["tolerances"]
    if not isinstance(doc, dict):
        raise SimharpsError(f"{path}: tolerances must be a mapping of metric name or pattern to a tolerance")
    for tolerance in doc.values():
        check_tolerance(tolerance)
    return doc


def main(metrics_paths, baseline_path, *, update=False, tolerances_path=None):
    """``simharps regress``: print the comparison table and return 0, or 1 on a regression.

    With ``update``, write the baseline from the metrics (several files of other seeds allowed) instead.
    """
    if update:
        docs, files = load_metrics(metrics_paths)
        tolerances = load_tolerances(tolerances_path) if tolerances_path else {}
        baseline = make_baseline(docs, tolerances, {"metrics_files": [str(f) for f in files]})
        print(f"wrote {write_baseline(baseline_path, baseline)} ({len(baseline['metrics'])} metrics)")
        return 0
    rows, ok = regress(metrics_paths, baseline_path)
    print(format_rows(rows))
    return 0 if ok else 1
