"""Rotational and macroturbulent broadening on log-lambda grids (velocity kernels).

Equations (Gray 2005, "The Observation and Analysis of Stellar Photospheres", 3rd ed.)
------------------------------------------------------------------------------------
Rotation with linear limb darkening epsilon (Gray eq. 18.14), x = v / (v sin i), |x| <= 1::

    G(v) = [2 (1 - eps) sqrt(1 - x^2) + (pi eps / 2) (1 - x^2)] / [pi v sin i (1 - eps / 3)]

Radial-tangential macroturbulence with equal radial and tangential fractions, disk-integrated
without limb darkening (closed form of Gray 2005 sect. 18 for A_R = A_T), u = |v| / zeta::

    M(v) = 2 / (sqrt(pi) zeta) * [exp(-u^2) - sqrt(pi) u erfc(u)]

or a Gaussian macroturbulence ``exp(-(v / zeta)^2) / (sqrt(pi) zeta)``.

On a grid uniform in ln(lambda) a velocity kernel is the same in pixels everywhere, so the
broadening is one convolution along the last axis; the kernels are sampled with 9 sub-samples per
pixel and normalised to unit sum (the radial-tangential kernel is cut at 4 zeta, where it is 1e-8 of
its peak); the two are combined into one kernel before convolving (overlap-add FFT convolution).
Batches: ``broaden`` takes (n, n_pix) fluxes with per-row vsini / vmac arrays. Edges use
nearest-value padding (synthesise with a margin of vsini + 4 vmac and crop).

Fourier transforms (for kernels that must also carry a sub-step shift, ``shifted_broadening_kernel``), k = 2 pi nu
v sin i, nu in cycles per km/s::

    G^(nu) = [(1 - eps) 2 J1(k) / k + (2 eps / 3) 3 (sin k - k cos k) / k^3] / (1 - eps / 3)
    M^(nu) = (1 - exp(-a)) / a,  a = (pi zeta nu)^2          (radial-tangential, the disk average of Gaussians)
    M^(nu) = exp(-a)                                          (Gaussian)

Approximation: one limb-darkening coefficient for the whole range (default 0.6, the solar value
near 5500 A); rotation and macroturbulence are convolved independently (they are not separable in
reality: differences are small at vsini ~ vmac).

Example
-------
>>> from simharps.broadening import broaden
>>> smooth = broaden(flux, step_kms=0.15, vsini_kms=3.0, vmac_kms=3.5)
"""

import numpy as np
from scipy.signal import oaconvolve
from scipy import fft
from scipy.special import erfc, j1

from simharps.errors import ParameterError

SUBSAMPLES = 9
DEFAULT_LIMB_DARKENING = 0.6
MACROTURBULENCE_PROFILES = ("radial-tangential", "gaussian")
PASSBAND_FRACTION = 0.55
"""``shifted_broadening_kernel`` passes frequencies up to this fraction of the grid's Nyquist frequency unchanged and
tapers the rest to zero (raised cosine): at 0.15 km/s that passes 1.83 cycles per km/s, where even the narrowest
unbroadened Gaussian line (Fe I at 3000 K, b = 1.4 km/s) has lost its power (exp(-62))."""
TAPER_MARGIN_KMS = 8.0
"""Extra half-width of a shifted kernel beyond v sin i + 4 zeta, for the taper's ringing: with it a pure sub-step
shift (v sin i = zeta = 0) of lines with sigma = 0.97 km/s is exact to 2e-6 of the line depth (tested)."""


def _velocity_samples(step_kms, half_width_kms):
    n_half = int(np.ceil(half_width_kms / step_kms))
    pixels = np.arange(-n_half, n_half + 1)
    sub = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    return (pixels[:, None] + sub[None, :]) * step_kms


def _normalised(kernel_samples):
    kernel = kernel_samples.mean(axis=1)
    return kernel / kernel.sum()


