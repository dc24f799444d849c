"""Build ``simharps/data/harps_efficiency.npz``: the chromatic spectrograph + CCD efficiency relative to order 50,
fitted on the 72 per-order S/N keywords of the 86 alpha Cen B DRS spectra (../shared/data/harps_series/alfcenb).

Method (provenance in ``simharps/data/harps_efficiency.md``):

1. Each real spectrum's header gives the S/N at the centre of every order (``ESO DRS SPE EXT SN0..71``). Detected
   photo-electrons follow from SN^2 = N^2 / (N + R), R = 6 x 5.45^2 e-^2 (the read noise of the extraction window,
   ``simharps.detector``): N = (SN^2 + sqrt(SN^4 + 4 SN^2 R)) / 2.
2. The forward model, with the spectrograph efficiency stage switched off (a grey efficiency), predicts the same
   per-order S/N for the spectrum's header conditions (BERV, airmass, exposure time, date, position), alpha Cen B's
   literature parameters and a 1.0" seeing; N is obtained from it alike.
3. Delivered image quality per night: the headers have no seeing (-1), so a seeing FWHM per night is fitted such
   that the fibre injection at order 50 (``simharps.fibre.injection_efficiency``) brings the night's median
   N_real / N_pred at order 50 to 1. It absorbs every grey loss (transparency, guiding, slit) of that night.
4. With each night's seeing, the per-order ratio N_real / N_pred, corrected for the chromatic injection of that
   seeing relative to 1.0", is divided by its value at order 50 (the HARPS reference S/N stays the anchor) and
   its median over the spectra taken per order.
5. A smooth curve: ln(efficiency) as a cubic least-squares spline in wavelength with interior knots every
   ``KNOT_STEP_AA`` through the per-order medians (weighted by their robust scatter), divided by its value at order
   50, tabulated every 5 A over 3700-7000 A (constant beyond the outermost order centres); the per-order medians and
   scatters are kept too. The per-order values scatter about the curve by more than their errors because the DRS
   measures each order's S/N on its central pixels, where a stellar line the model gets wrong changes it: the smooth
   curve is the efficiency, the per-order residual is not.

What it absorbs besides the spectrograph: errors of the stellar model's spectral energy distribution for a K1 dwarf
(line blanketing) and of the atmosphere, telescope and fibre models; it is the efficiency the chain needs to match
the real per-order S/N of this series, and it is validated on the other real files (held out).

Usage: ``python scripts/build_efficiency.py [--out simharps/data/harps_efficiency.npz] [--report FILE.json]``
"""

import argparse
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.interpolate import LSQUnivariateSpline

from simharps.detector import Detector
from simharps.fibre import injection_efficiency
from simharps.forward import SN50_ORDER, default_spectrograph, simulate
from simharps.io import read_harps

ROOT = Path(__file__).resolve().parents[1]
SERIES = ROOT.parent / "shared" / "data" / "harps_series" / "alfcenb"
DEFAULT_OUT = ROOT / "simharps" / "data" / "harps_efficiency.npz"
ALPHA_CEN_B = dict(teff_k=5231.0, logg_cgs=4.53, mh_dex=0.22, vsini_kms=1.0, vmag=1.33, rv_kms=-21.6)
"""Kervella et al. 2017 (A&A 597, A137): Teff 5231 K, logg 4.53; [Fe/H] +0.22 (Porto de Mello et al. 2008);
V = 1.33; RV -21.6 km/s (the S/N does not depend on it)."""
KNOT_STEP_AA = 600.0
SEEING_GRID_ARCSEC = np.linspace(0.4, 4.0, 361)
TABLE_STEP_AA = 5.0


