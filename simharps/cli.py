"""The ``simharps`` command. Each sub-command exits 0 on success, non-zero with one clear message on bad input."""

import argparse
import sys
from pathlib import Path

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
