"""Build ``simharps/data/astrophysical_gf.npz``: per-line astrophysical log gf corrections calibrated on HD 41248.

Standard practice (e.g. the "astrophysical gf values" of Thevenin 1989, Melendez & Barbuy 1999): adjust each line's
log gf so that a synthesis of a well-known G dwarf reproduces the observed line. No solar atlas is offline, so the
calibration star is HD 41248 (G2V; ESPRESSO S1D degraded to R = 115,000, as in ``benchmarks/bench_stellar_fidelity.py``:
Teff 5713 K, logg 4.48, [Fe/H] -0.37, vsini 3 km/s, vmac from Valenti & Fischer, vmic 1 km/s). alpha Cen B and the M
dwarfs are held out: they are only measured (``--evaluate``).

Method
------
1. Model of HD 41248 from the line tables without corrections (``load_line_table(astrophysical_gf=False)``), rest
   frame, broadened and convolved with the HARPS LSF, aligned on the real spectrum with the bench's CCF alignment;
   both spectra continuum-normalised by the bench's upper envelope (the model's envelope is computed once and kept).
2. Per line, the isolated broadened depth is estimated from its Milne-Eddington equivalent width
   (``simharps.stellar.continuum.equivalent_widths_kms``) and its intrinsic Gaussian width convolved with the
   broadening kernel and the LSF; FWHM likewise. Candidates: estimated depth 0.03-0.8; no other line with estimated
   depth > 0.02 within +-2 FWHM; the model without the candidates (everything else: other lines, wings, Balmer)
   shallower than 0.02 within +-2 FWHM; telluric transmission (airmass 1.5, PWV 10 mm, R = 115,000, at the
   topocentric position for HD 41248's BERV) above 0.99 within +-2 FWHM; not in the Balmer, Ca II H&K, Mg b or Na D
   regions (``EXCLUDED_AA``); the real line's minimum within +-1 FWHM lies within 0.35 FWHM of the model position
   unless the real depth there is < 0.01 (a model line that the star does not show).
3. Core depth = 1 - min(normalised flux) within +-``CORE_HALF_KMS`` of the line position, real and model alike.
   Delta log gf per candidate from ``NEWTON_STEPS`` Newton steps on the model's own curve of growth (finite
   difference h = 0.1 dex, all candidates at once: they do not overlap), steps clipped at 0.5 dex, |Delta| <= 1 dex.
   Lines whose model slope d depth / d log gf stays < 0.01 (saturated) keep Delta where it is.
4. The median Delta over the calibrated lines (+0.39 dex: the model's lines of HD 41248 are too weak on average, a
   star-level bias degenerate with its [Fe/H] = -0.37 and the single-layer model's metallicity response, not a
   line-list error) is subtracted (and Delta clipped again at 1 dex): only line-to-line differences are kept. With
   the median kept, alpha Cen B's lines came out too deep (core-depth mean real - model +0.055 -> -0.047) and the M
   dwarfs' mean r fell by 0.013-0.016; without it they stay within 0.003.
5. Saved: non-zero Delta (|Delta| >= 0.01 dex) as int16 centi-dex with the merged-table line index (depth-table
   lines first, then the forest) and the number of lines (checked on load).

Also counts real lines without a model counterpart (real depth > 0.05, model < 0.01 within the core window, outside
the excluded and telluric regions) and reports them (no lines are invented).

Usage: ``python scripts/build_astrophysical_gf.py [--out FILE] [--json FILE]`` (about a minute); ``--evaluate``
measures the core-depth residuals (real - model) over the calibrated lines for HD 41248 and the held-out alpha Cen B
with and without the corrections of the shipped file.
"""

import argparse
import hashlib
import importlib.util
import io
import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import find_peaks

