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

``MergePlan`` (order pixels -> 0.01 A product bins, any BERV within +-``BERV_LIMIT_KMS``). For every order and
every bin the order can reach at some BERV it stores the pixel coordinate of the bin at four BERVs (Chebyshev nodes
of delta = ln(1 + BERV / c) over the range, by exact inversion of the wavelength solution); at any other BERV the
coordinate is the cubic through them (< 1e-6 px, plus the float32 rounding of the stored coordinates, ~1e-5 px; a
Taylor series in delta needs four terms for 1e-4 px at 30 km/s). The merge is then that of ``HarpsSpectrograph.merge``: linear interpolation between pixel centres a and
a + 1 (here linear in pixel coordinate, there in wavelength: they differ by ~1e-5 of a pixel), blaze-corrected flux
per 0.01 A, inverse-variance weights, bins no order reaches set to zero.
"""

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.instrument import VARIANCE_FLOOR_E2
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


class MergePlan:
    """Order pixels -> product bins for any BERV within +-BERV_LIMIT_KMS, see the module docstring.

    ``layout``: EchelleLayout; ``grid``: product bin centres (barycentric, air, A, increasing); ``merge_trim_px``:
    pixels dropped at the (blue, red) ends of each order's valid range; ``to_bin``: (72 * 4096,) factor from e- per
    pixel to blaze-corrected e- per 0.01 A; ``pixels``: (72, 4096) bool, the pixels the merged arrays hold (one
    contiguous run per order; default all), in the flat order of ``np.flatnonzero(pixels)``.
    """

    def __init__(self, layout, grid, merge_trim_px, to_bin, pixels=None):
        self.grid = np.asarray(grid, dtype=float)
        pixels = np.ones((layout.n_orders, layout.n_pixels), dtype=bool) if pixels is None else np.asarray(pixels)
        self.to_bin = np.asarray(to_bin, dtype=np.float32)[np.flatnonzero(pixels)]
        counts = pixels.sum(axis=1)
        first = np.argmax(pixels, axis=1)
        if np.any(pixels.cumsum(axis=1)[np.arange(layout.n_orders), np.minimum(first + counts, layout.n_pixels) - 1]
                  != counts):
            raise ParameterError("pixels must form one contiguous run per order")
        run_start = np.cumsum(counts) - counts
        ends = np.stack([np.maximum(layout.valid_pixels[:, 0] + merge_trim_px[0], first),
                         np.minimum(layout.valid_pixels[:, 1] - merge_trim_px[1], first + counts - 1)],
                        axis=1).astype(float)
        outside = 2.0 * np.ceil(BERV_LIMIT_KMS / layout.pixel_width_kms.min()) + 4.0  # bins reach + node shift
        whole_pixels = np.arange(-outside, layout.n_pixels + outside + 1.0)
        x_table = np.arange(-outside, layout.n_pixels + outside, INVERSION_STEP_PX)
        ln_table = CubicSpline(whole_pixels, np.log(layout.wavelength_air_aa(whole_pixels)), axis=1)(x_table)
        reach = BERV_LIMIT_KMS / C_KMS
        self.delta_nodes = np.log1p(reach * np.cos((2 * np.arange(BERV_NODES) + 1) * np.pi / (2 * BERV_NODES)))
        ln_grid = np.log(self.grid)
        pieces = {name: [np.zeros(0, dtype=np.int64 if name in ("bins", "base") else float)]
                  for name in ("bins", "base", "lo", "hi", "step_lo", "step_hi")}
        pieces["at_nodes"] = [np.zeros((BERV_NODES, 0))]
        for row in range(layout.n_orders):
            if counts[row] < 2 or ends[row, 1] <= ends[row, 0]:
                continue
            ln_lo = np.interp(ends[row, 0], x_table, ln_table[row]) - reach
            ln_hi = np.interp(ends[row, 1], x_table, ln_table[row]) + reach
            bins = np.arange(np.searchsorted(ln_grid, ln_lo), np.searchsorted(ln_grid, ln_hi, "right"))
            if bins.size == 0:
                continue
            base = np.floor(np.interp(ln_grid[bins], ln_table[row], x_table))
            at_nodes = np.stack([np.interp(ln_grid[bins] - delta, ln_table[row], x_table) for delta in self.delta_nodes])
            pieces["bins"].append(bins)
            pieces["base"].append(base.astype(np.int64) + (run_start[row] - first[row]))
            pieces["at_nodes"].append(at_nodes - base)
            pieces["lo"].append(ends[row, 0] - base)
            pieces["hi"].append(ends[row, 1] - base)
            pieces["step_lo"].append(first[row] - base)
            pieces["step_hi"].append(first[row] + counts[row] - 2 - base)
        joined = {name: np.concatenate(values, axis=-1) for name, values in pieces.items()}
        self.pixel_base = joined["base"]
        # each order feeds one run of consecutive bins, one pair per bin: (first pair, end pair, first bin)
        lengths = [values.size for values in pieces["bins"][1:]]
        ends = np.cumsum(lengths, dtype=np.int64)
        self.runs = [(int(end - length), int(end), int(values[0]))
                     for end, length, values in zip(ends, lengths, pieces["bins"][1:])]
        for name in ("at_nodes", "lo", "hi", "step_lo", "step_hi"):
            setattr(self, name, joined[name].astype(np.float32))

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

    def merge(self, counts_e, variance_e, berv_kms, *, with_error=True):
        """Merge per-pixel counts (rows of (k, n_pixels), e-) weighted by one variance (n_pixels,) (e-^2), pixels in
        the plan's ``pixels`` order. NaN pixels are skipped. Returns a MergedProduct with (k, n_bins) float32 arrays.
        """
        if not abs(berv_kms) <= BERV_LIMIT_KMS:
            raise ParameterError(f"berv_kms must lie within +-{BERV_LIMIT_KMS} km/s for a MergePlan, got {berv_kms}")
        counts_e = np.atleast_2d(counts_e)
        weights = self._lagrange(np.log1p(berv_kms / C_KMS))
        local = self.at_nodes[0] * np.float32(weights[0])
        for at_node, weight in zip(self.at_nodes[1:], weights[1:]):
            local += at_node * np.float32(weight)
        usable = (local >= self.lo) & (local <= self.hi)
        step = np.floor(local)
        np.clip(step, self.step_lo, self.step_hi, out=step)
        weight_b = local - step
        pixel = self.pixel_base + step.astype(np.int64)
        weight_a = np.float32(1.0) - weight_b
        to_bin = self.to_bin
        var_px = np.maximum(variance_e, VARIANCE_FLOOR_E2).astype(np.float32) * to_bin * to_bin
        flux_px = counts_e.astype(np.float32) * to_bin
        valid = np.isfinite(var_px) & np.isfinite(flux_px).all(axis=0)
        var_px[~valid] = np.inf
        var_a, var_b = neighbour_pairs(var_px, pixel)
        var_pair = weight_a * weight_a * var_a + weight_b * weight_b * var_b
        usable &= np.isfinite(var_a) & np.isfinite(var_b)
        inv_var = np.zeros_like(var_pair)
        np.divide(np.float32(1.0), var_pair, out=inv_var, where=usable)
        n_bins = self.grid.size
        sum_inv = self._sum_runs(inv_var, n_bins)
        covered = sum_inv > 0
        flux = np.zeros((len(flux_px), n_bins), dtype=np.float32)
        flux_px[:, ~valid] = 0.0
        for out, row in zip(flux, flux_px):
            flux_a, flux_b = neighbour_pairs(row, pixel)
            np.divide(self._sum_runs((weight_a * flux_a + weight_b * flux_b) * inv_var, n_bins), sum_inv, out=out,
                      where=covered)
        error = None
        if with_error:
            error = np.zeros(n_bins, dtype=np.float32)
            np.divide(np.float32(1.0), np.sqrt(sum_inv), out=error, where=covered)
        return MergedProduct(flux, error)

