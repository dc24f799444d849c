"""Preprocessing recipes: dataset spectra -> network inputs, targets, masks and weights.

Every recipe runs in two parts. The **static** part (``static_batch``) depends only on the spectrum and the options
and is computed once and cached (``analysis.cache``); the **dynamic** part (``finish_batch``) runs at every batch
because velocity whitening draws a new shift per spectrum and epoch and the amplitude must be taken after it.

Static, in this order:

1. channels of the recipe, taken from the dataset's (barycentric, air, 0.01 A lattice) grid:
   - ``hits`` (HITS study): the dataset's channels binned to ``n_channels`` = 11,000 by
     ``simharps.dataset.Channels(n_channels=11000, method="bin")`` (centred, whole blocks; ``subsample: decimate``
     keeps each block's central channel instead). A dataset already stored at ``n_channels`` is used as is.
   - ``eso`` (Sedaghat et al. 2021, NimSed/astro-machines infer.py): 3785.00-6910.00 A (312,501 channels),
     zero-padded with 7,589 channels on the left and 7,590 on the right to 327,680 = 20 x 2^14. The padding, the
     study's fixed CCD-gap indices 159453-162893 (of the padded vector, 5303.64-5338.04 A) and NaN are set to 0 and
     masked.
   - ``window``: ``n_pixels`` channels from ``start_aa`` (e.g. 4,096 or 16,384 around a telluric band).
2. frame: ``barycentric`` (as stored), ``observatory`` (by -BERV) or ``stellar`` (by -rv_kms), through
   ``analysis.frames.doppler_resample`` on the full-resolution channels before binning (flux-conserving; a
   margin of 300 km/s of channels is read around windows so that no edge is lost to the shift).
3. optional continuum normalisation: the robust upper envelope, i.e. the 90th percentile of the valid channels in
   blocks of ``continuum_block_aa`` (default 20 A), linearly interpolated between block centres (blocks with
   fewer than half their channels valid are skipped). Approximation: in line-free stretches the 90th percentile
   sits ~1.3 sigma of the noise above the continuum; in line-crowded blocks (M dwarfs, the blue) it sits below it.
4. quality measures on the raw flux (non-finite fraction, median flux, largest flux jump) and the filters
   (``QualityConfig``); failed spectra are filtered with the reason "failed".

The cache stores flux / s and sigma / s with s = the static median (so float16 holds them), the mask and, when the
dataset has one, the telluric component moved exactly like the flux.

Dynamic (``finish_batch``), in this order:

5. velocity whitening (Sedaghat et al. 2023, NimSed/stellar-karaoke): frame ``observatory`` is required; a shift
   v ~ U(-max_kms, +max_kms) per spectrum, drawn from ``numpy.random.default_rng((seed, epoch, index))``, moves
   input, target, mask, sigma and telluric component alike; channels shifted in from beyond the edges are masked.
   No shift when encoding.
6. amplitude: ``median`` divides by the median of ``flux * mask`` (masked zeros enter the median, as infer.py does;
   ``median: masked`` takes the median of the valid channels only); ``none`` keeps the raw scale.
7. ``hits`` only: the DC level (mean of the valid channels) is subtracted.
8. masked channels are 0 in the input; ``telluric_mask: t`` also masks channels whose telluric transmission is
   below t; ``weights: inverse_variance`` gives each valid channel 1 / sigma^2 divided by its spectrum's mean
   (so that the loss stays per unmasked channel), otherwise 1.

Example
-------
>>> from analysis.config import PreprocessingConfig
>>> static = static_batch(wavelength_air_aa, {"flux": flux, "error": error}, table_rows, PreprocessingConfig())  # doctest: +SKIP
"""

from dataclasses import dataclass

import numpy as np

from analysis import frames
from simharps.dataset import Channels
from simharps.grids import PRODUCT_STEP_AA

ESO_RANGE_AA = (3785.00, 6910.00)
"""The ESO recipe's cut (A, air, inclusive): 312,501 channels of the 0.01 A lattice."""

