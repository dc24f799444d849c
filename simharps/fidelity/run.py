"""``simharps fidelity``: how far simulated spectra are from real ones, measured on a real dataset and its twins.

Steps (each documented in its module):

1. twins (``twin``): every real spectrum re-simulated under its header conditions and its star's labels, over the
   real set's range (or ``window``), written to ``OUT/twin`` as a dataset (arrays ``flux``, ``error``,
   ``expected`` (noiseless), ``stellar``, ``telluric``, ``response``); a second noise draw is kept in memory;
2. per analysis window (``WINDOWS``, clipped to the simulated range): residuals of real against noiseless twin
   (``residuals``), and the classifier two-sample tests, logistic regression on PCA features (``classify``) and,
   with ``cnn_test``, a small 1-D CNN (``cnn``), at native S/N and with both sets degraded to each of ``snr_levels``
   (``degrade``), each with its twin-versus-twin control;
3. noise texture (``noise``): consecutive same-night real exposures against twin noise-draw pairs, in 200 A bins;
   tellurics over the series (``tellurics``): PWV per spectrum, telluric residuals in noise units and the telluric
   line positions against BERV, per H2O and O2 band;
4. flux scale (``fluxscale``): predicted / header SN50 per spectrum, and the seeing-equivalent fit per night; the
   chromatic flux scale (``residuals.envelope_ratio``: real / twin continuum level per 100 A);
5. ``OUT/fidelity.json`` (schema ``simharps-fidelity/1``), PNGs and ``OUT/fidelity.html`` (``report``).

Nights (``twin.night_id``) group the cross-validation and the bootstrap, and define the consecutive pairs.

Example
-------
>>> result = run_fidelity("datasets/alfcenb", "labels.csv", "reports/fidelity")
>>> result["windows"]["red"]["classifier"]["native"]["auc"]
"""

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from simharps.dataset import open_dataset, write_dataset
from simharps.errors import SimharpsError
from simharps.fidelity import classify, cnn, degrade, fluxscale, noise, report, residuals, tellurics, twin
from simharps.grids import PRODUCT_RANGE_AA, PRODUCT_STEP_AA
from simharps.ingest.noise import modelled_error

WINDOWS = {"blue": (4000.0, 4500.0), "mg_b": (5150.0, 5200.0), "h2o_5900": (5880.0, 5990.0),
           "red": (6000.0, 6300.0), "h2o_6500": (6470.0, 6580.0), "o2_b": (6865.0, 6913.0)}
"""Analysis windows (A, air, barycentric): blue metal lines, Mg b wings, the two H2O bands, red metal lines, O2 B."""

SNR_LEVELS = (20.0, 50.0, 100.0)
CLEAN_TELLURIC = 0.99
"""Noise texture: bins whose telluric transmission is below this in either spectrum are left out."""

SCHEMA = "simharps-fidelity/1"


