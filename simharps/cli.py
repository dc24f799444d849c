"""The ``simharps`` command. Each sub-command exits 0 on success, non-zero with one clear message on bad input."""

import argparse
import errno
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from simharps import __version__
from simharps.errors import SimharpsError

INTERRUPTED = {
    "simulate": "run the same command again to resume (the chunks already written are kept)",
    "run": "run the same command again to resume (finished stages are skipped)",
    "train": "run the same command again to resume from the last finished epoch",
    "ingest": "nothing was ingested; run the same command again to start over",
}
"""What to do after Ctrl-C, per command (the others have nothing to resume)."""
OS_ERROR_FIXES = {
    errno.EACCES: "no permission: choose a folder you can write to, or change its permissions",
    errno.EPERM: "no permission: choose a folder you can write to, or change its permissions",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOSPC: "the disk is full: free some space or choose a folder on another disk",
    errno.EDQUOT: "the disk quota is exhausted: free some space or choose a folder on another disk",
    errno.EISDIR: "it is a folder: give a file name",
    errno.ENOENT: "check the path",
}
"""The fix to suggest for a file-system error, by errno."""
FIRST_PLOT = "first_spectrum.png"
"""PNG of the first spectrum that ``simharps simulate --plot`` writes beside the dataset."""


def _blocking_file(path):
    """The first of ``path`` and its parents that exists and is not a folder, or None."""
    return next((part for part in (path, *path.parents) if part.exists() and not part.is_dir()), None)


def _cache_note(path):
    """A note naming the stellar template cache when ``path`` lies in it, else an empty string."""
    from simharps.stellar.templates import cache_root

    root = cache_root()
    inside = path == root or root in path.parents
    return " (the stellar template cache: set SIMHARPS_CACHE to a folder you can write to)" if inside else ""


def _os_error_message(error):
    """One line for a file-system error: the path, the system's reason and the fix."""
    if error.filename is None:
        return error.strerror or str(error)
    path = Path(os.fsdecode(error.filename))
    blocking = _blocking_file(path) if error.errno in (errno.ENOTDIR, errno.EEXIST) else None
    fix = (f"{blocking} is a file, not a folder: move it or choose another path" if blocking
           else OS_ERROR_FIXES.get(error.errno, "check the path and its permissions"))
    return f"{path}: {error.strerror or error}{_cache_note(path)}; {fix}"


def _check_output_dir(path):
    """SimharpsError unless the folder ``path`` exists or can be created, and takes new files (creates nothing)."""
    path = Path(path)
    existing = next(part for part in (path, *path.parents) if part.exists())
    if not existing.is_dir():
        where = "it" if existing == path else str(existing)
        raise SimharpsError(f"--out {path}: {where} is a file, not a folder; give a folder (new or existing) "
                            "or move that file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise SimharpsError(f"--out {path}: cannot write in {existing} ({error.strerror}); "
                            f"{OS_ERROR_FIXES.get(error.errno, 'choose another folder')}") from error


def _check_window(window):
    """SimharpsError unless ``window`` (--window START_AA STOP_AA, in A) is None or starts below its stop."""
    if window is not None and not window[0] < window[1]:
        raise SimharpsError(f"--window {window[0]:g} {window[1]:g}: the start must be below the stop; give "
                            "--window START_AA STOP_AA with START_AA < STOP_AA")


