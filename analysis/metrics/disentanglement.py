"""Disentanglement scores as disentanglement_lib defines them, and probes. ``z``: latents (n, L); ``v``: factors
(n, K); MI in nats.

``discrete=None``: an integer, bool or text ``v`` is discrete, a float ``v`` continuous; a bool or a list of bools
(one per factor) overrides. Float NaN marks a missing factor value; each factor uses the rows where it is known.

- Discretisation (MIG, modularity): every latent into ``bins`` (20) equal-width bins of its min-max range
  (``np.histogram`` edges, ``np.digitize`` on the left edges, as disentanglement_lib's histogram discretizer);
  continuous factors are discretised the same way (so H(factor) depends on ``bins``), discrete ones keep their
  labels. MI and entropies are plug-in values of the contingency tables (``sklearn.metrics.mutual_info_score``).
- MIG (Chen et al. 2018): mean over factors of (largest - second largest MI over latents) / H(factor); factors
  with H = 0 are left out; with one latent the second largest is 0.
- Modularity (Ridgeway & Mozer 2018): per latent, 1 - sum_{j != argmax} m_j^2 / (max_j m_j^2 (K - 1)); a latent
  with zero MI with every factor scores 0; with K = 1 every latent with MI > 0 scores 1; mean over latents.
- SAP (Kumar et al. 2018): score matrix per (latent, factor): continuous factor R^2 = cov^2 / (var_z var_v)
  (ddof 1, 0 when var_z <= 1e-12); discrete factor: held-out accuracy of ``LinearSVC(C=0.01,
  class_weight="balanced")`` on that one latent, trained on half the rows (half the groups when given). Deviation:
  the latent is standardised on the training half first, so the score does not depend on the latent's scale
  (disentanglement_lib does not; its latents are unit-scale VAE means). SAP = mean over factors of the gap between
  the two largest scores.
- DCI (Eastwood & Williams 2018): one gradient-boosted model per factor (``HistGradientBoostingRegressor`` for a
  continuous factor, ``...Classifier`` for a discrete one; 100 iterations, learning rate 0.1, 15 leaves, no early
  stopping) on grouped K-fold splits; importance = total split gain per latent (the analogue of
  ``feature_importances_``), normalised per factor and fold, averaged over folds. Disentanglement =
  sum_i rho_i (1 - H_K(P_i.)), completeness = sum_j rho_j (1 - H_L(P_.j)) with row / column shares rho (weights as
  disentanglement_lib dci.py); informativeness = mean over factors of the held-out R^2 (continuous) or accuracy
  (discrete; disentanglement_lib calls it "error" but computes accuracy).
- Probes: per factor, held-out R^2 (accuracy for discrete) on the same folds: linear = ``Ridge(alpha=1)`` on
  standardised latents (``LogisticRegression`` for discrete), non-linear = the DCI model.

MIG, modularity, SAP and DCI disentanglement/completeness assume independent factors: with correlated factors
(Teff-logg, snr-vmag, berv-date) a latent that follows one also carries information on the others and is penalised.
Only rank-invariant scores (MIG, modularity, with their histograms' limits) keep their value under monotone warps of
the latents; SAP, linear probes and DCI informativeness do not.
"""

import numpy as np
from scipy.stats import median_abs_deviation
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

INFORMATIVE_MAD = 0.02
VAR_FLOOR = 1e-12
HGB_OPTIONS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15, "early_stopping": False}


def informative_latents(z, threshold=INFORMATIVE_MAD):
    """Bool (L,): median absolute deviation (scipy default scale 1.0) above ``threshold``, as the study."""
    return median_abs_deviation(np.asarray(z, dtype=np.float64), axis=0) > threshold


def discrete_flags(v, discrete=None):
    """One bool per factor column, per the module's ``discrete`` convention."""
    v = np.asarray(v)
    k = v.shape[1]
    if discrete is None:
        return [v.dtype.kind in "biuUSO"] * k
    if isinstance(discrete, (bool, np.bool_)):
        return [bool(discrete)] * k
    flags = [bool(d) for d in discrete]
    if len(flags) != k:
        raise ValueError(f"discrete has {len(flags)} entries for {k} factors")
    return flags


