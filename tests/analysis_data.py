"""Small synthetic datasets with planted, exactly known structure for the analysis tests (no simulator involved).

Spectra on the 0.01 A lattice: continuum A x (1 + slope x), one stellar Gaussian line at its rest wavelength moved
by rv_kms (relativistic, barycentric frame) and one telluric Gaussian line fixed in the observatory frame, i.e. at
lambda_0 (1 + BERV / c) in the stored barycentric frame, plus Gaussian noise of the given S/N.
"""

import numpy as np

from simharps.constants import C_KMS
from simharps.dataset import write_dataset

STELLAR_LINE_AA = 6290.0
TELLURIC_LINE_AA = 6300.0


def gaussian_line(wave, centre, depth, sigma_aa):
    return 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma_aa) ** 2)


def make_spectra(n_targets=6, epochs=5, start_aa=6270.0, n_channels=5000, snr=200.0, seed=0):
    """(wavelength, arrays, rows): flux, error, telluric, stellar, response for n_targets x epochs spectra."""
    rng = np.random.default_rng(seed)
    wave = np.round(start_aa + 0.01 * np.arange(n_channels), 2)
    flux, error, telluric, stellar, response, rows = [], [], [], [], [], []
    for target in range(n_targets):
        rv = rng.uniform(-40, 40)
        amplitude = rng.uniform(1e3, 5e3)
        slope = rng.uniform(-0.3, 0.3)
        depth = rng.uniform(0.3, 0.7)
        for epoch in range(epochs):
            berv = rng.uniform(-25, 25)
            mjd = 55000.0 + 3 * target + epoch + rng.uniform(0.05, 0.3)
            beta = rv / C_KMS
            s = gaussian_line(wave, STELLAR_LINE_AA * np.sqrt((1 + beta) / (1 - beta)), depth, 0.05)
            t = gaussian_line(wave, TELLURIC_LINE_AA * (1 + berv / C_KMS), 0.5, 0.04)
            r = amplitude * (1 + slope * (wave - wave.mean()) / np.ptp(wave))
            expected = r * s * t
            e = expected / snr
            flux.append(expected + rng.normal(0, 1, n_channels) * e)
            error.append(e)
            telluric.append(t)
            stellar.append(s)
            response.append(r)
            rows.append({"target_id": f"T{target:03d}", "epoch": epoch, "berv_kms": berv, "rv_kms": rv,
                         "mjd_utc": mjd, "teff_k": 4000.0 + 300 * target, "amplitude": amplitude,
                         "pwv_mm": rng.uniform(1, 10), "snr_550": snr, "object": f"star {target}"})
    arrays = {name: np.array(values, dtype=np.float32) for name, values in
              (("flux", flux), ("error", error), ("telluric", telluric), ("stellar", stellar),
               ("response", response))}
    return wave, arrays, rows


def write_synthetic(path, **options):
    """Write ``make_spectra(**options)`` as a dataset (float32 storage, chunks of 8) and return it."""
    wave, arrays, rows = make_spectra(**options)
    return write_dataset(path, wave, arrays, rows, chunk_size=8, dtypes={name: "float32" for name in arrays},
                         source="simulated")
