"""``simharps run``: scenario -> datasets -> preprocessing -> models -> latents -> metrics -> report, resumable.

The run directory (DESIGN.md "Analysis contracts")::

    RUNDIR/run.json                   stages done with their content hashes, timings, versions, hardware
    RUNDIR/datasets/NAME/             the scenario's own dataset (simulated or ingested) and other scenarios' sets
    RUNDIR/cache/KEY/                 preprocessed inputs (analysis.cache), shared by models with the same options
    RUNDIR/models/MODEL/              config.json, checkpoint.pt (or pca.npz), history.json, split.npy,
                                      latents-DATASET.npy, reconstructions-DATASET.npz
    RUNDIR/metrics/MODEL-DATASET.json metrics (schema simharps-metrics/1)
    RUNDIR/report.html                the validation report

Every stage records the sha256 of its inputs (its own section of the scenario, the hashes of the stages it reads,
the package version). A re-run skips a stage whose hash is unchanged and whose outputs exist; a changed model
retrains only that model (and re-encodes and re-evaluates only it); a killed run resumes (datasets resume chunk by
chunk, training from the last epoch's checkpoint). This module joins the simulator (``simharps.pipeline``) and
the analysis package; ``analysis`` itself never imports the simulator.
"""

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import simharps
from simharps.dataset import open_dataset, write_json
from simharps.errors import SimharpsError

RUN_SCHEMA = "simharps-run/1"


