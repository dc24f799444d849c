"""Instrument stage: HARPS echelle orders, blaze, LSF, pixel extraction and order merging.

Equations
---------
Grating equation and order layout (fibre A, 72 orders, physical numbers m = 161..116 on the
blue CCD and 114..89 on the red CCD; order 115 falls in the gap between the two CCDs)::

    m * lambda(x, m) = d (sin alpha + sin beta(x))  ~  P_ccd(x, m) + m * dlambda_m(x)

P_ccd is a 2-D Legendre polynomial (degree 3 in the pixel x, 6 in m) per CCD, the smooth
instrument model; dlambda_m(x) are per-order cubic corrections that restore the DRS per-order
solution of the calibration night exactly (``calibration="drs"``, the default; ``"smooth"``
drops them). Wavelengths are air, observatory frame, A, at pixel centres x = 0..4095
(pixel edges at x +- 0.5).

Blaze (efficiency per unit wavelength within an order, normalised to ~1 at its peak, like the
DRS ``blaze_A`` file), as a function of the grating phase X = m - G / lambda, G the median of
m * lambda at the order centres::

    B_m(lambda) = A_m sinc^2(alpha_m (X - X0_m)) exp(c2 u^2 + c3 u^3),  u = X - X0_m

sinc(z) = sin(pi z) / (pi z). A_m ~ 1, X0_m within +-0.035 of 0 (the peak sits near G / m,
mid-order), alpha_m ~ 0.5-0.97 (not the ideal 1: the R4 grating works off Littrow, the facets' shadowing and
the camera response reshape it); the exponential factor absorbs the residual flattening and
asymmetry. Free spectral range of order m: lambda_blaze / m, lambda_blaze the
wavelength of the model's peak.

Extraction (expected photo-electrons in pixel i of order m), from a photon density n(v) per
km/s on a log-lambda grid (v = c ln lambda) in the observatory frame::

    N_{m,i} = B_m(lambda_{m,i}) * integral_{v(edge i)}^{v(edge i+1)} (LSF * n)(v) dv

The LSF is a Gaussian of FWHM c / R in velocity (R = 115,000: 2.61 km/s, ~3.2 px of
0.81-0.84 km/s at order centres), applied with ``simharps.lsf`` before the exact integration
over each pixel (cumulative sum of the density at the input bin edges, linearly interpolated at
the pixel edges), so the pixel box adds its own width (effective FWHM ~2.68 km/s).

Merging onto the archive 1D grid (``simharps.grids.product_grid``, 0.01 A, barycentric frame): each order is
rebinned conserving its counts, then the orders are averaged with inverse-variance weights::

    lambda_bary = lambda_obs * (1 + BERV / c)                       (classical DRS convention)
    c_{m,i}     = N_{m,i} / B_{m,i}                                 (blaze-corrected e- per pixel)
    S_m(u)      = cubic spline through the cumulative counts sum_{i<j} c_{m,i} at the pixel edges u = j - 1/2
                  (u the pixel coordinate, pixel centres at integers)
    F_m(k)      = S_m(u_m(lambda_k + 0.005 A)) - S_m(u_m(lambda_k - 0.005 A))   blaze-corrected e- in bin k
    var_m(k)    = sum_i W_{m,k,i}^2 var(N_{m,i}) / B_{m,i}^2        with F_m(k) = sum_i W_{m,k,i} c_{m,i}
    F(k)        = sum_m F_m(k) / var_m(k) / sum_m 1 / var_m(k),  var(k) = 1 / sum_m 1 / var_m(k)

u_m(lambda) inverts the wavelength solution at lambda / (1 + BERV / c). The spline's slopes at the edges (the
densities D_e there, e- per pixel) are those of the natural cubic spline, D_e = sum_k z^k (c_{e+k} + c_{e-1-k}) /
norm with z = sqrt(3) - 2, cut after ``SPLINE_TAPS`` = 4 pixels on each side and renormalised (``EDGE_TAPS``); within a
pixel the density is the quadratic with D at its edges and mean c (S is the C1 cubic Hermite interpolant of the
cumulative counts; ``rebin_weights``). Each bin thus holds the counts that fall into it: the integral of any
spectrum is conserved, flat and sloped ones are reproduced bin by bin. Near the ends of an order's valid pixel range
the edge weights are renormalised over the pixels present; a pixel that is not usable (NaN counts or variance, blaze
<= 0) removes from the merge every bin of that order that reads it (SPLINE_TAPS pixels around the bin's own). The
variance is the exact marginal of this linear map for independent pixels; the covariance it introduces between
neighbouring bins (lag 1, 2, 3: +0.39, -0.14, -0.05 for HARPS pixels) is not propagated, as in the DRS products'
error convention.

Why this rebin: the HARPS DRS user manual (3M6-MAN-HAR-33110-0016, 4.2.7) says only that the s1d holds the
"rebinned and merged spectral orders ... stretched to the barycentric referential", step 0.01 A, and the code of the
Geneva DRS (HARPS_3.8 made the real s1d used here) is not public. Its successor from the same team, the ESPRESSO
pipeline (which now also reduces HARPS), rebins by ``espdr_rebin``: cumulative flux at the pixel edges, a GSL natural
cubic spline, differenced at the bin edges; it passes the variance through the same operator, without the
covariances (as described in github.com/ivh/harps-pol, ``pyespdr/demod.py`` and README). Of the candidates tried on
noise-only pixels (linear interpolation, as before; cumulative linear, PCHIP, Akima, quintic and natural-spline
rebins; cubic and quintic interpolation of the pixel values, the latter as in APERO's ``e2ds_to_s1d``), this one
matches the noise texture measured on 86 real DRS s1d of alpha Cen B best (docs/fidelity.md: a whole pixel's variance
on average, lag-1/2/3 autocorrelations per 200 A within 0.07 of the real photon-noise values, a negative lag 2);
linear interpolation gave 2/3 of a pixel's variance and a positive lag 2. The variance here is the exact marginal,
sum_i W^2 var, not the flux operator applied to the variances.

Counting the blaze-corrected e- per fixed 0.01 A bin (rather than per pixel) is what makes adjacent orders agree in
the overlaps: on the real Gl273 e2ds, e2ds / blaze_A steps by 15-28 % between orders, e2ds / (blaze_A *
dlambda) agrees to ~1 %. The product is thus per 0.01 A bin, as the DRS s1d appears to be (the
Gl581 s1d is ~0.6 x the e2ds counts per pixel that its SN50 implies at 5565 A, i.e.
0.01 A / 0.0152 A). Each order contributes to the bins whose centres lie between its pixels
``first_valid + 0.5`` and ``last_valid - 2`` (``merge_trim_px``): measured on the real s1d and
ADP products, whose CCD-gap edges and red end sit there (the DRS drops the last ~2 pixels of
each order). Bins no order reaches (the CCD gap, 5303.9-5337.3 A moving with BERV, and
beyond the ends) hold zeros, as in the DRS s1d and ADP products.

``extract`` and ``merge`` take any log-lambda grid, any BERV and batches, and work out the geometry on each call:
they are the exact reference. The forward model uses ``simharps.extraction``, which fixes the geometry once per
product window and is tested against them (< 3e-4 of the continuum; the merges to 2e-5).

Approximations: one Gaussian LSF in velocity everywhere (the real HARPS LSF varies slightly
along and across orders and is not exactly Gaussian); no scattered light, cross-order
contamination or fibre-B light; the blaze is a smooth model (the real flat-field blaze has
1-5 % lamp features in a few blue orders, which it does not reproduce); the layout is the one
calibration of 2003-12-12 (later calibrations differ by small drifts); the rebin onto the 0.01 A grid correlates
neighbouring bins (the error array is the per-bin marginal); the spline is taken in the pixel coordinate (uniform
knots) rather than in wavelength as espdr does (the pixel width changes by < 1e-4 from one pixel to the next).

Source: the real calibration files named by HARPS.2003-12-13T06:19:48.371_e2ds_A.fits, fitted by
``scripts/build_order_layout.py`` (``simharps/data/harps_orders.md``); HARPS user manual for the
order numbering and CCD layout.

Example
-------
>>> import numpy as np
>>> from simharps.grids import log_lambda_grid
>>> from simharps.instrument import HarpsSpectrograph
>>> spectrograph = HarpsSpectrograph()
>>> wave_obs_aa = log_lambda_grid(3770.0, 6925.0, step_kms=0.15)
>>> counts = spectrograph.extract(wave_obs_aa, 50.0 * np.ones_like(wave_obs_aa))  # (72, 4096)
>>> product = spectrograph.merge(counts, variance=counts + 6 * 5.45**2, berv_kms=-8.686)
>>> product.wavelength_air_aa, product.flux, product.error
"""

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from numpy.polynomial import legendre

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import PRODUCT_STEP_AA, product_grid
from simharps.lsf import convolve_gaussian_velocity, fwhm_kms_from_resolution

