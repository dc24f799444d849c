"""Mutual information (nats) between latents and factors: the study's indicator as released, and bias-aware
estimators beside it.

Study indicator (NimSed/astro-machines notebooks/features.ipynb, reproduced as released): labels with NaN dropped
and then ``astropy.stats.sigma_clip(label, sigma=5)`` (astropy defaults: median centre, std, 5 iterations); latents
not clipped; ``np.histogram2d(latent, label, bins=[B, B])`` over each variable's min-max; plug-in MI in nats; for
each bin count B in (5, 10, 20, 40, 80, 160) the row is divided by its maximum over latents. It is a relative
indicator, not nats: its plug-in bias at 160 bins is ~1 nat at N = 10,000 (0.5-1.2 nats), so that row is mostly
bias. The study's median-flux cut (< 50) and "unique" subset are row selections made by the caller.

Bias-aware estimators (all on rank-transformed data, so they are invariant under monotone warps):

- rank transform: ordinal ranks with random tie-breaking plus U(0, 1) jitter, divided by n: a sample of U(0, 1)
  that keeps the copula of the data (per-target factors repeat one value over a target's spectra; ties would break
  the kNN estimators);
- continuous-continuous: KSG estimator 1 (Kraskov, Stoegbauer & Grassberger 2004) with the max-norm, k = 3 by
  default: I = psi(k) + psi(N) - <psi(n_x + 1) + psi(n_y + 1)>, n_x counting points strictly within the k-th
  neighbour distance (as scikit-learn's ``mutual_info_regression``);
- continuous-discrete (target_id, night, instrument mode, factorial levels): Ross (2014) kNN estimator,
  I = psi(N) + <psi(k_i)> - <psi(N_c)> - <psi(m_i)>, k_i = min(k, N_c - 1), labels seen once dropped
  (as scikit-learn's ``_compute_mi_cd``);
- discrete-discrete (factor-factor matrix only): plug-in with the Miller-Madow correction;
- permutation null: for ranks the null distribution depends only on (N, k) (continuous) or on the label counts
  (discrete), so it is drawn once per factor from independent uniforms; it assumes exchangeable spectra, which
  clustered repeat observations are not (the cluster-subsampling interval is the honest uncertainty).
- optional per-target weighting: the per-spectrum terms are averaged with weights 1 / (spectra of the target), so
  each target counts once (an approximation: the neighbour counts still use all spectra).

Example
-------
>>> mi_ksg(x, y, k=3)                     # doctest: +SKIP
0.51
"""

import warnings

import numpy as np
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from scipy.spatial import cKDTree
from scipy.special import digamma

STUDY_BINS = (5, 10, 20, 40, 80, 160)


def rank_uniform(x, rng):
    """Ranks of ``x`` with random tie-breaking, plus U(0, 1) jitter, over n: values in [0, 1), no ties."""
    x = np.asarray(x)
    n = x.size
    order = np.lexsort((rng.random(n), x))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    return (ranks + rng.random(n)) / n


def _count_closer(sorted_values, centres, eps):
    """Number of sorted values v with |v - centre| < eps (strict; the centre itself included when present).

    The float sums ``centre +- eps`` can round across a neighbour, so the two bounds are corrected by one place
    with the exact differences, as a tree query on differences would count.
    """
    n = sorted_values.size
    hi = np.searchsorted(sorted_values, centres + eps, side="left")
    step = (hi > 0) & (sorted_values[np.maximum(hi - 1, 0)] - centres >= eps)
    hi = hi - step + ((hi < n) & (sorted_values[np.minimum(hi, n - 1)] - centres < eps) & ~step)
    lo = np.searchsorted(sorted_values, centres - eps, side="right")
    step = (lo < n) & (centres - sorted_values[np.minimum(lo, n - 1)] >= eps)
    lo = lo + step - ((lo > 0) & (centres - sorted_values[np.maximum(lo - 1, 0)] < eps) & ~step)
    return hi - lo


def _mean(terms, weights):
    return terms.mean() if weights is None else np.average(terms, weights=weights)


def ksg_uniform(u, v, k=3, weights=None, u_sorted=None, v_sorted=None):
    """KSG estimator 1 (nats) for tie-free samples ``u``, ``v`` (e.g. from ``rank_uniform``)."""
    n = u.size
    if n <= k:
        return np.nan
    points = np.column_stack((u, v))
    eps = cKDTree(points).query(points, k=k + 1, p=np.inf)[0][:, k]
    nx = _count_closer(np.sort(u) if u_sorted is None else u_sorted, u, eps) - 1
    ny = _count_closer(np.sort(v) if v_sorted is None else v_sorted, v, eps) - 1
    return float(digamma(k) + digamma(n) - _mean(digamma(nx + 1.0) + digamma(ny + 1.0), weights))