def _seed(text):
    """argparse type of a noise seed: an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {text!r}")
    return int(text)


def _plot(args):
    from simharps.io import read_harps
    from simharps.plotting import plot_spectrum

    _check_window(args.window)
    if Path(args.file).is_dir():
        example = min(Path(args.file).glob("*.fits"), default=None)
        raise SimharpsError(f"{args.file} is a folder; give one FITS file" + (f", e.g. {example}" if example else ""))
    out = Path(args.out) if args.out else Path(Path(args.file).name).with_suffix(".png")
    if out.is_dir() or out.suffix.lower() != ".png":
        raise SimharpsError(f"--out {out}: " + ("it is a folder; " if out.is_dir() else "") +
                            "give the name of the PNG file to write (ending in .png)")
    product = read_harps(args.file)
    meta = product.meta
    berv = "n/a" if meta.get("berv_kms") is None else f"{meta['berv_kms']:+.3f} km/s"
    title = f"{meta.get('object')}  {meta.get('instrument')} {meta.get('product')}  BERV {berv}"
    try:
        plot_spectrum(out, product.wavelength_air_aa, product.flux, title=title, error=product.error,
                      window=args.window)
    except ValueError as error:
        raise SimharpsError(f"{args.file}: {error}") from error
    print(out)


QUICKSTART_STAR = dict(teff_k=5772.0, logg_cgs=4.44, mh_dex=0.0, vsini_kms=2.0, rv_kms=12.0, vmag=8.0, exptime_s=600.0,
                      ra_deg=229.86, dec_deg=-7.72, mjd_utc=55457.98, airmass=1.3, pwv_mm=4.0, seeing_arcsec=0.9)
"""The star ``simharps spectrum`` simulates when given no parameters: a V = 8 solar twin at La Silla."""


def _parse_assignments(assignments):
    """NAME=VALUE arguments -> {name: value} through the parameter table (units, ranges, unknown names)."""
    from simharps.errors import ParameterError
    from simharps.parameters import parse_assignment

    values = {}
    for item in assignments:
        try:
            name, value = parse_assignment(item)
        except ParameterError as error:
            raise SimharpsError(str(error)) from None
        if name in values:
            raise SimharpsError(f"{name} is given twice; give it once")
        values[name] = value
    return values


def _parameter_help():
    from simharps.parameters import help_table

    return help_table()


def _spectrum(args):
    from simharps.errors import ParameterError
    from simharps.forward import check_window_has_data, product_window, simulate
    from simharps.plotting import plot_simulation

    params = {**QUICKSTART_STAR, **_parse_assignments(args.params)}
    if "berv_kms" in params:
        params.pop("mjd_utc")
    try:
        window = product_window(args.window)
        check_window_has_data(*window)
    except ParameterError as error:
        raise SimharpsError(f"--window: {error}") from None
    _check_output_dir(args.out)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    simulation = simulate(params, args.seed, components=True, window=args.window)
    fits_path = simulation.write_adp(out / "spectrum.fits", overwrite=True)
    png_path = plot_simulation(out / "spectrum.png", simulation)
    snr = simulation.truth["snr_550"]
    print(f"{fits_path}\n{png_path}\nBERV {simulation.truth['berv_kms']:+.4f} km/s, "
          f"SN50 {'n/a (order 50 outside the window)' if snr is None else f'{snr:.1f}'}")


def _simulate(args):
    from simharps.dataset.runner import check_scheduler, check_workers
    from simharps.pipeline import simulate_scenario
    from simharps.scenario import load_scenario

    check_workers(args.workers)
    check_scheduler(args.scheduler)
    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    _check_output_dir(out)
    try:
        dataset = simulate_scenario(scenario, out, workers=args.workers, scheduler=args.scheduler,
                                    progress=not args.quiet, overwrite=args.overwrite)
    finally:
        _drop_stale_plot(out)
    failed = int(np.sum(dataset.table["failed"]))
    print(f"{out}: {len(dataset)} spectra x {dataset.n_channels} channels ({failed} failed)")
    if args.plot:
        _plot_first(dataset, out / FIRST_PLOT)


def _drop_stale_plot(out):
    """Remove the ``out/first_spectrum.png`` of a dataset folder unless it is newer than the dataset's manifest:
    otherwise it shows a dataset that was replaced (--overwrite) or is unfinished. Other folders are left alone."""
    from simharps.dataset.layout import MANIFEST_FILE, RUN_FILE

    png, manifest = out / FIRST_PLOT, out / MANIFEST_FILE
    if not png.is_file() or not (manifest.exists() or (out / RUN_FILE).exists()):
        return
    if not manifest.exists() or manifest.stat().st_mtime_ns > png.stat().st_mtime_ns:
        png.unlink()


def _plot_first(dataset, path):
    from simharps.plotting import plot_spectrum

    row = dataset.table[0]
    components = {name: dataset.components[name][0] for name in ("stellar", "telluric") if name in dataset.components}
    overlay = {"response": dataset.components["response"][0]} if "response" in dataset.components else None
    title = f"{row['target_id']} epoch {row['epoch']}: Teff {row['teff_k']:.0f} K, BERV {row['berv_kms']:+.3f} km/s"
    plot_spectrum(path, dataset.wavelength_air_aa, dataset.flux[0], title=title, error=dataset.error[0],
                  components=components, overlay=overlay)
    print(path)


def _ingest(args):
    from simharps.pipeline import ingest_paths

    _check_output_dir(args.out)
    dataset = ingest_paths(args.paths, args.out, workers=args.workers, progress=not args.quiet,
                           overwrite=args.overwrite, labels_csv=args.labels)
    rejected = dataset.manifest.get("rejected", [])
    print(f"{args.out}: {len(dataset)} spectra ingested, {len(rejected)} files rejected")
    for entry in dataset.manifest.get("skipped", []):
        print(f"  skipped duplicate path {entry['path']}: {entry['reason']}")
    for entry in rejected:
        print(f"  rejected {entry['path']}: {entry['reason']}")


def _model_spec(spec, dataset_path):
    """A model entry and its analysis section: a model name of a scenario (``SCENARIO.yaml:NAME``, or NAME of
    the scenario that made the dataset) or a small YAML file holding one model entry (optionally with
    ``preprocessing``/``training``/``split`` sections)."""
    import yaml

    from analysis.config import AnalysisConfig
    from simharps.dataset import open_dataset
    from simharps.scenario import load_scenario

    path, _, name = spec.rpartition(":") if spec.count(":") == 1 and not Path(spec).exists() else (spec, "", "")
    if Path(path).is_file():
        if path.endswith((".yaml", ".yml")) and name:
            return load_scenario(path).analysis_config, name
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise SimharpsError(f"cannot read the model file {path}: {error}") from error
        if not isinstance(data, dict):
            raise SimharpsError(f"{path}: a model file is a YAML mapping (name, kind, latent_dim, ...)")
        if "analysis" in data:
            section = data["analysis"]
            name = name or (section.get("models") or [{}])[0].get("name")
        else:
            sections = {key: data.pop(key) for key in ("split", "metrics") if key in data}
            section = {"models": [data], **sections}
            name = data.get("name")
        try:
            return AnalysisConfig.model_validate(section), name
        except ValueError as error:
            raise SimharpsError(f"{path}: {error}") from error
    analysis = open_dataset(dataset_path).manifest.get("analysis") or {}
    try:
        config = AnalysisConfig.model_validate(analysis)
    except ValueError as error:
        raise SimharpsError(f"{dataset_path}: its scenario's analysis section: {error}") from error
    return config, spec


def _train(args):
    from analysis.encode import encode_dataset
    from analysis.train import train_model
    from simharps.dataset import open_dataset

    analysis, name = _model_spec(args.model, args.dataset)
    try:
        model_config = analysis.model(name)
    except KeyError as error:
        raise SimharpsError(error.args[0]) from error
    dataset = open_dataset(args.dataset)
    out = Path(args.out)
    model_dir = out / "models" / model_config.name
    try:
        train_model(model_config, analysis, dataset, model_dir, out / "cache", progress=not args.quiet)
        if int(os.environ.get("RANK", "0")) != 0:    # under torchrun, rank 0 alone encodes and reports
            return
        encode_dataset(model_dir, dataset, args.name, out / "cache")
    except ValueError as error:
        raise SimharpsError(str(error)) from error
    history = json.loads((model_dir / "history.json").read_text())["epochs"]
    print(f"{model_dir}: {model_config.kind}, {len(history)} epoch(s), final train loss "
          f"{history[-1]['train_loss']:.5g}, latents-{args.name}.npy written")


def _encode(args):
    from analysis.encode import encode_dataset
    from simharps.dataset import open_dataset

    model_dir = Path(args.model_dir)
    dataset = open_dataset(args.dataset)
    name = args.name or Path(args.dataset).name
    cache_root = Path(args.cache) if args.cache else model_dir.parent.parent / "cache"
    try:
        latents, recon = encode_dataset(model_dir, dataset, name, cache_root)
    except ValueError as error:
        raise SimharpsError(str(error)) from error
    print(f"{latents}\n{recon}")


def _metrics_options(model_config):
    """The metrics section of the scenario that made the model's training set (defaults when there is none)."""
    from analysis.config import AnalysisConfig, MetricsConfig
    from simharps.dataset import DatasetError, open_dataset

    try:
        section = open_dataset(model_config["dataset"]["path"]).manifest.get("analysis") or {}
        return AnalysisConfig.model_validate(section).metrics
    except (DatasetError, ValueError):
        return MetricsConfig()


