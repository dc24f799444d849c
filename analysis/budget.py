"""Variance budget of a simulated dataset: how much of the spectrum-to-spectrum variance each factor carries.

A simulated flux is (to the noise) response x stellar x telluric x (ISM lines), all stored as components. In
logarithms the factors add: ln f = ln r + ln s + ln t + rest + noise. Each spectrum's median is taken out first
(median amplitude normalisation, as the ``hits`` and ``window`` recipes do), then, per channel, the variance across
spectra of every term is summed over channels:

    V_total     = sum_channels Var_spectra(ln f - median ln f)
    V_response  = sum_channels Var_spectra(ln r - median ln r)       continuum shape: extinction, atmosphere,
                                                                     telescope, fibre losses, blaze envelope, flux
    V_stellar   = ... (ln s),  V_telluric = ... (ln t)
    V_noise     = sum_channels mean_spectra (sigma / f)^2
    V_other     = V_total - (V_response + V_stellar + V_telluric + V_noise): ISM lines and the covariances

and reported as fractions of V_total. Channels where any term is not finite or positive are skipped.
Approximation: ln(f) noise is sigma / f only to first order (S/N >> 1).

Example
-------
>>> variance_budget(open_dataset("runs/finding_nuisance_2d/datasets/sim"))   # doctest: +SKIP
{'n_spectra': 900, 'n_channels': 11000, 'fractions': {'response': 0.83, 'stellar': 0.15, ...}, ...}
"""

import numpy as np

COMPONENTS = ("response", "stellar", "telluric")


def _centred_log(values):
    logs = np.log(values)
    return logs - np.nanmedian(logs, axis=1, keepdims=True)


def variance_budget(dataset, *, batch_size=256, exclude_failed=True):
    """The variance budget (dict) of a dataset with ``response``, ``stellar`` and ``telluric`` components."""
    missing = [name for name in COMPONENTS if name not in dataset.array_names]
    if missing:
        raise ValueError(f"{dataset.path}: no {', '.join(missing)} component(s); a variance budget needs the "
                         "simulated truth components (output: components: true)")
    usable = np.ones(len(dataset), bool)
    if exclude_failed and "failed" in dataset.table.colnames:
        usable &= ~np.asarray(dataset.table["failed"], dtype=bool)
    terms = ("flux",) + COMPONENTS
    n_channels = dataset.n_channels
    sums = {name: np.zeros(n_channels) for name in terms}
    squares = {name: np.zeros(n_channels) for name in terms}
    noise = np.zeros(n_channels)
    valid_all = np.ones(n_channels, bool)
    count = 0
    for batch in dataset.iter_batches(batch_size, arrays=("flux", "error") + COMPONENTS):
        keep = usable[batch.start:batch.stop]
        if not keep.any():
            continue
        arrays = {name: np.asarray(batch.arrays[name], dtype=np.float64)[keep] for name in terms + ("error",)}
        ok = np.all([np.isfinite(arrays[n]) & (arrays[n] > 0) for n in terms + ("error",)], axis=0)
        valid_all &= ok.all(axis=0)
        for name in terms:
            centred = _centred_log(np.where(ok, arrays[name], np.nan))
            sums[name] += np.nan_to_num(centred).sum(axis=0)
            squares[name] += np.nan_to_num(centred ** 2).sum(axis=0)
        noise += np.nan_to_num((arrays["error"] / arrays["flux"]) ** 2).sum(axis=0)
        count += int(keep.sum())
    if count < 2:
        raise ValueError(f"{dataset.path}: a variance budget needs at least 2 usable spectra")
    variance = {name: float(np.sum((squares[name] / count - (sums[name] / count) ** 2)[valid_all]))
                for name in terms}
    total = variance.pop("flux")
    parts = {**variance, "noise": float(np.sum(noise[valid_all] / count))}
    parts["other"] = total - sum(parts.values())
    return {"n_spectra": count, "n_channels": int(valid_all.sum()), "total_log_variance": total,
            "fractions": {name: value / total for name, value in parts.items()},
            "definition": "sum over channels of the variance across spectra of ln(term) - median ln(term); "
                          "other = ISM lines + covariances (see analysis.budget)"}
