"""Example spectra with their reconstructions and residuals, zoomed on a telluric band and on stellar lines.

Zoom windows come from the truth components when the reconstructions file has them (the window of strongest
telluric absorption; the strongest stellar absorption weighted by telluric transmission, so away from tellurics),
else from known bands inside the wavelength range, else none.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.report.figures import DPI, plain, to_uri

TELLURIC_BANDS_AA = (("O2 B band", 6867.0, 6885.0), ("O2 γ band", 6277.0, 6300.0), ("H2O", 6470.0, 6500.0),
                     ("H2O", 5940.0, 5960.0), ("H2O", 5886.0, 5900.0))
STELLAR_LINES_AA = (("Mg b", 5166.0, 5186.0), ("Hβ", 4851.0, 4871.0), ("Hα", 6553.0, 6573.0),
                    ("Fe I", 5380.0, 5410.0), ("Na D", 5886.0, 5900.0), ("Ca II H&K", 3928.0, 3975.0))
ZOOM_AA = 5.0
MIN_PIXELS = 16


def _width(n, wave):
    if wave is None:
        return max(MIN_PIXELS, n // 10)
    step = float(np.median(np.abs(np.diff(wave))))
    return int(np.clip(ZOOM_AA / step, MIN_PIXELS, n // 3))


def _deepest(depth, width):
    if depth is None or not np.any(np.nan_to_num(depth) > 1e-3):
        return None
    sums = np.convolve(np.nan_to_num(depth), np.ones(width), mode="valid")
    start = int(np.argmax(sums))
    return slice(start, start + width)


def _known(wave, bands):
    for name, low, high in bands if wave is not None else ():
        if wave[0] <= low and high <= wave[-1]:
            return name, slice(int(np.searchsorted(wave, low)), int(np.searchsorted(wave, high)))
    return None


def _describe(name, cut, wave):
    if wave is None:
        return f"{name}: pixels {cut.start}-{cut.stop}"
    return f"{name}: {wave[cut.start]:.1f}-{wave[cut.stop - 1]:.1f} Å"


def _mean(component):
    return None if component is None else component if component.ndim == 1 else np.nanmean(component, axis=0)


def zoom_windows(n, wave=None, telluric=None, stellar=None):
    """[(title, slice)] over ``n`` pixels: the full range, then a telluric and a stellar-line window if found."""
    windows = [("full range", slice(0, n))]
    if n < 3 * MIN_PIXELS:
        return windows
    width = _width(n, wave)
    mean_telluric = _mean(telluric)
    for kind, component, bands in (("telluric", mean_telluric, TELLURIC_BANDS_AA),
                                   ("stellar lines", _mean(stellar), STELLAR_LINES_AA)):
        if component is not None:
            depth = 1 - component
            if kind == "stellar lines" and mean_telluric is not None:
                depth = depth * np.clip(mean_telluric, 0, 1) ** 4
            cut = _deepest(depth, width)
            found = None if cut is None else (f"strongest {kind}", cut)
        else:
            found = _known(wave, bands)
        if found is not None:
            windows.append((_describe(found[0], found[1], wave), found[1]))
    return windows


def _panel(top, bottom, x, data, model, truth, title):
    level = np.nanpercentile(data, 95) if np.isfinite(data).any() else 1.0
    top.plot(x, data, color="0.3", lw=0.8, label="input")
    top.plot(x, model, color="C3", lw=0.8, label="reconstruction")
    for (name, values), color in zip(truth.items(), ("C2", "C1")):
        top.plot(x, level * values, color=color, lw=0.7, ls="--", label=f"{name} truth × continuum")
    bottom.plot(x, data - model, color="C0", lw=0.6)
    bottom.axhline(0, color="k", lw=0.5)
    top.set_title(title, fontsize=8)
    top.set_ylabel("flux [model input units]", fontsize=7)
    top.tick_params(labelbottom=False, labelsize=7)
    bottom.tick_params(labelsize=7)
    bottom.xaxis.set_major_locator(MaxNLocator(5))
    bottom.set_ylabel("in − out [same]", fontsize=7)


def reconstruction_figure(recon, wave, titles, max_examples=2):
    """Input, reconstruction and truth components (top), residual (bottom) per example and window.

    ``recon``: the reconstructions npz as a dict; ``wave``: (m,) air wavelength in Å or None (pixel axis);
    ``titles``: one per row of the file. Truth components are drawn times the spectrum's continuum level (its 95th
    percentile). Laid out by hand (constrained layout would double the build time). Returns (data URI, indices
    of the examples shown).
    """
    shown = np.unique(np.linspace(0, len(recon["input"]) - 1, min(max_examples, len(recon["input"]))).astype(int))
    components = {name: recon[name] for name in ("telluric", "stellar") if name in recon}
    x = np.arange(recon["input"].shape[1]) if wave is None else wave
    windows = zoom_windows(x.size, wave, components.get("telluric"), components.get("stellar"))
    ratios = [r for i in range(len(shown)) for r in ([3, 1.2] + [1.5] * (i < len(shown) - 1))]
    height = 3.3 * len(shown) + 0.8
    fig = Figure(figsize=(3.4 * len(windows) + 0.4, height), dpi=DPI)
    grid = fig.add_gridspec(len(ratios), len(windows), height_ratios=ratios, hspace=0, wspace=0.33, left=0.07,
                            right=0.98, top=1 - 0.6 / height, bottom=0.7 / height)
    for row, k in enumerate(shown):
        mask = np.asarray(recon["mask"][k]).astype(bool) if "mask" in recon else np.ones(x.size, bool)
        data = np.where(mask, recon["input"][k], np.nan)
        model = np.asarray(recon["output"][k], dtype=float)
        truth = {name: comp[k] if comp.ndim == 2 else comp for name, comp in components.items()}
        for col, (title, cut) in enumerate(windows):
            top = fig.add_subplot(grid[3 * row, col])
            bottom = fig.add_subplot(grid[3 * row + 1, col], sharex=top)
            _panel(top, bottom, x[cut], data[cut], model[cut], {n: v[cut] for n, v in truth.items()}, title)
            bottom.set_xlabel("pixel [index]" if wave is None else "air wavelength [Å]", fontsize=7)
        fig.text(0.5, top.get_position().y1 + 0.3 / height, plain(titles[k]), ha="center", fontsize=9)
    fig.legend(*top.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=7, frameon=False)
    return to_uri(fig), shown
