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