def discretize(x, bins):
    """Codes 0..bins-1 of equal-width bins over the min-max of ``x`` (disentanglement_lib's convention)."""
    return np.digitize(x, np.histogram(x, bins)[1][:-1]) - 1


def _known(column):
    return np.isfinite(column) if column.dtype.kind == "f" else np.ones(column.size, bool)


def _factor(v, j, flag, bins=None):
    """(rows, values) of factor j where known; discrete labels as codes, continuous binned when ``bins``."""
    column = np.asarray(v)[:, j]
    if column.dtype.kind == "O":
        column = column.astype(float) if not flag else column.astype(str)
    rows = np.flatnonzero(_known(column))
    values = column[rows]
    if flag:
        return rows, np.unique(values, return_inverse=True)[1]
    values = values.astype(np.float64)
    return rows, (discretize(values, bins) if bins else values)


def _plugin_entropy(counts, axis=-1):
    n = counts.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(counts > 0, counts / n, 1.0)
    return -(np.where(counts > 0, p * np.log(p), 0.0)).sum(axis=axis)


def histogram_mi(z, v, bins=20, discrete=None):
    """(L, K) plug-in MI of binned latents and (binned) factors, and (K,) factor entropies (nats)."""
    z = np.asarray(z, dtype=np.float64)
    flags = discrete_flags(v, discrete)
    n_latent = z.shape[1]
    codes = np.column_stack([discretize(z[:, i], bins) for i in range(n_latent)])
    offsets = (np.arange(n_latent) * bins)[None, :]
    mi = np.zeros((n_latent, len(flags)))
    entropy = np.zeros(len(flags))
    for j, flag in enumerate(flags):
        rows, labels = _factor(v, j, flag, bins)
        if rows.size == 0:
            mi[:, j], entropy[j] = np.nan, np.nan
            continue
        n_labels = labels.max() + 1
        index = (codes[rows] + offsets) * n_labels + labels[:, None]
        joint = np.bincount(index.ravel(), minlength=n_latent * bins * n_labels).reshape(n_latent, bins, n_labels)
        h_z = _plugin_entropy(joint.sum(axis=2))
        h_v = _plugin_entropy(joint[0].sum(axis=0))
        mi[:, j] = h_z + h_v - _plugin_entropy(joint.reshape(n_latent, -1))
        entropy[j] = h_v
    return np.maximum(mi, 0.0), entropy


def mig_from_mi(mi, entropy):
    """MIG from an (L, K) MI matrix and (K,) factor entropies."""
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros(top.shape[1])
    use = entropy > 0
    return float(np.mean((top[0, use] - second[use]) / entropy[use])) if use.any() else np.nan


def mig(z, v, bins=20, discrete=None):
    """Mutual information gap (Chen et al. 2018) in [0, 1]."""
    return mig_from_mi(*histogram_mi(z, v, bins, discrete))


def modularity_from_mi(mi):
    """Per-latent modularity (L,) from an (L, K) MI matrix."""
    squared = np.square(mi)
    top = squared.max(axis=1)
    if mi.shape[1] == 1:
        return np.where(top > 0, 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (mi.shape[1] - 1))
    return np.where(top > 0, 1.0 - delta, 0.0)


def modularity(z, v, bins=20, discrete=None):
    """Modularity (Ridgeway & Mozer 2018), mean over latents, in [0, 1]."""
    return float(modularity_from_mi(histogram_mi(z, v, bins, discrete)[0]).mean())


def _half_split(n, groups, seed):
    splitter = (ShuffleSplit(1, test_size=0.5, random_state=seed) if groups is None
                else GroupShuffleSplit(1, test_size=0.5, random_state=seed))
    return next(splitter.split(np.zeros(n), groups=groups))


