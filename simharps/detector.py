"""Detector: expected photo-electrons per extracted pixel -> noisy extracted counts and an honest error.

Model (per extracted pixel, i.e. one detector column summed over the extraction window across the order)::

    mean_e     = S + D                      S: photo-electrons, D = dark_e_per_px_s * exptime_s * n_window
    variance_e = S + D + n_window * RON**2  Poisson photon + dark noise, read noise of n_window CCD pixels
    counts_adu = (Poisson(mean_e) + Normal(0, sqrt(n_window) * RON) - D + R) / gain

Photon + read noise are drawn exactly (Poisson plus Normal) where ``mean_e`` < ``POISSON_EXACT_BELOW_E``; above it
their sum is drawn from one standard normal z through the Cornish-Fisher expansion with the sum's own skewness
g1 = mean_e / sigma^3 and excess kurtosis g2 = mean_e / sigma^4 (sigma^2 = variance_e)::

    counts_e = mean_e + sigma [z + (z^2 - 1) g1 / 6 + (z^3 - 3 z) g2 / 24 - (2 z^3 - 5 z) g1^2 / 36]

which has the exact mean, the variance to O(1 / mean_e^2) (8e-7 relative at 50 e-) and the skewness and kurtosis to
under 0.5 % from 50 e- up (tested by Gauss-Hermite quadrature); it is 3-4x cheaper than a Poisson draw and continuous (real extracted
pixels are weighted sums over the extraction window, not integers either).

``R`` are cosmic-ray residuals (below). The pipeline subtracts the mean dark, so ``counts_adu`` has expectation
``S / gain`` and ``error_adu = sqrt(variance_e) / gain``: (counts - expectation) / error has unit variance, which is
what the ERR column must promise. Expectation and variance are computed apart from the random draw (as DESI's
specsim does), so analyses can use the noiseless product.

Numbers and sources
-------------------
* gain 1.42 e-/ADU and read noise 5.45 e- per CCD pixel: HARPS e2ds headers (`ESO DRS CCD CONAD`; each real file
  carries its own value, 4.9-5.5 e-); pass the header's value when reproducing a real exposure.
* ``n_window`` = 6: the effective number of CCD pixels whose read noise enters one extracted pixel. The extraction
  window across the order is ~17 px, but the DRS extracts optimally (``ESO DRS SPE EXT OPT``), which weights it:
  solving SN_i = X_i / sqrt(X_i + n RON^2) with the DRS's own per-order ``ESO DRS SPE EXT SN{i}`` and the order-centre
  counts X_i of the real Gl273 e2ds gives a median n = 6.0 (10-90 %: 4-9) over the 72 orders
  (``simharps.ingest.noise``). A box extraction would be ``n_window`` = 17.
* Saturation: the 16-bit converter clips at 65,535 ADU per CCD pixel. The brightest CCD pixel of an extracted
  pixel holds ``peak_fraction`` of its electrons (a Gaussian cross-order profile of FWHM ~5 px: the DRS
  `ESO DRS CAL LOC FWHM*` polynomials give 4.4-6.3 px, so peak_fraction ~ 0.19). Saturated pixels are returned
  in a mask; their counts are clipped at the level where the peak pixel saturates.
* Cosmic rays: the DRS rejects hits above a k-sigma threshold and counts them in `ESO DRS SPE NBCOS*`. On the three
  real HARPS headers the counts summed over the 72 orders follow ~950 + 1.4 * exptime_s (219 s: 1249, 302 s: 1318,
  900 s: 2188), i.e. ~1.4 hits/s on the 72 x 4096 extracted pixels (the constant part are outliers unrelated to
  exposure time). What reaches the 1D product are the hits the rejection missed: their number is a fraction
  ``cosmic_residual_fraction`` (an assumption, default 0.05) of the hits, and each adds a deposit uniform between
  0 and ``cosmic_threshold_sigma`` (default 4) times that pixel's noise, i.e. just below the rejection threshold.
  This is a model of residuals of the removal, not of raw hits.
* Dark current: ``dark_e_per_px_s`` defaults to 0 (HARPS' dark is small against the read noise over the
  window for exposures up to an hour; set it where that matters).

Example
-------
>>> from simharps.detector import Detector
>>> detector = Detector()
>>> mean_adu, error_adu = detector.expectation(electrons, exptime_s=900.0)
>>> counts_adu, error_adu, saturated = detector.draw(electrons, exptime_s=900.0, rng=np.random.default_rng(1))
"""

