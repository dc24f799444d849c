"""Fidelity of the built-in stellar synthesis against four real stars: correlation and line statistics per window.

Run by hand: ``python benchmarks/bench_stellar_fidelity.py [--json FILE]`` (about 20 s on one core). Needs
the real data in ``../shared/data`` (or ``$SIMHARPS_SHARED_DATA``).

Stars (literature parameters; none of them was used to fit anything in the synthesis except HD 41248, on which
the core-depth law, the Balmer wings and the astrophysical log gf corrections of 670 lines were fitted, see
``simharps.stellar.linelist`` / ``balmer`` and ``simharps/data/astrophysical_gf.md``):

=========  ========  ======================================  ===================================================
star       type      spectrum                                Teff / logg / [Fe/H] / vsini (source)
=========  ========  ======================================  ===================================================
HD41248    G2V       ESPRESSO S1D, degraded to R = 115,000   5713 / 4.48 / -0.37 / 3.0 (``shared/data/README.md``)
alfCenB    K1V       8 DRS s1d of the series, averaged       5231 / 4.53 / +0.22 / 1.0 (Gaia benchmark: Heiter et
                     (highest SN50, distinct nights)         al. 2015, Jofre et al. 2014)
Gl581      M3V       DRS s1d                                 3480 / 4.9 / -0.1 / 1.0 (``shared/data/README.md``)
Gl273      M3.5V     e2ds / blaze, orders merged, BERV ->    3380 / 4.9 / 0.0 / 1.0 (``shared/data/README.md``);
                     barycentric                             HELD OUT: used for no fit or calibration choice
=========  ========  ======================================  ===================================================

Method: one full-range synthesis per star at rest (``synthesize``, vmac from Valenti & Fischer), convolved
with the HARPS LSF (R = 115,000), shifted to the star's RV and interpolated onto the real wavelengths. The RV
is the CCF RV of the real spectrum with the HARPS mask of the type (G2, K2, M2) minus the CCF RV of the rest-
frame model with the same mask (the mask's zero-point for that model), so that model and real lines are
aligned whatever the mask's zero-point. Both spectra are continuum-normalised by the same upper envelope
(running 95th percentile over 10 A, smoothed over 10 A; a pseudo-continuum in M dwarfs). Per 100 A window:

* r: Pearson correlation of the normalised spectra (CCD gap, zero and non-finite pixels excluded); r_max: the
  largest r that a perfect model could reach against the noisy real spectrum, ``sqrt(1 - var(noise) /
  var(real))`` (noise from the photon counts as below);
* N>1 %, N>3 %, N>10 %: resolved lines per 100 A, i.e. local minima of the normalised flux (both smoothed
  by a Gaussian of one LSF FWHM) deeper than 1 - 0.01, 0.97, 0.90 with a prominence of at least 0.005.
  Noise makes spurious minima in the real spectrum, so the model is given matched white noise first (fixed
  seed): the real spectrum's relative noise per pixel from its photon counts (s1d flux is ADU per 0.01 A bin,
  sqrt(flux x gain) reproduces the header SN50; e2ds: sqrt(counts x gain + 17 px x read noise^2); alpha Cen B:
  the average of 8; ESPRESSO: its error column, reduced by the degradation kernel); its window median is
  printed (``sig``). With sig of several per cent (the M dwarfs in the blue) the 1 % and 3 % counts are noise;
* for the M dwarfs, TiO band heads 5847 and 6651 A (air, rest): flux ratio mean(head + 1..11 A) /
  mean(head - 11..-1 A) on the un-normalised spectra (the band drop redward of the head; 1 = no band).

``BEFORE`` holds the numbers of the synthesis before the weak-line forest and molecular lines (commit
1f0397c, the VALD depth >= 0.1 table only); the live run is "after". ``--before FILE`` compares with another run.

Astrophysical log gf corrections (fitted on HD 41248 only; alpha Cen B and the M dwarfs held out), 12-window mean r
without -> with: HD 41248 0.943 -> 0.962 (calibration star), alpha Cen B 0.940 -> 0.946, Gl 581 0.664 -> 0.661, Gl 273
0.604 -> 0.602; line counts change by a few per 100 A at most.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.ndimage import gaussian_filter1d, percentile_filter, uniform_filter1d
from scipy.signal import find_peaks

from simharps.ccf import measure_rv, read_ccf_mask
from simharps.constants import C_KMS
from simharps.io import read_e2ds
from simharps.kinematics import doppler_factor
from simharps.lsf import convolve_gaussian_velocity, fwhm_kms_from_resolution, gaussian_kernel
from simharps.stellar.synthesis import synthesize

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIMHARPS_SHARED_DATA", ROOT.parent / "shared" / "data"))
HARPS_R, ESPRESSO_R = 115_000, 140_000
LSF_FWHM_KMS = fwhm_kms_from_resolution(HARPS_R)

STARS = {
    "HD41248": dict(teff_k=5713.0, logg_cgs=4.48, mh_dex=-0.37, vsini_kms=3.0, mask="G2", rv_guess=3.5),
    "alfCenB": dict(teff_k=5231.0, logg_cgs=4.53, mh_dex=0.22, vsini_kms=1.0, mask="K2", rv_guess=-22.0),
    "Gl581": dict(teff_k=3480.0, logg_cgs=4.9, mh_dex=-0.1, vsini_kms=1.0, mask="M2", rv_guess=-9.2),
    "Gl273": dict(teff_k=3380.0, logg_cgs=4.9, mh_dex=0.0, vsini_kms=1.0, mask="M2", rv_guess=18.2),
}
HELD_OUT = "Gl273"
WINDOWS = [(4000, 4100), (4400, 4500), (4700, 4800), (4900, 5000), (5000, 5100), (5200, 5300), (5500, 5600),
           (5800, 5900), (6100, 6200), (6400, 6500), (6600, 6700), (6700, 6800)]
"""100 A windows (air, barycentric). GALAH TiO coverage (dense): 4676-5000, 5600-6100, 6300-7930 A."""
THRESHOLDS = (0.01, 0.03, 0.10)
MIN_PROMINENCE = 0.005
BAND_HEADS_AA = (5448.0, 5847.0, 6651.0)
"""TiO heads; 5448 A (alpha (0,1), under order 50) has no TiO line data (4950-5625 A gap): its band is the JOLA
approximation of ``simharps.stellar.tio_bands`` (model head 0.819 -> 0.660 for Gl581, real 0.657; 0.749 -> 0.521 for
Gl273, real 0.601)."""
GAP_AA = (5295.0, 5345.0)

BEFORE = {'HD41248': {'windows': {'4000-4100': {'r': 0.9295, 'model': [318, 291, 220]},
                         '4400-4500': {'r': 0.9553, 'model': [250, 225, 164]},
                         '4700-4800': {'r': 0.9485, 'model': [186, 140, 89]},
                         '4900-5000': {'r': 0.961, 'model': [152, 121, 85]},
                         '5000-5100': {'r': 0.973, 'model': [157, 139, 86]},
                         '5200-5300': {'r': 0.9692, 'model': [158, 129, 72]},
                         '5500-5600': {'r': 0.931, 'model': [99, 76, 39]},
                         '5800-5900': {'r': 0.9643, 'model': [66, 37, 11]},
                         '6100-6200': {'r': 0.9238, 'model': [72, 51, 26]},
                         '6400-6500': {'r': 0.9357, 'model': [50, 37, 22]},
                         '6600-6700': {'r': 0.9081, 'model': [37, 18, 5]},
                         '6700-6800': {'r': 0.8515, 'model': [39, 25, 3]}},
             'band_heads': {}},
 'alfCenB': {'windows': {'4000-4100': {'r': 0.9073, 'model': [381, 379, 359]},
                         '4400-4500': {'r': 0.9371, 'model': [310, 306, 284]},
                         '4700-4800': {'r': 0.9194, 'model': [247, 245, 208]},
                         '4900-5000': {'r': 0.9505, 'model': [200, 194, 163]},
                         '5000-5100': {'r': 0.9254, 'model': [183, 182, 167]},
                         '5200-5300': {'r': 0.9557, 'model': [193, 188, 170]},
                         '5500-5600': {'r': 0.9339, 'model': [143, 133, 105]},
                         '5800-5900': {'r': 0.9627, 'model': [98, 91, 64]},
                         '6100-6200': {'r': 0.9597, 'model': [95, 85, 68]},
                         '6400-6500': {'r': 0.957, 'model': [63, 57, 43]},
                         '6600-6700': {'r': 0.9253, 'model': [56, 51, 32]},
                         '6700-6800': {'r': 0.8576, 'model': [52, 47, 33]}},
             'band_heads': {}},
 'Gl581': {'windows': {'4000-4100': {'r': 0.4752, 'model': [864, 851, 804]},
                       '4400-4500': {'r': 0.728, 'model': [539, 522, 403]},
                       '4700-4800': {'r': 0.4646, 'model': [547, 529, 426]},
                       '4900-5000': {'r': 0.5643, 'model': [467, 444, 317]},
                       '5000-5100': {'r': 0.5936, 'model': [396, 393, 347]},
                       '5200-5300': {'r': 0.6826, 'model': [378, 363, 325]},
                       '5500-5600': {'r': 0.5734, 'model': [403, 392, 275]},
                       '5800-5900': {'r': 0.6259, 'model': [420, 413, 203]},
                       '6100-6200': {'r': 0.5633, 'model': [327, 248, 167]},
                       '6400-6500': {'r': 0.5768, 'model': [328, 317, 116]},
                       '6600-6700': {'r': 0.4788, 'model': [290, 266, 140]},
                       '6700-6800': {'r': 0.5367, 'model': [348, 343, 305]}},
           'band_heads': {'5847': {'model': 0.898}, '6651': {'model': 0.9592}}},
 'Gl273': {'windows': {'4000-4100': {'r': 0.4667, 'model': [945, 943, 909]},
                       '4400-4500': {'r': 0.629, 'model': [560, 544, 455]},
                       '4700-4800': {'r': 0.3863, 'model': [541, 527, 466]},
                       '4900-5000': {'r': 0.5282, 'model': [461, 432, 367]},
                       '5000-5100': {'r': 0.5254, 'model': [392, 392, 370]},
                       '5200-5300': {'r': 0.6167, 'model': [362, 352, 331]},
                       '5500-5600': {'r': 0.499, 'model': [427, 422, 349]},
                       '5800-5900': {'r': 0.4845, 'model': [446, 443, 325]},
                       '6100-6200': {'r': 0.4668, 'model': [336, 255, 189]},
                       '6400-6500': {'r': 0.4743, 'model': [339, 331, 238]},
                       '6600-6700': {'r': 0.4537, 'model': [296, 266, 177]},
                       '6700-6800': {'r': 0.5936, 'model': [358, 355, 343]}},
           'band_heads': {'5847': {'model': 0.8919}, '6651': {'model': 0.9294}}}}
"""Numbers of the synthesis before the forest and molecular lines: this script run (``--json``) against the package
at commit 1f0397c (``git archive HEAD simharps`` unpacked elsewhere and put first on PYTHONPATH); r per window, model
line counts per 100 A (> 1, 3, 10 %, with matched noise), model TiO head ratios."""


def continuum_normalise(wavelength_aa, flux, width_aa=10.0, percentile=95):
    """Upper-envelope continuum: running percentile over width_aa, then a running mean over the same width."""
    n = int(width_aa / np.median(np.diff(wavelength_aa))) | 1
    continuum = uniform_filter1d(percentile_filter(flux, percentile, size=n, mode="nearest"), n, mode="nearest")
    return flux / continuum


GAIN_E_PER_ADU = 1.42
READ_NOISE_E, EXTRACTION_PX = 5.45, 17


def _relative_noise(counts_adu):
    """sigma / flux of extracted counts (ADU): photon noise plus read noise over the extraction window."""
    electrons = np.maximum(counts_adu, 1.0) * GAIN_E_PER_ADU
    return np.sqrt(electrons + EXTRACTION_PX * READ_NOISE_E**2) / electrons


def load_hd41248():
    with fits.open(SHARED / "harps" / "HD41248_1_1_S1D_A.fits") as hdul:
        data = hdul[1].data
        wavelength = np.asarray(data["wavelength_air"], dtype=float)
        flux = np.asarray(data["flux"], dtype=float)
        error = np.asarray(data["error"], dtype=float)
    sel = (wavelength > 3800.0) & (wavelength < 6900.0) & np.isfinite(flux) & (flux > 0)
    wavelength, flux, error = wavelength[sel], flux[sel], error[sel]
    step_kms = np.median(np.diff(np.log(wavelength))) * C_KMS
    kernel_kms = C_KMS * np.sqrt(1 / HARPS_R**2 - 1 / ESPRESSO_R**2)
    kernel = gaussian_kernel(step_kms, kernel_kms)
    smoothed = convolve_gaussian_velocity(flux, step_kms, kernel_kms)
    return wavelength, smoothed, error / flux * np.sqrt(np.sum(kernel**2))


def _read_s1d(path):
    with fits.open(path) as hdul:
        header = hdul[0].header
        flux = np.asarray(hdul[0].data, dtype=float)
    wavelength = header["CRVAL1"] + header["CDELT1"] * (np.arange(flux.size) + 1 - header.get("CRPIX1", 1.0))
    return wavelength, flux, header


def load_alfcenb(n_files=8):
    """Average of the n_files highest-SN50 s1d spectra, one per night (tellurics move between nights)."""
    files = sorted((SHARED / "harps_series" / "alfcenb").glob("*_s1d_A.fits"))
    ranked = sorted(files, key=lambda f: -fits.getheader(f)["HIERARCH ESO DRS SPE EXT SN50"])
    chosen, nights = [], set()
    for path in ranked:
        night = path.name[6:16]
        if night not in nights:
            chosen.append(path)
            nights.add(night)
        if len(chosen) == n_files:
            break
    grid = np.arange(3785.0, 6910.0, 0.01)
    total, variance = np.zeros(grid.size), np.zeros(grid.size)
    for path in chosen:
        wavelength, flux, _ = _read_s1d(path)
        flux = np.where(flux > 0, flux, np.nan)
        on_grid = np.interp(grid, wavelength, flux)
        total += on_grid / np.nanmedian(flux)
        variance += _relative_noise(on_grid) ** 2
    return grid, total / len(chosen), np.sqrt(variance) / len(chosen)


def load_gl581():
    wavelength, flux, _ = _read_s1d(SHARED / "harps" / "HARPS.2010-09-18T23:42:36.178_s1d_A.fits")
    return wavelength, np.where(flux > 0, flux, np.nan), _relative_noise(flux)


def load_gl273(trim_px=100):
    """e2ds / blaze, BERV-shifted to the barycentric frame, orders merged with blaze^2 weights on 0.01 A."""
    e2ds = read_e2ds(SHARED / "harps" / "HARPS.2003-12-13T06:19:48.371_e2ds_A.fits")
    berv = e2ds.meta["berv_kms"]
    grid = np.arange(3785.0, 6910.0, 0.01)
    num, den, var = np.zeros(grid.size), np.zeros(grid.size), np.zeros(grid.size)
    for wave, flux, blaze in zip(e2ds.wavelength_air_aa, e2ds.flux, e2ds.blaze):
        wave = wave[trim_px:-trim_px] * (1 + berv / C_KMS)
        flux, blaze = flux[trim_px:-trim_px].astype(float), blaze[trim_px:-trim_px].astype(float)
        inside = (grid > wave[0]) & (grid < wave[-1])
        b = np.interp(grid[inside], wave, blaze)
        weight = b**2
        num[inside] += weight * np.interp(grid[inside], wave, flux / blaze)
        var[inside] += weight**2 * np.interp(grid[inside], wave, _relative_noise(flux)) ** 2
        den[inside] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return grid, np.where(den > 0, num / den, np.nan), np.sqrt(var) / den


LOADERS = {"HD41248": load_hd41248, "alfCenB": load_alfcenb, "Gl581": load_gl581, "Gl273": load_gl273}


def model_spectrum(star):
    """Rest-frame model (air lattice), LSF-convolved; float64."""
    p = STARS[star]
    s = synthesize(p["teff_k"], p["logg_cgs"], p["mh_dex"], vsini_kms=p["vsini_kms"], rv_kms=0.0,
                   window=(3770.0, 6930.0))
    return s.wavelength_air_aa, convolve_gaussian_velocity(s.flux.astype(float), s.step_kms, LSF_FWHM_KMS)


def align(star, real_wave, real_flux, model_wave, model_flux):
    """Star RV (km/s) for the model: real CCF RV minus the model's CCF RV at rest, same mask."""
    p = STARS[star]
    mask = read_ccf_mask(SHARED / "ccf_masks" / f"HARPS_{p['mask']}.fits")
    keep = (mask.wavelength_air_aa > 4400) & (mask.wavelength_air_aa < 6800)
    mask = type(mask)(mask.wavelength_air_aa[keep], mask.weight[keep])
    good = np.isfinite(real_flux)
    real = measure_rv(real_wave[good], real_flux[good], mask, rv_guess_kms=p["rv_guess"], step_kms=0.1)
    zero = measure_rv(model_wave, model_flux, mask, rv_guess_kms=0.0, step_kms=0.1)
    return real.rv_kms - zero.rv_kms, real.rv_kms, zero.rv_kms


