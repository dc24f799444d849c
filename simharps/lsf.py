"""Gaussian line-spread function defined in velocity, on log-lambda grids.

A spectrograph of resolving power R has an LSF of FWHM ``c / R`` in velocity
(R = 115,000 -> 2.607 km/s for HARPS). On a grid uniform in ln(lambda) with
step ``step_kms`` that is a fixed kernel in pixels, so the convolution is one
``scipy.ndimage`` call along the last axis (batches of spectra convolve at once).

Approximation: the kernel is a sampled Gaussian normalised to unit sum, truncated
at +-5 sigma; edges reflect. Sampled at >= 4 px per FWHM the sampled kernel's
second moment matches the continuous one to < 1e-4.

Two ways of applying the same kernel: ``method="direct"`` (default) correlates in
float64 (``scipy.ndimage.correlate1d``); ``method="fft"`` convolves by overlap-add of
real FFTs (``scipy.fft``) in the input's precision. In float64 it agrees with "direct" to
~1e-15 and is ~1.6x faster on long grids; float32 is ~4x faster, but its rounding is ~1e-7
of the largest values within a few thousand samples, i.e. large relative to deep line cores.

Example
-------
>>> from simharps.lsf import convolve_gaussian_velocity, fwhm_kms_from_resolution
>>> smoothed = convolve_gaussian_velocity(flux, step_kms=0.15, fwhm_kms=fwhm_kms_from_resolution(115_000))
"""

import numpy as np
from scipy import fft
from scipy.ndimage import correlate1d
from scipy.special import erf

from simharps.constants import C_KMS

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def fwhm_kms_from_resolution(resolving_power):
    """LSF FWHM in km/s of a spectrograph with resolving power R = lambda / FWHM."""
    if resolving_power <= 0:
        raise ValueError(f"resolving power must be positive, got {resolving_power}")
    return C_KMS / resolving_power