def sap_scores(z, v, discrete=None, groups=None, seed=0):
    """(L, K) SAP score matrix (R^2 or held-out one-latent LinearSVC accuracy)."""
    z = np.asarray(z, dtype=np.float64)
    flags = discrete_flags(v, discrete)
    scores = np.zeros((z.shape[1], len(flags)))
    for j, flag in enumerate(flags):
        rows, y = _factor(v, j, flag)
        zr = z[rows]
        var_z = zr.var(axis=0, ddof=1)
        if not flag:
            zc, yc = zr - zr.mean(axis=0), y - y.mean()
            cov = zc.T @ yc / (rows.size - 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = cov ** 2 / (var_z * yc.var(ddof=1))
            scores[:, j] = np.where(var_z > VAR_FLOOR, r2, 0.0)
            continue
        train, test = _half_split(rows.size, None if groups is None else np.asarray(groups)[rows], seed)
        if np.unique(y[train]).size < 2:
            scores[:, j] = np.nan
            continue
        for i in np.flatnonzero(var_z > VAR_FLOOR):
            x = zr[:, i]
            scale = x[train].std()
            if scale <= 0:
                continue
            x = ((x - x[train].mean()) / scale)[:, None]
            svc = LinearSVC(C=0.01, class_weight="balanced").fit(x[train], y[train])
            scores[i, j] = np.mean(svc.predict(x[test]) == y[test])
    return scores


def sap_from_scores(scores):
    """SAP from an (L, K) score matrix: mean over factors of the top-two gap over latents."""
    top = np.sort(scores, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros(top.shape[1])
    gaps = top[0] - second
    return float(np.nanmean(gaps)) if np.isfinite(gaps).any() else np.nan


def sap(z, v, discrete=None, groups=None, seed=0):
    """Separated attribute predictability (Kumar et al. 2018) in [0, 1]."""
    return sap_from_scores(sap_scores(z, v, discrete, groups, seed))


def _normalised_entropy(p, axis):
    """Entropy of the distributions along ``axis`` in units of log(size along axis); 0 log 0 = 0."""
    size = p.shape[axis]
    if size < 2:
        return np.zeros(p.shape[1 - axis])
    total = p.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(total > 0, p / total, 1.0 / size)
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=axis) / np.log(size)


def dci_from_importance(R):
    """(disentanglement, completeness) of an (L, K) non-negative importance matrix (disentanglement_lib)."""
    R = np.abs(np.asarray(R, dtype=np.float64))
    weights = R if R.sum() > 0 else np.ones_like(R)
    code_share = weights.sum(axis=1) / weights.sum()
    factor_share = weights.sum(axis=0) / weights.sum()
    disentanglement = np.sum(code_share * (1.0 - _normalised_entropy(R, axis=1)))
    completeness = np.sum(factor_share * (1.0 - _normalised_entropy(R, axis=0)))
    return float(disentanglement), float(completeness)


def grouped_folds(n, groups=None, n_folds=5, seed=0):
    """List of (train, test) index arrays: GroupKFold over ``groups`` (KFold when None); [] when impossible."""
    if groups is None:
        if n < 2:
            return []
        return list(KFold(min(n_folds, n), shuffle=True, random_state=seed).split(np.zeros(n)))
    groups = np.asarray(groups)
    n_groups = np.unique(groups).size
    if n_groups < 2:
        return []
    return list(GroupKFold(min(n_folds, n_groups)).split(np.zeros(n), groups=groups))


def gain_importance(model, n_features):
    """Total split gain per feature of a fitted HistGradientBoosting model, normalised to sum 1 (0 if no split)."""
    gain = np.zeros(n_features)
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            np.add.at(gain, nodes["feature_idx"], np.maximum(nodes["gain"], 0.0))
    total = gain.sum()
    return gain / total if total > 0 else gain


def _fold_rows(folds, rows, n):
    """The folds (indices into n rows) restricted to ``rows``, as positions within ``rows``."""
    position = np.full(n, -1)
    position[rows] = np.arange(rows.size)
    return [(position[train][position[train] >= 0], position[test][position[test] >= 0]) for train, test in folds]


def _fit_scores(z, y, flag, folds, seed):
    """Per fold: (held-out score, gain importance) of the boosted model, or (nan, None) when it cannot fit."""
    out = []
    for train, test in folds:
        if train.size < 2 or test.size == 0 or (flag and np.unique(y[train]).size < 2):
            out.append((np.nan, None))
            continue
        kind = HistGradientBoostingClassifier if flag else HistGradientBoostingRegressor
        with threadpool_limits(1):      # OpenMP threads on a shared 2-core machine run several times slower
            model = kind(random_state=seed, **HGB_OPTIONS).fit(z[train], y[train])
            score = model.score(z[test], y[test]) if (flag or test.size > 1) else np.nan
        out.append((float(score), gain_importance(model, z.shape[1])))
    return out


def finite_mean(x, axis, empty=np.nan):
    """Mean of the finite values along ``axis`` (``empty`` where there is none)."""
    finite = np.isfinite(x)
    count = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), empty)