def line_counts(wave, normalised):
    """Resolved minima per 100 A deeper than each of THRESHOLDS (both spectra smoothed by one LSF FWHM)."""
    step_aa = np.median(np.diff(wave))
    sigma_px = np.median(wave) / HARPS_R / 2.3548 / step_aa
    depth = 1.0 - gaussian_filter1d(normalised, sigma_px)
    peaks, props = find_peaks(depth, height=THRESHOLDS[0], prominence=MIN_PROMINENCE)
    per_100 = 100.0 / (wave[-1] - wave[0])
    return [float(np.sum(props["peak_heights"] >= t) * per_100) for t in THRESHOLDS]


def band_head_ratio(wave, flux, head_aa):
    red = (wave > head_aa + 1) & (wave < head_aa + 11)
    blue = (wave > head_aa - 11) & (wave < head_aa - 1)
    return float(np.nanmean(flux[red]) / np.nanmean(flux[blue]))


def measure(star, real_wave, real_flux, real_noise, seed=1):
    t0 = time.perf_counter()
    model_wave, model_flux = model_spectrum(star)
    t_model = time.perf_counter() - t0
    rv, rv_real, rv_zero = align(star, real_wave, real_flux, model_wave, model_flux)
    model_on_real = np.interp(real_wave / doppler_factor(rv), model_wave, model_flux)
    rng = np.random.default_rng(seed)
    windows = {}
    for lo, hi in WINDOWS:
        sel = (real_wave > lo - 6) & (real_wave < hi + 6)
        w, fr, fm, noise = real_wave[sel], real_flux[sel], model_on_real[sel], real_noise[sel]
        if w.size == 0:
            continue
        good = np.isfinite(fr) & (fr > 0) & ~((w > GAP_AA[0]) & (w < GAP_AA[1]))
        if good.mean() < 0.9:
            continue
        fr = np.interp(w, w[good], fr[good])
        real_n, model_n = continuum_normalise(w, fr), continuum_normalise(w, fm)
        core = (w >= lo) & (w < hi) & good
        noise = np.where(np.isfinite(noise), noise, np.nanmedian(noise[core]))
        r = float(np.corrcoef(real_n[core], model_n[core])[0, 1])
        noise_variance = np.mean((real_n[core] * noise[core]) ** 2) if np.all(np.isfinite(noise[core])) else 0.0
        r_max = float(np.sqrt(max(0.0, 1.0 - noise_variance / np.var(real_n[core]))))
        sigma = float(np.median(noise[core]))
        noisy = model_n * (1.0 + rng.normal(0.0, 1.0, model_n.size) * noise)
        inner = (w >= lo) & (w < hi)
        windows[f"{lo}-{hi}"] = dict(r=r, r_max=r_max, sigma=sigma, real=line_counts(w[inner], real_n[inner]),
                                     model=line_counts(w[inner], noisy[inner]))
    heads = {}
    if STARS[star]["teff_k"] < 4000:
        shifted = real_wave / doppler_factor(rv)
        for head in BAND_HEADS_AA:
            heads[str(int(head))] = dict(real=band_head_ratio(shifted, real_flux, head),
                                         model=band_head_ratio(model_wave, model_flux, head))
    return dict(rv_kms=rv, rv_real_ccf=rv_real, rv_model_zero=rv_zero, synthesis_s=t_model, windows=windows,
                band_heads=heads)


