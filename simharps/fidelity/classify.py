"""Classifier two-sample test: can a linear model on PCA features tell real spectra from their simulated twins?

Model: PCA (``n_components``, fitted on the training folds only; exact, from the eigenvectors of the n x n Gram
matrix of the centred spectra, since spectra are far fewer than bins) -> standardised scores -> L2 logistic
regression (scikit-learn, C = 1). Cross-validation is grouped by observing night (``GroupKFold``; a real spectrum
and its twin share the night), so nothing of a test night is seen in training. The statistic is the ROC AUC of the
out-of-fold scores: 0.5 = indistinguishable, 1 = always told apart. Interval: the 2.5-97.5 % percentiles of the
AUC over ``n_boot`` bootstrap resamples of the nights (with replacement), plus the spread over folds.

Pixels it relies on: the model refitted on all spectra; its coefficients in the standardised PCA space mapped back
to the input bins, ``w = V^T (beta / s)`` (V the PCA components, s the score scales): a change of the normalised
flux by ``dx`` moves the logit by ``w . dx``. Positive weight: higher flux reads as "real".

Example
-------
>>> result = two_sample_test(real_n, twin_n, nights, nights, n_components=20, seed=1)
>>> result.auc, result.ci_low, result.ci_high, result.weights
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from simharps.errors import ParameterError


@dataclass
class ClassifierResult:
    """AUC with its night-bootstrap interval, per-fold AUCs, out-of-fold scores and the pixel weight map."""

    auc: float
    ci_low: float
    ci_high: float
    fold_aucs: list
    scores: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    n_components: int
    n_splits: int
    n_pixels: int

    def to_dict(self):
        return {"auc": self.auc, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "fold_auc_min": float(np.min(self.fold_aucs)), "fold_auc_max": float(np.max(self.fold_aucs)),
                "fold_aucs": [float(a) for a in self.fold_aucs], "n_components": self.n_components,
                "n_splits": self.n_splits, "n_pixels": self.n_pixels, "n_spectra": int(self.labels.size)}


class GramPCA:
    """PCA of n spectra x m bins through the n x n Gram matrix: ``fit`` sets ``mean_``, ``components_`` (k, m,
    orthonormal rows) and ``scale_`` (the standard deviation of each component's training scores)."""

    def __init__(self, n_components):
        self.n_components = n_components

    def fit(self, features):
        self.mean_ = features.mean(axis=0)
        centred = features - self.mean_
        values, vectors = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(values)[::-1][:self.n_components]
        values, vectors = np.clip(values[order], 1e-300, None), vectors[:, order]
        self.components_ = (vectors.T @ centred) / np.sqrt(values)[:, None]
        self.scale_ = np.sqrt(values / features.shape[0])
        return self

    def transform(self, features):
        """Standardised scores (n, k)."""
        return ((features - self.mean_) @ self.components_.T) / self.scale_


def _fit(features, labels, n_components, seed):
    pca = GramPCA(n_components).fit(features)
    logistic = LogisticRegression(C=1.0, max_iter=5000, random_state=seed).fit(pca.transform(features), labels)
    return pca, logistic


def two_sample_test(set_a, set_b, groups_a, groups_b, *, n_components=20, n_splits=5, n_boot=1000, seed=0):
    """Grouped-CV logistic regression telling ``set_a`` (label 1, e.g. real) from ``set_b`` (label 0).

    ``set_a``/``set_b``: (n_a, m) and (n_b, m) features (bins not finite in every spectrum are dropped; their
    weight is NaN); ``groups_*``: the night of each spectrum. Returns a ``ClassifierResult``.
    """
    features, labels, groups, valid = stack_sets(set_a, set_b, groups_a, groups_b, "the classifier test")
    n_splits = min(n_splits, np.unique(groups).size)
    scores = np.full(labels.size, np.nan)
    fold_aucs = []
    for train, test in GroupKFold(n_splits=n_splits).split(features, labels, groups):
        pca, logistic = _fit(features[train], labels[train], min(n_components, train.size - 1), seed)
        scores[test] = logistic.decision_function(pca.transform(features[test]))
        if np.unique(labels[test]).size == 2:
            fold_aucs.append(roc_auc(labels[test], scores[test]))
    auc = float(roc_auc(labels, scores))
    low, high = _night_bootstrap(labels, scores, groups, n_boot, seed)
    k = min(n_components, labels.size - 1)
    pca, logistic = _fit(features, labels, k, seed)
    weights = np.full(valid.size, np.nan)
    weights[valid] = pca.components_.T @ (logistic.coef_[0] / pca.scale_)
    return ClassifierResult(auc, low, high, fold_aucs, scores, labels, weights, k, n_splits, int(valid.sum()))


def stack_sets(set_a, set_b, groups_a, groups_b, test_name):
    """(features on the bins finite in every spectrum, labels 1/0, groups, the valid-bin mask); ParameterError
    naming ``test_name`` for fewer than 2 groups or 2 valid bins."""
    features = np.vstack([np.asarray(set_a, float), np.asarray(set_b, float)])
    labels = np.r_[np.ones(len(set_a), int), np.zeros(len(set_b), int)]
    groups = np.r_[np.asarray(groups_a), np.asarray(groups_b)]
    valid = np.all(np.isfinite(features), axis=0)
    features = features[:, valid]
    n_groups = np.unique(groups).size
    if n_groups < 2 or features.shape[1] < 2:
        raise ParameterError(f"{test_name} needs >= 2 nights and >= 2 valid bins, got {n_groups} night(s), "
                             f"{features.shape[1]} bin(s)")
    return features, labels, groups, valid


def roc_auc(labels, scores):
    """ROC AUC of ``scores`` for binary ``labels`` (Mann-Whitney U / (n_1 n_0), ties at half weight)."""
    labels = np.asarray(labels)
    positive = labels == 1
    n_1, n_0 = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_1 * (n_1 + 1) / 2.0) / (n_1 * n_0))


def _night_bootstrap(labels, scores, groups, n_boot, seed):
    """2.5 and 97.5 % percentiles of the AUC over resamples of whole nights (with replacement)."""
    rng = np.random.default_rng(seed)
    nights = np.unique(groups)
    members = [np.flatnonzero(groups == night) for night in nights]
    values = []
    for _ in range(n_boot):
        pick = np.concatenate([members[i] for i in rng.integers(0, nights.size, nights.size)])
        if np.unique(labels[pick]).size == 2:
            values.append(roc_auc(labels[pick], scores[pick]))
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
