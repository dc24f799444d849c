"""Archive formats: read HARPS ADP / DRS s1d / ESPRESSO-pipeline S1D spectra and DRS e2ds, write the ADP layout.

* ``read_harps(path)`` -> ``HarpsProduct`` (``wavelength_air_aa``, ``flux``, ``error``, ``header``, ``path``,
  ``meta`` under the project's parameter names, ``truth``): ``simharps.io.harps``.
* ``read_e2ds(path)`` -> ``E2dsProduct`` (per-order flux, wavelength solution, blaze): ``simharps.io.harps``.
* ``write_adp(path, wavelength_air_aa, flux, error, meta, truth=None, header=None)``: ``simharps.io.adp``.
* Importing this package registers the ``specutils.Spectrum.read`` loader (format ``"simharps"``):
  ``simharps.io.specutils_loader``.

Layouts, keyword mappings and the truth keywords are documented in ``docs/io.md``.
"""

from simharps.io import specutils_loader
from simharps.io.adp import write_adp
from simharps.io.harps import E2dsProduct, HarpsProduct, detect_layout, read_e2ds, read_harps
from simharps.io.keywords import read_truth, truth_keyword

__all__ = [
    "E2dsProduct",
    "HarpsProduct",
    "detect_layout",
    "read_e2ds",
    "read_harps",
    "read_truth",
    "specutils_loader",
    "truth_keyword",
    "write_adp",
]