def print_table(results, before):
    print(f"{'star':8s} {'window':10s} {'r_bef':>6s} {'r_aft':>6s} {'r_max':>6s} {'sig':>6s} | "
          f"{'N>1% real/bef/aft':>18s} | {'N>3% real/bef/aft':>18s} | {'N>10% real/bef/aft':>19s}")
    for star, result in results.items():
        tag = f"{star}*" if star == HELD_OUT else star
        old = before.get(star, {})
        for name, w in result["windows"].items():
            b = old.get("windows", {}).get(name, {})
            r_b = f"{b['r']:6.3f}" if b else "     -"
            counts = []
            for k in range(len(THRESHOLDS)):
                nb = f"{b['model'][k]:.0f}" if b else "-"
                counts.append(f"{w['real'][k]:6.0f}/{nb:>5s}/{w['model'][k]:<5.0f}")
            print(f"{tag:8s} {name:10s} {r_b} {w['r']:6.3f} {w.get('r_max', np.nan):6.3f} {w['sigma']:6.4f} | "
                  + " | ".join(counts))
        rs_a = [w["r"] for w in result["windows"].values()]
        rs_b = [w["r"] for w in old.get("windows", {}).values()]
        mean_b = f"{np.mean(rs_b):6.3f}" if rs_b else "     -"
        print(f"{tag:8s} {'mean r':10s} {mean_b} {np.mean(rs_a):6.3f}   (RV {result['rv_kms']:+.3f} km/s, "
              f"synthesis {result['synthesis_s']:.1f} s)")
        for head, h in result["band_heads"].items():
            hb = old.get("band_heads", {}).get(head)
            hb_s = f"{hb['model']:.3f}" if hb else "-"
            print(f"{tag:8s} TiO {head} A head ratio (red/blue of head): real {h['real']:.3f}, before {hb_s}, "
                  f"after {h['model']:.3f}")
    print(f"(* {HELD_OUT}: held out of every fit and calibration choice)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the live numbers to this file")
    parser.add_argument("--stars", nargs="*", default=list(STARS))
    parser.add_argument("--before", type=Path, help="a --json file to compare with instead of BEFORE")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"real data not found at {SHARED}")
    before = json.loads(args.before.read_text()) if args.before else BEFORE
    results = {}
    for star in args.stars:
        wave, flux, noise = LOADERS[star]()
        results[star] = measure(star, wave, flux, noise)
    print_table(results, before)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