from simharps.broadening import broaden, broadening_kernel
from simharps.constants import C_KMS
from simharps.grids import WORKING_STEP_KMS
from simharps.kinematics import doppler_factor
from simharps.lsf import convolve_gaussian_velocity, gaussian_kernel
from simharps.stellar.continuum import equivalent_widths_kms
from simharps.stellar.lines import line_parameters
from simharps.stellar.linelist import load_line_table
from simharps.stellar.synthesis import (
    DEFAULT_VMIC_KMS,
    default_vmac_kms,
    lattice_indices,
    lattice_wavelengths,
    normalised_lines,
)
from simharps.telluric import telluric_transmission

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "simharps" / "data" / "astrophysical_gf.npz"
WINDOW_AA = (3800.0, 6900.0)
CANDIDATE_DEPTH = (0.03, 0.8)
NEIGHBOUR_DEPTH = 0.02
ISOLATION_FWHM = 2.0
CORE_HALF_KMS = 2.0
"""Half-width of the core window in which the depth (1 - minimum flux) is read."""
TELLURIC = dict(airmass=1.5, pwv_mm=10.0, minimum=0.99)
EXCLUDED_AA = [(3920.0, 3990.0), (4085.0, 4120.0), (4320.0, 4360.0), (4840.0, 4885.0), (5160.0, 5190.0),
               (5880.0, 5900.0), (6540.0, 6590.0)]
"""Ca II H & K + H epsilon, H delta, H gamma, H beta, Mg b, Na D, H alpha (air, A, rest): wings of strong lines."""
NEWTON_STEPS = 5
H_DEX = 0.1
MAX_DELTA_DEX = 1.0
MAX_STEP_DEX = 0.5
UNMATCHED = dict(real=0.05, model=0.01)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_stellar_fidelity",
                                                  ROOT / "benchmarks" / "bench_stellar_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_normalised(star, table, extra_dex=None, window=WINDOW_AA, step_kms=WORKING_STEP_KMS):
    """Rest-frame continuum-normalised model of ``star`` (a bench STARS entry) from ``table``, broadened and convolved
    with the HARPS LSF; ``extra_dex`` (per line) is added to log eta_0 (i.e. to log gf)."""
    bench = _BENCH
    p = bench.STARS[star]
    vmac = default_vmac_kms(p["teff_k"])
    first, last = lattice_indices(window[0] - 30.0, window[1] + 30.0, step_kms)
    wave = lattice_wavelengths(first, last, step_kms)
    params = line_parameters(p["teff_k"], p["logg_cgs"], p["mh_dex"], DEFAULT_VMIC_KMS, table=table)
    if extra_dex is not None:
        params = params._replace(eta0=params.eta0 * 10.0**extra_dex)
    flux = normalised_lines(np.log(wave), step_kms, p["teff_k"], p["logg_cgs"], params, 1.0, p["mh_dex"])
    flux = broaden(flux, step_kms, p["vsini_kms"], vmac)
    return wave, convolve_gaussian_velocity(flux, step_kms, bench.LSF_FWHM_KMS), params


def broadened_shape(star, step_kms=WORKING_STEP_KMS):
    """(intrinsic sigmas, peak of unit-area Gaussian (x) kernel, FWHM) tables for the star's broadening + LSF."""
    bench = _BENCH
    p = bench.STARS[star]
    kernel = np.convolve(broadening_kernel(step_kms, p["vsini_kms"], default_vmac_kms(p["teff_k"])),
                         gaussian_kernel(step_kms, bench.LSF_FWHM_KMS))
    sigmas = np.geomspace(0.3, 60.0, 80)
    peaks, fwhms = [], []
    for s in sigmas:
        g = gaussian_kernel(step_kms, s * 2.3548, truncate_sigma=6.0)
        profile = np.convolve(g, kernel) / step_kms
        peaks.append(profile.max())
        fwhms.append(np.sum(profile >= 0.5 * profile.max()) * step_kms)
    return sigmas, np.array(peaks), np.array(fwhms)


def estimated_depths(star, params):
    """Per line: estimated broadened isolated depth and FWHM (km/s) of the line in ``star``."""
    ew = equivalent_widths_kms(params.eta0, params.sigma_kms, params.gamma_kms, params.max_depth)
    d0 = params.max_depth * params.eta0 / (1.0 + params.eta0)
    sigma_intrinsic = ew / np.maximum(d0, 1e-12) / np.sqrt(2.0 * np.pi)
    sigmas, peaks, fwhms = broadened_shape(star)
    s = np.clip(sigma_intrinsic, sigmas[0], sigmas[-1])
    depth = ew * np.interp(np.log(s), np.log(sigmas), peaks)
    return np.minimum(depth, d0), np.interp(np.log(s), np.log(sigmas), fwhms)