ESO_PAD = (7589, 7590)
"""Zero channels added on the left and right: 7,589 + 312,501 + 7,590 = 327,680 = 20 x 2^14."""

ESO_LENGTH = 327_680

ESO_GAP_INDICES = (159453, 162893)
"""The study's fixed CCD-gap channels of the padded vector (inclusive start, exclusive stop), masked."""

FRAME_MARGIN_KMS = 300.0
"""Channels read beyond a window on each side so that frame shifts and whitening never run out of input."""

QUALITY_FIELDS = ("nonfinite_fraction", "median_flux", "max_flux_jump")


@dataclass
class StaticBatch:
    """Cached part of preprocessing for a batch: (n, L) arrays and per-spectrum numbers."""

    flux: np.ndarray          # flux / scale, 0 where masked
    sigma: np.ndarray         # noise sigma / scale, 0 where masked
    mask: np.ndarray          # bool, True = valid
    telluric: np.ndarray      # telluric transmission (1 where unknown)
    scale: np.ndarray         # (n,) the static median s (raw units of flux per channel)
    quality: dict             # name -> (n,) measured quality numbers
    reasons: list             # per spectrum: "" or why it is filtered


@dataclass
class Prepared:
    """Network-ready batch: input = target = ``x``; ``weight`` is 0 on masked channels."""

    x: np.ndarray
    mask: np.ndarray
    weight: np.ndarray
    sigma: np.ndarray
    telluric: np.ndarray
    amplitude: np.ndarray     # (n,) divisor applied to the raw flux
    offset: np.ndarray        # (n,) DC level subtracted after the division


def static_options(config):
    """The options the static part depends on (the cache key)."""
    keys = ("recipe", "n_channels", "subsample", "start_aa", "n_pixels", "frame", "continuum",
            "continuum_block_aa", "quality")
    data = config.model_dump(mode="json")
    return {key: data[key] for key in keys}


# ------------------------------------------------------------------------------------------ channel layout


@dataclass
class Layout:
    """Where the recipe's channels come from: dataset channels [read_start, read_stop) are read, shifted, then
    ``select(wave, arrays)`` maps them to the output channels."""

    read_start: int
    read_stop: int
    n_out: int
    wavelength_aa: np.ndarray


def _lattice_index(wave, value_aa):
    return int(round((value_aa - wave[0]) / PRODUCT_STEP_AA))


def _margin_channels(wave):
    return int(np.ceil(wave[-1] * FRAME_MARGIN_KMS / frames.C_KMS / PRODUCT_STEP_AA))


def layout(wavelength_air_aa, config):
    """The recipe's channel layout on a dataset grid; ValueError with the reason when the grid cannot serve it."""
    wave = np.asarray(wavelength_air_aa, dtype=np.float64)
    n = wave.size
    step = np.diff(wave)
    on_lattice = n > 1 and np.allclose(step, PRODUCT_STEP_AA, atol=1e-6)
    if config.recipe == "hits":
        if n == config.n_channels:
            return Layout(0, n, n, wave)
        if n < config.n_channels:
            raise ValueError(f"recipe hits needs at least {config.n_channels} channels; the dataset has {n}")
        channels = Channels(n_channels=config.n_channels, method=config.subsample)
        out_wave, _ = channels.apply(wave, {})
        return Layout(0, n, config.n_channels, out_wave)
    if not on_lattice:
        raise ValueError(f"recipe {config.recipe} needs a dataset on the 0.01 A lattice (not sub-sampled); this one "
                         f"has {n} channels of {np.median(step):.4g} A")
    if config.recipe == "eso":
        first = _lattice_index(wave, ESO_RANGE_AA[0])
        out_wave = wave[0] + PRODUCT_STEP_AA * (np.arange(ESO_LENGTH) + first - ESO_PAD[0])
        margin = _margin_channels(wave)
        return Layout(max(first - margin, 0), min(first + 312_501 + margin, n), ESO_LENGTH, out_wave)
    first = _lattice_index(wave, config.start_aa)
    stop = first + config.n_pixels
    if first < 0 or stop > n:
        raise ValueError(f"window {config.start_aa:.2f} A + {config.n_pixels} channels "
                         f"({config.start_aa:.2f}-{config.start_aa + (config.n_pixels - 1) * PRODUCT_STEP_AA:.2f} A) "
                         f"is not inside the dataset's {wave[0]:.2f}-{wave[-1]:.2f} A")
    margin = _margin_channels(wave)
    out_wave = wave[0] + PRODUCT_STEP_AA * np.arange(first, stop)
    return Layout(max(first - margin, 0), min(stop + margin, n), config.n_pixels, out_wave)