LAYOUT_FILE = Path(__file__).resolve().parent / "data" / "harps_orders.npz"

RESOLVING_POWER = 115_000.0
"""HARPS resolving power (user manual); LSF FWHM c / R = 2.607 km/s."""


@dataclass(frozen=True)
class InstrumentMode:
    """A HARPS observing mode: resolving power and on-sky fibre diameter (arcsec)."""

    resolving_power: float
    fibre_diameter_arcsec: float


MODES = {"HAM": InstrumentMode(RESOLVING_POWER, 1.0), "EGGS": InstrumentMode(80_000.0, 1.4)}
"""HARPS modes (user manual): HAM (high accuracy, 1" fibres, R = 115,000) and EGGS (high efficiency, 1.4" fibres,
R ~ 80,000). EGGS is modelled with the HAM order layout and blaze: its fibres sit a few pixels away on the CCD and
no EGGS calibration is available here, so its wavelength solution, blaze and CCD-gap edges are approximate, and
it shares the grey spectrograph efficiency calibrated on HAM (its extra light comes from the larger fibre alone)."""

MERGE_TRIM_PX = (0.5, 2.0)
"""Pixels dropped at the (blue, red) end of each order's valid range when merging (measured on the real products)."""

VARIANCE_FLOOR_E2 = 1e-6
"""Smallest variance (e-^2) a pixel can carry in the merge weights; keeps zero-count pixels finite."""

