"""Preprocessing recipes, frames, whitening, quality filters, the cache and the split, against hand-computed values."""

import numpy as np
import pytest
from analysis_data import C_KMS, STELLAR_LINE_AA, TELLURIC_LINE_AA, write_synthetic

from analysis import frames, preprocess
from analysis.cache import build_cache
from analysis.config import PreprocessingConfig, SplitConfig
from analysis.split import make_split, night_index
from simharps.dataset import write_dataset
from simharps.grids import PRODUCT_RANGE_AA

FULL_N = 313_201


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "ds")


def _full_range_dataset(path, flux_rows):
    wave = np.round(PRODUCT_RANGE_AA[0] + 0.01 * np.arange(FULL_N), 2)
    flux = np.array(flux_rows, dtype=np.float32)
    rows = [{"target_id": f"T{i}", "epoch": 0, "berv_kms": 0.0, "mjd_utc": 55000.0 + i} for i in range(len(flux))]
    return write_dataset(path, wave, {"flux": flux, "error": np.ones_like(flux)}, rows, chunk_size=4,
                         dtypes={"flux": "float32", "error": "float32"})


def _centroid(wave, values, centre, half_width_aa=0.25):
    """Line centroid: depth below the straight continuum through the window's ends, weighting wavelength."""
    near = np.abs(wave - centre) < half_width_aa
    w, v = wave[near], values[near]
    continuum = np.interp(w, [w[:5].mean(), w[-5:].mean()], [v[:5].mean(), v[-5:].mean()])
    depth = np.clip(continuum - v, 0, None)
    return np.sum(w * depth) / np.sum(depth)


def test_eso_recipe_pads_cuts_and_takes_the_median_with_masked_zeros(tmp_path):
    first = int(round((3785.00 - PRODUCT_RANGE_AA[0]) / 0.01))        # 400 channels below the cut
    flux = np.full(FULL_N, 3.0)
    # 48 % of the 312,501 cut channels are 1, the rest 3: masked-only median 3; with the 5.7 % masked zeros of
    # the padded vector (15,179 padding + 3,440 gap channels) below them, 0.057 + 0.48 x 0.943 > 0.5: median 1
    flux[first:first + int(0.48 * 312_501)] = 1.0
    dataset = _full_range_dataset(tmp_path / "full", [flux, flux * 2])
    for median, expected in (("with_masked_zeros", 1.0), ("masked", 3.0)):
        config = PreprocessingConfig(recipe="eso", median=median)
        cache = build_cache(dataset, config, tmp_path / "cache")
        prepared = cache.prepared([0, 1])
        assert prepared.x.shape == (2, 327_680)
        assert prepared.amplitude == pytest.approx([expected, 2 * expected], rel=1e-3)
        assert cache.wavelength_aa[7589] == pytest.approx(3785.00) and cache.wavelength_aa[7589 + 312_500] == \
            pytest.approx(6910.00)
        assert not prepared.mask[:, :7589].any() and not prepared.mask[:, -7590:].any()
        assert not prepared.mask[:, 159453:162893].any() and prepared.mask[:, 159452].all()
        assert np.all(prepared.x[~prepared.mask] == 0)
        assert prepared.mask.sum(axis=1) == pytest.approx(312_501 - (162893 - 159453))
    assert cache.wavelength_aa[159453] == pytest.approx(5303.64)


def test_hits_recipe_bins_to_11000_channels_and_removes_the_dc_level(tmp_path):
    rng = np.random.default_rng(1)
    flux = rng.uniform(100, 200, (2, FULL_N))
    dataset = _full_range_dataset(tmp_path / "full", flux)
    cache = build_cache(dataset, PreprocessingConfig(recipe="hits", amplitude="none"), tmp_path / "cache")
    assert cache.n_channels == 11_000
    factor, first = FULL_N // 11_000, (FULL_N - 11_000 * (FULL_N // 11_000)) // 2      # 28, 2600
    wave = dataset.wavelength_air_aa
    assert cache.wavelength_aa[0] == pytest.approx(wave[first:first + factor].mean())
    prepared = cache.prepared([0, 1])
    binned = flux[:, first:first + 11_000 * factor].reshape(2, 11_000, factor).mean(axis=2)
    expected = binned - binned.mean(axis=1, keepdims=True)
    assert prepared.x == pytest.approx(expected, abs=0.1)      # float16 cache: <= 2^-11 of values up to 200
    assert np.abs(prepared.x.mean(axis=1)).max() < 1e-3
    median = build_cache(dataset, PreprocessingConfig(recipe="hits"), tmp_path / "cache").prepared([0])
    assert median.amplitude[0] == pytest.approx(np.median(binned[0]), rel=1e-3)


