"""Placing archive spectra on the dataset grid: lattice index offsets, or flux-conserving resampling.

Dataset grid: the archive 0.01 A lattice (air, barycentric), bin centres at integer multiples of 0.01 A
(``simharps.grids.product_grid``); bin k covers [lambda_k - 0.005, lambda_k + 0.005) A.

Lattice products (HARPS DRS s1d, ADP): their wavelengths are lattice points already, so a product pixel
goes to the grid bin of the same lattice index (``simharps.grids.product_grid_index``); nothing is
interpolated.

Other products (the ESPRESSO-pipeline S1D: 0.5 km/s log-lambda pixels, 0.0063-0.0132 A): flux-conserving
resampling with a piecewise-constant flux density. Input pixel j has edges halfway to its neighbours
(e_j, e_{j+1}) and holds F_j (counts in the pixel), i.e. a density F_j / (e_{j+1} - e_j) over it. The
output bin k receives the integral of that density over its edges::

    G_k = sum_j F_j * |[e_j, e_{j+1}] & [b_k, b_{k+1}]| / (e_{j+1} - e_j)      (a sparse matrix W, G = W F)
    var(G_k) = sum_j W_kj^2 var(F_j)                                          (independent input pixels)

so the integral of the flux over any span of whole output bins equals that of the input over the same
span (exactly where the span's ends coincide with input edges, to within one partial input pixel
otherwise). Output bins not fully covered by finite input pixels are NaN (no data). Neighbouring output
bins share input pixels, so their errors are correlated; the error array is the per-bin marginal.

Units: the output is per 0.01 A bin in whatever the input pixel held (counts per pixel -> counts per
0.01 A bin), which is the unit of the HARPS 1D products (blaze-corrected e- per 0.01 A bin, see
``simharps.ingest.noise``).

Example
-------
>>> from simharps.grids import product_grid
>>> from simharps.ingest.resample import resample_flux_conserving
>>> flux, error = resample_flux_conserving(wave_aa, counts, counts_error, product_grid())
"""

import numpy as np
from scipy import sparse

from simharps.errors import ParameterError
from simharps.grids import PRODUCT_STEP_AA, product_grid_index

LATTICE_TOLERANCE = 1e-4
"""Largest |lambda / 0.01 A - round(lambda / 0.01 A)| for a product to count as on the lattice."""

RESAMPLING_METHOD = "flux-conserving, piecewise-constant density"
"""The value written to the ``resampling`` column for resampled products."""


def check_lattice_grid(grid):
    """``grid`` as a float array of consecutive 0.01 A lattice points; ParameterError otherwise."""
    grid = np.asarray(grid, dtype=float)
    index = product_grid_index(grid)
    if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(index) != 1) or not on_lattice(grid):
        raise ParameterError("grid must be consecutive integer multiples of 0.01 A (see simharps.grids.product_grid)")
    return grid


def on_lattice(wavelength_air_aa):
    """True if the wavelengths are consecutive points of the 0.01 A lattice (a HARPS 1D product)."""
    wave = np.asarray(wavelength_air_aa, dtype=float)
    steps = wave / PRODUCT_STEP_AA
    return bool(wave.size > 1 and np.all(np.abs(steps - np.rint(steps)) < LATTICE_TOLERANCE)
                and np.all(np.diff(np.rint(steps)) == 1))


def place_on_lattice(wavelength_air_aa, values, grid):
    """Values of a lattice product moved onto ``grid`` by index offset; NaN where the product has no pixel."""
    out = np.full(grid.size, np.nan)
    target = product_grid_index(wavelength_air_aa) - product_grid_index(grid[0])
    inside = (target >= 0) & (target < grid.size)
    out[target[inside]] = np.asarray(values, dtype=float)[inside]
    return out


def pixel_edges(wavelength_aa):
    """Edges of pixels centred at increasing ``wavelength_aa``: midpoints, the outer ones mirrored."""
    wave = np.asarray(wavelength_aa, dtype=float)
    mid = 0.5 * (wave[1:] + wave[:-1])
    return np.concatenate([[2.0 * wave[0] - mid[0]], mid, [2.0 * wave[-1] - mid[-1]]])


def resampling_matrix(input_edges, output_edges):
    """Sparse W (n_out, n_in): fraction of input pixel j's extent that falls in output bin k."""
    input_edges = np.asarray(input_edges, dtype=float)
    output_edges = np.asarray(output_edges, dtype=float)
    if np.any(np.diff(input_edges) <= 0) or np.any(np.diff(output_edges) <= 0):
        raise ParameterError("pixel edges must be strictly increasing")
    edges = np.union1d(input_edges, output_edges)
    lo, hi = max(input_edges[0], output_edges[0]), min(input_edges[-1], output_edges[-1])
    edges = edges[(edges >= lo) & (edges <= hi)]
    if edges.size < 2:
        return sparse.csr_matrix((output_edges.size - 1, input_edges.size - 1))
    mid = 0.5 * (edges[1:] + edges[:-1])
    j = np.searchsorted(input_edges, mid, side="right") - 1
    k = np.searchsorted(output_edges, mid, side="right") - 1
    weight = np.diff(edges) / np.diff(input_edges)[j]
    shape = (output_edges.size - 1, input_edges.size - 1)
    return sparse.csr_matrix((weight, (k, j)), shape=shape)  # duplicates (k, j) are summed


def resample_flux_conserving(wavelength_aa, flux, error, grid):
    """Resample per-pixel ``flux`` (and ``error``, or None) onto the lattice ``grid``; returns (flux, error).

    Output bins that are not fully covered by finite input pixels are NaN.
    """
    wave = np.asarray(wavelength_aa, dtype=float)
    flux = np.asarray(flux, dtype=float)
    if wave.ndim != 1 or wave.shape != flux.shape or wave.size < 2 or np.any(np.diff(wave) <= 0):
        raise ParameterError("wavelength_aa must be increasing and match flux in shape")
    grid = np.asarray(grid, dtype=float)
    out_edges = np.concatenate([grid - PRODUCT_STEP_AA / 2, [grid[-1] + PRODUCT_STEP_AA / 2]])
    in_edges = pixel_edges(wave)
    weights = resampling_matrix(in_edges, out_edges)
    finite = np.isfinite(flux) & (np.isfinite(error) if error is not None else True)
    coverage = weights @ (finite * np.diff(in_edges)) / PRODUCT_STEP_AA
    complete = np.abs(coverage - 1.0) < 1e-6
    out_flux = np.where(complete, weights @ np.where(finite, flux, 0.0), np.nan)
    if error is None:
        return out_flux, None
    variance = weights.multiply(weights) @ np.where(finite, np.asarray(error, dtype=float) ** 2, 0.0)
    return out_flux, np.where(complete, np.sqrt(variance), np.nan)