def run_fidelity(real_path, labels_csv, out_dir, *, window=None, windows=None, snr_levels=SNR_LEVELS, seed=13,
                 n_components=20, n_boot=1000, fit_seeing=True, cnn_test=True, write_twin=True, overwrite=False,
                 progress=False):
    """Measure the real/simulated gaps of the dataset at ``real_path``; returns the fidelity.json content."""
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    real = open_dataset(real_path)
    table = real.table
    labels = twin.read_star_labels(labels_csv)
    use = np.flatnonzero(~np.asarray(table["failed"], dtype=bool))
    grid = real.wavelength_air_aa
    span = _twin_span(grid, window)
    bar = tqdm(total=use.size, desc="twins", disable=not progress, leave=False)
    twins = twin.simulate_twins(table, labels, window=span, seed=seed, second_draw=True, indices=use,
                                progress=lambda done, total: bar.update(1))
    bar.close()
    offset = int(round((twins.wavelength_air_aa[0] - grid[0]) / PRODUCT_STEP_AA))
    columns = slice(offset, offset + twins.wavelength_air_aa.size)
    if not np.allclose(grid[columns], twins.wavelength_air_aa, atol=1e-6):
        raise SimharpsError(f"{real_path}: its wavelength grid is not the 0.01 A lattice the twins are simulated on")
    ok = np.array([bool(truth) for truth in twins.truth])
    rows = use[ok]
    real_arrays = {name: real[name][rows][:, columns] for name in ("flux", "error", "telluric")
                   if name in real.array_names}
    twin_arrays = {name: values[ok] for name, values in twins.arrays.items()}
    second = twins.second_flux[ok]
    nights = twin.row_nights(table)[rows]
    wave = twins.wavelength_air_aa

    if write_twin:
        _write_twin(out / "twin", real, table, use, twins, nights_all=twin.row_nights(table)[use], seed=seed,
                    labels_csv=labels_csv, overwrite=overwrite)
    result = {"schema": SCHEMA, "real_dataset": {"path": str(real_path), "fingerprint": real.manifest["fingerprint"],
                                                 "n": len(real), "n_used": int(rows.size)},
              "twin_dataset": str(out / "twin") if write_twin else None,
              "settings": {"window": list(span), "seed": seed, "n_components": n_components, "n_boot": n_boot,
                           "snr_levels": list(snr_levels), "n_nights": int(np.unique(nights).size),
                           "cnn_test": bool(cnn_test)},
              "labels": _labels_used(table, rows, labels), "condition_sources": _source_counts(twins.sources),
              "rv_zero_points_kms": twins.rv_zero_points_kms,
              "failed_twins": [{"spectrum_index": int(use[k]), "reason": reason} for k, reason in twins.failed],
              "flux_rounding": real.manifest.get("arrays", {}).get("flux", {}).get("rounding_rms_over_error")}

    curves, windows_out = {}, {}
    chosen = WINDOWS if windows is None else windows
    for number, (name, (start, stop)) in enumerate(chosen.items()):
        start, stop = max(start, wave[0]), min(stop, wave[-1])
        if stop - start < 1.0:
            continue
        cols = (wave >= start - 1e-9) & (wave <= stop + 1e-9)
        windows_out[name], curves[name] = _window(
            wave[cols], {k: v[:, cols].astype(float) for k, v in real_arrays.items()},
            {**{k: v[:, cols].astype(float) for k, v in twin_arrays.items()}, "second": second[:, cols].astype(float)},
            nights, snr_levels, n_components, n_boot, seed + number, cnn_test)
        windows_out[name]["range_aa"] = [float(start), float(stop)]
    result["windows"] = windows_out
    result["envelope_ratio"] = residuals.envelope_ratio(wave, real_arrays["flux"], twin_arrays["expected"])
    result["noise_texture"] = _texture(wave, table, rows, real_arrays, twin_arrays, second, twins, ok, nights)
    result["tellurics"] = tellurics.telluric_series(
        wave, real_arrays["flux"], real_arrays["error"], second, twin_arrays["error"], twin_arrays["expected"],
        twin_arrays["telluric"],
        _column(table, rows, "berv_kms"), _column(table, rows, "pwv_mm"),
        pwv_err_mm=_column(table, rows, "pwv_fit_err_mm"), airmass=_column(table, rows, "airmass"))
    result["flux_scale"] = _flux_scale(table, rows, labels, nights, fit_seeing)
    result["seconds"] = round(time.perf_counter() - started, 1)
    report.write_report(out, result, curves)
    return result


def _twin_span(grid, window):
    """The twin range (A): ``window`` (default the real grid) clipped to the real grid and the product range."""
    start, stop = (float(grid[0]), float(grid[-1])) if window is None else (float(window[0]), float(window[1]))
    start, stop = max(start, PRODUCT_RANGE_AA[0], float(grid[0])), min(stop, PRODUCT_RANGE_AA[1], float(grid[-1]))
    if stop <= start:
        raise SimharpsError(f"window {window} does not overlap the real set's {grid[0]:.2f}-{grid[-1]:.2f} A")
    return start, stop