from dataclasses import dataclass

import numpy as np

from simharps.errors import ParameterError

ADC_MAX_ADU = 65535.0
COSMIC_RATE_PER_S = 1.4
"""Cosmic-ray hits per second over all 72 x 4096 extracted pixels (slope of the NBCOS counts of the real headers)."""
EXTRACTED_PIXELS = 72 * 4096
POISSON_EXACT_BELOW_E = 50.0
"""Expected photo-electrons below which the photon noise is drawn from the Poisson distribution itself."""


@dataclass(frozen=True)
class Detector:
    """HARPS CCD as seen through extraction; all quantities per extracted pixel unless said otherwise."""

    gain_e_per_adu: float = 1.42
    read_noise_e: float = 5.45
    n_window: int = 6
    dark_e_per_px_s: float = 0.0
    peak_fraction: float = 0.19
    cosmic_rate_per_s: float = COSMIC_RATE_PER_S
    cosmic_residual_fraction: float = 0.05
    cosmic_threshold_sigma: float = 4.0

    def __post_init__(self):
        positive = {"gain_e_per_adu": self.gain_e_per_adu, "n_window": self.n_window}
        for name, value in positive.items():
            if not value > 0:
                raise ParameterError(f"{name} must be > 0, got {value}")
        non_negative = {
            "read_noise_e": self.read_noise_e,
            "dark_e_per_px_s": self.dark_e_per_px_s,
            "cosmic_rate_per_s": self.cosmic_rate_per_s,
            "cosmic_threshold_sigma": self.cosmic_threshold_sigma,
        }
        for name, value in non_negative.items():
            if not value >= 0:
                raise ParameterError(f"{name} must be >= 0, got {value}")
        for name in ("peak_fraction", "cosmic_residual_fraction"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ParameterError(f"{name} must be in [0, 1], got {value}")

    @property
    def saturation_e(self):
        """Photo-electrons of an extracted pixel whose brightest CCD pixel reaches the converter's ceiling."""
        return ADC_MAX_ADU * self.gain_e_per_adu / max(self.peak_fraction, 1e-12)

    def variance_e(self, electrons, exptime_s):
        """Variance (e-^2) of an extracted pixel with ``electrons`` expected photo-electrons."""
        electrons = np.asarray(electrons, dtype=float)
        dark_e = self.dark_e_per_px_s * exptime_s * self.n_window
        return np.clip(electrons, 0.0, None) + dark_e + self.n_window * self.read_noise_e**2

    def electrons_for_snr(self, snr):
        """Photo-electrons of an extracted pixel whose S/N is ``snr`` (the inverse of ``variance_e`` without dark):
        N^2 / (N + R) = snr^2 with R the read variance of the extraction window."""
        snr2 = np.asarray(snr, dtype=float) ** 2
        return 0.5 * (snr2 + np.sqrt(snr2**2 + 4.0 * snr2 * self.n_window * self.read_noise_e**2))

    def expectation(self, electrons, exptime_s):
        """Noiseless counts and their error, both in ADU: (electrons / gain, sqrt(variance) / gain)."""
        electrons = np.asarray(electrons, dtype=float)
        return electrons / self.gain_e_per_adu, np.sqrt(self.variance_e(electrons, exptime_s)) / self.gain_e_per_adu

    def draw(self, electrons, exptime_s, rng):
        """One noisy realisation: (counts_adu, error_adu, saturated mask); dark subtracted as the DRS does."""
        counts_e, _, saturated = self.draw_e(electrons, exptime_s, rng)
        error_adu = np.sqrt(self.variance_e(electrons, exptime_s)) / self.gain_e_per_adu
        return counts_e.astype(float) / self.gain_e_per_adu, error_adu, saturated

    def draw_e(self, electrons, exptime_s, rng):
        """``draw`` in photo-electrons, float32: (counts_e, variance_e, saturated); the variance is that of the
        expectation (``variance_e``), the same numbers ``draw`` turns into its error."""
        electrons = np.asarray(electrons, dtype=float)
        dark_e = self.dark_e_per_px_s * exptime_s * self.n_window
        counts_e, variance_e = photon_and_read_noise(np.clip(electrons, 0.0, None) + dark_e,
                                                     self.n_window * self.read_noise_e**2, rng)
        if dark_e:
            counts_e -= np.float32(dark_e)
        index, deposit = self._cosmic_hits(variance_e, exptime_s, rng)
        np.add.at(counts_e.reshape(-1), index, deposit.astype(np.float32))
        saturated = electrons >= self.saturation_e
        if saturated.any():
            counts_e[saturated] = self.saturation_e
        return counts_e, variance_e, saturated

    def _cosmic_hits(self, variance_e, exptime_s, rng):
        """(flat pixel indices, deposits in e-) of the sub-threshold cosmic-ray residuals the DRS rejection leaves."""
        rate_per_px = self.cosmic_rate_per_s * exptime_s * self.cosmic_residual_fraction / EXTRACTED_PIXELS
        n_hits = rng.poisson(rate_per_px * variance_e.size)
        if not n_hits:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        flat_index = rng.integers(0, variance_e.size, size=n_hits)
        sigma_e = np.sqrt(np.asarray(variance_e, dtype=float).flat[flat_index])
        return flat_index, rng.uniform(0.0, self.cosmic_threshold_sigma, size=n_hits) * sigma_e

    def _cosmic_residuals_e(self, sigma_e, exptime_s, rng):
        """Sub-threshold cosmic-ray deposits left after the DRS rejection (e-), scattered over the pixels."""
        residuals = np.zeros(sigma_e.shape)
        np.add.at(residuals.reshape(-1), *self._cosmic_hits(np.square(sigma_e), exptime_s, rng))
        return residuals


def photon_and_read_noise(mean_e, read_variance_e2, rng):
    """Poisson(mean_e) + Normal(0, read_variance_e2) draws and their variance, float32 (shape of ``mean_e``): exact
    below ``POISSON_EXACT_BELOW_E``, Cornish-Fisher above (module docstring)."""
    shape = np.shape(mean_e)
    mean_e = np.atleast_1d(np.asarray(mean_e, dtype=float))
    z = rng.standard_normal(mean_e.shape, dtype=np.float32)
    mean32 = mean_e.astype(np.float32)
    variance = mean32 + np.float32(read_variance_e2)
    sigma = np.sqrt(variance)
    skew = mean32 / (variance * sigma)
    # the expansion as a cubic in z: w = -a + (1 - 3 b + 5 c) z + a z^2 + (b - 2 c) z^3,
    # a = skew / 6, b = kurtosis / 24 = skew / (24 sigma), c = skew^2 / 36; evaluated by Horner's rule
    a = skew / np.float32(6.0)
    b = skew / (np.float32(24.0) * sigma)
    c = a * a
    w = z * (b - 2.0 * c)
    w += a
    w *= z
    w += 1.0 - 3.0 * b + 5.0 * c
    w *= z
    w -= a
    counts_e = mean32 + sigma * w
    low = np.flatnonzero(mean32 < POISSON_EXACT_BELOW_E)
    if low.size:
        counts_e.reshape(-1)[low] = (rng.poisson(mean_e.reshape(-1)[low])
                                     + rng.normal(0.0, np.sqrt(read_variance_e2), low.size))
    return counts_e.reshape(shape), variance.reshape(shape)