SPLINE_TAPS = 4
"""Pixels on each side of a pixel edge that set the density there in the rebin (``EDGE_TAPS``): the interior
weights of the natural cubic spline of the cumulative counts, z^k with z = sqrt(3) - 2, cut after 4 (the next is
z^4 = 0.5 % of the first) and renormalised (the noise texture is that of the uncut spline to < 0.003). A product bin
reads the pixels it overlaps and SPLINE_TAPS on each side."""

SPLINE_POLE = np.sqrt(3.0) - 2.0
"""Ratio of successive weights of the natural cubic spline's edge densities (the root of z^2 + 4 z + 1 = 0)."""

EDGE_TAPS = SPLINE_POLE ** np.arange(SPLINE_TAPS) / (2.0 * np.sum(SPLINE_POLE ** np.arange(SPLINE_TAPS)))
"""Weights of the pixels e + k and e - 1 - k (k = 0 .. SPLINE_TAPS - 1) in the density at the edge between pixels
e - 1 and e (sum 1 over both sides)."""

CALIBRATIONS = ("drs", "smooth")


class EchelleLayout:
    """The HARPS fibre-A echelle format: order numbers, pixel wavelengths, blaze, FSR, overlaps, CCD gap.

    Arrays are (n_orders, n_pixels) = (72, 4096), rows from the bluest order (m = 161) to the reddest
    (m = 89). Wavelengths are air, observatory frame, A.
    """

    def __init__(self, path=LAYOUT_FILE, calibration="drs"):
        if calibration not in CALIBRATIONS:
            raise ParameterError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        with np.load(path) as data:
            self.orders = data["orders"].astype(np.int64)
            self.ccd = np.where(data["ccd"] == 0, "blue", "red")
            self.n_pixels = int(data["n_pixels"])
            self.valid_pixels = data["valid_pixels"].astype(np.int64)
            self.grating_constant_aa = float(data["grating_constant_aa"])
            self._x_norm = data["x_norm"]
            self._wave_coef = data["wave_coef"]
            self._wave_m_norm = data["wave_m_norm"]
            self._order_correction = data["wave_order_correction"] if calibration == "drs" else None
            self._blaze_params = data["blaze_params"]
        self.calibration = calibration

    @property
    def n_orders(self):
        return self.orders.size

    def order_index(self, order):
        """Row of physical order number(s) ``order``; ParameterError for orders HARPS does not record."""
        order = np.asarray(order)
        rows = np.searchsorted(-self.orders, -order)
        rows = np.clip(rows, 0, self.n_orders - 1)
        if np.any(self.orders[rows] != order):
            raise ParameterError(f"order must be one of 89..114 or 116..161 (115 is lost in the CCD gap), got {order}")
        return rows

    def wavelength_air_aa(self, pixel):
        """Air wavelength (A, observatory frame) at fractional pixel positions, every order.

        ``pixel``: (k,) positions shared by all orders, or (n_orders, k) per order. Returns (n_orders, k).
        """
        x = np.asarray(pixel, dtype=float)
        xs = np.broadcast_to((x - self._x_norm[0]) / self._x_norm[1], (self.n_orders,) + x.shape[-1:])
        wave = np.empty(xs.shape)
        for ccd_id, name in enumerate(("blue", "red")):
            rows = self.ccd == name
            m = self.orders[rows].astype(float)[:, None]
            ms = np.broadcast_to((m - self._wave_m_norm[ccd_id, 0]) / self._wave_m_norm[ccd_id, 1], xs[rows].shape)
            wave[rows] = legendre.legval2d(xs[rows], ms, self._wave_coef[ccd_id]) / m
        if self._order_correction is not None:
            wave += np.stack([legendre.legval(xs[i], self._order_correction[i]) for i in range(self.n_orders)])
        return wave

    def pixel_at(self, rows, wavelength_air_aa, iterations=3):
        """Fractional pixel positions (centres at integers) of observatory-frame wavelengths in orders ``rows``.

        ``rows``, ``wavelength_air_aa``: (n,) each. Inverts ``wavelength_air_aa``: linear interpolation between the
        pixel centres, then Newton steps with the local centre spacing as the slope (the solution's slope changes by
        < 1e-4 per pixel: each step gains 4 decades; 3 steps reach the float64 rounding).
        """
        rows = np.asarray(rows, dtype=np.int64)
        wave = np.asarray(wavelength_air_aa, dtype=float)
        centres = self.pixel_wavelength_air_aa
        pixels = np.arange(self.n_pixels, dtype=float)
        position = np.empty(wave.size)
        slope = np.empty(wave.size)
        order = np.argsort(rows, kind="stable")
        bounds = np.searchsorted(rows[order], np.arange(self.n_orders + 1))
        counts = np.diff(bounds)
        for row in np.flatnonzero(counts):
            members = order[bounds[row]:bounds[row + 1]]
            position[members] = np.interp(wave[members], centres[row], pixels, left=np.nan, right=np.nan)
            a = np.clip(np.floor(position[members]), 0, self.n_pixels - 2).astype(np.int64)
            slope[members] = centres[row, a + 1] - centres[row, a]
        if wave.size == 0:
            return position
        # evaluate the solution at the (row, position) pairs: one padded (orders, k) call per step
        slot = np.empty(wave.size, dtype=np.int64)
        slot[order] = np.arange(wave.size) - bounds[rows[order]]
        padded = np.zeros((self.n_orders, max(int(counts.max()), 1)))
        for _ in range(iterations):
            padded[rows, slot] = np.nan_to_num(position)
            position = position - (self.wavelength_air_aa(padded)[rows, slot] - wave) / slope
        return position

    @cached_property
    def pixel_wavelength_air_aa(self):
        """Wavelengths of the pixel centres, (72, 4096)."""
        return self.wavelength_air_aa(np.arange(self.n_pixels))

    @cached_property
    def pixel_edges_air_aa(self):
        """Wavelengths of the pixel edges (x - 0.5 ... x + 0.5), (72, 4097)."""
        return self.wavelength_air_aa(np.arange(self.n_pixels + 1) - 0.5)

    @cached_property
    def pixel_edges_ln_aa(self):
        """Natural log of the pixel-edge wavelengths in A, (72, 4097) (where extraction integrates)."""
        return np.log(self.pixel_edges_air_aa)

    @cached_property
    def pixel_width_aa(self):
        """Pixel widths in A, (72, 4096)."""
        return np.diff(self.pixel_edges_air_aa, axis=1)

    @cached_property
    def pixel_width_kms(self):
        """Pixel widths in velocity, c ln(lambda_hi / lambda_lo), km/s, (72, 4096)."""
        return C_KMS * np.diff(np.log(self.pixel_edges_air_aa), axis=1)

    def grating_phase(self, wavelength_air_aa):
        """X = m - G / lambda for each order (rows) at wavelengths broadcastable to (72, k)."""
        return self.orders[:, None] - self.grating_constant_aa / np.asarray(wavelength_air_aa, dtype=float)

    def blaze_at(self, wavelength_air_aa):
        """Model blaze of every order at wavelengths broadcastable to (72, k) (A, observatory frame)."""
        p = self._blaze_params
        u = self.grating_phase(wavelength_air_aa) - p[:, 2:3]
        return p[:, 0:1] * np.sinc(p[:, 1:2] * u) ** 2 * np.exp(u * u * (p[:, 3:4] + u * p[:, 4:5]))

    @cached_property
    def blaze(self):
        """Model blaze at the pixel centres, (72, 4096), ~1 at each order's peak."""
        return self.blaze_at(self.pixel_wavelength_air_aa)

    @cached_property
    def blaze_wavelength_aa(self):
        """Wavelength of each order's model blaze peak, A (to a tenth of a pixel)."""
        pixel = np.arange(0.0, self.n_pixels - 1, 0.1)
        wave = self.wavelength_air_aa(pixel)
        return wave[np.arange(self.n_orders), np.argmax(self.blaze_at(wave), axis=1)]

    @cached_property
    def free_spectral_range_aa(self):
        """Free spectral range lambda_blaze / m of each order, A."""
        return self.blaze_wavelength_aa / self.orders

    @cached_property
    def valid_range_air_aa(self):
        """(72, 2) wavelengths of the outer edges of each order's first and last valid pixel."""
        rows = np.arange(self.n_orders)
        edges = self.pixel_edges_air_aa
        return np.stack([edges[rows, self.valid_pixels[:, 0]], edges[rows, self.valid_pixels[:, 1] + 1]], axis=1)

    def overlaps_aa(self):
        """Overlaps of adjacent orders on the same CCD: structured array (order_blue, order_red, start_aa, stop_aa)."""
        rng = self.valid_range_air_aa
        same_ccd = self.ccd[:-1] == self.ccd[1:]
        out = np.zeros(int(same_ccd.sum()), dtype=[("order_blue", "i8"), ("order_red", "i8"), ("start_aa", "f8"), ("stop_aa", "f8")])
        out["order_blue"] = self.orders[:-1][same_ccd]
        out["order_red"] = self.orders[1:][same_ccd]
        out["start_aa"] = rng[1:, 0][same_ccd]
        out["stop_aa"] = rng[:-1, 1][same_ccd]
        return out

    @cached_property
    def ccd_gap_aa(self):
        """(start, stop) of the wavelength range recorded by neither CCD (red edge of m=116 to blue edge of m=114), A."""
        last_blue = int(np.flatnonzero(self.ccd == "blue")[-1])
        return float(self.valid_range_air_aa[last_blue, 1]), float(self.valid_range_air_aa[last_blue + 1, 0])


