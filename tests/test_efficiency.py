"""The spectrograph stage: a chromatic efficiency fitted on the per-order S/N of the real alpha Cen B series,
anchored at order 50, checked on the series it was fitted to and reported on two held-out M dwarfs."""

import numpy as np
import pytest
from astropy.io import fits

from simharps.detector import Detector
from simharps.forward import REFERENCE, REFERENCE_SNR_550, simulate
from simharps.io import read_e2ds, read_harps
from simharps.stages.spectrograph import relative_efficiency_table

DETECTOR = Detector()


def order_shape_rms(path, reader, star, spectrograph_on, seeing=None):
    """rms over orders of ln(real / predicted photo-electrons), each relative to order 50; and the blue/red medians."""
    header = fits.getheader(path)
    meta = reader(path).meta
    real = np.array([header.get(f"HIERARCH ESO DRS SPE EXT SN{i}", np.nan) for i in range(72)], dtype=float)
    if seeing is None:
        seeing = np.mean([header["HIERARCH ESO TEL AMBI FWHM START"], header["HIERARCH ESO TEL AMBI FWHM END"]])
    params = dict(star, vsini_kms=1.0, berv_kms=meta["berv_kms"], airmass=max(meta["airmass"], 1.0),
                  exptime_s=meta["exptime_s"], seeing_arcsec=float(seeing))
    predicted = simulate(params, 0, stages={"noise": False, "spectrograph": spectrograph_on}).order_snr
    ratio = np.log(DETECTOR.electrons_for_snr(real) / DETECTOR.electrons_for_snr(predicted))
    ratio -= ratio[50]
    good = np.isfinite(ratio) & (real > 5)
    return float(np.sqrt(np.mean(ratio[good] ** 2))), float(np.exp(np.median(ratio[good][:10]))), \
        float(np.exp(np.median(ratio[good][-10:])))


def test_the_curve_is_one_at_order_50_and_keeps_the_reference_snr():
    wave, efficiency = relative_efficiency_table()
    assert np.interp(5565.0, wave, efficiency) == pytest.approx(1.0, abs=0.01)
    assert efficiency.min() > 0.1 and efficiency.max() < 1.1
    sim = simulate(REFERENCE, seed=0, window=(5520.0, 5610.0))
    assert sim.truth["snr_550"] == pytest.approx(REFERENCE_SNR_550, rel=1e-6)


def test_series_per_order_snr_shape_follows_the_real_one(shared_data):
    """In-sample: six spectra of the fitted series, at their night's fitted seeing (1.23" median; 1.2" here). The
    per-order shape error drops from ~0.5 (grey efficiency: the blue orders predicted up to 9x too bright) to the
    per-order line-level scatter (measured: median 0.51 -> 0.20 over these six spectra)."""
    star = dict(teff_k=5231.0, logg_cgs=4.53, mh_dex=0.22, vmag=1.33, rv_kms=-21.6)
    paths = sorted((shared_data / "harps_series" / "alfcenb").glob("*.fits"))[::17]
    grey = [order_shape_rms(p, read_harps, star, False, seeing=1.2)[0] for p in paths]
    chromatic = [order_shape_rms(p, read_harps, star, True, seeing=1.2)[0] for p in paths]
    print(f"alpha Cen B per-order S/N shape rms, median over {len(paths)} spectra: grey {np.median(grey):.3f}, "
          f"chromatic {np.median(chromatic):.3f}")
    assert np.median(chromatic) < 0.5 * np.median(grey)
    assert np.median(chromatic) < 0.25


@pytest.mark.parametrize("name, reader, star, blue_grey, blue_chromatic, rms_grey_reported, rms_chromatic_reported", [
    ("HARPS.2010-09-18T23:42:36.178_s1d_A.fits", read_harps,
     dict(teff_k=3480.0, logg_cgs=4.9, mh_dex=-0.1, vmag=10.57, rv_kms=-9.2), 0.58, 0.76, 0.377, 0.362),
    ("HARPS.2003-12-13T06:19:48.371_e2ds_A.fits", read_e2ds,
     dict(teff_k=3380.0, logg_cgs=4.9, mh_dex=0.0, vmag=9.87, rv_kms=18.2), 0.85, 1.00, 0.535, 0.556),
])
def test_held_out_m_dwarfs_are_reported_not_fitted(shared_data, name, reader, star, blue_grey, blue_chromatic,
                                                   rms_grey_reported, rms_chromatic_reported):
    """Held out (never used in the fit): the curve raises the blue real/predicted ratio (Gl581 0.58 -> 0.76) and
    leaves the all-order rms within 10 % of the grey one (0.377 -> 0.362, 0.535 -> 0.556): the M-dwarf model's own
    errors dominate. These bounds pin the reported numbers (harps_efficiency.md) within ~0.05. The TiO band
    approximation (``simharps.stellar.tio_bands``; order 50 lies in its 4950-5625 A gap) moved them, without -> with
    the band: blue ratio grey/chromatic Gl581 0.67/0.88 -> 0.58/0.76, Gl273 1.07/1.27 -> 0.85/1.00; rms
    grey/chromatic Gl581 0.408/0.421 -> 0.377/0.362, Gl273 0.638/0.677 -> 0.535/0.556."""
    path = shared_data / "harps" / name
    rms_grey, blue_g, _ = order_shape_rms(path, reader, star, False)
    rms_chromatic, blue_c, _ = order_shape_rms(path, reader, star, True)
    print(f"{name}: per-order S/N shape rms grey {rms_grey:.3f} -> chromatic {rms_chromatic:.3f}; blue ratio "
          f"{blue_g:.3f} -> {blue_c:.3f}")
    assert blue_g == pytest.approx(blue_grey, abs=0.05) and blue_c == pytest.approx(blue_chromatic, abs=0.05)
    assert rms_chromatic < 1.1 * rms_grey
    assert rms_grey == pytest.approx(rms_grey_reported, abs=0.05)
    assert rms_chromatic == pytest.approx(rms_chromatic_reported, abs=0.05)