def rotation_kernel(step_kms, vsini_kms, limb_darkening=DEFAULT_LIMB_DARKENING):
    """Gray's rotation kernel sampled on pixels of ``step_kms``; a delta when vsini is below a pixel."""
    if vsini_kms < 0:
        raise ParameterError(f"vsini_kms={vsini_kms} must be >= 0")
    if not 0.0 <= limb_darkening <= 1.0:
        raise ParameterError(f"limb_darkening={limb_darkening} must be in [0, 1]")
    if vsini_kms < 0.5 * step_kms:
        return np.ones(1)
    v = _velocity_samples(step_kms, vsini_kms)
    one_minus_x2 = np.clip(1.0 - (v / vsini_kms) ** 2, 0.0, None)
    eps = limb_darkening
    g = 2.0 * (1.0 - eps) * np.sqrt(one_minus_x2) + 0.5 * np.pi * eps * one_minus_x2
    return _normalised(g)


def macroturbulence_kernel(step_kms, vmac_kms, profile="radial-tangential"):
    """Radial-tangential (Gray) or Gaussian macroturbulence kernel of characteristic velocity ``vmac_kms``."""
    if vmac_kms < 0:
        raise ParameterError(f"vmac_kms={vmac_kms} must be >= 0")
    if profile not in MACROTURBULENCE_PROFILES:
        raise ParameterError(f"macroturbulence profile {profile!r} not one of {MACROTURBULENCE_PROFILES}")
    if vmac_kms < 0.5 * step_kms:
        return np.ones(1)
    if profile == "gaussian":
        v = _velocity_samples(step_kms, 4.0 * vmac_kms)
        return _normalised(np.exp(-((v / vmac_kms) ** 2)))
    v = _velocity_samples(step_kms, 4.0 * vmac_kms)
    u = np.abs(v) / vmac_kms
    return _normalised(np.exp(-(u**2)) - np.sqrt(np.pi) * u * erfc(u))


def broadening_kernel(step_kms, vsini_kms=0.0, vmac_kms=0.0, limb_darkening=DEFAULT_LIMB_DARKENING,
                      macroturbulence="radial-tangential"):
    """Rotation convolved with macroturbulence: one unit-sum kernel in pixels."""
    return np.convolve(
        rotation_kernel(step_kms, vsini_kms, limb_darkening),
        macroturbulence_kernel(step_kms, vmac_kms, macroturbulence),
    )


def rotation_transfer(frequency_per_kms, vsini_kms, limb_darkening=DEFAULT_LIMB_DARKENING):
    """Fourier transform of Gray's unit-area rotation kernel at frequencies in cycles per km/s."""
    k = 2.0 * np.pi * np.abs(np.asarray(frequency_per_kms, dtype=float)) * vsini_kms
    small = k < 1e-2
    safe = np.where(small, 1.0, k)
    disc = np.where(small, 1.0 - k**2 / 8.0, 2.0 * j1(safe) / safe)
    limb = np.where(small, 1.0 - k**2 / 10.0 + k**4 / 280.0, 3.0 * (np.sin(safe) - safe * np.cos(safe)) / safe**3)
    eps = limb_darkening
    return ((1.0 - eps) * disc + (2.0 * eps / 3.0) * limb) / (1.0 - eps / 3.0)


def macroturbulence_transfer(frequency_per_kms, vmac_kms, profile="radial-tangential"):
    """Fourier transform of the unit-area macroturbulence kernel at frequencies in cycles per km/s."""
    if profile not in MACROTURBULENCE_PROFILES:
        raise ParameterError(f"macroturbulence profile {profile!r} not one of {MACROTURBULENCE_PROFILES}")
    a = (np.pi * vmac_kms * np.asarray(frequency_per_kms, dtype=float)) ** 2
    if profile == "gaussian":
        return np.exp(-a)
    return np.where(a < 1e-12, 1.0, -np.expm1(-a) / np.where(a < 1e-12, 1.0, a))