@dataclass
class MergedSpectrum:
    """A merged 1D product on the archive grid (barycentric frame, air, A).

    flux, error : blaze-corrected photo-electrons per 0.01 A bin (zeros where no order reaches)
    n_orders    : how many orders contributed to each bin (0 in the CCD gap and beyond the ends)
    berv_kms    : the BERV (scalar, or one per spectrum) that moved the observatory-frame pixels
    """

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    n_orders: np.ndarray
    berv_kms: float | np.ndarray


def _searchsorted_left(grid, values):
    """``np.searchsorted(grid, values, "left")`` for many keys coming in sorted runs (e.g. each order's pixels).

    The first guess is the grid index interpolated at each key (``np.interp`` walks sorted keys in O(1) each);
    one comparison with each neighbour then fixes the guesses that rounding put one index off.
    """
    guess = np.ceil(np.interp(values, grid, np.arange(grid.size, dtype=float))).astype(np.int64)
    guess += (guess < grid.size) & (np.take(grid, np.minimum(guess, grid.size - 1)) < values)
    guess -= (guess > 0) & (np.take(grid, np.maximum(guess - 1, 0)) >= values)
    return guess


def _sum_into_bins(values, geom):
    """Sums of ``values`` (..., n_pairs; bool counts) into the product bins, one ``np.bincount`` per row."""
    rows = values.reshape(-1, values.shape[-1])
    if rows.dtype == bool:
        sums = [np.bincount(geom.bins[row], minlength=geom.n_bins) for row in rows]
    else:
        sums = [np.bincount(geom.bins, weights=row, minlength=geom.n_bins) for row in rows]
    return np.stack(sums).reshape(values.shape[:-1] + (geom.n_bins,))


