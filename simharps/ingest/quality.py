"""File-level quality filters for real archive spectra (the motivating study's cleaning, made explicit).

A file is rejected, with the reason recorded for the manifest, when:

* it is unreadable: not FITS, truncated, not a 1-D HARPS/ESPRESSO product (e2ds, calibration frames), no finite
  flux (``simharps.io.read_harps`` raises ``HarpsFormatError`` naming the reason);
* a header value the dataset needs is missing or not numeric (``REQUIRED_META``: ``mjd_utc``, ``airmass``;
  ``berv_kms`` is recomputed from the header when absent);
* non-numeric flux: more than ``max_nonfinite_fraction`` of the product's own pixels between its first and last
  finite one are NaN/inf (pixels its quality column flags are not counted);
* too little of the dataset grid is covered (``min_coverage``);
* very low S/N: the median of flux / error per 0.01 A bin in ``snr_window_aa`` (barycentric) is below
  ``min_snr`` (error from the file, or the noise model);
* unstable flux, three measures: (1) extreme jumps: the ratio of the medians of adjacent 5 A blocks exceeds
  ``max_block_jump`` (only blocks whose median is above 5 times its own error count; on the real test files the
  largest ratios are 1.5-2.5, at the Ca II H & K and Ca I 4227 A lines; a discontinuous or corrupted spectrum
  gives 10 or more); (2) spikes: more than ``max_outlier_fraction`` of the bins exceed both neighbours by more
  than ``outlier_sigma`` errors (resolved lines, 5 bins or wider, never do; real files: 1e-5); (3) dropouts:
  more than ``max_negative_fraction`` of the bins are below -5 errors.

Thresholds are settings (``QualityThresholds``), not facts; defaults are chosen so that the real test files pass
with a wide margin and deliberately broken copies fail (tests/test_ingest.py). The measured values go into the
row (``snr_bin``, ``max_block_jump``, ``outlier_fraction``, ``negative_fraction``, ``coverage``) so a stricter cut
can be applied later without re-ingesting.

Example
-------
>>> from simharps.ingest.quality import QualityThresholds, assess_spectrum
>>> report = assess_spectrum(grid_aa, flux, error, QualityThresholds(min_snr=10))
>>> report.reasons          # [] when the spectrum passes
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from simharps.errors import SimharpsError

REQUIRED_META = ("mjd_utc", "airmass")
BLOCK_BINS = 500


class RejectedFile(SimharpsError):
    """A file that ingest skips, with the reason (for the manifest)."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class QualityThresholds:
    """Cuts applied to each file (see module docstring)."""

    min_snr: float = 5.0
    snr_window_aa: tuple = (5500.0, 5650.0)
    max_nonfinite_fraction: float = 0.01
    min_coverage: float = 0.5
    max_block_jump: float = 20.0
    max_outlier_fraction: float = 0.001
    outlier_sigma: float = 10.0
    max_negative_fraction: float = 0.01


@dataclass
class QualityReport:
    """Measured quality numbers of one spectrum and the reasons it fails (empty if it passes)."""

    snr_bin: float
    coverage: float
    max_block_jump: float
    outlier_fraction: float
    negative_fraction: float
    reasons: list = field(default_factory=list)

    def metrics(self):
        """The numbers as a dict of row columns."""
        values = asdict(self)
        values.pop("reasons")
        return values


def check_meta(meta, required=REQUIRED_META):
    """Reasons for missing/non-numeric required header values (empty list if all present)."""
    return [f"header value {name} is missing or not numeric" for name in required if meta.get(name) is None]


def nonfinite_fraction(flux, flagged=None):
    """Fraction of non-finite pixels between the first and last finite one, ignoring ``flagged`` pixels."""
    flux = np.asarray(flux)
    finite = np.isfinite(flux)
    if not finite.any():
        return 1.0
    first, last = np.flatnonzero(finite)[[0, -1]]
    considered = np.ones(flux.size, bool) if flagged is None else ~np.asarray(flagged, bool)
    span = considered[first:last + 1]
    return float((~finite[first:last + 1] & span).sum() / max(span.sum(), 1))


