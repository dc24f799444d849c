"""fidelity.json, figures and a self-contained fidelity.html for a ``run_fidelity`` result.

Files written to the output folder:

* ``fidelity.json``: the numbers (schema ``simharps-fidelity/1``; null where a value is not defined, never NaN);
* ``window-NAME.png``: mean normalised real and twin spectra, their mean residual, and the classifiers' pixel
  weights (``simharps.fidelity.classify``; the CNN's saliency, ``simharps.fidelity.cnn``) at each S/N level;
* ``noise_texture.png``: variance ratio (against the whole-pixel model) and lag-1..3 autocorrelation of real and
  twin differences per 200 A bin;
* ``envelope_ratio.png``: real / twin continuum level per 100 A block (the chromatic flux scale);
* ``flux_scale.png``: predicted / header SN50 per spectrum against time and airmass;
* ``tellurics.png``: per telluric band, the real-minus-twin telluric line shift against BERV, and the telluric
  residual (noise units, relative to clean bins) against the fitted PWV;
* ``fidelity.html``: the tables and the figures (as data URIs; no network; every text escaped).
"""

import base64
import html

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from analysis.metrics.schema import json_safe  # noqa: E402
from simharps.dataset import write_json  # noqa: E402


TEXTURE_COLUMNS = ("variance_ratio", "photon_variance_ratio", "multiplicative_rms", "acf_lag1", "photon_acf_lag1",
                   "acf_lag2", "acf_lag3")


def write_report(out, result, curves):
    """Write fidelity.json, the PNGs and fidelity.html into ``out``; returns the HTML path."""
    write_json(out / "fidelity.json", json_safe(result))
    figures = {}
    for name, curve in curves.items():
        figures[f"window-{name}.png"] = _plot_window(out / f"window-{name}.png", name, curve)
    if result["noise_texture"].get("real") or result["noise_texture"].get("twin"):
        figures["noise_texture.png"] = _plot_texture(out / "noise_texture.png", result["noise_texture"])
    if result["envelope_ratio"]["block_centre_aa"]:
        figures["envelope_ratio.png"] = _plot_envelope(out / "envelope_ratio.png", result["envelope_ratio"])
    if result["flux_scale"]["per_spectrum"]:
        figures["flux_scale.png"] = _plot_flux_scale(out / "flux_scale.png", result["flux_scale"])
    if result.get("tellurics", {}).get("bands"):
        figures["tellurics.png"] = _plot_tellurics(out / "tellurics.png", result["tellurics"]["bands"])
    path = out / "fidelity.html"
    path.write_text(_html(result, figures), encoding="utf-8")
    return path