def test_resampler_conserves_flux_and_a_one_channel_velocity_is_an_index_shift():
    wave = 6000.0 + 0.01 * np.arange(400)
    rng = np.random.default_rng(2)
    flux = rng.uniform(0.5, 1.5, (1, 400))
    mask = np.ones((1, 400), bool)
    # a shift by the velocity of exactly one channel at the centre moves values by one channel there
    v = 0.01 / wave[200] * C_KMS
    out, valid = frames.doppler_resample(wave, flux, mask, frames.shift_factor([v]))
    assert out[0, 195:205] == pytest.approx(flux[0, 196:206], abs=0.02)
    # the integral over valid bins is conserved (the bins lost are at the edge)
    small = frames.shift_factor([0.3])
    out, valid = frames.doppler_resample(wave, flux, mask, small)
    assert valid[0, 1:-1].all() and not valid[0, -1]
    assert out[0, valid[0]].sum() == pytest.approx(flux[0, 1:-1].sum(), rel=2e-3)
    # a masked input channel masks the output bins that overlap it, never more than two
    mask[0, 100] = False
    out, valid = frames.doppler_resample(wave, flux, mask, small)
    assert 1 <= np.sum(~valid[0, 90:110]) <= 2


def test_observatory_frame_puts_the_telluric_line_at_rest_and_stellar_frame_the_stellar_line(synthetic):
    table = synthetic.table
    config = PreprocessingConfig(recipe="window", start_aa=6275.0, n_pixels=4096, frame="observatory")
    cache = build_cache(synthetic, config, synthetic.path.parent / "cache")
    stored = synthetic.flux[:]
    wave = synthetic.wavelength_air_aa
    prepared = cache.prepared(np.arange(len(synthetic)))
    for i in range(len(synthetic)):
        berv = table["berv_kms"][i]
        barycentric = _centroid(wave, stored[i], TELLURIC_LINE_AA * (1 + berv / C_KMS))
        observatory = _centroid(cache.wavelength_aa, prepared.x[i], TELLURIC_LINE_AA)
        assert barycentric - TELLURIC_LINE_AA == pytest.approx(TELLURIC_LINE_AA * berv / C_KMS, abs=0.003)
        assert observatory == pytest.approx(TELLURIC_LINE_AA, abs=0.003)      # 0.14 km/s
    stellar = build_cache(synthetic, config.model_copy(update={"frame": "stellar"}), synthetic.path.parent / "cache")
    prepared = stellar.prepared(np.arange(len(synthetic)))
    centres = [_centroid(stellar.wavelength_aa, prepared.x[i], STELLAR_LINE_AA) for i in range(len(synthetic))]
    assert np.ptp(centres) < 0.004 and np.mean(centres) == pytest.approx(STELLAR_LINE_AA, abs=0.002)


