"""Assemble the validation report of a run directory into one self-contained HTML file."""

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from analysis.regress import compare, metric_key
from analysis.report import figures
from analysis.report.html import Safe, esc, figure, interval, key_values, number, page, section, table, tag
from analysis.report.rundir import load_run
from analysis.report.spectra import reconstruction_figure
from simharps import __version__

NOT_FACTORS = {"spectrum_index", "failed", "target_index", "variant", "design_group", "epoch"}
MAX_HISTOGRAMS = 24
MAX_SCATTER_FACTORS = 16


class Report:
    """Sections of one report; figure failures become notes instead of ending the build."""

    def __init__(self, run):
        self.run = run
        self.rows = {}
        if run.baseline is not None:
            try:
                self.rows = {row["metric"]: row for row in compare(run.metrics, run.baseline)}
            except Exception as error:  # noqa: BLE001 - a bad baseline is reported, not fatal
                run.notes.append(f"baseline {run.baseline_path}: {error}")

    def plot(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - one bad input must not lose the whole report
            self.run.notes.append(f"{what}: figure failed ({type(error).__name__}: {error})")
            return None

    def numeric_columns(self, columns, names=None):
        """Names (default: all columns) that are numeric with at least two distinct finite values."""
        out = []
        for name in columns if names is None else names:
            values = columns.get(name)
            if name in NOT_FACTORS or values is None or values.dtype.kind not in "iuf":
                continue
            finite = values[np.isfinite(values)]
            if finite.size > 1 and np.ptp(finite) > 0:
                out.append(name)
        return out

    def factors(self, columns, doc=None):
        groups = (doc or {}).get("factors") or self.run.factor_groups()
        rank = {g: i for i, g in enumerate(figures.GROUP_ORDER)}
        names = sorted(groups, key=lambda n: rank.get(groups[n], len(rank))) if groups else None
        return self.numeric_columns(columns, names)

    def names(self):
        """(models, datasets) of the run and of its metrics files, in run order."""
        docs = self.run.metrics
        models = dict.fromkeys([*self.run.models, *(d.get("model") for d in docs)])
        datasets = dict.fromkeys([*self.run.datasets, *((d.get("dataset") or {}).get("name") for d in docs)])
        return [m for m in models if m is not None], [d for d in datasets if d is not None]

    def per_dataset(self, model, kind):
        """[(dataset info, value)] of a model's latents/reconstructions in the run's dataset order."""
        values = getattr(model, kind)
        order = list(self.run.datasets) + [name for name in values if name not in self.run.datasets]
        return [(self.run.datasets.get(name), name, values[name]) for name in order if name in values]


def _dataset_title(info, name):
    return f"{name} ({info.source if info else 'unknown source'})"


def _valid(info, n):
    """Row mask of usable spectra: the table's ``failed`` column when the table matches ``n`` rows."""
    if info is None or info.n_spectra != n or "failed" not in info.columns:
        return np.ones(n, bool)
    return ~info.columns["failed"].astype(bool)


def provenance(report):
    run, info = report.run, report.run.info
    scenario = info.get("scenario") or {}
    content = [tag("p", f"Report generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by simharps "
                        f"{__version__} from {run.rundir.resolve()}.")]
    if scenario:
        content.append(table(("scenario", "value"), [(k, scenario.get(k, "-")) for k in ("name", "path", "sha256")]))
        if scenario.get("text"):
            content.append(tag("details", [tag("summary", "scenario file"), tag("pre", scenario["text"])]))
    top = {k: v for k, v in info.items() if not isinstance(v, (dict, list))}
    boxes = [(title, info.get(key)) for title, key in (("versions", "versions"), ("hardware", "hardware"))]
    boxes = [("run", top)] + boxes
    content.append(tag("div", [tag("div", [tag("h3", t), key_values(v)]) for t, v in boxes if v], class_="row"))
    if run.datasets:
        rows = []
        for name, ds in run.datasets.items():
            wave = ds.wavelength_aa
            span = "-" if wave is None or not len(wave) else f"{wave[0]:.2f}-{wave[-1]:.2f} Å"
            fingerprint = ds.entry.get("fingerprint") or ds.manifest.get("fingerprint", "-")
            rows.append((name, ds.source, number(ds.n_spectra), "-" if wave is None else len(wave), span,
                         ds.manifest.get("seed", "-"), fingerprint, ds.entry.get("path", "-")))
        content += [tag("h3", "datasets"), table(("dataset", "source", "spectra", "channels", "range (air)", "seed",
                                                  "fingerprint", "path"), rows, numeric=(2, 3))]
    if run.models:
        keys = list(dict.fromkeys(k for m in run.models.values() for k, v in m.entry.items()
                                  if not isinstance(v, (dict, list))))
        rows = [(name, *(m.entry.get(k, "-") for k in keys)) for name, m in run.models.items()]
        content += [tag("h3", "models"), table(("model", *keys), rows)]
        content += [tag("details", [tag("summary", f"{name}: config.json"), key_values(m.config)])
                    for name, m in run.models.items() if isinstance(m.config, dict) and m.config]
    stages = info.get("stages") or {}
    if stages:
        stages = {name: s if isinstance(s, dict) else {} for name, s in stages.items()}
        rows = [(name, s.get("done", "-"), number(s.get("seconds")), str(s.get("hash", "-"))[:16])
                for name, s in stages.items()]
        total = sum(s.get("seconds") or 0 for s in stages.values())
        content += [tag("h3", f"stages (total {total:.1f} s)"), table(("stage", "done", "seconds", "hash"), rows,
                                                                     numeric=(2,))]
    return content


def regression_summary(report):
    if report.run.baseline is None:
        return None
    rows = list(report.rows.values())
    failed = [r for r in rows if r["status"] != "pass"]
    verdict = tag("p", f"{len(rows) - len(failed)} of {len(rows)} baseline metrics within tolerance "
                       f"(baseline {report.run.baseline_path}).", class_="fail" if failed else "pass")
    content = [verdict]
    if failed:
        content.append(table(("metric", "baseline", "now", "tolerance", "status"),
                             [(r["metric"], number(r["baseline"]), number(r["now"]), r["tolerance"],
                               _mark(r["status"])) for r in failed], numeric=(1, 2)))
    return content


def distributions(report):
    tables = {name: ds.columns for name, ds in report.run.datasets.items() if ds.columns}
    columns = list(dict.fromkeys(c for t in tables.values() for c in report.factors(t)))[:MAX_HISTOGRAMS]
    if not columns:
        return None
    uri = report.plot("distributions", figures.histograms, columns, tables)
    caption = f"Truth / metadata distributions of {', '.join(tables)} (fraction of each dataset's spectra)."
    return [figure(uri, caption)] if uri else None


def losses(report):
    histories = {name: m.history["epochs"] for name, m in report.run.models.items()
                 if isinstance(m.history, dict) and m.history.get("epochs")}
    if not histories:
        return None
    rows = []
    for name, epochs in histories.items():
        val = [e["val_loss"] for e in epochs if isinstance(e.get("val_loss"), (int, float))]
        rows.append((name, len(epochs), number(min(val) if val else None),
                     number(sum(e.get("seconds") or 0 for e in epochs))))
    uri = report.plot("loss curves", figures.loss_curves, histories)
    content = [figure(uri, "Training and validation loss per epoch.")] if uri else []
    content.append(table(("model", "epochs", "best validation loss", "training seconds"), rows, numeric=(1, 2, 3)))
    return content


def _example_title(info, index):
    columns = info.columns if info is not None else {}
    parts = [f"spectrum {index}"]
    for name in ("target_id", "object", "epoch"):
        if name in columns and 0 <= index < len(columns[name]):
            parts.append(f"{name} {columns[name][index]}")
    return ", ".join(parts)


def _example_wavelength(recon, info):
    """The reconstructions' own grid, else the dataset's when it has as many channels, else None (pixels)."""
    wave = recon.get("wavelength_aa")
    if wave is not None:
        return np.asarray(wave)[0] if np.ndim(wave) == 2 else np.asarray(wave)
    if info is not None and info.wavelength_aa is not None and len(info.wavelength_aa) == recon["input"].shape[1]:
        return info.wavelength_aa
    return None


def examples(report):
    content = []
    for name, model in report.run.models.items():
        cells = []
        for info, ds_name, recon in report.per_dataset(model, "reconstructions"):
            wave = _example_wavelength(recon, info)
            titles = [_example_title(info, int(i)) for i in recon.get("spectrum_index", range(len(recon["input"])))]
            result = report.plot(f"reconstructions {name}/{ds_name}", reconstruction_figure, recon, wave, titles)
            if result:
                uri, shown = result
                caption = (f"{name} on {_dataset_title(info, ds_name)}: " + "; ".join(titles[k] for k in shown))
                cells.append(figure(uri, caption))
        if cells:
            content += [tag("h3", name), tag("div", cells, class_="row")]
    if not content:
        return None
    intro = tag("p", "Input (grey), reconstruction (red) and truth components (dashed) over the full range and "
                     "zoomed on a telluric band and on stellar lines; residual input − output below.")
    return [intro, *content]


def _matrix_unit(key, matrix):
    return matrix.get("unit") or {"mi_ksg_nats": "MI [nats]"}.get(key, "study indicator [relative]")


def _study_key(matrices):
    """The study indicator's matrix: the 20-bin one (``mi_study_indicator.b20``) when present, else the first."""
    keys = sorted(key for key in matrices if key.startswith("mi_study_indicator"))
    return "mi_study_indicator.b20" if "mi_study_indicator.b20" in keys else (keys[0] if keys else None)


def mutual_information(report):
    content = []
    models, datasets = report.names()
    for name in models:
        cells = []
        for ds_name in datasets:
            doc = report.run.metrics_for(name, ds_name)
            matrices = (doc or {}).get("matrices") or {}
            chosen = [(f"{key} ({name} on {ds_name})", _matrix_unit(key, matrices[key]), matrices[key])
                      for key in ("mi_ksg_nats", _study_key(matrices)) if isinstance(matrices.get(key), dict)]
            if chosen:
                uri = report.plot(f"MI {name}/{ds_name}", figures.mi_heatmaps, chosen, doc.get("factors") or {})
                if uri:
                    cells.append(figure(uri, f"{name} on {_dataset_title(report.run.datasets.get(ds_name), ds_name)}"))
        if cells:
            content += [tag("h3", name), tag("div", cells, class_="row")]
    if not content:
        return None
    intro = tag("p", "Mutual information between each latent coordinate and each factor (bias-aware KSG "
                     "estimate, nats), factors grouped intrinsic | extrinsic | kinematic, with the motivating "
                     "study's indicator (20 equal-width bins, relative to its maximum over latents) beside it.")
    return [intro, *content]


def _projection(latents):
    """(function mapping latents to <= 2 display coordinates, axis labels): identity for <= 2-D, else PCA."""
    d = latents.shape[1]
    if d <= 2:
        return (lambda z: z), [f"z{i + 1} [latent a.u.]" for i in range(d)]
    good = latents[np.all(np.isfinite(latents), axis=1)]
    mean = good.mean(axis=0)
    _, s, vt = np.linalg.svd(good - mean, full_matrices=False)
    share = s ** 2 / np.sum(s ** 2)
    labels = [f"PC{i + 1} of z, {100 * share[i]:.0f} % var. [a.u.]" for i in range(2)]
    return (lambda z: (z - mean) @ vt[:2].T), labels


def _limits(points):
    good = np.concatenate([p[np.all(np.isfinite(p), axis=1)] for p in points])
    low, high = good.min(axis=0), good.max(axis=0)
    pad = 0.05 * np.where(high > low, high - low, 1.0)
    return list(zip(low - pad, high + pad))


def _tracks(columns, valid):
    if "target_id" not in columns:
        return {}
    order_key = next((columns[k] for k in ("epoch", "mjd_utc") if k in columns), None)
    targets = columns["target_id"]
    tracks = {}
    for target in dict.fromkeys(targets[valid]):
        index = np.flatnonzero((targets == target) & valid)
        if index.size >= 2:
            tracks[target] = index if order_key is None else index[np.argsort(order_key[index], kind="stable")]
    chosen = sorted(tracks, key=lambda t: -tracks[t].size)[:figures.MAX_TRACKS]
    return {t: tracks[t] for t in chosen}


def _colour_limits(panels):
    limits = {}
    for _, _, values, _ in panels:
        for factor, v in values.items():
            low, high = limits.get(factor, (np.inf, -np.inf))
            limits[factor] = (min(low, np.nanmin(v)), max(high, np.nanmax(v)))
    return limits


def _model_latents(report, name, model):
    """(scatter figures, track figures) of one model, one per dataset, on common axes and colour scales."""
    entries = [(info, ds_name, np.asarray(z, dtype=float)) for info, ds_name, z in
               report.per_dataset(model, "latents") if np.ndim(z) == 2 and len(z)]
    if not entries:
        return [], []
    project, labels = _projection(entries[0][2])
    panels = []
    for info, ds_name, z in entries:
        title = f"{name} on {_dataset_title(info, ds_name)}"
        if info is None or info.n_spectra != len(z):
            report.run.notes.append(f"{title}: {len(z)} latents but the table is missing or of another length")
            continue
        xy = project(z)
        valid = _valid(info, len(z)) & np.all(np.isfinite(xy), axis=1)
        factors = report.factors(info.columns, report.run.metrics_for(name, ds_name))[:MAX_SCATTER_FACTORS]
        values = {f: np.where(valid, info.columns[f].astype(float), np.nan) for f in factors}
        panels.append((title, xy, values, _tracks(info.columns, valid)))
    if not panels:
        return [], []
    limits = _limits([xy for _, xy, _, _ in panels]) if panels[0][1].shape[1] == 2 else None
    colours = _colour_limits(panels)
    scatters, tracks = [], []
    for title, xy, values, chosen in panels:
        if values:
            uri = report.plot(f"latents {title}", figures.latent_scatter, xy, labels, values, limits, colours)
            scatters += [figure(uri, f"{title}: latents coloured by each factor")] if uri else []
        if chosen:
            uri = report.plot(f"tracks {title}", figures.repeat_tracks, xy, labels, chosen, limits)
            tracks += [figure(uri, f"{title}: repeat observations of {len(chosen)} targets, joined in epoch "
                                   f"order: {', '.join(map(str, chosen))}")] if uri else []
    return scatters, tracks


def latent_space(report):
    content = []
    for name, model in report.run.models.items():
        scatters, tracks = _model_latents(report, name, model)
        if scatters or tracks:
            content += [tag("h3", name), tag("div", scatters, class_="row"), tag("div", tracks, class_="row")]
    if not content:
        return None
    intro = tag("p", "2-D latents as they are; higher dimensions projected on the two principal components (PC) "
                     "of the first dataset's latents. Every dataset of a model shares the projection, the axis "
                     "limits and each factor's colour scale. Latent coordinates are in the model's arbitrary units "
                     "(a.u.).")
    return [intro, *content]


def _value_cell(entry):
    if entry is None:
        return "-"
    return f"{number(entry.get('value'))} {interval(entry.get('ci_low'), entry.get('ci_high'))}"


PIXEL_CLASSES = ("telluric", "stellar", "continuum")


def telluric_stellar(report):
    models, datasets = report.names()
    docs = [report.run.metrics_for(m, d) for m in models for d in datasets]
    pairs = {(d["model"], d["dataset"]["name"]): {tuple(k.split(".", 1)) for k in d.get("metrics") or {}
                                                  if k.split(".")[0] in PIXEL_CLASSES and "." in k}
             for d in docs if d}
    found = set().union(*pairs.values()) if pairs else set()
    if not any(cls in ("telluric", "stellar") for cls, _ in found):
        return None
    quantities = sorted({q for _, q in found}, key=lambda q: (q != "rejection", q))
    columns = [(c, q) for q in quantities for c in PIXEL_CLASSES if (c, q) in found]
    rows = [[doc["model"], doc["dataset"]["name"], doc["dataset"].get("source", "-")]
            + [_value_cell(doc["metrics"].get(f"{c}.{q}")) for c, q in columns]
            for doc in docs if doc and pairs[doc["model"], doc["dataset"]["name"]]]
    intro = tag("p", "Every telluric.*, stellar.* and continuum.* metric of each model and dataset, value "
                     "[interval]: the rejection fractions and per-class residuals as the metrics define them "
                     "(estimators in the metric tables below).")
    return [intro, table(["model", "dataset", "source"] + [f"{c} {q}" for c, q in columns], rows)]


def variance_budget(report):
    """The variance budget of each dataset with truth components (RUNDIR/budget-NAME.json, analysis.budget)."""
    rows = []
    for path in sorted(report.run.rundir.glob("budget-*.json")):
        budget = json.loads(path.read_text())
        fractions = budget["fractions"]
        rows.append([path.stem[len("budget-"):], number(budget["n_spectra"]), number(budget["n_channels"])]
                    + [number(fractions.get(name)) for name in BUDGET_TERMS])
    if not rows:
        return None
    intro = tag("p", "Share of the spectrum-to-spectrum variance of ln(flux) (each spectrum's median taken out, "
                     "summed over channels) carried by each truth component; other = interstellar lines and "
                     "covariances between the terms (analysis.budget).")
    return [intro, table(["dataset", "spectra", "channels"] + list(BUDGET_TERMS), rows, numeric=(1, 2, 3, 4, 5, 6, 7))]


BUDGET_TERMS = ("response", "stellar", "telluric", "noise", "other")


def _mark(status):
    return Safe(f'<span class="{"pass" if status == "pass" else "fail"}">'
                f'{"✓ pass" if status == "pass" else "✗ " + esc(status)}</span>')


def metric_tables(report):
    content = []
    models, datasets = report.names()
    for name in models:
        cells = []
        for ds_name in datasets:
            doc = report.run.metrics_for(name, ds_name)
            if not doc or not doc.get("metrics"):
                continue
            rows = []
            for metric, entry in sorted(doc["metrics"].items()):
                base = report.rows.get(metric_key(name, ds_name, metric))
                rows.append((metric, number(entry.get("value")), interval(entry.get("ci_low"), entry.get("ci_high")),
                             entry.get("estimator", "-"), number(entry.get("n")),
                             number(base["baseline"]) if base else "-", base["tolerance"] if base else "-",
                             _mark(base["status"]) if base else "-"))
            header = ("metric", "value", "interval", "estimator", "n", "baseline", "tolerance", "status")
            title = f"{name} on {_dataset_title(report.run.datasets.get(ds_name), ds_name)}"
            cells.append(tag("div", [tag("h3", title),
                                     table(header, rows, numeric=(1, 4, 5))]))
        if cells:
            content.append(tag("div", cells, class_="row"))
    return content or None


def notes(report):
    if not report.run.notes:
        return None
    return [tag("ul", [tag("li", n) for n in report.run.notes], class_="note")]


SECTIONS = ((provenance, "provenance", "Scenario and provenance"),
            (regression_summary, "regression", "Regression against the baseline"),
            (distributions, "distributions", "Distributions of truth and metadata"),
            (losses, "losses", "Loss curves"),
            (examples, "examples", "Example spectra and reconstructions"),
            (mutual_information, "mi", "Mutual information: latents x factors"),
            (latent_space, "latents", "Latent space"),
            (telluric_stellar, "telluric", "Telluric versus stellar"),
            (variance_budget, "budget", "Variance budget of the simulated sets"),
            (metric_tables, "metrics", "Every metric"),
            (notes, "notes", "Notes"))


def _guarded(report, function, title):
    try:
        return function(report)
    except Exception as error:  # noqa: BLE001 - an unexpected input loses one section, not the report
        report.run.notes.append(f"section {title!r} left out ({type(error).__name__}: {error})")
        return None


def build_report(rundir, baseline=None, out=None):
    """Write RUNDIR/report.html (or ``out``) from whatever the run directory holds; returns its path.

    ``baseline``: a baseline file to mark every metric pass/fail against (default: run.json's ``baseline``).
    """
    start = time.perf_counter()
    report = Report(load_run(rundir, baseline))
    built = [(anchor, title, _guarded(report, fn, title)) for fn, anchor, title in SECTIONS]
    built = [(anchor, title, content) for anchor, title, content in built if content]
    name = (report.run.info.get("scenario") or {}).get("name") or Path(rundir).name
    footer = tag("p", f"Built in {time.perf_counter() - start:.1f} s.")
    document = page(f"simharps validation report: {name}", [(anchor, title) for anchor, title, _ in built],
                    [section(anchor, title, content) for anchor, title, content in built] + [footer])
    path = Path(out) if out else Path(rundir) / "report.html"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(document, encoding="utf-8")
    os.replace(partial, path)
    return path
