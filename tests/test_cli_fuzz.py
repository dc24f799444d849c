"""A seeded fuzz pass over command-line arguments: no input may end in a traceback or a silent default.

Every generated command must either succeed (exit 0) with every given parameter recorded in the product's truth as
given, or exit with status 2 and one message. Scenario values are fuzzed in tests/test_scenario_bad_inputs.py.
"""

import numpy as np
import pytest

from simharps import parameters
from simharps.cli import main
from simharps.errors import ParameterError
from simharps.io import read_harps

WINDOW = ["--window", "6270", "6272"]
NAMES = [p.name for p in parameters.PARAMETERS.values() if p.level != parameters.RECORD]


def _misspell(rng, name):
    i = int(rng.integers(len(name)))
    return name[:i] + name[i + 1:] if rng.random() < 0.5 else name[:i] + "x" + name[i:]


def _value(rng, parameter, valid_share=0.0):
    """A random value text: valid, out of range, non-finite, a wrong unit, garbage, or a choice (valid at least
    ``valid_share`` of the time)."""
    kind = rng.integers(2) if rng.random() < valid_share else rng.integers(8)
    if parameter.is_string:
        return rng.choice(list(parameter.choices) + (["", "bogus", "HAM ", "1"] if kind > 1 else []))
    low, high = parameter.valid
    inside = low + (high - low) * rng.random()
    return [f"{inside:.6g}", f"{inside:.6g} {parameter.unit_text.replace(' ', '')}", f"{high * 10 + 1:.6g}",
            rng.choice(["inf", "-inf", "nan", "NaN"]), f"{inside:.3g} parsec", rng.choice(["hot", "5e", "--", "1e999"]),
            f"{inside:.4g}=3", f"{low - abs(low) - 1:.6g}"][kind]


def _assignment(rng, valid_share=0.0):
    parameter = parameters.PARAMETERS[rng.choice(NAMES)]
    name = _misspell(rng, parameter.name) if rng.random() < 0.15 * (1 - valid_share) else parameter.name
    return f"{name}={_value(rng, parameter, valid_share)}", parameter


def test_parameter_assignments_parse_or_refuse_with_a_parameter_error():
    """2,000 random NAME=VALUE texts through the CLI parser: a value or a ParameterError, nothing else; accepted
    values are finite, inside the table's range and equal to the given number in the parameter's unit."""
    rng = np.random.default_rng(20261207)
    accepted = 0
    for _ in range(2000):
        text, parameter = _assignment(rng)
        try:
            name, value = parameters.parse_assignment(text)
        except ParameterError as error:
            assert str(error) and "\n" not in str(error)
            continue
        accepted += 1
        assert name == parameter.name
        if not parameter.is_string:
            assert np.isfinite(value) and parameter.valid[0] <= value <= parameter.valid[1]
    assert 200 < accepted < 1800   # the generator exercises both sides


@pytest.mark.slow
def test_spectrum_commands_exit_0_with_their_values_or_2_with_one_line(tmp_path, capsys):
    """40 random `simharps spectrum` commands (1-3 assignments, sometimes a bad seed or window): exit 0 with every
    assigned value in the written truth, or exit 2 with one line and no traceback."""
    rng = np.random.default_rng(7)
    outcomes = {0: 0, 2: 0}
    for case in range(40):
        assignments = [_assignment(rng, valid_share=0.7)[0] for _ in range(int(rng.integers(1, 4)))]
        extras = [["--seed", "-1"], ["--seed", "x"], ["--window", "6272", "6270"], ["--window", "6270", "nan"], []]
        extra = extras[rng.choice(len(extras), p=[0.05, 0.05, 0.05, 0.05, 0.8])]
        out = tmp_path / f"case{case}"
        try:
            status = main(["spectrum", *assignments, "--out", str(out), *WINDOW, *extra])
        except SystemExit as stop:   # argparse refuses its own argument errors with status 2
            status = stop.code
        err = capsys.readouterr().err
        assert status in (0, 2), (assignments, extra, err)
        assert "Traceback" not in err
        outcomes[status] += 1
        if status == 2:
            assert len(err.strip().splitlines()) >= 1
            continue
        truth = read_harps(out / "spectrum.fits").truth
        for text in assignments:
            name, value = parameters.parse_assignment(text)
            recorded = truth.get(name)
            assert recorded == pytest.approx(value) if isinstance(value, float) else recorded == value, name
    assert outcomes[0] > 5 and outcomes[2] > 5
