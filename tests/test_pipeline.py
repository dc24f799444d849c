"""Scenario -> dataset and archive files -> dataset, through the CLI as a user runs them."""

from pathlib import Path

import numpy as np
import pytest

from simharps.cli import main
from simharps.dataset import open_dataset
from simharps.forward import simulate
from simharps.pipeline import population_rows
from simharps.scenario import load_scenario
CI_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "ci.yaml"


@pytest.fixture(scope="module")
def ci_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ci") / "dataset"
    assert main(["simulate", str(CI_SCENARIO), "--out", str(out), "--quiet", "--plot"]) == 0
    return out


def test_simulate_writes_the_scenario_population(ci_dataset):
    dataset = open_dataset(ci_dataset)
    scenario = load_scenario(CI_SCENARIO)
    assert len(dataset) == scenario.n_spectra == 4
    assert not np.any(dataset.table["failed"])
    assert dataset.wavelength_air_aa[0] == pytest.approx(5150.0) and dataset.wavelength_air_aa[-1] == pytest.approx(5250.0)
    assert set(dataset.components) == {"stellar", "telluric", "response"}
    assert dataset.manifest["scenario"]["sha256"] == scenario.sha256
    assert dataset.manifest["analysis"] == scenario.analysis
    assert (ci_dataset / "first_spectrum.png").exists()


def test_stored_spectrum_is_the_forward_model_of_its_row(ci_dataset):
    dataset = open_dataset(ci_dataset)
    scenario = load_scenario(CI_SCENARIO)
    row = population_rows(scenario)[2]
    seed = np.random.SeedSequence(scenario.seed, spawn_key=tuple(row["seed_key"]))
    direct = simulate(row, seed, window=scenario.window_aa)
    stored = dataset.flux[2]
    assert dataset.table["berv_kms"][2] == pytest.approx(direct.truth["berv_kms"], abs=1e-12)
    covered = direct.error > 0
    np.testing.assert_array_equal(np.isnan(stored), ~covered)
    # float16 storage after an exact power-of-two scaling (simharps.dataset): half a unit in the last place at most
    assert np.max(np.abs(stored[covered] - direct.flux[covered]) / direct.flux[covered]) <= 2.0**-11


def test_rerun_resumes_without_work_and_a_bad_scenario_is_one_message(ci_dataset, tmp_path, capsys):
    before = (ci_dataset / "manifest.json").read_bytes()
    assert main(["simulate", str(CI_SCENARIO), "--out", str(ci_dataset), "--quiet"]) == 0
    assert (ci_dataset / "manifest.json").read_bytes() == before
    bad = tmp_path / "bad.yaml"
    bad.write_text(CI_SCENARIO.read_text().replace("vmag: 7 mag", "vmag: 7 km/s"))
    capsys.readouterr()
    assert main(["simulate", str(bad), "--out", str(tmp_path / "never"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "line" in err and err.count("\n") == 1
    assert not (tmp_path / "never").exists()


def test_ingest_real_folder_lists_rejections(harps_dir, tmp_path, capsys):
    out = tmp_path / "real"
    assert main(["ingest", str(harps_dir), "--out", str(out), "--quiet"]) == 0
    dataset = open_dataset(out)
    assert len(dataset) == 3
    assert sorted(dataset.table["instrument"]) == ["ESPRESSO", "HARPS", "HARPS"]
    rejected = {entry["path"].split("/")[-1] for entry in dataset.manifest["rejected"]}
    assert any("e2ds" in name for name in rejected) and len(rejected) == 3
    assert "telluric" in dataset.components
    assert "3 spectra ingested, 3 files rejected" in capsys.readouterr().out


def test_dataset_batches_mark_the_ccd_gap_as_nan_like_ingest():
    from simharps.pipeline import simulate_dataset_batch

    params = dict(teff_k=5800.0, vmag=8.0, exptime_s=300.0, berv_kms=0.0)
    batch = simulate_dataset_batch([params], [1], window=(5290.0, 5350.0))
    product = simulate(params, 1, window=(5290.0, 5350.0))
    gap = product.flux == 0
    assert 3000 < gap.sum() < 3500  # ~33 A of the 5303-5337 A gap
    np.testing.assert_array_equal(np.isnan(batch.flux[0]), gap)
    np.testing.assert_array_equal(batch.flux[0][~gap], product.flux[~gap])


def test_configuration_the_forward_model_lacks_fails_before_any_work(tmp_path, capsys):
    upgraded = tmp_path / "post2015.yaml"
    text = CI_SCENARIO.read_text().replace("dates: [2009-01-01, 2010-12-31]", "dates: [2016-01-01, 2016-12-31]")
    upgraded.write_text(text.replace("    exptime_s: 300 s", "    exptime_s: 300 s\n    fibre_era: post2015"))
    assert main(["simulate", str(upgraded), "--out", str(tmp_path / "never"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "post2015.yaml" in err and "line 19" in err and "fibre_era post2015 is not simulated yet" in err
    assert not (tmp_path / "never").exists()