def _plot_window(path, name, curve):
    weights = curve["weights"]
    figure, axes = plt.subplots(2 + len(weights), 1, figsize=(12, 2.4 * (2 + len(weights))), sharex=True)
    wave = curve["wavelength_aa"]
    axes[0].plot(wave, curve["mean_real"], lw=0.6, label="real (mean, normalised)")
    axes[0].plot(wave, curve["mean_twin"], lw=0.6, label="twin (mean, normalised, noiseless)")
    axes[0].plot(wave, curve["telluric"], lw=0.5, color="0.6", label="twin telluric transmission")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[0].set_title(f"window {name}")
    axes[1].plot(wave, curve["mean_residual"], lw=0.6, color="k")
    axes[1].set_ylabel("real - twin")
    for ax, (key, w) in zip(axes[2:], weights.items()):
        ax.plot(wave, w, lw=0.6, color="C3")
        ax.set_ylabel(f"weight\n{key}", fontsize=8)
    axes[-1].set_xlabel("air wavelength, barycentric (A)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _plot_texture(path, texture):
    figure = plt.figure(figsize=(13, 6))
    axes = [figure.add_axes([0.07, 0.55, 0.62, 0.4]), figure.add_axes([0.07, 0.09, 0.62, 0.4]),
            figure.add_axes([0.76, 0.3, 0.22, 0.5])]
    for name, colour in (("real", "C0"), ("twin", "C1")):
        entry = texture.get(name)
        if not entry:
            continue
        phase = entry["by_phase"]
        axes[2].plot(phase["phase_centre"], [np.nan if v is None else v for v in phase["variance_ratio"]], "o-",
                     color=colour, label=name)
        centre = np.array(entry["bin_centre_aa"])
        variance = np.array([np.nan if v is None else v for v in entry["variance_ratio"]])
        axes[0].plot(centre, variance, "o-", color=colour, label=name)
        photon = np.array([np.nan if v is None else v for v in entry["photon_variance_ratio"]])
        axes[0].plot(centre, photon, "s--", color=colour, label=f"{name}: photon part (fit)")
        for lag, style in ((1, "o-"), (2, "s--"), (3, "^:")):
            acf = np.array([np.nan if v is None else v for v in entry[f"acf_lag{lag}"]])
            axes[1].plot(centre, acf, style, color=colour, label=f"{name} lag {lag}")
    axes[0].axhline(1.0, color="0.6", lw=0.5)
    axes[0].set_ylabel("var(diff) / whole-pixel model")
    axes[0].legend(fontsize=8)
    axes[1].axhline(0.0, color="0.6", lw=0.5)
    axes[1].set_ylabel("autocorrelation")
    axes[1].set_xlabel("air wavelength (A), 200 A bins")
    axes[1].legend(fontsize=7, ncol=2)
    centre = np.linspace(0.0, 0.5, 51)
    axes[2].plot(centre, (1 - centre) ** 2 + centre**2, color="0.5", lw=0.8, label="linear interpolation")
    axes[2].set_xlabel("bin phase between pixel centres")
    axes[2].set_ylabel("var(diff) / whole-pixel model")
    axes[2].legend(fontsize=7)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _plot_envelope(path, ratio):
    figure, ax = plt.subplots(figsize=(10, 3.5))
    ax.fill_between(ratio["block_centre_aa"], ratio["p16"], ratio["p84"], alpha=0.3, label="16-84 % of spectra")
    ax.plot(ratio["block_centre_aa"], ratio["median"], "o-", label="median")
    ax.axhline(1.0, color="0.6", lw=0.5)
    ax.set_xlabel("air wavelength (A), 100 A blocks")
    ax.set_ylabel("real / twin continuum level")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _plot_flux_scale(path, scale):
    entries = scale["per_spectrum"]
    ratio = np.array([e["predicted_sn50"] / e["header_sn50"] if e["header_sn50"] else np.nan for e in entries])
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    axes[0].plot([e["mjd_utc"] for e in entries], ratio, "o", ms=3)
    axes[0].set_xlabel("MJD")
    axes[0].set_ylabel("predicted / header SN50")
    axes[1].plot([e["airmass"] for e in entries], ratio, "o", ms=3)
    axes[1].set_xlabel("airmass (header, start)")
    for ax in axes:
        ax.axhline(1.0, color="0.6", lw=0.5)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _plot_tellurics(path, bands):
    figure, axes = plt.subplots(2, len(bands), figsize=(3.4 * len(bands), 6), squeeze=False)
    for column, (name, band) in enumerate(bands.items()):
        per = band["per_spectrum"]
        berv = np.array([e["berv_kms"] for e in per])
        dv = np.array([np.nan if e["dv_kms"] is None else e["dv_kms"] for e in per])
        err = np.array([np.nan if e["dv_err_kms"] is None else e["dv_err_kms"] for e in per])
        axes[0, column].errorbar(berv, 1e3 * dv, 1e3 * err, fmt="o", ms=3, lw=0.6)
        line = band["line_positions"]
        if line.get("slope_per_kms") is not None:
            x = np.linspace(berv.min(), berv.max(), 2)
            axes[0, column].plot(x, 1e3 * (line["offset_kms"] + line["slope_per_kms"] * x), color="C3", lw=0.8)
        axes[0, column].axhline(0.0, color="0.6", lw=0.5)
        axes[0, column].set_title(name, fontsize=9)
        axes[0, column].set_xlabel("BERV (km/s)")
        pwv = np.array([np.nan if e["pwv_mm"] is None else e["pwv_mm"] for e in per])
        ratio = np.array([np.nan if e["rms_telluric"] is None or not e["rms_clean"] else e["rms_telluric"]
                          / e["rms_clean"] for e in per])
        axes[1, column].plot(pwv, ratio, "o", ms=3)
        axes[1, column].axhline(1.0, color="0.6", lw=0.5)
        axes[1, column].set_xlabel("PWV fitted at ingest (mm)")
    axes[0, 0].set_ylabel("real - twin telluric shift (m/s)")
    axes[1, 0].set_ylabel("rms telluric / rms clean")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _html(result, figures):
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>simharps fidelity</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}</style></head><body>",
             "<h1>Fidelity: real spectra against their simulated twins</h1>",
             f"<p>Real set {html.escape(result['real_dataset']['path'])}: {result['real_dataset']['n_used']} spectra, "
             f"{result['settings']['n_nights']} nights. AUC 0.5 = indistinguishable; interval: 95 % over "
             "bootstrap resamples of nights.</p>"]
    windows = result["windows"]
    levels = list(next(iter(windows.values()))["classifier"]) if windows else []
    parts.append("<h2>Classifier AUC (real vs twin)</h2><table><tr><th>window</th>"
                 + "".join(f"<th>{html.escape(k)}</th>" for k in levels) + "<th>control twin vs twin</th></tr>")
    for name, entry in windows.items():
        for model, key, control in (("logistic/PCA", "classifier", "control_twin_vs_twin"),
                                    ("CNN", "cnn", "cnn_control_twin_vs_twin")):
            if key not in entry:
                continue
            cells = "".join(f"<td>{_fmt(c['auc'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]</td>"
                            for c in entry[key].values())
            c = entry[control]
            parts.append(f"<tr><td>{html.escape(name)} {model}</td>{cells}<td>{_fmt(c['auc'])} "
                         f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]</td></tr>")
    parts.append("</table><h2>Residuals (real - noiseless twin, normalised)</h2><table><tr><th>window</th>"
                 "<th>rms (noise units)</th><th>chi2 clean</th><th>chi2 telluric</th><th>systematic rms</th>"
                 "<th>RV offset (km/s)</th><th>depth ratio</th><th>continuum shape rms</th></tr>")
    for name, entry in windows.items():
        r = entry["residuals"]
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{_fmt(r['rms_noise_units'])}</td>"
                     f"<td>{_fmt(r['chi2_clean'])}</td><td>{_fmt(r['chi2_telluric'])}</td>"
                     f"<td>{_fmt(r['systematic_rms'])}</td><td>{_fmt(r['rv_offset_kms'])}</td>"
                     f"<td>{_fmt(r['depth_ratio'])}</td><td>{_fmt(r['continuum_shape_rms'])}</td></tr>")
    parts.append("</table><h2>Noise texture (mean over 200 A bins)</h2><table><tr><th>set</th>"
                 + "".join(f"<th>{html.escape(c)}</th>" for c in TEXTURE_COLUMNS) + "<th>pairs</th></tr>")
    for name in ("real", "twin", "twin_own_error"):
        entry = result["noise_texture"].get(name)
        if entry:
            cells = "".join(f"<td>{_fmt(entry['overall'][c])}</td>" for c in TEXTURE_COLUMNS)
            parts.append(f"<tr><td>{name}</td>{cells}<td>{entry['n_pairs']}</td></tr>")
    parts.append("</table>")
    parts.extend(_telluric_html(result.get("tellurics")))
    s = result["flux_scale"]["summary"]
    parts.append(f"<h2>Flux scale</h2><p>predicted / header SN50: median {_fmt(s['median'])}, robust "
                 f"scatter {_fmt(s['robust_scatter'])}, std {_fmt(s['std'])}, n = {s['n']}</p>")
    for name, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h3>{html.escape(name)}</h3><img style='max-width:100%' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _telluric_html(tellurics):
    if not tellurics or not tellurics.get("bands"):
        return []
    pwv = tellurics["pwv"]
    low, high = pwv["p16_p84_mm"] or (None, None)
    rows = [f"<h2>Tellurics over the series</h2><p>PWV fitted at ingest: median {_fmt(pwv['median_mm'])} mm, "
            f"16-84 % {_fmt(low)}-{_fmt(high)} mm, "
            f"n = {pwv['n']}.</p><table><tr><th>band</th><th>rms telluric (noise units)</th><th>rms clean</th>"
            "<th>ratio (control)</th><th>optical depth ratio k</th><th>shift offset (m/s)</th>"
            "<th>slope (m/s per km/s)</th><th>BERV range (km/s)</th></tr>"]
    for name, band in tellurics["bands"].items():
        line, control = band["line_positions"], band["control_twin_noise"]
        offset = None if line.get("offset_kms") is None else 1e3 * line["offset_kms"]
        slope = None if line.get("slope_per_kms") is None else 1e3 * line["slope_per_kms"]
        span = line.get("berv_range_kms") or [None, None]
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{_fmt(band['rms_telluric_noise_units'])}</td>"
                    f"<td>{_fmt(band['rms_clean_noise_units'])}</td><td>{_fmt(band['rms_ratio'])} "
                    f"({_fmt(control['rms_ratio'])})</td><td>{_fmt(band['k_median'])}</td><td>{_fmt(offset)}</td>"
                    f"<td>{_fmt(slope)}</td><td>{_fmt(span[0])} to {_fmt(span[1])}</td></tr>")
    rows.append("</table>")
    return rows


def summary_lines(result):
    """A few lines for the terminal: AUC per window and S/N level, residual rms, noise texture, flux scale."""
    lines = []
    for name, entry in result["windows"].items():
        aucs = "  ".join(f"{key} {_fmt(c['auc'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
                         for key, c in entry["classifier"].items())
        lines.append(f"{name:>9}: AUC {aucs}; residual rms {_fmt(entry['residuals']['rms_noise_units'])} sigma")
        if "cnn" in entry:
            lines.append(f"{'':>9}  CNN AUC " + "  ".join(f"{key} {_fmt(c['auc'])} [{_fmt(c['ci_low'])}, "
                                                          f"{_fmt(c['ci_high'])}]" for key, c in entry["cnn"].items()))
    for name in ("real", "twin"):
        entry = result["noise_texture"].get(name)
        if entry:
            lines.append(f"noise {name}: " + ", ".join(f"{c} {_fmt(entry['overall'][c])}" for c in TEXTURE_COLUMNS))
    s = result["flux_scale"]["summary"]
    lines.append(f"SN50 predicted / header: median {_fmt(s['median'])}, robust scatter {_fmt(s['robust_scatter'])}")
    return lines