def content_hash(*parts):
    """sha256 of the canonical JSON of ``parts`` plus the package version."""
    payload = json.dumps([simharps.__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def hardware():
    import torch

    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "n_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform()}


class RunState:
    """run.json: read at start, written after every stage (atomically)."""

    def __init__(self, rundir, scenario):
        self.rundir = Path(rundir)
        self.path = self.rundir / "run.json"
        data = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except ValueError:
                data = {}
        from analysis.train import versions

        self.data = {"schema": RUN_SCHEMA, "stages": data.get("stages", {}), "datasets": data.get("datasets", {}),
                     "models": data.get("models", {}), "baseline": data.get("baseline"),
                     "scenario": {"name": scenario.name, "path": str(scenario.path), "text": scenario.text,
                                  "sha256": scenario.sha256, "seed": scenario.seed},
                     "versions": versions(), "hardware": hardware()}

    def done(self, stage, digest, outputs=()):
        entry = self.data["stages"].get(stage)
        return bool(entry and entry.get("hash") == digest and entry.get("done")
                    and all(Path(p).exists() for p in outputs))

    def record(self, stage, digest, seconds, **extra):
        self.data["stages"][stage] = {"hash": digest, "done": True, "seconds": round(seconds, 3), **extra}
        self.save()

    def save(self):
        self.rundir.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)


def _say(message, quiet):
    if not quiet:
        print(message, flush=True)


def _dataset_stage(state, scenario, ref, rundir, *, workers, progress, quiet):
    """Simulate / ingest (or locate) one dataset of the analysis section; returns the Dataset."""
    from simharps.pipeline import simulate_scenario
    from simharps.scenario import load_scenario

    if ref.path is not None:
        base = scenario.path.resolve().parent if scenario.path else Path.cwd()
        path = Path(ref.path) if Path(ref.path).is_absolute() else base / ref.path
        dataset = open_dataset(path)
    else:
        source = scenario
        if ref.scenario is not None:
            base = scenario.path.resolve().parent if scenario.path else Path.cwd()
            source = load_scenario(Path(ref.scenario) if Path(ref.scenario).is_absolute() else base / ref.scenario)
        out = rundir / "datasets" / ref.name
        settings = {key: value for key, value in source.to_dict().items() if key not in ("analysis", "regression")}
        digest = content_hash("dataset", settings, [str(p) for p in source.source_paths()]
                              if source.kind == "real" else None)
        if state.done(f"dataset:{ref.name}", digest, [out / "manifest.json"]):
            dataset = open_dataset(out)
        else:
            _say(f"[{ref.name}] {'ingesting' if source.kind == 'real' else 'simulating'} {source.name} -> {out}",
                 quiet)
            started = time.perf_counter()
            overwrite = (out / "manifest.json").exists()   # a finished dataset of an older scenario version
            dataset = simulate_scenario(source, out, workers=workers, progress=progress, overwrite=overwrite)
            state.record(f"dataset:{ref.name}", digest, time.perf_counter() - started,
                         n=len(dataset), fingerprint=dataset.manifest["fingerprint"])
    state.data["datasets"][ref.name] = {"path": str(Path(dataset.path).resolve()),
                                        "fingerprint": dataset.manifest["fingerprint"],
                                        "source": dataset.manifest.get("source"), "n": len(dataset)}
    state.save()
    return dataset


def _budget_stage(state, name, dataset, rundir):
    """RUNDIR/budget-NAME.json: the variance budget of a dataset with truth components (analysis.budget)."""
    from analysis.budget import COMPONENTS, variance_budget

    if not set(COMPONENTS) <= set(dataset.array_names):
        return
    digest = content_hash("budget", dataset.manifest["fingerprint"])
    path = rundir / f"budget-{name}.json"
    if state.done(f"budget:{name}", digest, [path]):
        return
    started = time.perf_counter()
    write_json(path, variance_budget(dataset))
    state.record(f"budget:{name}", digest, time.perf_counter() - started)


def run_scenario(scenario, rundir, *, workers=1, progress=True, quiet=False, baseline=None):
    """Run every stage of ``scenario`` (a ``Scenario``) into ``rundir``; returns the report path."""
    from analysis.encode import encode_dataset
    from analysis.train import resolved_configs, train_model

    rundir = Path(rundir)
    rundir.mkdir(parents=True, exist_ok=True)
    state = RunState(rundir, scenario)
    analysis = scenario.analysis_config
    regression = scenario.regression_config
    if baseline is None and regression.baseline is not None:
        base = scenario.path.resolve().parent if scenario.path else Path.cwd()
        baseline = base / regression.baseline
    state.data["baseline"] = None if baseline is None else str(baseline)
    datasets = {ref.name: _dataset_stage(state, scenario, ref, rundir, workers=workers, progress=progress,
                                         quiet=quiet) for ref in analysis.datasets}
    for name, dataset in datasets.items():
        _budget_stage(state, name, dataset, rundir)
    train_name = analysis.training_set
    training_set = datasets[train_name]
    cache_root = rundir / "cache"
    for model_config in analysis.models:
        preprocessing, training = resolved_configs(model_config, analysis)
        model_dir = rundir / "models" / model_config.name
        train_digest = content_hash("train", model_config.model_dump(mode="json"), preprocessing.model_dump(mode="json"),
                                    training.model_dump(mode="json"), analysis.split.model_dump(mode="json"),
                                    training_set.manifest["fingerprint"])
        state.data["models"][model_config.name] = {"kind": model_config.kind, "latent_dim": model_config.latent_dim,
                                                   "seed": training.seed, "trained_on": train_name}
        if not state.done(f"train:{model_config.name}", train_digest, [model_dir / "config.json"]):
            _say(f"[{model_config.name}] training {model_config.kind} (latent {model_config.latent_dim}) on "
                 f"{train_name}", quiet)
            started = time.perf_counter()
            try:
                train_model(model_config, analysis, training_set, model_dir, cache_root, progress=progress)
            except ValueError as error:
                raise SimharpsError(str(error)) from error
            state.record(f"train:{model_config.name}", train_digest, time.perf_counter() - started)
        for name, dataset in datasets.items():
            encode_digest = content_hash("encode", train_digest, dataset.manifest["fingerprint"],
                                         training.reconstructions)
            outputs = [model_dir / f"latents-{name}.npy", model_dir / f"reconstructions-{name}.npz"]
            if not state.done(f"encode:{model_config.name}:{name}", encode_digest, outputs):
                started = time.perf_counter()
                try:
                    encode_dataset(model_dir, dataset, name, cache_root, n_reconstructions=training.reconstructions)
                except ValueError as error:
                    raise SimharpsError(str(error)) from error
                state.record(f"encode:{model_config.name}:{name}", encode_digest, time.perf_counter() - started)
            metrics_digest = content_hash("metrics", encode_digest, analysis.metrics.model_dump(mode="json"))
            metrics_path = rundir / "metrics" / f"{model_config.name}-{name}.json"
            if not state.done(f"metrics:{model_config.name}:{name}", metrics_digest, [metrics_path]):
                _say(f"[{model_config.name}] metrics on {name}", quiet)
                started = time.perf_counter()
                reference = None if name == train_name else (model_dir / f"latents-{train_name}.npy", training_set)
                evaluate_model(model_dir, dataset, name, analysis.metrics, metrics_path, reference=reference)
                state.record(f"metrics:{model_config.name}:{name}", metrics_digest, time.perf_counter() - started)
    from analysis.report import build_report

    started = time.perf_counter()
    report = build_report(rundir, baseline=baseline)
    state.record("report", content_hash("report", time.time()), time.perf_counter() - started)
    return report


def evaluate_model(model_dir, dataset, name, metrics_config, out_path, reference=None):
    """Metrics of a model's latents on one dataset, written to ``out_path`` (schema simharps-metrics/1).

    Spectra the model's quality filters excluded count as failed. The telluric-versus-stellar inputs are the
    reconstructions file's spectra: on the training set, its test split when it holds >= 10 spectra (held-out
    targets or nights), else all of them. ``reference``: (latents path, dataset) of the simulated population a
    single-star series' repeat dispersion is compared with.
    """
    from analysis.metrics import evaluate

    model_dir = Path(model_dir)
    latents_path = model_dir / f"latents-{name}.npy"
    if not latents_path.exists():
        raise SimharpsError(f"{model_dir}: no latents-{name}.npy; run `simharps encode {model_dir} DATASET` first")
    latents = np.load(latents_path)
    if latents.shape[0] != len(dataset):
        raise SimharpsError(f"{latents_path}: {latents.shape[0]} rows, the dataset {dataset.path} has {len(dataset)}")
    config = json.loads((model_dir / "config.json").read_text())
    cache = _cache(config, dataset)
    table = dataset.table.copy()
    failed = np.asarray(table["failed"], dtype=bool) if "failed" in table.colnames else np.zeros(len(table), bool)
    table["failed"] = failed | ~cache.usable
    telluric, subset_note = _telluric_inputs(model_dir, dataset, name, config)
    median_flux = np.array([np.nan if v is None else v for v in cache.meta["quality"]["median_flux"]])
    if reference is not None:
        reference = (np.load(reference[0]), reference[1].table)
    result = evaluate(latents, table, config=metrics_config.model_dump(mode="json"), telluric=telluric,
                      model=config["model"]["name"], median_flux=median_flux, reference=reference,
                      dataset_info={"name": name, "fingerprint": dataset.manifest["fingerprint"],
                                    "source": dataset.manifest.get("source")})
    result.setdefault("info", {})["telluric_subset"] = subset_note
    result["info"]["n_quality_excluded"] = int(np.sum(~cache.usable & ~failed))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(out_path, result)
    return result


def _telluric_inputs(model_dir, dataset, name, config):
    recon_path = model_dir / f"reconstructions-{name}.npz"
    if not recon_path.exists():
        return None, "no reconstructions file"
    record = dict(np.load(recon_path))
    keep = np.ones(record["spectrum_index"].size, dtype=bool)
    note = f"all {keep.size} reconstructed spectra"
    if config["dataset"]["fingerprint"] == dataset.manifest["fingerprint"] and (model_dir / "split.npy").exists():
        labels = np.load(model_dir / "split.npy")[record["spectrum_index"]]
        if np.sum(labels == "test") >= 10:
            keep = labels == "test"
            note = f"{keep.sum()} test-split spectra (held out from training)"
    telluric = {"spectrum_index": record["spectrum_index"][keep], "data": record["input"][keep],
                "reconstruction": record["output"][keep], "sigma": record["sigma"][keep],
                "telluric": record["telluric"][keep], "mask": record["mask"][keep],
                "wavelength_aa": record["wavelength_aa"],
                "flux": np.where(record["mask"], record["input"] + record["offset"][:, None], 0.0)[keep]}
    for source, target in (("stellar", "stellar"), ("expected_telluric_free", "expected")):
        if source in record:
            telluric[target] = record[source][keep]
    return telluric, note


def _cache(config, dataset):
    """The model's preprocessing cache of ``dataset`` (built if needed): quality verdicts and median fluxes."""
    from analysis.cache import build_cache
    from analysis.config import PreprocessingConfig

    preprocessing = PreprocessingConfig.model_validate(config["preprocessing"])
    return build_cache(dataset, preprocessing, Path(config["cache"]).parent)
