"""The ``simharps`` command. Each sub-command exits 0 on success, non-zero with one clear message on bad input."""

import argparse
import sys

from simharps import __version__
from simharps.errors import SimharpsError


def build_parser():
    parser = argparse.ArgumentParser(
        prog="simharps",
        description="Simulate HARPS-like spectra with known ground truth and read HARPS archive products.",
    )
    parser.add_argument("--version", action="version", version=f"simharps {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
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