def cubic_parts(fraction):
    """(alpha, beta, gamma) at fractions s of a pixel's width: the counts between its left edge and s are
    alpha D_left + beta D_right + gamma c, D the densities at its edges, c its counts (the quadratic density with
    those edge values and mean c, integrated)."""
    s = fraction
    rest = 1.0 - s
    return s * rest * rest, -s * s * rest, s * s * (3.0 - 2.0 * s)


@lru_cache(maxsize=8)
def _edge_templates(columns):
    """(J, columns) weights of the pixels lo_pixel - SPLINE_TAPS + j in the density at the left edge of pixel
    lo_pixel + J (interior, before renormalisation; J = 0 .. columns - 2 * SPLINE_TAPS)."""
    templates = np.zeros((columns - 2 * SPLINE_TAPS + 1, columns))
    for edge in range(templates.shape[0]):
        for k in range(SPLINE_TAPS):
            templates[edge, edge + SPLINE_TAPS + k] += EDGE_TAPS[k]
            templates[edge, edge + SPLINE_TAPS - 1 - k] += EDGE_TAPS[k]
    return templates


def rebin_weights(lo_pixel, lo_fraction, hi_pixel, hi_fraction, first, last):
    """Weights of the pixels in the counts of bins: the module docstring's rebin, written out per bin.

    A bin runs from fraction ``lo_fraction`` of pixel ``lo_pixel`` to fraction ``hi_fraction`` of pixel ``hi_pixel``
    (pixel indices of one run, integer arrays; fractions from the pixel's left edge, in [0, 1)); ``first``, ``last``:
    the run's pixels (inclusive): the others are absent, the edge densities are renormalised over the pixels present.
    Returns (start, weights): weights (n, columns) float64 of the pixels start + j, start = lo_pixel - SPLINE_TAPS,
    zero for absent pixels and beyond the bin's stencil (the pixels it overlaps and SPLINE_TAPS on each side)."""
    lo_pixel, hi_pixel = np.asarray(lo_pixel, np.int64), np.asarray(hi_pixel, np.int64)
    first, last = np.asarray(first, np.int64), np.asarray(last, np.int64)
    n, taps = lo_pixel.size, SPLINE_TAPS
    span = hi_pixel - lo_pixel
    columns = 2 * taps + 1 + (int(span.max()) if n else 0)
    start = lo_pixel - taps
    pixel = start[:, None] + np.arange(columns)
    present = (pixel >= first[:, None]) & (pixel <= last[:, None])
    templates = _edge_templates(columns)
    weights = np.zeros((n, columns))
    alpha, beta, gamma = cubic_parts(np.asarray(lo_fraction, dtype=float))
    alpha_hi, beta_hi, gamma_hi = cubic_parts(np.asarray(hi_fraction, dtype=float))
    for edge, coefficient in ((np.zeros(n, np.int64), -alpha), (np.ones(n, np.int64), -beta), (span, alpha_hi),
                              (span + 1, beta_hi)):
        density = templates[edge] * present          # the density at the left edge of pixel lo_pixel + edge
        weights += (coefficient / density.sum(axis=1))[:, None] * density
    column = np.arange(columns)
    weights -= gamma[:, None] * (column == taps)
    weights += gamma_hi[:, None] * (column == (taps + span)[:, None])
    weights += (column >= taps) & (column < (taps + span)[:, None])   # pixels between the edges count whole
    return start, weights


@dataclass
class _MergeGeometry:
    """Which order pixels feed which product bins, with what weights (``rebin_weights``)."""

    bins: np.ndarray       # (n_pairs,) product bin of each (order, bin) pair
    start: np.ndarray      # (n_pairs,) flat pixel index of the first weight column
    weights: np.ndarray    # (n_pairs, columns) float64
    row_first: np.ndarray  # (n_pairs,) flat index of the first and last pixel of the pair's order run: the weights
    row_last: np.ndarray   # of pixels outside it are zero
    reach: np.ndarray      # (2, n_pairs) flat indices of the first and last pixel the pair reads
    edges: np.ndarray      # (2, n_pairs) pixel positions (in the order, centres at integers) of the bin's edges
    n_bins: int