def _select(wave, arrays, config, lay):
    """Map the shifted read range to the recipe's output channels (binning, cut + padding, or cut)."""
    if config.recipe == "hits":
        if wave.size == config.n_channels:
            return arrays
        channels = Channels(n_channels=config.n_channels, method=config.subsample)
        return channels.apply(wave, arrays, error_name="sigma")[1]
    out = {}
    offset = _lattice_index(wave, lay.wavelength_aa[0])       # output channel 0 in read coordinates
    n_rows = next(iter(arrays.values())).shape[0]
    src = np.arange(lay.n_out) + offset
    inside = (src >= 0) & (src < wave.size)
    for name, values in arrays.items():
        fill = 1.0 if name == "telluric" else (False if values.dtype == bool else 0.0)
        result = np.full((n_rows, lay.n_out), fill, dtype=values.dtype)
        result[:, inside] = values[:, src[inside]]
        out[name] = result
    if config.recipe == "eso":
        pad_left, pad_right = ESO_PAD
        out["mask"][:, :pad_left] = False
        out["mask"][:, lay.n_out - pad_right:] = False
        out["mask"][:, ESO_GAP_INDICES[0]:ESO_GAP_INDICES[1]] = False
    return out


# -------------------------------------------------------------------------------------------- static part


def frame_factor(frame, rows):
    """Per-spectrum resampling factor from the stored barycentric frame to ``frame`` (None for barycentric)."""
    if frame == "barycentric":
        return None
    column = "berv_kms" if frame == "observatory" else "rv_kms"
    values = np.asarray(rows[column], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))
        raise ValueError(f"frame {frame!r} needs {column} for every spectrum; missing for rows {bad[:5].tolist()}")
    return frames.observatory_factor(values) if frame == "observatory" else frames.stellar_factor(values)


def continuum_envelope(wavelength_aa, flux, mask, block_aa=20.0, percentile=90.0):
    """Robust upper envelope (n, L): per-block ``percentile`` of valid channels, linear between block centres."""
    wave = np.asarray(wavelength_aa, dtype=np.float64)
    n_blocks = max(int(np.ceil((wave[-1] - wave[0]) / block_aa)), 1)
    block = np.minimum(((wave - wave[0]) / block_aa).astype(int), n_blocks - 1)
    envelope = np.ones(flux.shape, dtype=np.float32)
    for row in range(flux.shape[0]):
        centres, levels = [], []
        for b in range(n_blocks):
            inside = block == b
            valid = inside & mask[row]
            if valid.sum() >= 0.5 * inside.sum() and valid.sum() > 0:
                centres.append(wave[inside].mean())
                levels.append(np.percentile(flux[row, valid], percentile))
        if levels:
            envelope[row] = np.interp(wave, centres, levels)
    return envelope


def _masked_median(values, mask, with_masked_zeros):
    if with_masked_zeros:
        return np.median(np.where(mask, values, 0.0), axis=1)
    out = np.zeros(values.shape[0])
    for row in range(values.shape[0]):
        valid = values[row, mask[row]]
        out[row] = np.median(valid) if valid.size else 0.0
    return out


