"""Stellar surface spectra: the built-in offline synthesis and its run-time template grid.

* ``synthesize(teff_k, logg_cgs, mh_dex, vmic_kms, vmac_kms, vsini_kms, rv_kms, window=...)``: one spectrum
  from the shipped VALD-derived line table (``simharps/data/stellar_lines.md``), Voigt profiles in a
  Milne-Eddington curve of growth with a finite maximum core depth, Stark-broadened Balmer wings, a
  backwarmed Planck continuum, rotation + macroturbulence, relativistic Doppler shift (``synthesis``).
* ``TemplateGrid``: disk-cached rest-frame templates on a (Teff, logg, [M/H]) grid, interpolated,
  broadened and shifted per star in tens of milliseconds (``templates``).
* ``PhoenixGrid`` / ``FitsGrid``: PHOENIX HiRes files (Husser et al. 2013) or any FITS grid indexed by
  (Teff, logg, [M/H]) from a user directory, interpolated in log flux (``phoenix``).
* ``StellarSpectrum``: the container every stellar model returns (``spectrum``).

Example
-------
>>> from simharps.stellar import synthesize
>>> star = synthesize(5713, 4.48, -0.37, vsini_kms=3.0, rv_kms=3.5, window=(5000.0, 5500.0))
"""

from simharps.stellar.linelist import TEFF_RANGE_K, load_line_table
from simharps.stellar.phoenix import FitsGrid, GridPoint, PhoenixGrid
from simharps.stellar.spectrum import StellarSpectrum
from simharps.stellar.synthesis import FULL_RANGE_AA, PARAMETER_RANGES, synthesize
from simharps.stellar.templates import TemplateGrid

__all__ = [
    "FULL_RANGE_AA",
    "FitsGrid",
    "GridPoint",
    "PARAMETER_RANGES",
    "PhoenixGrid",
    "TEFF_RANGE_K",
    "StellarSpectrum",
    "TemplateGrid",
    "load_line_table",
    "synthesize",
]
