"""Noise model for archive spectra without a usable error array (HARPS DRS s1d, ADP with ERR all NaN).

Equation (per extracted detector pixel, ``simharps.detector.Detector``; DESIGN "Detector")::

    N_{m,i}   = f(lambda_{m,i}) * B_m(lambda_{m,i}) * dlambda_{m,i} / 0.01 A     expected e- in pixel i of order m
    var_{m,i} = N_{m,i} + n_window * RON^2                                   e-^2 (Poisson + read noise)

where f is the product flux in blaze-corrected e- per 0.01 A bin (below), B_m the blaze of order m and
dlambda_{m,i} (~0.015 A) the pixel width (``simharps.instrument.EchelleLayout``, observatory frame; the pixel
wavelengths are moved to the product's barycentric frame by lambda (1 + BERV / c)). Per order, the variance of
the blaze-corrected flux per 0.01 A bin is var_{m,i} (0.01 A / (B dlambda))^2, interpolated linearly between
pixel centres to each bin (the bin carries a whole pixel's variance, as a smooth interpolation of the pixels
does); overlapping orders combine by inverse variance (the orders' contributions as in
``simharps.instrument.HarpsSpectrograph.merge``, same trimmed pixel ranges)::

    var(k) = 1 / sum_m 1 / var_m(k)

Bins the order layout does not reach (a few at the ends) fall back to the same formula with B = 1 and one
order. Non-HARPS products (ESPRESSO) without an error fall back to ``var = f / r + n_window RON^2 / r^2`` per
0.01 A bin, r = dlambda_px / 0.01 A with a pixel of ``PIXEL_KMS`` (no blaze: an underestimate towards order
edges).

Assumptions, and the evidence for them
--------------------------------------
* Flux unit: the DRS s1d (``BUNIT`` 'Relative Flux') and ADP (``TUNIT`` 'adu') flux is taken as
  blaze-corrected photo-electrons per 0.01 A bin (``electrons_per_flux_unit`` = 1). Evidence: the Gl273 e2ds
  order-centre fluxes reproduce the DRS ``SN{i}`` keywords as e- (with the read-noise term below); e2ds /
  (blaze x pixel width) is per-A and matches the s1d level x 0.01 A (``simharps.instrument``: the Gl581
  s1d is ~0.6 x the per-pixel e- its SN50 implies, i.e. 0.01 / 0.0152 A); and the scatter of the real
  ADP/s1d flux about a smooth curve matches this model, not one with an extra factor of the gain (1.42)
  (tests/test_ingest.py prints the measured values; docs/ingest.md lists them).
* Read-noise term: ``n_window`` = 6 CCD pixels, not the 17-pixel box of the extraction slit: solving
  SN_i = X_i / sqrt(X_i + n RON^2) for n with the DRS's own ``ESO DRS SPE EXT SN{i}`` keywords and the
  order-centre fluxes X_i of the Gl273 e2ds gives a median n = 6.0 (10-90 %: 4-9) over the 72 orders: the
  optimal extraction (``ESO DRS SPE EXT OPT``) weights the window. ``Detector`` uses the same 6 (a box extraction would be 17).
* Read noise and gain: each file's ``DETRON`` / ``ESO DRS CCD SIGDET`` (e- per CCD pixel), else 5.45 e-.
* The layout and blaze are the 2003-12-12 calibration (``simharps/data/harps_orders.md``); later HARPS
  configurations (2015 fibre change) have slightly different blaze shapes: errors near order edges are
  approximate to ~10-20 %.
* Per-bin variance: the simulator's merge interpolates the pixel values linearly, so its bins carry
  w_a^2 + w_b^2 (2/3 on average) of a pixel's variance; with that assumption the scatter of the real ADP about a
  smooth curve came out 1.14-1.27 times that model, with the whole-pixel variance used here 0.93-1.04
  (tests/test_ingest.py): the DRS s1d bins behave like a smooth (spline-like) interpolation of the pixels.
* The flux itself stands in for the expectation (clipped at 0): unbiased, with a noise of its own that adds
  < 1/S/N to the relative error.

Example
-------
>>> from simharps.ingest.noise import NoiseModel, modelled_error
>>> error = modelled_error(grid_aa, flux, meta, NoiseModel())   # meta: instrument, berv_kms, read_noise_e, ...
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simharps.constants import C_KMS
from simharps.detector import Detector
from simharps.errors import ParameterError
from simharps.grids import PRODUCT_STEP_AA
from simharps.instrument import MERGE_TRIM_PX, HarpsSpectrograph

DEFAULT_READ_NOISE_E = Detector.read_noise_e
DEFAULT_GAIN_E_PER_ADU = Detector.gain_e_per_adu
BLAZE_FLOOR = 0.02
"""Order pixels with a model blaze below this do not count in the merge (their variance would be unbounded)."""
PIXEL_KMS = {"HARPS": 0.82, "ESPRESSO": 0.5}
"""Extracted-pixel size (km/s) per instrument for the blaze-free fallback."""


@dataclass(frozen=True)
class NoiseModel:
    """Settings of the modelled error: effective extraction window (CCD pixels) and the flux unit in e-."""

    n_window: float = Detector.n_window
    electrons_per_flux_unit: float = 1.0

    def __post_init__(self):
        for name in ("n_window", "electrons_per_flux_unit"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"NoiseModel.{name} must be a positive number, got {value}")

    def detector(self, meta):
        """The ``Detector`` of a file: its own read noise and gain where the header gives them."""
        return Detector(
            gain_e_per_adu=meta.get("gain_e_per_adu") or DEFAULT_GAIN_E_PER_ADU,
            read_noise_e=meta.get("read_noise_e") or DEFAULT_READ_NOISE_E,
            n_window=self.n_window,
        )


@lru_cache(maxsize=1)
def _spectrograph():
    return HarpsSpectrograph()


def modelled_error(grid_aa, flux, meta, noise=NoiseModel()):
    """1-sigma error (flux units) of ``flux`` on the lattice ``grid_aa`` (barycentric); NaN where flux is NaN.

    ``meta`` needs ``instrument``, ``berv_kms``, ``exptime_s`` and optionally ``read_noise_e``/``gain_e_per_adu``.
    """
    grid = np.asarray(grid_aa, dtype=float)
    electrons = np.clip(np.asarray(flux, dtype=float), 0.0, None) * noise.electrons_per_flux_unit
    detector = noise.detector(meta)
    exptime_s = meta.get("exptime_s") or 0.0
    error_e = np.full(grid.size, np.nan)
    if meta.get("instrument") == "HARPS":
        error_e = _harps_merged_error(grid, electrons, meta["berv_kms"], detector, exptime_s)
    missing = np.isfinite(electrons) & ~(error_e > 0)
    if missing.any():
        pixel_aa = grid[missing] * PIXEL_KMS.get(meta.get("instrument"), PIXEL_KMS["HARPS"]) / C_KMS
        ratio = pixel_aa / PRODUCT_STEP_AA
        variance = detector.variance_e(electrons[missing] * ratio, exptime_s) / ratio**2
        error_e[missing] = np.sqrt(variance)
    error_e[~np.isfinite(electrons)] = np.nan
    return error_e / noise.electrons_per_flux_unit


def _harps_merged_error(grid, electrons, berv_kms, detector, exptime_s):
    layout = _spectrograph().layout
    pixel_bary = layout.pixel_wavelength_air_aa * (1.0 + berv_kms / C_KMS)
    to_bin = PRODUCT_STEP_AA / (layout.blaze * layout.pixel_width_aa)
    per_bin = np.interp(pixel_bary, grid, electrons, left=np.nan, right=np.nan)
    variance = detector.variance_e(np.nan_to_num(per_bin / to_bin), exptime_s) * to_bin**2
    variance = np.where(np.isfinite(per_bin) & (layout.blaze > BLAZE_FLOOR), variance, np.nan)
    inverse = np.zeros(grid.size)
    lo, hi = layout.valid_pixels[:, 0] + MERGE_TRIM_PX[0], layout.valid_pixels[:, 1] - MERGE_TRIM_PX[1]
    pixels = np.arange(layout.n_pixels)
    for row in range(layout.n_orders):
        start, stop = np.interp([lo[row], hi[row]], pixels, pixel_bary[row])
        k = slice(np.searchsorted(grid, start, "left"), np.searchsorted(grid, stop, "right"))
        order_variance = np.interp(grid[k], pixel_bary[row], variance[row])
        inverse[k] += np.where(np.isfinite(order_variance), 1.0 / order_variance, 0.0)
    return np.where(inverse > 0, 1.0 / np.sqrt(np.where(inverse > 0, inverse, 1.0)), np.nan)
