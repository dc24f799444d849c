"""Extraction and merging on fixed geometry: the fast path of the instrument stage for many spectra.

``HarpsSpectrograph.extract`` and ``merge`` (``simharps.instrument``) take any grid and any BERV and work out the
geometry each call. A batch of simulations shares the geometry: the order pixels sit at fixed observatory-frame
wavelengths, so with the photon density on one fixed log-lambda lattice (observatory frame) everything but the
numbers is known in advance. This module precomputes it once.

``LatticeExtraction`` (lattice -> order pixels). Mean photon density over pixel i (centre v_i, width w_i, km/s)::

    D_i = [(LSF * box_w_i) * n](v_i),   box_w the unit-area pixel box

One FFT convolution of the lattice density with the Gaussian LSF times a box of the narrowest pixel width w_0
(``simharps.lsf.gaussian_box_kernel``) gives g = (LSF * box_w0) * n; the rest of each pixel's box enters through
the even moments of a box (the mean over a box of width w is g + w^2 g2 / 24 + w^4 g4 / 1920 + ..., gN the N-th
derivative)::

    D_i = g + a2 g2 + a4 g4,   a2 = (w_i^2 - w_0^2) / 24,   a4 = (w_i^4 - w_0^4) / 1920 - a2 w_0^2 / 24

with g and its derivatives at v_i taken from the quintic through the 6 nearest samples of g, which is kept every 2nd
lattice point (0.3 km/s; the LSF leaves it no power above that Nyquist frequency): one fixed set of 6 weights per
pixel. Truncation (the sixth-order term, the quintic's error) is < 1e-5 of a line's depth for HARPS
pixels (0.68-0.96 km/s) on the 0.15 km/s lattice; against a brute-force extraction on a 0.02 km/s grid the pixel
means agree to < 2e-4 of the continuum (tested). Expected photo-electrons are then ``D_i * w_i`` times the smooth
factors and the blaze (``simharps.forward``).

``MergePlan`` (order pixels -> 0.01 A product bins, any BERV within +-``BERV_LIMIT_KMS``): the rebin of
``HarpsSpectrograph.merge`` (``simharps.instrument``: each order's blaze-corrected counts through a cubic spline of
their cumulative sum at the pixel edges, differenced at the bin edges; the orders averaged with inverse-variance
weights; bins no order reaches set to zero). For every order and every bin the order can reach at some BERV it stores
the pixel coordinate of the bin's lower edge and the bin's width in pixels at four BERVs (Chebyshev nodes of delta =
ln(1 + BERV / c) over the range, by exact inversion of the wavelength solution); at any other BERV they are the cubic
through them (< 1e-6 px, plus the float32 rounding of the stored values: ~1e-5 px on the edge, ~1e-7 px on the
width, which is what the bin's counts are sensitive to; a Taylor series in delta needs four terms for 1e-4 px at
30 km/s). Per call, per pixel p: the densities D at its left edge (two geometric sums over ``SPLINE_TAPS`` pixels)
and the (co)variances V0 = var D_p, V1 = cov(D_p, D_p+1), V2 = cov(D_p, D_p+2) (sums of the pixel variances with
weights z^2k). Per (order, bin) pair, with p the pixel holding its lower edge: its counts
c0 D_p + c1 D_p+1 + c2 D_p+2 + b0 c_p + b1 c_p+1, the coefficients from the fractions of pixels p and p + 1 below the
edges (``simharps.instrument.cubic_parts``), and their exact variance, the quadratic form of the same coefficients
with V0, V1, V2 and var_p, var_p+1 (float32, in cache-sized chunks). The pairs whose stencil reaches past the ends of
the pixel run (the order's valid range, or the plan's pixels) or that span three pixels (~0.5 % of them) take the
general per-bin weights (``simharps.instrument.rebin_weights``, float64). Against ``HarpsSpectrograph.merge``: flux
and error to < 1e-5 (tested to 2e-5). Cost: ~2.5x the linear interpolation this replaced (the variance of a spline
rebin needs eight gathered per-pixel sums per bin where interpolation needed two values).
"""

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.interpolate import CubicSpline

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import PRODUCT_STEP_AA
from simharps.instrument import (EDGE_TAPS, SPLINE_POLE, SPLINE_TAPS, VARIANCE_FLOOR_E2, EchelleLayout, bin_edges,
                                 rebin_weights)
