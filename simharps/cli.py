"""The ``simharps`` command. Each sub-command exits 0 on success, non-zero with one clear message on bad input."""

import argparse
import sys
from pathlib import Path

import numpy as np

from simharps import __version__
from simharps.errors import SimharpsError


def _plot(args):
    from simharps.io import read_harps
    from simharps.plotting import plot_spectrum

    product = read_harps(args.file)
    out = Path(args.out) if args.out else Path(Path(args.file).name).with_suffix(".png")
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
    values = {}
    for item in assignments:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise SimharpsError(f"parameters are NAME=VALUE (e.g. teff_k=5800), got {item!r}")
        try:
            values[name] = float(text)
        except ValueError:
            values[name] = text
    return values


def _spectrum(args):
    from simharps.forward import simulate
    from simharps.plotting import plot_simulation

    params = {**QUICKSTART_STAR, **_parse_assignments(args.params)}
    if "berv_kms" in params:
        params.pop("mjd_utc")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    simulation = simulate(params, args.seed, components=True, window=args.window)
    fits_path = simulation.write_adp(out / "spectrum.fits", overwrite=True)
    png_path = plot_simulation(out / "spectrum.png", simulation)
    snr = simulation.truth["snr_550"]
    print(f"{fits_path}\n{png_path}\nBERV {simulation.truth['berv_kms']:+.4f} km/s, "
          f"SN50 {'n/a (order 50 outside the window)' if snr is None else f'{snr:.1f}'}")


def _simulate(args):
    from simharps.pipeline import simulate_scenario
    from simharps.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("runs") / scenario.name
    dataset = simulate_scenario(scenario, out, workers=args.workers, scheduler=args.scheduler,
                                progress=not args.quiet, overwrite=args.overwrite)
    failed = int(np.sum(dataset.table["failed"]))
    print(f"{out}: {len(dataset)} spectra x {dataset.n_channels} channels ({failed} failed)")
    if args.plot:
        _plot_first(dataset, out / "first_spectrum.png")


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

    dataset = ingest_paths(args.paths, args.out, workers=args.workers, progress=not args.quiet,
                           overwrite=args.overwrite, labels_csv=args.labels)
    rejected = dataset.manifest.get("rejected", [])
    print(f"{args.out}: {len(dataset)} spectra ingested, {len(rejected)} files rejected")
    for entry in rejected:
        print(f"  rejected {entry['path']}: {entry['reason']}")


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
        description="Simulate one product through the whole chain. Parameters use the contract names "
                    "(docs/contracts.md), e.g. teff_k=4500 vmag=9 pwv_mm=8; unset ones take a V = 8 solar twin's.")
    spectrum.add_argument("params", nargs="*", metavar="NAME=VALUE")
    spectrum.add_argument("--out", default="reports/spectrum", help="output folder (default: reports/spectrum)")
    spectrum.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
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


if __name__ == "__main__":
    sys.exit(main())