def shifted_broadening_kernel(step_kms, vsini_kms, vmac_kms, shift_steps, limb_darkening=DEFAULT_LIMB_DARKENING,
                              macroturbulence="radial-tangential"):
    """Rotation and macroturbulence kernel displaced by ``shift_steps`` (a fraction of a step), sampled on the grid.

    Built from the analytic transforms above times ``exp(-2 pi i nu shift)`` and a band limit (flat to
    ``PASSBAND_FRACTION`` of the Nyquist frequency, raised-cosine to zero at it), so it is exact for spectra whose
    power lies inside the band (unbroadened stellar lines at 0.15 km/s, see ``PASSBAND_FRACTION``), whatever the
    width of the kernel: a star with v sin i = 0 is shifted as accurately as a fast rotator. Returns (weights,
    half_width): output[i] = sum_m weights[m + half] * input[i - m] is the broadened spectrum at i - shift_steps.
    """
    if vsini_kms < 0 or vmac_kms < 0:
        raise ParameterError(f"vsini_kms and vmac_kms must be >= 0, got {vsini_kms}, {vmac_kms}")
    if not 0.0 <= limb_darkening <= 1.0:
        raise ParameterError(f"limb_darkening={limb_darkening} must be in [0, 1]")
    half = int(np.ceil((vsini_kms + 4.0 * vmac_kms + TAPER_MARGIN_KMS) / step_kms)) + int(np.ceil(abs(shift_steps)))
    size = fft.next_fast_len(4 * half + 2, real=True)
    frequency = fft.rfftfreq(size, d=step_kms)
    nyquist = 0.5 / step_kms
    edge = PASSBAND_FRACTION * nyquist
    taper = np.where(frequency <= edge, 1.0,
                     0.5 * (1.0 + np.cos(np.pi * np.clip((frequency - edge) / (nyquist - edge), 0.0, 1.0))))
    transfer = (rotation_transfer(frequency, vsini_kms, limb_darkening)
                * macroturbulence_transfer(frequency, vmac_kms, macroturbulence) * taper
                * np.exp(-2j * np.pi * frequency * shift_steps * step_kms))
    circular = fft.irfft(transfer, size)
    return np.concatenate([circular[size - half:], circular[:half + 1]]), half


def broadening_margin_kms(vsini_kms, vmac_kms):
    """Velocity margin that a window needs on each side so that cropped edges are exact."""
    return float(np.max(vsini_kms)) + 4.0 * float(np.max(vmac_kms)) + 1.0


def broaden(flux, step_kms, vsini_kms=0.0, vmac_kms=0.0, limb_darkening=DEFAULT_LIMB_DARKENING,
            macroturbulence="radial-tangential"):
    """Convolve ``flux`` (last axis on a log-lambda grid of ``step_kms``) with rotation and macroturbulence.

    For a 2-D ``flux`` of shape (n, n_pix), ``vsini_kms`` and ``vmac_kms`` may be scalars or arrays of
    length n (one kernel per row). Returns an array of the input dtype.
    """
    flux = np.asarray(flux)
    if flux.ndim == 1:
        kernel = broadening_kernel(step_kms, float(vsini_kms), float(vmac_kms), limb_darkening, macroturbulence)
        return _convolve_nearest(flux, kernel)
    n = flux.shape[0]
    vsini = np.broadcast_to(np.asarray(vsini_kms, dtype=float), (n,))
    vmac = np.broadcast_to(np.asarray(vmac_kms, dtype=float), (n,))
    out = np.empty_like(flux)
    for row in range(n):
        kernel = broadening_kernel(step_kms, vsini[row], vmac[row], limb_darkening, macroturbulence)
        out[row] = _convolve_nearest(flux[row], kernel)
    return out


def _convolve_nearest(flux, kernel):
    """Convolution with a symmetric odd kernel, edges padded with the end values, same length and dtype."""
    if len(kernel) == 1:
        return flux.copy()
    half = len(kernel) // 2
    padded = np.pad(flux, half, mode="edge")
    return oaconvolve(padded, kernel.astype(flux.dtype), mode="valid")