def _evaluate(args):
    from analysis.metrics import format_table
    from simharps.dataset import open_dataset
    from simharps.workflow import evaluate_model

    model_dir = Path(args.model_dir)
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else None
    if config is None:
        raise SimharpsError(f"{model_dir}: no config.json (not a trained model directory)")
    dataset_path = Path(args.dataset) if args.dataset else Path(config["dataset"]["path"])
    name = args.name or ("sim" if not args.dataset else dataset_path.name)
    if not (model_dir / f"latents-{name}.npy").exists():
        names = sorted(p.stem[len("latents-"):] for p in model_dir.glob("latents-*.npy"))
        if not args.name and len(names) == 1 and not args.dataset:
            name = names[0]
    out = Path(args.out) if args.out else model_dir.parent.parent / "metrics" / f"{model_dir.name}-{name}.json"
    dataset = open_dataset(dataset_path)
    reference = None
    if dataset.manifest["fingerprint"] != config["dataset"]["fingerprint"]:
        # another set (e.g. a real series): its repeat dispersion is compared with the training population's
        training_set = open_dataset(config["dataset"]["path"])
        for path in sorted(model_dir.glob("latents-*.npy")):
            if np.load(path, mmap_mode="r").shape[0] == len(training_set) and path.stem != f"latents-{name}":
                reference = (path, training_set)
                break
    result = evaluate_model(model_dir, dataset, name, _metrics_options(config), out, reference=reference)
    print(format_table(result))
    print(out)


