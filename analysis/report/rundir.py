"""Read a run directory for the report, tolerant of anything missing (layout: shared/DESIGN.md, docs/contracts.md).

Every absent or unreadable input becomes a note in ``Run.notes`` and the section that needs it is left out.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simharps.dataset import open_dataset

SOURCE_ORDER = {"simulated": 0, "real": 1}


@dataclass
class DatasetInfo:
    """A dataset of the run: its run.json entry and, when it opens, its manifest, table (name -> column), grid."""

    name: str
    entry: dict
    manifest: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)
    wavelength_aa: object = None
    n_spectra: int = None

    @property
    def source(self):
        return str(self.entry.get("source", "unknown"))


@dataclass
class ModelInfo:
    """A model directory: config, history, latents and reconstructions per dataset name."""

    name: str
    entry: dict
    config: dict = None
    history: dict = None
    latents: dict = field(default_factory=dict)
    reconstructions: dict = field(default_factory=dict)


@dataclass
class Run:
    """Everything the report shows, as loaded from RUNDIR."""

    rundir: Path
    info: dict
    datasets: dict
    models: dict
    metrics: list
    baseline: dict = None
    baseline_path: str = None
    notes: list = field(default_factory=list)

    def metrics_for(self, model, dataset):
        """The metrics document of (model, dataset), or None."""
        for doc in self.metrics:
            if doc.get("model") == model and _dataset_name(doc) == dataset:
                return doc
        return None

    def factor_groups(self):
        """{factor: group} over every metrics document (first seen wins)."""
        groups = {}
        for doc in self.metrics:
            for name, group in (doc.get("factors") or {}).items():
                groups.setdefault(str(name), str(group))
        return groups


def _dataset_name(doc):
    dataset = doc.get("dataset")
    return dataset.get("name") if isinstance(dataset, dict) else dataset


def _read_json(path, notes):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        notes.append(f"{path}: unreadable ({error})")
        return None


def _resolve(path, rundir):
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return rundir / path


def _load_dataset(name, entry, rundir, notes):
    info = DatasetInfo(name, entry)
    path = entry.get("path") or rundir / "datasets" / name
    try:
        ds = open_dataset(_resolve(path, rundir))
        info.manifest = ds.manifest
        info.columns = {column: np.asarray(ds.table[column]) for column in ds.table.colnames}
        info.wavelength_aa = ds.wavelength_air_aa
        info.n_spectra = len(ds)
    except Exception as error:  # noqa: BLE001 - any failure to read becomes a note, the report goes on
        notes.append(f"dataset {name}: not readable at {path} ({error})")
    return info


def _load_array(path, notes):
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        notes.append(f"{path}: unreadable ({error})")
        return None


def _load_model(name, entry, directory, notes):
    model = ModelInfo(name, entry if isinstance(entry, dict) else {})
    model.config = _read_json(directory / "config.json", notes)
    model.history = _read_json(directory / "history.json", notes)
    for kind, pattern in (("latents", "latents-*.npy"), ("reconstructions", "reconstructions-*.npz")):
        for path in sorted(directory.glob(pattern)):
            value = _load_array(path, notes)
            if value is not None:
                getattr(model, kind)[path.stem.split("-", 1)[1]] = value
    return model


def load_run(rundir, baseline=None):
    """Load RUNDIR (run.json, datasets, models, metrics) and the baseline (argument, else run.json's)."""
    rundir = Path(rundir)
    notes = []
    info = _read_json(rundir / "run.json", notes) or {}
    if not (rundir / "run.json").exists():
        notes.append("run.json absent: provenance unknown")
    entries = dict(info.get("datasets") or {})
    for path in sorted((rundir / "datasets").glob("*")):
        entries.setdefault(path.name, {"path": str(path)})
    datasets = {name: _load_dataset(name, entry, rundir, notes) for name, entry in entries.items()}
    datasets = dict(sorted(datasets.items(), key=lambda item: SOURCE_ORDER.get(item[1].source, 2)))
    model_entries = dict(info.get("models") or {})
    for path in sorted((rundir / "models").glob("*")):
        if path.is_dir():
            model_entries.setdefault(path.name, {})
    models = {name: _load_model(name, entry, rundir / "models" / name, notes) for name, entry in model_entries.items()}
    metrics = [doc for path in sorted((rundir / "metrics").glob("*.json"))
               if isinstance(doc := _read_json(path, notes), dict)]
    run = Run(rundir, info, datasets, models, metrics, notes=notes)
    run.baseline_path = baseline if baseline is not None else info.get("baseline")
    if run.baseline_path:
        path = _resolve(run.baseline_path, rundir)
        run.baseline = _read_json(path, notes)
        if not path.exists():
            notes.append(f"baseline {run.baseline_path}: not found")
    return run
