"""simharps: HARPS-like spectra with known ground truth.

The forward model composes stellar, interstellar, telluric, telescope, fibre,
instrument and detector stages into products in the HARPS archive formats;
see ``docs/contracts.md`` for parameter names, units and frames.
"""

__version__ = "0.1.0"
