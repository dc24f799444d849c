"""simharps.fidelity.cnn: the CNN classifier two-sample test on cheap synthetic spectra."""

import numpy as np
import pytest
import torch

from simharps.errors import ParameterError
from simharps.fidelity.cnn import cnn_two_sample_test

N_BINS = 2000                                                   # 20 A at 0.01 A per bin
LINE_CENTRES_BIN = np.array([300.0, 700.0, 1100.0, 1500.0, 1800.0])
LINE_DEPTHS = np.array([0.6, 0.4, 0.8, 0.3, 0.5])
LINE_SIGMA_BIN = 3.0
FILLED_LINE = 2                                                 # the deepest line, centred on bin 1100
NOISE = 0.01                                                    # S/N 100 per bin
SHIFT_BIN_PER_NIGHT = 0.5


def _synthetic_set(seed, fill=0.0, n_nights=8, per_night=4):
    """Continuum-normalised spectra (n_nights * per_night, N_BINS) and the night of each: Gaussian absorption lines
    shifted by SHIFT_BIN_PER_NIGHT from night to night (alike in every set), white noise; ``fill`` (normalised flux)
    raises the core of FILLED_LINE."""
    rng = np.random.default_rng(seed)
    bins = np.arange(N_BINS, dtype=float)
    depths = LINE_DEPTHS.copy()
    depths[FILLED_LINE] -= fill
    flux, nights = [], []
    for night in range(n_nights):
        centres = LINE_CENTRES_BIN + SHIFT_BIN_PER_NIGHT * (night - (n_nights - 1) / 2)
        profile = 1.0 - np.sum(depths[:, None] * np.exp(-0.5 * ((bins - centres[:, None]) / LINE_SIGMA_BIN) ** 2),
                               axis=0)
        for _ in range(per_night):
            flux.append(profile + NOISE * rng.standard_normal(N_BINS))
            nights.append(night)
    return np.array(flux), np.array(nights)


def test_null_sets_are_indistinguishable():
    # a 95 % interval misses 0.5 by chance 1 time in 20, so two of three must contain it
    results = []
    for seed in (1, 3, 5):
        set_a, nights = _synthetic_set(seed)
        set_b, _ = _synthetic_set(seed + 1)
        results.append(cnn_two_sample_test(set_a, set_b, nights, nights, n_boot=300, seed=0))
    assert sum(r.ci_low < 0.5 < r.ci_high for r in results) >= 2, [r.to_dict() for r in results]
    assert all(r.auc < 0.75 for r in results), [r.auc for r in results]


def test_planted_line_core_is_found_and_located():
    # core filled by 0.05 = 5 sigma per bin at the centre, >= 3 sigma over the central 7 bins; over 5 draws x 2
    # seeds this setup gives AUC 0.88-0.99 and saliency peaks 5-11 bins from the centre (receptive field 87 bins)
    real, nights = _synthetic_set(7, fill=0.05)
    twin, _ = _synthetic_set(8)
    result = cnn_two_sample_test(real, twin, nights, nights, n_boot=300, seed=0)
    assert result.auc > 0.9 and result.ci_low > 0.8, result.to_dict()
    peak_bin = int(np.nanargmax(np.abs(result.weights)))
    assert abs(peak_bin - LINE_CENTRES_BIN[FILLED_LINE]) <= 12, peak_bin
    assert result.weights[peak_bin] > 0                         # more flux in the core reads as "real"
    assert result.n_components == 4288 + 32 * -(-N_BINS // 32) + 1   # convolutions + head


def test_same_seed_same_result_and_global_rng_untouched():
    set_a, nights = _synthetic_set(1)
    set_b, _ = _synthetic_set(2)
    rng_state = torch.get_rng_state()
    first = cnn_two_sample_test(set_a, set_b, nights, nights, n_boot=100, seed=3)
    assert torch.equal(rng_state, torch.get_rng_state())
    second = cnn_two_sample_test(set_a, set_b, nights, nights, n_boot=100, seed=3)
    other = cnn_two_sample_test(set_a, set_b, nights, nights, n_boot=100, seed=4)
    assert first.auc == second.auc and (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)
    np.testing.assert_array_equal(first.scores, second.scores)
    np.testing.assert_array_equal(first.weights, second.weights)
    assert not np.array_equal(first.scores, other.scores)


def test_too_few_nights_or_bins_raise():
    set_a, nights = _synthetic_set(1, n_nights=2, per_night=2)
    set_b, _ = _synthetic_set(2, n_nights=2, per_night=2)
    with pytest.raises(ParameterError, match=r">= 2 nights .* got 1 night\(s\)"):
        cnn_two_sample_test(set_a, set_b, np.zeros(4), np.zeros(4))
    set_a[0, 1:] = np.nan                                       # one bin left finite in every spectrum
    with pytest.raises(ParameterError, match=r"1 bin\(s\)"):
        cnn_two_sample_test(set_a, set_b, nights, nights)