def assess_spectrum(grid_aa, flux, error, thresholds=QualityThresholds()):
    """Quality numbers of a spectrum on the dataset grid (NaN = no data) and the thresholds it fails."""
    grid = np.asarray(grid_aa, dtype=float)
    flux = np.asarray(flux, dtype=float)
    error = np.asarray(error, dtype=float)
    valid = np.isfinite(flux) & np.isfinite(error) & (error > 0)
    coverage = float(valid.mean())
    window = valid & (grid >= thresholds.snr_window_aa[0]) & (grid <= thresholds.snr_window_aa[1])
    window = window if window.sum() >= 50 else valid
    snr = float(np.median(flux[window] / error[window])) if window.any() else 0.0
    jump = _max_block_jump(flux, error, valid)
    outliers, negative = _outlier_fractions(flux, error, valid, thresholds.outlier_sigma)
    report = QualityReport(snr, coverage, jump, outliers, negative)
    t = thresholds
    checks = [
        (coverage < t.min_coverage, f"covers {coverage:.1%} of the dataset grid (< {t.min_coverage:.0%})"),
        (snr < t.min_snr, f"very low S/N: median {snr:.2f} per 0.01 A bin in {t.snr_window_aa[0]:.0f}-"
                          f"{t.snr_window_aa[1]:.0f} A (< {t.min_snr})"),
        (jump > t.max_block_jump, f"unstable flux: adjacent 5 A blocks differ by a factor {jump:.1f} "
                                  f"(> {t.max_block_jump})"),
        (outliers > t.max_outlier_fraction, f"unstable flux: {outliers:.2%} of bins deviate by > "
                                            f"{t.outlier_sigma:g} sigma above both neighbours "
                                            f"(> {t.max_outlier_fraction:.2%})"),
        (negative > t.max_negative_fraction, f"unstable flux: {negative:.2%} of bins below -5 sigma "
                                             f"(> {t.max_negative_fraction:.2%})"),
    ]
    report.reasons = [reason for failed, reason in checks if failed]
    return report


def _max_block_jump(flux, error, valid):
    """Largest ratio of the medians of adjacent 5 A blocks that are both significant (median > 5 x its error)."""
    n_blocks = flux.size // BLOCK_BINS
    blocks = np.where(valid, flux, np.nan)[:n_blocks * BLOCK_BINS].reshape(n_blocks, BLOCK_BINS)
    errors = np.where(valid, error, np.nan)[:n_blocks * BLOCK_BINS].reshape(n_blocks, BLOCK_BINS)
    count = np.isfinite(blocks).sum(axis=1)
    full = count >= BLOCK_BINS // 2
    median = np.full(n_blocks, np.nan)
    noise = np.full(n_blocks, np.nan)
    median[full] = np.nanmedian(blocks[full], axis=1)
    noise[full] = 1.2533 * np.nanmedian(errors[full], axis=1) / np.sqrt(count[full])
    significant = full & (median > 5.0 * noise)
    pair = significant[1:] & significant[:-1]
    if not pair.any():
        return 1.0
    ratio = median[1:][pair] / median[:-1][pair]
    return float(np.max(np.maximum(ratio, 1.0 / ratio)))


def _outlier_fractions(flux, error, valid, sigma):
    """Fractions of valid bins above both neighbours by more than ``sigma`` errors, and below -5 errors."""
    if not valid.any():
        return 0.0, 0.0
    values = np.where(valid, flux, np.nan)
    neighbours = np.fmax(np.concatenate([[np.nan], values[:-1]]), np.concatenate([values[1:], [np.nan]]))
    with np.errstate(invalid="ignore"):
        spikes = valid & ((values - neighbours) > sigma * error)
    negative = valid & (flux < -5.0 * error)
    return float(spikes.sum() / valid.sum()), float(negative.sum() / valid.sum())
