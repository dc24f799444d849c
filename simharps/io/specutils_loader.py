"""specutils loader: ``specutils.Spectrum.read(path)`` for every layout ``read_harps`` reads (format "simharps").

How specutils finds it: specutils 2.4 has no entry-point hook. Loaders register with astropy's unified I/O
registry when the module defining them runs its ``@data_loader`` decorator, i.e. on import (specutils imports
its own ``default_loaders`` and the ``*.py`` files of ``~/.specutils``). ``simharps.io`` imports this module,
so after ``import simharps.io``, ``Spectrum.read(path)`` picks this loader for ADP, DRS s1d and S1D files.

The identifier reads headers only and claims a file only when its ``INSTRUME`` is HARPS or ESPRESSO and its
layout is one of these, so other ESO Phase-3 spectra stay with specutils' own loaders. It outranks the generic
``tabular-fits`` (priority 6) and ``wcs1d-fits`` loaders, which would otherwise take these files.

The ``Spectrum`` carries ``spectral_axis`` (air wavelengths, A), ``flux`` (the file's unit, dimensionless when it
names none that astropy knows, e.g. the s1d's "Relative Flux"), ``uncertainty`` (``StdDevUncertainty``, absent when
the file has no error), ``mask`` (S1D ``quality != 0``), and ``meta``: ``header`` (primary), the ``read_harps``
metadata under the project's parameter names, ``truth`` and ``path``.

Example
-------
>>> import simharps.io
>>> from specutils import Spectrum
>>> spectrum = Spectrum.read("HARPS.2010-09-18T23:42:36.178_s1d_A.fits")
>>> spectrum.meta["berv_kms"]
-23.5438771778635
"""

import os

import astropy.units as u
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum
from specutils.io.parsing_utils import read_fileobj_or_hdulist
from specutils.io.registers import data_loader

from simharps.errors import HarpsFormatError
from simharps.io.harps import SPECTRUM_LAYOUTS, detect_layout, read_harps

FORMAT = "simharps"
"""Format name under which the loader is registered (``Spectrum.read(path, format="simharps")``)."""

PRIORITY = 20
"""Registry priority: above specutils' generic FITS loaders (6 and below) and its instrument loaders (10)."""


def identify_harps(origin, *args, **kwargs):
    """True for a readable HARPS/ESPRESSO ADP, DRS s1d or S1D file (header check only)."""
    if origin != "read":
        return False
    with read_fileobj_or_hdulist(*args, **kwargs) as hdul:
        return detect_layout(hdul) in SPECTRUM_LAYOUTS


def to_spectrum(product):
    """A ``specutils.Spectrum`` from a ``HarpsProduct`` (see the module docstring for what it carries)."""
    unit = u.Unit(product.flux_unit, parse_strict="silent") if product.flux_unit else u.dimensionless_unscaled
    if isinstance(unit, u.UnrecognizedUnit):
        unit = u.dimensionless_unscaled
    return Spectrum(
        spectral_axis=product.wavelength_air_aa * u.AA,
        flux=product.flux * unit,
        uncertainty=None if product.error is None else StdDevUncertainty(product.error),
        mask=None if product.quality is None else product.quality != 0,
        meta={"header": product.header, **product.meta, "truth": product.truth, "path": str(product.path)},
    )


@data_loader(FORMAT, identifier=identify_harps, dtype=Spectrum, extensions=["fits", "fit", "fits.gz"],
             priority=PRIORITY)
def harps_loader(file_obj, **kwargs):
    """Read ``file_obj`` (a path, an open file or an ``HDUList`` opened from a file) with ``read_harps``."""
    if isinstance(file_obj, (str, os.PathLike)):
        path = file_obj
    elif isinstance(file_obj, fits.HDUList):
        path = file_obj.filename()
    else:
        path = getattr(file_obj, "name", None)
    if path is None:
        raise HarpsFormatError(repr(file_obj), "the simharps loader reads files by path; this object has none")
    return to_spectrum(read_harps(path))