def _run(args):
    from simharps.dataset.runner import check_workers
    from simharps.scenario import load_scenario
    from simharps.workflow import run_scenario

    check_workers(args.workers)
    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    _check_output_dir(out)
    started = time.perf_counter()
    report = run_scenario(scenario, out, workers=args.workers, progress=not args.quiet, quiet=args.quiet,
                          baseline=args.baseline)
    print(f"report: {report}  ({time.perf_counter() - started:.0f} s)")


def _report(args):
    from analysis.report import build_report

    rundir = Path(args.rundir)
    if not (rundir / "run.json").exists() and not (rundir / "models").is_dir():
        raise SimharpsError(f"{rundir} is not a run directory (no run.json, no models/)")
    print(build_report(rundir, baseline=args.baseline))


def _regress(args):
    from analysis.regress import main as regress_main

    return regress_main(args.metrics, args.baseline, update=args.update, tolerances_path=args.tolerances)


def _fidelity(args):
    from simharps.fidelity import run_fidelity
    from simharps.fidelity.report import summary_lines

    result = run_fidelity(args.dataset, args.labels, Path(args.out), window=args.window, seed=args.seed,
                          fit_seeing=not args.no_seeing_fit, cnn_test=not args.no_cnn, overwrite=args.overwrite,
                          progress=not args.quiet)
    print("\n".join(summary_lines(result)))
    print(Path(args.out) / "fidelity.html")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="simharps",
        description="Simulate HARPS-like spectra with known ground truth and read HARPS archive products.",
    )
    parser.add_argument("--version", action="version", version=f"simharps {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    plot = commands.add_parser("plot", help="write a PNG of an archive product (ADP, DRS s1d, S1D) or a simulated ADP")
    plot.add_argument("file", help="FITS file")
    plot.add_argument("--out", help="PNG to write (default: the file's name with .png, in the current folder)")
    plot.add_argument("--window", nargs=2, type=float, metavar=("START_AA", "STOP_AA"), help="air wavelength range")
    plot.set_defaults(handler=_plot)

    spectrum = commands.add_parser(
        "spectrum", help="simulate one HARPS product (ADP file + PNG with its truth components)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulate one product through the whole chain. Parameters use the contract names "
                    "(docs/contracts.md),\ne.g. teff_k=4500 vmag=9 'pwv_mm=8 mm'; a bare number is in the unit below; "
                    "unset ones take a V = 8 solar twin's.",
        epilog=f"parameters (name, unit, valid range, default):\n{_parameter_help()}")
    spectrum.add_argument("params", nargs="*", metavar="NAME=VALUE")
    spectrum.add_argument("--out", default="reports/spectrum", help="output folder (default: reports/spectrum)")
    spectrum.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    spectrum.add_argument("--window", nargs=2, type=float, metavar=("START_AA", "STOP_AA"),
                          help="simulate only this air wavelength range")
    spectrum.set_defaults(handler=_spectrum)

    simulate = commands.add_parser("simulate", help="simulate a scenario YAML file into a dataset directory",
                                   description="Simulate every spectrum of a scenario (or ingest its real-data "
                                               "source) into a dataset; re-running resumes an interrupted run.")
    simulate.add_argument("scenario", help="scenario YAML file (see scenarios/ and docs/scenarios.md)")
    simulate.add_argument("--out", help="dataset directory (default: runs/<scenario name>)")
    simulate.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    simulate.add_argument("--scheduler", help="Dask scheduler address, or 'local' for a LocalCluster of --workers")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.add_argument("--overwrite", action="store_true", help="replace a different dataset in --out")
    simulate.add_argument("--plot", action="store_true", help="also write a PNG of the first spectrum")
    simulate.set_defaults(handler=_simulate)

    ingest = commands.add_parser("ingest", help="read archive products (files or folders) into a dataset")
    ingest.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    ingest.add_argument("--out", required=True, help="dataset directory")
    ingest.add_argument("--labels", help="CSV of literature labels (target name, teff_k, logg_cgs, mh_dex)")
    ingest.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.add_argument("--overwrite", action="store_true", help="replace a different dataset in --out")
    ingest.set_defaults(handler=_ingest)

    train = commands.add_parser("train", help="train one model on a dataset (resumable) and encode that dataset",
                                description="Train a model of a scenario's analysis section (by name; the "
                                            "dataset's own scenario by default, or SCENARIO.yaml:NAME) or of a "
                                            "small YAML file (name, kind, latent_dim, preprocessing, training).")
    train.add_argument("dataset", help="dataset directory (simulated or ingested)")
    train.add_argument("--model", required=True, metavar="SPEC", help="NAME, SCENARIO.yaml:NAME or MODEL.yaml")
    train.add_argument("--out", required=True, help="run directory (models/NAME/ and cache/ go there)")
    train.add_argument("--name", default="sim", help="dataset name in latents-NAME.npy (default sim)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)

    encode = commands.add_parser("encode", help="encode a dataset with a trained model (latents + reconstructions)")
    encode.add_argument("model_dir", help="RUNDIR/models/NAME")
    encode.add_argument("dataset", help="dataset directory (e.g. an ingested real series)")
    encode.add_argument("--name", help="dataset name in latents-NAME.npy (default: the directory's name)")
    encode.add_argument("--cache", help="preprocessing cache folder (default RUNDIR/cache)")
    encode.set_defaults(handler=_encode)

    evaluate = commands.add_parser("evaluate", help="metrics of a model's latents (writes the metrics JSON)")
    evaluate.add_argument("model_dir", help="RUNDIR/models/NAME")
    evaluate.add_argument("--dataset", help="dataset directory (default: the one the model was trained on)")
    evaluate.add_argument("--name", help="dataset name of latents-NAME.npy (default: sim, or the --dataset folder)")
    evaluate.add_argument("--out", help="metrics JSON (default RUNDIR/metrics/MODEL-NAME.json)")
    evaluate.set_defaults(handler=_evaluate)

    run = commands.add_parser("run", help="scenario -> dataset -> models -> metrics -> report (resumable)",
                              description="Simulate (or ingest) a scenario, train each model of its analysis "
                                          "section, encode every dataset it names, compute the metrics and write "
                                          "the validation report. Finished stages are skipped on a re-run.")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="run directory (default: runs/<scenario name>)")
    run.add_argument("--workers", type=int, default=1, help="simulation worker processes (default 1)")
    run.add_argument("--baseline", help="baseline JSON to mark metrics pass/fail (default: the scenario's)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="rebuild RUNDIR/report.html, the self-contained validation report")
    report.add_argument("rundir", help="run directory of `simharps run`")
    report.add_argument("--baseline", help="baseline JSON to mark each metric pass/fail (default: run.json's)")
    report.set_defaults(handler=_report)

    regress = commands.add_parser("regress", help="compare metrics with a stored baseline; exit 1 on a regression")
    regress.add_argument("metrics", nargs="+", help="metrics JSON files or RUNDIR/metrics folders")
    regress.add_argument("--baseline", required=True, help="baseline JSON (schema simharps-baseline/1)")
    regress.add_argument("--update", action="store_true",
                         help="write the baseline from these metrics instead (several seeds: mean, tolerance from "
                              "their spread)")
    regress.add_argument("--tolerances", help="scenario YAML (its regression: tolerances:) or a YAML/JSON mapping "
                                              "metric name or glob -> tolerance")
    regress.set_defaults(handler=_regress)

    fidelity = commands.add_parser("fidelity", help="measure real-vs-simulated gaps: twins, residuals, classifier "
                                                    "AUC, noise texture, flux scale (docs/fidelity.md)")
    fidelity.add_argument("dataset", help="real dataset directory (simharps ingest)")
    fidelity.add_argument("--labels", required=True,
                          help="CSV: target, teff_k, logg_cgs, mh_dex, vsini_kms, vmag, rv_kms")
    fidelity.add_argument("--out", required=True, help="output folder (twin/, fidelity.json, fidelity.html, PNGs)")
    fidelity.add_argument("--window", nargs=2, type=float, metavar=("START_AA", "STOP_AA"),
                          help="simulate the twins over this range only (default: the real set's range)")
    fidelity.add_argument("--seed", type=int, default=13, help="twin noise seed (default 13)")
    fidelity.add_argument("--no-seeing-fit", action="store_true", help="skip the seeing-equivalent fit")
    fidelity.add_argument("--no-cnn", action="store_true",
                          help="skip the CNN two-sample test (the logistic one always runs; the CNN costs ~20 s "
                               "per level on 50,000 bins x 172 spectra)")
    fidelity.add_argument("--overwrite", action="store_true", help="replace a different twin dataset in OUT/twin")
    fidelity.add_argument("--quiet", action="store_true", help="no progress bar")
    fidelity.set_defaults(handler=_fidelity)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args) or 0
    except SimharpsError as error:
        print(f"simharps {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"simharps {args.command}: error: {_os_error_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = f"; {INTERRUPTED[args.command]}" if args.command in INTERRUPTED else ""
        print(f"simharps {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
