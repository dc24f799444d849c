"""Wavelength grids and the air <-> vacuum conversion.

Grids
-----
* Working grid: uniform in log-lambda, i.e. uniform in velocity,
  ``lambda_i = lambda_0 * exp(i * dv / c)``. Narrow telluric and interstellar
  lines (1-2 km/s wide) are multiplied with the stellar spectrum on this grid,
  so the default step is 0.15 km/s (DESIGN: 0.1-0.2 km/s).
* Product grid: the HARPS archive 1D lattice, integer multiples of 0.01 A in
  air, 3781.00-6913.00 A by default. Real HARPS 1D products map onto it by an
  index offset (``product_grid_index``).

Air and vacuum
--------------
Line data (VALD, HITRAN, PHOENIX) are in vacuum, HARPS products in air. The
refractive index of standard air is the IAU/VALD formula (Morton 2000, Eq. 8,
after Ciddor 1996), with ``s = 1e4 / lambda_vac`` in inverse micrometres::

    n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s**2) + 1.5998e-4 / (38.9 - s**2)

``air_to_vacuum`` inverts it to machine precision by fixed-point iteration
(three steps reach < 1e-9 A in the optical).

Example
-------
>>> from simharps.grids import log_lambda_grid, vacuum_to_air
>>> wave_air_aa = vacuum_to_air(log_lambda_grid(5000.0, 5010.0, step_kms=0.15))
"""

import numpy as np

from simharps.constants import C_KMS

PRODUCT_STEP_AA = 0.01
"""Bin width of the HARPS archive 1D products, A (air)."""

PRODUCT_RANGE_AA = (3781.00, 6913.00)
"""Wavelength span of the HARPS 1D lattice used for datasets, A (air), inclusive."""

WORKING_STEP_KMS = 0.15
"""Default velocity step of the high-resolution working grid, km/s."""


def refractive_index_air(wavelength_vac_aa):
    """Refractive index of standard dry air (15 C, 101325 Pa, 450 ppm CO2) at vacuum wavelengths in A."""
    s2 = (1.0e4 / np.asarray(wavelength_vac_aa, dtype=float)) ** 2
    return 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def vacuum_to_air(wavelength_vac_aa):
    """Air wavelength (A) of a vacuum wavelength (A)."""
    wavelength_vac_aa = np.asarray(wavelength_vac_aa, dtype=float)
    return wavelength_vac_aa / refractive_index_air(wavelength_vac_aa)


def air_to_vacuum(wavelength_air_aa, iterations=3):
    """Vacuum wavelength (A) of an air wavelength (A); exact inverse of ``vacuum_to_air`` to < 1e-9 A."""
    wavelength_air_aa = np.asarray(wavelength_air_aa, dtype=float)
    wavelength_vac_aa = wavelength_air_aa.copy()
    for _ in range(iterations):
        wavelength_vac_aa = wavelength_air_aa * refractive_index_air(wavelength_vac_aa)
    return wavelength_vac_aa


def log_lambda_grid(start_aa, stop_aa, step_kms=WORKING_STEP_KMS):
    """Wavelengths uniform in ln(lambda) with step ``step_kms``, covering [start_aa, stop_aa].

    The frame (air or vacuum) is whatever the caller's bounds are in; a grid
    uniform in vacuum log-lambda is uniform in air log-lambda to 1e-6 over the
    HARPS range, which is why the working grid can be built in either.
    """
    if not 0 < start_aa < stop_aa:
        raise ValueError(f"need 0 < start_aa < stop_aa, got {start_aa}, {stop_aa}")
    if step_kms <= 0:
        raise ValueError(f"step_kms must be positive, got {step_kms}")
    dlog = step_kms / C_KMS
    n = int(np.ceil(np.log(stop_aa / start_aa) / dlog)) + 1
    return start_aa * np.exp(np.arange(n) * dlog)


def product_grid(start_aa=PRODUCT_RANGE_AA[0], stop_aa=PRODUCT_RANGE_AA[1]):
    """The archive 0.01 A lattice (air, A) from ``start_aa`` to ``stop_aa``, both rounded to the lattice."""
    i0, i1 = product_grid_index(start_aa), product_grid_index(stop_aa)
    return np.arange(i0, i1 + 1) * PRODUCT_STEP_AA


def product_grid_index(wavelength_air_aa):
    """Integer lattice index (``round(lambda / 0.01 A)``) of wavelengths on the archive grid."""
    return np.rint(np.asarray(wavelength_air_aa, dtype=float) / PRODUCT_STEP_AA).astype(np.int64)


def accumulate_windows(out, nearest_index, half_width_px, profile, chunk_elements=1 << 22, windows=None):
    """Add many short profiles into ``out`` (1-D, in place): line i covers ``out[nearest_index[i] + k]`` for
    |k| <= its window, the window being ``half_width_px[i]`` rounded up to a power of two (or ``windows[i]`` when
    given) so that lines of one window size are evaluated together, ``chunk_elements`` values at a time.

    ``profile(selected, index)`` returns the values (len(selected), window) of lines ``selected`` at the grid
    indices ``index`` (clipped into the grid; values falling outside it are dropped). Used to sum Voigt profiles
    of line lists onto log-lambda grids (stellar lines, telluric lines).
    """
    nearest_index = np.asarray(nearest_index, dtype=np.int64)
    if windows is None:
        windows = 2 ** np.ceil(np.log2(np.maximum(half_width_px, 1))).astype(np.int64)
    n = out.size
    for width in np.unique(windows):
        members = np.flatnonzero(windows == width)
        members = members[np.argsort(nearest_index[members], kind="stable")]
        offsets = np.arange(-width, width + 1)
        per_chunk = max(1, chunk_elements // offsets.size)
        for start in range(0, members.size, per_chunk):
            selected = members[start:start + per_chunk]
            index = nearest_index[selected, None] + offsets
            inside = (index >= 0) & (index < n)
            if not inside.any():
                continue
            if inside.all():
                values, index = profile(selected, index).ravel(), index.ravel()
            else:
                values, index = profile(selected, np.clip(index, 0, n - 1))[inside], index[inside]
            lo, hi = index.min(), index.max()
            out[lo:hi + 1] += np.bincount(index - lo, weights=values, minlength=hi + 1 - lo)
    return out
