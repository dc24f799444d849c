"""PHOENIX HiRes synthetic spectra (Husser et al. 2013) read from a user directory, interpolated in the grid.

Model and layout
----------------
PHOENIX-ACES-AGSS-COND-2011 (Husser et al. 2013, A&A 553, A6; files from
phoenix.astro.physik.uni-goettingen.de, ``HiResFITS/``). Layout as published there
and as read by Starfish, phxlib and SPISEA (checked against their code):

* one flux file per grid point, named
  ``lte{Teff:05d}-{logg:.2f}{[M/H]:+.1f}[.Alpha={[a/M]:+.2f}].PHOENIX-ACES-AGSS-COND-2011-HiRes.fits``,
  e.g. ``lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits``. The character before
  logg is the sign of ``-logg`` (``-4.50`` is logg = +4.5); [M/H] = 0 is written ``-0.0``;
  the alpha part is absent for [alpha/M] = 0. Files sit in folders ``Z-0.0``, ``Z-0.5``,
  ``Z+0.5``, ``Z-0.0.Alpha=+0.20``, ...; this loader finds them anywhere below the
  directory and identifies a grid point by its file name alone.
* primary HDU: 1-D image of the surface flux density F_lambda in erg/s/cm^2/cm
  (``BUNIT``), float32, header keys ``PHXTEFF``, ``PHXLOGG``, ``PHXM_H``, ``PHXALPHA``
  (checked against the name when present).
* ``WAVE_PHOENIX-ACES-AGSS-COND-2011.fits``: primary HDU with the wavelengths in A, in
  **vacuum**, common to all flux files (1,569,128 samples, 500-55,000 A; the paper gives
  dlambda = 0.1 A below 3000 A, R = 500,000 in 3000-25,000 A and R = 100,000 beyond).
  The array is used as read: no uniform sampling is assumed, and the median native step
  inside the requested window is reported in ``params["native_step_kms"]``.
* nominal grid: Teff 2300-7000 K step 100 and 7000-12000 K step 200; logg 0-6 step 0.5;
  [M/H] -4, -3, -2, -1.5, ..., +1 (step 1 below -2, 0.5 above); [alpha/M] -0.2..+1.2
  step 0.2 (alpha-enhanced models only for part of the grid). Grid points found on disk
  outside these nodes (e.g. later Teff extensions) are added as nodes.

Equations
---------
Interpolation is multilinear in (Teff, logg, [M/H], [alpha/M]) on the *logarithm* of the
flux between the bracketing nodes::

    ln F(theta) = sum_c w_c ln F_c,    w_c = prod_k (1 - t_k  or  t_k),
    t_k = (theta_k - lo_k) / (hi_k - lo_k)

Log flux because the continuum changes roughly exponentially with Teff (Wien side:
ln B_lambda ~ -hc / (lambda k T)); for 100 K steps at 3000 K and 4000 A the midpoint error
of linear flux interpolation is ~1.7 %, of log interpolation ~0.3 %. Line cores interpolate
as geometric means, which keeps them between the bracketing depths. A point on a node
along an axis uses that node only, so a point on the grid reads exactly one file.
Zero fluxes (far UV of cool models) are floored at the smallest positive double.

Resampling is flux-conserving: each output pixel j gets the mean of the piecewise-linear
interpolant of the native flux over its bin, with the bin edges halfway (in ln lambda)
between output wavelengths, converted to vacuum::

    F_j = int_{e_j^vac}^{e_{j+1}^vac} F(lambda_vac) dlambda_vac / (e_{j+1}^air - e_j^air)

i.e. energy per air angstrom (the air/vacuum Jacobian, ~1.0003, is included). On the
0.15 km/s working grid, finer than the native sampling, this is linear interpolation up to
bin-averaging terms of order (bin / line width)^2; for coarser grids it conserves flux.
Each corner file is resampled onto the output grid (and cached) before the log-flux
interpolation, so a batch on one grid re-reads nothing.

Units and frame: output wavelengths in air (``simharps.grids.vacuum_to_air``, IAU/Morton
2000), uniform in ln lambda at ``step_kms``, stellar rest frame; flux in
erg/s/cm^2/A at the stellar surface (file values x 1e-8).

Approximations
--------------
* PHOENIX files carry no continuum. ``continuum`` is a pseudo-continuum, the upper
  envelope of the spectrum: in consecutive blocks of ``continuum_window_kms`` (default
  500 km/s, ~8 A at 5000 A) the highest pixel relative to a smooth (cubic) trend is an
  anchor; ln(flux) of the anchors is joined by a monotone cubic (PCHIP) and extended
  linearly past the end anchors; pixels still above that envelope become extra anchors
  (a few passes; see ``pseudo_continuum``). It follows the true continuum where each
  block holds continuum pixels; in crowded regions (blue of G stars, broad wings of
  Balmer/Mg b/Na D lines, molecular bands of M dwarfs) it is a line-blanketed
  pseudo-continuum, lower than the true one. ``normalised`` stays <= 1 up to what the
  last pass leaves (< 1e-6 on smooth continua, up to ~1e-3 where the continuum curves on
  the scale of a block). Not yet checked on real PHOENIX files.
* Linear (log-flux) interpolation between nodes; no interpolation error estimate.
* Wavelengths are not extrapolated: the window must lie inside the WAVE file's range.

Example
-------
>>> from simharps.stellar.phoenix import PhoenixGrid
>>> grid = PhoenixGrid("~/phoenix/HiResFITS/PHOENIX-ACES-AGSS-COND-2011")   # doctest: +SKIP
>>> spec = grid.spectrum(3480.0, 4.9, -0.1, window=(5000.0, 5100.0))         # doctest: +SKIP
>>> spec.flux, spec.continuum, spec.params["grid_weights"]                   # doctest: +SKIP

``FitsGrid`` does the same for any directory of 1-D FITS spectra listed in a CSV/JSON index
(file, teff_k, logg_cgs, mh_dex[, alpha_dex]); see its docstring.
"""