def product_bin_factor(layout, blaze):
    """Per-pixel factor (flat) from e- per pixel to blaze-corrected e- per 0.01 A (NaN where the blaze is <= 0)."""
    return np.where(blaze > 0, PRODUCT_STEP_AA / (blaze * layout.pixel_width_aa), np.nan).ravel()


def bin_edges(grid):
    """Edges of the product bins centred on ``grid`` (increasing): midway between neighbours, the outer ones half a
    spacing out (+-``PRODUCT_STEP_AA`` / 2 for a single bin). For the 0.01 A lattice: lambda_k +- 0.005 A."""
    grid = np.asarray(grid, dtype=float)
    if grid.size < 2:
        return np.concatenate([grid - 0.5 * PRODUCT_STEP_AA, grid + 0.5 * PRODUCT_STEP_AA])
    middle = 0.5 * (grid[1:] + grid[:-1])
    return np.concatenate([[1.5 * grid[0] - 0.5 * grid[1]], middle, [1.5 * grid[-1] - 0.5 * grid[-2]]])


class HarpsSpectrograph:
    """HARPS as an instrument stage: LSF, extraction into order pixels, blaze-corrected order merging.

    ``layout``: an EchelleLayout (default: the shipped HARPS layout); ``resolving_power``: R of the
    Gaussian velocity LSF; ``merge_trim_px``: pixels dropped at the (blue, red) ends of each order's
    valid range when merging.
    """

    def __init__(self, layout=None, resolving_power=RESOLVING_POWER, merge_trim_px=MERGE_TRIM_PX):
        if resolving_power <= 0:
            raise ParameterError(f"resolving_power must be positive, got {resolving_power}")
        if len(merge_trim_px) != 2 or min(merge_trim_px) < 0:
            raise ParameterError(f"merge_trim_px must be two non-negative pixel counts, got {merge_trim_px}")
        self.layout = layout if layout is not None else EchelleLayout()
        self.resolving_power = float(resolving_power)
        self.merge_trim_px = tuple(float(t) for t in merge_trim_px)
        self._last_geometry = None

    @property
    def lsf_fwhm_kms(self):
        return fwhm_kms_from_resolution(self.resolving_power)

    def extract(self, wavelength_air_aa, photons_per_kms, *, apply_lsf=True):
        """Expected photo-electrons per order pixel, (..., 72, 4096), from a photon density per km/s.

        ``wavelength_air_aa``: (n,) grid uniform in ln(lambda), observatory frame; ``photons_per_kms``:
        (..., n) photons per km/s reaching the spectrograph (batches along leading axes). The LSF is
        applied first (float64 overlap-add FFTs, ``simharps.lsf``; equal to the direct correlation to ~1e-15),
        then each pixel integrates the density exactly and is multiplied by the blaze.
        Pixels not covered by the input grid are NaN (``merge`` skips them).
        """
        wave = np.asarray(wavelength_air_aa, dtype=float)
        density = np.asarray(photons_per_kms, dtype=float)
        if wave.ndim != 1 or wave.size < 2 or density.shape[-1] != wave.size:
            raise ParameterError(f"photons_per_kms must end with the wavelength axis ({wave.size}), got shape {density.shape}")
        log_wave = np.log(wave)
        step = (log_wave[-1] - log_wave[0]) / (wave.size - 1)
        if step <= 0 or np.ptp(np.diff(log_wave)) > 1e-6 * step:
            raise ParameterError("wavelength_air_aa must be increasing and uniform in ln(lambda) (see simharps.grids.log_lambda_grid)")
        step_kms = step * C_KMS
        if apply_lsf:
            density = convolve_gaussian_velocity(density, step_kms, self.lsf_fwhm_kms, method="fft")
        # cumulative photons (in units of step_kms) at the input bin edges
        cumulative = np.zeros(density.shape[:-1] + (wave.size + 1,))
        np.cumsum(density, axis=-1, out=cumulative[..., 1:])
        # position of each pixel edge in units of input bins, counted from the first input bin edge
        t = (self.layout.pixel_edges_ln_aa - log_wave[0]) / step + 0.5
        inside = (t >= 0.0) & (t <= wave.size)
        j = np.clip(np.floor(t).astype(np.int64), 0, wave.size - 1)
        frac = np.clip(t, 0.0, wave.size) - j
        at_edges = cumulative[..., j] + frac * density[..., j]
        counts = np.diff(at_edges, axis=-1) * (step_kms * self.layout.blaze)
        covered = inside[:, :-1] & inside[:, 1:]
        return np.where(covered, counts, np.nan)

    def _cached_merge_geometry(self, berv_kms, grid):
        """``_merge_geometry``, reused while consecutive merges share the BERV and the grid (e.g. a product and its
        truth components)."""
        cached = self._last_geometry
        if cached is not None and cached[0] == berv_kms and np.array_equal(cached[1], grid):
            return cached[2]
        geom = self._merge_geometry(berv_kms, grid)
        self._last_geometry = (berv_kms, grid.copy(), geom)
        return geom

    def _merge_geometry(self, berv_kms, grid):
        """The rebin of every order onto ``grid`` at ``berv_kms`` (module docstring): which bins, which weights.

        Order r feeds the bins whose centres lie between its fractional pixels ``lo_r`` and ``hi_r`` (the valid
        range less ``merge_trim_px``; wavelengths interpolated linearly between pixel centres). The bin edges
        (``bin_edges``) are put at their exact pixel positions (``EchelleLayout.pixel_at`` at lambda / (1 + BERV / c));
        the weights of the pixels each bin reads come from ``rebin_weights`` over the order's valid pixels.
        """
        layout = self.layout
        n_pix = layout.n_pixels
        factor = 1.0 + berv_kms / C_KMS
        pixel_wave = layout.pixel_wavelength_air_aa * factor
        rows = np.arange(layout.n_orders)
        ends = np.stack([layout.valid_pixels[:, 0] + self.merge_trim_px[0],
                         layout.valid_pixels[:, 1] - self.merge_trim_px[1]], axis=1)
        left = np.floor(ends).astype(np.int64)
        lower = pixel_wave[rows[:, None], left]
        wave_ends = (pixel_wave[rows[:, None], left + 1] - lower) * (ends - left) + lower
        start = np.searchsorted(grid, wave_ends[:, 0], "left")
        stop = np.maximum(np.searchsorted(grid, wave_ends[:, 1], "right"), start)
        length = stop - start
        offsets = np.cumsum(length) - length
        bins = np.arange(length.sum()) + np.repeat(start - offsets, length)
        pair_row = np.repeat(rows, length)
        # each order's run of bins has one edge more than bins: edges start .. stop of bin_edges(grid)
        edges = bin_edges(grid)
        fed = length > 0
        edge_row = np.repeat(rows[fed], length[fed] + 1)
        edge_index = np.concatenate([np.arange(start[r], stop[r] + 1) for r in rows[fed]] or [np.zeros(0, int)])
        position = layout.pixel_at(edge_row, edges[edge_index] / factor)
        lo_edge = np.arange(bins.size) + np.repeat(np.cumsum(fed) - 1, length)   # the pair's lower edge
        lo, hi = position[lo_edge], position[lo_edge + 1]
        lo_pixel = np.floor(lo + 0.5).astype(np.int64)
        hi_pixel = np.floor(hi + 0.5).astype(np.int64)
        first, last = layout.valid_pixels[pair_row, 0], layout.valid_pixels[pair_row, 1]
        starts, weights = [], []
        for chunk in np.array_split(np.arange(bins.size), max(1, bins.size // 65536)):
            start_px, w = rebin_weights(lo_pixel[chunk], lo[chunk] + 0.5 - lo_pixel[chunk], hi_pixel[chunk],
                                        hi[chunk] + 0.5 - hi_pixel[chunk], first[chunk], last[chunk])
            starts.append(start_px)
            weights.append(w)
        columns = max([w.shape[1] for w in weights] + [1])
        weights = np.concatenate([np.pad(w, ((0, 0), (0, columns - w.shape[1]))) for w in weights] or
                                 [np.zeros((0, columns))])
        origin = pair_row * n_pix
        reach = np.stack([origin + np.maximum(lo_pixel - SPLINE_TAPS, first),
                          origin + np.minimum(hi_pixel + SPLINE_TAPS, last)])
        return _MergeGeometry(bins, origin + np.concatenate(starts or [np.zeros(0, np.int64)]), weights,
                              origin + first, origin + last, reach, np.stack([lo, hi]), grid.size)

    def merge(self, counts, variance=None, berv_kms=0.0, *, blaze=None, wavelength_grid_aa=None):
        """Blaze-corrected, inverse-variance-weighted merge of order pixels onto the 0.01 A archive grid.

        ``counts``: (..., 72, 4096) e- per pixel (NaN = not recorded); ``variance``: e-^2, the shape of
        ``counts`` or broadcastable to it (one (72, 4096) array shared by a batch is weighted once; default: the
        Poisson expectation, counts); ``berv_kms``: barycentric correction, DRS
        convention, shifts the pixel wavelengths by (1 + BERV / c); a scalar, or one per spectrum of
        the batch (then merged one after the other); ``blaze``: (72, 4096) to divide
        by (default: the layout's model; pass the DRS blaze_A for real e2ds); ``wavelength_grid_aa``:
        increasing bin centres (default ``simharps.grids.product_grid()``). Returns a MergedSpectrum
        whose arrays have the batch shape plus the grid axis.
        """
        layout = self.layout
        counts = np.asarray(counts, dtype=float)
        shape = (layout.n_orders, layout.n_pixels)
        if counts.shape[-2:] != shape:
            raise ParameterError(f"counts must end with (orders, pixels) = {shape}, got {counts.shape}")
        variance = np.maximum(counts, 0.0) if variance is None else np.asarray(variance, dtype=float)
        if variance.shape[-2:] != shape or np.broadcast_shapes(variance.shape, counts.shape) != counts.shape:
            raise ParameterError(f"variance must have the shape of counts {counts.shape} or broadcast to it, "
                                 f"got {variance.shape}")
        blaze = layout.blaze if blaze is None else np.asarray(blaze, dtype=float)
        if blaze.shape != shape:
            raise ParameterError(f"blaze must have shape {shape}, got {blaze.shape}")
        berv_kms = np.asarray(berv_kms, dtype=float)
        if not np.all(np.isfinite(berv_kms)) or np.any(np.abs(berv_kms) > 200.0):
            raise ParameterError(f"berv_kms must be finite and within +-200 km/s, got {berv_kms}")
        grid = product_grid() if wavelength_grid_aa is None else np.asarray(wavelength_grid_aa, dtype=float)
        if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
            raise ParameterError("wavelength_grid_aa must be a non-empty increasing 1-D array")
        batch_shape = counts.shape[:-2]
        if berv_kms.ndim == 0:
            return self._merge_one_berv(counts, variance, float(berv_kms), blaze, grid)
        if berv_kms.shape != batch_shape:
            raise ParameterError(f"berv_kms must be a scalar or have the batch shape {batch_shape}, got {berv_kms.shape}")
        variance = np.broadcast_to(variance, counts.shape)
        parts = [self._merge_one_berv(counts[i], variance[i], float(berv_kms[i]), blaze, grid) for i in np.ndindex(batch_shape)]
        stack = {name: np.stack([getattr(p, name) for p in parts]).reshape(batch_shape + (grid.size,)) for name in ("flux", "error", "n_orders")}
        return MergedSpectrum(grid, stack["flux"], stack["error"], stack["n_orders"], berv_kms)

    def _merge_one_berv(self, counts, variance, berv_kms, blaze, grid):
        layout = self.layout
        batch_shape = counts.shape[:-2]
        to_bin = self.to_bin if blaze is layout.blaze else product_bin_factor(layout, blaze)
        to_counts = to_bin * layout.pixel_width_aa.ravel() / PRODUCT_STEP_AA   # 1 / blaze
        variance = variance.reshape(variance.shape[:-2] + (-1,))
        shared = variance.ndim == 1 or all(stride == 0 for stride in variance.strides[:-1])
        if shared:
            variance = variance[(0,) * (variance.ndim - 1)]
        else:
            variance = np.broadcast_to(variance, batch_shape + variance.shape[-1:])
        values_px = counts.reshape(batch_shape + (-1,)) * to_counts
        var_px = np.maximum(variance, VARIANCE_FLOOR_E2) * to_counts**2

        geom = self._cached_merge_geometry(berv_kms, grid)
        # a pair is usable when every pixel it reads is (finite counts and variance, blaze > 0)
        bad = ~np.isfinite(values_px) | ~np.isfinite(var_px)
        count_bad = np.zeros(bad.shape[:-1] + (bad.shape[-1] + 1,), dtype=np.int64)
        np.cumsum(bad, axis=-1, out=count_bad[..., 1:])
        usable = np.take(count_bad, geom.reach[1] + 1, axis=-1) == np.take(count_bad, geom.reach[0], axis=-1)
        if shared and usable.ndim > 1 and (usable == usable.reshape(-1, usable.shape[-1])[0]).all():
            usable = usable.reshape(-1, usable.shape[-1])[0]  # one weighting serves the whole batch
        values_px = np.where(np.isfinite(values_px), values_px, 0.0)
        var_px = np.where(np.isfinite(var_px), var_px, 0.0)
        value_pair = np.zeros(batch_shape + geom.bins.shape)
        var_pair = np.zeros(var_px.shape[:-1] + geom.bins.shape)
        for column, weight in enumerate(geom.weights.T):
            pixel = np.clip(geom.start + column, geom.row_first, geom.row_last)   # weight 0 where clipped
            value_pair += weight * np.take(values_px, pixel, axis=-1)
            var_pair += weight * weight * np.take(var_px, pixel, axis=-1)
        inv_var = np.where(usable, 1.0 / np.where(usable, var_pair, 1.0), 0.0)
        weighted = np.where(usable, value_pair, 0.0) * inv_var

        sum_inv = _sum_into_bins(inv_var, geom)
        sum_weighted = _sum_into_bins(weighted, geom)
        n_orders = _sum_into_bins(usable, geom).astype(np.int8)

        covered = sum_inv > 0
        safe = np.where(covered, sum_inv, 1.0)
        flux = np.where(covered, sum_weighted / safe, 0.0)
        error = np.where(covered, 1.0 / np.sqrt(safe), 0.0)
        full = batch_shape + (grid.size,)
        return MergedSpectrum(grid, flux, np.broadcast_to(error, full).copy(), np.broadcast_to(n_orders, full).copy(),
                              berv_kms)

    @cached_property
    def to_bin(self):
        """Per-pixel factor (flat) from e- per pixel to blaze-corrected e- per 0.01 A with the layout's blaze."""
        return product_bin_factor(self.layout, self.layout.blaze)
