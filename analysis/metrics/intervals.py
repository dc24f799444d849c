"""Intervals: cluster subsampling without replacement (delete-d jackknife) and grouped cross-validation folds.

Subsampling: each of ``n_subsamples`` draws keeps ``round(fraction * G)`` of the G clusters (targets, or nights of
a single-star series), without replacement, and all their spectra; no spectrum is ever duplicated (duplicates
break nearest-neighbour estimators). The delete-d jackknife (Shao & Wu 1989) gives the variance of the full-sample
statistic as ``fraction / (1 - fraction) * var(theta_s)`` (equal to the spread of the subsample values at
fraction = 0.5), and the interval is ``theta +- 1.96 sqrt(var)`` (95 %, normal). The spread is taken about the
subsample mean, so a bias that depends on the sample size (histogram and kNN estimators) does not widen it.
Fewer than ``MIN_CLUSTERS`` clusters or fewer than 2 finite subsample values: no interval (null).

Folds: ``GroupKFold`` over the same clusters; the interval is the t interval of the fold mean,
``value +- t(0.975, F-1) sd / sqrt(F)`` about the point value, known to be optimistic because the training sets overlap
(Bengio & Grandvalet 2004).
"""

import numpy as np
from scipy import stats

MIN_CLUSTERS = 4
Z95 = 1.959963984540054


def subsample_rows(clusters, n_subsamples, fraction, seed):
    """List of row-index arrays, one per subsample (empty list when there are too few clusters)."""
    unique = np.unique(clusters)
    if unique.size < MIN_CLUSTERS or n_subsamples < 2:
        return []
    keep = int(np.clip(round(fraction * unique.size), 2, unique.size - 1))
    rng = np.random.default_rng(seed)
    order = np.argsort(clusters, kind="stable")
    starts = np.searchsorted(clusters[order], unique)
    stops = np.append(starts[1:], clusters.size)
    draws = []
    for _ in range(n_subsamples):
        chosen = np.sort(rng.choice(unique.size, keep, replace=False))
        draws.append(np.sort(np.concatenate([order[starts[c]:stops[c]] for c in chosen])))
    return draws


def jackknife_interval(value, subsample_values, fraction):
    """(ci_low, ci_high) from the subsample values; (nan, nan) when they cannot give one."""
    values = np.asarray(subsample_values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not np.isfinite(value) or values.size < 2:
        return np.nan, np.nan
    half = Z95 * np.sqrt(fraction / (1.0 - fraction)) * values.std(ddof=1)
    return value - half, value + half


def fold_interval(value, fold_values):
    """(ci_low, ci_high) = value +- t(0.975, F-1) sd / sqrt(F) of the finite per-fold values (nan without 2)."""
    values = np.asarray(fold_values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not np.isfinite(value) or values.size < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return value - half, value + half
