"""Fit the HARPS echelle order layout and blaze to the real calibration files; write simharps/data/harps_orders.npz.

Inputs (fibre A, from the HARPS DRS 3.5 calibration of 2003-12-12 that the Gl273 e2ds header names):
  HARPS.2003-12-12T21:47:59.366_wave_A.fits   72 x 4096 air wavelengths (observatory frame); its header
                                              holds the DRS per-order cubics (ESO DRS CAL TH COEFF LL*)
                                              in double precision, and NBLUE/NRED (orders per CCD)
  HARPS.2003-12-12T21:42:45.093_blaze_A.fits  72 x 4096 blaze, normalised to 1 per order

What is fitted (see simharps/instrument.py for the equations):
  1. Order numbers: per CCD, the integer m_first for which m * lambda_centre is flattest across the
     CCD's orders (the grating equation m * lambda = d (sin a + sin b) is constant at fixed pixel).
  2. m * lambda(x, m): a 2-D Legendre polynomial per CCD (degree 3 in x, 6 in m), fitted to the
     DRS per-order solution (double precision) at every 8th pixel, plus per-order cubic Legendre
     corrections in x that restore the DRS per-order solution of that night exactly.
  3. Blaze: per order, B = A sinc^2(alpha (X - X0)) exp(c2 u^2 + c3 u^3), u = X - X0, with the
     grating phase X = m - G / lambda and G the median m * lambda at the order centres; fitted in
     relative terms on the valid pixels of the blaze file (blaze > 1e-3, 8 edge pixels excluded).
     No linear term in the exponent, so X0 stays the blaze peak and alpha the width.

Run:  .venv/bin/python scripts/build_order_layout.py [HARPS_DIR]   (default ../shared/data/harps)
It prints the fit residuals (wavelength in m/s against both the float32 wave_A image and the DRS
polynomials; blaze in percent) that simharps/data/harps_orders.md quotes.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from numpy.polynomial import legendre
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
WAVE_FILE = "HARPS.2003-12-12T21:47:59.366_wave_A.fits"
BLAZE_FILE = "HARPS.2003-12-12T21:42:45.093_blaze_A.fits"
OUT = ROOT / "simharps" / "data" / "harps_orders.npz"

C_MS = 299792458.0
N_PIXELS = 4096
X_CENTRE = X_HALF = (N_PIXELS - 1) / 2.0
DEG_X, DEG_M = 3, 6
DEG_ORDER_CORRECTION = 3
BLAZE_FLOOR = 1e-3
BLAZE_EDGE_PX = 8


def read_image_and_header(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            hdul.verify("silentfix")
            return hdul[0].data.astype(np.float64), hdul[0].header.copy()


def drs_per_order_wavelengths(header, n_orders):
    """Evaluate the DRS per-order polynomials (ESO DRS CAL TH COEFF LL{4 o + i}) at every pixel."""
    degree = int(header["HIERARCH ESO DRS CAL TH DEG LL"])
    coeffs = np.array([header[f"HIERARCH ESO DRS CAL TH COEFF LL{i}"] for i in range(n_orders * (degree + 1))])
    coeffs = coeffs.reshape(n_orders, degree + 1)
    x = np.arange(N_PIXELS, dtype=float)
    return np.array([np.polynomial.polynomial.polyval(x, c) for c in coeffs])


def order_numbers(wavelength_centre_aa, candidates=np.arange(40, 400)):
    """Physical order of the first (bluest) row: the m_first making m * lambda_centre flattest (rel. std)."""
    rows = np.arange(wavelength_centre_aa.size)
    spreads = [np.std((m0 - rows) * wavelength_centre_aa) / np.mean((m0 - rows) * wavelength_centre_aa) for m0 in candidates]
    best = int(candidates[int(np.argmin(spreads))])
    return best - rows, float(np.min(spreads))


def fit_wavelength(wavelength_aa, orders, rows):
    """2-D Legendre fit of m * lambda over (x, m) for one CCD; returns coefficients and m normalisation."""
    m = orders[rows].astype(float)
    m_centre, m_half = (m.max() + m.min()) / 2.0, (m.max() - m.min()) / 2.0
    x = np.arange(0, N_PIXELS, 8, dtype=float)
    xs, ms = np.meshgrid((x - X_CENTRE) / X_HALF, (m - m_centre) / m_half)
    design = legendre.legvander2d(xs.ravel(), ms.ravel(), [DEG_X, DEG_M])
    target = (m[:, None] * wavelength_aa[rows][:, ::8]).ravel()
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coef.reshape(DEG_X + 1, DEG_M + 1), np.array([m_centre, m_half])


def evaluate_smooth(coef, m_norm, m, x):
    xs = (x - X_CENTRE) / X_HALF
    ms = (np.asarray(m, dtype=float)[:, None] - m_norm[0]) / m_norm[1]
    return legendre.legval2d(np.broadcast_to(xs, ms.shape[:1] + xs.shape), np.broadcast_to(ms, ms.shape[:1] + xs.shape), coef) / np.asarray(m)[:, None]


def blaze_model(params, phase):
    scale, alpha, phase0, c2, c3 = params
    u = phase - phase0
    return scale * np.sinc(alpha * u) ** 2 * np.exp(u * u * (c2 + u * c3))


def main(harps_dir):
    harps_dir = Path(harps_dir)
    wave32, header = read_image_and_header(harps_dir / WAVE_FILE)
    blaze, _ = read_image_and_header(harps_dir / BLAZE_FILE)
    n_orders = wave32.shape[0]
    n_blue = int(header["HIERARCH ESO DRS CAL TH ORDER NBLUE"])
    wave = drs_per_order_wavelengths(header, n_orders)
    x = np.arange(N_PIXELS, dtype=float)

    blue_rows, red_rows = np.arange(n_blue), np.arange(n_blue, n_orders)
    blue_orders, blue_spread = order_numbers(wave[blue_rows, N_PIXELS // 2])
    red_orders, red_spread = order_numbers(wave[red_rows, N_PIXELS // 2])
    orders = np.concatenate([blue_orders, red_orders])
    print(f"order numbers: blue CCD {orders[0]}..{orders[n_blue - 1]} (m*lambda_c rel. spread {blue_spread:.2e}), "
          f"red CCD {orders[n_blue]}..{orders[-1]} ({red_spread:.2e}); missing: "
          f"{sorted(set(range(orders.min(), orders.max() + 1)) - set(orders.tolist()))}")
    ccd = (np.arange(n_orders) >= n_blue).astype(np.int8)

    coefs, m_norms, smooth = [], [], np.empty_like(wave)
    for rows in (blue_rows, red_rows):
        coef, m_norm = fit_wavelength(wave, orders, rows)
        coefs.append(coef)
        m_norms.append(m_norm)
        smooth[rows] = evaluate_smooth(coef, m_norm, orders[rows], x)
    xs = (x - X_CENTRE) / X_HALF
    correction = np.array([legendre.legfit(xs, wave[i] - smooth[i], DEG_ORDER_CORRECTION) for i in range(n_orders)])
    full = smooth + np.array([legendre.legval(xs, c) for c in correction])

    def report(name, model):
        for label, ref in (("DRS polynomials", wave), ("wave_A image (float32)", wave32)):
            dv = (model - ref) / ref * C_MS
            print(f"  {name:28s} vs {label:23s}: rms {dv.std():8.3f} m/s, max {np.abs(dv).max():8.2f} m/s"
                  f"  [blue rms {dv[blue_rows].std():.2f}, red rms {dv[red_rows].std():.2f}]")

    print("wavelength residuals:")
    report("smooth 2-D polynomial", smooth)
    report("2-D + per-order cubics", full)
    quant = (wave32 - wave) / wave * C_MS
    print(f"  (float32 rounding of the wave_A image itself: rms {quant.std():.2f} m/s)")

    grating_constant = float(np.median(orders * full[:, N_PIXELS // 2]))
    phase = orders[:, None] - grating_constant / full
    valid = blaze > BLAZE_FLOOR
    first = np.argmax(valid, axis=1)
    last = N_PIXELS - 1 - np.argmax(valid[:, ::-1], axis=1)
    blaze_params = np.empty((n_orders, 5))
    centre_rms, centre_max, all_rms = [], [], []
    for i in range(n_orders):
        use = np.zeros(N_PIXELS, bool)
        use[first[i] + BLAZE_EDGE_PX:last[i] - BLAZE_EDGE_PX + 1] = True
        use &= valid[i]
        fit = least_squares(lambda p: blaze_model(p, phase[i, use]) / blaze[i, use] - 1.0, [1.0, 0.8, 0.0, 0.0, 0.0],
                            x_scale=[1.0, 0.1, 0.1, 1.0, 1.0])
        blaze_params[i] = fit.x
        rel = (blaze_model(fit.x, phase[i]) / blaze[i] - 1.0) * 100.0
        centre = slice(N_PIXELS // 4, 3 * N_PIXELS // 4)
        centre_rms.append(rel[centre].std())
        centre_max.append(np.abs(rel[centre]).max())
        all_rms.append(rel[use].std())
    centre_rms, centre_max = np.array(centre_rms), np.array(centre_max)
    worst = np.argsort(centre_rms)[-4:][::-1]
    print(f"blaze residuals (percent): central half of each order rms median {np.median(centre_rms):.2f}, "
          f"mean {centre_rms.mean():.2f}, {np.sum(centre_rms < 1.0)}/{n_orders} orders below 1 %; "
          f"max |dev| median {np.median(centre_max):.2f}; whole valid order rms median {np.median(all_rms):.2f}")
    print("  worst orders (m: central rms %): " + ", ".join(f"{orders[i]}: {centre_rms[i]:.2f}" for i in worst))
    print(f"blaze parameters: A {blaze_params[:, 0].min():.3f}..{blaze_params[:, 0].max():.3f}, "
          f"alpha {blaze_params[:, 1].min():.3f}..{blaze_params[:, 1].max():.3f}, "
          f"X0 {blaze_params[:, 2].min():+.3f}..{blaze_params[:, 2].max():+.3f}")
    print(f"valid pixel ranges that differ from 0..{N_PIXELS - 1}: "
          + ", ".join(f"m={orders[i]}: {first[i]}..{last[i]}" for i in range(n_orders) if first[i] or last[i] != N_PIXELS - 1))

    np.savez_compressed(
        OUT,
        orders=orders.astype(np.int16),
        ccd=ccd,
        n_pixels=np.int16(N_PIXELS),
        x_norm=np.array([X_CENTRE, X_HALF]),
        wave_coef=np.array(coefs),
        wave_m_norm=np.array(m_norms),
        wave_order_correction=correction,
        grating_constant_aa=np.float64(grating_constant),
        blaze_params=blaze_params,
        valid_pixels=np.stack([first, last], axis=1).astype(np.int16),
        source=np.array([WAVE_FILE, BLAZE_FILE]),
    )
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "harps")
