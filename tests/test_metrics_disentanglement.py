"""Known answers for MIG, modularity, SAP, DCI and probes (analysis.metrics.disentanglement)."""

import math

import numpy as np
import pytest

from analysis.metrics import dci, dci_from_importance, informative_latents, mig, modularity, sap
from analysis.metrics.disentanglement import histogram_mi, linear_probe_scores, modularity_from_mi, sap_scores

# Fixed small input, values derived by hand from the definitions (bins = 2: edges [0, 0.5, 1] for every column).
#   z1 = [0, .1, .9, 1] -> codes [0, 0, 1, 1];  z2 = [0, 1, 1, 1] -> codes [0, 1, 1, 1]
#   v1 = [0, 0, 1, 1];  v2 = [0, 1, 0, 1]  (H(v1) = H(v2) = ln 2)
# MI(z1; v1) = ln 2 (same partition); MI(z1; v2) = 0 (each cell once);
# MI(z2; v1) = MI(z2; v2) = a = 1/4 ln 2 + 1/4 ln(2/3) + 1/2 ln(4/3) = 0.215762 nats
#   (cells (0,0): 1/4, (1,0): 1/4, (1,1): 1/2; p(z2) = (1/4, 3/4), p(v) = (1/2, 1/2)).
# MIG: v1 gap (ln 2 - a) / ln 2, v2 gap (a - 0) / ln 2 -> mean = 1/2 exactly.
# Modularity: z1 has m = (ln 2, 0): delta = 0, score 1; z2 has m = (a, a): delta = a^2 / a^2 = 1, score 0 -> 1/2.
# SAP (continuous factors, R^2 = cov^2 / (var z var v), ddof cancels):
#   R^2(z1, v1) = 0.9^2 / (0.82 * 1) = 81/82, R^2(z1, v2) = 0.1^2 / 0.82 = 1/82,
#   R^2(z2, v1) = R^2(z2, v2) = 0.5^2 / (0.75 * 1) = 1/3
#   gaps: v1 81/82 - 1/3, v2 1/3 - 1/82 -> SAP = (80/82) / 2 = 40/82 = 0.487805.
Z_HAND = np.array([[0.0, 0.0], [0.1, 1.0], [0.9, 1.0], [1.0, 1.0]])
V_HAND = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
A_HAND = 0.25 * math.log(2) + 0.25 * math.log(2 / 3) + 0.5 * math.log(4 / 3)

# DCI from a given importance matrix R (3 latents x 2 factors); total 2, row shares (0.4, 0.25, 0.35),
# column shares (0.5, 0.5):
#   D rows (entropy base 2): (1, 0) -> 1; (0.2, 0.8) -> 1 - 0.721928 = 0.278072; (1/7, 6/7) -> 1 - 0.591673 = 0.408327
#   D = 0.4 * 1 + 0.25 * 0.278072 + 0.35 * 0.408327 = 0.612432
#   C columns (base 3): (0.8, 0.1, 0.1) -> 1 - 0.581673 = 0.418327; (0, 0.4, 0.6) -> 1 - 0.612602 = 0.387398
#   C = 0.5 * 0.418327 + 0.5 * 0.387398 = 0.402863
R_HAND = np.array([[0.8, 0.0], [0.1, 0.4], [0.1, 0.6]])


def test_hand_derived_values():
    assert histogram_mi(Z_HAND, V_HAND, bins=2)[0] == pytest.approx(
        np.array([[math.log(2), 0.0], [A_HAND, A_HAND]]), abs=1e-12)
    assert A_HAND == pytest.approx(0.215762, abs=1e-6)
    assert mig(Z_HAND, V_HAND, bins=2) == pytest.approx(0.5, abs=1e-12)
    assert mig(Z_HAND, V_HAND.astype(float), bins=2) == pytest.approx(0.5, abs=1e-12)   # binned the same way
    assert modularity(Z_HAND, V_HAND, bins=2) == pytest.approx(0.5, abs=1e-12)
    assert sap(Z_HAND, V_HAND.astype(float)) == pytest.approx(40 / 82, abs=1e-12)
    d, c = dci_from_importance(R_HAND)
    assert d == pytest.approx(0.612432, abs=1e-6)
    assert c == pytest.approx(0.402863, abs=1e-6)