def _quality(flux, mask):
    """Measured quality numbers per spectrum on the raw (pre-normalisation) flux of the recipe's range."""
    n = flux.shape[0]
    nonfinite = 1.0 - mask.mean(axis=1)
    median = np.array([np.median(flux[i, mask[i]]) if mask[i].any() else np.nan for i in range(n)])
    jump = np.full(n, np.nan)
    for i in range(n):
        both = mask[i, 1:] & mask[i, :-1]
        if both.any() and median[i] > 0:
            jump[i] = np.max(np.abs(np.diff(flux[i])[both])) / median[i]
    return {"nonfinite_fraction": nonfinite, "median_flux": median, "max_flux_jump": jump}


def _reasons(quality, rows, config):
    q = config.quality
    reasons = []
    failed = np.asarray(rows["failed"], dtype=bool) if "failed" in rows.colnames else np.zeros(len(rows), bool)
    snr = np.asarray(rows["snr_550"], dtype=np.float64) if "snr_550" in rows.colnames else None
    for i in range(len(rows)):
        # the non-finite fraction is counted over the channels the recipe expects data in (not padding / gap)
        missing = quality["nonfinite_fraction"][i]
        if failed[i]:
            reasons.append("failed in simulation or ingest")
        elif missing > q.max_nonfinite_fraction:
            reasons.append(f"non-finite fraction {missing:.3f} > {q.max_nonfinite_fraction}")
        elif q.min_snr_550 is not None and snr is not None and not snr[i] >= q.min_snr_550:
            reasons.append(f"snr_550 {snr[i]:.1f} < {q.min_snr_550}")
        elif q.min_median_flux is not None and not quality["median_flux"][i] >= q.min_median_flux:
            reasons.append(f"median flux {quality['median_flux'][i]:.4g} < {q.min_median_flux}")
        elif q.max_flux_jump is not None and quality["max_flux_jump"][i] > q.max_flux_jump:
            reasons.append(f"flux jump {quality['max_flux_jump'][i]:.3g} x median > {q.max_flux_jump}")
        else:
            reasons.append("")
    return reasons


def static_batch(wavelength_air_aa, arrays, rows, config, lay=None):
    """Static preprocessing of one batch read from a dataset.

    ``arrays``: dataset arrays of the batch over the layout's read range (``flux``, ``error``, optionally
    ``telluric``), (n, read_stop - read_start); ``rows``: their table rows (astropy Table);
    ``config``: ``PreprocessingConfig``. Returns a ``StaticBatch``.
    """
    wave_full = np.asarray(wavelength_air_aa, dtype=np.float64)
    lay = lay or layout(wave_full, config)
    wave = wave_full[lay.read_start:lay.read_stop]
    flux = np.asarray(arrays["flux"], dtype=np.float64)
    error = np.asarray(arrays["error"], dtype=np.float64)
    mask = np.isfinite(flux) & np.isfinite(error) & (error > 0)
    work = {"flux": np.where(mask, flux, 0.0), "sigma": np.where(mask, error, 0.0)}
    if "telluric" in arrays:
        telluric = np.asarray(arrays["telluric"], dtype=np.float64)
        work["telluric"] = np.where(np.isfinite(telluric), telluric, 1.0)
    factor = frame_factor(config.frame, rows)
    if factor is not None:
        work, mask = frames.doppler_resample(wave, work, mask, factor)
    if config.recipe == "hits" and wave.size != config.n_channels:
        # binning propagates a masked channel to its whole block (NaN in, NaN out)
        for name in ("flux", "sigma"):
            work[name] = np.where(mask, work[name], np.nan)
    work = {**work, "mask": mask}
    out = _select(wave, work, config, lay)
    if config.recipe == "hits" and wave.size != config.n_channels:
        out["mask"] = np.isfinite(out["flux"]) & np.isfinite(out["sigma"])
        for name in ("flux", "sigma"):
            out[name] = np.where(out["mask"], out[name], 0.0)
        out["mask"] = out["mask"] & (out["sigma"] > 0)
    mask = out["mask"].astype(bool)
    flux = np.where(mask, out["flux"], 0.0).astype(np.float64)
    sigma = np.where(mask, out["sigma"], 0.0).astype(np.float64)
    telluric = out.get("telluric")
    telluric = np.ones(flux.shape, np.float32) if telluric is None else np.asarray(telluric, np.float32)
    expected = np.ones(lay.n_out, dtype=bool)
    if config.recipe == "eso":
        expected[:ESO_PAD[0]] = expected[lay.n_out - ESO_PAD[1]:] = False
        expected[ESO_GAP_INDICES[0]:ESO_GAP_INDICES[1]] = False
    quality = _quality(flux[:, expected], mask[:, expected])
    if config.continuum:
        envelope = continuum_envelope(lay.wavelength_aa, flux, mask, config.continuum_block_aa)
        bad = ~(envelope > 0)
        mask = mask & ~bad
        flux = np.where(mask, flux / np.where(bad, 1.0, envelope), 0.0)
        sigma = np.where(mask, sigma / np.where(bad, 1.0, envelope), 0.0)
    scale = _masked_median(flux, mask, with_masked_zeros=False)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    reasons = _reasons(quality, rows, config)
    return StaticBatch(flux=(flux / scale[:, None]).astype(np.float32), sigma=(sigma / scale[:, None]).astype(np.float32),
                       mask=mask, telluric=telluric, scale=scale, quality=quality, reasons=reasons)