def test_whitening_moves_input_mask_and_telluric_alike_and_never_when_encoding(synthetic):
    config = PreprocessingConfig(recipe="window", start_aa=6275.0, n_pixels=4096, frame="observatory",
                                 whitening={"max_kms": 30})
    cache = build_cache(synthetic, config, synthetic.path.parent / "cache")
    indices = np.arange(len(synthetic))
    shifts = preprocess.whitening_shifts_kms(indices, 3, 0, 30.0)
    assert np.all(np.abs(shifts) <= 30) and np.std(shifts) > 5
    assert np.array_equal(shifts, preprocess.whitening_shifts_kms(indices, 3, 0, 30.0))
    assert not np.array_equal(shifts, preprocess.whitening_shifts_kms(indices, 4, 0, 30.0))
    still, moved = cache.prepared(indices), cache.prepared(indices, epoch=3, seed=0)
    assert np.array_equal(still.x, cache.prepared(indices).x)
    wave = cache.wavelength_aa
    for i in range(len(synthetic)):
        # g(lambda) = f(lambda (1 + v/c)): a feature at lambda_0 moves to lambda_0 / (1 + v/c)
        target = TELLURIC_LINE_AA / (1 + shifts[i] / C_KMS)
        assert _centroid(wave, moved.x[i], target) == pytest.approx(target, abs=0.003)
        assert _centroid(wave, moved.telluric[i], target) == \
            pytest.approx(target, abs=0.003)
        lost = int(np.ceil(abs(shifts[i]) / C_KMS * wave[-1] / 0.01))
        edge = moved.mask[i, :lost + 2] if shifts[i] < 0 else moved.mask[i, -lost - 2:]
        # the edge the shift empties is masked: no channel from beyond the cached window is invented
        assert np.sum(~edge) >= lost - 1
    assert np.all(moved.x[~moved.mask] == 0)


def test_quality_filters_list_every_excluded_spectrum(tmp_path):
    wave = np.round(6270.0 + 0.01 * np.arange(600), 2)
    flux = np.full((4, 600), 100.0, dtype=np.float32)
    flux[1, :400] = np.nan
    flux[2] *= 0.3
    flux[3, 300] = 1000.0
    rows = [{"target_id": f"T{i}", "epoch": 0, "snr_550": 50.0} for i in range(4)]
    dataset = write_dataset(tmp_path / "q", wave, {"flux": flux, "error": np.ones_like(flux)}, rows,
                            dtypes={"flux": "float32", "error": "float32"})
    config = PreprocessingConfig(recipe="window", start_aa=6270.0, n_pixels=512,
                                 quality={"max_nonfinite_fraction": 0.5, "min_median_flux": 50.0,
                                          "max_flux_jump": 5.0})
    cache = build_cache(dataset, config, tmp_path / "cache")
    reasons = cache.reasons
    assert reasons[0] == ""
    assert reasons[1].startswith("non-finite fraction 0.7")
    assert reasons[2].startswith("median flux 30")
    assert reasons[3].startswith("flux jump 9")
    assert [entry["index"] for entry in cache.meta["filtered"]] == [1, 2, 3]
    assert cache.usable.tolist() == [True, False, False, False]


def test_split_keeps_every_star_and_every_night_in_one_split(synthetic):
    table = synthetic.table
    usable = np.ones(len(table), bool)
    usable[0] = False
    labels = make_split(table, usable, SplitConfig(by="target", fractions=(0.5, 0.25, 0.25), seed=3))
    assert labels[0] == "excluded"
    for target in np.unique(table["target_id"]):
        assert len(set(labels[(table["target_id"] == target) & usable])) == 1
    assert {"train", "validation", "test"} <= set(labels)
    nights = night_index(table["mjd_utc"])
    labels = make_split(table, usable, SplitConfig(by="night", fractions=(0.6, 0.2, 0.2)))
    for night in np.unique(nights):
        assert len(set(labels[(nights == night) & usable])) <= 1     # 0 for the excluded spectrum's own night
    # 23:59 and 00:01 local time at La Silla (UTC-4.715 h) are the same night; local noon starts the next
    assert night_index([55000.0 + (23.98 + 4.715) / 24 - 1, 55000.0 + (0.02 + 4.715) / 24]).tolist() == [54999] * 2
    with pytest.raises(ValueError, match="cannot fill"):
        make_split(table[:5], np.ones(5, bool), SplitConfig(by="target"))


def test_cache_is_reused_and_keyed_by_the_static_options(synthetic):
    root = synthetic.path.parent / "cache-key"
    config = PreprocessingConfig(recipe="window", start_aa=6275.0, n_pixels=1024)
    first = build_cache(synthetic, config, root)
    again = build_cache(synthetic, config.model_copy(update={"amplitude": "none"}), root)
    assert again.path == first.path                     # amplitude is applied per batch, not cached
    other = build_cache(synthetic, config.model_copy(update={"frame": "observatory"}), root)
    assert other.path != first.path
    assert first.flux.dtype == np.float16 and first.meta["spectra_per_second"] > 0