def mixed_uniform(u, codes, k=3, weights=None):
    """Ross (2014) estimator (nats) for a tie-free continuous sample ``u`` and integer labels ``codes`` >= 0."""
    counts = np.bincount(codes)
    keep = counts[codes] > 1
    if keep.sum() <= k:
        return np.nan
    u, codes = u[keep], codes[keep]
    order = np.lexsort((u, codes))
    us, cs = u[order], codes[order]
    n = us.size
    dist = np.full((n, 2 * k), np.inf)
    for offset in range(1, min(k, n - 1) + 1):
        gap = np.where(cs[offset:] == cs[:-offset], us[offset:] - us[:-offset], np.inf)
        dist[:-offset, offset - 1] = gap             # neighbour `offset` places above in the class
        dist[offset:, k + offset - 1] = gap          # neighbour `offset` places below
    dist.sort(axis=1)
    class_size = counts[cs]
    kk = np.minimum(k, class_size - 1)
    m = _count_closer(np.sort(us), us, dist[np.arange(n), kk - 1])   # includes the point itself, as scikit-learn
    w = None if weights is None else weights[keep][order]
    return float(digamma(n) + _mean(digamma(kk) - digamma(class_size) - digamma(m), w))


def mi_ksg(x, y, k=3, seed=0, weights=None):
    """KSG mutual information (nats) of two 1-D continuous arrays, on their ranks; non-finite pairs dropped."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    rng = np.random.default_rng(seed)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
    return ksg_uniform(rank_uniform(x[keep], rng), rank_uniform(y[keep], rng), k, w)


def mi_mixed(x, labels, k=3, seed=0, weights=None):
    """Ross (2014) mutual information (nats) of a continuous array and discrete labels (any dtype)."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.isfinite(x)
    codes = np.unique(np.asarray(labels)[keep], return_inverse=True)[1]
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
    return mixed_uniform(rank_uniform(x[keep], np.random.default_rng(seed)), codes, k, w)


