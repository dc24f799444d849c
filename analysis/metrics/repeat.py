"""Repeat observations and nuisance sensitivity: how much a latent moves when the star does not change.

Repeat ratio, per latent: pooled within-target standard deviation over the standard deviation of the target means.

- within = sqrt(sum_t sum_i (z_ti - mean_t)^2 / sum_t (n_t - 1)) over targets with >= 2 spectra;
- between = std (ddof 1) of the target means over all targets;
- ratio = within / between. 0 = the latent is constant over a star's repeats; a latent with no target information
  gives sqrt(n) for n spectra per target (the means still scatter by within / sqrt(n)); planted clusters with
  spreads s_b, s_w and n repeats give s_w / sqrt(s_b^2 + s_w^2 / n).

A single-star series has no between-target spread of its own: its within-series standard deviation (ddof 1) is
divided by the between-target spread of a reference population (a simulated set encoded by the same model).

Nuisance sensitivity (paired designs: ``variant`` 0 is the base row of its ``design_group``, variants 1..k differ
from it in one factor, with the same noise seed by default): per latent, the median over pairs of
|z(variant) - z(base)| in units of the latent's population standard deviation (ddof 1, all analysed spectra).
The design factor is the first column that differs within pairs, skipping the derived ``berv_kms`` / ``snr_550``
(a date change also moves BERV).
"""

import numpy as np

from analysis.metrics.factors import BOOKKEEPING, colnames

DERIVED = ("berv_kms", "snr_550", "night")


def dispersion(z, clusters):
    """(within (L,), between (L,)) standard deviations of latents ``z`` (n, L) over cluster labels (n,)."""
    z = np.asarray(z, dtype=np.float64)
    codes, counts = np.unique(clusters, return_inverse=True, return_counts=True)[1:]
    sums = np.zeros((counts.size, z.shape[1]))
    np.add.at(sums, codes, z)
    means = sums / counts[:, None]
    repeated = counts[codes] >= 2
    dof = np.sum(counts[counts >= 2] - 1)
    within = (np.sqrt(np.sum((z[repeated] - means[codes[repeated]]) ** 2, axis=0) / dof) if dof > 0
              else np.full(z.shape[1], np.nan))
    between = means.std(axis=0, ddof=1) if counts.size >= 2 else np.full(z.shape[1], np.nan)
    return within, between


def ratio(within, between):
    """within / between, NaN where between is 0 or unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(between > 0, within / between, np.nan)


def median_ratio(z, clusters, latents=None):
    """Median over the chosen latents (bool mask, default all) of the repeat ratio."""
    values = ratio(*dispersion(z, clusters))
    values = values if latents is None else values[latents]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else np.nan


def series_ratio(z_series, between_reference):
    """Single-star series: within-series std (ddof 1) over a reference population's between-target std (L,)."""
    z_series = np.asarray(z_series, dtype=np.float64)
    within = z_series.std(axis=0, ddof=1) if z_series.shape[0] >= 2 else np.full(z_series.shape[1], np.nan)
    return within, ratio(within, np.asarray(between_reference, dtype=np.float64))


def _differs(a, b):
    if a.dtype.kind in "fc":
        return ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return a != b


def paired_design(table, rows=None):
    """Pairs of a paired design: list of (factor, variant, base_rows, variant_rows), positions within ``rows``.

    Empty when the table has no ``variant`` > 0 or no ``design_group``.
    """
    names = colnames(table)
    if "variant" not in names or "design_group" not in names:
        return []
    rows = np.arange(len(table)) if rows is None else np.asarray(rows)
    variant = np.asarray(table["variant"])[rows]
    group = np.asarray(table["design_group"])[rows]
    if variant.max(initial=0) <= 0:
        return []
    base_of = {g: i for i, (g, v) in enumerate(zip(group, variant)) if v == 0}
    candidates = [n for n in names if n not in BOOKKEEPING and n not in DERIVED]
    pairs = []
    for v in np.unique(variant[variant > 0]):
        var_rows = np.array([i for i in np.flatnonzero(variant == v) if group[i] in base_of], dtype=np.int64)
        if var_rows.size == 0:
            continue
        base_rows = np.array([base_of[g] for g in group[var_rows]], dtype=np.int64)
        changed = [n for n in candidates
                   if np.any(_differs(np.asarray(table[n])[rows][var_rows], np.asarray(table[n])[rows][base_rows]))]
        if changed:
            pairs.append((changed[0], int(v), base_rows, var_rows))
    return pairs


def pair_shifts(z, base_rows, variant_rows, spread):
    """(L,) median over pairs of |z(variant) - z(base)| / spread."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts = np.abs(z[variant_rows] - z[base_rows]) / np.where(spread > 0, spread, np.nan)
    return np.median(shifts, axis=0) if shifts.shape[0] else np.full(z.shape[1], np.nan)