import csv
import itertools
import json
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.io import fits
from scipy.interpolate import PchipInterpolator

from simharps.constants import C_KMS
from simharps.errors import GridFileError, ParameterError
from simharps.grids import PRODUCT_RANGE_AA, WORKING_STEP_KMS, air_to_vacuum, log_lambda_grid
from simharps.stellar.spectrum import StellarSpectrum

PHOENIX_MODEL = "PHOENIX-ACES-AGSS-COND-2011"
"""Model family of the Husser et al. (2013) HiRes files this loader reads."""

WAVE_FILENAME = f"WAVE_{PHOENIX_MODEL}.fits"
"""Name of the file holding the common vacuum wavelength array (A)."""

FLUX_UNIT = "erg/s/cm^2/cm"
"""Unit of the flux in the PHOENIX HiRes files (``BUNIT``)."""

PER_CM_TO_PER_AA = 1.0e-8
"""erg/s/cm^2/cm -> erg/s/cm^2/A."""

NOMINAL_AXES = {
    "teff_k": np.concatenate([np.arange(2300.0, 7000.0, 100.0), np.arange(7000.0, 12000.1, 200.0)]),
    "logg_cgs": np.round(np.arange(0.0, 6.01, 0.5), 2),
    "mh_dex": np.array([-4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0]),
    "alpha_dex": np.round(np.arange(-0.2, 1.21, 0.2), 2),
}
"""Nodes of the published PHOENIX-ACES-AGSS-COND-2011 grid along each axis."""

_UNITS = {"teff_k": " K", "logg_cgs": " dex", "mh_dex": " dex", "alpha_dex": " dex"}
_HEADER_KEYS = {"teff_k": "PHXTEFF", "logg_cgs": "PHXLOGG", "mh_dex": "PHXM_H", "alpha_dex": "PHXALPHA"}
_NODE_TOLERANCE = 1e-6
_FILENAME_RE = re.compile(
    r"^lte(?P<teff>\d{4,5})(?P<gsign>[+-])(?P<logg>\d+\.\d+)(?P<mh>[+-]\d+\.\d+)"
    r"(?:\.Alpha=(?P<alpha>[+-]\d+\.\d+))?\." + re.escape(PHOENIX_MODEL) + r"-HiRes\.fits$"
)