def core_depths(wave, normalised, centres_aa, half_kms):
    """1 - minimum of ``normalised`` within +-half_kms of each centre (NaN where the window is empty)."""
    lo = np.searchsorted(wave, centres_aa * (1 - half_kms / C_KMS))
    hi = np.searchsorted(wave, centres_aa * (1 + half_kms / C_KMS))
    out = np.full(centres_aa.size, np.nan)
    ok = (hi > lo) & (lo > 0) & (hi < wave.size)
    if ok.any():
        starts = np.empty(2 * ok.sum(), dtype=np.intp)
        starts[0::2], starts[1::2] = lo[ok], hi[ok]
        minima = np.minimum.reduceat(np.append(normalised, 1.0), starts)[0::2]
        out[ok] = 1.0 - minima
    return out


def minimum_offset_kms(wave, normalised, centres_aa, half_kms):
    """Velocity of the minimum of ``normalised`` within +-half_kms (per centre) relative to the centre."""
    out = np.full(centres_aa.size, np.nan)
    for i, (c, h) in enumerate(zip(centres_aa, np.broadcast_to(half_kms, centres_aa.shape))):
        lo, hi = np.searchsorted(wave, [c * (1 - h / C_KMS), c * (1 + h / C_KMS)])
        if hi - lo > 2:
            out[i] = (wave[lo + np.argmin(normalised[lo:hi])] / c - 1.0) * C_KMS
    return out


def in_ranges(wavelength_aa, ranges):
    inside = np.zeros(np.shape(wavelength_aa), dtype=bool)
    for lo, hi in ranges:
        inside |= (wavelength_aa > lo) & (wavelength_aa < hi)
    return inside


@lru_cache(maxsize=1)
def telluric_grid():
    """(air wavelength, transmission) at TELLURIC's airmass and PWV, R = 115,000, observatory frame."""
    fine = np.arange(WINDOW_AA[0] - 10, WINDOW_AA[1] + 10, 0.005)
    return fine, telluric_transmission(fine, TELLURIC["airmass"], TELLURIC["pwv_mm"], resolution=115_000)


class Star:
    """Real spectrum of a bench star, continuum-normalised, with the model alignment (RV) and envelope."""

    def __init__(self, star, table):
        bench = _BENCH
        self.star = star
        wave, flux, _ = bench.LOADERS[star]()
        good = np.isfinite(flux) & (flux > 0)
        wave, flux = wave[good], flux[good]
        keep = (wave > WINDOW_AA[0]) & (wave < WINDOW_AA[1])
        self.wave, flux = wave[keep], flux[keep]
        self.real_n = bench.continuum_normalise(self.wave, flux)
        model_wave, model_flux, self.params = model_normalised(star, table)
        self.rv, _, _ = bench.align(star, self.wave, flux, model_wave, model_flux)
        self.doppler = doppler_factor(self.rv)
        on_real = np.interp(self.wave / self.doppler, model_wave, model_flux)
        self.envelope = on_real / bench.continuum_normalise(self.wave, on_real)

    def model_on_real(self, table, extra_dex=None):
        model_wave, model_flux, _ = model_normalised(self.star, table, extra_dex)
        return np.interp(self.wave / self.doppler, model_wave, model_flux) / self.envelope

    def depths(self, normalised, rest_aa):
        return core_depths(self.wave, normalised, rest_aa * self.doppler, CORE_HALF_KMS)


