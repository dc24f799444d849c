"""The one parameter table: read by the forward model, the CLI, the scenario schema, ingest and docs/contracts.md."""

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from simharps import parameters
from simharps.cli import main
from simharps.errors import ParameterError
from simharps.forward import resolve_parameters, simulate
from simharps.io.harps import header_meta
from simharps.scenario.parameters import PARAMETERS as SCENARIO_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
STAR = dict(teff_k=5000.0, vmag=8.0, exptime_s=300.0, berv_kms=3.0)


def test_misspelled_parameters_are_refused_with_the_nearest_name():
    """The issue's exact call: pwv and airmas were silently ignored before."""
    with pytest.raises(ParameterError) as error:
        simulate(dict(STAR, pwv=8, airmas=2.0), seed=1)
    assert "'pwv' (did you mean 'pwv_mm'?)" in str(error.value)
    assert "'airmas' (did you mean 'airmass'?)" in str(error.value)


@pytest.mark.parametrize("name, value, expected", [
    ("pwv_mm", np.inf, "finite"), ("teff_k", np.nan, "finite"), ("vmag", 22.0, "from -2 to 20 mag"),
    ("seeing_arcsec", 0.0, "from 0.05 to 10 arcsec"), ("instrument_mode", "HAMM", "did you mean 'HAM'"),
    ("airmass", "1.2", "must be a number"),
])
def test_values_outside_the_table_are_refused_before_any_work(name, value, expected):
    with pytest.raises(ParameterError, match=re.escape(expected)):
        resolve_parameters(dict(STAR, **{name: value}))


def test_defaults_come_from_the_table():
    values = resolve_parameters(STAR)
    for name, default in parameters.DEFAULTS.items():
        if default is not None:
            assert values[name] == default, name


@pytest.mark.parametrize("text, value", [("teff_k=5000 K", 5000.0), ("teff_k=5000", 5000.0),
                                         ("pwv_mm=8 mm", 8.0), ("pwv_mm=0.8 cm", 8.0), ("vmag=9 mag", 9.0),
                                         ("exptime_s=5 min", 300.0), ("instrument_mode=EGGS", "EGGS")])
def test_cli_values_take_the_scenario_unit_strings(text, value):
    name, parsed = parameters.parse_assignment(text)
    assert parsed == pytest.approx(value) if isinstance(value, float) else parsed == value


@pytest.mark.parametrize("argument, message", [
    ("teff_k=hot", "cannot read 'hot'"), ("teff_k=5000=3", "one '='"), ("teff_k=inf", "finite"),
    ("pwv_mm=inf", "finite"), ("airmas=2", "did you mean 'airmass'"), ("teff_k=5000 parsec", "does not convert"),
    ("pwv=8", "did you mean 'pwv_mm'"),
])
def test_cli_refuses_bad_parameters_with_one_line(argument, message, capsys, tmp_path):
    assert main(["spectrum", argument, "--out", str(tmp_path), "--window", "6270", "6280"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("window, message", [(("6320", "6270"), "START_AA < STOP_AA"),
                                             (("5310", "5330"), "gap between the HARPS CCDs"),
                                             (("3000", "3100"), "must lie within")])
def test_cli_refuses_windows_that_give_no_product(window, message, capsys, tmp_path):
    assert main(["spectrum", "--out", str(tmp_path), "--window", *window]) == 2
    assert message in capsys.readouterr().err


def test_spectrum_help_lists_every_parameter_with_unit_and_range(capsys):
    with pytest.raises(SystemExit):
        main(["spectrum", "--help"])
    text = capsys.readouterr().out
    for parameter in parameters.PARAMETERS.values():
        if parameter.level != parameters.RECORD:
            line = next(line for line in text.splitlines() if line.strip().startswith(parameter.name + " "))
            assert parameter.range_text in line and parameter.unit_text in line


def test_contracts_table_is_the_generated_table():
    text = (ROOT / "docs" / "contracts.md").read_text()
    inside = text.split("<!-- PARAMETER TABLE")[1].split("<!-- END PARAMETER TABLE -->")[0]
    assert inside.split("-->", 1)[1].strip() == parameters.markdown_table()


def test_scenario_ranges_and_units_are_the_table_s():
    for name, spec in SCENARIO_PARAMETERS.items():
        table = parameters.PARAMETERS[name]
        assert (spec.unit, spec.valid, spec.choices, spec.description) == (table.unit, table.valid, table.choices,
                                                                          table.description), name


def test_header_keywords_of_the_table_are_those_read_harps_uses():
    """Every parameter with a header keyword is read from that keyword by ``header_meta`` (seeing -1 is missing)."""
    for parameter in parameters.PARAMETERS.values():
        if parameter.header is None:
            continue
        header = fits.Header()
        value = "HARPS" if parameter.is_string else 1.25
        header[f"HIERARCH {parameter.header}" if len(parameter.header) > 8 else parameter.header] = value
        meta = header_meta(header, "s1d")
        name = "object" if parameter.name == "target_id" else parameter.name
        assert meta[name] == value, parameter.name
    header = fits.Header()
    header["HIERARCH ESO TEL AMBI FWHM START"] = -1.0
    assert header_meta(header, "s1d")["seeing_arcsec"] is None


@pytest.mark.parametrize("era, dates, message", [
    ("post2015", "[2016-01-01, 2016-12-31]", "fibre_era post2015 is not simulated yet"),
    ("auto", "[2014-01-01, 2016-12-31]", "fibre_era auto gives post2015 observations"),
])
def test_scenarios_refuse_fibre_eras_the_chain_does_not_simulate(era, dates, message, tmp_path):
    """The scenario layer used to offer eras that the forward model refused after sampling."""
    from simharps.scenario import load_scenario
    from simharps.scenario.errors import ScenarioError

    path = tmp_path / "era.yaml"
    path.write_text(f"name: era\nseed: 1\nobserving: {{dates: {dates}}}\npopulation:\n  n_targets: 1\n"
                    f"  epochs_per_target: 1\n  per_epoch: {{fibre_era: {era}}}\n")
    with pytest.raises(ScenarioError, match=message) as error:
        load_scenario(path)
    assert "line 7" in str(error.value)