def _window(wave, real, sim, nights, snr_levels, n_components, n_boot, seed, cnn_test):
    """Residual statistics and classifier results (logistic on PCA; with ``cnn_test`` also the CNN) of one window."""
    stats, curves = residuals.window_residuals(wave, real["flux"], real["error"], sim["expected"], sim["telluric"])
    real_n, real_e = degrade.normalise(wave, real["flux"], real["error"])
    twin_n, twin_e = degrade.normalise(wave, sim["flux"], sim["error"])
    tests, weights, cnn_tests = {}, {}, {}
    rng = np.random.default_rng(seed)
    for level in (None, *snr_levels):
        key = "native" if level is None else f"snr{level:g}"
        if level is None:
            a, b, below = real_n, twin_n, None
        else:
            a, _, below_a = degrade.degrade_to_snr(real_n, real_e, level, rng)
            b, _, below_b = degrade.degrade_to_snr(twin_n, twin_e, level, rng)
            below = {"real": below_a, "twin": below_b}
        test = classify.two_sample_test(a, b, nights, nights, n_components=n_components, n_boot=n_boot, seed=seed)
        tests[key] = {**test.to_dict(), "fraction_bins_below_target": below,
                      "top_weight_wavelengths_aa": _top(wave, test.weights)}
        weights[key] = test.weights
        if cnn_test:
            network = cnn.cnn_two_sample_test(a, b, nights, nights, n_boot=n_boot, seed=seed)
            cnn_tests[key] = {**_cnn_dict(network), "top_weight_wavelengths_aa": _top(wave, network.weights)}
            weights[f"cnn {key}"] = network.weights
    curves["weights"] = weights
    second_n, _ = degrade.normalise(wave, sim["second"], sim["error"])
    control = classify.two_sample_test(twin_n, second_n, nights, nights, n_components=n_components, n_boot=n_boot,
                                       seed=seed)
    out = {"residuals": stats, "classifier": tests, "control_twin_vs_twin": control.to_dict()}
    if cnn_test:
        out["cnn"] = cnn_tests
        out["cnn_control_twin_vs_twin"] = _cnn_dict(cnn.cnn_two_sample_test(twin_n, second_n, nights, nights,
                                                                            n_boot=n_boot, seed=seed))
    return out, curves


def _cnn_dict(result):
    """A CNN ``ClassifierResult`` as a dict, its ``n_components`` field named for what it holds."""
    entry = result.to_dict()
    entry["n_parameters"] = entry.pop("n_components")
    return entry


def _top(wave, weights, n=10):
    """Wavelengths (A) of the ``n`` largest |weights|, with the weights."""
    order = np.argsort(-np.nan_to_num(np.abs(weights)))[:n]
    return [[round(float(wave[i]), 2), float(weights[i])] for i in order]


def _meta(row):
    return {name: row[name] for name in ("instrument", "berv_kms", "exptime_s", "read_noise_e", "gain_e_per_adu")}


def _texture(wave, table, rows, real, sim, second, twins, ok, nights):
    """Noise texture of consecutive real exposures (at most ``noise.MAX_GAP_MIN`` apart; every consecutive pair is
    also listed with its time gap) and of twin noise-draw pairs (``noise`` module)."""
    telluric = real.get("telluric", np.ones_like(real["flux"]))
    mjd = np.asarray(table["mjd_utc"], float)[rows]
    real_sums, listed = [], []
    for i, j in noise.consecutive_pairs(nights, mjd):
        var = [modelled_error(wave, real["flux"][k], _meta(table[int(rows[k])])) ** 2 for k in (i, j)]
        mask = (telluric[i] >= CLEAN_TELLURIC) & (telluric[j] >= CLEAN_TELLURIC)
        phase = noise.pixel_phase(wave, float(table[int(rows[i])]["berv_kms"]))
        sums = noise.difference_texture(wave, real["flux"][i], real["flux"][j], var[0], var[1], mask=mask,
                                        phase=phase)
        gap = (mjd[j] - mjd[i]) * 1440.0
        if gap <= noise.MAX_GAP_MIN:
            real_sums.append(sums)
        listed.append({"files": [str(table[int(rows[k])]["file"]) for k in (i, j)], "gap_min": float(gap),
                       **noise.summary(sums)["overall"]})
    sim_sums, own_sums = [], []
    truths = [truth for truth, good in zip(twins.truth, ok) if good]
    for k, truth in enumerate(truths):
        var = [modelled_error(wave, flux, truth) ** 2 for flux in (sim["flux"][k], second[k])]
        mask = sim["telluric"][k] >= CLEAN_TELLURIC
        phase = noise.pixel_phase(wave, truth["berv_kms"])
        sim_sums.append(noise.difference_texture(wave, sim["flux"][k], second[k], var[0], var[1], mask=mask,
                                                 rescale=False, phase=phase))
        own = sim["error"][k] ** 2
        own_sums.append(noise.difference_texture(wave, sim["flux"][k], second[k], own, own, mask=mask,
                                                 rescale=False, phase=phase))
    out = {"reference": "whole-pixel photon + read noise (simharps.ingest.noise.modelled_error)",
           "max_gap_min": noise.MAX_GAP_MIN, "real_pairs": listed}
    for name, sums in (("real", real_sums), ("twin", sim_sums), ("twin_own_error", own_sums)):
        total = noise.combine(sums)
        out[name] = None if total is None else noise.summary(total)
    return out


