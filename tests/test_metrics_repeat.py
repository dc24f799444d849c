"""Planted clusters and paired designs (analysis.metrics.repeat)."""

import numpy as np
import pytest
from astropy.table import Table

from analysis.metrics.repeat import dispersion, median_ratio, pair_shifts, paired_design, ratio, series_ratio


def test_repeat_ratio_on_planted_clusters():
    rng = np.random.default_rng(0)
    n_targets, n_epochs, s_b, s_w = 400, 8, 1.0, 0.3
    clusters = np.repeat(np.arange(n_targets), n_epochs)
    star = np.repeat(rng.normal(0, s_b, n_targets), n_epochs) + rng.normal(0, s_w, clusters.size)
    noise = rng.normal(0, 1, clusters.size)
    within, between = dispersion(np.column_stack([star, noise]), clusters)
    expected = s_w / np.sqrt(s_b ** 2 + s_w ** 2 / n_epochs)       # 0.2983: target means scatter by s_w / sqrt(n) too
    assert within[0] == pytest.approx(s_w, rel=0.03)
    assert ratio(within, between)[0] == pytest.approx(expected, rel=0.05)
    assert ratio(within, between)[1] == pytest.approx(np.sqrt(n_epochs), rel=0.08)   # no target information
    assert median_ratio(np.column_stack([star, star, noise]), clusters) == pytest.approx(expected, rel=0.05)


def test_single_series_against_reference():
    rng = np.random.default_rng(1)
    series = rng.normal(0, 0.2, (50, 2))
    within, r = series_ratio(series, np.array([1.0, 0.5]))
    assert within == pytest.approx([0.2, 0.2], rel=0.25)
    assert r == pytest.approx([0.2, 0.4], rel=0.25)


def _paired_table(rng, n_base=60):
    rows = []
    for g in range(n_base):
        teff, pwv = rng.uniform(4000, 6000), rng.uniform(2, 6)
        for variant, value in enumerate((pwv, 1.0, 10.0)):
            rows.append((g // 3, g, variant, teff, value, 0.5 * value, f"T{g // 3:05d}"))
    names = ("target_index", "design_group", "variant", "teff_k", "pwv_mm", "snr_550", "target_id")
    return Table(rows=rows, names=names)


def test_paired_design_detects_factor_and_shift():
    rng = np.random.default_rng(2)
    table = _paired_table(rng)
    pairs = paired_design(table)
    assert [(p[0], p[1]) for p in pairs] == [("pwv_mm", 1), ("pwv_mm", 2)]     # snr_550 is derived, skipped
    pwv = np.asarray(table["pwv_mm"])
    z = np.column_stack([pwv, np.asarray(table["teff_k"]) / 1000])
    spread = z.std(axis=0, ddof=1)
    _, variant, base, varied = pairs[1]
    shifts = pair_shifts(z, base, varied, spread)
    assert shifts[1] == 0.0
    assert shifts[0] == pytest.approx(np.median(np.abs(pwv[varied] - pwv[base])) / spread[0])
    assert paired_design(table[table["variant"] == 0]) == []