from simharps.lsf import FWHM_PER_SIGMA, gaussian_box_kernel, overlap_save, overlap_save_index

LSF_HALF_WIDTH_SIGMA = 7.0
"""Half-width of the LSF kernels in Gaussian sigmas (plus half the box): the truncated tail is < 1e-11."""

BERV_LIMIT_KMS = 35.0
"""Largest |BERV| a MergePlan serves (the Earth's orbital + rotational speed is < 30.3 km/s)."""

BERV_NODES = 4
"""BERVs at which a MergePlan inverts the wavelength solution exactly (Chebyshev nodes over +-BERV_LIMIT_KMS)."""

INVERSION_STEP_PX = 0.125
"""Pixel step of the tables from which MergePlan inverts the wavelength solution (error < 2e-7 px). The solution is
evaluated at whole pixels and splined to that step (it is a cubic in the pixel coordinate: the spline departs from
it by < 1e-12 in ln lambda)."""


OUTPUT_DECIMATION = 2
"""The LSF-convolved density is computed on every 2nd lattice point (0.3 km/s): the LSF leaves it no power above
half the lattice's Nyquist frequency (the Gaussian's transform is exp(-68) there), so nothing is lost."""

STENCIL = np.arange(-2, 4)
"""Lattice nodes (relative to the one at or below a pixel centre) of the quintic that samples g and its derivatives."""


def quintic_weights(fraction):
    """(6, n) float32 Lagrange weights on the ``STENCIL`` nodes at fractional positions ``fraction`` (in [0, 1)):
    ``stencil_weights(fraction, 0, 0)``, computed from the products of the node distances directly."""
    f = np.asarray(fraction, dtype=np.float32)
    distance = [f - np.float32(node) for node in STENCIL]
    weights = []
    for k, node in enumerate(STENCIL):
        product = np.float32(1.0 / np.prod([node - other for other in STENCIL if other != node]))
        for m, other in enumerate(STENCIL):
            if m != k:
                product = product * distance[m]
        weights.append(product)
    return np.stack(weights)


def stencil_weights(fraction, second, fourth):
    """Weights on the 6 ``STENCIL`` nodes giving P(f) + second * P2(f) + fourth * P4(f) for the quintic P through
    them (PN its N-th derivative), at fractional positions f in [0, 1) (``second``, ``fourth`` in lattice units)."""
    powers = np.arange(STENCIL.size)
    f = np.asarray(fraction, dtype=float)[:, None]
    basis = f ** powers
    basis[:, 2:] += second[:, None] * powers[2:] * (powers[2:] - 1) * f ** (powers[2:] - 2)
    falling4 = powers[4:] * (powers[4:] - 1) * (powers[4:] - 2) * (powers[4:] - 3)
    basis[:, 4:] += fourth[:, None] * falling4 * f ** (powers[4:] - 4)
    return basis @ np.linalg.inv(STENCIL[:, None].astype(float) ** powers)


def neighbour_pairs(values, index):
    """(values[index], values[index + 1]) for float32 ``values`` with one gather: consecutive pairs viewed as complex64."""
    pairs = np.empty((values.size - 1, 2), dtype=np.float32)
    pairs[:, 0] = values[:-1]
    pairs[:, 1] = values[1:]
    both = np.take(pairs.view(np.complex64)[:, 0], index)
    return both.real, both.imag


class QuinticReader:
    """Reads a sampled smooth function at fixed fractional sample positions: the quintic through the 6 nearest samples
    (``STENCIL``), or any fixed 6-point weights (``weights``: (6, n)), as one gather and one weighted sum."""

    def __init__(self, position, weights=None):
        base = np.floor(position).astype(np.int64)
        self.index = base[None, :] + STENCIL[:, None]
        self.weights = quintic_weights(position - base) if weights is None else np.ascontiguousarray(weights,
                                                                                                    dtype=np.float32)

    def read(self, samples):
        """The function at the positions, from its samples (1-D, contiguous)."""
        return np.einsum("kn,kn->n", np.take(samples, self.index), self.weights)