def test_dci_from_importance_limits():
    assert dci_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert dci_from_importance(np.zeros((3, 2))) == pytest.approx((0.0, 0.0), abs=1e-12)
    # one latent carrying two factors equally, the other idle: D = 1 - H_2(1/2, 1/2) = 0, C = 1
    assert dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx((0.0, 1.0))


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    n = 2000
    v = rng.random((n, 3))
    groups = np.repeat(np.arange(200), 10)
    return rng, v, groups


def test_perfect_latents_score_near_maximum(factors):
    rng, v, groups = factors
    z = v[:, [2, 0, 1]] + 1e-4 * rng.normal(size=v.shape)        # permuted, small noise
    assert mig(z, v) > 0.9
    assert modularity(z, v) > 0.99
    assert sap(z, v) > 0.99
    result = dci(z, v, groups=groups)
    assert result["disentanglement"] > 0.95 and result["completeness"] > 0.95
    assert result["informativeness"] > 0.99
    assert np.argmax(result["importance"], axis=0).tolist() == [1, 2, 0]
    assert linear_probe_scores(z, v, groups=groups).mean(axis=1) == pytest.approx(np.ones(3), abs=1e-3)


def test_noise_latents_score_near_zero(factors):
    rng, v, groups = factors
    z = rng.normal(size=(v.shape[0], 4))
    assert mig(z, v) < 0.02
    assert sap(z, v) < 0.01
    assert dci(z, v, groups=groups)["informativeness"] < 0.05


def test_mixing_latent_is_penalised(factors):
    rng, v, groups = factors
    z = np.column_stack([v[:, 0] + v[:, 1], v[:, 2], rng.normal(size=v.shape[0])])
    per_latent = modularity_from_mi(histogram_mi(z, v)[0])
    # the mixing latent shares its MI between two factors: delta ~ a^2 / (a^2 (K - 1)) = 1/2
    assert per_latent[0] == pytest.approx(0.5, abs=0.1)
    assert per_latent[1] > 0.95
    assert mig(z, v) < 0.5                                       # factors 0 and 1 have no dedicated latent
    scores = sap_scores(z, v)
    assert scores[0, 0] == pytest.approx(0.5, abs=0.05)           # R^2 of v0 from v0 + v1 (equal variances)
    result = dci(z, v, groups=groups)
    assert result["disentanglement"] < 0.8
    # its importance row splits over factors 0 and 1: D_row = 1 - H_3(1/2, 1/2, 0) = 1 - ln 2 / ln 3 = 0.369
    row = result["importance"][0] / result["importance"][0].sum()
    assert row[:2] == pytest.approx([0.5, 0.5], abs=0.1)


def test_discrete_conventions():
    rng = np.random.default_rng(1)
    n = 1500
    labels = rng.integers(0, 3, n)                              # integer -> discrete
    z = np.column_stack([labels + 0.01 * rng.normal(size=n), rng.normal(size=n)])
    v = labels[:, None]
    h = histogram_mi(z, v)
    assert h[1][0] == pytest.approx(-np.sum(np.bincount(labels) / n * np.log(np.bincount(labels) / n)))
    assert mig(z, v) > 0.95
    # held-out one-latent LinearSVC accuracy: ~1 for the label latent, ~1/3 (chance) for the noise latent
    scores = sap_scores(z, v, groups=np.arange(n) // 5)
    assert scores[0, 0] > 0.99 and scores[1, 0] < 0.45
    # a boolean list overrides the dtype rule: float labels treated as discrete give the same MIG
    assert mig(z, v.astype(float), discrete=[True]) == pytest.approx(mig(z, v))
    result = dci(z, v, groups=np.arange(n) // 5)
    assert result["informativeness"] > 0.99                    # accuracy of the boosted classifier


def test_missing_factor_values_use_known_rows(factors):
    rng, v, groups = factors
    z = v[:, [0, 1]] + 1e-4 * rng.normal(size=(v.shape[0], 2))
    w = v[:, :2].copy()
    w[::3, 1] = np.nan
    assert mig(z, w) > 0.9
    assert sap(z, w) > 0.99


def test_informative_latents_use_mad():
    rng = np.random.default_rng(2)
    z = np.column_stack([rng.normal(0, 1, 1000), rng.normal(0, 0.01, 1000), np.zeros(1000)])
    assert informative_latents(z).tolist() == [True, False, False]