def dci(z, v, discrete=None, groups=None, seed=0, n_folds=5):
    """DCI (Eastwood & Williams 2018) with gradient-boosted trees on grouped folds.

    Returns a dict: ``disentanglement``, ``completeness``, ``informativeness`` (floats), ``importance`` (L, K),
    ``scores`` (K, F) held-out score per factor and fold, ``fold_disentanglement`` / ``fold_completeness`` (F,).
    """
    z = np.asarray(z, dtype=np.float64)
    flags = discrete_flags(v, discrete)
    folds = grouped_folds(z.shape[0], groups, n_folds, seed)
    n_folds = len(folds)
    importance = np.full((n_folds, z.shape[1], len(flags)), np.nan)
    scores = np.full((len(flags), n_folds), np.nan)
    for j, flag in enumerate(flags):
        rows, y = _factor(v, j, flag)
        if rows.size == 0 or n_folds == 0:
            continue
        for f, (score, gain) in enumerate(_fit_scores(z[rows], y, flag, _fold_rows(folds, rows, z.shape[0]), seed)):
            scores[j, f] = score
            if gain is not None:
                importance[f, :, j] = gain
    mean_importance = finite_mean(importance, axis=0, empty=0.0)          # folds that could not fit left out
    fold_dc = np.array([dci_from_importance(np.nan_to_num(imp)) for imp in importance]).reshape(-1, 2)
    d, c = dci_from_importance(mean_importance)
    per_factor = finite_mean(scores, axis=1)
    return {"disentanglement": d, "completeness": c, "informativeness": float(finite_mean(per_factor, axis=0)),
            "importance": mean_importance, "scores": scores,
            "fold_disentanglement": fold_dc[:, 0], "fold_completeness": fold_dc[:, 1]}


def linear_probe_scores(z, v, discrete=None, groups=None, seed=0, n_folds=5):
    """(K, F) held-out R^2 (accuracy for discrete factors) of linear models on standardised latents."""
    z = np.asarray(z, dtype=np.float64)
    flags = discrete_flags(v, discrete)
    folds = grouped_folds(z.shape[0], groups, n_folds, seed)
    scores = np.full((len(flags), len(folds)), np.nan)
    for j, flag in enumerate(flags):
        rows, y = _factor(v, j, flag)
        if rows.size == 0:
            continue
        zr = z[rows]
        for f, (train, test) in enumerate(_fold_rows(folds, rows, z.shape[0])):
            if train.size < 2 or test.size < (1 if flag else 2) or (flag and np.unique(y[train]).size < 2):
                continue
            mean, scale = zr[train].mean(axis=0), zr[train].std(axis=0)
            scale[scale <= 0] = 1.0
            x_train, x_test = (zr[train] - mean) / scale, (zr[test] - mean) / scale
            model = LogisticRegression(max_iter=1000) if flag else Ridge(alpha=1.0)
            scores[j, f] = model.fit(x_train, y[train]).score(x_test, y[test])
    return scores