class LatticeExtraction:
    """Mean density per order pixel from a density on a fixed lattice (observatory frame), see the module docstring.

    ``layout``: EchelleLayout; ``lattice_ln_aa``: ln of the lattice's first wavelength (A); ``step_kms``: lattice
    step; ``n_lattice``: lattice length; ``pixels``: (72, 4096) bool, the pixels to extract; ``fwhm_kms``: LSF FWHM.
    """

    def __init__(self, layout, lattice_ln_aa, step_kms, n_lattice, pixels, fwhm_kms):
        self.step_kms = float(step_kms)
        self.n_lattice = int(n_lattice)
        self.pixels = np.asarray(pixels, dtype=bool)
        self.flat_index = np.flatnonzero(self.pixels)
        widths = layout.pixel_width_kms.ravel()[self.flat_index]
        self.width_kms = widths
        centre_ln = np.log(layout.pixel_wavelength_air_aa.ravel()[self.flat_index])
        position = (centre_ln - lattice_ln_aa) * C_KMS / self.step_kms
        width_0 = float(widths.min())
        self.half = int(np.ceil((LSF_HALF_WIDTH_SIGMA * fwhm_kms / FWHM_PER_SIGMA + 0.5 * width_0) / self.step_kms))
        # the LSF-convolved density is kept every OUTPUT_DECIMATION-th lattice point from `half` on (the 'valid'
        # convolution): its sample j is lattice point half + OUTPUT_DECIMATION * j
        sample = (position - self.half) / OUTPUT_DECIMATION
        base = np.floor(sample).astype(np.int64)
        n_samples = -(-(self.n_lattice - 2 * self.half) // OUTPUT_DECIMATION)
        if self.flat_index.size and (base.min() + STENCIL[0] < 0 or base.max() + STENCIL[-1] >= n_samples):
            raise ParameterError("the lattice does not cover the pixels plus the LSF's half-width")
        self.kernel = gaussian_box_kernel(self.step_kms, fwhm_kms, width_0, self.half)
        sample_kms = OUTPUT_DECIMATION * self.step_kms
        second = (widths**2 - width_0**2) / 24.0
        fourth = (widths**4 - width_0**4) / 1920.0 - second * width_0**2 / 24.0
        self.reader = QuinticReader(sample, stencil_weights(sample - base, second / sample_kms**2,
                                                            fourth / sample_kms**4).T)
        self.reader.index = overlap_save_index(self.reader.index, self.kernel.size, OUTPUT_DECIMATION)

    def pixel_means(self, density):
        """Mean of ``density`` (lattice, float32 or float64) over each extracted pixel, flat (n_pixels,)."""
        if density.shape[-1] != self.n_lattice:
            raise ParameterError(f"density must have {self.n_lattice} lattice points, got {density.shape[-1]}")
        return self.reader.read(overlap_save(density, self.kernel, OUTPUT_DECIMATION).ravel())

    def to_orders(self, values, fill=np.nan):
        """Flat per-pixel values as a (72, 4096) float64 array, ``fill`` where not extracted."""
        out = np.full(self.pixels.shape, fill, dtype=float)
        out.ravel()[self.flat_index] = values
        return out


@dataclass
class MergedProduct:
    """Flux and error (blaze-corrected e- per 0.01 A bin) on a MergePlan's grid; zeros where no order reaches."""

    flux: np.ndarray
    error: np.ndarray


PAIR_CHUNK = 1 << 15
"""Pairs (order, bin) merged per pass of ``MergePlan.merge``: its work arrays then stay in the cache."""

_SCRATCH = threading.local()
"""Per-thread work arrays of ``MergePlan.merge`` (fresh temporaries of this size cost more than the arithmetic)."""

SCRATCH_SETS = 3
"""Sets of work arrays a thread keeps (one per size: plan and number of rows merged at once), most recent first."""


def _scratch(key, make):
    """The calling thread's work arrays for ``key`` (sizes), made by ``make()`` the first time (~35 MB for a full
    product and one row)."""
    held = getattr(_SCRATCH, "sets", None)
    if held is None:
        held = _SCRATCH.sets = {}
    arrays = held.pop(key, None)
    if arrays is None:
        arrays = make()
    held[key] = arrays
    while len(held) > SCRATCH_SETS:
        held.pop(next(iter(held)))
    return arrays


class MergePlan:
    """Order pixels -> product bins for any BERV within +-BERV_LIMIT_KMS, see the module docstring.

    ``layout``: EchelleLayout; ``grid``: product bin centres (barycentric, air, A, increasing); ``merge_trim_px``:
    pixels dropped at the (blue, red) ends of each order's valid range; ``to_bin``: (72 * 4096,) factor from e- per
    pixel to blaze-corrected e- per 0.01 A of the pixel's width (``simharps.instrument.product_bin_factor``; times
    the pixel width over 0.01 A it is 1 / blaze); ``pixels``: (72, 4096) bool, the pixels the merged arrays hold (one
    contiguous run per order; default all), in the flat order of ``np.flatnonzero(pixels)``.
    """

    def __init__(self, layout, grid, merge_trim_px, to_bin, pixels=None):
        self.grid = np.asarray(grid, dtype=float)
        pixels = np.ones((layout.n_orders, layout.n_pixels), dtype=bool) if pixels is None else np.asarray(pixels)
        flat = np.flatnonzero(pixels)
        self.to_bin = np.asarray(to_bin, dtype=np.float32)[flat]
        self.to_counts = (np.asarray(to_bin, dtype=float)[flat] * layout.pixel_width_aa.ravel()[flat]
                          / PRODUCT_STEP_AA).astype(np.float32)   # 1 / blaze
        self.n_pixels = flat.size
        counts = pixels.sum(axis=1)
        first = np.argmax(pixels, axis=1)
        if np.any(pixels.cumsum(axis=1)[np.arange(layout.n_orders), np.minimum(first + counts, layout.n_pixels) - 1]
                  != counts):
            raise ParameterError("pixels must form one contiguous run per order")
        run_start = np.cumsum(counts) - counts
        ends = np.stack([np.maximum(layout.valid_pixels[:, 0] + merge_trim_px[0], first),
                         np.minimum(layout.valid_pixels[:, 1] - merge_trim_px[1], first + counts - 1)],
                        axis=1).astype(float)
        # the pixels the rebin reads: the plan's run within the order's valid range
        spline_first = np.maximum(layout.valid_pixels[:, 0], first)
        spline_last = np.minimum(layout.valid_pixels[:, 1], first + counts - 1)
        outside = 2.0 * np.ceil(BERV_LIMIT_KMS / layout.pixel_width_kms.min()) + 4.0  # bins reach + node shift
        whole_pixels = np.arange(-outside, layout.n_pixels + outside + 1.0)
        x_table = np.arange(-outside, layout.n_pixels + outside, INVERSION_STEP_PX)
        ln_table = CubicSpline(whole_pixels, np.log(layout.wavelength_air_aa(whole_pixels)), axis=1)(x_table)
        reach = BERV_LIMIT_KMS / C_KMS
        self.delta_nodes = np.log1p(reach * np.cos((2 * np.arange(BERV_NODES) + 1) * np.pi / (2 * BERV_NODES)))
        ln_grid = np.log(self.grid)
        ln_edges = np.log(bin_edges(self.grid))
        names = ("bins", "base", "lo", "hi", "run_lo", "run_hi", "centre_bias")
        pieces = {name: [np.zeros(0, dtype=np.int64 if name in ("bins", "base") else float)] for name in names}
        pieces["lo_nodes"] = [np.zeros((BERV_NODES, 0))]
        pieces["width_nodes"] = [np.zeros((BERV_NODES, 0))]
        for row in range(layout.n_orders):
            if counts[row] < 2 or ends[row, 1] <= ends[row, 0]:
                continue
            ln_lo = np.interp(ends[row, 0], x_table, ln_table[row]) - reach
            ln_hi = np.interp(ends[row, 1], x_table, ln_table[row]) + reach
            bins = np.arange(np.searchsorted(ln_grid, ln_lo), np.searchsorted(ln_grid, ln_hi, "right"))
            if bins.size == 0:
                continue
            position = lambda ln: np.interp(ln, ln_table[row], x_table)  # noqa: E731
            lo_nodes = np.stack([position(ln_edges[bins] - delta) for delta in self.delta_nodes])
            hi_nodes = np.stack([position(ln_edges[bins + 1] - delta) for delta in self.delta_nodes])
            lo_0, hi_0, centre_0 = position(ln_edges[bins]), position(ln_edges[bins + 1]), position(ln_grid[bins])
            base = np.floor(lo_0 + 0.5)   # the pixel holding the lower edge at zero BERV
            pieces["bins"].append(bins)
            pieces["base"].append(base.astype(np.int64) + (run_start[row] - first[row]))
            pieces["lo_nodes"].append(lo_nodes - base)
            pieces["width_nodes"].append(hi_nodes - lo_nodes)
            pieces["centre_bias"].append(centre_0 - 0.5 * (lo_0 + hi_0))
            pieces["lo"].append(ends[row, 0] - base)
            pieces["hi"].append(ends[row, 1] - base)
            pieces["run_lo"].append(spline_first[row] - base)
            pieces["run_hi"].append(spline_last[row] - base)
        joined = {name: np.concatenate(values, axis=-1) for name, values in pieces.items()}
        self.pixel_base = joined["base"]
        # each order feeds one run of consecutive bins, one pair per bin: (first pair, end pair, first bin)
        lengths = [values.size for values in pieces["bins"][1:]]
        ends = np.cumsum(lengths, dtype=np.int64)
        self.runs = [(int(end - length), int(end), int(values[0]))
                     for end, length, values in zip(ends, lengths, pieces["bins"][1:])]
        for name in ("lo_nodes", "width_nodes", "lo", "hi", "run_lo", "run_hi", "centre_bias"):
            setattr(self, name, joined[name].astype(np.float32))
        # pairs that may need more than the interior formulas at some BERV: a centre that may leave [lo, hi] or a
        # stencil that may reach past the run (``boundary``), a bin that may span three pixels (``wide``)
        extremes = [self._lagrange(np.log1p(sign * reach)) for sign in (-1.0, 1.0)]
        lo_ext = np.stack([self._positions(self.lo_nodes, w) for w in extremes])
        width_ext = np.stack([self._positions(self.width_nodes, w) for w in extremes])
        centre_ext = lo_ext + 0.5 * width_ext + self.centre_bias
        margin = 0.01
        boundary = ((centre_ext.min(axis=0) < self.lo + margin) | (centre_ext.max(axis=0) > self.hi - margin)
                    | (np.floor(lo_ext.min(axis=0) + 0.5) - SPLINE_TAPS - 1 < self.run_lo)
                    | (np.floor(lo_ext.max(axis=0) + width_ext.max(axis=0) + 0.5) + SPLINE_TAPS + 1 > self.run_hi))
        self.boundary = np.flatnonzero(boundary)
        self.wide = np.flatnonzero(~boundary & (width_ext.max(axis=0) > 1.0 - margin))

    def _sum_runs(self, values, n_bins):
        """Per-bin sums of per-pair ``values`` (float32): one slice addition per order's run of bins."""
        total = np.zeros(n_bins, dtype=np.float32)
        for first_pair, end_pair, first_bin in self.runs:
            total[first_bin:first_bin + end_pair - first_pair] += values[first_pair:end_pair]
        return total

    def _lagrange(self, delta):
        """Weights of the cubic through the BERV nodes at ``delta``."""
        nodes = self.delta_nodes
        return [np.prod([(delta - nodes[m]) / (nodes[k] - nodes[m]) for m in range(nodes.size) if m != k])
                for k in range(nodes.size)]

    def _positions(self, nodes, weights, out=None):
        """The cubic through the BERV nodes: sum_n weights[n] nodes[n] (float32)."""
        return np.dot(np.asarray(weights, dtype=np.float32), nodes, out=out)

    def _work_arrays(self, k_rows):
        n_pairs, n_px = self.lo_nodes.shape[1], self.n_pixels
        size = n_px + 2 * (SPLINE_TAPS + 3)

        def make():
            arrays = {name: np.empty(n_pairs, np.float32) for name in ("s", "width", "t", "local", "var", "inv")}
            arrays["pixel"] = np.empty(n_pairs, np.int64)
            arrays["usable"] = np.empty(n_pairs, bool)
            arrays["value"] = np.empty((k_rows, n_pairs), np.float32)
            chunk = min(n_pairs, PAIR_CHUNK)
            arrays.update({name: np.empty(chunk, np.float32) for name in
                           ("acr", "s2", "alpha", "beta", "gamma", "tt", "t2", "alpha_t", "beta_t", "gamma_t", "c0",
                            "c1", "c2", "b0", "b1", "work", "work2", "got")})
            arrays.update({name: np.zeros((k_rows, size), np.float32) for name in ("padded", "right", "left", "step")})
            arrays.update({name: np.zeros(size, np.float32) for name in
                           ("var_padded", "f2", "f3", "f4", "b2", "b3", "b4", "vstep", "v0", "v1", "v2")})
            return arrays
        return _scratch((n_pairs, n_px, k_rows), make)

    def merge(self, counts_e, variance_e, berv_kms, *, with_error=True):
        """Merge per-pixel counts (rows of (k, n_pixels), e-) weighted by one variance (n_pixels,) (e-^2), pixels in
        the plan's ``pixels`` order. A bin of an order that reads a pixel with NaN counts or variance (or blaze <= 0)
        is skipped. Returns a MergedProduct with (k, n_bins) float32 arrays.
        """
        if not abs(berv_kms) <= BERV_LIMIT_KMS:
            raise ParameterError(f"berv_kms must lie within +-{BERV_LIMIT_KMS} km/s for a MergePlan, got {berv_kms}")
        counts_e = np.atleast_2d(counts_e)
        taps, k_rows, n_px = SPLINE_TAPS, len(counts_e), self.n_pixels
        pad = taps + 3
        size = n_px + 2 * pad
        one, two = np.float32(1.0), np.float32(2.0)
        w = self._work_arrays(k_rows)
        weights = self._lagrange(np.log1p(berv_kms / C_KMS))
        # the lower edge in pixel p (local index) at fraction s of it, the upper one at fraction t of pixel p + across
        s, width, t, local = w["s"], w["width"], w["t"], w["local"]
        self._positions(self.lo_nodes, weights, s)
        self._positions(self.width_nodes, weights, width)
        s += np.float32(0.5)
        np.floor(s, out=local)
        s -= local
        np.add(s, width, out=t)                 # the upper edge from the left edge of pixel p
        pixel = w["pixel"]
        np.copyto(pixel, local, casting="unsafe")
        pixel += self.pixel_base
        usable = w["usable"]
        usable[:] = True
        edge = self.boundary
        local_b, s_b, width_b = local[edge], s[edge], width[edge]
        centre = local_b + s_b + np.float32(0.5) * width_b - np.float32(0.5) + self.centre_bias[edge]
        usable[edge] = (centre >= self.lo[edge]) & (centre <= self.hi[edge])
        span_b = np.floor(s_b + width_b)
        run_lo, run_hi = self.run_lo[edge], self.run_hi[edge]
        special = edge[usable[edge] & ((span_b > 1) | (local_b - taps < run_lo) | (local_b + span_b + taps > run_hi))]
        pixel[edge] = self.pixel_base[edge] + np.clip(local_b, run_lo, run_hi).astype(np.int64)
        wide = self.wide
        special = np.concatenate([special, wide[t[wide] >= two]])

        # per pixel: blaze-corrected counts and variances (zero outside, ``pad`` on each side)
        padded, var_padded = w["padded"], w["var_padded"]
        values_px = padded[:, pad:pad + n_px]
        np.multiply(counts_e, self.to_counts, out=values_px, casting="unsafe")
        var_px = var_padded[pad:pad + n_px]
        np.maximum(variance_e, VARIANCE_FLOOR_E2, out=var_px, casting="unsafe")
        var_px *= self.to_counts
        var_px *= self.to_counts
        if not (np.isfinite(var_px.sum()) and np.isfinite(values_px.sum())):   # skip pairs that read bad pixels
            valid = np.isfinite(var_px) & np.isfinite(values_px).all(axis=0)
            count_bad = np.zeros(valid.size + 1, dtype=np.int64)
            np.cumsum(~valid, out=count_bad[1:])
            span = np.floor(s + width)
            first = self.pixel_base + np.maximum(local - taps, self.run_lo).astype(np.int64)
            last = self.pixel_base + np.minimum(local + span + taps, self.run_hi).astype(np.int64)
            usable &= (np.take(count_bad, np.clip(last + 1, 0, valid.size))
                       == np.take(count_bad, np.clip(first, 0, valid.size)))
            special = special[usable[special]]
            var_px[~valid] = 0.0
            values_px[:, ~valid] = 0.0

        # densities at the pixel edges, D_e = g0 sum_{k < taps} z^k (c_{e+k} + c_{e-1-k}) at the left edge of pixel e
        # (array index pad + e)
        z, zz = SPLINE_POLE, SPLINE_POLE**2
        g0 = np.float32(EDGE_TAPS[0])
        right, left, step = w["right"], w["left"], w["step"]
        np.copyto(right, padded)
        np.copyto(left, padded)
        for k in range(1, taps):
            np.multiply(padded[:, k:], np.float32(z**k), out=step[:, :size - k])
            right[:, :size - k] += step[:, :size - k]
            np.multiply(padded[:, :size - k], np.float32(z**k), out=step[:, :size - k])
            left[:, k:] += step[:, :size - k]
        density = right
        density[:, 1:] += left[:, :-1]
        density *= g0
        # their (co)variances V0 = var D_e, 2 V1 = 2 cov(D_e, D_e+1), 2 V2 = 2 cov(D_e, D_e+2) from the partial sums
        # fL[j] = sum_{t < L} z^2t var[j + t], bL[j] = sum_{t < L} z^2t var[j - t]
        vstep = w["vstep"]
        previous = (var_padded, var_padded)
        for k, (f, b) in enumerate(((w["f2"], w["b2"]), (w["f3"], w["b3"]), (w["f4"], w["b4"])), start=1):
            np.multiply(var_padded[k:], np.float32(zz**k), out=f[:size - k])
            f[:size - k] += previous[0][:size - k]
            f[size - k:] = previous[0][size - k:]
            np.multiply(var_padded[:size - k], np.float32(zz**k), out=b[k:])
            b[k:] += previous[1][k:]
            b[:k] = previous[1][:k]
            previous = (f, b)
        g00 = np.float32(EDGE_TAPS[0] ** 2)
        v0, v1, v2 = w["v0"], w["v1"], w["v2"]
        np.add(w["f4"][1:], w["b4"][:-1], out=v0[1:])
        v0 *= g00
        np.add(w["f3"][2:], w["b3"][:-2], out=v1[1:-1])
        v1 *= np.float32(z)
        v1 += var_padded
        v1 *= two * g00
        np.add(w["f2"][3:], w["b2"][:-3], out=v2[1:-2])
        v2 *= np.float32(zz)
        np.add(var_padded[:-1], var_padded[1:], out=vstep[:-1])
        vstep[:-1] *= np.float32(z)
        v2[:-1] += vstep[:-1]
        v2 *= two * g00

        # per pair (in chunks that stay in cache): the bin's counts c0 D_p + c1 D_p+1 + c2 D_p+2 + b0 c_p + b1 c_p+1
        # (``cubic_parts`` at both edges, the upper one in pixel p + a, a = 0 or 1; pixels between the edges count
        # whole) and their variance, the quadratic form of the coefficients with V0, V1, V2 and the pixel variances
        g1 = np.float32(EDGE_TAPS[1])
        value, var_pair = w["value"], w["var"]
        for first in range(0, s.size, PAIR_CHUNK):
            last = min(first + PAIR_CHUNK, s.size)
            n = last - first
            sc, tc, pc = s[first:last], t[first:last], pixel[first:last]
            acr, tt = w["acr"][:n], w["tt"][:n]
            work, work2, got = w["work"][:n], w["work2"][:n], w["got"][:n]
            np.floor(tc, out=acr)                            # a: 0 or 1 (2 only for ``special`` pairs)
            np.subtract(tc, acr, out=tt)
            parts = {}
            for name, x in (("", sc), ("_t", tt)):
                x2, alpha, beta, gamma = (w[key][:n] for key in (("t2" if name else "s2"), "alpha" + name,
                                                                  "beta" + name, "gamma" + name))
                np.multiply(x, x, out=x2)
                np.multiply(x2, x, out=beta)
                beta -= x2                                   # beta = x^3 - x^2
                np.subtract(beta, x2, out=alpha)
                alpha += x                                   # alpha = x - 2 x^2 + x^3
                np.multiply(beta, two, out=gamma)
                np.subtract(x2, gamma, out=gamma)            # gamma = 3 x^2 - 2 x^3
                parts[name] = (alpha, beta, gamma)
            (alpha, beta, gamma), (alpha_t, beta_t, gamma_t) = parts[""], parts["_t"]
            c0, c1, c2, b0, b1 = (w[key][:n] for key in ("c0", "c1", "c2", "b0", "b1"))
            np.multiply(alpha_t, acr, out=c0)
            np.subtract(alpha_t, c0, out=c0)
            c0 -= alpha                                      # (1 - a) alpha_t - alpha
            np.subtract(alpha_t, beta_t, out=c1)
            c1 *= acr
            c1 += beta_t
            c1 -= beta                                       # beta_t + a (alpha_t - beta_t) - beta
            np.multiply(acr, beta_t, out=c2)                 # a beta_t
            np.subtract(one, gamma_t, out=b0)
            b0 *= acr
            b0 += gamma_t
            b0 -= gamma                                      # gamma_t + a (1 - gamma_t) - gamma
            np.multiply(acr, gamma_t, out=b1)                # a gamma_t

            def gathered(source, shift):
                return np.take(source[pad + shift:], pc, out=got, mode="clip")

            for row in range(k_rows):
                out = value[row, first:last]
                np.multiply(c0, gathered(density[row], 0), out=out)
                for coefficient, source, shift in ((c1, density[row], 1), (c2, density[row], 2), (b0, padded[row], 0),
                                                   (b1, padded[row], 1)):
                    np.multiply(coefficient, gathered(source, shift), out=work)
                    out += work
            out = var_pair[first:last]
            np.multiply(c0, gathered(v0, 0), out=out)
            np.multiply(c1, gathered(v1, 0), out=work)
            out += work
            np.multiply(c2, gathered(v2, 0), out=work)
            out += work
            out *= c0
            np.multiply(c1, gathered(v0, 1), out=work)
            np.multiply(c2, gathered(v1, 1), out=work2)
            work += work2
            work *= c1
            out += work
            np.multiply(c2, c2, out=work)
            work *= gathered(v0, 2)
            out += work
            for b_, near, far, shift in ((b0, (c0, c1), c2, 0), (b1, (c1, c2), c0, 1)):
                np.add(near[0], near[1], out=work)
                work *= two * g0
                np.multiply(far, two * g1, out=work2)
                work += work2
                work += b_
                work *= b_
                work *= gathered(var_padded, shift)
                out += work

        if special.size:   # pixel by pixel (``rebin_weights``), in float64
            base = self.pixel_base[special]
            lo_px = base + local[special].astype(np.int64)
            run_first = base + self.run_lo[special].astype(np.int64)
            run_last = base + self.run_hi[special].astype(np.int64)
            upper = s[special].astype(float) + width[special]
            start, weight = rebin_weights(lo_px, s[special].astype(float), lo_px + np.floor(upper).astype(np.int64),
                                          upper % 1.0, run_first, run_last)
            index = np.clip(start[:, None] + np.arange(weight.shape[1]), run_first[:, None], run_last[:, None])
            value[:, special] = np.einsum("nj,knj->kn", weight, values_px[:, index])
            var_pair[special] = np.einsum("nj,nj->n", weight * weight, var_px[index])

        inv_var = w["inv"]
        inv_var.fill(0.0)
        np.divide(one, var_pair, out=inv_var, where=usable)   # usable pairs: > 0 (a width, a variance floor)
        n_bins = self.grid.size
        sum_inv = self._sum_runs(inv_var, n_bins)
        covered = sum_inv > 0
        flux = np.zeros((k_rows, n_bins), dtype=np.float32)
        for out, row in zip(flux, value):
            row *= inv_var
            np.divide(self._sum_runs(row, n_bins), sum_inv, out=out, where=covered)
        error = None
        if with_error:
            error = np.zeros(n_bins, dtype=np.float32)
            np.divide(one, np.sqrt(sum_inv), out=error, where=covered)
        return MergedProduct(flux, error)


# Which product wavelengths HARPS records at all: a product bin (air, barycentric) gets data when some order's valid
# pixels reach it; the orders' ranges (observatory frame) move by the BERV, at most BERV_LIMIT_KMS, so what lies
# outside them stretched by 1 -+ BERV_LIMIT_KMS / c (the CCD gap, ~5305-5337 A, slivers at the ends) never holds data.


@lru_cache(maxsize=1)
def covered_ranges_aa():
    """(n, 2) disjoint sorted intervals of air wavelength (A) that some order reaches at some |BERV| <= the limit."""
    ranges = np.sort(EchelleLayout().valid_range_air_aa, axis=0)   # the same layout in every mode
    stretch = BERV_LIMIT_KMS / C_KMS
    merged = []
    for low, high in zip(ranges[:, 0] * (1.0 - stretch), ranges[:, 1] * (1.0 + stretch)):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return np.asarray(merged)


def uncovered_gap_aa(start_aa, stop_aa):
    """(low, high) A of the no-data gap holding all of the window [start_aa, stop_aa] A; None if any of it has data."""
    ranges = covered_ranges_aa()
    if np.any((ranges[:, 0] < stop_aa) & (ranges[:, 1] > start_aa)):
        return None
    below = ranges[ranges[:, 1] <= start_aa, 1]
    above = ranges[ranges[:, 0] >= stop_aa, 0]
    return (below.max() if below.size else -np.inf, above.min() if above.size else np.inf)
