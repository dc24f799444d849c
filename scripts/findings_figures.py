"""The README's figures of the two findings, from the run directories of their scenarios.

    .venv/bin/python scripts/findings_figures.py [--runs runs] [--out docs/figures]

- finding_nuisance_2d.png: the 2-D fc_ae latents of runs/finding_nuisance_2d for the raw, median-normalised and
  continuum-normalised inputs, coloured by S/N (snr_550) and by Teff, one star's repeat observations joined.
- finding_telluric_rejection.png: telluric and stellar rejection fractions (with their intervals) of the three
  frames of runs/finding_telluric_rejection on the held-out simulated stars and on the real alpha Cen B series, and
  of runs/real_alfcenb (trained on the real series itself).
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from simharps.dataset import open_dataset  # noqa: E402


def nuisance_figure(run, out):
    dataset = open_dataset(run / "datasets" / "sim")
    table = dataset.table
    arms = (("fcae2_raw", "raw recipe (amplitude: none)"), ("fcae2_median", "median-normalised"),
            ("fcae2_continuum", "continuum-normalised"))
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.2), constrained_layout=True)
    targets = np.asarray(table["target_id"]).astype(str)
    star = targets[np.argmax(np.asarray(table["snr_550"], float))]
    for column, (model, title) in enumerate(arms):
        z = np.load(run / "models" / model / "latents-sim.npy")
        ratio = json.loads((run / "metrics" / f"{model}-sim.json").read_text())["metrics"]["repeat.ratio_median"]
        for row, (factor, label) in enumerate((("snr_550", "S/N at 550 nm (SN50)"), ("teff_k", "Teff [K]"))):
            ax = axes[row, column]
            points = ax.scatter(z[:, 0], z[:, 1], c=np.asarray(table[factor], float), s=6, cmap="viridis")
            mine = targets == star
            ax.plot(z[mine, 0], z[mine, 1], "-o", color="crimson", ms=3, lw=0.8, label=f"{star}: 15 epochs")
            ax.set_xlabel("latent z1 [a.u.]")
            ax.set_ylabel("latent z2 [a.u.]")
            ax.set_title(f"{title}\nrepeat ratio {ratio['value']:.3f}" if row == 0 else title, fontsize=9)
            fig.colorbar(points, ax=ax, label=label)
            if row == 0 and column == 0:
                ax.legend(fontsize=7, loc="best")
    fig.suptitle("fc_ae, 2-D latent, 900 simulated spectra (60 stars x 15 epochs, 11,000 channels)")
    fig.savefig(out, dpi=80)
    plt.close(fig)


def _entry(doc, name):
    entry = doc["metrics"].get(name) or {}
    value = entry.get("value")
    low, high = entry.get("ci_low"), entry.get("ci_high")
    err = None if value is None or low is None else [[value - low], [high - value]]
    return value, err


def rejection_figure(telluric_run, real_run, out):
    groups = [("barycentric", "ae1d8_barycentric", telluric_run, "sim"),
              ("observatory", "ae1d8_observatory", telluric_run, "sim"),
              ("whitened", "ae1d8_whitened", telluric_run, "sim"),
              ("barycentric", "ae1d8_barycentric", telluric_run, "alfcenb"),
              ("observatory", "ae1d8_observatory", telluric_run, "alfcenb"),
              ("whitened", "ae1d8_whitened", telluric_run, "alfcenb"),
              ("barycentric", "ae1d8_bary", real_run, "sim"),
              ("observatory", "ae1d8_obs", real_run, "sim")]
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    labels = []
    for i, (frame, model, run, dataset) in enumerate(groups):
        path = run / "metrics" / f"{model}-{dataset}.json"
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        for offset, (metric, colour) in enumerate((("telluric.rejection", "tab:blue"),
                                                   ("stellar.rejection", "tab:orange"))):
            value, err = _entry(doc, metric)
            if value is not None:
                ax.bar(i + (offset - 0.5) * 0.38, value, 0.36, yerr=err, color=colour, capsize=3,
                       label=metric if i == 0 else None)
        where = ("simulated,\nheld-out stars" if dataset == "sim" and run == telluric_run else
                 "real alpha Cen B\n(trained on sim)" if run == telluric_run else "real alpha Cen B\n(trained on it)")
        labels.append((i, f"{frame}\n{where}"))
    ax.set_xticks([i for i, _ in labels], [text for _, text in labels], fontsize=7.5)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("rejection fraction (0 reproduced, 1 removed)")
    ax.set_ylim(-0.3, 1.3)
    ax.legend(fontsize=8)
    ax.set_title("ae1d (latent 8): telluric versus stellar line rejection by training frame")
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nuisance_figure(runs / "finding_nuisance_2d", out / "finding_nuisance_2d.png")
    rejection_figure(runs / "finding_telluric_rejection", runs / "real_alfcenb", out / "finding_telluric_rejection.png")
    print(out)


if __name__ == "__main__":
    main()