def select_candidates(star, table, berv_kms):
    params = star.params
    n = len(table)
    depth, fwhm = estimated_depths(star.star, params)
    wave = table.wavelength_air_aa
    in_range = (wave > WINDOW_AA[0] + 5) & (wave < WINDOW_AA[1] - 5)
    significant = np.flatnonzero(in_range & (depth > NEIGHBOUR_DEPTH))
    order = significant[np.argsort(wave[significant])]
    sorted_wave = wave[order]
    cand = np.flatnonzero(in_range & (depth >= CANDIDATE_DEPTH[0]) & (depth <= CANDIDATE_DEPTH[1])
                          & ~in_ranges(wave, EXCLUDED_AA))
    reach = ISOLATION_FWHM * fwhm[cand] / C_KMS * wave[cand]
    neighbours = (np.searchsorted(sorted_wave, wave[cand] + reach, side="right")
                  - np.searchsorted(sorted_wave, wave[cand] - reach, side="left") - 1)
    counts = {"in range, depth 0.03-0.8, outside excluded regions": int(cand.size)}
    cand = cand[neighbours == 0]
    counts["no other line > 0.02 within 2 FWHM"] = int(cand.size)
    # everything else (other lines, wings, Balmer): model with the candidates removed
    removed = np.zeros(n)
    removed[cand] = -30.0
    others = star.model_on_real(table, removed)
    residual = core_depths(star.wave, others, wave[cand] * star.doppler, ISOLATION_FWHM * fwhm[cand])
    cand = cand[residual < NEIGHBOUR_DEPTH]
    counts["rest of the model < 0.02 within 2 FWHM"] = int(cand.size)
    # tellurics at the topocentric position
    topo = wave[cand] * star.doppler / doppler_factor(berv_kms)
    fine, transmission = telluric_grid()
    t_min = core_depths(fine, transmission, topo, ISOLATION_FWHM * fwhm[cand])
    cand = cand[(1.0 - t_min) > TELLURIC["minimum"]]
    counts["telluric transmission > 0.99 within 2 FWHM"] = int(cand.size)
    return cand, depth, fwhm, others, counts


def calibrate(star, table, cand, fwhm):
    wave = table.wavelength_air_aa
    real = star.depths(star.real_n, wave[cand])
    offset = minimum_offset_kms(star.wave, star.real_n, wave[cand] * star.doppler, fwhm[cand])
    positioned = (np.abs(offset) < 0.35 * fwhm[cand]) | (real < 0.01)
    cand, real = cand[positioned & np.isfinite(real)], real[positioned & np.isfinite(real)]
    delta = np.zeros(len(table))
    first_model = None
    for _ in range(NEWTON_STEPS):
        model = star.depths(star.model_on_real(table, delta), wave[cand])
        first_model = model if first_model is None else first_model
        shifted = delta.copy()
        shifted[cand] += H_DEX
        slope = (star.depths(star.model_on_real(table, shifted), wave[cand]) - model) / H_DEX
        step = np.where(slope > 0.01, (real - model) / np.maximum(slope, 0.01), 0.0)
        delta[cand] = np.clip(delta[cand] + np.clip(step, -MAX_STEP_DEX, MAX_STEP_DEX), -MAX_DELTA_DEX, MAX_DELTA_DEX)
    final = star.depths(star.model_on_real(table, delta), wave[cand])
    return cand, delta, real, first_model, final


def unmatched_real_lines(star, model_n, berv_kms):
    """Real minima deeper than 0.05 where the model is shallower than 0.01 (outside excluded / telluric regions)."""
    bench = _BENCH
    sigma_px = np.median(star.wave) / bench.HARPS_R / 2.3548 / np.median(np.diff(star.wave))
    from scipy.ndimage import gaussian_filter1d

    smoothed = 1.0 - gaussian_filter1d(star.real_n, sigma_px)
    peaks, props = find_peaks(smoothed, height=UNMATCHED["real"], prominence=0.02)
    at = star.wave[peaks]
    model = core_depths(star.wave, model_n, at, CORE_HALF_KMS)
    rest = at / star.doppler
    topo = at / doppler_factor(berv_kms)
    fine, transmission = telluric_grid()
    t_min = 1.0 - core_depths(fine, transmission, topo, 5.0)
    clean = ~in_ranges(rest, EXCLUDED_AA) & (t_min > TELLURIC["minimum"])
    missing = clean & (model < UNMATCHED["model"])
    return dict(real_lines_deeper_0p05=int(clean.sum()), without_model_counterpart=int(missing.sum()),
                wavelengths_rest_aa=np.round(rest[missing], 3).tolist(),
                real_depths=np.round(props["peak_heights"][missing], 3).tolist())


