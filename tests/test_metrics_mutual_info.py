"""Known answers for the MI estimators and the study indicator (analysis.metrics.mutual_info)."""

import math

import numpy as np
import pytest
from sklearn.feature_selection._mutual_info import _compute_mi_cc, _compute_mi_cd

from analysis.metrics import mi_discrete, mi_ksg, mi_mixed, study_indicator
from analysis.metrics.factors import Factor
from analysis.metrics.mutual_info import ksg_null, ksg_uniform, latent_factor_mi, mixed_uniform, rank_uniform

# Stated KSG error (k = 3, on ranks) for correlated Gaussians, bias and scatter together: measured over 10 draws per
# case (rho 0.3-0.99) the scatter is 0.011-0.033 nats at N = 2,000 and 0.007-0.011 at N = 10,000 with |bias| below
# 0.02 and 0.011; the tolerances are 3x the larger scatter.
KSG_TOLERANCE_NATS = {2000: 0.10, 10000: 0.035}


@pytest.mark.parametrize("n", [2000, 10000])
@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9, 0.99])
def test_ksg_matches_gaussian_mi(n, rho):
    rng = np.random.default_rng(int(1000 * rho) + n)
    x, y = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n).T
    exact = -0.5 * math.log(1 - rho ** 2)
    assert mi_ksg(x, np.exp(3 * y), k=3) == pytest.approx(exact, abs=KSG_TOLERANCE_NATS[n])   # monotone warp


def test_ksg_equals_scikit_learn_on_the_same_points():
    rng = np.random.default_rng(3)
    u, v = rng.random(3000), rng.random(3000)
    v = 0.7 * u + 0.3 * v
    assert ksg_uniform(u, v, 3) == pytest.approx(_compute_mi_cc(u, v, 3), rel=1e-12)
    labels = rng.integers(0, 4, 3000)
    w = rng.random(3000) + 0.2 * labels
    assert mixed_uniform(w, labels, 3) == pytest.approx(_compute_mi_cd(w, labels, 3), rel=1e-12)


def test_independent_noise_is_near_zero_and_inside_the_null():
    rng = np.random.default_rng(4)
    null = ksg_null(5000, 3, 20, seed=0)
    assert abs(null.mean()) < 0.005 and 0.002 < null.std() < 0.02
    values = [mi_ksg(rng.normal(size=5000), rng.normal(size=5000), seed=s) for s in range(5)]
    assert np.all(np.abs(np.array(values) - null.mean()) < 4 * null.std())


def test_mixed_estimator_known_answer():
    # two equiprobable labels shifting a unit Gaussian by +-d/2: MI = H(mixture) - H(N(0, 1)), here by quadrature
    rng = np.random.default_rng(5)
    n, d = 10000, 2.0
    labels = rng.integers(0, 2, n)
    x = rng.normal(size=n) + d * (labels - 0.5)
    grid = np.linspace(-12, 12, 200001)
    density = 0.5 * (np.exp(-0.5 * (grid - d / 2) ** 2) + np.exp(-0.5 * (grid + d / 2) ** 2)) / math.sqrt(2 * math.pi)
    h_mix = -np.sum(density * np.log(density)) * (grid[1] - grid[0])
    exact = h_mix - 0.5 * math.log(2 * math.pi * math.e)
    assert mi_mixed(x, labels.astype(str), k=3) == pytest.approx(exact, abs=0.02)
    assert abs(mi_mixed(rng.normal(size=n), labels)) < 0.01


def test_discrete_miller_madow():
    a = np.repeat([0, 1], 500)
    assert mi_discrete(a, a) == pytest.approx(math.log(2) + (2 + 2 - 2 - 1) / 2000)
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    assert abs(mi_discrete(x, y)) < 0.01                       # plug-in alone is ~ 81 / 4000 = 0.02


def test_rank_transform_breaks_ties_into_uniforms():
    u = rank_uniform(np.repeat([1.0, 2.0, 3.0], 100), np.random.default_rng(0))
    assert np.unique(u).size == 300 and 0 <= u.min() and u.max() < 1
    assert np.all(u[:100] < u[100:200].min())                  # order between tied blocks kept


def test_latent_factor_matrix_uses_known_rows_and_pairs():
    rng = np.random.default_rng(7)
    n = 3000
    teff = rng.uniform(4000, 6500, n)
    teff_missing = np.where(np.arange(n) % 4 == 0, np.nan, teff)
    mode = rng.integers(0, 2, n)
    z = np.column_stack([teff + 50 * rng.normal(size=n), mode + 0.1 * rng.normal(size=n)])
    factors = [Factor("teff_k", "intrinsic", False, teff_missing), Factor("instrument_mode", "extrinsic", True, mode)]
    values, used = latent_factor_mi(z, factors, k=3, seed=0)
    assert used.tolist() == [n - n // 4, n]
    assert values[0, 0] > 2.0 and values[1, 1] > 0.6 and abs(values[0, 1]) < 0.02 and abs(values[1, 0]) < 0.02
    pairs = np.array([[True, False], [False, False]])
    some = latent_factor_mi(z, factors, k=3, seed=0, pairs=pairs)[0]
    assert some[0, 0] == values[0, 0] and np.isnan(some[1:, :]).all() and np.isnan(some[0, 1])


def test_study_indicator_hand_example():
    # 31 spectra: 15 labels 0, 14 labels 1, one 1000 (clipped: median 0.5, std ~180, z = 5.4 > 5) and one NaN.
    # bins = 2. Latent 1 repeats the label: MI = H(15/29, 14/29) = 0.692553 nats.
    # Latent 2: joint counts [[8, 7], [7, 7]] (z2 = 0 / 1 against label 0 / 1):
    #   MI = 8/29 ln(232/225) + 14/29 ln(203/210) + 7/29 ln(203/196) = 5.556e-4 nats.
    # Indicator = row / row max = [1, 5.556e-4 / 0.692553 = 8.02e-4]. Latent values on dropped rows are ignored.
    label = np.array([0.0] * 15 + [1.0] * 14 + [1000.0, np.nan])
    z1 = np.r_[label[:29], 5.0, -3.0]
    z2 = np.r_[[0.0] * 8 + [1.0] * 7, [0.0] * 7 + [1.0] * 7, 0.3, 0.7]
    indicator, plugin, n = study_indicator(np.column_stack([z1, z2]), label, bins=(2,))
    assert n == 29
    assert plugin[0] == pytest.approx([0.692553, 5.556e-4], rel=1e-3)
    assert indicator[0] == pytest.approx([1.0, 8.02e-4], rel=1e-3)


def test_study_indicator_bias_grows_with_bins():
    rng = np.random.default_rng(8)
    n = 4000
    z = rng.normal(size=(n, 2))
    _, plugin, _ = study_indicator(z, rng.normal(size=n))
    # independent data: the 160-bin plug-in MI is mostly bias (about 1.1-1.9 nats at N = 4,000), 5 bins ~0
    assert plugin[0].max() < 0.02 and np.all(plugin[-1] > 1.0)
