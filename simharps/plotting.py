"""Figures of spectra (PNG), for people to look at and for reports. Uses matplotlib's Agg backend (no screen)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def plot_spectrum(path, wavelength_air_aa, flux, *, title="", error=None, components=None, window=None,
                  overlay=None):
    """Write a PNG of ``flux`` against air wavelength; ``components`` (name -> array) go in a panel below.

    ``overlay`` (name -> array) are drawn over the flux in the top panel (e.g. the response the product sits on);
    ``window`` = (start_aa, stop_aa) restricts the plot; zeros (the CCD gap of HARPS products) are not drawn.
    """
    wavelength_air_aa = np.asarray(wavelength_air_aa)
    keep = np.ones(wavelength_air_aa.size, dtype=bool)
    if window is not None and not window[0] < window[1]:
        raise ValueError(f"window ({window[0]}, {window[1]}): the start must be below the stop (in A)")
    if window is not None:
        keep = (wavelength_air_aa >= window[0]) & (wavelength_air_aa <= window[1])
    if not keep.any():
        raise ValueError(f"window {window} does not overlap {wavelength_air_aa[0]:.2f}-{wavelength_air_aa[-1]:.2f} A")
    wave = wavelength_air_aa[keep]
    shown = np.where(np.asarray(flux)[keep] == 0, np.nan, np.asarray(flux)[keep])

    n_panels = 2 if components else 1
    figure, axes = plt.subplots(n_panels, 1, figsize=(12, 3.2 * n_panels + 0.6), sharex=True, squeeze=False)
    axis = axes[0, 0]
    axis.plot(wave, shown, lw=0.4, color="k", label="flux")
    if error is not None:
        axis.plot(wave, np.asarray(error)[keep], lw=0.4, color="tab:red", label="error")
    for name, values in (overlay or {}).items():
        axis.plot(wave, np.asarray(values)[keep], lw=0.8, label=name)
    if error is not None or overlay:
        axis.legend(loc="upper right", fontsize=8)
    axis.set_ylabel("flux")
    axis.set_title(title, fontsize=10)
    if components:
        lower = axes[1, 0]
        for name, values in components.items():
            lower.plot(wave, np.asarray(values)[keep], lw=0.5, label=name)
        lower.set_ylabel("component")
        lower.legend(loc="lower right", fontsize=8, ncol=len(components))
    axes[-1, 0].set_xlabel("air wavelength [A]")
    figure.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


def plot_simulation(path, simulation, *, window=None):
    """PNG of a simulated product (``simharps.forward.Simulation``) with its truth components below it."""
    truth = simulation.truth
    title = (f"simulated HARPS: Teff {truth['teff_k']:.0f} K, logg {truth['logg_cgs']:.2f}, [M/H] {truth['mh_dex']:+.2f}, "
             f"V {truth['vmag']:.2f}, {truth['exptime_s']:.0f} s, airmass {truth['airmass']:.2f}, "
             f"PWV {truth['pwv_mm']:.1f} mm, BERV {truth['berv_kms']:+.3f} km/s")
    components = {name: simulation.components[name] for name in ("stellar", "telluric") if name in simulation.components}
    overlay = {"response": simulation.components["response"]} if "response" in simulation.components else None
    return plot_spectrum(path, simulation.wavelength_air_aa, simulation.flux, title=title, error=simulation.error,
                         components=components, window=window, overlay=overlay)