# ------------------------------------------------------------------------------------------- dynamic part


def whitening_shifts_kms(indices, epoch, seed, max_kms):
    """The whitening velocity of each spectrum (km/s): U(-max, +max) from rng((seed, epoch, index))."""
    return np.array([np.random.default_rng((int(seed), int(epoch), int(i))).uniform(-max_kms, max_kms)
                     for i in indices])


def finish_batch(wavelength_aa, flux, sigma, mask, telluric, scale, config, *, shifts_kms=None):
    """Dynamic preprocessing of cached arrays (flux / scale etc.) -> ``Prepared``.

    ``shifts_kms``: whitening velocities per spectrum (None = no shift, as when encoding).
    """
    flux = np.asarray(flux, dtype=np.float32)
    sigma = np.asarray(sigma, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    telluric = np.asarray(telluric, dtype=np.float32)
    if shifts_kms is not None:
        moved, mask = frames.doppler_resample(wavelength_aa, {"flux": flux, "sigma": sigma, "telluric": telluric},
                                              mask, frames.shift_factor(shifts_kms))
        flux, sigma = moved["flux"], moved["sigma"]
        telluric = np.where(mask, moved["telluric"], 1.0).astype(np.float32)
    if config.telluric_mask is not None:
        mask = mask & (telluric >= config.telluric_mask)
    scale = np.asarray(scale, dtype=np.float64)
    if config.amplitude == "median":
        median = _masked_median(flux, mask, with_masked_zeros=config.median == "with_masked_zeros")
        amplitude_rel = np.where(median > 0, median, 1.0)
    else:
        amplitude_rel = 1.0 / scale
    x = np.where(mask, flux / amplitude_rel[:, None], 0.0)
    s = np.where(mask, sigma / amplitude_rel[:, None], 0.0)
    offset = np.zeros(x.shape[0])
    if config.recipe == "hits":
        counts = np.maximum(mask.sum(axis=1), 1)
        offset = x.sum(axis=1) / counts
        x = np.where(mask, x - offset[:, None], 0.0)
    if config.weights == "inverse_variance":
        inv = np.where(mask & (s > 0), 1.0 / np.maximum(s, 1e-30) ** 2, 0.0)
        mean = inv.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
        weight = inv / np.where(mean > 0, mean, 1.0)[:, None]
    else:
        weight = mask.astype(np.float32)
    return Prepared(x=x.astype(np.float32), mask=mask, weight=weight.astype(np.float32), sigma=s.astype(np.float32),
                    telluric=telluric, amplitude=amplitude_rel * scale, offset=offset)