def order_centres_aa():
    layout = default_spectrograph().layout
    return layout.pixel_wavelength_air_aa[:, layout.n_pixels // 2]


def series():
    """[(night, params, real per-order S/N)] of the alpha Cen B series."""
    out = []
    for path in sorted(SERIES.glob("*.fits")):
        header = fits.getheader(path)
        meta = read_harps(path).meta
        snr = np.array([header.get(f"HIERARCH ESO DRS SPE EXT SN{i}", np.nan) for i in range(72)], dtype=float)
        params = dict(ALPHA_CEN_B, berv_kms=meta["berv_kms"], airmass=max(meta["airmass"], 1.0),
                      exptime_s=meta["exptime_s"], mjd_utc=meta["mjd_utc"], ra_deg=meta["ra_deg"],
                      dec_deg=meta["dec_deg"], seeing_arcsec=1.0)
        night = int(np.floor(meta["mjd_utc"] - 0.5))   # La Silla nights change at local noon (~16 h UT)
        out.append((night, params, snr))
    return out


def fit(stages_off=("spectrograph",)):
    detector = Detector()
    centres = order_centres_aa()
    row50 = default_spectrograph().layout.order_index(SN50_ORDER)
    records = []
    for night, params, real_snr in series():
        sim = simulate(params, 0, stages={"noise": False, **{name: False for name in stages_off}})
        ratio = detector.electrons_for_snr(real_snr) / detector.electrons_for_snr(sim.order_snr)
        records.append((night, params, ratio))
    nights = sorted({night for night, _, _ in records})
    seeing = {}
    for night in nights:
        members = [(p, r) for n, p, r in records if n == night]
        level = np.median([r[row50] for _, r in members])
        airmass = np.median([p["airmass"] for p, _ in members])
        gain = np.array([injection_efficiency(np.array([centres[row50]]), s, airmass)[0]
                         for s in SEEING_GRID_ARCSEC])
        gain /= injection_efficiency(np.array([centres[row50]]), 1.0, airmass)[0]
        seeing[night] = float(np.interp(level, gain[::-1], SEEING_GRID_ARCSEC[::-1]))
    relative = []
    for night, params, ratio in records:
        chromatic = (injection_efficiency(centres, seeing[night], params["airmass"])
                     / injection_efficiency(centres, 1.0, params["airmass"]))
        corrected = ratio / chromatic
        relative.append(corrected / corrected[row50])
    relative = np.array(relative)
    median = np.nanmedian(relative, axis=0)
    scatter = 1.4826 * np.nanmedian(np.abs(relative - median), axis=0)
    good = np.isfinite(median) & (median > 0)
    x = centres[good]
    weights = 1.0 / np.maximum(scatter[good] / median[good], 0.01)
    knots = np.arange(x[0] + KNOT_STEP_AA, x[-1] - 0.5 * KNOT_STEP_AA, KNOT_STEP_AA)
    spline = LSQUnivariateSpline(x, np.log(median[good]), knots, w=weights, k=3)
    offset = float(spline(centres[row50]))                   # exactly 1 at order 50: the anchor stays

    def curve(wavelength_aa):
        return np.exp(spline(np.clip(wavelength_aa, x[0], x[-1])) - offset)

    return dict(centres=centres, median=median, scatter=scatter, curve=curve, seeing=seeing,
                n_spectra=len(records), ratios=relative)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--report", help="also write the fit's numbers as JSON here")
    args = parser.parse_args()
    if not DEFAULT_OUT.exists():   # the chain loads every stage's table when a plan is built; the fit has it off
        np.savez_compressed(DEFAULT_OUT, wavelength_air_aa=np.array([3700.0, 7000.0]),
                            relative_efficiency=np.ones(2))
    result = fit()
    table_aa = np.arange(3700.0, 7000.0 + TABLE_STEP_AA, TABLE_STEP_AA)
    curve = result["curve"](table_aa)
    np.savez_compressed(args.out, wavelength_air_aa=table_aa, relative_efficiency=curve,
                        order_centre_aa=result["centres"], order_median=result["median"],
                        order_scatter=result["scatter"], n_spectra=result["n_spectra"])
    smooth_at_orders = result["curve"](result["centres"])
    residual = np.log(result["median"] / smooth_at_orders)
    print(f"{args.out}: {result['n_spectra']} spectra, {len(result['seeing'])} nights; fitted seeing per night "
          f"{min(result['seeing'].values()):.2f}-{max(result['seeing'].values()):.2f}\" "
          f"(median {np.median(list(result['seeing'].values())):.2f}\")")
    print("relative efficiency at 3800/4500/5565/6500/6850 A: "
          + ", ".join(f"{np.interp(w, table_aa, curve):.3f}" for w in (3800, 4500, 5565, 6500, 6850)))
    print(f"per-order residual about the smooth curve: rms {np.sqrt(np.nanmean(residual**2)):.3f} (ln)")
    if args.report:
        Path(args.report).write_text(json.dumps({"seeing_per_night_arcsec": result["seeing"],
                                                 "order_centre_aa": result["centres"].tolist(),
                                                 "order_median": result["median"].tolist(),
                                                 "order_scatter": result["scatter"].tolist()}, indent=1))


if __name__ == "__main__":
    main()