class GridPoint(NamedTuple):
    """One node of a stellar grid."""

    teff_k: float
    logg_cgs: float
    mh_dex: float
    alpha_dex: float = 0.0


def _point(teff_k, logg_cgs, mh_dex, alpha_dex=0.0):
    """GridPoint with values rounded so that parsed names and computed nodes compare equal (and -0.0 -> 0.0)."""
    return GridPoint(*(float(np.round(v, 4)) + 0.0 for v in (teff_k, logg_cgs, mh_dex, alpha_dex)))


def phoenix_filename(teff_k, logg_cgs, mh_dex, alpha_dex=0.0):
    """Relative path (``Z`` folder / file name) of a PHOENIX HiRes flux file in the published layout."""
    mh = "-0.0" if round(mh_dex, 1) == 0 else f"{mh_dex:+.1f}"
    alpha = "" if round(alpha_dex, 2) == 0 else f".Alpha={alpha_dex:+.2f}"
    logg = f"{'-' if logg_cgs >= 0 else '+'}{abs(logg_cgs):.2f}"
    name = f"lte{int(round(teff_k)):05d}{logg}{mh}{alpha}.{PHOENIX_MODEL}-HiRes.fits"
    return f"Z{mh}{alpha}/{name}"


def parse_phoenix_filename(name):
    """GridPoint encoded in a PHOENIX HiRes flux file name, or None if the name is not one."""
    match = _FILENAME_RE.match(name)
    if match is None:
        return None
    logg = float(match["logg"]) * (1.0 if match["gsign"] == "-" else -1.0)
    alpha = float(match["alpha"]) if match["alpha"] else 0.0
    return _point(float(match["teff"]), logg, float(match["mh"]), alpha)


def linear_integral(x, y, at):
    """Integral from x[0] to each of ``at`` of the piecewise-linear interpolant of y(x); ``at`` within [x0, x-1]."""
    dx = np.diff(x)
    nodes = np.concatenate([[0.0], np.cumsum(0.5 * dx * (y[:-1] + y[1:]))])
    k = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2)
    t = at - x[k]
    slope = (y[k + 1] - y[k]) / dx[k]
    return nodes[k] + t * y[k] + 0.5 * slope * t * t


def resample_per_air_aa(wavelength_in_aa, flux_in, wavelength_air_aa, *, vacuum):
    """Flux-conserving resampling of flux density ``flux_in`` (per A) onto an air log-lambda grid.

    Each output pixel gets the integral of the piecewise-linear interpolant of ``flux_in`` over
    its bin (edges halfway in ln lambda, converted to vacuum when ``vacuum``) divided by the
    bin's width in air: flux per air A. The input must cover the bins (ValueError otherwise).
    """
    edges_air = bin_edges_log(wavelength_air_aa)
    edges_in = air_to_vacuum(edges_air) if vacuum else edges_air
    if edges_in[0] < wavelength_in_aa[0] or edges_in[-1] > wavelength_in_aa[-1]:
        raise ValueError(f"input covers {wavelength_in_aa[0]:.3f}-{wavelength_in_aa[-1]:.3f} A, "
                         f"output needs {edges_in[0]:.3f}-{edges_in[-1]:.3f} A")
    return np.diff(linear_integral(wavelength_in_aa, flux_in, edges_in)) / np.diff(edges_air)


def bin_edges_log(wavelength_aa):
    """Pixel edges halfway in ln(lambda) between the given wavelengths (half a step beyond each end)."""
    ln = np.log(wavelength_aa)
    mid = 0.5 * (ln[1:] + ln[:-1])
    return np.exp(np.concatenate([[2 * ln[0] - mid[0]], mid, [2 * ln[-1] - mid[-1]]]))


