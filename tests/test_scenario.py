"""Scenario files: schema, units, line-numbered errors, YAML safety, shipped scenarios."""

import textwrap
from pathlib import Path

import pytest

from simharps.errors import SimharpsError
from simharps.scenario import Scenario, ScenarioError, load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))

BASE = """\
name: t
seed: 5
population:
  n_targets: 2
  epochs_per_target: 2
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


# --------------------------------------------------------------------------------------- shipped files


def test_the_required_scenarios_are_shipped():
    assert {p.stem for p in SCENARIOS} >= {"quickstart", "ci", "hits_2d", "eso_deep", "real_harps"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_validates(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    if scenario.kind == "simulated":
        assert scenario.n_spectra >= 4
        assert scenario.model.population.epochs_per_target >= 2  # repeat epochs are the point
    assert isinstance(scenario.analysis, (dict, type(None)))


def test_shipped_set_ups_match_the_study():
    hits = load_scenario(SCENARIOS[0].parent / "hits_2d.yaml")
    assert hits.window_aa == (3781.0, 6913.0)
    assert hits.subsample.channels == 11000 and hits.subsample.method == "bin"
    deep = load_scenario(SCENARIOS[0].parent / "eso_deep.yaml")
    assert deep.subsample is None and deep.components


def test_real_scenario_paths_resolve_relative_to_the_file(harps_dir):
    scenario = load_scenario(SCENARIOS[0].parent / "real_harps.yaml")
    paths = scenario.source_paths()
    assert sorted(p.name for p in paths) == sorted(
        ["ADP.2014-09-16T11:04:45.123.fits", "HARPS.2010-09-18T23:42:36.178_s1d_A.fits", "HD41248_1_1_S1D_A.fits"])
    assert all(p.parent == harps_dir.resolve() for p in paths)


def test_missing_real_path_names_the_entry_and_line(tmp_path):
    path = write(tmp_path, textwrap.dedent("""\
        name: r
        seed: 0
        source:
          kind: real
          paths:
            - here.fits
            - nowhere/*.fits
        """))
    (tmp_path / "here.fits").write_text("x")
    scenario = load_scenario(path)
    with pytest.raises(ScenarioError, match=r"line 7 \(source.paths\[1\]\).*matches no file"):
        scenario.source_paths()


def test_real_source_refuses_a_population(tmp_path):
    error = error_of(tmp_path, BASE + "source: {kind: real, paths: [a.fits]}\n")
    assert "takes no population" in str(error) and error.line == 3


# --------------------------------------------------------------------------------------- bad scenarios


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    error = error_of(tmp_path, BASE.replace("  epochs_per_target: 2", "  epochs_per_targets: 2"))
    assert isinstance(error, SimharpsError)
    assert error.path.endswith("s.yaml") and error.line == 5
    assert "unknown key 'epochs_per_targets'" in str(error) and "did you mean 'epochs_per_target'" in str(error)


def test_unknown_parameter_and_unknown_top_level_key(tmp_path):
    error = error_of(tmp_path, BASE + "  per_target:\n    tef_k: 5000 K\n")
    assert error.line == 7 and "did you mean 'teff_k'" in str(error)
    error = error_of(tmp_path, BASE + "populaton: {}\n")
    assert error.line == 6 and "did you mean 'population'" in str(error)


def test_wrong_unit_is_refused_with_the_line(tmp_path):
    error = error_of(tmp_path, BASE + "  per_target:\n    teff_k: {uniform: [4000 K, 0.8 arcsec]}\n")
    assert error.line == 7 and "does not convert to K" in str(error)
    error = error_of(tmp_path, BASE + "  per_epoch:\n    seeing_arcsec: 0.9 parsecs-ish\n")
    assert "unknown unit" in str(error)


def test_units_are_converted_to_canonical(tmp_path):
    scenario = load_scenario(write(tmp_path, BASE + textwrap.dedent("""\
          per_target:
            teff_k: {uniform: [4.5e3 K, 6000 K]}
          per_epoch:
            seeing_arcsec: 0.0002777777777 deg
            exptime_s: 0.25 h
        output:
          window: [500 nm, 5600 A]
        """)))
    plan = scenario.plan
    assert (plan.samplers["teff_k"].low, plan.samplers["teff_k"].high) == (4500.0, 6000.0)
    assert plan.samplers["seeing_arcsec"].value == pytest.approx(1.0, rel=1e-6)
    assert plan.samplers["exptime_s"].value == 900.0
    assert scenario.window_aa == (5000.0, 5600.0)


def test_low_above_high_is_refused(tmp_path):
    error = error_of(tmp_path, BASE + "  per_target:\n    vmag: {uniform: {low: 9 mag, high: 6 mag}}\n")
    assert error.line == 7 and "swap" in str(error)


def test_impossible_values_are_refused(tmp_path):
    error = error_of(tmp_path, BASE + "  per_epoch:\n    pwv_mm: -1 mm\n")
    assert error.line == 7 and "pwv_mm" in str(error) and "from 0 to 200 mm" in str(error)
    # a normal reaching below zero at its 1e-9 quantile is refused; truncating it fixes that
    error = error_of(tmp_path, BASE + "  per_epoch:\n    pwv_mm: {normal: {mean: 2 mm, sigma: 1 mm}}\n")
    assert "truncated" in str(error)
    load_scenario(write(tmp_path, BASE + "  per_epoch:\n    pwv_mm: {truncated: {normal: [2 mm, 1 mm], low: 0 mm}}\n"))
    error = error_of(tmp_path, BASE + "design: {kind: factorial, factors: {airmass: [0.9, 1.2]}}\n")
    assert error.line == 6 and "airmass" in str(error) and "from 1 to 10;" in str(error)


def test_teff_outside_the_builtin_model_is_refused_but_phoenix_allows_it(tmp_path):
    body = BASE + "  per_target:\n    teff_k: {uniform: [6000 K, 8000 K]}\n    logg_cgs: 4.0\n"
    error = error_of(tmp_path, body)
    assert error.line == 7 and "from 3000 to 7250 K" in str(error) and "built-in stellar model" in str(error)
    scenario = load_scenario(write(tmp_path, body + "stellar_model: phoenix\nphoenix_dir: grid\n"))
    assert scenario.plan.samplers["teff_k"].high == 8000.0


def test_main_sequence_relation_needs_teff_inside_its_table(tmp_path):
    body = BASE + "  per_target:\n    teff_k: {uniform: [6000 K, 9000 K]}\nstellar_model: phoenix\nphoenix_dir: g\n"
    error = error_of(tmp_path, body)
    assert "main-sequence relation covers teff_k 3000-7800 K" in str(error)


def test_relation_inputs_must_be_drawn(tmp_path):
    error = error_of(tmp_path, BASE + "  per_target:\n    ebv_mag: reddening\n")
    assert error.line == 7 and "distance_pc" in str(error)
    error = error_of(tmp_path, BASE + "  per_epoch:\n    pwv_mm: main_sequence\n")
    assert "applies to logg_cgs only" in str(error)


def test_parameter_levels_are_enforced(tmp_path):
    assert "move it to per_epoch" in str(error_of(tmp_path, BASE + "  per_target:\n    airmass: 1.2\n"))
    assert "move it to per_target" in str(error_of(tmp_path, BASE + "  per_epoch:\n    ra_deg: 10 deg\n"))
    assert "derived" in str(error_of(tmp_path, BASE + "  per_epoch:\n    berv_kms: 1\n"))


def test_instrument_configuration_values_are_validated(tmp_path):
    error = error_of(tmp_path, BASE + "  per_epoch:\n    instrument_mode: {choice: [HAM, EGGZ]}\n")
    assert error.line == 7 and "HAM, EGGS" in str(error)
    error = error_of(tmp_path, BASE + "  per_epoch:\n    fibre_era: post2015\n")
    assert "fibre_era post2015 is not simulated yet" in str(error)
    late = BASE.replace("population:", "observing: {dates: [2016-01-01, 2016-12-31]}\npopulation:")
    error = error_of(tmp_path, late + "  per_epoch:\n    fibre_era: pre2015\n")
    assert "does not overlap observing.dates" in str(error)
    load_scenario(write(tmp_path, BASE + "  per_epoch:\n    instrument_mode: EGGS\n    fibre_era: auto\n"))


def test_declinations_that_never_reach_the_airmass_limit_are_refused(tmp_path):
    error = error_of(tmp_path, BASE + "  per_target:\n    dec_deg: {isotropic: [0 deg, 45 deg]}\n")
    assert "only declinations -89.3 to 30.7 deg reach airmass 2" in str(error)


def test_window_and_subsample_checks(tmp_path):
    assert "0.01 A product lattice" in str(error_of(tmp_path, BASE + "output: {window: [5000.005, 5100]}\n"))
    assert "3781.00 <= start" in str(error_of(tmp_path, BASE + "output: {window: [3000 A, 5100 A]}\n"))
    error = error_of(tmp_path, BASE + "output: {window: [5000, 5001], subsample: {channels: 500}}\n")
    assert "at most 101" in str(error)
    assert "bin" in str(error_of(tmp_path, BASE + "output: {subsample: {channels: 500, method: average}}\n"))


def test_pydantic_errors_map_to_lines(tmp_path):
    error = error_of(tmp_path, BASE.replace("epochs_per_target: 2", "epochs_per_target: 0"))
    assert error.line == 5 and "greater than or equal to 1" in str(error)
    error = error_of(tmp_path, BASE + "stages: [stellar, telluric]\n")
    assert error.line == 6 and "atmosphere" in str(error)
    error = error_of(tmp_path, "name: t\npopulation: {n_targets: 1}\n")
    assert "missing required key 'seed'" in str(error)


def test_analysis_and_regression_sections_are_validated_with_defaults(tmp_path):
    scenario = load_scenario(write(tmp_path, BASE + textwrap.dedent("""\
        analysis:
          models: [{name: fc, kind: fc_ae, latent_dim: 2}]
        regression:
          tolerances: {mig: {abs: 0.05}}
        """)))
    assert scenario.analysis_config.models[0].kind == "fc_ae"
    assert scenario.analysis["models"][0]["name"] == "fc" and scenario.analysis["training"]["epochs"] == 20
    assert scenario.regression["tolerances"]["mig"]["abs"] == 0.05
    assert scenario.to_dict()["analysis"] == scenario.analysis
    with pytest.raises(ScenarioError, match="exactly one of"):
        load_scenario(write(tmp_path, BASE + "regression:\n  tolerances: {mig: {abs: 0.1, rel: 0.1}}\n"))


def test_yaml_stays_data(tmp_path):
    marker = tmp_path / "pwned"
    error = error_of(tmp_path, BASE + f"description: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists() and error.line == 6
    error = error_of(tmp_path, BASE + "seed: 6\n")
    assert "appears twice" in str(error) and error.line == 6
    error = error_of(tmp_path, BASE + "  per_target: {teff_k: [unclosed\n")
    assert "not valid YAML" in str(error)


def test_scenario_from_dict_without_a_file():
    scenario = Scenario.from_dict({"name": "d", "seed": 1, "population": {"n_targets": 1}})
    assert scenario.n_spectra == 1 and scenario.path is None
    with pytest.raises(ScenarioError, match=r"<scenario> \(population.n_targets\)"):
        Scenario.from_dict({"name": "d", "seed": 1, "population": {"n_targets": "many"}})