def write(path, delta, n_lines, global_dex):
    index = np.flatnonzero(np.abs(delta) >= 0.005)
    centi = np.rint(delta[index] * 100).astype(np.int16)
    keep = centi != 0
    buffer = io.BytesIO()
    np.savez_compressed(buffer, line_index=index[keep].astype(np.int32), delta_centidex=centi[keep],
                        n_lines=np.int64(n_lines), removed_median_centidex=np.int16(round(global_dex * 100)))
    data = buffer.getvalue()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), len(data), int(keep.sum())


def residual_stats(real, model):
    d = real - model
    ok = np.isfinite(d)
    return dict(n=int(ok.sum()), mean=float(np.mean(d[ok])), rms=float(np.sqrt(np.mean(d[ok] ** 2))),
                std=float(np.std(d[ok])), median_abs=float(np.median(np.abs(d[ok]))))


def evaluate(stars=("HD41248", "alfCenB")):
    """Core-depth residuals real - model over the lines the shipped file corrects, without and with the file."""
    raw = load_line_table(astrophysical_gf=False)
    corrected = load_line_table()
    lines = np.flatnonzero(corrected.loggf_correction_dex != 0)
    out = {}
    for name in stars:
        star = Star(name, raw)
        rest = raw.wavelength_air_aa[lines]
        real = star.depths(star.real_n, rest)
        before = star.depths(star.model_on_real(raw), rest)
        after = star.depths(star.model_on_real(corrected), rest)
        out[name] = {"before": residual_stats(real, before), "after": residual_stats(real, after),
                     "real_depth_median": float(np.nanmedian(real))}
        print(f"{name}: {lines.size} corrected lines; core depth real - model: before {out[name]['before']}, "
              f"after {out[name]['after']}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--json", type=Path, help="write diagnostics to this file")
    parser.add_argument("--evaluate", action="store_true", help="measure the shipped file instead of building it")
    args = parser.parse_args()
    if args.evaluate:
        result = evaluate()
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return
    from astropy.io import fits

    bench = _BENCH
    berv = float(fits.getheader(bench.SHARED / "harps" / "HD41248_1_1_S1D_A.fits")["HIERARCH ESO QC BERV"])
    table = load_line_table(astrophysical_gf=False)
    star = Star("HD41248", table)
    cand, depth, fwhm, _, counts = select_candidates(star, table, berv)
    cand, delta, real, before, after = calibrate(star, table, cand, fwhm)
    counts["real minimum at the model position (or no real line)"] = int(cand.size)
    global_dex = float(np.median(delta[cand]))
    delta[cand] = np.clip(delta[cand] - global_dex, -MAX_DELTA_DEX, MAX_DELTA_DEX)
    shipped = star.depths(star.model_on_real(table, delta), table.wavelength_air_aa[cand])
    unmatched = unmatched_real_lines(star, star.model_on_real(table), berv)
    sha, size, n_saved = write(args.out, delta, len(table), global_dex)
    clipped = int(np.sum(np.abs(delta[cand]) >= MAX_DELTA_DEX - 1e-9))
    summary = dict(rv_kms=star.rv, berv_kms=berv, selection=counts, calibrated=int(cand.size), saved=n_saved,
                   removed_median_dex=global_dex,
                   clipped=clipped, forest_lines=int(table.forest[cand].sum()),
                   delta_dex=dict(median=float(np.median(delta[cand])), rms=float(np.sqrt(np.mean(delta[cand] ** 2))),
                                  p10=float(np.percentile(delta[cand], 10)), p90=float(np.percentile(delta[cand], 90))),
                   core_depth_before=residual_stats(real, before), core_depth_fitted=residual_stats(real, after),
                   core_depth_shipped=residual_stats(real, shipped),
                   unmatched_real_lines={k: v for k, v in unmatched.items() if k not in ("wavelengths_rest_aa",
                                                                                       "real_depths")},
                   sha256=sha, bytes=size)
    print(json.dumps(summary, indent=1))
    if args.json:
        summary["unmatched_real_lines"] = unmatched
        args.json.write_text(json.dumps(summary, indent=1))


_BENCH = _bench()

if __name__ == "__main__":
    sys.exit(main())