def pseudo_continuum(flux, step_kms, window_kms, max_passes=5, tolerance=1e-6):
    """Upper envelope of ``flux`` (last axis on a log-lambda grid): block maxima every ``window_kms`` + PCHIP.

    1. ln(flux) is detrended by a cubic in pixel index fitted to the raw block maxima, so that
       on a sloped continuum the anchor of a block is its highest point relative to the
       slope rather than its edge (which may sit in a line wing).
    2. In each block of ``round(window_kms / step_kms)`` pixels the highest detrended pixel is
       an anchor; ln(flux) at the anchors is joined by a monotone cubic (PCHIP) in pixel
       index, continued linearly past the end anchors (positive; exact for a power law).
    3. Where ln(flux) still exceeds the envelope by more than ``tolerance`` (a continuum
       curving between anchors), the pixel of largest excess in each such block becomes an
       extra anchor, for up to ``max_passes`` passes.
    """
    flux = np.asarray(flux, dtype=float)
    n = flux.size
    log_flux = np.log(np.maximum(flux, np.finfo(float).tiny))
    block = max(1, int(round(window_kms / step_kms)))
    n_blocks = -(-n // block)
    if n_blocks == 1:
        return np.full(n, flux.max())
    pad = n_blocks * block - n
    offsets = np.arange(n_blocks) * block
    pixels = np.arange(n, dtype=float)

    def block_argmax(values):
        padded = np.concatenate([values, np.full(pad, -np.inf)]).reshape(n_blocks, block)
        return np.argmax(padded, axis=1) + offsets, np.max(padded, axis=1)

    def envelope_through(anchors):
        inside = PchipInterpolator(anchors, log_flux[anchors], extrapolate=False)(pixels)
        lo = log_flux[anchors[0]] + (pixels - anchors[0]) * (
            (log_flux[anchors[1]] - log_flux[anchors[0]]) / (anchors[1] - anchors[0]))
        hi = log_flux[anchors[-1]] + (pixels - anchors[-1]) * (
            (log_flux[anchors[-1]] - log_flux[anchors[-2]]) / (anchors[-1] - anchors[-2]))
        return np.where(pixels < anchors[0], lo, np.where(pixels > anchors[-1], hi, inside))

    raw, _ = block_argmax(log_flux)
    scale = max(n - 1, 1)
    trend = np.polynomial.Polynomial.fit(raw / scale, log_flux[raw], deg=min(3, n_blocks - 1))(pixels / scale)
    anchors, _ = block_argmax(log_flux - trend)
    envelope = envelope_through(anchors)
    for _ in range(max_passes):
        worst, excess = block_argmax(log_flux - envelope)
        above = worst[excess > tolerance]
        if above.size == 0:
            break
        anchors = np.union1d(anchors, above)
        envelope = envelope_through(anchors)
    return np.exp(envelope)

class _InterpolatedGrid:
    """Multilinear log-flux interpolation over the nodes of a stellar grid, with an LRU cache of resampled corners.

    Subclasses provide ``self.axes`` (axis name -> sorted node array), ``self._files``
    (GridPoint -> path), ``_expected_path(point)`` (where a missing node should be) and
    ``_read_resampled(path, point, wavelength_air_aa)`` (flux per air A on that grid).
    """

    label = "stellar"

    def __init__(self, *, step_kms, cache_mb, continuum_window_kms):
        if step_kms <= 0:
            raise ParameterError(f"step_kms must be positive, got {step_kms}")
        if continuum_window_kms <= 0:
            raise ParameterError(f"continuum_window_kms must be positive, got {continuum_window_kms}")
        self.step_kms = float(step_kms)
        self.continuum_window_kms = float(continuum_window_kms)
        self.cache_bytes_max = int(cache_mb * 2**20)
        self._cache = OrderedDict()
        self._cache_bytes = 0
        self._hits = 0
        self._misses = 0

    def available_points(self):
        """Grid points whose files are present on disk, sorted."""
        return sorted(p for p, path in self._files.items() if Path(path).is_file())

    def cache_info(self):
        """Cache statistics: hits, misses, entries, bytes held and the byte limit."""
        return {"hits": self._hits, "misses": self._misses, "entries": len(self._cache),
                "bytes": self._cache_bytes, "max_bytes": self.cache_bytes_max}

    def clear_cache(self):
        """Drop every cached corner spectrum."""
        self._cache.clear()
        self._cache_bytes = 0

    def _bracket(self, name, value):
        """[(node, weight)] along one axis: the node itself when on it, else the two bracketing nodes."""
        nodes = self.axes[name]
        value = float(value)
        lo, hi = nodes[0], nodes[-1]
        if not np.isfinite(value) or value < lo - _NODE_TOLERANCE or value > hi + _NODE_TOLERANCE:
            raise ParameterError(
                f"{name} = {value:g} is outside the {self.label} grid ({lo:g} to {hi:g}{_UNITS[name]})")
        k = int(np.argmin(np.abs(nodes - value)))
        if abs(nodes[k] - value) <= _NODE_TOLERANCE:
            return [(nodes[k], 1.0)]
        k = int(np.searchsorted(nodes, value))
        t = (value - nodes[k - 1]) / (nodes[k] - nodes[k - 1])
        return [(nodes[k - 1], 1.0 - t), (nodes[k], t)]

    def corners(self, teff_k, logg_cgs, mh_dex, alpha_dex=0.0):
        """[(GridPoint, weight)] of the interpolation; ParameterError if off the grid or a needed file is missing."""
        per_axis = [self._bracket(name, value) for name, value in
                    zip(("teff_k", "logg_cgs", "mh_dex", "alpha_dex"), (teff_k, logg_cgs, mh_dex, alpha_dex))]
        corners = [(_point(*(node for node, _ in combo)), float(np.prod([w for _, w in combo])))
                   for combo in itertools.product(*per_axis)]
        missing = [p for p, _ in corners if p not in self._files or not Path(self._files[p]).is_file()]
        if missing:
            listed = ", ".join(self._expected_path(p) for p in missing)
            raise ParameterError(
                f"(teff_k, logg_cgs, mh_dex, alpha_dex) = ({teff_k:g}, {logg_cgs:g}, {mh_dex:g}, {alpha_dex:g}) "
                f"needs {len(missing)} {self.label} grid file(s) missing from {self.directory}: {listed}")
        return corners

    def _output_grid(self, window, wavelength_air_aa):
        if window is not None and wavelength_air_aa is not None:
            raise ParameterError("give either window or wavelength_air_aa, not both")
        if wavelength_air_aa is None:
            start_aa, stop_aa = PRODUCT_RANGE_AA if window is None else window
            if not 0 < start_aa < stop_aa:
                raise ParameterError(f"window must satisfy 0 < start_aa < stop_aa, got ({start_aa}, {stop_aa})")
            return log_lambda_grid(start_aa, stop_aa, self.step_kms), self.step_kms
        wave = np.asarray(wavelength_air_aa, dtype=float)
        dln = np.diff(np.log(wave)) if wave.ndim == 1 and wave.size > 1 else np.array([np.nan])
        if not (np.all(dln > 0) and np.allclose(dln, dln[0], rtol=1e-3)):
            raise ParameterError("wavelength_air_aa must be a 1-D grid uniform in ln(lambda), increasing")
        return wave, float(np.median(dln) * C_KMS)

    def _corner_log_flux(self, path, point, wave):
        key = (str(path), wave.size, wave[0], wave[-1])
        if key in self._cache:
            self._hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self._misses += 1
        flux = self._read_resampled(path, point, wave)
        log_flux = np.log(np.maximum(flux, np.finfo(float).tiny))
        log_flux.flags.writeable = False
        if log_flux.nbytes <= self.cache_bytes_max:
            self._cache[key] = log_flux
            self._cache_bytes += log_flux.nbytes
            while self._cache_bytes > self.cache_bytes_max:
                _, dropped = self._cache.popitem(last=False)
                self._cache_bytes -= dropped.nbytes
        return log_flux

    def spectrum(self, teff_k, logg_cgs, mh_dex, *, alpha_dex=0.0, window=None, wavelength_air_aa=None):
        """Interpolated surface spectrum (erg/s/cm^2/A, air wavelengths) at the given parameters.

        ``window=(start_aa, stop_aa)`` (air, A; default the HARPS product range) builds a
        log-lambda grid of the instance's ``step_kms``; or pass ``wavelength_air_aa``, an
        existing grid uniform in ln(lambda) (e.g. the forward model's working grid).
        """
        corners = self.corners(teff_k, logg_cgs, mh_dex, alpha_dex)
        wave, step_kms = self._output_grid(window, wavelength_air_aa)
        log_flux = np.zeros(wave.size)
        for point, weight in corners:
            log_flux += weight * self._corner_log_flux(self._files[point], point, wave)
        flux = np.exp(log_flux)
        params = {"teff_k": float(teff_k), "logg_cgs": float(logg_cgs), "mh_dex": float(mh_dex),
                  "alpha_dex": float(alpha_dex), "model": self.model_name,
                  "grid_weights": {Path(self._files[p]).name: w for p, w in corners},
                  "flux_unit": "erg/s/cm^2/A", "continuum": "pseudo (upper envelope)",
                  "continuum_window_kms": self.continuum_window_kms}
        params.update(self._extra_params(wave))
        return StellarSpectrum(wavelength_air_aa=wave, flux=flux,
                               continuum=pseudo_continuum(flux, step_kms, self.continuum_window_kms),
                               step_kms=step_kms, params=params)

    def _extra_params(self, wave):
        return {}


class PhoenixGrid(_InterpolatedGrid):
    """PHOENIX-ACES-AGSS-COND-2011 HiRes spectra from ``directory`` (see the module docstring).

    directory            : folder holding ``WAVE_PHOENIX-ACES-AGSS-COND-2011.fits`` (here or below)
                           and the flux files (in ``Z...`` folders or flat)
    step_kms             : output log-lambda step, km/s
    cache_mb             : bound of the in-memory LRU cache of resampled corner spectra
    continuum_window_kms : block width of the pseudo-continuum upper envelope, km/s
    """

    label = "PHOENIX"
    model_name = f"{PHOENIX_MODEL} HiRes (Husser et al. 2013)"

    def __init__(self, directory, *, step_kms=WORKING_STEP_KMS, cache_mb=256.0, continuum_window_kms=500.0):
        super().__init__(step_kms=step_kms, cache_mb=cache_mb, continuum_window_kms=continuum_window_kms)
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise GridFileError(self.directory, "PHOENIX directory does not exist")
        self._files = {}
        for path in sorted(self.directory.rglob(f"lte*.{PHOENIX_MODEL}-HiRes.fits")):
            point = parse_phoenix_filename(path.name)
            if point is None:
                continue
            if point in self._files:
                raise GridFileError(path, f"duplicate PHOENIX grid point {tuple(point)}, also in {self._files[point]}")
            self._files[point] = path
        if not self._files:
            raise GridFileError(self.directory, f"no PHOENIX HiRes flux files (lte*.{PHOENIX_MODEL}-HiRes.fits) found")
        self.wave_path = self._find_wave_file()
        self.wavelength_vac_aa = self._read_wave(self.wave_path)
        self.axes = {}
        for k, name in enumerate(GridPoint._fields):
            found = [p[k] for p in self._files]
            self.axes[name] = np.unique(np.round(np.concatenate([NOMINAL_AXES[name], found]), 4))

    def _find_wave_file(self):
        candidates = sorted(self.directory.rglob(WAVE_FILENAME), key=lambda p: (len(p.parts), str(p)))
        if not candidates:
            raise GridFileError(self.directory / WAVE_FILENAME,
                                "PHOENIX wavelength file not found in the directory or below it")
        return candidates[0]

    @staticmethod
    def _read_wave(path):
        try:
            with fits.open(path, memmap=False) as hdul:
                wave = np.asarray(hdul[0].data, dtype=float)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise GridFileError(path, f"unreadable PHOENIX wavelength file ({exc})") from exc
        if wave.ndim != 1 or wave.size < 2 or not np.all(np.isfinite(wave)) or not np.all(np.diff(wave) > 0) \
                or wave[0] <= 0:
            raise GridFileError(path, "PHOENIX wavelength array must be 1-D, finite, positive and increasing")
        return wave

    def _expected_path(self, point):
        return phoenix_filename(*point)

    def _extra_params(self, wave):
        i0, i1 = np.searchsorted(self.wavelength_vac_aa, air_to_vacuum(wave[[0, -1]]))
        native = np.diff(np.log(self.wavelength_vac_aa[max(i0 - 1, 0):i1 + 1]))
        return {"native_step_kms": float(np.median(native) * C_KMS), "wave_file": self.wave_path.name}

    def _read_resampled(self, path, point, wavelength_air_aa):
        wave = self.wavelength_vac_aa
        edges_vac = air_to_vacuum(bin_edges_log(wavelength_air_aa)[[0, -1]])
        if edges_vac[0] < wave[0] or edges_vac[-1] > wave[-1]:
            raise ParameterError(
                f"wavelength window {wavelength_air_aa[0]:.3f}-{wavelength_air_aa[-1]:.3f} A (air) is outside "
                f"the PHOENIX wavelength range {wave[0]:.1f}-{wave[-1]:.1f} A (vacuum) of {self.wave_path}")
        i0 = max(int(np.searchsorted(wave, edges_vac[0], side="right")) - 1, 0)
        i1 = min(int(np.searchsorted(wave, edges_vac[-1], side="left")) + 1, wave.size)
        flux = self._read_flux_window(path, point, i0, i1) * PER_CM_TO_PER_AA
        return resample_per_air_aa(wave[i0:i1], flux, wavelength_air_aa, vacuum=True)

    def _read_flux_window(self, path, point, i0, i1):
        """Native flux (erg/s/cm^2/cm) of samples i0:i1, reading only that slice; validates the file."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with fits.open(path, memmap=True) as hdul:
                    header = hdul[0].header
                    self._check_header(path, point, header)
                    flux = np.array(hdul[0].section[i0:i1], dtype=float)
            except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
                notes = "; ".join(str(w.message) for w in caught)
                raise GridFileError(path, f"unreadable PHOENIX flux file ({exc}{'; ' + notes if notes else ''})") \
                    from exc
        if not np.all(np.isfinite(flux)) or np.any(flux < 0):
            raise GridFileError(path, f"non-finite or negative flux between samples {i0} and {i1}")
        return flux

    def _check_header(self, path, point, header):
        if header.get("NAXIS") != 1 or header.get("NAXIS1") != self.wavelength_vac_aa.size:
            raise GridFileError(path, f"flux must be a 1-D image of {self.wavelength_vac_aa.size} samples like "
                                      f"{self.wave_path.name}, got NAXIS={header.get('NAXIS')}, "
                                      f"NAXIS1={header.get('NAXIS1')}")
        unit = header.get("BUNIT")
        if unit is not None and str(unit).strip().replace(" ", "") != FLUX_UNIT:
            raise GridFileError(path, f"flux unit BUNIT={unit!r}, expected {FLUX_UNIT!r}")
        for k, name in enumerate(GridPoint._fields):
            key = _HEADER_KEYS[name]
            if key in header and abs(float(header[key]) - point[k]) > 1e-3 * max(1.0, abs(point[k])):
                raise GridFileError(path, f"header {key}={header[key]} disagrees with the file name "
                                          f"({name}={point[k]:g})")


_WAVE_UNITS_AA = {"": 1.0, "angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "aa": 1.0, "nm": 10.0, "um": 1.0e4,
                  "micron": 1.0e4, "m": 1.0e10}


class FitsGrid(_InterpolatedGrid):
    """Any grid of 1-D FITS spectra indexed by (Teff, logg, [M/H]), interpolated like ``PhoenixGrid``.

    index_path        : CSV (header row) or JSON (list of objects) with ``file`` (relative to the
                        index), ``teff_k``, ``logg_cgs``, ``mh_dex`` and optionally ``alpha_dex``
    medium            : "vacuum" or "air", the frame of the files' wavelengths
    flux_to_per_aa    : factor turning the files' flux density into per-A units (1e-8 for per cm)
    wavelength_column, flux_column : columns of the first binary-table HDU, for table files;
                        image files use their linear WCS (CRVAL1, CDELT1 or CD1_1, CRPIX1; CUNIT1
                        Angstrom/nm/um/m, Angstrom if absent), log10(lambda) when ``DC-FLAG = 1``.

    The nodes of each axis are the distinct values in the index; the files need not share a
    wavelength grid (each is resampled onto the output grid before interpolation).
    """

    label = "FITS"
    model_name = "FITS grid"

    def __init__(self, index_path, *, medium="vacuum", flux_to_per_aa=1.0, wavelength_column="wavelength",
                 flux_column="flux", step_kms=WORKING_STEP_KMS, cache_mb=256.0, continuum_window_kms=500.0):
        super().__init__(step_kms=step_kms, cache_mb=cache_mb, continuum_window_kms=continuum_window_kms)
        if medium not in ("vacuum", "air"):
            raise ParameterError(f"medium must be 'vacuum' or 'air', got {medium!r}")
        self.index_path = Path(index_path).expanduser()
        self.directory = self.index_path
        self.medium = medium
        self.flux_to_per_aa = float(flux_to_per_aa)
        self.wavelength_column = wavelength_column
        self.flux_column = flux_column
        self._files = {}
        for row in self._read_index():
            try:
                point = _point(float(row["teff_k"]), float(row["logg_cgs"]), float(row["mh_dex"]),
                               float(row.get("alpha_dex") or 0.0))
                path = self.index_path.parent / str(row["file"])
            except (KeyError, TypeError, ValueError) as exc:
                raise GridFileError(self.index_path, f"bad index row {row!r} ({exc!r}); need file, teff_k, "
                                                     "logg_cgs, mh_dex[, alpha_dex]") from exc
            if point in self._files:
                raise GridFileError(self.index_path, f"grid point {tuple(point)} listed twice")
            self._files[point] = path
        if not self._files:
            raise GridFileError(self.index_path, "index lists no spectra")
        self.axes = {name: np.unique([p[k] for p in self._files]) for k, name in enumerate(GridPoint._fields)}

    def _read_index(self):
        try:
            text = self.index_path.read_text()
            if self.index_path.suffix.lower() == ".json":
                rows = json.loads(text)
            else:
                rows = list(csv.DictReader(text.splitlines()))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise GridFileError(self.index_path, f"unreadable grid index ({exc})") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GridFileError(self.index_path, "grid index must be a list of records")
        return rows

    def _expected_path(self, point):
        return str(self._files[point]) if point in self._files else f"(no index entry for {tuple(point)})"

    def _read_resampled(self, path, point, wavelength_air_aa):
        wave, flux = self._read_file(path)
        try:
            return resample_per_air_aa(wave, flux * self.flux_to_per_aa, wavelength_air_aa,
                                       vacuum=self.medium == "vacuum")
        except ValueError as exc:
            raise ParameterError(f"wavelength window is outside the coverage of {path}: {exc}") from exc

    def _read_file(self, path):
        """(wavelength in A, flux) of one file, sorted by wavelength; GridFileError when unreadable."""
        try:
            with fits.open(path, memmap=False) as hdul:
                hdu = next((h for h in hdul if h.data is not None and h.data.size), None)
                if hdu is None:
                    raise ValueError("no data")
                if isinstance(hdu, fits.BinTableHDU):
                    wave = np.asarray(hdu.data[self.wavelength_column], dtype=float).ravel()
                    flux = np.asarray(hdu.data[self.flux_column], dtype=float).ravel()
                    unit = hdu.columns[self.wavelength_column].unit or ""
                else:
                    flux = np.asarray(hdu.data, dtype=float).ravel()
                    header = hdu.header
                    step = header.get("CDELT1", header.get("CD1_1"))
                    pixel = np.arange(flux.size) + 1.0 - header.get("CRPIX1", 1.0)
                    wave = header["CRVAL1"] + step * pixel
                    if header.get("DC-FLAG", 0) == 1:
                        wave = 10.0 ** wave
                    unit = header.get("CUNIT1", "")
            unit = str(unit).strip().lower()
            if unit not in _WAVE_UNITS_AA:
                raise ValueError(f"unknown wavelength unit {unit!r} (known: {sorted(_WAVE_UNITS_AA)[1:]})")
            wave = wave * _WAVE_UNITS_AA[unit]
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise GridFileError(path, f"unreadable grid spectrum ({exc!r})") from exc
        order = np.argsort(wave)
        wave, flux = wave[order], flux[order]
        if wave.size < 2 or not np.all(np.isfinite(wave)) or not np.all(np.diff(wave) > 0) or \
                not np.all(np.isfinite(flux)) or np.any(flux < 0):
            raise GridFileError(path, "wavelengths must be finite and distinct, flux finite and non-negative")
        return wave, flux