def _flux_scale(table, rows, labels, nights, fit):
    """Predicted / header SN50 per spectrum, its summary, and (``fit``) the seeing-equivalent per night."""
    predicted, observed, seeing = [], [], []
    for index in rows:
        row = table[int(index)]
        params, _ = twin.twin_parameters(row, labels)
        predicted.append(fluxscale.predicted_sn50(params))
        observed.append(float(row["snr_550"]))
        if fit and np.isfinite(observed[-1]):
            seeing.append(fluxscale.fit_seeing(params, observed[-1]))
    out = {"summary": fluxscale.ratio_summary(predicted, observed),
           "per_spectrum": [{"file": str(table[int(i)]["file"]), "mjd_utc": float(table[int(i)]["mjd_utc"]),
                             "airmass": float(table[int(i)]["airmass"]), "predicted_sn50": p, "header_sn50": o}
                            for i, p, o in zip(rows, predicted, observed)]}
    if seeing:
        values = np.array([s for s, _ in seeing])
        out["seeing_fit"] = {
            "per_night_median_arcsec": {str(int(night)): float(np.median(values[nights == night]))
                                        for night in np.unique(nights)},
            "median_arcsec": float(np.median(values)), "n_at_bound": int(sum(not inside for _, inside in seeing))}
    return out


def _column(table, rows, name):
    """A float column of the rows ``rows`` (NaN where the table lacks it)."""
    try:
        return np.asarray(table[name], dtype=float)[rows]
    except (KeyError, ValueError):
        return np.full(rows.size, np.nan)


def _labels_used(table, rows, labels):
    used = {}
    for index in rows:
        label = twin.row_label(table[int(index)], labels)
        if label is not None:
            used[label["name"]] = {k: v for k, v in label.items() if k != "name"}
    return used


def _source_counts(sources):
    counts = {}
    for entry in sources:
        for name, source in entry.items():
            counts.setdefault(name, {}).setdefault(source, 0)
            counts[name][source] += 1
    return counts


def _write_twin(path, real, table, use, twins, *, nights_all, seed, labels_csv, overwrite):
    rows = []
    for k, index in enumerate(use):
        truth = {name: value for name, value in twins.truth[k].items() if name not in ("stages",)}
        rows.append({**truth, "real_spectrum_index": int(index), "real_file": str(table[int(index)]["file"]),
                     "target_id": str(table[int(index)]["target_id"]), "epoch": int(table[int(index)]["epoch"]),
                     "night": int(nights_all[k]),
                     **{f"source_{name}": source for name, source in twins.sources[k].items()}})
    names = sorted({name for row in rows for name in row})
    rows = [{name: row.get(name) for name in names} for row in rows]
    extra = {"twin_of": {"path": str(real.path), "fingerprint": real.manifest["fingerprint"]}, "seed": seed,
             "labels_csv": str(labels_csv)}
    write_dataset(path, twins.wavelength_air_aa, twins.arrays, rows, failed=twins.failed,
                  source="simulated twin", manifest_extra=extra, overwrite=overwrite)