def gaussian_kernel(step_kms, fwhm_kms, truncate_sigma=5.0):
    """Unit-sum Gaussian kernel sampled at ``step_kms`` with the given FWHM (km/s)."""
    sigma_px = fwhm_kms / FWHM_PER_SIGMA / step_kms
    half_width = max(1, int(np.ceil(truncate_sigma * sigma_px)))
    offsets = np.arange(-half_width, half_width + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    return kernel / kernel.sum()


def convolve_gaussian_velocity(flux, step_kms, fwhm_kms, truncate_sigma=5.0, method="direct"):
    """Convolve ``flux`` (last axis on a log-lambda grid of step ``step_kms``) with a Gaussian of ``fwhm_kms``.

    ``method``: "direct" (float64 correlation) or "fft" (overlap-add FFT in the precision of ``flux``: float32
    stays float32); both reflect at the edges.
    """
    if method not in ("direct", "fft"):
        raise ValueError(f"method must be 'direct' or 'fft', got {method!r}")
    if fwhm_kms <= 0:
        return np.array(flux, copy=True)
    kernel = gaussian_kernel(step_kms, fwhm_kms, truncate_sigma)
    flux = np.asarray(flux)
    if method == "direct":
        return correlate1d(flux, kernel, axis=-1, mode="reflect")
    dtype = np.float32 if flux.dtype == np.float32 else np.float64
    half = kernel.size // 2
    padded = np.pad(flux.astype(dtype, copy=False), [(0, 0)] * (flux.ndim - 1) + [(half, half)], mode="symmetric")
    return overlap_add(padded, kernel.astype(dtype))[..., 2 * half:2 * half + flux.shape[-1]]


BATCH_BLOCKS = 16
"""Blocks transformed together by ``overlap_save``: their spectra (~0.5 MB) stay in the processor's cache between
the forward transform, the product and the inverse transform."""


def _block_size(taps):
    """FFT length of the blocks for a kernel of ``taps`` samples (even, >= 4096, >= 4 taps)."""
    size = max(4096, fft.next_fast_len(4 * taps, real=True))
    return size + size % 2


def overlap_add(signal, kernel):
    """Full linear convolution of ``signal`` (along its last axis) with a short ``kernel`` (n + taps - 1 samples).

    The signal is cut into blocks, each block is transformed by a real FFT of length >= 4096 (in the signal's
    precision), multiplied by the kernel's transform and transformed back; the overlapping tails of consecutive
    blocks are added.
    """
    taps = kernel.size
    size = _block_size(taps)
    step = size - taps + 1
    lead, n = signal.shape[:-1], signal.shape[-1]
    n_blocks = -(-n // step)
    blocks = np.zeros(lead + (n_blocks * step,), dtype=signal.dtype)
    blocks[..., :n] = signal
    spectra = fft.rfft(blocks.reshape(lead + (n_blocks, step)), size, axis=-1)
    spectra *= fft.rfft(kernel.astype(signal.dtype, copy=False), size)
    pieces = fft.irfft(spectra, size, axis=-1)
    out = np.zeros(lead + (n_blocks + 1, step), dtype=signal.dtype)
    out[..., :n_blocks, :] = pieces[..., :step]
    out[..., 1:, :taps - 1] += pieces[..., step:]
    return out.reshape(lead + (-1,))[..., :n + taps - 1]


def overlap_save(signal, kernel, decimation=1):
    """The 'valid' part of the convolution of a 1-D ``signal`` with an odd-length ``kernel``: output sample j is
    sum_t kernel[t] signal[j + taps - 1 - t], j = 0 .. n - taps, kept every ``decimation``-th sample (1 or 2).

    Overlapping blocks of the signal (strided views, no copy) are transformed by real FFTs, ``BATCH_BLOCKS`` at a
    time, multiplied by the kernel's transform and transformed back; the inverse transforms are returned as they are, (n_blocks, length)
    rows, and ``overlap_save_index`` says where each output sample sits in them. With ``decimation`` = 2 the inverse
    transforms are half as long and keep the lower half of the frequencies: exact when the convolution has no power
    above half the Nyquist frequency (a Gaussian LSF sampled at a quarter of its sigma or finer).
    """
    taps = kernel.size
    if decimation not in (1, 2) or taps % 2 == 0:
        raise ValueError(f"need an odd-length kernel and decimation 1 or 2, got {taps} taps, decimation {decimation}")
    if np.ndim(signal) != 1 or np.size(signal) < taps:
        raise ValueError(f"need a 1-D signal at least as long as the kernel ({taps}), got shape {np.shape(signal)}")
    signal = np.ascontiguousarray(signal)
    size = _block_size(taps)
    step = size - taps + 1
    n_blocks = -(-(signal.size - taps + 1) // step)
    inside = max(0, (signal.size - size) // step + 1)
    blocks = np.lib.stride_tricks.as_strided(signal, (inside, size), (step * signal.itemsize, signal.itemsize),
                                             writeable=False)
    kept = size // (2 * decimation) + 1
    kernel_spectrum = fft.rfft(kernel.astype(signal.dtype, copy=False), size)[:kept] / decimation
    out = np.empty((n_blocks, size // decimation), dtype=signal.dtype)
    for start in range(0, n_blocks, BATCH_BLOCKS):
        stop = min(start + BATCH_BLOCKS, n_blocks)
        if stop <= inside:
            batch = blocks[start:stop]
        else:  # the last blocks run past the signal: zero-padded copies
            batch = np.zeros((stop - start, size), dtype=signal.dtype)
            for row, block in enumerate(range(start, stop)):
                piece = signal[block * step:block * step + size]
                batch[row, :piece.size] = piece
        spectra = fft.rfft(batch, axis=-1)[:, :kept]
        spectra *= kernel_spectrum
        out[start:stop] = fft.irfft(spectra, size // decimation, axis=-1, overwrite_x=True)
    return out


def overlap_save_index(sample, taps, decimation=1):
    """Flat positions, in the array ``overlap_save`` returns, of its (decimated) output samples ``sample``."""
    size = _block_size(taps)
    kept = (size - taps + 1) // decimation
    block, within = np.divmod(np.asarray(sample), kept)
    return block * (size // decimation) + (taps - 1) // decimation + within


def overlap_save_samples(pieces, taps, n_samples, decimation=1):
    """The first ``n_samples`` output samples of ``overlap_save`` as one contiguous array."""
    return pieces[:, (taps - 1) // decimation:].reshape(-1)[:n_samples]


def gaussian_box_kernel(step_kms, fwhm_kms, box_width_kms, half_width):
    """A Gaussian LSF of ``fwhm_kms`` convolved with a unit-area box of ``box_width_kms`` (a detector pixel),
    point-sampled at offsets -half_width..half_width steps of ``step_kms`` and multiplied by the step (so that a
    convolution with it approximates the integral). Exact closed form: the difference of two error functions."""
    sigma = fwhm_kms / FWHM_PER_SIGMA
    velocity = np.arange(-half_width, half_width + 1) * step_kms
    half_box = 0.5 * box_width_kms
    scale = np.sqrt(2.0) * sigma
    return step_kms * 0.5 * (erf((velocity + half_box) / scale) - erf((velocity - half_box) / scale)) / box_width_kms
