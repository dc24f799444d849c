"""The stellar-model interface the forward chain calls, and its two implementations.

The chain needs, for a star (Teff, logg, [M/H]), its rest-frame spectrum split into

* ``lines``: the continuum-normalised spectrum (float32) on indices ``[first, stop)`` of the synthesis lattice
  (uniform in ln lambda, ``WORKING_STEP_KMS`` = 0.15 km/s from ``GRID_START_AA``, air wavelengths), and
* ``continuum``: a callable giving the surface flux continuum (erg/s/cm^2/A) at rest-frame air wavelengths (A), smooth
  on 1 A scales (the chain evaluates it on a 1 A grid);

through ``StellarModel.rest_spectrum``. Broadening, Doppler shift, V-band scaling and everything after are the
chain's. Implementations:

* ``BuiltinStellarModel``: the disk-cached template grid of the built-in synthesis (``simharps.stellar.templates``),
  multilinear between nodes; the continuum is the backwarmed Planck continuum of the synthesis.
* ``GridStellarModel``: a ``PhoenixGrid`` (Husser et al. 2013 files) or ``FitsGrid`` from a user directory,
  log-flux interpolated and resampled onto the lattice (``simharps.stellar.phoenix``); lines = flux / pseudo-continuum
  (an upper envelope: PHOENIX files carry no continuum), continuum = that pseudo-continuum. Approximation: the
  envelope sits below the true continuum where lines blanket it (M dwarfs), so ``lines`` are shallower there than
  an opacity-free continuum would make them; the product (lines x continuum) is the model's flux either way.

``prepare(stars)`` builds or reads what a population needs before a run (templates; nothing for a grid). A dataset
fingerprint names the model by its scenario spec (``simharps.pipeline.stellar_model_spec``).
"""

from pathlib import Path

import numpy as np

from simharps.errors import ParameterError
from simharps.stellar.continuum import planck_flux
from simharps.constants import C_KMS
from simharps.stellar.synthesis import WORKING_STEP_KMS, lattice_indices, lattice_wavelengths

CONTINUUM_MARGIN_AA = 20.0
"""A grid model's pseudo-continuum is computed this far beyond the requested lattice span, so that the chain's 1 A
grid (which reaches a few A beyond the pixels) reads it without extrapolation."""


class PlanckContinuum:
    """pi B_lambda(T) at rest-frame wavelengths (A): erg/s/cm^2/A."""

    def __init__(self, temperature_k):
        self.temperature_k = float(temperature_k)

    def __call__(self, wavelength_rest_aa):
        return planck_flux(wavelength_rest_aa, self.temperature_k)


class TabulatedContinuum:
    """A continuum tabulated on rest-frame wavelengths, interpolated in ln(flux) vs ln(lambda)."""

    def __init__(self, wavelength_aa, flux):
        self.log_wave = np.log(np.asarray(wavelength_aa, dtype=float))
        self.log_flux = np.log(np.maximum(np.asarray(flux, dtype=float), np.finfo(float).tiny))

    def __call__(self, wavelength_rest_aa):
        log_wave = np.log(np.asarray(wavelength_rest_aa, dtype=float))
        if log_wave.min() < self.log_wave[0] - 1e-12 or log_wave.max() > self.log_wave[-1] + 1e-12:
            raise ParameterError("the stellar continuum was asked outside the span it was computed on")
        return np.exp(np.interp(log_wave, self.log_wave, self.log_flux))


class StellarModel:
    """What the chain asks of a stellar model (see the module docstring)."""

    name = ""
    step_kms = WORKING_STEP_KMS

    def rest_spectrum(self, teff_k, logg_cgs, mh_dex, first, stop):
        """(lines float32 on lattice indices [first, stop), continuum callable)."""
        raise NotImplementedError

    def check(self, teff_k, logg_cgs, mh_dex):
        """ParameterError when the model cannot give this star."""

    def prepare(self, stars, workers=1, progress=False):
        """Make ready what the stars [(teff_k, logg_cgs, mh_dex), ...] need (before a run, in parallel)."""

    @property
    def lattice_range(self):
        """(first, last) lattice indices the model covers (inclusive)."""
        raise NotImplementedError

    def _check_span(self, first, stop, what):
        low, high = self.lattice_range
        if first < low or stop - 1 > high:
            wave = lattice_wavelengths(low, high, self.step_kms)
            raise ParameterError(f"{what} moves the window outside the {self.name} stellar model's "
                                 f"{wave[0]:.0f}-{wave[-1]:.0f} A")


class BuiltinStellarModel(StellarModel):
    """The built-in synthesis through its disk-cached template grid (``TemplateGrid``)."""

    name = "builtin"

    def __init__(self, templates=None):
        from simharps.stellar.templates import TemplateGrid

        self.templates = templates if templates is not None else TemplateGrid()
        self.step_kms = self.templates.step_kms

    @property
    def lattice_range(self):
        return self.templates.first, self.templates.last

    def rest_spectrum(self, teff_k, logg_cgs, mh_dex, first, stop, what="the star"):
        self._check_span(first, stop, what)
        offset = self.templates.first
        lines, ratio = self.templates.interpolate(teff_k, logg_cgs, mh_dex, slice(first - offset, stop - offset))
        return lines, PlanckContinuum(ratio * teff_k)

    def check(self, teff_k, logg_cgs, mh_dex):
        self.templates.corners(teff_k, logg_cgs, mh_dex)

    def prepare(self, stars, workers=1, progress=False):
        needed = []
        for star in stars:
            try:
                self.check(*star)
            except ParameterError:
                continue  # outside the grid: that spectrum fails on its own and is recorded as failed
            needed.append(star)
        self.templates.build(self.templates.missing(needed), workers=workers, progress=progress)


class GridStellarModel(StellarModel):
    """A ``PhoenixGrid`` / ``FitsGrid`` on the synthesis lattice (see the module docstring)."""

    def __init__(self, grid, name="phoenix"):
        self.grid = grid
        self.name = name
        if abs(grid.step_kms - WORKING_STEP_KMS) > 1e-12:
            raise ParameterError(f"a stellar grid for the chain must use step_kms={WORKING_STEP_KMS}, "
                                 f"got {grid.step_kms}")

    @classmethod
    def phoenix(cls, directory):
        """The PHOENIX HiRes files (Husser et al. 2013 layout) under ``directory``."""
        from simharps.stellar.phoenix import PhoenixGrid

        if not Path(directory).is_dir():
            raise ParameterError(f"phoenix_dir {directory} is not a directory")
        return cls(PhoenixGrid(directory), "phoenix")

    @property
    def lattice_range(self):
        low, high = lattice_indices(3000.0, 25000.0, self.step_kms)
        return low + 1, high - 1

    def rest_spectrum(self, teff_k, logg_cgs, mh_dex, first, stop, what="the star"):
        self._check_span(first, stop, what)
        margin = int(np.ceil(CONTINUUM_MARGIN_AA / (lattice_wavelengths(first, first)[0] * self.step_kms / C_KMS)))
        wave = lattice_wavelengths(first - margin, stop - 1 + margin, self.step_kms)
        spectrum = self.grid.spectrum(teff_k, logg_cgs, mh_dex, wavelength_air_aa=wave)
        lines = (spectrum.flux / spectrum.continuum)[margin:margin + stop - first].astype(np.float32)
        return lines, TabulatedContinuum(wave, spectrum.continuum)

    def check(self, teff_k, logg_cgs, mh_dex):
        self.grid.corners(teff_k, logg_cgs, mh_dex)