def _entropy_counts(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def mi_discrete(a, b):
    """Plug-in mutual information (nats) of two label arrays with the Miller-Madow correction."""
    a = np.unique(np.asarray(a), return_inverse=True)[1]
    b = np.unique(np.asarray(b), return_inverse=True)[1]
    joint = np.bincount(a * (b.max() + 1) + b)
    ca, cb = np.bincount(a), np.bincount(b)
    plugin = _entropy_counts(ca) + _entropy_counts(cb) - _entropy_counts(joint)
    occupied = (ca > 0).sum() + (cb > 0).sum() - (joint > 0).sum() - 1
    return plugin + occupied / (2.0 * a.size)


def entropy_discrete(a):
    """Plug-in entropy (nats) of a label array with the Miller-Madow correction."""
    counts = np.bincount(np.unique(np.asarray(a), return_inverse=True)[1])
    return _entropy_counts(counts) + ((counts > 0).sum() - 1) / (2.0 * counts.sum())


def plugin_mi(hist):
    """Plug-in mutual information (nats) of a joint histogram (the study's ``mutual_information``)."""
    pxy = hist / float(hist.sum())
    px, py = pxy.sum(axis=1), pxy.sum(axis=0)
    nz = pxy > 0
    return float(np.sum(pxy[nz] * np.log(pxy[nz] / (px[:, None] * py[None, :])[nz])))


def ksg_null(n, k, n_permutations, seed):
    """KSG values (nats) of ``n_permutations`` independent uniform pairs of size n (the null on ranks)."""
    rng = np.random.default_rng([seed, n, k])
    return np.array([ksg_uniform(rng.random(n), rng.random(n), k) for _ in range(n_permutations)])


def mixed_null(codes, k, n_permutations, seed):
    """Ross-estimator values (nats) of uniform samples independent of ``codes`` (same label counts)."""
    rng = np.random.default_rng([seed, codes.size, k])
    return np.array([mixed_uniform(rng.random(codes.size), codes, k) for _ in range(n_permutations)])


class LatentRanks:
    """Rank-uniform latent columns (and their sorted copies) over a row set, computed when first asked."""

    def __init__(self, z, seed):
        self.z, self.seed, self._rows, self._cache = z, seed, None, {}

    def column(self, rows, i):
        if self._rows is None or not np.array_equal(rows, self._rows):
            self._rows, self._cache = rows, {}
        if i not in self._cache:
            ranked = rank_uniform(self.z[rows, i], np.random.default_rng([self.seed, 1, i]))
            self._cache[i] = (ranked, np.sort(ranked))
        return self._cache[i]


def latent_factor_mi(z, factors, *, k=3, seed=0, rows=None, weights=None, pairs=None):
    """(L, K) mutual information (nats) of each latent with each factor (KSG or Ross estimator on ranks).

    ``rows``: row indices to use (default all); each factor uses the rows where it is known.
    ``weights``: optional per-row weights (per-target weighting). ``pairs``: optional (L, K) bool, the pairs to
    compute (the others are NaN). Returns ``(mi, n)`` with ``n`` the rows used per factor.
    """
    z = np.asarray(z, dtype=np.float64)
    rows = np.arange(z.shape[0]) if rows is None else np.asarray(rows)
    ranks = LatentRanks(z, seed)
    mi = np.full((z.shape[1], len(factors)), np.nan)
    n = np.zeros(len(factors), dtype=np.int64)
    for j, factor in enumerate(factors):
        use = rows[factor.known[rows]]
        n[j] = use.size
        wanted = np.arange(z.shape[1]) if pairs is None else np.flatnonzero(pairs[:, j])
        if wanted.size == 0 or use.size <= k:
            continue
        w = None if weights is None else weights[use]
        if factor.discrete:
            codes = np.unique(factor.values[use], return_inverse=True)[1]
            for i in wanted:
                mi[i, j] = mixed_uniform(ranks.column(use, i)[0], codes, k, w)
        else:
            v = rank_uniform(factor.values[use], np.random.default_rng([seed, 2, j]))
            vs = np.sort(v)
            for i in wanted:
                u, us = ranks.column(use, i)
                mi[i, j] = ksg_uniform(u, v, k, w, us, vs)
    return mi, n


def null_distribution(factor, rows, *, k, n_permutations, seed):
    """Null values (nats) of the latent-factor estimator for this factor over ``rows`` (where it is known)."""
    use = rows[factor.known[rows]]
    if factor.discrete:
        return mixed_null(np.unique(factor.values[use], return_inverse=True)[1], k, n_permutations, seed)
    return ksg_null(use.size, k, n_permutations, seed)


def factor_mi_matrix(factors, *, k=3, seed=0):
    """(K, K) mutual information (nats) between factors, over the rows where both are known.

    Diagonal: Miller-Madow entropy for discrete factors, NaN (infinite) for continuous ones.
    """
    K = len(factors)
    out = np.full((K, K), np.nan)
    for a in range(K):
        fa = factors[a]
        if fa.discrete:
            out[a, a] = entropy_discrete(fa.values[fa.known])
        for b in range(a + 1, K):
            fb = factors[b]
            both = fa.known & fb.known
            if both.sum() <= k:
                continue
            xa, xb = fa.values[both], fb.values[both]
            if fa.discrete and fb.discrete:
                value = mi_discrete(xa, xb)
            elif fa.discrete or fb.discrete:
                cont, labels = (xb, xa) if fa.discrete else (xa, xb)
                value = mi_mixed(cont, labels, k, seed=[seed, a, b])
            else:
                value = mi_ksg(xa, xb, k, seed=[seed, a, b])
            out[a, b] = out[b, a] = value
    return out


def study_indicator(z, label, bins=STUDY_BINS):
    """The study's MI indicator for one numeric label.

    Returns ``(indicator, plugin_nats, n)``: (len(bins), L) arrays (indicator = plug-in MI over its maximum over
    latents, NaN where that maximum is 0) and the number of spectra kept after the NaN drop and 5-sigma clip.
    """
    z = np.asarray(z, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)   # "Input data contains invalid values"
        clipped = sigma_clip(label, sigma=5, masked=True)
    keep = np.isfinite(label) & ~np.ma.getmaskarray(clipped)
    y, zk = label[keep], z[keep]
    plugin = np.full((len(bins), z.shape[1]), np.nan)
    if keep.sum() >= 2:
        for b, nbins in enumerate(bins):
            for i in range(z.shape[1]):
                plugin[b, i] = plugin_mi(np.histogram2d(zk[:, i], y, bins=[nbins, nbins])[0])
    top = np.max(plugin, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        indicator = np.where(top > 0, plugin / top, np.nan)
    return indicator, plugin, int(keep.sum())
